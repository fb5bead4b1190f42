//! `data:` URLs (RFC 2397), the form every inlined asset takes. Its own file
//! because the fetched assets, the stylesheets and the frames written into a
//! page all need it, and none of them should import another for it.

use base64::Engine;

/// `data:MIME;base64,…`
pub fn data_url(mime: &str, bytes: &[u8]) -> String {
    let mut out = String::with_capacity(mime.len() + 13 + bytes.len().div_ceil(3) * 4);
    out.push_str("data:");
    out.push_str(mime);
    out.push_str(";base64,");
    base64::engine::general_purpose::STANDARD.encode_string(bytes, &mut out);
    out
}
