//! `ferry get --complete`: a page saved as one file with its stylesheets
//! (and their @imports), web font, srcset and lazy images, base URL, iframe
//! and script, opened by headless Chromium with the origin stopped and no
//! proxy; the second save served from the proxy's cache; and hostile pages
//! (import loops, an endless asset, data: URL bombs, 10,000 images) that
//! stay bounded and still get saved.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/complete")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

const INDEX: &str = r#"<!DOCTYPE html><html><head><meta charset="utf-8"><title>Complete page</title>
<base href="deep/">
<link rel="stylesheet" href="css/main.css">
<link rel="icon" href="../icon.png">
<style>
@font-face { font-family: FerryTest; src: url(fonts/FerryTest.ttf) format("truetype"); }
#font-sample { font-family: FerryTest, monospace; font-size: 20px; }
body { margin: 8px; font-family: monospace; }
img, iframe { display: block; margin: 4px 0; }
</style></head>
<body>
<h1 id="imported">imported colour</h1>
<p id="main">main colour</p>
<div id="bg" style="width: 64px; height: 64px; background: url('img/blue-64x64.png')"></div>
<div id="bg2" style="width: 64px; height: 64px"></div>
<img id="plain" src="img/red-40x30.png">
<img id="srcset" src="img/red-40x30.png" srcset="img/red-40x30.png 1x, img/red-80x60.png 2x">
<picture><source srcset="img/green-50x20.png" type="image/png"><img id="picture" src="img/red-40x30.png"></picture>
<img id="lazy" class="lazyload" loading="lazy" data-src="img/green-50x20.png"
     src="data:image/gif;base64,R0lGODlhAQABAAAAACH5BAEKAAEALAAAAAABAAEAAAICTAEAOw==">
<span id="font-sample">WWW</span>
<iframe id="frame" src="frame.html" width="300" height="60"></iframe>
<p id="js-target">before the script</p>
<script src="js/app.js"></script>
</body></html>"#;

/// The site: /site/index.html with everything under /site/deep/ (its base).
fn site(path: &str) -> Reply {
    let fresh = |ct: &str, body: Vec<u8>| {
        Reply::new(200)
            .header("content-type", ct)
            .header("cache-control", "max-age=600")
            .body(body)
    };
    let png = |name: &str| fresh("image/png", fixture(name));
    match path {
        "/site/index.html" => fresh("text/html; charset=utf-8", INDEX.into()),
        "/site/icon.png" => png("blue-64x64.png"),
        "/site/deep/css/main.css" => fresh(
            "text/css",
            b"@import \"sub/imported.css\";\n#main { color: rgb(10, 20, 30); }\n".to_vec(),
        ),
        // Its url() is relative to this sheet, not to the page.
        "/site/deep/css/sub/imported.css" => fresh(
            "text/css",
            b"#imported { color: rgb(200, 10, 20); }\n\
              #bg2 { background-image: url(../../img/blue-64x64.png); }\n"
                .to_vec(),
        ),
        "/site/deep/fonts/FerryTest.ttf" => fresh("font/ttf", fixture("FerryTest.ttf")),
        "/site/deep/img/red-40x30.png" => png("red-40x30.png"),
        "/site/deep/img/red-80x60.png" => png("red-80x60.png"),
        "/site/deep/img/green-50x20.png" => png("green-50x20.png"),
        "/site/deep/img/blue-64x64.png" => png("blue-64x64.png"),
        "/site/deep/img/frame-30x10.png" => png("frame-30x10.png"),
        "/site/deep/frame.html" => fresh(
            "text/html",
            b"<!DOCTYPE html><html><head><link rel=stylesheet href=frame.css></head>\
              <body><p id=frame-text>inside the frame</p><img id=frame-img src=img/frame-30x10.png></body></html>"
                .to_vec(),
        ),
        "/site/deep/frame.css" => fresh("text/css", b"#frame-text { color: rgb(0, 128, 0) }".to_vec()),
        // What a lazy-loading library does, and a DOM change to find later.
        "/site/deep/js/app.js" => fresh(
            "text/javascript",
            b"document.getElementById('js-target').textContent = 'changed by the script';\n\
              for (const img of document.querySelectorAll('img[data-src]')) img.src = img.dataset.src;\n"
                .to_vec(),
        ),
        _ => Reply::new(404),
    }
}

/// The asset paths of the site (everything but the page and its favicon probe).
const ASSETS: &[&str] = &[
    "/site/icon.png",
    "/site/deep/css/main.css",
    "/site/deep/css/sub/imported.css",
    "/site/deep/fonts/FerryTest.ttf",
    "/site/deep/img/red-40x30.png",
    "/site/deep/img/red-80x60.png",
    "/site/deep/img/green-50x20.png",
    "/site/deep/img/blue-64x64.png",
    "/site/deep/img/frame-30x10.png",
    "/site/deep/frame.html",
    "/site/deep/frame.css",
    "/site/deep/js/app.js",
];

fn driver() -> PathBuf {
    let driver = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser-driver");
    assert!(
        driver.join("node_modules/puppeteer-core").exists(),
        "the browser driver is not installed: npm ci --prefix tests/browser-driver (scripts/test.sh does)"
    );
    driver.join("complete.mjs")
}

/// Runs the browser driver; returns what it printed.
async fn drive(args: Vec<String>) -> Value {
    let script = driver();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(script)
            .args(&args)
            .clear_proxy_env()
            .output()
            .expect("node")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let seen: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|_| {
        panic!(
            "driver output: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert!(seen["error"].is_null(), "{seen:#}");
    seen
}

/// `ferry get --complete --json ...`: the run and its one JSON line.
async fn get_complete(proxy: &Proxy, dir: &Path, args: &[&str]) -> (Run, Value) {
    let mut all = vec!["--complete", "--json"];
    all.extend_from_slice(args);
    let run = ferry_get(proxy, dir, &all).await;
    let line: Value = serde_json::from_str(run.stdout.lines().next().unwrap_or(""))
        .unwrap_or_else(|_| panic!("{}", run.both()));
    (run, line)
}

fn screenshots_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("complete-pages");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread")]
async fn a_complete_page_renders_offline_with_every_asset_like_the_live_page() {
    let origin = Origin::start(|req| site(&req.path)).await;
    let proxy = proxy(&[]);
    let dir = tempfile::tempdir().unwrap();
    let (run, line) = get_complete(&proxy, dir.path(), &[&origin.url("/site/index.html")]).await;
    assert_eq!(run.code, Some(0), "{}", run.both());
    assert_eq!(line["assets"]["failed"], 0, "{line:#}");
    assert_eq!(line["assets"]["inlined"], ASSETS.len(), "{line:#}");
    let saved = dir.path().join("Complete page.html");
    let html = std::fs::read_to_string(&saved).unwrap();
    // Nothing in the file points back at the origin.
    let origin_host = format!("127.0.0.1:{}", origin.addr().port());
    assert!(!html.contains(&origin_host), "{html}");

    // The live page, through the proxy (its cache now holds everything).
    let shots = screenshots_dir();
    let (live_png, saved_png) = (shots.join("live.png"), shots.join("saved.png"));
    let live = drive(vec![
        "inspect".into(),
        chromium().into(),
        origin.url("/site/index.html"),
        live_png.display().to_string(),
        proxy.addr().to_string(),
    ])
    .await;

    // The saved file, with the origin stopped and no proxy at all.
    origin.stop();
    let seen = drive(vec![
        "inspect".into(),
        chromium().into(),
        format!("file://{}", saved.display()),
        saved_png.display().to_string(),
    ])
    .await;
    for view in [&live, &seen] {
        assert_eq!(view["imported"], "rgb(200, 10, 20)", "{view:#}");
        assert_eq!(view["main"], "rgb(10, 20, 30)", "{view:#}");
        assert_eq!(view["js_target"], "changed by the script", "{view:#}");
        assert_eq!(view["frame_text"], "inside the frame", "{view:#}");
        assert_eq!(view["frame_color"], "rgb(0, 128, 0)", "{view:#}");
        assert_eq!(view["frame_img"]["w"], 30, "{view:#}");
        assert_eq!(view["font_check"], true, "{view:#}");
        assert!(
            view["font_faces"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f == "FerryTest:loaded"),
            "{view:#}"
        );
        // Each glyph of the test font is 2.5 em wide: 3 × 2.5 × 20 px.
        assert_eq!(view["font_sample_width"], 150, "{view:#}");
        let sizes: Vec<(String, u64, u64)> = view["images"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                (
                    i["id"].as_str().unwrap().to_string(),
                    i["w"].as_u64().unwrap(),
                    i["h"].as_u64().unwrap(),
                )
            })
            .collect();
        let want = [
            ("plain", 40, 30),
            ("srcset", 40, 30),
            ("picture", 50, 20),
            ("lazy", 50, 20),
        ];
        let want: Vec<(String, u64, u64)> = want
            .iter()
            .map(|(i, w, h)| (i.to_string(), *w, *h))
            .collect();
        assert_eq!(sizes, want, "{view:#}");
        for bg in ["bg", "bg2"] {
            assert!(view[bg].as_str().unwrap().starts_with("url("), "{view:#}");
        }
    }
    // Offline, everything came from the file itself.
    let requests: Vec<&str> = seen["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    assert!(
        requests
            .iter()
            .all(|r| r.starts_with("file:") || r.starts_with("data:") || r.starts_with("about:")),
        "{requests:#?}"
    );
    assert!(
        requests.iter().any(|r| r.starts_with("data:font/ttf")),
        "{requests:#?}"
    );
    assert_eq!(seen["failed"].as_array().unwrap().len(), 0, "{seen:#}");
    assert!(
        seen["bg2"]
            .as_str()
            .unwrap()
            .starts_with("url(\"data:image/png"),
        "{seen:#}"
    );

    // The two renderings are the same, pixel for pixel.
    let diff = drive(vec![
        "compare".into(),
        chromium().into(),
        live_png.display().to_string(),
        saved_png.display().to_string(),
    ])
    .await;
    assert_eq!(diff["differing"], 0, "{diff:#} (see {})", shots.display());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_second_complete_save_is_served_from_the_proxy_cache() {
    let origin = Origin::start(|req| site(&req.path)).await;
    let proxy = proxy(&[]);
    let dir = tempfile::tempdir().unwrap();
    let url = origin.url("/site/index.html");
    let (first, line) = get_complete(&proxy, dir.path(), &[&url]).await;
    assert_eq!(first.code, Some(0), "{}", first.both());
    assert_eq!(line["assets"]["inlined"], ASSETS.len(), "{line:#}");
    for path in ASSETS {
        assert_eq!(origin.count(path), 1, "{path}");
    }
    let before = origin.requests().len();
    let logged = proxy
        .wait_stdout_lines(before, Duration::from_secs(5))
        .len();

    let (second, line) = get_complete(&proxy, dir.path(), &[&url]).await;
    assert_eq!(second.code, Some(0), "{}", second.both());
    assert_eq!(line["assets"]["inlined"], ASSETS.len(), "{line:#}");
    assert_eq!(line["assets"]["failed"], 0, "{line:#}");
    // No origin request at all the second time: the page and every asset hit.
    assert_eq!(origin.requests().len(), before);
    let log = proxy.wait_stdout_lines(logged + ASSETS.len() + 1, Duration::from_secs(5));
    let second_run = &log[logged..];
    assert_eq!(second_run.len(), ASSETS.len() + 1, "{second_run:#?}");
    for path in ASSETS {
        let wanted = format!("GET {} ", origin.url(path));
        assert!(
            second_run
                .iter()
                .any(|l| l.contains(&wanted) && l.ends_with("HIT")),
            "{path}: {second_run:#?}"
        );
    }
    assert!(
        second_run.iter().all(|l| l.ends_with("HIT")),
        "{second_run:#?}"
    );
    // Both saves are complete files with the same content.
    let a = std::fs::read(dir.path().join("Complete page.html")).unwrap();
    let b = std::fs::read(dir.path().join("Complete page (2).html")).unwrap();
    assert_eq!(a, b);
}

#[tokio::test(flavor = "multi_thread")]
async fn no_js_and_no_images_leave_a_static_copy() {
    let origin = Origin::start(|req| site(&req.path)).await;
    let proxy = proxy(&[]);
    let dir = tempfile::tempdir().unwrap();
    let (run, line) = get_complete(
        &proxy,
        dir.path(),
        &["--no-js", "--no-images", &origin.url("/site/index.html")],
    )
    .await;
    assert_eq!(run.code, Some(0), "{}", run.both());
    assert_eq!(line["assets"]["failed"], 0, "{line:#}");
    let html = std::fs::read_to_string(dir.path().join("Complete page.html")).unwrap();
    assert!(!html.contains("<script"), "{html}");
    assert!(!html.contains("data:image/png"), "{html}");
    assert!(html.contains("data:font/ttf"), "the font is still inlined");
    assert!(html.contains("srcdoc="), "the frame is still inlined");
    assert_eq!(origin.count("/site/deep/js/app.js"), 0);
    assert_eq!(origin.count("/site/deep/img/red-40x30.png"), 0);
}

/// Peak resident memory of a finished `ferry get` run, read from /proc while it ran.
struct Measured {
    run: Run,
    peak_rss_kib: u64,
    elapsed: Duration,
}

fn run_measured(proxy: &Proxy, dir: &Path, args: &[&str]) -> Measured {
    let started = Instant::now();
    let mut child = Command::new(ferry())
        .arg("get")
        .args(["--proxy", &proxy.url(), "--output-dir"])
        .arg(dir)
        .args(args)
        .clear_proxy_env()
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status_path = format!("/proc/{}/status", child.id());
    let mut peak = 0;
    loop {
        if let Ok(status) = std::fs::read_to_string(&status_path) {
            if let Some(kib) = status
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
            {
                peak = peak.max(kib);
            }
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "ferry get did not finish within a minute"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let out = child.wait_with_output().unwrap();
    Measured {
        run: Run {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        },
        peak_rss_kib: peak,
        elapsed: started.elapsed(),
    }
}

fn json_line(run: &Run) -> Value {
    serde_json::from_str(run.stdout.lines().next().unwrap_or(""))
        .unwrap_or_else(|_| panic!("{}", run.both()))
}

fn failures(line: &Value) -> Vec<(String, String)> {
    line["assets"]["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["url"].as_str().unwrap().to_string(),
                f["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn import_loops_an_endless_asset_and_data_url_bombs_stay_bounded() {
    // 4 MiB of base64 in one data: URL, and 20,000 small ones in a stylesheet.
    let big_data_url = format!("data:image/png;base64,{}", "A".repeat(4 << 20));
    let many = ".b{background:url(data:image/gif;base64,R0lGODlhAQABAAAAACwAAAAAAQABAAA=)}\n"
        .repeat(20_000);
    let page = format!(
        "<!DOCTYPE html><title>Hostile</title>\
         <link rel=stylesheet href=/loop.css><link rel=stylesheet href=/a.css>\
         <link rel=stylesheet href=/bomb.css>\
         <img id=big src=\"{big_data_url}\"><img src=/endless.png><img src=/huge.png>\
         <img src=/ok.png><p>still here</p>"
    );
    let origin = Origin::start(move |req| {
        let css = |body: String| {
            Reply::new(200)
                .header("content-type", "text/css")
                .body(body)
        };
        match req.path.as_str() {
            "/hostile.html" => Reply::html(page.clone()),
            "/loop.css" => css("@import url(loop.css);\n.l { color: red }".into()),
            "/a.css" => css("@import 'b.css';\n.a { color: red }".into()),
            "/b.css" => css("@import 'a.css';\n.b { color: red }".into()),
            "/bomb.css" => css(many.clone()),
            // No length and (for our purposes) no end: 1 TiB.
            "/endless.png" => Reply::new(200)
                .header("content-type", "image/png")
                .header("transfer-encoding", "chunked")
                .pattern(1 << 40),
            // Says how big it is: refused before reading.
            "/huge.png" => Reply::new(200)
                .header("content-type", "image/png")
                .pattern(1 << 40),
            "/ok.png" => Reply::new(200)
                .header("content-type", "image/png")
                .body(fixture("red-40x30.png")),
            _ => Reply::new(404),
        }
    })
    .await;
    let proxy = proxy(&["--no-cache"]);
    let dir = tempfile::tempdir().unwrap();
    let m = run_measured(
        &proxy,
        dir.path(),
        &[
            "--complete",
            "--json",
            "--max-asset-size",
            "8MiB",
            &origin.url("/hostile.html"),
        ],
    );
    eprintln!(
        "hostile page: {:?}, peak RSS {} KiB",
        m.elapsed, m.peak_rss_kib
    );
    assert_eq!(m.run.code, Some(0), "{}", m.run.both());
    let line = json_line(&m.run);
    let failed = failures(&line);
    let reason = |path: &str| {
        let url = origin.url(path);
        failed
            .iter()
            .find(|(u, _)| *u == url)
            .map(|(_, r)| r.clone())
            .unwrap_or_else(|| panic!("{path} is not among the failures: {failed:#?}"))
    };
    assert!(reason("/endless.png").contains("larger than --max-asset-size"));
    assert!(reason("/huge.png").contains("larger than --max-asset-size"));
    assert!(reason("/loop.css").contains("imports itself"));
    assert!(reason("/a.css").contains("imports itself"));
    assert_eq!(line["assets"]["failed"], 4, "{line:#}");
    // Each stylesheet was fetched once, the loops notwithstanding.
    for path in ["/loop.css", "/a.css", "/b.css", "/bomb.css"] {
        assert_eq!(origin.count(path), 1, "{path}");
    }
    let html = std::fs::read_to_string(dir.path().join("Hostile.html")).unwrap();
    assert!(html.contains("still here"));
    assert!(
        html.contains(&big_data_url),
        "the page's own data: URL is kept as it was"
    );
    assert!(html.contains(&format!("src=\"{}\"", origin.url("/endless.png"))));
    // Far less than the 1 TiB assets, or copies of the bombs per reference.
    assert!(
        m.peak_rss_kib < 300 * 1024,
        "peak RSS {} KiB",
        m.peak_rss_kib
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_page_with_ten_thousand_images_is_fetched_jobs_at_a_time_and_capped() {
    const N: usize = 10_000;
    let mut page = String::from("<!DOCTYPE html><title>Ten thousand</title>");
    for i in 0..N {
        page.push_str(&format!("<img src=/img/{i}.png>"));
    }
    let pixel = fixture("red-40x30.png");
    let origin = Origin::start(move |req| {
        if req.path == "/many.html" {
            return Reply::html(page.clone());
        }
        let reply = Reply::new(200)
            .header("content-type", "image/png")
            .header("cache-control", "max-age=600")
            .body(pixel.clone());
        // A few slow ones, so that fetches overlap and their bound shows.
        let n: usize = req.path[5..req.path.len() - 4].parse().unwrap_or(0);
        if n % 40 == 0 {
            reply.delay(Duration::from_millis(20))
        } else {
            reply
        }
    })
    .await;
    let proxy = proxy(&["--max-concurrent", "50"]);
    let dir = tempfile::tempdir().unwrap();
    let m = run_measured(
        &proxy,
        dir.path(),
        &[
            "--complete",
            "--json",
            "--jobs",
            "3",
            &origin.url("/many.html"),
        ],
    );
    eprintln!(
        "{N} images: {:?}, peak RSS {} KiB, origin at most {} at once",
        m.elapsed,
        m.peak_rss_kib,
        origin.max_in_flight()
    );
    assert_eq!(m.run.code, Some(0), "{}", m.run.both());
    let line = json_line(&m.run);
    assert_eq!(line["assets"]["inlined"], N, "{line:#}");
    assert_eq!(line["assets"]["failed"], 0, "{line:#}");
    assert_eq!(origin.requests().len(), N + 1);
    // --jobs 3 bounds the asset fetches, although the proxy would allow 50
    // (the slow images make them overlap up to that bound).
    assert!(
        (2..=3).contains(&origin.max_in_flight()),
        "{}",
        origin.max_in_flight()
    );

    // With a total cap, the page is saved with what fits; the rest stay links.
    let m = run_measured(
        &proxy,
        dir.path(),
        &[
            "--complete",
            "--json",
            "--max-page-size",
            "400KiB",
            &origin.url("/many.html"),
        ],
    );
    assert_eq!(m.run.code, Some(0), "{}", m.run.both());
    let line = json_line(&m.run);
    let inlined = line["assets"]["inlined"].as_u64().unwrap();
    let failed = line["assets"]["failed"].as_u64().unwrap();
    eprintln!(
        "capped at 400 KiB: {inlined} inlined, {failed} failed in {:?}",
        m.elapsed
    );
    assert!(inlined > 0 && failed > 0, "{line:#}");
    assert_eq!(inlined + failed, N as u64);
    assert!(
        failures(&line)
            .iter()
            .all(|(_, r)| r.contains("--max-page-size")),
        "{line:#}"
    );
    let saved = std::fs::metadata(dir.path().join("Ten thousand (2).html"))
        .unwrap()
        .len();
    assert!(saved < (page_len(N) + 400 * 1024) as u64, "{saved}");
}

/// The size of the ten-thousand-image page with absolute URLs (roughly).
fn page_len(n: usize) -> usize {
    n * "<img src=\"http://127.0.0.1:65535/img/9999.png\">".len()
}

#[tokio::test(flavor = "multi_thread")]
async fn get_complete_at_the_client_prompt() {
    let origin = Origin::start(|req| site(&req.path)).await;
    let proxy = proxy(&[]);
    let dir = tempfile::tempdir().unwrap();
    let script = format!(
        "get {plain}\nget --complete {page}\nquit\n",
        plain = origin.url("/site/deep/frame.html"),
        page = origin.url("/site/index.html")
    );
    let (proxy_url, out_dir) = (proxy.url(), dir.path().to_path_buf());
    let out = tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut child = Command::new(ferry())
            .args(["client", "--proxy", &proxy_url, "--output-dir"])
            .arg(&out_dir)
            .clear_proxy_env()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(script.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    let line = stdout
        .lines()
        .find(|l| l.contains("Complete page.html"))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(
        line.contains(&format!("assets: {} inlined, 0 failed", ASSETS.len())),
        "{line}"
    );
    // The plain get on the same session saved the frame page as it came.
    let plain = stdout
        .lines()
        .find(|l| l.contains("/site/deep/frame.html →"))
        .unwrap();
    assert!(!plain.contains("assets:"), "{plain}");
    let html = std::fs::read_to_string(dir.path().join("Complete page.html")).unwrap();
    assert!(html.contains("data:font/ttf"));
}
