//! The dashboard page: every figure is in the HTML as served (it reads
//! fine without JavaScript); a short script refreshes the tiles and tables
//! from `/api/stats` and the charts from `/charts/*.svg` every two seconds.

use std::fmt::Write as _;
use std::time::UNIX_EPOCH;

use http::{Response, StatusCode};

use super::api::Stats;
use super::parts::bytes_text;
use super::{browser, charts, groups};
use crate::body::ProxyBody;
use crate::pages::{escape, html_response};
use crate::state::ProxyState;
use crate::telemetry::report::{HostCount, RecentRequest, Summary};

pub fn page(state: &ProxyState, admin: bool) -> Response<ProxyBody> {
    let stats = Stats::take(state, admin);
    let mut html = String::with_capacity(64 * 1024);
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width\"><title>Ferry proxy {name}</title>\
<link rel=\"stylesheet\" href=\"/assets/ferry.css\"></head><body>\n<h1>Ferry proxy <span class=\"note\">{name}</span></h1>\n\
<p class=\"sub\">ferry {version} · up <span id=\"uptime\">{uptime}</span> · listening on {listen} · \
point browsers at <a href=\"/proxy.pac\">/proxy.pac</a> or <code>curl -x</code> at it</p>\n",
        version = stats.version,
        // The proxy's name: in a farm, which node this dashboard is.
        name = escape(&state.config.via_pseudonym),
        uptime = duration_text(stats.uptime_seconds),
        listen = escape(&stats.listen.join(", ")),
    );
    tiles(&mut html, &stats);
    html.push_str("<h2>Last 15 minutes</h2>\n<div class=\"charts\">");
    for name in charts::NAMES {
        let svg = charts::by_name(name, &stats.series, stats.fetch.slots).unwrap_or_default();
        let _ = write!(html, "<div data-chart=\"{name}\">{svg}</div>");
    }
    html.push_str("</div>\n");
    let _ = writeln!(
        html,
        "<p>Fetch slots: <strong id=\"slots-in-use\">{}</strong> of {} in use, \
<strong id=\"queued\">{}</strong> queued · connections open: <strong id=\"connections\">{}</strong></p>",
        stats.fetch.in_use, stats.fetch.slots, stats.fetch.queued, stats.connections_open
    );
    if admin {
        detail_tables(&mut html, state, &stats);
        groups::tables(&mut html, state);
    } else {
        html.push_str(
            "<p class=\"note\">Requests, hosts, clients and the cache's contents are shown to \
admin clients only (<code>--admin-client</code>).</p>\n",
        );
    }
    rules(&mut html, state);
    let _ = write!(
        html,
        "<footer>ferry {} — <a href=\"/api/stats\">/api/stats</a> · <a href=\"/metrics\">/metrics</a> · \
<a href=\"/healthz\">/healthz</a> · <a href=\"/ca\">CA certificate</a></footer>\n<script src=\"/assets/dashboard.js\"></script>\n</body></html>\n",
        stats.version
    );
    html_response(StatusCode::OK, html)
}

/// `(key, label)`; the key is the JSON summary field, and the tile's id.
const TILES: [(&str, &str); 8] = [
    ("requests", "Requests"),
    ("request_hit_ratio", "Request hit ratio"),
    ("byte_hit_ratio", "Byte hit ratio"),
    ("bytes_saved", "Bytes saved"),
    ("blocked", "Blocked"),
    ("errors", "Errors"),
    ("latency_p50_ms", "Latency p50"),
    ("latency_p95_ms", "Latency p95"),
];

fn tile_value(s: &Summary, key: &str) -> String {
    let ms = |v: Option<f64>| v.map_or("–".into(), |v| format!("{v} ms"));
    let pct = |v: f64| format!("{:.1}%", v * 100.0);
    match key {
        "requests" => s.requests.to_string(),
        "request_hit_ratio" => pct(s.request_hit_ratio),
        "byte_hit_ratio" => pct(s.byte_hit_ratio),
        "bytes_saved" => bytes_text(s.bytes_saved),
        "blocked" => s.blocked.to_string(),
        "errors" => s.errors.to_string(),
        "latency_p50_ms" => ms(s.latency_p50_ms),
        "latency_p95_ms" => ms(s.latency_p95_ms),
        _ => String::new(),
    }
}

fn tiles(html: &mut String, stats: &Stats) {
    html.push_str("<h2>Last 5 minutes</h2>\n<div class=\"tiles\">\n");
    for (key, label) in TILES {
        let _ = writeln!(
            html,
            "<div class=\"tile\"><div class=\"label\">{label}</div>\
<div class=\"value\" id=\"tile-{key}\">{}</div>\
<div class=\"since\">since start: <span id=\"since-{key}\">{}</span></div></div>",
            tile_value(&stats.summary.last_5m, key),
            tile_value(&stats.summary.since_start, key),
        );
    }
    html.push_str("</div>\n");
}

fn detail_tables(html: &mut String, state: &ProxyState, stats: &Stats) {
    html.push_str("<div class=\"grid\">\n");
    let empty = Vec::new();
    let top = stats.top_hosts.as_ref();
    hosts_table(
        html,
        "Top hosts by requests",
        "top-requests",
        top.map_or(&empty, |t| &t.by_requests),
    );
    hosts_table(
        html,
        "Top hosts by bytes",
        "top-bytes",
        top.map_or(&empty, |t| &t.by_bytes),
    );
    hosts_table(
        html,
        "Top blocked hosts",
        "top-blocked",
        stats.top_blocked.as_ref().unwrap_or(&empty),
    );
    html.push_str(
        "<div><h2>Fetch queue by client</h2>\n<table><thead><tr><th>client</th>\
<th class=\"n\">holding</th><th class=\"n\">waiting</th></tr></thead><tbody id=\"clients\">",
    );
    for c in stats.fetch.clients.iter().flatten() {
        let _ = write!(
            html,
            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            c.client, c.holding, c.waiting
        );
    }
    html.push_str("</tbody></table></div>\n</div>\n");
    if let Some(passing) = stats.auto_passthrough.as_ref().filter(|p| !p.is_empty()) {
        html.push_str(
            "<h2>Not intercepted for now</h2>\n<p>These clients kept refusing the proxy's \
certificate for these sites, so their tunnels pass through untouched until the time is up.</p>\n\
<table><thead><tr><th>site</th><th>client</th><th class=\"n\">seconds left</th></tr></thead><tbody>",
        );
        for p in passing {
            let _ = write!(
                html,
                "<tr><td>{}</td><td>{}</td><td class=\"n\">{}</td></tr>",
                escape(&p.host),
                p.client,
                p.seconds_left
            );
        }
        html.push_str("</tbody></table>\n");
    }
    browser::object_tables(html, state);
    html.push_str(
        "<h2>Last 100 requests</h2>\n<table><thead><tr><th>time</th><th>client</th><th>method</th>\
<th>URL</th><th class=\"n\">status</th><th>outcome</th><th class=\"n\">size</th>\
<th class=\"n\">ms</th></tr></thead><tbody id=\"recent\">",
    );
    for r in stats.recent.iter().flatten() {
        recent_row(html, r);
    }
    html.push_str("</tbody></table>\n");
    browser::search_form(html, "", false);
}

fn hosts_table(html: &mut String, title: &str, id: &str, rows: &[HostCount]) {
    let _ = write!(
        html,
        "<div><h2>{title}</h2>\n<table><thead><tr><th>host</th><th class=\"n\">requests</th>\
<th class=\"n\">bytes</th></tr></thead><tbody id=\"{id}\">"
    );
    for h in rows {
        let _ = write!(
            html,
            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            escape(&h.host),
            h.requests,
            bytes_text(h.bytes)
        );
    }
    html.push_str("</tbody></table></div>\n");
}

fn recent_row(html: &mut String, r: &RecentRequest) {
    let _ = write!(
        html,
        "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"url\">{}</td><td class=\"n\">{}</td>\
<td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
        clock_text(r.time_ms),
        escape(&r.client),
        escape(&r.method),
        escape(&r.url),
        r.status,
        r.outcome,
        bytes_text(r.bytes),
        r.duration_ms
    );
}

fn rules(html: &mut String, state: &ProxyState) {
    let c = &state.config;
    let rules = state.rules.load();
    let list = |items: Vec<String>| {
        if items.is_empty() {
            "<span class=\"note\">none</span>".to_string()
        } else {
            items
                .iter()
                .map(|i| format!("<code>{}</code>", escape(i)))
                .collect::<Vec<_>>()
                .join(" ")
        }
    };
    let strings = |v: &[String]| v.to_vec();
    let nets = |v: &[ipnet::IpNet]| v.iter().map(|n| n.to_string()).collect();
    let paths = |v: &[std::path::PathBuf]| v.iter().map(|p| p.display().to_string()).collect();
    let loaded = rules
        .loaded_at
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or("–".into(), |d| {
            httpdate::fmt_http_date(UNIX_EPOCH + std::time::Duration::from_secs(d.as_secs()))
        });
    let rows = [
        ("Clients allowed", list(nets(&c.allow_clients))),
        ("Admin clients", list(nets(&c.admin_clients))),
        ("Denied domains", list(strings(&c.deny_domains))),
        ("Deny lists", list(paths(&c.deny_lists))),
        ("Allowed domains only", list(strings(&c.allow_domains))),
        ("Allow lists", list(paths(&c.allow_lists))),
        ("Denied networks", list(nets(&c.deny_networks))),
        ("Allowed networks", list(nets(&c.allow_networks))),
        (
            "CONNECT ports",
            list(c.connect_ports.iter().map(u16::to_string).collect()),
        ),
        ("Not intercepted", list(strings(&c.no_intercept))),
        (
            "Users",
            if c.users.is_empty() {
                "<span class=\"note\">none: no password asked</span>".into()
            } else {
                format!("{} configured", c.users.len())
            },
        ),
        (
            "Cache rules",
            format!(
                "{} in force; presets: {}",
                state.cache_rules.len(),
                list(strings(&c.cache_presets))
            ),
        ),
        (
            "Patterns in force",
            format!(
                "{} deny, {} allow (lists read at start and on SIGHUP; last read {})",
                rules.deny.len(),
                rules.allow.len(),
                escape(&loaded)
            ),
        ),
    ];
    html.push_str("<h2>Access rules</h2>\n<table id=\"rules\">");
    for (name, value) in rows {
        let _ = write!(html, "<tr><th>{name}</th><td>{value}</td></tr>");
    }
    html.push_str(
        "</table>\n<p class=\"note\">Link-local networks are always refused and this host's \
own addresses are for local clients, unless an allowed network opens them.</p>\n",
    );
}

fn duration_text(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s} s"),
        s if s < 3600 => format!("{} min", s / 60),
        s if s < 86_400 => format!("{} h {} min", s / 3600, s % 3600 / 60),
        s => format!("{} d {} h", s / 86_400, s % 86_400 / 3600),
    }
}

/// `HH:MM:SS` (UTC) of a Unix time in ms.
fn clock_text(ms: u64) -> String {
    let s = ms / 1000 % 86_400;
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// Refreshes the numbers and tables from `/api/stats` and the charts from
/// `/charts/`. Text from the proxy's traffic goes in with `textContent`
/// only, never as markup.
pub const DASHBOARD_SCRIPT: &str = r#"
(function () {
  const pct = v => (v * 100).toFixed(1) + '%';
  const ms = v => v == null ? '–' : v + ' ms';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  function bytes(n) {
    let i = 0; while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i ? n.toFixed(1) : n) + ' ' + units[i];
  }
  const fmt = {requests: String, request_hit_ratio: pct, byte_hit_ratio: pct, bytes_saved: bytes,
               blocked: String, errors: String, latency_p50_ms: ms, latency_p95_ms: ms};
  function set(id, text) { const el = document.getElementById(id); if (el) el.textContent = text; }
  function clock(t) { return new Date(t).toISOString().substring(11, 19); }
  function fill(id, rows) {
    const body = document.getElementById(id);
    if (!body || !rows) return;
    body.replaceChildren(...rows.map(cells => {
      const tr = document.createElement('tr');
      for (const [text, cls] of cells) {
        const td = document.createElement('td');
        td.textContent = text; if (cls) td.className = cls; tr.appendChild(td);
      }
      return tr;
    }));
  }
  function uptime(s) {
    if (s < 60) return s + ' s';
    if (s < 3600) return Math.floor(s / 60) + ' min';
    if (s < 86400) return Math.floor(s / 3600) + ' h ' + Math.floor(s % 3600 / 60) + ' min';
    return Math.floor(s / 86400) + ' d ' + Math.floor(s % 86400 / 3600) + ' h';
  }
  const hosts = list => (list || []).map(h => [[h.host], [String(h.requests), 'n'], [bytes(h.bytes), 'n']]);
  async function refresh() {
    try {
      const s = await (await fetch('/api/stats', {cache: 'no-store'})).json();
      for (const key in fmt) {
        set('tile-' + key, fmt[key](s.summary.last_5m[key]));
        set('since-' + key, fmt[key](s.summary.since_start[key]));
      }
      set('uptime', uptime(s.uptime_seconds));
      set('slots-in-use', s.fetch.in_use); set('queued', s.fetch.queued);
      set('connections', s.connections_open);
      if (s.top_hosts) {
        fill('top-requests', hosts(s.top_hosts.by_requests));
        fill('top-bytes', hosts(s.top_hosts.by_bytes));
      }
      fill('top-blocked', s.top_blocked && hosts(s.top_blocked));
      fill('clients', s.fetch.clients && s.fetch.clients.map(c =>
        [[c.client], [String(c.holding), 'n'], [String(c.waiting), 'n']]));
      fill('recent', s.recent && s.recent.map(r => [[clock(r.time_ms)], [r.client], [r.method],
        [r.url, 'url'], [String(r.status), 'n'], [r.outcome], [bytes(r.bytes), 'n'],
        [String(r.duration_ms), 'n']]));
      for (const box of document.querySelectorAll('[data-chart]')) {
        const svg = await (await fetch('/charts/' + box.dataset.chart + '.svg', {cache: 'no-store'})).text();
        const doc = new DOMParser().parseFromString(svg, 'image/svg+xml');
        if (doc.documentElement.nodeName === 'svg') box.replaceChildren(document.importNode(doc.documentElement, true));
      }
      document.body.dataset.refreshed = String(Date.now());
    } catch (e) {}
  }
  setInterval(refresh, 2000);
  refresh();
})();
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_plainly() {
        assert_eq!(duration_text(59), "59 s");
        assert_eq!(duration_text(3700), "1 h 1 min");
        assert_eq!(clock_text(3_723_000), "01:02:03");
    }

    #[test]
    fn tiles_format_their_kind_of_figure() {
        let s = Summary {
            requests: 7,
            hits: 3,
            request_hit_ratio: 0.429,
            bytes_from_cache: 2048,
            bytes_from_origin: 0,
            byte_hit_ratio: 1.0,
            bytes_saved: 2048,
            blocked: 1,
            errors: 0,
            latency_p50_ms: Some(0.4),
            latency_p95_ms: None,
        };
        assert_eq!(tile_value(&s, "request_hit_ratio"), "42.9%");
        assert_eq!(tile_value(&s, "bytes_saved"), "2.0 KiB");
        assert_eq!(tile_value(&s, "latency_p50_ms"), "0.4 ms");
        assert_eq!(tile_value(&s, "latency_p95_ms"), "–");
    }
}
