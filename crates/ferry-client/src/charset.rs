//! Which character encoding an HTML page is in, following the order of the
//! WHATWG HTML "encoding sniffing algorithm": a byte order mark, then the
//! `charset` of `Content-Type`, then a prescan of the first 1024 bytes for
//! `<meta charset>` / `<meta http-equiv="Content-Type" content="...">`; when
//! nothing is declared, UTF-8 if the bytes are valid UTF-8, else windows-1252.
//! Decoding itself is `encoding_rs`.
//!
//! The prescan is written out here because neither `encoding_rs` nor
//! html5ever/scraper implements it (html5ever expects already-decoded text),
//! and the chardet-style crates guess statistically instead of reading the
//! declaration.

use encoding_rs::{Encoding, UTF_8, WINDOWS_1252};

/// How many leading bytes the `<meta>` prescan looks at (WHATWG: 1024).
pub const PRESCAN_LIMIT: usize = 1024;

/// The encoding to decode an HTML page with.
pub fn detect(content_type: Option<&str>, head: &[u8]) -> &'static Encoding {
    if let Some((enc, _)) = Encoding::for_bom(head) {
        return enc;
    }
    if let Some(enc) = content_type.and_then(charset_param) {
        return enc;
    }
    if let Some(enc) = prescan(&head[..head.len().min(PRESCAN_LIMIT)]) {
        return enc;
    }
    match std::str::from_utf8(head) {
        Ok(_) => UTF_8,
        // Valid up to a character cut off by the end of `head`: still UTF-8.
        Err(e) if e.error_len().is_none() => UTF_8,
        Err(_) => WINDOWS_1252,
    }
}

/// Decodes `bytes` (a BOM, if any, wins and is removed).
pub fn decode(bytes: &[u8], encoding: &'static Encoding) -> String {
    encoding.decode(bytes).0.into_owned()
}

/// The encoding named by the `charset` parameter of a `Content-Type` value.
pub fn charset_param(content_type: &str) -> Option<&'static Encoding> {
    let mime: mime::Mime = content_type.trim().parse().ok()?;
    let label = mime.get_param(mime::CHARSET)?;
    Encoding::for_label(label.as_str().as_bytes())
}

/// WHATWG "prescan a byte stream to determine its encoding".
pub fn prescan(bytes: &[u8]) -> Option<&'static Encoding> {
    let mut pos = 0;
    while pos < bytes.len() {
        let rest = &bytes[pos..];
        if rest.starts_with(b"<!--") {
            // "<!-->" closes at once: the search starts at the second '-'.
            pos = match find(&bytes[pos + 2..], b"-->") {
                Some(i) => pos + 2 + i + 3,
                None => return None,
            };
        } else if starts_with_ci(rest, b"<meta")
            && rest.get(5).is_some_and(|&b| is_space(b) || b == b'/')
        {
            pos += 6;
            if let Some(enc) = meta_attributes(bytes, &mut pos) {
                return Some(enc);
            }
        } else if rest.len() > 2
            && rest[0] == b'<'
            && (rest[1].is_ascii_alphabetic() || (rest[1] == b'/' && rest[2].is_ascii_alphabetic()))
        {
            // Any other tag: skip its name and attributes.
            while pos < bytes.len() && !is_space(bytes[pos]) && bytes[pos] != b'>' {
                pos += 1;
            }
            while get_attribute(bytes, &mut pos).is_some() {}
            pos += 1;
        } else if rest.starts_with(b"<!") || rest.starts_with(b"</") || rest.starts_with(b"<?") {
            pos = match rest.iter().position(|&b| b == b'>') {
                Some(i) => pos + i + 1,
                None => return None,
            };
        } else {
            pos += 1;
        }
    }
    None
}

/// The attributes of one `<meta>` tag; the encoding it declares, if it does.
fn meta_attributes(bytes: &[u8], pos: &mut usize) -> Option<&'static Encoding> {
    let mut seen: Vec<Vec<u8>> = Vec::new();
    let mut got_pragma = false;
    let mut need_pragma: Option<bool> = None;
    let mut charset: Option<&'static Encoding> = None;
    while let Some((name, value)) = get_attribute(bytes, pos) {
        if seen.contains(&name) {
            continue;
        }
        match name.as_slice() {
            b"http-equiv" => got_pragma |= value.eq_ignore_ascii_case(b"content-type"),
            b"content" if charset.is_none() => {
                if let Some(enc) = charset_from_meta_content(&value) {
                    charset = Some(enc);
                    need_pragma = Some(true);
                }
            }
            b"charset" => {
                charset = Encoding::for_label(&value);
                need_pragma = Some(false);
            }
            _ => {}
        }
        seen.push(name);
    }
    match need_pragma {
        None => return None,
        Some(true) if !got_pragma => return None,
        _ => {}
    }
    let enc = charset?;
    // A page cannot really be UTF-16 if its ASCII prescan worked.
    if enc == encoding_rs::UTF_16BE || enc == encoding_rs::UTF_16LE {
        return Some(UTF_8);
    }
    if enc == encoding_rs::X_USER_DEFINED {
        return Some(WINDOWS_1252);
    }
    Some(enc)
}

/// WHATWG "get an attribute" for the prescan: name lowercased, value lowercased.
/// Leaves `pos` on the `>` that ends the tag when there are no more attributes.
fn get_attribute(bytes: &[u8], pos: &mut usize) -> Option<(Vec<u8>, Vec<u8>)> {
    while *pos < bytes.len() && (is_space(bytes[*pos]) || bytes[*pos] == b'/') {
        *pos += 1;
    }
    if *pos >= bytes.len() || bytes[*pos] == b'>' {
        return None;
    }
    let mut name = Vec::new();
    let mut value = Vec::new();
    loop {
        let b = *bytes.get(*pos)?;
        if b == b'=' && !name.is_empty() {
            *pos += 1;
            break;
        } else if is_space(b) {
            while *pos < bytes.len() && is_space(bytes[*pos]) {
                *pos += 1;
            }
            if bytes.get(*pos) != Some(&b'=') {
                return Some((name, value));
            }
            *pos += 1;
            break;
        } else if b == b'/' || b == b'>' {
            return Some((name, value));
        } else {
            name.push(b.to_ascii_lowercase());
            *pos += 1;
        }
    }
    while *pos < bytes.len() && is_space(bytes[*pos]) {
        *pos += 1;
    }
    let b = *bytes.get(*pos)?;
    if b == b'"' || b == b'\'' {
        *pos += 1;
        loop {
            let c = *bytes.get(*pos)?;
            *pos += 1;
            if c == b {
                return Some((name, value));
            }
            value.push(c.to_ascii_lowercase());
        }
    }
    if b == b'>' {
        return Some((name, value));
    }
    loop {
        let c = *bytes.get(*pos)?;
        if is_space(c) || c == b'>' {
            return Some((name, value));
        }
        value.push(c.to_ascii_lowercase());
        *pos += 1;
    }
}

/// WHATWG "extracting a character encoding from a meta element" (the value of
/// `content`, e.g. `text/html; charset=Shift_JIS`).
pub fn charset_from_meta_content(content: &[u8]) -> Option<&'static Encoding> {
    let mut pos = 0;
    loop {
        let i = find_ci(&content[pos..], b"charset")?;
        pos += i + 7;
        while pos < content.len() && is_space(content[pos]) {
            pos += 1;
        }
        if content.get(pos) == Some(&b'=') {
            pos += 1;
            break;
        }
        // Not followed by '=': look for the next "charset".
    }
    while pos < content.len() && is_space(content[pos]) {
        pos += 1;
    }
    let rest = content.get(pos..)?;
    let label = match rest.first()? {
        q @ (b'"' | b'\'') => {
            let end = rest[1..].iter().position(|b| b == q)?;
            &rest[1..1 + end]
        }
        _ => {
            let end = rest
                .iter()
                .position(|&b| is_space(b) || b == b';')
                .unwrap_or(rest.len());
            &rest[..end]
        }
    };
    Encoding::for_label(label)
}

fn is_space(b: u8) -> bool {
    matches!(b, b'\t' | b'\n' | 0x0c | b'\r' | b' ')
}

fn starts_with_ci(hay: &[u8], prefix: &[u8]) -> bool {
    hay.len() >= prefix.len() && hay[..prefix.len()].eq_ignore_ascii_case(prefix)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn find_ci(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detection_order_and_sources() {
        let cases: &[(Option<&str>, &[u8], &str)] = &[
            // BOM beats everything.
            (
                Some("text/html; charset=iso-8859-1"),
                b"\xEF\xBB\xBF<title>x</title>",
                "UTF-8",
            ),
            (None, b"\xFF\xFEx\0", "UTF-16LE"),
            // Content-Type charset beats <meta>.
            (
                Some("text/html; charset=ISO-8859-1"),
                b"<meta charset=shift_jis>",
                "windows-1252",
            ),
            (Some("text/html;charset=\"Shift_JIS\""), b"", "Shift_JIS"),
            // Unknown header label is ignored; meta used.
            (
                Some("text/html; charset=bogus"),
                b"<meta charset=euc-jp>",
                "EUC-JP",
            ),
            (
                Some("text/html"),
                b"<meta charset=\"Shift_JIS\">",
                "Shift_JIS",
            ),
            (None, b"<html><head><meta charset='koi8-r'/>", "KOI8-R"),
            (
                None,
                b"<meta http-equiv=\"Content-Type\" content=\"text/html; charset=iso-8859-1\">",
                "windows-1252",
            ),
            // content= without http-equiv does not count.
            (
                None,
                b"<meta content=\"text/html; charset=koi8-r\">\xE9t\xE9",
                "windows-1252",
            ),
            // Declared UTF-16 in a meta means UTF-8.
            (None, b"<meta charset=utf-16le>", "UTF-8"),
            // Inside a comment: ignored.
            (None, b"<!-- <meta charset=koi8-r> -->caf\xC3\xA9", "UTF-8"),
            // A meta inside another tag's attribute value is not a meta.
            (
                None,
                b"<div title='<meta charset=koi8-r>'>caf\xC3\xA9",
                "UTF-8",
            ),
            // Nothing declared: valid UTF-8 stays UTF-8, otherwise windows-1252.
            (None, b"<title>caf\xC3\xA9</title>", "UTF-8"),
            (None, b"<title>caf\xC3", "UTF-8"),
            (None, b"<title>caf\xE9</title>", "windows-1252"),
        ];
        for (ct, head, want) in cases {
            assert_eq!(detect(*ct, head).name(), *want, "{ct:?} {head:?}");
        }
    }

    #[test]
    fn prescan_stops_at_1024_bytes() {
        let mut page = vec![b' '; 1100];
        page.extend_from_slice(b"<meta charset=koi8-r>");
        assert_eq!(detect(None, &page).name(), "UTF-8");
    }

    #[test]
    fn meta_content_values() {
        let cases: &[(&[u8], Option<&str>)] = &[
            (b"text/html; charset=Shift_JIS", Some("Shift_JIS")),
            (b"text/html;charset = \"euc-kr\"", Some("EUC-KR")),
            (b"text/html; charset='latin1'", Some("windows-1252")),
            (b"text/html; charset=\"unterminated", None),
            (b"text/html", None),
            (b"text/html; charsetx; charset=utf-8", Some("UTF-8")),
        ];
        for (content, want) in cases {
            assert_eq!(
                charset_from_meta_content(content).map(|e| e.name()),
                *want,
                "{content:?}"
            );
        }
    }

    #[test]
    fn decodes_shift_jis_and_latin1() {
        assert_eq!(
            decode(b"\x93\xfa\x96\x7b\x8c\xea", encoding_rs::SHIFT_JIS),
            "日本語"
        );
        assert_eq!(decode(b"Caf\xe9", WINDOWS_1252), "Café");
    }
}
