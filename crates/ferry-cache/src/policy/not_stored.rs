//! Why a response was not stored: the one list of reasons, which feeds
//! `Cache-Status`, the access log and the metrics labels through
//! [`NotStored::as_str`].

/// Why a response was not stored; feeds `Cache-Status` and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NotStored {
    Method,
    /// The request forbade it (`Cache-Control: no-store` in the request).
    Request,
    Status,
    NoStore,
    Private,
    Authorization,
    VaryStar,
    SetCookie,
    Partial,
    TooBig,
    NotReusable,
    Disabled,
    Io,
}

impl NotStored {
    /// Whether the response itself forbids storing (so later responses for the
    /// same URL likely will too), rather than this request or the cache's state.
    pub fn is_about_the_response(self) -> bool {
        matches!(
            self,
            NotStored::Status
                | NotStored::NoStore
                | NotStored::Private
                | NotStored::VaryStar
                | NotStored::SetCookie
                | NotStored::NotReusable
                | NotStored::TooBig
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            NotStored::Method => "method",
            NotStored::Request => "request-no-store",
            NotStored::Status => "status",
            NotStored::NoStore => "no-store",
            NotStored::Private => "private",
            NotStored::Authorization => "authorization",
            NotStored::VaryStar => "vary-star",
            NotStored::SetCookie => "set-cookie",
            NotStored::Partial => "partial",
            NotStored::TooBig => "too-big",
            NotStored::NotReusable => "not-reusable",
            NotStored::Disabled => "disabled",
            NotStored::Io => "io-error",
        }
    }
}
