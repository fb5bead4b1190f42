//! The `/api/stats` answer as `ferry top` reads it: [`Stats`] and its parts,
//! each field read tolerantly (missing, `null` or mistyped: its default).

use anyhow::{anyhow, bail};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// `/api/stats`. Each field defaults when missing or unreadable.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct Stats {
    #[serde(deserialize_with = "lenient")]
    pub version: String,
    #[serde(deserialize_with = "count")]
    pub uptime_seconds: u64,
    #[serde(deserialize_with = "items")]
    pub listen: Vec<String>,
    /// Whether this client sees the per-host and per-request detail.
    #[serde(deserialize_with = "lenient")]
    pub admin: Option<bool>,
    #[serde(deserialize_with = "lenient")]
    pub summary: Summaries,
    #[serde(deserialize_with = "lenient")]
    pub series: Series,
    #[serde(deserialize_with = "lenient")]
    pub fetch: Fetch,
    #[serde(deserialize_with = "count")]
    pub connections_open: u64,
    /// `None`: the proxy runs without a cache.
    #[serde(deserialize_with = "lenient")]
    pub cache: Option<CacheFigures>,
    /// `None` (for `top_blocked` and `recent` too): not given to this client.
    #[serde(deserialize_with = "lenient")]
    pub top_hosts: Option<TopHosts>,
    #[serde(deserialize_with = "some_items")]
    pub top_blocked: Option<Vec<HostCount>>,
    /// Newest first.
    #[serde(deserialize_with = "some_items")]
    pub recent: Option<Vec<Recent>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct Summaries {
    #[serde(deserialize_with = "lenient")]
    pub last_5m: Summary,
    #[serde(deserialize_with = "lenient")]
    pub since_start: Summary,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct Summary {
    #[serde(deserialize_with = "count")]
    pub requests: u64,
    #[serde(deserialize_with = "count")]
    pub hits: u64,
    #[serde(deserialize_with = "lenient")]
    pub request_hit_ratio: Option<f64>,
    #[serde(deserialize_with = "count")]
    pub bytes_from_cache: u64,
    #[serde(deserialize_with = "count")]
    pub bytes_from_origin: u64,
    #[serde(deserialize_with = "lenient")]
    pub byte_hit_ratio: Option<f64>,
    #[serde(deserialize_with = "lenient")]
    pub bytes_saved: Option<u64>,
    #[serde(deserialize_with = "count")]
    pub blocked: u64,
    #[serde(deserialize_with = "count")]
    pub errors: u64,
    #[serde(deserialize_with = "lenient")]
    pub latency_p50_ms: Option<f64>,
    #[serde(deserialize_with = "lenient")]
    pub latency_p95_ms: Option<f64>,
}

/// Series by name, in the proxy's order.
pub(super) type NamedSeries = Vec<(String, Vec<Option<f64>>)>;

/// Per-bucket figures, oldest first; the last is the bucket in progress.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct Series {
    #[serde(deserialize_with = "count")]
    pub interval_seconds: u64,
    /// By outcome, in the proxy's order: from an object of arrays, or from
    /// an array of `[outcome, [...]]` pairs.
    #[serde(deserialize_with = "named_series")]
    pub requests_per_second: NamedSeries,
    #[serde(deserialize_with = "numbers")]
    pub bytes_from_cache: Vec<Option<f64>>,
    #[serde(deserialize_with = "numbers")]
    pub bytes_from_origin: Vec<Option<f64>>,
    #[serde(deserialize_with = "numbers")]
    pub fetch_slots_in_use: Vec<Option<f64>>,
    #[serde(deserialize_with = "numbers")]
    pub fetch_queue_length: Vec<Option<f64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct Fetch {
    #[serde(deserialize_with = "count")]
    pub slots: u64,
    #[serde(deserialize_with = "count")]
    pub in_use: u64,
    #[serde(deserialize_with = "count")]
    pub queued: u64,
    #[serde(deserialize_with = "some_items")]
    pub clients: Option<Vec<ClientQueue>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct ClientQueue {
    #[serde(deserialize_with = "lenient")]
    pub client: String,
    #[serde(deserialize_with = "count")]
    pub holding: u64,
    #[serde(deserialize_with = "count")]
    pub waiting: u64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct CacheFigures {
    #[serde(deserialize_with = "count")]
    pub objects: u64,
    #[serde(deserialize_with = "count")]
    pub bytes: u64,
    #[serde(deserialize_with = "count")]
    pub max_bytes: u64,
    #[serde(deserialize_with = "lenient")]
    pub memory_bytes: Option<u64>,
    #[serde(deserialize_with = "count")]
    pub evictions: u64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct TopHosts {
    #[serde(deserialize_with = "items")]
    pub by_requests: Vec<HostCount>,
    #[serde(deserialize_with = "items")]
    pub by_bytes: Vec<HostCount>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct HostCount {
    #[serde(deserialize_with = "lenient")]
    pub host: String,
    #[serde(deserialize_with = "count")]
    pub requests: u64,
    #[serde(deserialize_with = "count")]
    pub bytes: u64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct Recent {
    #[serde(deserialize_with = "count")]
    pub time_ms: u64,
    #[serde(deserialize_with = "lenient")]
    pub client: String,
    #[serde(deserialize_with = "lenient")]
    pub method: String,
    #[serde(deserialize_with = "lenient")]
    pub url: String,
    #[serde(deserialize_with = "count")]
    pub status: u64,
    #[serde(deserialize_with = "lenient")]
    pub outcome: String,
    #[serde(deserialize_with = "count")]
    pub bytes: u64,
    #[serde(deserialize_with = "lenient")]
    pub duration_ms: Option<f64>,
}

/// The value if it has the expected shape, else the default.
fn lenient<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned + Default,
{
    Ok(T::deserialize(Value::deserialize(d)?).unwrap_or_default())
}

/// A non-negative whole number; a fraction is rounded, anything else is 0.
fn count<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    Ok(as_count(&Value::deserialize(d)?))
}

fn as_count(v: &Value) -> u64 {
    if let Some(n) = v.as_u64() {
        return n;
    }
    match v.as_f64() {
        // Saturates at the ends; NaN cannot come from JSON.
        Some(f) if f > 0.0 => f.round() as u64,
        _ => 0,
    }
}

/// The elements of an array that have the expected shape; anything that is
/// not an array is an empty list.
fn items<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    Ok(items_of(Value::deserialize(d)?).unwrap_or_default())
}

/// Like [`items`], but `null` (or anything not an array) is `None`.
fn some_items<'de, D, T>(d: D) -> Result<Option<Vec<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    Ok(items_of(Value::deserialize(d)?))
}

fn items_of<T: DeserializeOwned>(v: Value) -> Option<Vec<T>> {
    match v {
        Value::Array(values) => Some(
            values
                .into_iter()
                .filter_map(|v| T::deserialize(v).ok())
                .collect(),
        ),
        _ => None,
    }
}

/// An array of numbers; an element that is not a number is `None`.
fn numbers<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Option<f64>>, D::Error> {
    Ok(numbers_of(&Value::deserialize(d)?))
}

fn numbers_of(v: &Value) -> Vec<Option<f64>> {
    match v {
        Value::Array(values) => values.iter().map(Value::as_f64).collect(),
        _ => Vec::new(),
    }
}

fn named_series<'de, D: Deserializer<'de>>(d: D) -> Result<NamedSeries, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Object(map) => map
            .into_iter()
            .map(|(name, v)| (name, numbers_of(&v)))
            .collect(),
        Value::Array(pairs) => pairs
            .into_iter()
            .filter_map(|pair| match pair {
                Value::Array(mut two) if two.len() == 2 => {
                    let values = numbers_of(&two[1]);
                    match two.swap_remove(0) {
                        Value::String(name) => Some((name, values)),
                        _ => None,
                    }
                }
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    })
}

/// Parses an answer: it must be a JSON object; what is in it is read tolerantly.
pub(super) fn parse(body: &[u8]) -> anyhow::Result<Stats> {
    let value: Value = serde_json::from_slice(body).map_err(|e| anyhow!("not JSON: {e}"))?;
    if !value.is_object() {
        bail!("not a JSON object");
    }
    Stats::deserialize(value).map_err(|e| anyhow!("unreadable: {e}"))
}
