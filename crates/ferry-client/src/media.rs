//! What kind of content a response is: whether it is HTML (by `Content-Type`,
//! or by sniffing its first bytes when the type is missing or generic), and
//! which file extension fits a `Content-Type`.

/// The lowercased `type/subtype` of a `Content-Type` value, parameters dropped.
pub fn essence(content_type: &str) -> Option<String> {
    let mime: mime::Mime = content_type.trim().parse().ok()?;
    Some(mime.essence_str().to_ascii_lowercase())
}

/// Whether a response is an HTML page.
pub fn is_html(content_type: Option<&str>, head: &[u8]) -> bool {
    match content_type.and_then(essence).as_deref() {
        Some("text/html" | "application/xhtml+xml") => true,
        // No type, or one that says nothing: look at the bytes (WHATWG MIME sniffing).
        None | Some("application/octet-stream" | "unknown/unknown" | "application/unknown") => {
            sniff_html(head)
        }
        Some(_) => false,
    }
}

/// WHATWG MIME Sniffing, the HTML rows of "identifying an unknown MIME type":
/// after leading whitespace, one of these tags followed by a space or `>`.
/// Hand-written: it is twenty lines and the sniffing crates target binary formats.
pub fn sniff_html(head: &[u8]) -> bool {
    const TAGS: &[&[u8]] = &[
        b"<!DOCTYPE HTML",
        b"<HTML",
        b"<HEAD",
        b"<SCRIPT",
        b"<IFRAME",
        b"<H1",
        b"<DIV",
        b"<FONT",
        b"<TABLE",
        b"<A",
        b"<STYLE",
        b"<TITLE",
        b"<B",
        b"<BODY",
        b"<BR",
        b"<P",
        b"<!--",
    ];
    let head = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    let start = head
        .iter()
        .position(|b| !matches!(b, b'\t' | b'\n' | 0x0c | b'\r' | b' '))
        .unwrap_or(head.len());
    let head = &head[start..];
    TAGS.iter().any(|tag| {
        head.len() > tag.len()
            && head[..tag.len()].eq_ignore_ascii_case(tag)
            && matches!(head[tag.len()], b' ' | b'>')
    })
}

/// The usual extension (without the dot) for a media type essence.
///
/// A small table first, because `mime_guess` lists several extensions per type
/// in no particular order of preference (`image/jpeg` → `jfif` first); then
/// `mime_guess` for the long tail.
pub fn extension_for(essence: &str) -> Option<&'static str> {
    const PREFERRED: &[(&str, &str)] = &[
        ("text/html", "html"),
        ("application/xhtml+xml", "xhtml"),
        ("text/plain", "txt"),
        ("text/css", "css"),
        ("text/csv", "csv"),
        ("text/markdown", "md"),
        ("text/xml", "xml"),
        ("application/xml", "xml"),
        ("text/javascript", "js"),
        ("application/javascript", "js"),
        ("application/json", "json"),
        ("application/ld+json", "jsonld"),
        ("application/pdf", "pdf"),
        ("application/zip", "zip"),
        ("application/gzip", "gz"),
        ("application/x-gzip", "gz"),
        ("application/x-tar", "tar"),
        ("application/wasm", "wasm"),
        ("application/rss+xml", "rss"),
        ("application/atom+xml", "atom"),
        ("image/png", "png"),
        ("image/jpeg", "jpg"),
        ("image/gif", "gif"),
        ("image/webp", "webp"),
        ("image/avif", "avif"),
        ("image/svg+xml", "svg"),
        ("image/x-icon", "ico"),
        ("image/vnd.microsoft.icon", "ico"),
        ("audio/mpeg", "mp3"),
        ("audio/ogg", "ogg"),
        ("video/mp4", "mp4"),
        ("video/webm", "webm"),
        ("font/woff2", "woff2"),
        ("font/woff", "woff"),
    ];
    if let Some((_, ext)) = PREFERRED.iter().find(|(m, _)| *m == essence) {
        return Some(ext);
    }
    if essence == "application/octet-stream" {
        return None;
    }
    mime_guess::get_mime_extensions_str(essence).and_then(|exts| exts.first().copied())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_or_not() {
        let cases: &[(Option<&str>, &[u8], bool)] = &[
            (Some("text/html; charset=utf-8"), b"", true),
            (Some("TEXT/HTML"), b"", true),
            (Some("application/xhtml+xml"), b"", true),
            (Some("text/plain"), b"<html>", false),
            (Some("image/png"), b"\x89PNG", false),
            (None, b"<!doctype html><html>", true),
            (None, b"\n  <HTML lang=en>", true),
            (None, b"\xEF\xBB\xBF<title>x</title>", true),
            (Some("application/octet-stream"), b"<p>hi</p>", true),
            (None, b"<a>", true),
            (None, b"<abbr>", false),
            (None, b"{\"json\":1}", false),
            (None, b"", false),
            (Some("garbage"), b"<html>", true),
        ];
        for (ct, head, want) in cases {
            assert_eq!(is_html(*ct, head), *want, "{ct:?} {head:?}");
        }
    }

    #[test]
    fn extensions() {
        let cases: &[(&str, Option<&str>)] = &[
            ("image/png", Some("png")),
            ("image/jpeg", Some("jpg")),
            ("application/json", Some("json")),
            ("application/pdf", Some("pdf")),
            ("text/plain", Some("txt")),
            ("application/octet-stream", None),
            ("application/x-nonsense", None),
            ("audio/flac", Some("flac")),
        ];
        for (mime, want) in cases {
            assert_eq!(extension_for(mime), *want, "{mime}");
        }
    }
}
