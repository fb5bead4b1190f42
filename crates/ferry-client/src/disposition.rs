//! The file name a server suggests in `Content-Disposition` (RFC 6266):
//! `filename*` (an RFC 8187 / 5987 extended value, `UTF-8''r%C3%A9sum%C3%A9.pdf`)
//! is preferred over `filename` (token or quoted string).
//!
//! Hand-written because the header grammar is small and the crates for it are
//! either unmaintained or pull in a whole mail parser; percent-decoding is the
//! `percent-encoding` crate and charsets are `encoding_rs`. The result is raw:
//! [`crate::naming`] makes it a safe file name.

use encoding_rs::Encoding;

/// The suggested file name, if the header gives one.
pub fn filename(header: &[u8]) -> Option<String> {
    // Header values should be ASCII; servers send raw UTF-8 (or Latin-1) anyway.
    let text = match std::str::from_utf8(header) {
        Ok(s) => s.to_string(),
        Err(_) => encoding_rs::WINDOWS_1252.decode(header).0.into_owned(),
    };
    let params = parameters(&text);
    let extended = params
        .iter()
        .filter(|(name, _)| name == "filename*")
        .find_map(|(_, value)| ext_value(value));
    extended
        .or_else(|| {
            params
                .iter()
                .find(|(name, _)| name == "filename")
                .map(|(_, value)| value.clone())
        })
        .filter(|name| !name.trim().is_empty())
}

/// `type; name=value; name="quoted; value"` → lowercased names with unquoted values.
/// The disposition type itself is skipped.
fn parameters(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    // Skip the disposition type.
    for c in chars.by_ref() {
        if c == ';' {
            break;
        }
    }
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ';') {
            chars.next();
        }
        if chars.peek().is_none() {
            return out;
        }
        let mut name = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c == ';' {
                break;
            }
            name.push(c);
            chars.next();
        }
        let name = name.trim().to_ascii_lowercase();
        if chars.next() != Some('=') {
            continue; // A parameter without a value.
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => {
                        if let Some(escaped) = chars.next() {
                            value.push(escaped);
                        }
                    }
                    '"' => break,
                    c => value.push(c),
                }
            }
            // Anything between the closing quote and the next ';' is junk.
            while chars.peek().is_some_and(|c| *c != ';') {
                chars.next();
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ';' {
                    break;
                }
                value.push(c);
                chars.next();
            }
            value = value.trim_end().to_string();
        }
        out.push((name, value));
    }
}

/// RFC 8187 `ext-value`: `charset'[language]'percent-encoded-bytes`.
fn ext_value(value: &str) -> Option<String> {
    let mut parts = value.splitn(3, '\'');
    let charset = parts.next()?;
    let _language = parts.next()?;
    let encoded = parts.next()?;
    let bytes: Vec<u8> = percent_encoding::percent_decode_str(encoded).collect();
    let encoding = Encoding::for_label(charset.trim().as_bytes())?;
    let (text, had_errors) = encoding.decode_without_bom_handling(&bytes);
    (!had_errors).then(|| text.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filenames() {
        let cases: &[(&[u8], Option<&str>)] = &[
            (b"attachment; filename=report.pdf", Some("report.pdf")),
            (
                b"attachment; filename=\"two words.pdf\"",
                Some("two words.pdf"),
            ),
            (
                b"attachment; filename*=UTF-8''r%C3%A9sum%C3%A9.pdf",
                Some("résumé.pdf"),
            ),
            // filename* wins, whichever comes first.
            (
                b"attachment; filename=\"fallback.pdf\"; filename*=UTF-8''r%C3%A9sum%C3%A9.pdf",
                Some("résumé.pdf"),
            ),
            (
                b"attachment; filename*=utf-8'en'%E2%82%AC%20rates.txt; filename=rates.txt",
                Some("€ rates.txt"),
            ),
            (
                b"attachment; filename*=ISO-8859-1''caf%E9.txt",
                Some("café.txt"),
            ),
            // A broken filename* falls back to filename.
            (
                b"attachment; filename*=UTF-8''%FF%FE.txt; filename=ok.txt",
                Some("ok.txt"),
            ),
            (
                b"attachment; filename*=nocharset.txt; filename=ok.txt",
                Some("ok.txt"),
            ),
            (
                b"attachment; filename=\"semi;colon \\\"q\\\".txt\"; size=3",
                Some("semi;colon \"q\".txt"),
            ),
            (b"inline; FILENAME=Upper.TXT", Some("Upper.TXT")),
            (b"attachment", None),
            (b"attachment; filename=\"\"", None),
            (b"attachment; size=10", None),
            // Raw UTF-8 in a header, as some servers send.
            (
                "attachment; filename=\"naïve.txt\"".as_bytes(),
                Some("naïve.txt"),
            ),
            // Path parts are kept here; naming strips them.
            (
                b"attachment; filename=\"../../etc/passwd\"",
                Some("../../etc/passwd"),
            ),
        ];
        for (header, want) in cases {
            assert_eq!(
                filename(header).as_deref(),
                *want,
                "{}",
                String::from_utf8_lossy(header)
            );
        }
    }
}
