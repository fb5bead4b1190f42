//! `/ca`: the local CA's certificate for download (PEM and DER) and how to
//! install it. Read from the CA directory on each request, so a CA created
//! while the proxy runs shows up at once; only the certificate is ever read
//! out of it here, never served from the key file.

use std::path::Path;

use http::header::{self, HeaderValue};
use http::{Response, StatusCode};

use crate::body::{ProxyBody, full};
use crate::error::{ProxyError, RequestError};
use crate::intercept::ca::LocalCa;
use crate::pages::{PAGE_STYLE, escape, html_response};

pub const PEM_PATH: &str = "/ca/ferry-ca.pem";
pub const DER_PATH: &str = "/ca/ferry-ca.der";

/// Answers `/ca`, [`PEM_PATH`] and [`DER_PATH`].
pub fn ca_response(dir: &Path, path: &str) -> Result<Response<ProxyBody>, ProxyError> {
    let ca = LocalCa::load(dir);
    match (path, ca) {
        ("/ca" | "/ca/", ca) => Ok(install_page(dir, ca.ok().as_ref())),
        (PEM_PATH, Ok(ca)) => Ok(download(
            ca.cert_pem().as_bytes().to_vec(),
            "application/x-pem-file",
        )),
        (DER_PATH, Ok(ca)) => Ok(download(
            ca.cert_der().to_vec(),
            "application/x-x509-ca-cert",
        )),
        _ => Err(RequestError::UnknownPage.into()),
    }
}

fn download(body: Vec<u8>, content_type: &'static str) -> Response<ProxyBody> {
    let mut resp = Response::new(full(body));
    let headers = resp.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

fn install_page(dir: &Path, ca: Option<&LocalCa>) -> Response<ProxyBody> {
    let body = match ca {
        None => format!(
            "<p>This proxy has no CA yet. On the proxy's machine, run \
<code>ferry ca init</code> (it is kept in <code>{}</code>).</p>",
            escape(&dir.display().to_string())
        ),
        Some(ca) => format!(
            "<p>Download: <a href=\"{PEM_PATH}\">ferry-ca.pem</a> · \
<a href=\"{DER_PATH}\">ferry-ca.der</a></p>\n\
<p>SHA-256 fingerprint: <code id=\"fingerprint\">{fingerprint}</code><br>\
Expires: {expires}</p>\n\
<p>Check that the fingerprint your browser shows is this one before you trust it.</p>\n\
<h2>System store (Debian, Ubuntu)</h2>\n\
<pre>sudo cp ferry-ca.pem /usr/local/share/ca-certificates/ferry-ca.crt\n\
sudo update-ca-certificates</pre>\n\
<h2>Firefox (its own store)</h2>\n\
<p>Settings → Privacy &amp; Security → Certificates → View Certificates → \
Authorities → Import, choose <code>ferry-ca.pem</code> and tick \
“Trust this CA to identify websites”.</p>\n\
<h2>Chromium and Chrome on Linux (NSS)</h2>\n\
<pre>sudo apt-get install libnss3-tools\n\
certutil -d sql:$HOME/.pki/nssdb -A -t \"C,,\" -n \"Ferry local CA\" -i ferry-ca.pem</pre>\n\
<h2>What this means</h2>\n\
<p>A device that trusts this CA accepts any certificate the proxy makes, for any \
site. Install it only on devices whose HTTPS traffic you mean to pass through \
this proxy, and remove it when you stop. The CA's key never leaves the proxy's \
machine.</p>",
            fingerprint = ca.fingerprint(),
            expires = ca.not_after().date(),
        ),
    };
    let html = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Ferry's CA</title>\
<style>{PAGE_STYLE}</style></head><body>\n<h1>Ferry's certificate authority</h1>\n{body}\n\
<footer><a href=\"/\">status</a></footer>\n</body></html>\n"
    );
    html_response(StatusCode::OK, html)
}
