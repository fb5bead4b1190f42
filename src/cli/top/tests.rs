//! Tests of `ferry top`: reading and rendering sample and hostile answers, the
//! text and number helpers, the flags, and a reading from a one-shot server.

use super::text::{
    age, count_in, fit, human_bytes, is_unsafe, millis, percent, short_bytes, uptime,
};
use super::*;
use clap::Parser;

#[derive(Parser)]
struct Wrapper {
    #[command(flatten)]
    args: TopArgs,
}

/// 2021-01-01T00:00:00Z, and requests made 3 s and 2 min before it.
const NOW_MS: u64 = 1_609_459_200_000;

fn sample() -> String {
    let series = |v: f64| {
        let mut values = vec![0.0; 89];
        values.push(v);
        serde_json::to_string(&values).unwrap()
    };
    format!(
        r#"{{
 "version": "0.1.0", "uptime_seconds": 93784, "listen": ["127.0.0.1:3128", "[::1]:3128"],
 "admin": true,
 "summary": {{
   "last_5m": {{"requests":1200,"hits":600,"request_hit_ratio":0.5,"bytes_from_cache":3145728,
     "bytes_from_origin":7340032,"byte_hit_ratio":0.3,"bytes_saved":3145728,"blocked":4,
     "errors":2,"latency_p50_ms":1.2,"latency_p95_ms":9.0}},
   "since_start": {{"requests":123456789,"hits":70000000,"request_hit_ratio":0.567,
     "bytes_from_cache":1099511627776,"bytes_from_origin":0,"byte_hit_ratio":1.0,
     "bytes_saved":1099511627776,"blocked":0,"errors":12,"latency_p50_ms":0.8,
     "latency_p95_ms":1500.0}}
 }},
 "series": {{"interval_seconds":10,
   "requests_per_second": {{"miss":{miss},"fresh_hit":{hit},"revalidated":{zero},
     "stale":{zero},"uncacheable":{zero},"blocked":{zero},"error":{zero}}},
   "bytes_from_cache":{bc}, "bytes_from_origin":{bo},
   "fetch_slots_in_use":{zero}, "fetch_queue_length":{zero}}},
 "fetch": {{"slots": 64, "in_use": 3, "queued": 1,
   "clients": [{{"client":"127.0.0.1","holding":3,"waiting":1}}]}},
 "connections_open": 5,
 "cache": {{"objects":1234,"bytes":524288000,"max_bytes":1073741824,
   "memory_bytes":67108864,"evictions":7}},
 "top_hosts": {{"by_requests":[{{"host":"a.test","requests":900,"bytes":2048}},
   {{"host":"b.test","requests":300,"bytes":1048576}}], "by_bytes":[]}},
 "top_blocked": [{{"host":"x.test","requests":4}}],
 "recent": [
   {{"time_ms":{t1},"client":"127.0.0.1","method":"GET","url":"http://a.test/","status":200,
     "outcome":"fresh_hit","bytes":1536,"duration_ms":1.5}},
   {{"time_ms":{t2},"client":"10.0.0.2","method":"POST","url":"http://b.test/form","status":502,
     "outcome":"error","bytes":0,"duration_ms":2500.0}}
 ]
}}"#,
        miss = series(3.3),
        hit = series(12.0),
        zero = series(0.0),
        bc = series(2048.0),
        bo = series(1_572_864.0),
        t1 = NOW_MS - 3_000,
        t2 = NOW_MS - 120_000,
    )
}

fn frame(json: &str) -> Vec<String> {
    render(&parse(json.as_bytes()).unwrap(), NOW_MS)
}

fn assert_safe(lines: &[String]) {
    for line in lines {
        assert!(line.chars().count() <= WIDTH, "too wide: {line:?}");
        assert!(!line.chars().any(is_unsafe), "unsafe character in {line:?}");
    }
}

#[test]
fn renders_a_sample_reading() {
    let lines = frame(&sample());
    assert_safe(&lines);
    let expected = [
        "ferry 0.1.0   up 1d 02:03:04   listening on 127.0.0.1:3128, [::1]:3128",
        "",
        "             requests    hit  byte hit     saved blocked errors     p50     p95",
        "last 5 min       1200  50.0%     30.0%   3.0 MiB       4      2   1.2ms   9.0ms",
        "since start      123M  56.7%    100.0%   1.0 TiB       0     12   0.8ms    1.5s",
        "",
        "req/s (last 10s): 15.3 total,  fresh_hit 12.0  revalidated 0.0  stale 0.0",
        "                  miss 3.3  uncacheable 0.0  blocked 0.0  error 0.0",
        "bytes/s: from cache 2.0 KiB/s, from origin 1.5 MiB/s",
        "fetch slots 3/64 in use, 1 queued   connections open 5",
        "  by client: 127.0.0.1 3 held/1 waiting",
        "cache 1234 objects, 500 MiB of 1.0 GiB (49%), 64.0 MiB in memory, 7 evicted",
        "",
        "top hosts                      requests     bytes | top blocked        requests",
        "  a.test                            900   2.0 KiB |   x.test                  4",
        "  b.test                            300   1.0 MiB",
        "",
        "last 10 requests",
        " age client     st outcome   bytes   time request",
        "  3s 127.0.0.1 200 fresh_hit  1.5K  1.5ms GET http://a.test/",
        "  2m 10.0.0.2  502 error        0B   2.5s POST http://b.test/form",
    ];
    assert_eq!(lines, expected, "\n{}", lines.join("\n"));
}

#[test]
fn series_as_pairs_keep_the_proxys_order_for_unknown_outcomes() {
    let json = r#"{"series": {"interval_seconds": 5, "requests_per_second":
        [["new_kind", [1, 2.5]], ["miss", [0, null]], ["fresh_hit", [4]], "junk", [1]]}}"#;
    let lines = frame(json);
    assert_safe(&lines);
    assert!(
        lines.contains(
            &"req/s (last 5s): 6.5 total,  fresh_hit 4.0  miss 0.0  new_kind 2.5".to_string()
        ),
        "{lines:#?}"
    );
}

#[test]
fn hostile_strings_are_neutralised_and_cut() {
    let long = format!("http://evil.test/{}", "a".repeat(10_000));
    let recent = serde_json::json!([
        {"client": "1.2.3.4\u{1b}[2J", "method": "GET\r\n", "url": "http://e/\u{1b}]0;x\u{7}\u{9b}\u{2028}\u{2029}\u{202e}gnp",
         "outcome": "miss\u{0}", "status": 200, "time_ms": NOW_MS},
        {"client": "::ffff:203.0.113.200:some-very-long-client", "method": "X".repeat(300),
         "url": long, "outcome": "o".repeat(200)},
    ]);
    let json = serde_json::json!({
        "version": "9\u{1b}[31m",
        "listen": ["\u{85}1.2.3.4:1\u{7f}", "x".repeat(500)],
        "top_hosts": {"by_requests": [{"host": "h\u{1b}ost\n.test".repeat(20), "requests": 1}]},
        "top_blocked": [{"host": "\u{200b}zw\u{feff}.test\u{e0041}", "requests": 2}],
        "fetch": {"clients": [{"client": "\u{9b}c", "holding": 1}]},
        "series": {"requests_per_second": {"\u{1b}[2Jodd": [1]}},
        "recent": recent,
    });
    let lines = frame(&json.to_string());
    assert_safe(&lines);
    let text = lines.join("\n");
    assert!(!text.contains('\u{1b}'));
    assert!(text.contains("ferry 9?[31m"), "{text}");
    assert!(text.contains("?1.2.3.4:1?"), "{text}");
    assert!(text.contains("GET?? http://e/?]0;x?????gnp"), "{text}");
    assert!(text.contains("?zw?.test?"), "{text}");
    assert!(text.contains("?c 1 held/0 waiting"), "{text}");
    assert!(text.contains("?[2Jodd 1.0"), "{text}");
    // The long URL is cut at the line's end, with a mark.
    let long_row = lines.iter().find(|l| l.contains("XXXX")).unwrap();
    assert_eq!(long_row.chars().count(), WIDTH, "{long_row}");
    assert!(long_row.ends_with("..."), "{long_row}");
}

#[test]
fn missing_null_and_mistyped_fields_do_not_fail() {
    for json in [
        "{}",
        r#"{"summary": null, "series": null, "fetch": null, "cache": null,
            "top_hosts": null, "top_blocked": null, "recent": null, "admin": false}"#,
        r#"{"version": 1, "uptime_seconds": "long", "listen": "x", "summary":
            {"last_5m": {"requests": -5, "hits": 2.7, "request_hit_ratio": "half",
             "latency_p50_ms": null}}, "series": {"requests_per_second": 7,
             "bytes_from_cache": [null, "x"]}, "fetch": {"slots": 1e30},
            "connections_open": -1, "cache": {"objects": null}, "top_hosts": [],
            "top_blocked": [1, null, {"host": 5}], "recent": [null, {"url": 5}, 3]}"#,
    ] {
        let lines = frame(json);
        assert_safe(&lines);
        assert!(lines[0].starts_with("ferry "), "{lines:#?}");
    }
    let lines = frame("{}");
    assert!(lines.contains(&"cache off".to_string()), "{lines:#?}");
    assert!(
        lines.contains(&"req/s: no figures yet".to_string()),
        "{lines:#?}"
    );
    assert!(
        lines.contains(&"  (not in the answer)".to_string()),
        "{lines:#?}"
    );
    let withheld = frame(r#"{"admin": false, "top_hosts": null, "recent": null}"#);
    assert!(
        withheld.contains(&"  (for admin clients only)".to_string()),
        "{withheld:#?}"
    );
    let odd =
        parse(br#"{"fetch": {"slots": 1e30}, "summary": {"last_5m": {"hits": 2.7}}}"#).unwrap();
    assert_eq!(odd.fetch.slots, u64::MAX);
    assert_eq!(odd.summary.last_5m.hits, 3);
}

#[test]
fn not_json_or_not_an_object_is_an_error() {
    for body in [&b"<html>oops</html>"[..], b"", b"[]", b"42", b"{\"a\":"] {
        let err = parse(body).unwrap_err().to_string();
        assert!(err.starts_with("not "), "{err}");
        assert!(!err.contains('\n'), "{err}");
    }
}

#[test]
fn numbers_for_people() {
    assert_eq!(human_bytes(0), "0 B");
    assert_eq!(human_bytes(1023), "1023 B");
    assert_eq!(human_bytes(1536), "1.5 KiB");
    assert_eq!(human_bytes(u64::MAX), "16.0 EiB");
    assert_eq!(short_bytes(1023), "1023B");
    assert_eq!(short_bytes(10 << 20), "10M");
    assert_eq!(count_in(99_999_999, 8), "99999999");
    assert_eq!(count_in(123_456_789, 8), "123M");
    assert_eq!(count_in(u64::MAX, 6), "18.4E");
    assert_eq!(uptime(59), "00:00:59");
    assert_eq!(age(NOW_MS + 5_000, NOW_MS), "0s");
    assert_eq!(age(NOW_MS - 3 * 86_400_000, NOW_MS), "3d");
    assert_eq!(millis(Some(0.24)), "0.2ms");
    assert_eq!(millis(None), "-");
    assert_eq!(percent(Some(0.5)), "50.0%");
}

#[test]
fn wrapping_and_cutting() {
    assert_eq!(fit("abcdef", 4), "a...");
    assert_eq!(fit("abc", 3), "abc");
    assert_eq!(fit("a\u{1b}c", 2), "a?");
    assert_eq!(
        wrap_text("aaa bbb cccccccccc", 5),
        ["aaa", "bbb", "ccccc", "ccccc"]
    );
}

#[test]
fn flags_and_their_defaults() {
    let args = Wrapper::parse_from(["ferry"]).args;
    assert_eq!(args.proxy, "http://127.0.0.1:3128");
    assert_eq!(args.interval, Duration::from_secs(2));
    assert!(!args.once);
    let args = Wrapper::parse_from(["ferry", "--interval", "0.5", "--once", "-x", "p:1"]).args;
    assert_eq!(args.interval, Duration::from_millis(500));
    assert!(args.once);
    assert_eq!(args.proxy, "p:1");
    for bad in ["0", "-1", "x", "nan", "inf"] {
        assert!(Wrapper::try_parse_from(["ferry", "--interval", bad]).is_err());
    }
}

/// A one-shot HTTP server that answers with `response` and hands back
/// the request head it got.
async fn one_answer(response: Vec<u8>) -> (ProxyEndpoint, tokio::task::JoinHandle<String>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let (mut conn, _) = listener.accept().await.unwrap();
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        while !head.ends_with(b"\r\n\r\n") {
            let n = conn.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            head.extend_from_slice(&buf[..n]);
        }
        conn.write_all(&response).await.unwrap();
        conn.shutdown().await.unwrap();
        String::from_utf8_lossy(&head).into_owned()
    });
    let proxy = ProxyEndpoint::parse(&format!("http://u:p@127.0.0.1:{port}"), "test").unwrap();
    (proxy, server)
}

fn http_answer(status: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[tokio::test]
async fn reads_the_stats_in_origin_form() {
    let (proxy, server) = one_answer(http_answer("200 OK", &sample())).await;
    let stats = read(&proxy).await.unwrap();
    assert_eq!(stats.version, "0.1.0");
    assert_eq!(stats.fetch.slots, 64);
    let head = server.await.unwrap();
    assert!(head.starts_with("GET /api/stats HTTP/1.1\r\n"), "{head}");
    let lower = head.to_ascii_lowercase();
    assert!(
        lower.contains(&format!("host: 127.0.0.1:{}\r\n", proxy.port)),
        "{head}"
    );
    assert!(
        lower.contains("proxy-authorization: basic dtpw\r\n"),
        "{head}"
    );
}

#[tokio::test]
async fn errors_are_one_clean_line() {
    let (proxy, _server) = one_answer(http_answer("200 OK", "<html>\u{1b}[2J</html>")).await;
    let err = read(&proxy).await.unwrap_err().to_string();
    assert!(
        err.starts_with("bad answer from http://127.0.0.1:"),
        "{err}"
    );
    assert!(err.contains("/api/stats: not JSON: "), "{err}");

    let (proxy, _server) = one_answer(http_answer("404 Not Found", "")).await;
    let err = read(&proxy).await.unwrap_err().to_string();
    assert!(
        err.contains("answered 404 Not Found for /api/stats"),
        "{err}"
    );

    // A port nobody listens on: bind one, then let it go.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let proxy = ProxyEndpoint::parse(&format!("127.0.0.1:{port}"), "test").unwrap();
    let err = read(&proxy).await.unwrap_err();
    let text = format!("{err:#}");
    assert!(
        text.starts_with(&format!("cannot reach the proxy at 127.0.0.1:{port}: ")),
        "{text}"
    );
    assert!(!text.contains('\n'), "{text}");
    let screen = error_frame(&proxy, &err, Duration::from_secs(2));
    assert_safe(&screen);
    assert_eq!(screen.last().unwrap(), "retrying every 2s; Ctrl-C to quit");
}
