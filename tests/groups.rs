//! Organisation policy, driven through the real binary: groups of clients
//! with their own rules, subscribed lists fetched from an origin and
//! refreshed on SIGHUP, schedules, per-client rates and daily quotas, the
//! refusal page, the dashboard, the access log and `ferry policy test`.
//! Clients are told apart by the loopback address they connect from
//! (127.0.0.2, 127.0.0.3, ...).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::*;

const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// Today's weekday in UTC (the proxies here run with `TZ=UTC`), Monday 0.
fn today_utc() -> usize {
    let days = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 86_400;
    // 1970-01-01 was a Thursday.
    ((days + 3) % 7) as usize
}

/// A schedule that covers now (today and tomorrow, all day: a test that
/// runs across midnight still holds) and one that does not.
fn schedules() -> (String, String) {
    let t = today_utc();
    let on = format!("{},{} 00:00-24:00", DAYS[t], DAYS[(t + 1) % 7]);
    let off = format!("{},{} 00:00-24:00", DAYS[(t + 3) % 7], DAYS[(t + 4) % 7]);
    (on, off)
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// The list origin: `/hosts.txt` is the list in its current version.
struct Lists {
    origin: Origin,
    version: Arc<AtomicUsize>,
}

const LIST_V1: &str = "# a hosts file\n0.0.0.0 tracker.test\n127.0.0.1 localhost\n\
||adserver.test^\n@@||allowed.test^\nexample.org##.banner\n";
const LIST_V2: &str = "0.0.0.0 tracker.test\n0.0.0.0 newad.test\n";
/// Parses to nothing: a broken update.
const LIST_BROKEN: &[u8] = b"\x00\x01\x02 <html>Service Unavailable</html>\n\xff\xfe";

async fn list_origin() -> Lists {
    let version = Arc::new(AtomicUsize::new(1));
    let v = version.clone();
    let origin = Origin::start(move |r| match r.path.as_str() {
        "/hosts.txt" => match v.load(Ordering::SeqCst) {
            1 => Reply::text(LIST_V1),
            2 => Reply::text(LIST_V2),
            _ => Reply::text(LIST_BROKEN),
        },
        "/big" => Reply::new(200)
            .header("cache-control", "max-age=600")
            .pattern(1_000_000),
        "/big-other" => Reply::new(200).pattern(1_000_000),
        "/small" => Reply::new(200).pattern(60_000),
        _ => Reply::text("hello"),
    })
    .await;
    Lists { origin, version }
}

fn write_config(dir: &Path, lists: &Lists, extra: &str) -> String {
    let (on, off) = schedules();
    let text = format!(
        r#"
deny_domains = ["toplevel.test"]
block_page_contact = "IT desk, room 12"
log_format = "json"
{extra}

[[lists]]
name = "ads"
url = "{list}"
refresh = "1h"

[[groups]]
name = "students"
clients = ["127.0.0.2/32"]
deny = ["games.test"]
deny_lists = ["ads"]
schedule = "{on}"
rate = "200KB/s"

[[groups]]
name = "night"
clients = ["127.0.0.3/32"]
deny = ["games.test"]
schedule = "{off}"

[[groups]]
name = "metered"
clients = ["127.0.0.4/32"]
daily_quota = "100KB"
"#,
        list = lists.origin.url("/hosts.txt"),
    );
    let path = dir.join("ferry.toml");
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

fn start(config: &str, state: &Path) -> Proxy {
    Proxy::start_with_env(
        ferry(),
        &[
            "--config",
            config,
            "--state-dir",
            state.to_str().unwrap(),
            "--response-timeout",
            "3",
        ],
        &[("TZ", "UTC")],
    )
}

/// Waits until `client` gets `status` for `url`.
async fn wait_status(proxy: &Proxy, client: &str, url: &str, status: u16) -> TestResponse {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let resp = ProxyClient::new(proxy.addr())
            .bind(ip(client))
            .get(url)
            .await;
        if resp.status == status || Instant::now() > deadline {
            assert_eq!(resp.status, status, "{url} from {client}: {}", resp.text());
            return resp;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The row of the subscribed list `name` in the dashboard's lists table.
fn list_row(html: &str, name: &str) -> String {
    let table = &html[html.find("id=\"lists\"").expect("a lists table")..];
    let start = table
        .find(&format!("<code>{name}</code>"))
        .expect("the list's row");
    let row = &table[start..];
    row[..row.find("</tr>").unwrap()].to_string()
}

fn dashboard(proxy: &Proxy) -> String {
    let out = curl(&["-H", "Accept: text/html", &format!("{}/", proxy.url())]);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn groups_have_their_own_rules_lists_and_schedules() {
    let lists = list_origin().await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &lists, "");
    let proxy = start(&config, dir.path());

    // The group's own rule, on its schedule: a page naming the group, the
    // rule and whom to ask.
    let games = wait_status(&proxy, "127.0.0.2", "http://games.test/", 403).await;
    let cause = games.header("x-ferry-error").unwrap().to_string();
    assert!(
        cause.contains("games.test") && cause.contains("group students"),
        "{cause}"
    );
    let page = games.text();
    assert!(page.contains("IT desk, room 12"), "{page}");
    assert!(page.contains("refused for the group students"), "{page}");

    // The subscribed list, once fetched: hosts and Adblock entries refuse,
    // the rest of the list (exceptions, cosmetic rules) was skipped.
    let tracker = wait_status(&proxy, "127.0.0.2", "http://tracker.test/", 403).await;
    assert!(
        tracker
            .header("x-ferry-error")
            .unwrap()
            .contains("list ads"),
        "{:?}",
        tracker.header("x-ferry-error")
    );
    wait_status(&proxy, "127.0.0.2", "http://www.adserver.test/x", 403).await;
    assert_eq!(lists.origin.count("/hosts.txt"), 1);

    // A group's rules replace the top level's: students may ask for
    // toplevel.test (it fails only because the name does not resolve).
    let other = ProxyClient::new(proxy.addr())
        .bind(ip("127.0.0.2"))
        .get("http://toplevel.test/")
        .await;
    assert_ne!(other.status, 403, "{}", other.text());
    // Clients in no group get the top-level rules, not the groups'.
    let top = ProxyClient::new(proxy.addr())
        .get("http://toplevel.test/")
        .await;
    assert_eq!(top.status, 403);
    assert!(top.text().contains("IT desk, room 12"));
    let ungrouped = ProxyClient::new(proxy.addr())
        .bind(ip("127.0.0.9"))
        .get("http://games.test/")
        .await;
    assert_ne!(ungrouped.status, 403, "{}", ungrouped.text());
    // The night group's schedule does not cover now: its deny rule is off.
    let night = ProxyClient::new(proxy.addr())
        .bind(ip("127.0.0.3"))
        .get("http://games.test/")
        .await;
    assert_ne!(night.status, 403, "{}", night.text());
    // An allowed request of a group member is served as usual.
    let ok = ProxyClient::new(proxy.addr())
        .bind(ip("127.0.0.3"))
        .get(&lists.origin.url("/hello"))
        .await;
    assert_eq!(ok.status, 200);

    // The access log and the metrics carry the group.
    let log = proxy
        .wait_stdout_lines(6, Duration::from_secs(5))
        .join("\n");
    assert!(log.contains(r#""group":"students""#), "{log}");
    assert!(log.contains(r#""group":"night""#), "{log}");
    let blocked = proxy.metric(r#"ferry_group_requests_total{group="students",result="blocked"}"#);
    assert!(blocked.unwrap_or(0) >= 3, "{blocked:?}");
    let blocked_by_group = proxy.metric(r#"ferry_blocked_total{rule_kind="group"}"#);
    assert!(blocked_by_group.unwrap_or(0) >= 3, "{blocked_by_group:?}");

    // The dashboard shows the groups and the list.
    let html = dashboard(&proxy);
    assert!(html.contains("<h2>Groups</h2>"), "{html}");
    assert!(html.contains("<code>students</code>") && html.contains("<code>night</code>"));
    assert!(html.contains("<h2>Subscribed lists</h2>"));
    let lists_table = &html[html.find("id=\"lists\"").unwrap()..];
    assert!(
        lists_table.contains("<td class=\"n\">2</td>"),
        "{lists_table}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sighup_updates_a_list_without_dropping_connections_and_a_broken_update_keeps_the_old() {
    let lists = list_origin().await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &lists, "");
    let proxy = start(&config, dir.path());
    wait_status(&proxy, "127.0.0.2", "http://tracker.test/", 403).await;

    // A keep-alive connection from a student, open across the reload.
    let mut conn = connect_from("127.0.0.2", proxy.addr()).await;
    let first = exchange(&mut conn, "http://newad.test/");
    assert!(!first.starts_with("HTTP/1.1 403"), "{first}");

    lists.version.store(2, Ordering::SeqCst);
    proxy.signal(1);
    wait_status(&proxy, "127.0.0.2", "http://newad.test/", 403).await;
    // The same connection, still open, now gets the new list.
    let second = exchange(&mut conn, "http://newad.test/");
    assert!(second.starts_with("HTTP/1.1 403"), "{second}");
    // Gone from the list: adserver.test is no longer refused.
    let adserver = ProxyClient::new(proxy.addr())
        .bind(ip("127.0.0.2"))
        .get("http://adserver.test/")
        .await;
    assert_ne!(adserver.status, 403);

    // A broken update: fetched, parsed to nothing, reported, and the last
    // good copy stays in force.
    lists.version.store(3, Ordering::SeqCst);
    let fetched = lists.origin.count("/hosts.txt");
    proxy.signal(1);
    assert!(
        wait_until(Duration::from_secs(10), || lists.origin.count("/hosts.txt")
            > fetched)
        .await
    );
    assert!(
        wait_until(Duration::from_secs(10), || proxy
            .stderr()
            .contains("list ads not refreshed"))
        .await,
        "{}",
        proxy.stderr()
    );
    wait_status(&proxy, "127.0.0.2", "http://newad.test/", 403).await;
    let html = dashboard(&proxy);
    let lists_table = &html[html.find("id=\"lists\"").unwrap()..];
    assert!(lists_table.contains("no domain rules"), "{lists_table}");
    assert!(
        lists_table.contains("<td class=\"n\">2</td>"),
        "{lists_table}"
    );

    // The last good copy is on disk: a restart whose fetch fails still
    // refuses from it, at once.
    drop(proxy);
    let restarted = start(&config, dir.path());
    let resp = ProxyClient::new(restarted.addr())
        .bind(ip("127.0.0.2"))
        .get("http://newad.test/")
        .await;
    assert_eq!(resp.status, 403, "{}", resp.text());
}

/// A blocking TCP connection from `client` (a loopback address) to `proxy`.
async fn connect_from(client: &str, proxy: SocketAddr) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_reuseaddr(true).unwrap();
    socket.bind(SocketAddr::new(ip(client), 0)).unwrap();
    let stream = socket.connect(proxy).await.unwrap().into_std().unwrap();
    stream.set_nonblocking(false).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
}

/// One request on a kept-alive connection; the response head and body.
fn exchange(conn: &mut TcpStream, url: &str) -> String {
    let host = url.split('/').nth(2).unwrap();
    write!(conn, "GET {url} HTTP/1.1\r\nHost: {host}\r\n\r\n").unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let n = conn.read(&mut buf).unwrap();
        assert!(
            n > 0,
            "the connection was closed: {}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got);
        if let Some(end) = text.find("\r\n\r\n") {
            let len: usize = text[..end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap())
                })
                .unwrap_or(0);
            if got.len() >= end + 4 + len {
                return text.into_owned();
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_spent_quota_refuses_that_client_only_and_survives_a_restart() {
    let lists = list_origin().await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &lists, "");
    let proxy = start(&config, dir.path());
    let metered = ProxyClient::new(proxy.addr()).bind(ip("127.0.0.4"));
    let small = lists.origin.url("/small");
    // 60 KB, then 120 KB used: the second is let through (the quota was not
    // spent when it began), the third is refused.
    assert_eq!(metered.get(&small).await.status, 200);
    let second = metered.get(&small).await;
    assert_eq!(second.status, 200);
    assert_eq!(second.body.len(), 60_000);
    let refused = metered.get(&small).await;
    assert_eq!(refused.status, 429, "{}", refused.text());
    let retry: u64 = refused.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=86_400).contains(&retry), "{retry}");
    let page = refused.text();
    assert!(page.contains("daily quota of the group metered"), "{page}");
    assert!(page.contains("100.0 kB a day"), "{page}");
    assert!(page.contains("IT desk, room 12"), "{page}");
    // Every request, not only the one that spent it.
    assert_eq!(metered.get(&lists.origin.url("/hello")).await.status, 429);
    // Other clients are not touched, and the metered client still reaches
    // the dashboard (where it can see why).
    for other in ["127.0.0.1", "127.0.0.5"] {
        let resp = ProxyClient::new(proxy.addr())
            .bind(ip(other))
            .get(&small)
            .await;
        assert_eq!(resp.status, 200, "{other}");
    }
    let own = ProxyClient::new(proxy.addr())
        .bind(ip("127.0.0.4"))
        .get(&format!("{}/healthz", proxy.url()))
        .await;
    assert_eq!(own.status, 200);
    let html = dashboard(&proxy);
    assert!(html.contains("1 spent"), "{html}");

    // Counts survive a restart (written at shutdown).
    let mut proxy = proxy;
    proxy.signal(15);
    assert!(proxy.wait_exit(Duration::from_secs(20)).is_some());
    let saved = std::fs::read_to_string(dir.path().join("quota.txt")).unwrap();
    assert!(saved.contains("127.0.0.4"), "{saved}");
    let restarted = start(&config, dir.path());
    let again = ProxyClient::new(restarted.addr())
        .bind(ip("127.0.0.4"))
        .get(&small)
        .await;
    assert_eq!(again.status, 429);

    // A corrupt quota file is set aside with a warning, not a failed start.
    drop(restarted);
    std::fs::write(dir.path().join("quota.txt"), b"\x00garbage{").unwrap();
    let fresh = start(&config, dir.path());
    assert!(
        fresh.stderr().contains("not a quota file"),
        "{}",
        fresh.stderr()
    );
    let resp = ProxyClient::new(fresh.addr())
        .bind(ip("127.0.0.4"))
        .get(&small)
        .await;
    assert_eq!(resp.status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn tunnels_count_against_the_quota() {
    let lists = list_origin().await;
    let dir = tempfile::tempdir().unwrap();
    let port = lists.origin.addr().port();
    let config = write_config(dir.path(), &lists, &format!("connect_ports = [{port}]\n"));
    let proxy = start(&config, dir.path());
    // A CONNECT tunnel to the origin, and 1 MB through it.
    let mut conn = connect_from("127.0.0.4", proxy.addr()).await;
    write!(
        conn,
        "CONNECT 127.0.0.1:{port} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n"
    )
    .unwrap();
    let mut head = [0u8; 1024];
    let n = conn.read(&mut head).unwrap();
    assert!(String::from_utf8_lossy(&head[..n]).starts_with("HTTP/1.1 200"));
    write!(
        conn,
        "GET /big HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut all = Vec::new();
    conn.read_to_end(&mut all).unwrap();
    assert!(all.len() > 1_000_000);
    drop(conn);
    // The tunnel's bytes spent the quota.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let resp = ProxyClient::new(proxy.addr())
            .bind(ip("127.0.0.4"))
            .get(&lists.origin.url("/hello"))
            .await;
        if resp.status == 429 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the tunnel's bytes were not counted"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rate_paces_its_group_and_not_the_others() {
    let lists = list_origin().await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &lists, "");
    let proxy = start(&config, dir.path());
    let big = lists.origin.url("/big");
    let paced = ProxyClient::new(proxy.addr()).bind(ip("127.0.0.2"));
    let free = ProxyClient::new(proxy.addr()).bind(ip("127.0.0.3"));
    let started = Instant::now();
    let (slow, fast) = tokio::join!(
        async {
            let resp = paced.get(&big).await;
            (resp, started.elapsed())
        },
        async {
            // Starts while the paced download is under way.
            tokio::time::sleep(Duration::from_millis(300)).await;
            let resp = free.get(&lists.origin.url("/big-other")).await;
            (resp, started.elapsed())
        }
    );
    assert_eq!(slow.0.status, 200);
    assert_eq!(slow.0.body.len(), 1_000_000);
    assert_eq!(fast.0.status, 200);
    assert_eq!(fast.0.body.len(), 1_000_000);
    // 1 MB at 200 KB/s is 5 s (less a first piece and a small burst).
    assert!(slow.1 >= Duration::from_millis(4500), "{:?}", slow.1);
    // The other group's download was not held back by it.
    assert!(fast.1 < slow.1, "{:?} vs {:?}", fast.1, slow.1);

    // A cached answer is paced too (the rate is about the client's link).
    let again = Instant::now();
    let hit = paced.get(&big).await;
    assert_eq!(hit.body.len(), 1_000_000);
    assert!(
        again.elapsed() >= Duration::from_millis(4500),
        "{:?}",
        again.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_lists_and_settings_are_refused_or_survived() {
    // Lists that are too big, junk, one enormous line, and a server that
    // never answers: each is reported, none stops the proxy or the others.
    let origin = Origin::start(|r| match r.path.as_str() {
        "/huge" => Reply::new(200).pattern(100_000_000),
        "/junk" => Reply::new(200).body(
            (0..200_000u32)
                .map(|i| (i * 7919 % 251) as u8)
                .collect::<Vec<u8>>(),
        ),
        "/longline" => {
            let mut body = vec![b'a'; 10_000_000];
            body.extend_from_slice(b"\n0.0.0.0 afterlong.test\n");
            Reply::new(200).body(body)
        }
        "/silent" => Reply::text("0.0.0.0 never.test\n").delay(Duration::from_secs(60)),
        _ => Reply::text("0.0.0.0 fine.test\n"),
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("max_list_size = \"12MB\"\n");
    for name in ["huge", "junk", "longline", "silent", "fine"] {
        text.push_str(&format!(
            "[[lists]]\nname = \"{name}\"\nurl = \"{}\"\n",
            origin.url(&format!("/{name}"))
        ));
    }
    text.push_str(
        "[[groups]]\nname = \"all\"\nclients = [\"127.0.0.0/8\"]\n\
deny_lists = [\"huge\", \"junk\", \"longline\", \"silent\", \"fine\"]\n",
    );
    let config = dir.path().join("ferry.toml");
    std::fs::write(&config, &text).unwrap();
    let config = config.to_str().unwrap();
    let proxy = Proxy::start(
        ferry(),
        &[
            "--config",
            config,
            "--state-dir",
            dir.path().to_str().unwrap(),
            "--response-timeout",
            "2",
        ],
    );
    wait_status(&proxy, "127.0.0.1", "http://fine.test/", 403).await;
    wait_status(&proxy, "127.0.0.1", "http://afterlong.test/", 403).await;
    // The proxy serves while the silent list's fetch waits.
    let hello = ProxyClient::new(proxy.addr())
        .get(&origin.url("/other"))
        .await;
    assert_eq!(hello.status, 200);
    // Each failure is on the dashboard: no good copy, and the reason.
    let failed = |html: &str, name: &str, why: &str| {
        let row = list_row(html, name);
        row.contains("never") && row.contains(why)
    };
    assert!(
        wait_until(Duration::from_secs(20), || {
            let html = dashboard(&proxy);
            failed(&html, "huge", "larger than max_list_size")
                && failed(&html, "junk", "no domain rules")
                && failed(&html, "silent", "no response headers within")
        })
        .await,
        "{}",
        dashboard(&proxy)
    );
    let html = dashboard(&proxy);
    // The long line is skipped (one entry, one skipped line).
    let longline = list_row(&html, "longline");
    assert!(
        longline.contains("<td class=\"n\">1</td><td class=\"n\">1</td>"),
        "{longline}"
    );

    // A schedule that cannot be read refuses the start, naming it.
    std::fs::write(
        dir.path().join("bad.toml"),
        "[[groups]]\nname = \"x\"\nclients = [\"10.0.0.0/8\"]\nschedule = \"Mon-Fry 08:00-15:00\"\n",
    )
    .unwrap();
    let out = std::process::Command::new(ferry())
        .args(["proxy", "--listen", "127.0.0.1:0", "--no-cache", "--config"])
        .arg(dir.path().join("bad.toml"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("group \"x\"") && err.contains("Fry"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn sighup_with_a_broken_group_keeps_the_groups_in_force() {
    let lists = list_origin().await;
    let dir = tempfile::tempdir().unwrap();
    let list_file = dir.path().join("deny.txt");
    std::fs::write(&list_file, "games.test\n").unwrap();
    let config = dir.path().join("ferry.toml");
    std::fs::write(
        &config,
        format!(
            "[[groups]]\nname = \"g\"\nclients = [\"127.0.0.2/32\"]\ndeny_files = [\"{}\"]\n",
            list_file.display()
        ),
    )
    .unwrap();
    let proxy = start(config.to_str().unwrap(), dir.path());
    wait_status(&proxy, "127.0.0.2", "http://games.test/", 403).await;
    // The group's list file gains an entry and loses its readability in
    // turn: the first reload takes the entry, the broken one keeps it.
    std::fs::write(&list_file, "games.test\nchat.test\n").unwrap();
    proxy.signal(1);
    wait_status(&proxy, "127.0.0.2", "http://chat.test/", 403).await;
    std::fs::write(&list_file, "*bad*pattern\n").unwrap();
    proxy.signal(1);
    assert!(
        wait_until(Duration::from_secs(10), || proxy
            .stderr()
            .contains("groups not reloaded"))
        .await,
        "{}",
        proxy.stderr()
    );
    wait_status(&proxy, "127.0.0.2", "http://chat.test/", 403).await;

    // The config file's groups are read again too: a new deny pattern takes
    // effect, and a schedule that cannot be read keeps the groups in force,
    // with the reason.
    let group = |extra: &str| {
        format!(
            "[[groups]]\nname = \"g\"\nclients = [\"127.0.0.2/32\"]\ndeny = [\"video.test\"]\n{extra}"
        )
    };
    std::fs::write(&config, group("")).unwrap();
    proxy.signal(1);
    wait_status(&proxy, "127.0.0.2", "http://video.test/", 403).await;
    std::fs::write(&config, group("schedule = \"Mon-Fry 08:00-15:00\"\n")).unwrap();
    let before = proxy.stderr().matches("groups not reloaded").count();
    proxy.signal(1);
    assert!(
        wait_until(Duration::from_secs(10), || {
            proxy.stderr().matches("groups not reloaded").count() > before
        })
        .await
    );
    assert!(proxy.stderr().contains("Fry"), "{}", proxy.stderr());
    wait_status(&proxy, "127.0.0.2", "http://video.test/", 403).await;
    drop(lists);
}

#[tokio::test(flavor = "multi_thread")]
async fn policy_test_explains_what_would_happen_and_why() {
    let lists = list_origin().await;
    let dir = tempfile::tempdir().unwrap();
    let users = format!(
        "[[users]]\nname = \"alice\"\npassword_hash = \"{}\"\n",
        hash_password("pw")
    );
    let config = write_config(dir.path(), &lists, &users);
    let t = today_utc();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(ferry())
            .args(["policy", "test", "--config", &config, "--state-dir"])
            .arg(dir.path())
            .args(args)
            .env("TZ", "UTC")
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let (code, out) = run(&[
        "--client",
        "127.0.0.2",
        "--at",
        &format!("{} 09:00", DAYS[t]),
        "http://games.test/",
    ]);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("group students"), "{out}");
    assert!(out.contains("by its network 127.0.0.2/32"), "{out}");
    assert!(out.contains("covers"), "{out}");
    assert!(out.contains("REFUSED"), "{out}");
    assert!(out.contains("\"games.test\""), "{out}");
    assert!(out.contains("200.0 kB/s"), "{out}");

    // The night group on a day its schedule does not cover: allowed.
    let (code, out) = run(&[
        "--client",
        "127.0.0.3",
        "--at",
        &format!("{} 09:00", DAYS[t]),
        "http://games.test/",
    ]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("does not cover"), "{out}");
    assert!(out.contains("ALLOWED"), "{out}");

    // Outside allow_clients: refused before any group.
    let (code, out) = run(&["--client", "192.0.2.7", "http://toplevel.test/"]);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("REFUSED at connect"), "{out}");
    // In no group: the top-level rules.
    let (code, out) = run(&["--client", "127.0.0.9", "http://toplevel.test/"]);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("in no group"), "{out}");

    // A user's group wins over the address's.
    let with_user = write_config(
        dir.path(),
        &lists,
        &format!(
            "{users}[[groups]]\nname = \"staff\"\nusers = [\"alice\"]\nclients = [\"10.9.0.0/16\"]\n"
        ),
    );
    assert_eq!(with_user, config);
    let (code, out) = run(&[
        "--client",
        "127.0.0.2",
        "--user",
        "alice",
        "http://games.test/",
    ]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("group staff (by its user alice)"), "{out}");

    // Mistakes are named.
    let (code, out) = run(&[
        "--client",
        "127.0.0.2",
        "--at",
        "Someday 9",
        "http://a.test/",
    ]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("Someday"), "{out}");
    let (code, out) = run(&["--client", "127.0.0.2", "not a url"]);
    assert_eq!(code, Some(1), "{out}");
}
