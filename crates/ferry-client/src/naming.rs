//! How a saved file is named. [`format_output_name`] is the one pure function
//! that decides the name of a download (cf. monolith's `format_output_path`):
//!
//! - HTML: `<title>.html`; without a usable title, a name from host and path
//!   (`example.com_docs_intro.html`);
//! - anything else: the `Content-Disposition` file name, else the last path
//!   segment, else host and path; with an extension from `Content-Type` when the
//!   name has none.
//!
//! Every name is made portable by [`sanitize`] (no path separators, reserved or
//! control characters, no leading dots, not a reserved Windows device name) and
//! [`candidate`] bounds it to [`MAX_NAME_BYTES`] bytes without cutting a UTF-8
//! character and adds ` (2)`, ` (3)`, … for the collision retries done by
//! [`crate::save`].

use percent_encoding::percent_decode_str;
use url::Url;

use crate::media;

/// The longest file name produced, in bytes, suffix and extension included.
pub const MAX_NAME_BYTES: usize = 120;

/// The longest extension (dot included) recognised as one.
const MAX_EXT_BYTES: usize = 16;

/// A file name split for collision numbering: `stem (n)ext`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileName {
    pub stem: String,
    /// With its leading dot, or empty.
    pub ext: String,
    /// Whether [`candidate`] may shorten the stem (false for a name the user gave with `-o`).
    pub bounded: bool,
}

/// What is known about a response when it is named.
#[derive(Debug, Clone, Copy)]
pub struct NameInput<'a> {
    /// The URL the body came from (after redirects).
    pub url: &'a Url,
    /// Whether the body is an HTML page.
    pub html: bool,
    /// The page's title, for HTML.
    pub title: Option<&'a str>,
    /// The file name from `Content-Disposition`, raw.
    pub disposition: Option<&'a str>,
    /// The `Content-Type` essence, e.g. `image/png`.
    pub content_type: Option<&'a str>,
}

/// Decides the name a response is saved under (before collision numbering).
pub fn format_output_name(input: &NameInput<'_>) -> FileName {
    if input.html {
        let titled = input
            .title
            .map(|t| strip_html_ext(&sanitize(t)))
            .filter(|s| usable(s));
        let stem = titled.unwrap_or_else(|| host_path_stem(input.url, true));
        return FileName::bounded(stem, ".html".to_string());
    }
    let suggested = input
        .disposition
        .map(basename)
        .filter(|s| !s.trim().is_empty())
        .map(str::to_string)
        .or_else(|| last_segment(input.url));
    let (stem, mut ext) = suggested
        .map(|s| split_ext(&sanitize(&s)))
        .unwrap_or_default();
    let stem = if usable(&stem) {
        stem
    } else {
        host_path_stem(input.url, false)
    };
    if ext.is_empty() {
        if let Some(e) = input.content_type.and_then(media::extension_for) {
            ext = format!(".{e}");
        }
    }
    FileName::bounded(stem, ext)
}

impl FileName {
    fn bounded(stem: String, ext: String) -> FileName {
        FileName {
            stem: fix_reserved(&stem),
            ext,
            bounded: true,
        }
    }

    /// A name the user chose (`-o`): kept as given, only split for numbering.
    pub fn verbatim(name: &str) -> FileName {
        let (stem, ext) = match name.rfind('.') {
            Some(i) if i > 0 && name.len() - i <= MAX_EXT_BYTES => {
                (name[..i].to_string(), name[i..].to_string())
            }
            _ => (name.to_string(), String::new()),
        };
        FileName {
            stem,
            ext,
            bounded: false,
        }
    }
}

/// The `n`-th name to try: `n <= 1` is the name itself, then `stem (n)ext`,
/// shortened to at most [`MAX_NAME_BYTES`] bytes on a character boundary.
pub fn candidate(name: &FileName, n: u32) -> String {
    let suffix = if n <= 1 {
        String::new()
    } else {
        format!(" ({n})")
    };
    let stem = if name.bounded {
        let budget = MAX_NAME_BYTES.saturating_sub(suffix.len() + name.ext.len());
        let cut = truncate(&name.stem, budget).trim_end_matches([' ', '.']);
        if cut.is_empty() { "download" } else { cut }
    } else {
        name.stem.as_str()
    };
    format!("{stem}{suffix}{}", name.ext)
}

/// Makes text a portable file name component: characters reserved on some
/// system (`/ \ : * ? " < > |`) become `_`, control characters and whitespace
/// runs become one space, invisible direction/zero-width marks are dropped, and
/// leading dots, dashes, underscores and trailing dots, underscores and spaces
/// are trimmed. The result may be empty.
pub fn sanitize(raw: &str) -> String {
    const RESERVED: &[char] = &['/', '\\', ':', '*', '?', '"', '<', '>', '|'];
    let mut out = String::with_capacity(raw.len());
    let mut space = false;
    for c in raw.chars() {
        if is_invisible(c) {
            continue;
        }
        if c.is_whitespace() || c.is_control() {
            space = true;
            continue;
        }
        if space && !out.is_empty() {
            out.push(' ');
        }
        space = false;
        out.push(if RESERVED.contains(&c) { '_' } else { c });
    }
    out.trim_start_matches(['.', ' ', '_', '-'])
        .trim_end_matches(['.', ' ', '_'])
        .to_string()
}

/// Marks that change how a name displays without being visible: bidi overrides
/// (a classic way to disguise an extension), zero-width characters, BOM.
fn is_invisible(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}' | '\u{AD}')
}

/// A name worth using has at least one letter or digit.
fn usable(s: &str) -> bool {
    s.chars().any(char::is_alphanumeric)
}

/// Windows device names (`CON`, `NUL`, `COM1`, …) are reserved with any
/// extension; such a name gets a `_` after the device part: `CON_.html`.
fn fix_reserved(stem: &str) -> String {
    let base_len = stem.find('.').unwrap_or(stem.len());
    let base = stem[..base_len].trim_end();
    let upper = base.to_uppercase();
    let reserved = matches!(upper.as_str(), "CON" | "PRN" | "AUX" | "NUL")
        || ((upper.starts_with("COM") || upper.starts_with("LPT"))
            && upper.chars().count() == 4
            && upper
                .chars()
                .nth(3)
                .is_some_and(|c| c.is_ascii_digit() || matches!(c, '¹' | '²' | '³')));
    if reserved {
        let mut fixed = stem.to_string();
        fixed.insert(base.len(), '_');
        fixed
    } else {
        stem.to_string()
    }
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// `name.ext` → (`name`, `.ext`) when `ext` looks like an extension (short, alphanumeric).
fn split_ext(name: &str) -> (String, String) {
    if let Some(i) = name.rfind('.') {
        let ext = &name[i + 1..];
        if i > 0
            && !ext.is_empty()
            && ext.len() < MAX_EXT_BYTES
            && ext.chars().all(|c| c.is_ascii_alphanumeric())
        {
            let stem = name[..i].trim_end_matches(['.', ' ', '_']);
            return (stem.to_string(), format!(".{ext}"));
        }
    }
    (name.to_string(), String::new())
}

/// Drops a trailing `.html` / `.htm` (a title like `index.html` would otherwise
/// give `index.html.html`).
fn strip_html_ext(s: &str) -> String {
    let lower = s.to_ascii_lowercase();
    let cut = if lower.ends_with(".html") {
        s.len() - 5
    } else if lower.ends_with(".htm") {
        s.len() - 4
    } else {
        return s.to_string();
    };
    s[..cut].trim_end_matches(['.', ' ', '_']).to_string()
}

/// The last part of a path given by a server (either separator).
fn basename(name: &str) -> &str {
    name.rsplit(['/', '\\']).next().unwrap_or(name)
}

/// The URL's last path segment, percent-decoded, if not empty.
fn last_segment(url: &Url) -> Option<String> {
    let segment = url.path_segments()?.next_back()?;
    let decoded = percent_decode_str(segment).decode_utf8_lossy().into_owned();
    (!decoded.is_empty()).then_some(decoded)
}

/// `example.com_docs_intro` from `http://example.com/docs/intro` (port and
/// query included when present, so different URLs get different names).
fn host_path_stem(url: &Url, html: bool) -> String {
    let mut parts = Vec::new();
    let host = url.host_str().unwrap_or("download");
    parts.push(match url.port() {
        Some(port) => format!("{host}_{port}"),
        None => host.to_string(),
    });
    let segments: Vec<String> = url
        .path_segments()
        .map(|s| {
            s.filter(|s| !s.is_empty())
                .map(|s| percent_decode_str(s).decode_utf8_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    let count = segments.len();
    for (i, segment) in segments.into_iter().enumerate() {
        if html && i + 1 == count {
            parts.push(strip_html_ext(&segment));
        } else {
            parts.push(segment);
        }
    }
    if let Some(query) = url.query().filter(|q| !q.is_empty()) {
        parts.push(percent_decode_str(query).decode_utf8_lossy().into_owned());
    }
    let stem = parts
        .iter()
        .map(|p| sanitize(p))
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("_");
    if stem.is_empty() {
        "download".to_string()
    } else {
        stem
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn html(u: &str, title: Option<&str>) -> String {
        let u = url(u);
        candidate(
            &format_output_name(&NameInput {
                url: &u,
                html: true,
                title,
                disposition: None,
                content_type: Some("text/html"),
            }),
            1,
        )
    }

    fn other(u: &str, disposition: Option<&str>, content_type: Option<&str>) -> String {
        let u = url(u);
        candidate(
            &format_output_name(&NameInput {
                url: &u,
                html: false,
                title: None,
                disposition,
                content_type,
            }),
            1,
        )
    }

    #[test]
    fn html_pages_are_named_after_their_title() {
        let long = "x".repeat(500);
        let long_name = format!("{}.html", "x".repeat(MAX_NAME_BYTES - 5));
        let cases: &[(&str, Option<&str>, &str)] = &[
            (
                "http://e.com/",
                Some("Example Domain"),
                "Example Domain.html",
            ),
            (
                "http://e.com/",
                Some("Rust & Ferry — docs"),
                "Rust & Ferry — docs.html",
            ),
            (
                "http://e.com/",
                Some("AC/DC: Back in Black?"),
                "AC_DC_ Back in Black.html",
            ),
            ("http://e.com/", Some("../../etc/passwd"), "etc_passwd.html"),
            ("http://e.com/", Some("..\\..\\boot.ini"), "boot.ini.html"),
            ("http://e.com/", Some(".hidden"), "hidden.html"),
            ("http://e.com/", Some("CON"), "CON_.html"),
            ("http://e.com/", Some("nul"), "nul_.html"),
            ("http://e.com/", Some("com1.backup"), "com1_.backup.html"),
            ("http://e.com/", Some("Console"), "Console.html"),
            ("http://e.com/", Some("a\u{0}b\u{7}c\td"), "a b c d.html"),
            (
                "http://e.com/",
                Some("invoice\u{202E}lmth.exe"),
                "invoicelmth.exe.html",
            ),
            ("http://e.com/", Some("index.html"), "index.html"),
            ("http://e.com/", Some(long.as_str()), long_name.as_str()),
            ("http://e.com/", Some("日本語"), "日本語.html"),
            // No usable title: host and path.
            (
                "http://example.com/docs/intro",
                None,
                "example.com_docs_intro.html",
            ),
            (
                "http://example.com/docs/intro.html",
                None,
                "example.com_docs_intro.html",
            ),
            ("http://example.com/", None, "example.com.html"),
            (
                "http://example.com:8080/a/b/",
                None,
                "example.com_8080_a_b.html",
            ),
            (
                "http://example.com/s?q=rust&p=2",
                None,
                "example.com_s_q=rust&p=2.html",
            ),
            (
                "http://example.com/caf%C3%A9",
                None,
                "example.com_café.html",
            ),
            (
                "http://example.com/x",
                Some("***???///"),
                "example.com_x.html",
            ),
            ("http://example.com/x", Some("..."), "example.com_x.html"),
            (
                "http://example.com/x",
                Some("!!! ---"),
                "example.com_x.html",
            ),
            ("http://[::1]:81/", None, "[__1]_81.html"),
        ];
        for (u, title, want) in cases {
            assert_eq!(html(u, *title), *want, "{u} {title:?}");
        }
    }

    #[test]
    fn other_content_keeps_its_name() {
        let cases: &[(&str, Option<&str>, Option<&str>, &str)] = &[
            (
                "http://e.com/img/logo.png",
                None,
                Some("image/png"),
                "logo.png",
            ),
            ("http://e.com/img/logo", None, Some("image/png"), "logo.png"),
            (
                "http://e.com/api/data",
                None,
                Some("application/json"),
                "data.json",
            ),
            (
                "http://e.com/api/",
                None,
                Some("application/json"),
                "e.com_api.json",
            ),
            ("http://e.com/", None, Some("image/jpeg"), "e.com.jpg"),
            (
                "http://e.com/download?id=3",
                Some("résumé.pdf"),
                Some("application/pdf"),
                "résumé.pdf",
            ),
            (
                "http://e.com/dl",
                Some("../../.bashrc"),
                Some("text/plain"),
                "bashrc.txt",
            ),
            ("http://e.com/dl", Some("C:\\evil\\x.exe"), None, "x.exe"),
            (
                "http://e.com/dl",
                Some("report"),
                Some("application/pdf"),
                "report.pdf",
            ),
            // Keeps the extension it has, even if the type disagrees.
            (
                "http://e.com/a.tar.gz",
                None,
                Some("application/x-gzip"),
                "a.tar.gz",
            ),
            (
                "http://e.com/data.bin",
                None,
                Some("application/octet-stream"),
                "data.bin",
            ),
            (
                "http://e.com/blob",
                None,
                Some("application/octet-stream"),
                "blob",
            ),
            (
                "http://e.com/v2.0%20notes",
                None,
                Some("text/plain"),
                "v2.0 notes.txt",
            ),
            ("http://e.com/AUX.txt", None, Some("text/plain"), "AUX_.txt"),
            ("http://e.com/....png", None, Some("image/png"), "png.png"),
        ];
        for (u, disposition, ct, want) in cases {
            assert_eq!(other(u, *disposition, *ct), *want, "{u} {disposition:?}");
        }
    }

    #[test]
    fn candidates_number_and_stay_bounded() {
        let name = FileName::bounded("Title".into(), ".html".into());
        assert_eq!(candidate(&name, 1), "Title.html");
        assert_eq!(candidate(&name, 2), "Title (2).html");
        assert_eq!(candidate(&name, 13), "Title (13).html");

        // Multi-byte characters are never cut, and the total stays within bounds.
        let name = FileName::bounded("é".repeat(200), ".html".into());
        for n in [1, 2, 100, 100_000] {
            let c = candidate(&name, n);
            assert!(c.len() <= MAX_NAME_BYTES, "{n}: {} bytes", c.len());
            assert!(c.ends_with(".html"));
            assert!(c.len() > MAX_NAME_BYTES - 12, "{n}: too short: {}", c.len());
        }
        // Truncation never leaves a trailing space or dot before the suffix.
        let mut stem = "a".repeat(MAX_NAME_BYTES - 6);
        stem.push_str(" . b");
        let c = candidate(&FileName::bounded(stem, ".html".into()), 1);
        assert!(!c.contains(" .html") && !c.contains("..html"), "{c}");

        // A name given with -o is kept as is.
        let name = FileName::verbatim("out.html");
        assert_eq!(candidate(&name, 1), "out.html");
        assert_eq!(candidate(&name, 2), "out (2).html");
        assert_eq!(candidate(&FileName::verbatim("README"), 3), "README (3)");
        assert_eq!(candidate(&FileName::verbatim(".env"), 2), ".env (2)");
    }

    #[test]
    fn sanitize_cases() {
        let cases: &[(&str, &str)] = &[
            ("plain", "plain"),
            ("  lots   of\n\nspace  ", "lots of space"),
            ("a/b\\c:d*e?f\"g<h>i|j", "a_b_c_d_e_f_g_h_i_j"),
            ("...", ""),
            ("-rf", "rf"),
            ("trailing dot.", "trailing dot"),
            ("\u{FEFF}bom", "bom"),
            ("tab\there", "tab here"),
        ];
        for (raw, want) in cases {
            assert_eq!(sanitize(raw), *want, "{raw:?}");
        }
    }
}
