//! Hostile pages for `ferry get --complete`: a page holding every way a
//! document can smuggle script past `--no-js` (author `srcdoc`, scriptable
//! `data:` documents in frames, objects and embeds, `javascript:` in SVG
//! animations and meta refresh, plugins, SVG `<script>`, frames too deep to
//! inline), saved with `--no-js` and opened in headless Chromium: nothing may
//! run, and nothing may reach the origin. The same page saved without
//! `--no-js` is the control that shows each carrier does run when left in.
//! And pages built to blow up the parser's DOM: saved as fetched, with the
//! reason, within bounded memory.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use common::*;
use serde_json::Value;

/// Script that, if it ever runs, asks the origin for `/marker/NAME` and
/// writes `ran:NAME` into the top document when it may.
fn ping(host: &str, name: &str) -> String {
    format!(
        "new Image().src='http://{host}/marker/{name}';\
         try{{top.document.getElementById('markers').textContent+=' ran:{name}'}}catch(e){{}}"
    )
}

/// `data:MIME;base64,…` of `body`.
fn data(mime: &str, body: &str) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(body);
    format!("data:{mime};base64,{b64}")
}

/// `text` as an HTML attribute value (inside double quotes).
fn attr(text: &str) -> String {
    text.replace('&', "&amp;").replace('"', "&quot;")
}

/// The markers the carriers of [`carriers_page`] would send, by carrier.
const MARKERS: &[&str] = &[
    "script",
    "script-src",
    "onerror",
    "svg-script",
    "srcdoc",
    "srcdoc-onerror",
    "srcdoc-nested",
    "data-html",
    "data-svg",
    "data-xhtml",
    "data-xml",
    "object-data",
    "embed-svg",
    "object-remote",
    "embed-remote",
    "deep-frame",
    "iframe-js",
    "refresh",
    "animate",
    "set",
    "link",
];

/// A page with every script carrier, and an image and a stylesheet that the
/// saved copy must still show.
fn carriers_page(host: &str) -> String {
    let p = |name: &str| ping(host, name);
    let svg_onload = |name: &str| {
        format!(
            "<svg xmlns='http://www.w3.org/2000/svg' onload=\"{}\"/>",
            attr(&p(name))
        )
    };
    let nested_srcdoc = format!(
        "<iframe srcdoc=\"{}\"></iframe>",
        attr(&format!("<script>{}</script>", p("srcdoc-nested")))
    );
    let srcdoc = format!(
        "<script>{}</script><img src='data:,' onerror=\"{}\">{nested_srcdoc}",
        p("srcdoc"),
        attr(&p("srcdoc-onerror"))
    );
    format!(
        r##"<!DOCTYPE html><html><head><title>Hostile carriers</title>
<link rel=stylesheet href=/hostile/style.css>
<meta http-equiv=refresh content="1;url=javascript:{refresh}">
</head><body>
<p id=main>styled by the stylesheet</p>
<img id=pic src=/hostile/red.png>
<div id=markers>markers:</div>
<script>{script}</script>
<script src=/hostile/app.js></script>
<img src="data:," onerror="{onerror}">
<svg width=10 height=10><script>{svg_script}</script></svg>
<iframe srcdoc="{srcdoc}"></iframe>
<iframe src="{data_html}"></iframe>
<iframe src="{data_svg}"></iframe>
<iframe src="{data_xhtml}"></iframe>
<iframe src="{data_xml}"></iframe>
<object data="{object_data}" type=text/html></object>
<embed src="{embed_svg}" type=image/svg+xml>
<object data=/hostile/object.html type=text/html></object>
<embed src=/hostile/embed.html type=text/html>
<iframe src=/hostile/f1.html></iframe>
<iframe src="javascript:{iframe_js}"></iframe>
<svg width=20 height=20><a><animate attributeName=href values="#x;javascript:{animate}"/>
<set attributeName=href to="javascript:{set}"/><text y=10>svg link</text></a></svg>
<a href="javascript:{link}">link</a>
</body></html>"##,
        refresh = attr(&p("refresh")),
        script = p("script"),
        onerror = attr(&p("onerror")),
        svg_script = p("svg-script"),
        srcdoc = attr(&srcdoc),
        data_html = data("text/html", &format!("<script>{}</script>", p("data-html"))),
        data_svg = data("image/svg+xml", &svg_onload("data-svg")),
        data_xhtml = data(
            "application/xhtml+xml",
            &format!(
                "<html xmlns='http://www.w3.org/1999/xhtml'><body><script>{}</script></body></html>",
                p("data-xhtml")
            )
        ),
        data_xml = data(
            "text/xml",
            &format!(
                "<x><script xmlns='http://www.w3.org/1999/xhtml'>{}</script></x>",
                p("data-xml")
            )
        ),
        object_data = data(
            "text/html",
            &format!("<script>{}</script>", p("object-data"))
        ),
        embed_svg = data("image/svg+xml", &svg_onload("embed-svg")),
        iframe_js = attr(&p("iframe-js")),
        animate = attr(&p("animate")),
        set = attr(&p("set")),
        link = attr(&p("link")),
    )
}

fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/complete")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The origin of the carriers page: the page, its image, stylesheet and
/// script, a remote object and embed, and four frames nested one deeper
/// than `--complete` inlines (the last one would run live).
fn carriers_origin(req: &Recorded) -> Reply {
    let host = req.header("host").unwrap_or("127.0.0.1").to_string();
    let html = |body: String| Reply::html(body);
    let pinged = |name: &str| html(format!("<script>{}</script>", ping(&host, name)));
    match req.path.as_str() {
        "/hostile/page.html" => html(carriers_page(&host)),
        "/hostile/red.png" => Reply::new(200)
            .header("content-type", "image/png")
            .body(fixture("red-40x30.png")),
        "/hostile/style.css" => Reply::new(200)
            .header("content-type", "text/css")
            .body("#main { color: rgb(1, 2, 3) }"),
        "/hostile/app.js" => Reply::new(200)
            .header("content-type", "text/javascript")
            .body(ping(&host, "script-src")),
        "/hostile/object.html" => pinged("object-remote"),
        "/hostile/embed.html" => pinged("embed-remote"),
        "/hostile/f1.html" => html("<iframe src=f2.html></iframe>".into()),
        "/hostile/f2.html" => html("<iframe src=f3.html></iframe>".into()),
        "/hostile/f3.html" => html("<iframe src=f4.html></iframe>".into()),
        "/hostile/f4.html" => pinged("deep-frame"),
        _ => Reply::new(404),
    }
}

/// Opens `file` in headless Chromium (no proxy, as tests/browser.rs does)
/// and returns its DOM after scripts had their time.
fn dump_dom(file: &Path) -> String {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--no-proxy-server",
            "--virtual-time-budget=5000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("file://{}", file.display()))
        .output()
        .expect("run chromium");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The markers the origin was asked for from request `from` on.
fn markers_since(origin: &Origin, from: usize) -> BTreeSet<String> {
    origin.requests()[from..]
        .iter()
        .filter_map(|r| r.path.strip_prefix("/marker/").map(str::to_string))
        .collect()
}

/// Saves the carriers page with `ferry get --complete --json EXTRA...` into
/// `dir`; returns the saved file.
async fn save(proxy: &Proxy, origin: &Origin, dir: &Path, extra: &[&str]) -> PathBuf {
    let url = origin.url("/hostile/page.html");
    let mut args = vec!["--complete", "--json"];
    args.extend_from_slice(extra);
    args.push(&url);
    let run = ferry_get(proxy, dir, &args).await;
    assert_eq!(run.code, Some(0), "{}", run.both());
    let line: Value = serde_json::from_str(run.stdout.lines().next().unwrap_or(""))
        .unwrap_or_else(|_| panic!("{}", run.both()));
    assert!(line["assets"]["not_completed"].is_null(), "{line:#}");
    dir.join("Hostile carriers.html")
}

/// Opens `file` in Chromium with the origin still up: (the DOM, the markers
/// the origin saw, every path the origin was asked for meanwhile).
async fn open(origin: &Origin, file: &Path) -> (String, BTreeSet<String>, Vec<String>) {
    let before = origin.requests().len();
    let file = file.to_path_buf();
    let dom = tokio::task::spawn_blocking(move || dump_dom(&file))
        .await
        .unwrap();
    let paths = origin.requests()[before..]
        .iter()
        .map(|r| r.path.clone())
        .collect();
    (dom, markers_since(origin, before), paths)
}

#[tokio::test(flavor = "multi_thread")]
async fn no_js_leaves_every_script_carrier_dead_in_chromium() {
    let origin = Origin::start(carriers_origin).await;
    let proxy = proxy(&["--no-cache"]);

    // The control: saved without --no-js, the carriers run when opened.
    let plain_dir = tempfile::tempdir().unwrap();
    let plain = save(&proxy, &origin, plain_dir.path(), &[]).await;
    let (dom, fired, _) = open(&origin, &plain).await;
    eprintln!("without --no-js these ran: {fired:?}");
    // All but those that wait for a click or that Chromium refuses by itself
    // (javascript: in a refresh, in SVG animations, in a link), and the
    // javascript: frame, which headless Chromium runs only now and then.
    for must_run in MARKERS
        .iter()
        .filter(|m| !["refresh", "animate", "set", "link", "iframe-js"].contains(m))
    {
        assert!(
            fired.contains(*must_run),
            "the control does not show {must_run} running: {fired:?}\n{dom}"
        );
    }
    assert!(dom.contains("ran:script"), "{dom}");

    // With --no-js: nothing runs, nothing is fetched, the image and the
    // stylesheet are still there.
    let dir = tempfile::tempdir().unwrap();
    let saved = save(&proxy, &origin, dir.path(), &["--no-js"]).await;
    let (dom, fired, paths) = open(&origin, &saved).await;
    assert!(fired.is_empty(), "these carriers ran: {fired:?}\n{dom}");
    assert!(paths.is_empty(), "the saved page fetched {paths:?}");
    assert!(!dom.contains("ran:"), "{dom}");
    let html = std::fs::read_to_string(&saved).unwrap();
    let lower = html.to_ascii_lowercase();
    for gone in [
        "javascript:",
        "<script",
        "<object",
        "<embed",
        "data:text/html",
        "data:image/svg+xml",
        "data:application/xhtml+xml",
        "data:text/xml",
        "onerror",
        "/marker/",
        "/hostile/",
    ] {
        assert!(
            !lower.contains(gone),
            "{gone} is in the saved file:\n{html}"
        );
    }
    assert!(
        html.contains(
            r#"<head><meta http-equiv="Content-Security-Policy" content="script-src 'none'; object-src 'none'">"#
        ),
        "{html}"
    );
    assert!(dom.contains("markers:"), "Chromium showed the page: {dom}");
    assert!(
        dom.contains("id=\"pic\" src=\"data:image/png;base64,"),
        "{dom}"
    );

    // Rendered: the inlined image has its size and the inlined stylesheet applies.
    let shot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("hostile-no-js.png");
    let seen = inspect(&saved, &shot).await;
    assert_eq!(seen["main"], "rgb(1, 2, 3)", "{seen:#}");
    let pic = seen["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == "pic")
        .cloned()
        .unwrap_or_else(|| panic!("{seen:#}"));
    assert_eq!((pic["w"].as_u64(), pic["h"].as_u64()), (Some(40), Some(30)));
    assert!(
        markers_since(&origin, 0)
            .iter()
            .all(|m| MARKERS.contains(&m.as_str()))
    );
}

/// The browser driver of tests/complete_pages.rs on `file`: computed colours
/// and every image's natural size.
async fn inspect(file: &Path, screenshot: &Path) -> Value {
    let driver = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser-driver");
    assert!(
        driver.join("node_modules/puppeteer-core").exists(),
        "the browser driver is not installed: npm ci --prefix tests/browser-driver (scripts/test.sh does)"
    );
    let args = vec![
        driver.join("complete.mjs").display().to_string(),
        "inspect".into(),
        chromium().into(),
        format!("file://{}", file.display()),
        screenshot.display().to_string(),
    ];
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node")
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

/// Peak resident memory of a `ferry get` run, read from /proc while it ran
/// (VmHWM, polled), and what it printed.
struct Measured {
    run: Run,
    peak_rss_kib: u64,
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
        // Bounds on a hang or a blow-up (that would take the machine down),
        // not a timing assertion.
        if started.elapsed() > Duration::from_secs(300) || peak > 2 << 20 {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "ferry get stopped after {:?} at a peak RSS of {peak} KiB",
                started.elapsed()
            );
        }
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
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn pages_built_to_blow_up_the_dom_are_saved_as_fetched_in_bounded_memory() {
    const MIB: usize = 1 << 20;
    // The title is read from the first 512 KiB by a parse of its own
    // (title.rs, not --complete's): a comment keeps these pages out of it.
    let head = format!(
        "<!DOCTYPE html><title>Blow-up</title><!--{}-->",
        "-".repeat(600 << 10)
    );
    let fill = |unit: &str, size: usize| format!("{head}{}", unit.repeat(size / unit.len()));
    // 8 MiB of bare tags (about 70 bytes of DOM per byte), 8 MiB of
    // attributes, formatting elements that the parser clones for every
    // paragraph (each `</p><p>x` rebuilds all 2,000 open <b>s), and 200,000
    // nested <div>s (each new one makes the parser scan all the others).
    let bare = fill("<p>", 8 * MIB);
    let attrs = fill(
        "<p a=1 b=2 c=3 d=4 e=5 f=6 g=7 h=8 i=9 j=0 k=1 l=2 m=3 n=4 o=5 q=6>",
        8 * MIB,
    );
    let mut clones = format!("{head}<p>");
    for i in 0..2000 {
        clones.push_str(&format!("<b id=b{i}>"));
    }
    clones.push_str(&"</p><p>x".repeat(MIB / 8));
    let nested = fill("<div>", MIB);
    let origin = Origin::start(move |req| match req.path.as_str() {
        "/bare.html" => Reply::html(bare.clone()),
        "/attrs.html" => Reply::html(attrs.clone()),
        "/clones.html" => Reply::html(clones.clone()),
        "/nested.html" => Reply::html(nested.clone()),
        _ => Reply::new(404),
    })
    .await;
    let proxy = proxy(&["--no-cache"]);
    for (path, reason) in [
        ("/bare.html", "--max-page-size"),
        ("/attrs.html", "--max-page-size"),
        ("/clones.html", "--max-page-size"),
        ("/nested.html", "nested too deep"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let m = run_measured(
            &proxy,
            dir.path(),
            &["--complete", "--json", &origin.url(path)],
        );
        eprintln!("{path}: peak RSS {} KiB", m.peak_rss_kib);
        assert_eq!(m.run.code, Some(0), "{}", m.run.both());
        let line: Value = serde_json::from_str(m.run.stdout.lines().next().unwrap_or(""))
            .unwrap_or_else(|_| panic!("{}", m.run.both()));
        let why = line["assets"]["not_completed"].as_str().unwrap_or_default();
        assert!(why.contains(reason), "{path}: {line:#}");
        // Saved as fetched.
        let saved = std::fs::read(dir.path().join("Blow-up.html")).unwrap();
        assert_eq!(
            saved.len() as u64,
            line["bytes"].as_u64().unwrap(),
            "{path}"
        );
        assert!(saved.starts_with(b"<!DOCTYPE html><title>Blow-up</title>"));
        // The DOM budget is 4 × the page cap (128 MiB by default); without
        // it these took 0.6 GiB to many GiB, or hours.
        assert!(
            m.peak_rss_kib < 512 * 1024,
            "{path}: peak RSS {} KiB",
            m.peak_rss_kib
        );
    }
}
