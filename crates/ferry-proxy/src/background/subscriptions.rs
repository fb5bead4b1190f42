//! Keeping the subscribed lists (`[[lists]]`) fresh. At start each list's
//! last good copy is read from disk and put in force at once (a list that
//! cannot be fetched at start still blocks); then each list is fetched when
//! its copy is older than its refresh interval, every interval after, and
//! on SIGHUP. A list is fetched through the proxy's own phases (the network
//! rules, the fetch slots, the cache), read up to `max_list_size`, parsed,
//! saved and swapped in whole; a fetch that fails, is too big, or parses to
//! nothing keeps the last good copy in force and is reported (log, stderr,
//! dashboard).

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use ferry_cache::CacheKey;
use http::{Request, StatusCode, Uri};
use http_body_util::BodyExt;

use crate::cache_rules::rule::parse_duration;
use crate::config::ListConfig;
use crate::groups::lists::{ListStore, parse_subscribed_list};
use crate::groups::subscriptions::ListStatus;
use crate::phases::caching::{self, CacheRequest};
use crate::phases::forward;
use crate::state::ProxyState;
use crate::upstream::no_body;

/// How often each list is fetched when its config says nothing.
const DEFAULT_REFRESH: Duration = Duration::from_secs(24 * 3600);

/// Starts keeping every configured list fresh.
pub fn start(state: &Arc<ProxyState>) {
    for list in &state.config.lists {
        let refresh = list
            .refresh
            .as_deref()
            .and_then(|r| parse_duration(r).ok())
            .unwrap_or(DEFAULT_REFRESH)
            .max(Duration::from_secs(60));
        load_last_good(state, list);
        let state = state.clone();
        let list = list.clone();
        tokio::spawn(async move {
            let mut due = first_due(&state, &list, refresh);
            loop {
                tokio::select! {
                    () = tokio::time::sleep(due) => {}
                    () = state.refresh_lists.notified() => {}
                }
                fetch_once(&state, &list).await;
                due = refresh;
            }
        });
    }
}

/// Puts the list's copy on disk in force, if there is one.
fn load_last_good(state: &ProxyState, list: &ListConfig) {
    let store = ListStore::new(state.lists_dir());
    let Some((bytes, saved)) = store.load(&list.name) else {
        return;
    };
    match parse_subscribed_list(&bytes, &format!("list {}", list.name)) {
        Ok(parsed) => {
            let status = ListStatus {
                domains: Arc::new(parsed.domains),
                entries: parsed.entries,
                skipped: parsed.skipped,
                last_success: Some(saved),
                last_error: None,
                last_attempt: None,
            };
            update(state, &list.name, status);
        }
        Err(e) => {
            tracing::warn!(list = %list.name, error = %e, "the saved copy of a list is unusable")
        }
    }
}

/// How long until the list is due: now if it has no copy, else when its
/// copy is `refresh` old.
fn first_due(state: &ProxyState, list: &ListConfig, refresh: Duration) -> Duration {
    let saved = state
        .lists
        .load()
        .status(&list.name)
        .and_then(|s| s.last_success);
    match saved.and_then(|t| SystemTime::now().duration_since(t).ok()) {
        Some(age) => refresh.saturating_sub(age),
        None => Duration::ZERO,
    }
}

/// Fetches the list once and puts it in force, or records why not.
pub async fn fetch_once(state: &Arc<ProxyState>, list: &ListConfig) {
    let attempt = SystemTime::now();
    let result = fetch(state, list).await.and_then(|bytes| {
        let parsed = parse_subscribed_list(&bytes, &format!("list {}", list.name))
            .map_err(|e| e.to_string())?;
        Ok((bytes, parsed))
    });
    let previous = state.lists.load().status(&list.name).cloned();
    let mut status = previous.map(|s| (*s).clone()).unwrap_or_default();
    status.last_attempt = Some(attempt);
    match result {
        Ok((bytes, parsed)) => {
            let store = ListStore::new(state.lists_dir());
            if let Err(e) = store.save(&list.name, &bytes) {
                tracing::warn!(list = %list.name, error = %e, "could not keep the list's copy on disk");
            }
            tracing::info!(list = %list.name, entries = parsed.entries, skipped = parsed.skipped, "list refreshed");
            status.domains = Arc::new(parsed.domains);
            status.entries = parsed.entries;
            status.skipped = parsed.skipped;
            status.last_success = Some(attempt);
            status.last_error = None;
        }
        Err(why) => {
            tracing::warn!(list = %list.name, error = %why, "list not refreshed; keeping the last good copy");
            eprintln!(
                "ferry: list {} not refreshed ({why}); keeping the last good copy ({} entries)",
                list.name, status.entries
            );
            status.last_error = Some(why);
        }
    }
    update(state, &list.name, status);
}

fn update(state: &ProxyState, name: &str, status: ListStatus) {
    let next = state.lists.load().with(name, status);
    state.lists.store(Arc::new(next));
}

/// The list's bytes, through the proxy's own phases, at most
/// `max_list_size` of them.
async fn fetch(state: &Arc<ProxyState>, list: &ListConfig) -> Result<Bytes, String> {
    let uri: Uri = list
        .url
        .parse()
        .map_err(|e| format!("the url {:?} is not usable: {e}", list.url))?;
    let host = uri
        .host()
        .ok_or_else(|| String::from("the url names no host"))?
        .to_string();
    let mut req = Request::get(uri.clone())
        .body(())
        .map_err(|e| e.to_string())?
        .into_parts()
        .0;
    req.headers.insert(
        http::header::USER_AGENT,
        http::HeaderValue::from_static(concat!("ferry/", env!("CARGO_PKG_VERSION"))),
    );
    // The proxy fetches for itself: a client on this host.
    let client = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let response = match (state.cache.as_ref(), CacheKey::from_uri(&uri)) {
        (Some(cache), Some(key)) => {
            let cx = CacheRequest {
                state,
                cache,
                key: &key,
                client,
                host: &host,
                rule: None,
            };
            caching::answer(cx, req).await.result
        }
        _ => forward::fetch(state, client, req, no_body())
            .await
            .map(|fetched| forward::relay(state, &host, fetched, None)),
    }
    .map_err(|e| e.to_string())?;
    if response.status() != StatusCode::OK {
        return Err(format!("the server answered {}", response.status()));
    }
    let limit = state.config.max_list_size.as_u64();
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    // Read a frame at a time, so a list past the limit is cut off as soon
    // as it passes it (never held whole).
    let mut body = response.into_body();
    let mut list = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| format!("the body broke off: {e}"))?;
        if let Ok(data) = frame.into_data() {
            if list.len() + data.len() > limit {
                return Err(format!(
                    "larger than max_list_size ({})",
                    state.config.max_list_size
                ));
            }
            list.extend_from_slice(&data);
        }
    }
    Ok(list.freeze())
}
