//! `--no-js`: what is taken out of a document so that the saved file runs
//! nothing in any browser, and the second wall behind it.
//!
//! Taken out: `<script>` in any namespace; plugins and document carriers
//! (`<object>`, `<embed>`, `<applet>`, `<portal>`); `<meta http-equiv=refresh>` (a static
//! copy stays where it is, and its URL could be `javascript:`); SVG
//! animations of `on*` attributes; every `on*` attribute; every attribute
//! holding `javascript:` anywhere, as a browser reads it (ASCII whitespace
//! and controls dropped, any case: SVG `values="#a;javascript:…"` is a list);
//! every attribute holding a `data:` document that can run script (HTML, XML,
//! SVG, XHTML…), except where only an image is ever loaded from it (an SVG
//! image runs nothing); any `data:` URL in a frame's `src`. Author `srcdoc`
//! documents are walked like the page itself (see `page.rs`).
//!
//! The second wall: every document the walk writes starts its `<head>` with
//! `Content-Security-Policy: script-src 'none'; object-src 'none'`, so a
//! carrier missed here is still refused by the browser. It names no other
//! directive: the inlined stylesheets, images and fonts (`data:` URLs) load.

use html5ever::tree_builder::{ElementFlags, NodeOrText, TreeSink};
use html5ever::{Attribute, QualName, local_name, ns};
use scraper::{Html, HtmlTreeSink, Node, StrTendril};

/// The policy every `--no-js` document carries.
pub const SCRIPT_POLICY: &str = "script-src 'none'; object-src 'none'";

/// Elements that only carry script, plugins or other live documents.
const CARRIERS: &[&str] = &["script", "object", "embed", "applet", "portal"];

/// `data:` types a browser renders as a document that can run script.
const SCRIPTABLE_TYPES: &[&str] = &["text/html", "text/xml", "application/xml", "text/xsl"];

/// Whether the element goes altogether (with what is inside it).
pub fn drops_element(name: &str, attrs: &[(QualName, StrTendril)]) -> bool {
    let attr = |wanted: &str| {
        attrs
            .iter()
            .find(|(q, _)| str::eq_ignore_ascii_case(&q.local, wanted))
            .map(|(_, v)| v.trim().to_ascii_lowercase())
            .unwrap_or_default()
    };
    CARRIERS.contains(&name)
        || (name == "meta" && attr("http-equiv") == "refresh")
        || (matches!(name, "animate" | "set") && attr("attributename").starts_with("on"))
}

/// Takes out the attributes that could run script (see the module header).
pub fn strip_attrs(element: &str, attrs: &mut Vec<(QualName, StrTendril)>) {
    let icon_link = element == "link"
        && attrs
            .iter()
            .any(|(q, v)| &*q.local == "rel" && v.to_ascii_lowercase().contains("icon"));
    attrs.retain(|(q, v)| {
        let name = str::to_ascii_lowercase(&q.local);
        if name.starts_with("on") {
            return false;
        }
        // A srcdoc is a document of its own, walked on its own.
        if name == "srcdoc" {
            return true;
        }
        let value = squeeze(v);
        if value.contains("javascript:") {
            return false;
        }
        if matches!(element, "iframe" | "frame") && name == "src" && value.starts_with("data:") {
            return false;
        }
        if name == "style" || name == "background" || loads_only_images(element, &name, icon_link) {
            return true;
        }
        !holds_scriptable_data_url(&value)
    });
}

/// `value` as a browser reads a URL in it: ASCII whitespace (tabs and
/// newlines are dropped anywhere in a URL) and control characters gone,
/// lower case.
fn squeeze(value: &str) -> String {
    value
        .chars()
        .filter(|c| !c.is_ascii_whitespace() && !c.is_control())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// Whether a squeezed value holds a `data:` URL of a scriptable document.
fn holds_scriptable_data_url(squeezed: &str) -> bool {
    squeezed.match_indices("data:").any(|(at, _)| {
        let rest = &squeezed[at + "data:".len()..];
        let essence = rest.split([',', ';']).next().unwrap_or_default();
        SCRIPTABLE_TYPES.contains(&essence) || essence.ends_with("+xml")
    })
}

/// Attributes from which a browser only ever loads an image.
fn loads_only_images(element: &str, attr: &str, icon_link: bool) -> bool {
    match element {
        "img" => matches!(
            attr,
            "src"
                | "srcset"
                | "data-src"
                | "data-lazy-src"
                | "data-original"
                | "data-srcset"
                | "data-lazy-srcset"
        ),
        "source" => matches!(attr, "srcset" | "data-srcset" | "data-lazy-srcset"),
        "input" => attr == "src",
        "video" => attr == "poster",
        "image" | "feImage" => attr == "href",
        "link" => icon_link && attr == "href",
        _ => false,
    }
}

/// Puts the script policy first in `doc`'s `<head>` (in its `<html>` if it
/// has no head, which a parsed document always has), through the tree
/// builder's own sink.
pub fn insert_script_policy(target: &mut Html) {
    let doc = std::mem::replace(target, Html::new_document());
    let head = find_child(&doc, doc.tree.root().id(), "html")
        .and_then(|html| find_child(&doc, html, "head").or(Some(html)));
    let first = head.and_then(|h| doc.tree.get(h)?.first_child().map(|c| c.id()));
    let sink = HtmlTreeSink::new(doc);
    if let Some(head) = head {
        let meta = sink.create_element(
            QualName::new(None, ns!(html), local_name!("meta")),
            vec![
                attribute("http-equiv", "Content-Security-Policy"),
                attribute("content", SCRIPT_POLICY),
            ],
            ElementFlags::default(),
        );
        match first {
            Some(first) => sink.append_before_sibling(&first, NodeOrText::AppendNode(meta)),
            None => sink.append(&head, NodeOrText::AppendNode(meta)),
        }
    }
    *target = sink.finish();
    // scraper sorts attributes by name; written the way people write it.
    let meta = head.and_then(|h| target.tree.get(h)?.first_child().map(|m| m.id()));
    if let Some(mut node) = meta.and_then(|m| target.tree.get_mut(m)) {
        if let Node::Element(el) = node.value() {
            el.attrs.sort_by_key(|(q, _)| &*q.local != "http-equiv");
        }
    }
}

fn find_child(doc: &Html, parent: ego_tree::NodeId, name: &str) -> Option<ego_tree::NodeId> {
    doc.tree
        .get(parent)?
        .children()
        .find_map(|c| match c.value() {
            Node::Element(el) if &*el.name.local == name => Some(c.id()),
            _ => None,
        })
}

fn attribute(name: &str, value: &str) -> Attribute {
    Attribute {
        name: QualName::new(None, ns!(), name.into()),
        value: value.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scriptable_data_urls_in_any_spelling() {
        for yes in [
            "data:text/html,x",
            "data:text/html;base64,eA==",
            "data:image/svg+xml,<svg>",
            "data:application/xhtml+xml;charset=utf-8,x",
            "data:text/xml,x",
            "data:application/xml;base64,x",
            "#a;data:text/html,x",
        ] {
            assert!(holds_scriptable_data_url(yes), "{yes}");
        }
        assert!(holds_scriptable_data_url(&squeeze(
            " DATA:\tText/HTML ;base64,x"
        )));
        for no in [
            "data:image/png;base64,x",
            "data:,x",
            "data:text/plain,<script>",
            "x",
        ] {
            assert!(!holds_scriptable_data_url(no), "{no}");
        }
    }

    #[test]
    fn javascript_hides_behind_whitespace_controls_and_case() {
        for v in ["JaVa\tScRiPt:x", " java\nscript:x", "#a;java\u{1}script:x"] {
            assert!(squeeze(v).contains("javascript:"), "{v:?}");
        }
    }
}
