//! One walk over an HTML document (parsed by html5ever through `scraper`,
//! serialized back by html5ever) that finds every asset reference and puts
//! in what a [`Resolve`] gives for it. The same walk runs twice: first with
//! a resolver that only records what is needed, then, once that has been
//! fetched, with one that hands out the `data:` URLs. Running one function
//! both times keeps the two passes from ever disagreeing about what a page
//! references.
//!
//! Every URL that is not inlined is made absolute (the `<base>` is resolved
//! first and then removed), so the saved file works from any folder.
//!
//! An author's `<iframe srcdoc>` is a document of its own: it is walked the
//! same way (recursively, [`MAX_SRCDOC_DEPTH`] deep), so its assets are
//! inlined and, with `--no-js`, it is sanitised like the page ([`no_js`]).
//! Every document is parsed within the page's [`DomBudget`].

use ego_tree::NodeId;
use html5ever::serialize::{SerializeOpts, TraversalScope, serialize};
use html5ever::{LocalName, Namespace, QualName};
use scraper::{Html, Node, StrTendril};
use url::Url;

use super::css::{self, RefKind};
use super::no_js;
use super::srcset;
use crate::dom::{self, DomBudget, TooBig};

/// How deep author `srcdoc` documents inside each other are walked; deeper
/// ones are left as they are, or dropped with `--no-js`.
pub const MAX_SRCDOC_DEPTH: usize = 3;

/// What an asset reference is used as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Anything inlined as it is: image, font, script, icon.
    Data,
    /// A stylesheet, inlined after its own references are.
    Css,
    /// An `<iframe>` / `<frame>` document, inlined as completed HTML.
    Frame,
}

/// Gives the replacement for an asset reference, or `None` to leave the
/// absolute URL.
pub trait Resolve {
    fn resolve(&mut self, kind: Kind, url: &Url) -> Option<String>;
}

/// What the walk does besides resolving.
#[derive(Debug, Clone, Copy)]
pub struct WalkOptions {
    pub no_js: bool,
    pub no_images: bool,
    /// Whether frames may be inlined (false at the depth limit).
    pub frames: bool,
}

/// Lazy-loading attributes that hold the real image (`data-src` and friends).
const LAZY_SRC: &[&str] = &["data-src", "data-lazy-src", "data-original"];
const LAZY_SRCSET: &[&str] = &["data-srcset", "data-lazy-srcset"];
/// `<link rel>` values that only ask the browser to fetch ahead: offline they
/// could only fail.
const FETCH_AHEAD: &[&str] = &[
    "preload",
    "prefetch",
    "modulepreload",
    "preconnect",
    "dns-prefetch",
    "prerender",
];

/// `value` as an absolute http(s) URL against `base`, unless it is empty, a
/// fragment, `data:`, or another scheme (those are left alone).
pub fn absolute(base: &Url, value: &str) -> Option<Url> {
    let v = value.trim_matches(|c: char| c.is_ascii_whitespace());
    if v.is_empty() || v.starts_with('#') {
        return None;
    }
    let url = base.join(v).ok()?;
    matches!(url.scheme(), "http" | "https").then_some(url)
}

/// A CSS text with each reference resolved against `base`: inlined, or left
/// as an absolute URL (an inlined stylesheet has no base of its own).
pub fn inline_css(text: &str, base: &Url, r: &mut dyn Resolve) -> String {
    let refs = css::references(text);
    if refs.is_empty() {
        return text.to_string();
    }
    css::rewrite(text, &refs, |rf| {
        let url = absolute(base, &rf.url)?;
        let kind = match rf.kind {
            RefKind::Import => Kind::Css,
            RefKind::Url => Kind::Data,
        };
        Some(r.resolve(kind, &url).unwrap_or_else(|| url.to_string()))
    })
}

/// The document's base URL: its first `<base href>`, resolved against the page URL.
fn base_of(doc: &Html, page: &Url) -> Url {
    for node in doc.tree.nodes() {
        if let Node::Element(el) = node.value() {
            if &*el.name.local == "base" {
                if let Some(href) = el.attr("href") {
                    if let Ok(url) = page.join(href.trim()) {
                        return url;
                    }
                }
            }
        }
    }
    page.clone()
}

fn attr_name(name: &str) -> QualName {
    QualName::new(None, Namespace::from(""), LocalName::from(name))
}

/// An element's attributes, edited in place.
struct Attrs<'a>(&'a mut Vec<(QualName, StrTendril)>);

impl Attrs<'_> {
    fn get(&self, name: &str) -> Option<String> {
        self.0
            .iter()
            .find(|(q, _)| &*q.local == name)
            .map(|(_, v)| v.to_string())
    }
    fn set(&mut self, name: &str, value: &str) {
        match self.0.iter_mut().find(|(q, _)| &*q.local == name) {
            Some((_, v)) => *v = StrTendril::from(value),
            None => self.0.push((attr_name(name), StrTendril::from(value))),
        }
    }
    fn remove(&mut self, name: &str) {
        self.0.retain(|(q, _)| &*q.local != name);
    }
}

/// Resolves `attr` as one URL of `kind`; sets the inlined or absolute URL.
fn url_attr(a: &mut Attrs<'_>, attr: &str, kind: Kind, base: &Url, r: &mut dyn Resolve) {
    let Some(value) = a.get(attr) else { return };
    if let Some(url) = absolute(base, &value) {
        let new = r.resolve(kind, &url).unwrap_or_else(|| url.to_string());
        a.set(attr, &new);
    }
}

/// Makes `attr` absolute without fetching it.
fn absolute_attr(a: &mut Attrs<'_>, attr: &str, base: &Url) {
    if let Some(url) = a.get(attr).and_then(|v| absolute(base, &v)) {
        a.set(attr, url.as_str());
    }
}

fn srcset_attr(a: &mut Attrs<'_>, attr: &str, base: &Url, r: &mut dyn Resolve) {
    let Some(value) = a.get(attr) else { return };
    let mut candidates = srcset::parse(&value);
    for c in &mut candidates {
        if let Some(url) = absolute(base, &c.url) {
            c.url = r
                .resolve(Kind::Data, &url)
                .unwrap_or_else(|| url.to_string());
        }
    }
    a.set(attr, &srcset::serialize(&candidates));
}

/// Moves the first lazy-loading attribute present into `target`.
fn promote_lazy(a: &mut Attrs<'_>, lazy: &[&str], target: &str) {
    let mut found = None;
    for name in lazy {
        if let Some(v) = a.get(name) {
            a.remove(name);
            if found.is_none() && !v.trim().is_empty() {
                found = Some(v);
            }
        }
    }
    if let Some(v) = found {
        a.set(target, &v);
    }
}

/// One pass of the walk: what it does, where its answers come from, and
/// the budget its documents are parsed within.
struct Pass<'p> {
    opts: WalkOptions,
    budget: &'p DomBudget,
    r: &'p mut dyn Resolve,
    /// Whether documents are written back (pass two) or only read (pass one).
    output: bool,
}

/// Walks `text` (a whole document fetched from `page`), resolving every
/// asset with `r`; returns the serialized result when `output` is set, or
/// why the document could not be parsed within `budget`.
pub fn walk(
    text: &str,
    page: &Url,
    opts: WalkOptions,
    budget: &DomBudget,
    r: &mut dyn Resolve,
    output: bool,
) -> Result<Option<String>, TooBig> {
    let mut pass = Pass {
        opts,
        budget,
        r,
        output,
    };
    walk_document(text, page, &mut pass, 0)
}

/// One document: the page, a frame's page, or (at `srcdoc_depth` > 0) an
/// author's `srcdoc`, whose base is its parent's.
fn walk_document(
    text: &str,
    page: &Url,
    pass: &mut Pass<'_>,
    srcdoc_depth: usize,
) -> Result<Option<String>, TooBig> {
    let mut dom = dom::parse_document(text, pass.budget)?;
    let doc = &mut dom.doc;
    let base = base_of(doc, page);
    let ids: Vec<NodeId> = doc
        .tree
        .nodes()
        .filter(|n| n.value().is_element())
        .map(|n| n.id())
        .collect();
    let mut detach: Vec<NodeId> = Vec::new();
    let mut styles: Vec<NodeId> = Vec::new();
    for id in ids {
        let Some(mut node) = doc.tree.get_mut(id) else {
            continue;
        };
        let Node::Element(el) = node.value() else {
            continue;
        };
        let name = el.name.local.to_string();
        let mut a = Attrs(&mut el.attrs);
        if element(&name, &mut a, &base, pass, srcdoc_depth) == Keep::Drop {
            detach.push(id);
            continue;
        }
        if name == "style" {
            styles.push(id);
        }
    }
    for id in styles {
        inline_style_element(doc, id, &base, pass.r);
    }
    for id in detach {
        if let Some(mut node) = doc.tree.get_mut(id) {
            node.detach();
        }
    }
    if !pass.output {
        return Ok(None);
    }
    if pass.opts.no_js {
        no_js::insert_script_policy(doc);
    }
    let mut buf = Vec::new();
    let opts = SerializeOpts {
        // The document was parsed with scripting on (`<noscript>` holds raw
        // text), so it is written back the same way.
        scripting_enabled: true,
        traversal_scope: TraversalScope::IncludeNode,
        create_missing_parent: false,
    };
    // Writing into a Vec fails only on a node html5ever cannot write, which
    // a parsed document has none of; the text is kept as it came then.
    if serialize(&mut buf, &*doc, opts).is_err() {
        return Ok(Some(text.to_string()));
    }
    // Taken as it is when valid (it is: html5ever writes UTF-8), not copied.
    Ok(Some(String::from_utf8(buf).unwrap_or_else(|e| {
        String::from_utf8_lossy(e.as_bytes()).into_owned()
    })))
}

#[derive(PartialEq, Eq)]
enum Keep {
    Keep,
    Drop,
}

/// The rules for one element; returns whether it stays in the document.
fn element(
    name: &str,
    a: &mut Attrs<'_>,
    base: &Url,
    pass: &mut Pass<'_>,
    srcdoc_depth: usize,
) -> Keep {
    let opts = pass.opts;
    if opts.no_js {
        if no_js::drops_element(name, a.0) {
            return Keep::Drop;
        }
        no_js::strip_attrs(name, a.0);
    }
    if let Some(style) = a.get("style") {
        let inlined = inline_css(&style, base, pass.r);
        a.set("style", &inlined);
    }
    if a.get("background").is_some() && !opts.no_images {
        url_attr(a, "background", Kind::Data, base, pass.r);
    }
    if name == "iframe" || name == "frame" {
        frame(name, a, base, pass, srcdoc_depth);
        return Keep::Keep;
    }
    let r = &mut *pass.r;
    match name {
        "base" => return Keep::Drop,
        "meta" => {
            let equiv = a.get("http-equiv").unwrap_or_default().to_ascii_lowercase();
            // A page's own Content-Security-Policy could forbid its inlined assets.
            if equiv.trim() == "content-security-policy" {
                return Keep::Drop;
            }
            // The saved file is written as UTF-8.
            if a.get("charset").is_some() {
                a.set("charset", "utf-8");
            }
            if equiv.trim() == "content-type" {
                a.set("content", "text/html; charset=utf-8");
            }
        }
        "link" => {
            let rel = a.get("rel").unwrap_or_default().to_ascii_lowercase();
            let rels: Vec<&str> = rel.split_ascii_whitespace().collect();
            if rels.iter().any(|r| FETCH_AHEAD.contains(r)) {
                return Keep::Drop;
            }
            if rels.contains(&"stylesheet") {
                url_attr(a, "href", Kind::Css, base, r);
                a.remove("integrity");
            } else if rels.iter().any(|r| r.contains("icon")) {
                if opts.no_images {
                    return Keep::Drop;
                }
                url_attr(a, "href", Kind::Data, base, r);
            } else {
                absolute_attr(a, "href", base);
            }
        }
        "script" => {
            url_attr(a, "src", Kind::Data, base, r);
            a.remove("integrity");
        }
        "img" | "source" => {
            if opts.no_images {
                for attr in ["src", "srcset"].iter().chain(LAZY_SRC).chain(LAZY_SRCSET) {
                    a.remove(attr);
                }
                return Keep::Keep;
            }
            promote_lazy(a, LAZY_SRCSET, "srcset");
            if name == "img" {
                promote_lazy(a, LAZY_SRC, "src");
                // Everything is in the file: nothing is left to load later.
                a.remove("loading");
                url_attr(a, "src", Kind::Data, base, r);
            } else {
                // A <source src> belongs to <video>/<audio>: media stay links.
                absolute_attr(a, "src", base);
            }
            srcset_attr(a, "srcset", base, r);
        }
        "input" => {
            let image = a
                .get("type")
                .is_some_and(|t| t.trim().eq_ignore_ascii_case("image"));
            if image && !opts.no_images {
                url_attr(a, "src", Kind::Data, base, r);
            } else {
                absolute_attr(a, "src", base);
            }
            absolute_attr(a, "formaction", base);
        }
        "video" => {
            if opts.no_images {
                a.remove("poster");
            } else {
                url_attr(a, "poster", Kind::Data, base, r);
            }
            absolute_attr(a, "src", base);
        }
        "audio" | "track" | "embed" => absolute_attr(a, "src", base),
        "object" => absolute_attr(a, "data", base),
        "image" | "use" | "feImage" if !opts.no_images => {
            url_attr(a, "href", Kind::Data, base, r);
        }
        "a" | "area" => absolute_attr(a, "href", base),
        "form" => absolute_attr(a, "action", base),
        "button" => absolute_attr(a, "formaction", base),
        _ => {}
    }
    Keep::Keep
}

/// An `<iframe>` or `<frame>`: an author's `srcdoc` walked as a document of
/// its own (a browser shows it and ignores `src`), else the page at `src`
/// inlined when it could be completed. With `--no-js` a frame that is not
/// inlined loads nothing: the page behind it would run its own scripts.
fn frame(name: &str, a: &mut Attrs<'_>, base: &Url, pass: &mut Pass<'_>, srcdoc_depth: usize) {
    let no_js = pass.opts.no_js;
    if let Some(srcdoc) = a.get("srcdoc").filter(|_| name == "iframe") {
        let walked = (srcdoc_depth < MAX_SRCDOC_DEPTH)
            .then(|| walk_document(&srcdoc, base, pass, srcdoc_depth + 1));
        match walked {
            Some(Ok(Some(html))) => a.set("srcdoc", &html),
            // Pass one: read, nothing to write.
            Some(Ok(None)) => {}
            // Nested too deep, or past the page's budget: unsafe to keep.
            _ if no_js => a.remove("srcdoc"),
            _ => {}
        }
        if no_js {
            a.remove("src");
        } else {
            absolute_attr(a, "src", base);
        }
        return;
    }
    let target = a.get("src").and_then(|v| absolute(base, &v));
    let inlined = match &target {
        Some(url) if pass.opts.frames => pass.r.resolve(Kind::Frame, url),
        _ => None,
    };
    match (inlined, target) {
        (Some(html), _) if name == "iframe" => {
            a.set("srcdoc", &html);
            a.remove("src");
        }
        (Some(html), _) => a.set(
            "src",
            &super::data_url::data_url("text/html;charset=utf-8", html.as_bytes()),
        ),
        (None, _) if no_js && a.get("src").is_some() => a.set("src", "about:blank"),
        (None, Some(url)) => a.set("src", url.as_str()),
        (None, None) => {}
    }
}

/// A `<style>` element's text with its references resolved.
fn inline_style_element(doc: &mut Html, id: NodeId, base: &Url, r: &mut dyn Resolve) {
    let Some(node) = doc.tree.get(id) else { return };
    let mut text = String::new();
    let mut texts = Vec::new();
    for child in node.children() {
        if let Node::Text(t) = child.value() {
            text.push_str(&t.text);
            texts.push(child.id());
        }
    }
    let Some((&first, rest)) = texts.split_first() else {
        return;
    };
    let inlined = inline_css(&text, base, r);
    if let Some(mut node) = doc.tree.get_mut(first) {
        if let Node::Text(t) = node.value() {
            t.text = StrTendril::from(inlined.as_str());
        }
    }
    for id in rest {
        if let Some(mut node) = doc.tree.get_mut(*id) {
            node.detach();
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::collections::HashMap;

    use super::*;

    /// Records what is asked for and answers from a table.
    #[derive(Default)]
    struct Table {
        asked: Vec<(Kind, String)>,
        answers: HashMap<String, String>,
    }

    impl Resolve for Table {
        fn resolve(&mut self, kind: Kind, url: &Url) -> Option<String> {
            self.asked.push((kind, url.to_string()));
            self.answers.get(url.as_str()).cloned()
        }
    }

    /// Pass two over `html`, with room for any test page.
    fn run(html: &str, page: &Url, opts: WalkOptions, t: &mut Table) -> String {
        let budget = DomBudget::new(1 << 30);
        walk(html, page, opts, &budget, t, true).unwrap().unwrap()
    }

    const OPTS: WalkOptions = WalkOptions {
        no_js: false,
        no_images: false,
        frames: true,
    };

    #[test]
    fn resolves_against_the_base_and_rewrites_every_kind() {
        let html = r##"<!DOCTYPE html><html><head><meta charset="iso-8859-1">
<base href="sub/"><link rel=stylesheet href="s.css?a=1&amp;b=2">
<link rel="shortcut icon" href="/fav.ico"><link rel=preload href=x.js as=script>
<style>@import "i.css"; p { background: url(bg.png) }</style></head>
<body style="background:url('body.png')"><img src=a.png srcset="a2.png 2x, a3.png 3x">
<img src="data:image/gif;base64,R0lGOD" data-src=lazy.png loading=lazy>
<picture><source srcset="p.webp 1x"><img src=p.png></picture>
<iframe src=frame.html></iframe><a href="../page.html#x">l</a><a href="#top">t</a>
<script src=app.js integrity="sha256-xyz"></script><script>document.write('<b>')</script>
</body></html>"##;
        let page = Url::parse("http://h/dir/index.html").unwrap();
        let mut t = Table::default();
        t.answers
            .insert("http://h/dir/sub/a.png".into(), "data:A".into());
        t.answers.insert(
            "http://h/dir/sub/frame.html".into(),
            "<p a=\"1\">&amp;</p>".into(),
        );
        let out = run(html, &page, OPTS, &mut t);
        let asked: Vec<String> = t.asked.iter().map(|(k, u)| format!("{k:?} {u}")).collect();
        assert_eq!(
            asked,
            [
                "Css http://h/dir/sub/s.css?a=1&b=2",
                "Data http://h/fav.ico",
                "Data http://h/dir/sub/body.png",
                "Data http://h/dir/sub/a.png",
                "Data http://h/dir/sub/a2.png",
                "Data http://h/dir/sub/a3.png",
                "Data http://h/dir/sub/lazy.png",
                "Data http://h/dir/sub/p.webp",
                "Data http://h/dir/sub/p.png",
                "Frame http://h/dir/sub/frame.html",
                "Data http://h/dir/sub/app.js",
                "Css http://h/dir/sub/i.css",
                "Data http://h/dir/sub/bg.png",
            ]
        );
        assert!(!out.contains("<base"), "{out}");
        assert!(!out.contains("preload"), "{out}");
        assert!(out.contains("<meta charset=\"utf-8\">"), "{out}");
        assert!(
            out.contains(
                "src=\"data:A\" srcset=\"http://h/dir/sub/a2.png 2x, http://h/dir/sub/a3.png 3x\""
            ),
            "{out}"
        );
        assert!(out.contains("src=\"http://h/dir/sub/lazy.png\""), "{out}");
        assert!(!out.contains("loading"), "{out}");
        assert!(!out.contains("data-src"), "{out}");
        assert!(
            out.contains(r#"srcdoc="&lt;p a=&quot;1&quot;&gt;&amp;amp;&lt;/p&gt;""#),
            "{out}"
        );
        assert!(out.contains("href=\"http://h/dir/page.html#x\""), "{out}");
        assert!(out.contains("href=\"#top\""), "{out}");
        assert!(
            out.contains("@import url(\"http://h/dir/sub/i.css\")"),
            "{out}"
        );
        assert!(!out.contains("integrity"), "{out}");
        assert!(out.contains("document.write('<b>')"), "{out}");
    }

    #[test]
    fn no_js_and_no_images() {
        let html = r#"<body onload="x()"><a href=" java&#x09;script:alert(1)" onclick=y()>a</a>
<script>alert(1)</script><img src=a.png data-src=b.png><noscript><p>np</p></noscript></body>"#;
        let page = Url::parse("http://h/").unwrap();
        let mut t = Table::default();
        let opts = WalkOptions {
            no_js: true,
            no_images: true,
            frames: true,
        };
        let out = run(html, &page, opts, &mut t);
        assert!(t.asked.is_empty(), "{:?}", t.asked);
        for gone in [
            "onload",
            "onclick",
            "<script",
            "javascript",
            "a.png",
            "b.png",
        ] {
            assert!(!out.contains(gone), "{gone}: {out}");
        }
        assert!(out.contains("<noscript><p>np</p></noscript>"), "{out}");
    }
    /// The page walked with --no-js (frames may be inlined, nothing resolves).
    fn no_js(html: &str) -> (String, Vec<(Kind, String)>) {
        let page = Url::parse("http://h/dir/").unwrap();
        let mut t = Table::default();
        let opts = WalkOptions {
            no_js: true,
            no_images: false,
            frames: true,
        };
        let out = run(html, &page, opts, &mut t);
        (out, t.asked)
    }

    /// What --no-js writes at the top of every document's head.
    const CSP: &str = r#"<meta http-equiv="Content-Security-Policy" content="script-src 'none'; object-src 'none'">"#;

    fn assert_gone(out: &str, gone: &[&str]) {
        let lower = out.to_ascii_lowercase();
        for g in gone {
            assert!(!lower.contains(&g.to_ascii_lowercase()), "{g}: {out}");
        }
    }

    #[test]
    fn no_js_sanitises_author_srcdoc_documents_recursively() {
        let inner = "<p id=kept>kept</p><script>alert(1)</script><img src=a.png onerror=alert(2)>\
                     <a href=javascript:alert(3)>x</a>";
        let nested = format!(
            "<iframe srcdoc=\"{}\"></iframe>",
            inner.replace('&', "&amp;").replace('"', "&quot;")
        );
        let html = format!(
            "<iframe srcdoc=\"{}\"></iframe><iframe srcdoc=\"{}\"></iframe>",
            inner.replace('"', "&quot;"),
            nested.replace('&', "&amp;").replace('"', "&quot;")
        );
        let (out, _) = no_js(&html);
        assert_gone(&out, &["alert", "&lt;script", "onerror"]);
        assert_eq!(out.matches("id=&quot;kept&quot;").count(), 1, "{out}");
        assert!(out.contains("id=&amp;quot;kept&amp;quot;"), "{out}");
        // Every srcdoc document starts with the policy, at each level.
        let attr = |s: &str| {
            s.replace('&', "&amp;")
                .replace('"', "&quot;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
        };
        let first = attr(&format!("<html><head>{CSP}"));
        assert_eq!(
            out.matches(&format!("srcdoc=\"{first}")).count(),
            2,
            "{out}"
        );
        assert!(
            out.contains(&format!("srcdoc=&quot;{}", attr(&first))),
            "{out}"
        );
    }

    #[test]
    fn no_js_drops_srcdoc_nested_past_the_bound() {
        let mut doc = String::from("<script>alert(1)</script><p>deepest</p>");
        for _ in 0..MAX_SRCDOC_DEPTH + 2 {
            doc = format!(
                "<p>level</p><iframe srcdoc=\"{}\"></iframe>",
                doc.replace('&', "&amp;").replace('"', "&quot;")
            );
        }
        let (out, _) = no_js(&doc);
        assert_gone(&out, &["alert", "deepest", "&lt;script"]);
        assert!(out.contains("level"), "{out}");
    }

    #[test]
    fn no_js_drops_scriptable_data_documents_in_every_attribute() {
        let payloads = [
            "data:text/html,<script>alert(1)</script>",
            "DATA:Text/HTML;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
            " data:\ttext/html ;charset=utf-8,<script>alert(1)</script>",
            "data:image/svg+xml,<svg onload=alert(1)>",
            "data:image/SVG+XML;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+",
            "data:application/xhtml+xml,<x/>",
            "data:text/xml,<x/>",
            "data:application/xml;base64,PHgvPg==",
        ];
        for p in payloads {
            let v = p.replace('<', "&lt;");
            let html = format!(
                "<iframe src=\"{v}\"></iframe><frameset><frame src=\"{v}\"></frameset>\
                 <a href=\"{v}\">a</a><form action=\"{v}\"><button formaction=\"{v}\">b</button></form>\
                 <meta http-equiv=refresh content=\"0;url={v}\"><svg><a href=\"{v}\"><text>t</text></a></svg>"
            );
            let (out, asked) = no_js(&html);
            assert_gone(&out, &["data:", "alert"]);
            assert!(asked.iter().all(|(k, _)| *k != Kind::Frame), "{asked:?}");
        }
        // An SVG image stays an image: images never run scripts.
        let (out, _) = no_js("<img src=\"data:image/svg+xml,%3Csvg%2F%3E\">");
        assert!(
            out.contains("src=\"data:image/svg+xml,%3Csvg%2F%3E\""),
            "{out}"
        );
    }

    #[test]
    fn no_js_drops_javascript_urls_in_any_attribute() {
        let html = r##"<meta http-equiv=refresh content="0;url=javascript:alert(1)">
<meta http-equiv=refresh content="0; URL='JaVa&#x0A;script:alert(2)'">
<svg><a id=l><text>x</text><animate attributeName=href values="#a;javascript:alert(3)"/>
<set attributeName=href to="javascript:alert(4)"/><animate attributeName=href from=" javascript:alert(5)" by="&#x09;javascript:alert(6)"/></a></svg>
<iframe src="jav&#x09;ascript:alert(7)"></iframe><p title="java&#x0d;script:alert(8)">p</p>"##;
        let (out, _) = no_js(html);
        assert_gone(&out, &["javascript", "alert"]);
        assert!(
            out.contains("<animate"),
            "animations stay, without the URL: {out}"
        );
    }

    #[test]
    fn no_js_removes_plugins_and_scripts_in_any_namespace() {
        let html = r#"<object data=movie.swf type=application/x-shockwave-flash><param name=a value=b>fallback</object>
<embed src=movie.swf><svg><script href=s.js>alert(1)</script><script>alert(2)</script></svg>
<math><mi xlink:href="javascript:alert(3)">x</mi></math><portal src=live.html></portal>
<svg><set attributeName=onmouseover to=alert(4) /><animate attributeName=OnClick values=alert(5) /></svg>"#;
        let (out, asked) = no_js(html);
        assert_gone(
            &out,
            &[
                "<object",
                "<embed",
                "<param",
                "<script",
                "alert",
                "movie.swf",
            ],
        );
        assert!(asked.is_empty(), "{asked:?}");
    }

    #[test]
    fn no_js_frames_that_are_not_inlined_load_nothing() {
        // frames: true, but the fetch failed (the table has no answer).
        for html in [
            "<iframe src=f.html></iframe>",
            "<frameset><frame src=f.html></frameset>",
        ] {
            let (out, asked) = no_js(html);
            assert_eq!(asked.len(), 1, "{asked:?}");
            assert_gone(&out, &["f.html"]);
            assert_eq!(out.matches("src=\"about:blank\"").count(), 1, "{out}");
        }
        // Past the depth limit nothing is fetched either.
        let page = Url::parse("http://h/").unwrap();
        let mut t = Table::default();
        let opts = WalkOptions {
            no_js: true,
            no_images: false,
            frames: false,
        };
        let out = run("<iframe src=f.html></iframe>", &page, opts, &mut t);
        assert!(t.asked.is_empty());
        assert!(out.contains("<iframe src=\"about:blank\">"), "{out}");
    }

    #[test]
    fn no_js_puts_a_script_policy_first_in_the_head() {
        for html in [
            "<title>t</title><p>x",
            "<!DOCTYPE html><html><head><meta http-equiv=Content-Security-Policy content=\"img-src 'none'\"><title>t</title></head></html>",
        ] {
            let (out, _) = no_js(html);
            assert!(
                out.contains(&format!("<head>{CSP}<title>t</title>")),
                "{out}"
            );
            assert_eq!(out.matches("Content-Security-Policy").count(), 1, "{out}");
            assert!(!out.contains("img-src"), "{out}");
        }
        // Without --no-js nothing is added.
        let page = Url::parse("http://h/").unwrap();
        let out = run("<title>t</title>", &page, OPTS, &mut Table::default());
        assert!(!out.contains("Content-Security-Policy"), "{out}");
    }

    #[test]
    fn no_js_keeps_an_inlined_frame_and_images() {
        let page = Url::parse("http://h/").unwrap();
        let mut t = Table::default();
        t.answers.insert(
            "http://h/f.html".into(),
            format!("<html><head>{CSP}</head><body><p>in the frame</p></body></html>"),
        );
        t.answers
            .insert("http://h/a.png".into(), "data:image/png;base64,AAAA".into());
        let opts = WalkOptions {
            no_js: true,
            no_images: false,
            frames: true,
        };
        let out = run(
            "<iframe src=f.html style=\"background:url(a.png)\"></iframe><img src=a.png>",
            &page,
            opts,
            &mut t,
        );
        assert!(out.contains("in the frame"), "{out}");
        assert_eq!(
            out.matches("data:image/png;base64,AAAA").count(),
            2,
            "{out}"
        );
    }
}
