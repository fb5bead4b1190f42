//! Access control: client addresses, destination deny and allow rules, list
//! files reloaded on SIGHUP, and proxy authentication.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use base64::Engine as _;
use common::*;

#[tokio::test(flavor = "multi_thread")]
async fn clients_outside_allow_client_are_refused() {
    let origin = Origin::start(|_| Reply::text("secret")).await;
    let proxy = proxy(&["--no-cache", "--allow-client", "127.0.0.1/32"]);

    let allowed = ProxyClient::new(proxy.addr()).get(&origin.url("/")).await;
    assert_eq!(allowed.status, 200);

    let other = ProxyClient::new(proxy.addr())
        .bind("127.0.0.2".parse().unwrap())
        .get(&origin.url("/"))
        .await;
    assert_eq!(other.status, 403);
    assert!(
        other
            .text()
            .contains("client address 127.0.0.2 is not in allow-client"),
        "{}",
        other.text()
    );
    assert_eq!(other.header("connection"), Some("close"));
    assert_eq!(
        origin.requests().len(),
        1,
        "the refused client reached nothing"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn denied_domains_get_a_page_naming_the_rule() {
    let proxy = proxy(&[
        "--no-cache",
        "--deny-domain",
        "blocked.test",
        "--deny-domain",
        "*.ads.test",
    ]);
    let client = ProxyClient::new(proxy.addr());
    for (url, rule) in [
        ("http://blocked.test/", "\"blocked.test\" (deny-domain)"),
        (
            "http://www.blocked.test/x",
            "\"blocked.test\" (deny-domain)",
        ),
        ("https://tracker.ads.test/", "\"*.ads.test\" (deny-domain)"),
    ] {
        let resp = client.get(url).await;
        assert_eq!(resp.status, 403, "{url}");
        let cause = resp.header("x-ferry-error").unwrap();
        assert!(cause.ends_with(rule), "{url}: {cause}");
        assert_eq!(
            resp.header("content-type"),
            Some("text/html; charset=utf-8")
        );
    }
    // `*.ads.test` covers subdomains only, so ads.test itself is not refused by it
    // (it fails later, as a DNS error, which is not a 403).
    let resp = client.get("http://ads.test/").await;
    assert_ne!(resp.status, 403);
}

#[tokio::test(flavor = "multi_thread")]
async fn allow_list_mode_refuses_everything_else() {
    let origin = Origin::start(|_| Reply::text("ok")).await;
    let proxy = proxy(&["--no-cache", "--allow-domain", "127.0.0.1"]);
    let client = ProxyClient::new(proxy.addr());
    assert_eq!(client.get(&origin.url("/")).await.status, 200);
    let resp = client.get("http://elsewhere.test/").await;
    assert_eq!(resp.status, 403);
    assert!(
        resp.text()
            .contains("elsewhere.test matches no rule of the allow list")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn list_files_are_reloaded_on_sighup_without_dropping_connections() {
    let gate = Gate::new();
    let origin = {
        let gate = gate.clone();
        Origin::start(move |req| {
            if req.path == "/slow" {
                Reply::text("slow done").gate(&gate)
            } else {
                Reply::text("ok")
            }
        })
        .await
    };
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("deny.txt");
    std::fs::write(&list, "# nothing blocked yet\n").unwrap();
    let proxy = proxy(&["--no-cache", "--deny-list", list.to_str().unwrap()]);
    let client = ProxyClient::new(proxy.addr());
    let blocked_url = "http://localhost:1/blocked";
    // Not denied yet: fails as a connection error, not a refusal.
    assert_ne!(client.get(blocked_url).await.status, 403);

    // A request in flight while the lists are reloaded must complete.
    let slow = {
        let (client, url) = (client.clone(), origin.url("/slow"));
        tokio::spawn(async move { client.get(&url).await })
    };
    assert!(wait_until(Duration::from_secs(10), || origin.count("/slow") == 1).await);

    std::fs::write(&list, "0.0.0.0 localhost.test\nlocalhost\n").unwrap();
    proxy.signal(libc::SIGHUP);
    assert!(
        wait_until(Duration::from_secs(10), || proxy
            .stderr()
            .contains("access lists reloaded"))
        .await,
        "{}",
        proxy.stderr()
    );
    let resp = client.get(blocked_url).await;
    assert_eq!(resp.status, 403);
    assert!(resp.text().contains("deny.txt:2"), "{}", resp.text());

    gate.open();
    let slow = slow.await.unwrap();
    assert_eq!(slow.status, 200);
    assert_eq!(slow.text(), "slow done");

    // A broken list keeps the previous rules.
    std::fs::write(&list, "bad*pattern\n").unwrap();
    proxy.signal(libc::SIGHUP);
    assert!(
        wait_until(Duration::from_secs(10), || proxy
            .stderr()
            .contains("reload failed"))
        .await
    );
    assert_eq!(client.get(blocked_url).await.status, 403);
}

#[tokio::test(flavor = "multi_thread")]
async fn proxy_authentication_asks_with_407_then_lets_the_user_in() {
    let origin = Origin::start(|_| Reply::text("members only")).await;
    let hash = hash_password("correct horse");
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    let user = format!("alice:{hash}");
    let proxy = proxy(&["--no-cache", "--auth-user", &user]);
    let client = ProxyClient::new(proxy.addr());

    let resp = client.get(&origin.url("/")).await;
    assert_eq!(resp.status, 407);
    assert_eq!(
        resp.header("proxy-authenticate"),
        Some("Basic realm=\"ferry\", charset=\"UTF-8\"")
    );

    let creds = |u: &str, p: &str| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
        )
    };
    let wrong = creds("alice", "wrong");
    let resp = client
        .get_with(&origin.url("/"), &[("proxy-authorization", &wrong)])
        .await;
    assert_eq!(resp.status, 407);
    assert_eq!(origin.requests().len(), 0);

    let right = creds("alice", "correct horse");
    let resp = client
        .get_with(&origin.url("/"), &[("proxy-authorization", &right)])
        .await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.text(), "members only");
    // The credentials are for the proxy only.
    assert!(origin.requests()[0].header("proxy-authorization").is_none());

    // curl's own proxy-user support works too.
    let out = curl(&[
        "-x",
        &proxy.url(),
        "--proxy-user",
        "alice:correct horse",
        &origin.url("/"),
    ]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "members only");

    let log = proxy.wait_stdout_lines(4, Duration::from_secs(5));
    assert!(log.iter().any(|l| l.contains(" - alice [")), "{log:?}");
}
