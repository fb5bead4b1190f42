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

use ego_tree::NodeId;
use html5ever::serialize::{SerializeOpts, TraversalScope, serialize};
use html5ever::{LocalName, Namespace, QualName};
use scraper::{Html, Node, StrTendril};
use url::Url;

use super::css::{self, RefKind};
use super::srcset;

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
/// Attributes that hold URLs and could hold `javascript:`.
const URL_ATTRS: &[&str] = &["href", "src", "action", "formaction", "data", "poster"];

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
    fn names(&self) -> Vec<String> {
        self.0.iter().map(|(q, _)| q.local.to_string()).collect()
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

fn is_javascript_url(value: &str) -> bool {
    let squeezed: String = value
        .chars()
        .filter(|c| !c.is_ascii_whitespace() && !c.is_control())
        .take(11)
        .collect();
    squeezed.to_ascii_lowercase().starts_with("javascript:")
}

/// Walks `text` (a whole document fetched from `page`), resolving every
/// asset with `r`; returns the serialized result when `output` is set.
pub fn walk(
    text: &str,
    page: &Url,
    opts: WalkOptions,
    r: &mut dyn Resolve,
    output: bool,
) -> Option<String> {
    let mut doc = Html::parse_document(text);
    let base = base_of(&doc, page);
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
        if element(&name, &mut a, &base, opts, r) == Keep::Drop {
            detach.push(id);
            continue;
        }
        if name == "style" {
            styles.push(id);
        }
    }
    for id in styles {
        inline_style_element(&mut doc, id, &base, r);
    }
    for id in detach {
        if let Some(mut node) = doc.tree.get_mut(id) {
            node.detach();
        }
    }
    if !output {
        return None;
    }
    let mut buf = Vec::new();
    let opts = SerializeOpts {
        // The document was parsed with scripting on (`<noscript>` holds raw
        // text), so it is written back the same way.
        scripting_enabled: true,
        traversal_scope: TraversalScope::IncludeNode,
        create_missing_parent: false,
    };
    serialize(&mut buf, &doc, opts).ok()?;
    Some(String::from_utf8_lossy(&buf).into_owned())
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
    opts: WalkOptions,
    r: &mut dyn Resolve,
) -> Keep {
    if opts.no_js {
        if name == "script" {
            return Keep::Drop;
        }
        for attr in a.names() {
            if attr.to_ascii_lowercase().starts_with("on") {
                a.remove(&attr);
            }
        }
        for attr in URL_ATTRS {
            if a.get(attr).is_some_and(|v| is_javascript_url(&v)) {
                a.remove(attr);
            }
        }
    }
    if let Some(style) = a.get("style") {
        let inlined = inline_css(&style, base, r);
        a.set("style", &inlined);
    }
    if a.get("background").is_some() && !opts.no_images {
        url_attr(a, "background", Kind::Data, base, r);
    }
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
        "iframe" | "frame" => {
            let target = a.get("src").and_then(|v| absolute(base, &v));
            if let Some(url) = target {
                let inlined = if opts.frames {
                    r.resolve(Kind::Frame, &url)
                } else {
                    None
                };
                match inlined {
                    Some(html) if name == "iframe" => {
                        a.set("srcdoc", &html);
                        a.remove("src");
                    }
                    Some(html) => a.set(
                        "src",
                        &super::data_url::data_url("text/html;charset=utf-8", html.as_bytes()),
                    ),
                    None => a.set("src", url.as_str()),
                }
            }
        }
        "a" | "area" => absolute_attr(a, "href", base),
        "form" => absolute_attr(a, "action", base),
        "button" => absolute_attr(a, "formaction", base),
        _ => {}
    }
    Keep::Keep
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
        let out = walk(html, &page, OPTS, &mut t, true).unwrap();
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
        let out = walk(html, &page, opts, &mut t, true).unwrap();
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
}
