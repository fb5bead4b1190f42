//! Helpers shared by the cache's tests: a config, requests and responses, a
//! complete store, and a hit's status and body.

use std::time::SystemTime;

use bytes::Bytes;
use http::{request, response};
use http_body_util::BodyExt;

use super::handle::Cache;
use super::lookup::Hit;
use crate::config::CacheConfig;
use crate::key::CacheKey;

pub(crate) fn config(dir: &std::path::Path) -> CacheConfig {
    CacheConfig::new(dir.to_path_buf())
}

/// The key of a test request (the proxy builds it once per request).
pub(crate) fn key_of(req: &request::Parts) -> CacheKey {
    CacheKey::from_uri(&req.uri).unwrap()
}

pub(crate) fn get(uri: &str, headers: &[(&str, &str)]) -> request::Parts {
    let mut b = http::Request::builder().uri(uri);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(()).unwrap().into_parts().0
}

pub(crate) fn ok(headers: &[(&str, &str)]) -> response::Parts {
    let mut b = http::Response::builder().status(200);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(()).unwrap().into_parts().0
}

pub(crate) async fn store(
    cache: &Cache,
    req: &request::Parts,
    resp: &response::Parts,
    body: &[u8],
) {
    store_at(cache, req, resp, body, SystemTime::now()).await;
}

/// [`store`], as if the response had arrived at `at`.
pub(crate) async fn store_at(
    cache: &Cache,
    req: &request::Parts,
    resp: &response::Parts,
    body: &[u8],
    at: SystemTime,
) {
    let mut w = cache
        .begin_store(&key_of(req), req, resp, at, at)
        .await
        .unwrap();
    for chunk in body.chunks(1000) {
        w.push(&Bytes::copy_from_slice(chunk));
    }
    w.finish().await.unwrap();
}

pub(crate) async fn body_of(hit: Hit, req: &request::Parts) -> (u16, Bytes) {
    let resp = hit.into_response(req);
    let status = resp.status().as_u16();
    (status, resp.into_body().collect().await.unwrap().to_bytes())
}
