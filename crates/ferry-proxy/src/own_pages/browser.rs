//! The cache browser (admin clients only): find stored objects by URL
//! substring or prefix, see one object's headers, freshness and hits, and
//! purge it. A purge is a POST with the page's CSRF token, answered with a
//! redirect back to the search it came from.

use std::fmt::Write as _;

use bytes::Bytes;
use ferry_cache::{BrowseOrder, BrowseQuery, CacheKey, ObjectDetail, ObjectSummary};
use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use subtle::ConstantTimeEq;

use super::parts::{bytes_text, param};
use crate::body::{ProxyBody, full};
use crate::cache_rules::CacheRule;
use crate::error::{PolicyError, ProxyError, RequestError};
use crate::pages::{escape, html_response};
use crate::state::ProxyState;

const RESULTS: usize = 200;
const TOP_OBJECTS: usize = 10;
/// Largest purge form accepted.
const FORM_LIMIT: usize = 16 * 1024;

/// The largest and the most-hit objects, for the dashboard.
pub fn object_tables(html: &mut String, state: &ProxyState) {
    let Some(cache) = &state.cache else {
        html.push_str("<p class=\"note\">The cache is off.</p>\n");
        return;
    };
    html.push_str("<div class=\"grid wide\">\n");
    for (title, id, order) in [
        ("Largest cached objects", "largest", BrowseOrder::Largest),
        ("Most-hit cached objects", "most-hit", BrowseOrder::MostHit),
    ] {
        let found = cache.browse(&BrowseQuery {
            text: String::new(),
            prefix: false,
            order,
            limit: TOP_OBJECTS,
        });
        let _ = writeln!(html, "<div><h2>{title}</h2>");
        objects_table(html, id, &found, None);
        html.push_str("</div>\n");
    }
    html.push_str("</div>\n");
}

pub fn search_form(html: &mut String, text: &str, prefix: bool) {
    let _ = write!(
        html,
        "<h2 id=\"cache-browser\">Cache browser</h2>\n<form method=\"get\" action=\"/cache\">\
<input type=\"search\" name=\"q\" value=\"{}\" size=\"50\" placeholder=\"part of a URL\"> \
<label><input type=\"checkbox\" name=\"match\" value=\"prefix\"{}> URL starts with it</label> \
<button type=\"submit\">Search</button></form>\n",
        escape(text),
        if prefix { " checked" } else { "" },
    );
}

/// `GET /cache?q=TEXT[&match=prefix][&purged=URL]`.
pub fn search(state: &ProxyState, query: &str) -> Response<ProxyBody> {
    let text = param(query, "q").unwrap_or_default();
    let prefix = param(query, "match").as_deref() == Some("prefix");
    let mut html = String::from(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Cache browser — Ferry</title>\
<link rel=\"stylesheet\" href=\"/assets/ferry.css\"></head><body>\n<p><a href=\"/\">← dashboard</a></p>\n",
    );
    if let Some(purged) = param(query, "purged") {
        let _ = writeln!(
            html,
            "<p id=\"message\"><strong>Purged</strong> <code>{}</code></p>",
            escape(&purged)
        );
    }
    if let Some(missing) = param(query, "missing") {
        let _ = writeln!(
            html,
            "<p id=\"message\">Not in the cache: <code>{}</code></p>",
            escape(&missing)
        );
    }
    search_form(&mut html, &text, prefix);
    match &state.cache {
        None => html.push_str("<p class=\"note\">The cache is off.</p>\n"),
        Some(cache) => {
            let found = cache.browse(&BrowseQuery {
                text: text.clone(),
                prefix,
                order: BrowseOrder::Recent,
                limit: RESULTS,
            });
            let _ = writeln!(
                html,
                "<p>{} object{} shown (newest first, at most {RESULTS}).</p>",
                found.len(),
                if found.len() == 1 { "" } else { "s" }
            );
            let back = format!("/cache?{query}");
            objects_table(
                &mut html,
                "results",
                &found,
                Some((&state.csrf_token, &back)),
            );
        }
    }
    html.push_str("</body></html>\n");
    html_response(StatusCode::OK, html)
}

fn objects_table(
    html: &mut String,
    id: &str,
    objects: &[ObjectSummary],
    purge: Option<(&str, &str)>,
) {
    let _ = write!(
        html,
        "<table><thead><tr><th>URL</th><th class=\"n\">status</th><th class=\"n\">size</th>\
<th class=\"n\">hits</th>{}</tr></thead><tbody id=\"{id}\">",
        if purge.is_some() { "<th></th>" } else { "" }
    );
    for o in objects {
        let _ = write!(
            html,
            "<tr><td class=\"url\"><a href=\"/cache/object?id={id}\">{url}</a></td>\
<td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>",
            o.status,
            bytes_text(o.bytes),
            o.hits,
            id = escape(&o.id),
            url = escape(&o.url),
        );
        if let Some((token, back)) = purge {
            let _ = write!(html, "<td>{}</td>", purge_form(token, &o.url, back));
        }
        html.push_str("</tr>");
    }
    html.push_str("</tbody></table>\n");
}

fn purge_form(token: &str, url: &str, back: &str) -> String {
    format!(
        "<form class=\"inline\" method=\"post\" action=\"/cache/purge\">\
<input type=\"hidden\" name=\"csrf\" value=\"{}\"><input type=\"hidden\" name=\"url\" value=\"{}\">\
<input type=\"hidden\" name=\"back\" value=\"{}\"><button type=\"submit\" class=\"purge\">Purge</button></form>",
        escape(token),
        escape(url),
        escape(back)
    )
}

/// `GET /cache/object?id=ID`: one object's headers, freshness and hits.
pub async fn object(state: &ProxyState, query: &str) -> Result<Response<ProxyBody>, ProxyError> {
    let cache = state.cache.as_ref().ok_or(RequestError::NotCached)?;
    let id = param(query, "id").unwrap_or_default();
    let detail = cache
        .object_detail(&id)
        .await
        .ok_or(RequestError::NotCached)?;
    let mut html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Cached object — Ferry</title>\
<link rel=\"stylesheet\" href=\"/assets/ferry.css\"></head><body>\n<p><a href=\"/\">← dashboard</a> · <a href=\"/cache\">cache browser</a></p>\n\
<h1 class=\"url\">{}</h1>\n<table id=\"object\">",
        escape(&detail.url)
    );
    let ruled = ruled_freshness(state, &detail);
    let (lifetime_secs, fresh) = match &ruled {
        Some((_, lifetime)) => (*lifetime, detail.age_secs < *lifetime),
        None => (detail.lifetime_secs, detail.fresh),
    };
    let rule_text = match &ruled {
        Some((rule, _)) => format!("{} ({})", rule.name, rule.summary()),
        None => "none (the origin's own freshness)".to_string(),
    };
    let rows: [(&str, String); 8] = [
        ("Status", detail.status.to_string()),
        ("Size", bytes_text(detail.bytes)),
        ("Hits since the proxy started", detail.hits.to_string()),
        ("Stored", httpdate::fmt_http_date(detail.stored_at)),
        ("Age", format!("{} s", detail.age_secs)),
        ("Cache rule", rule_text),
        ("Freshness lifetime", format!("{lifetime_secs} s")),
        (
            "Fresh now",
            if fresh {
                "yes".to_string()
            } else {
                "no (stale: revalidated on next use)".to_string()
            },
        ),
    ];
    for (name, value) in rows {
        let _ = write!(html, "<tr><th>{name}</th><td>{}</td></tr>", escape(&value));
    }
    if !detail.vary.is_empty() {
        let _ = write!(
            html,
            "<tr><th>Varies on</th><td>{}</td></tr>",
            escape(&detail.vary.join(", "))
        );
    }
    html.push_str("</table>\n<h2>Stored response headers</h2>\n<table id=\"headers\">");
    for (name, value) in &detail.headers {
        let _ = write!(
            html,
            "<tr><th>{}</th><td class=\"url\">{}</td></tr>",
            escape(name),
            escape(value)
        );
    }
    let _ = writeln!(
        html,
        "</table>\n<p>{}</p>\n</body></html>",
        purge_form(&state.csrf_token, &detail.url, "/cache")
    );
    Ok(html_response(StatusCode::OK, html))
}

/// The operator's cache rule for a stored object's URL (by host and path:
/// the words a rule wants from the client's request are not stored), and
/// the freshness lifetime it gives the object, when it decides it.
fn ruled_freshness<'a>(
    state: &'a ProxyState,
    detail: &ObjectDetail,
) -> Option<(&'a CacheRule, u64)> {
    let uri: http::Uri = detail.url.parse().ok()?;
    let rule = state.cache_rules.find_for_url(uri.host()?, uri.path())?;
    let mut headers = http::HeaderMap::new();
    for (name, value) in &detail.headers {
        if let (Ok(name), Ok(value)) = (
            http::header::HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            headers.append(name, value);
        }
    }
    let status = StatusCode::from_u16(detail.status).ok()?;
    let origin = std::time::Duration::from_secs(detail.lifetime_secs);
    let lifetime = rule.freshness.lifetime(status, &headers, origin)?;
    Some((rule, lifetime.as_secs()))
}

/// Whether `back` is a path on this proxy and nothing else: browsers read
/// `//host` and `/\\host` (and those with tabs or newlines inside) as
/// another site.
fn is_local_path(back: &str) -> bool {
    back.starts_with('/')
        && !matches!(back.as_bytes().get(1), Some(b'/' | b'\\'))
        && back.bytes().all(|b| b.is_ascii_graphic() && b != b'\\')
}

/// `POST /cache/purge` (form: `csrf`, `url`, `back`): removes every stored
/// variant of `url`, then sends the browser back to `back` (a local path).
pub async fn purge_from_form(
    state: &ProxyState,
    req: Request<Incoming>,
) -> Result<Response<ProxyBody>, ProxyError> {
    let form: Bytes = Limited::new(req.into_body(), FORM_LIMIT)
        .collect()
        .await
        .map(|b| b.to_bytes())
        .map_err(|_| RequestError::BadForm)?;
    let form = std::str::from_utf8(&form).map_err(|_| RequestError::BadForm)?;
    let token = param(form, "csrf").unwrap_or_default();
    if !bool::from(token.as_bytes().ct_eq(state.csrf_token.as_bytes())) {
        return Err(PolicyError::BadCsrfToken.into());
    }
    let url = param(form, "url").ok_or(RequestError::BadForm)?;
    let back = param(form, "back")
        .filter(|b| is_local_path(b))
        .unwrap_or_else(|| "/cache".into());
    let cache = state.cache.as_ref().ok_or(RequestError::NotCached)?;
    let key = url
        .parse::<http::Uri>()
        .ok()
        .and_then(|u| CacheKey::from_uri(&u))
        .ok_or(RequestError::BadForm)?;
    let removed = cache.purge(&key).await;
    let flag = if removed { "purged" } else { "missing" };
    let encoded: String = form_urlencoded::byte_serialize(url.as_bytes()).collect();
    let sep = if back.contains('?') { '&' } else { '?' };
    let location = format!("{back}{sep}{flag}={encoded}");
    let mut resp = Response::new(full(String::new()));
    *resp.status_mut() = StatusCode::SEE_OTHER;
    if let Ok(v) = HeaderValue::from_str(&location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}
