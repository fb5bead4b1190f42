//! HTML parsed within a budget. html5ever's DOM (through scraper) takes
//! about 200 bytes per node and 50 to 130 per attribute, so a page of bare
//! `<p>` tags takes 65 times its size, and some markup takes far more than
//! any formula from its bytes can say: the parser clones every open
//! formatting element (`<b>`, `<i>`, …) for each new paragraph, so a few
//! thousand `<b id=N>` followed by `</p><p>x` repeated multiply a page by
//! thousands. Deep nesting makes it slow instead: every new element scans
//! the stack of open elements, so 400,000 nested `<div>`s take hours.
//!
//! So the parser is fed through a metered tree sink: every node, attribute
//! and text byte it creates is charged, at the costs measured for the worst
//! cases (see the constants), against one [`DomBudget`] that the page and
//! all its frames and `srcdoc` documents share, and every call the parser
//! makes on the tree counts as work, bounded by the document's size. Past
//! either bound the sink stops building (new nodes are stand-ins that take
//! no memory, changes are ignored), the remaining input is not fed, and the
//! document is reported as [`TooBig`]: the caller keeps it as it came. What
//! a parsed document took is held against the budget until it is dropped.

use std::borrow::Cow;
use std::cell::{Cell, Ref};
use std::sync::atomic::{AtomicU64, Ordering};

use ego_tree::NodeId;
use html5ever::tendril::{StrTendril, TendrilSink};
use html5ever::tree_builder::{ElemName, ElementFlags, NodeOrText, QuirksMode, TreeSink};
use html5ever::{Attribute, LocalName, Namespace, QualName, local_name, ns};
use scraper::{Html, HtmlTreeSink, Node};

/// One node (element, text, comment, doctype): measured 192 to 256 bytes
/// (`<p>`, `<a>`, `<br>`, text between tags) with its place in the tree.
const NODE_BYTES: u64 = 256;
/// One attribute: measured 40 to 130 bytes (an unsorted tag's vector, the
/// name's atom), besides its value.
const ATTR_BYTES: u64 = 136;
/// A text byte: text appended in pieces (around entities) is copied into
/// a buffer that grows by doubling.
const TEXT_BYTE: u64 = 2;
/// The input is copied once into the parser's buffers, which text nodes
/// then share.
const INPUT_BYTE: u64 = 1;
/// Parser calls on the tree allowed per input byte. Real pages make 0.3 to
/// 0.5 (measured on rustdoc pages and books of 150 KB to 4 MB); markup
/// nested a hundred deep makes a few; the quadratic cases make thousands.
const WORK_PER_BYTE: u64 = 16;
/// Work every document may do whatever its size (the implied html, head
/// and body, a few hundred elements).
const WORK_BASE: u64 = 1 << 20;
/// Input is fed in pieces this large, so that a document past its budget
/// is left after at most one more piece.
const FEED_CHUNK: usize = 1024;

/// Memory for parsed HTML that one page and every document inside it share.
#[derive(Debug)]
pub struct DomBudget {
    limit: u64,
    in_use: AtomicU64,
}

impl DomBudget {
    pub fn new(limit: u64) -> DomBudget {
        DomBudget {
            limit,
            in_use: AtomicU64::new(0),
        }
    }

    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Takes `n` bytes; false (taking nothing) when they do not fit.
    fn take(&self, n: u64) -> bool {
        let before = self.in_use.fetch_add(n, Ordering::Relaxed);
        if before.saturating_add(n) > self.limit {
            self.in_use.fetch_sub(n, Ordering::Relaxed);
            false
        } else {
            true
        }
    }

    fn give_back(&self, n: u64) {
        self.in_use.fetch_sub(n, Ordering::Relaxed);
    }
}

/// Why a document was not parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TooBig {
    #[error(
        "parsed, it would take more memory than the page's budget ({0} bytes: 4 × --max-page-size, 64 MiB at least)"
    )]
    Memory(u64),
    #[error("its markup takes too much work to parse (elements nested too deep)")]
    Work,
}

/// A parsed document and the share of the budget it holds until dropped.
pub struct Dom<'a> {
    pub doc: Html,
    budget: &'a DomBudget,
    charged: u64,
}

impl Drop for Dom<'_> {
    fn drop(&mut self) {
        self.budget.give_back(self.charged);
    }
}

/// `text` parsed as a whole document (scripting on, as browsers do), if
/// it fits in what is left of `budget`.
pub fn parse_document<'a>(text: &str, budget: &'a DomBudget) -> Result<Dom<'a>, TooBig> {
    let bytes = text.len() as u64;
    let meter = Meter {
        budget,
        charged: Cell::new(0),
        work: Cell::new(0),
        work_limit: WORK_BASE.saturating_add(bytes.saturating_mul(WORK_PER_BYTE)),
        stopped: Cell::new(None),
    };
    let outcome = parse_metered(text, &meter);
    let charged = meter.charged.get();
    match outcome {
        Ok(doc) => Ok(Dom {
            doc,
            budget,
            charged,
        }),
        Err(why) => {
            budget.give_back(charged);
            Err(why)
        }
    }
}

fn parse_metered(text: &str, meter: &Meter<'_>) -> Result<Html, TooBig> {
    if !meter.charge(INPUT_BYTE.saturating_mul(text.len() as u64)) {
        return Err(meter.why());
    }
    let sink = MeteredSink {
        inner: HtmlTreeSink::new(Html::new_document()),
        meter,
        stand_ins: Cell::new(0),
    };
    let mut parser = html5ever::parse_document(sink, Default::default());
    let mut rest = text;
    while !rest.is_empty() {
        if meter.stopped.get().is_some() {
            return Err(meter.why());
        }
        let mut cut = rest.len().min(FEED_CHUNK);
        while !rest.is_char_boundary(cut) {
            cut += 1;
        }
        let (piece, tail) = rest.split_at(cut);
        parser.process(StrTendril::from_slice(piece));
        rest = tail;
    }
    parser.finish()
}

/// What one document's parse has charged and done so far.
struct Meter<'a> {
    budget: &'a DomBudget,
    charged: Cell<u64>,
    work: Cell<u64>,
    work_limit: u64,
    stopped: Cell<Option<TooBig>>,
}

impl Meter<'_> {
    /// Whether the tree may still grow by `n` bytes (which are then charged).
    fn charge(&self, n: u64) -> bool {
        if self.stopped.get().is_some() {
            return false;
        }
        if !self.budget.take(n) {
            self.stopped.set(Some(TooBig::Memory(self.budget.limit)));
            return false;
        }
        self.charged.set(self.charged.get() + n);
        true
    }

    /// Counts one call on the tree; false once the parse has stopped.
    fn step(&self) -> bool {
        let work = self.work.get() + 1;
        self.work.set(work);
        if work > self.work_limit && self.stopped.get().is_none() {
            self.stopped.set(Some(TooBig::Work));
        }
        self.stopped.get().is_none()
    }

    fn why(&self) -> TooBig {
        self.stopped
            .get()
            .unwrap_or(TooBig::Memory(self.budget.limit))
    }
}

fn attrs_cost(attrs: &[Attribute]) -> u64 {
    attrs
        .iter()
        .map(|a| ATTR_BYTES + a.value.len() as u64)
        .sum()
}

fn text_cost(text: &StrTendril, new_node: bool) -> u64 {
    TEXT_BYTE * text.len() as u64 + if new_node { NODE_BYTES } else { 0 }
}

/// A node as the parser holds it: one in the tree, or, once the parse has
/// stopped, a stand-in that is nowhere and only keeps its name and its
/// identity (the parser compares nodes by both, and would lose its way on
/// one shared stand-in).
#[derive(Debug, Clone)]
enum Handle {
    Node(NodeId),
    StandIn(u64, QualName),
}

/// An element's name, from the tree or from a stand-in.
#[derive(Debug)]
enum Name<'a> {
    InTree(Ref<'a, QualName>),
    StandIn(&'a QualName),
}

impl Name<'_> {
    fn qual(&self) -> &QualName {
        match self {
            Name::InTree(name) => name,
            Name::StandIn(name) => name,
        }
    }
}

impl ElemName for Name<'_> {
    fn ns(&self) -> &Namespace {
        &self.qual().ns
    }
    fn local_name(&self) -> &LocalName {
        &self.qual().local
    }
}

/// scraper's tree sink, metered. Once stopped it builds nothing more: new
/// nodes are stand-ins, changes to the tree are ignored; the parser runs on
/// to the end of the piece it was given and its result is thrown away.
struct MeteredSink<'m, 'b> {
    inner: HtmlTreeSink,
    meter: &'m Meter<'b>,
    stand_ins: Cell<u64>,
}

impl MeteredSink<'_, '_> {
    fn stand_in(&self, name: QualName) -> Handle {
        let n = self.stand_ins.get() + 1;
        self.stand_ins.set(n);
        Handle::StandIn(n, name)
    }

    /// The tree's nodes behind `handles`, when the tree is still being
    /// built and they all are in it.
    fn nodes<const N: usize>(&self, handles: [&Handle; N]) -> Option<[NodeId; N]> {
        if !self.meter.step() {
            return None;
        }
        let mut ids = [self.inner.get_document(); N];
        for (id, handle) in ids.iter_mut().zip(handles) {
            match handle {
                Handle::Node(node) => *id = *node,
                Handle::StandIn(..) => return None,
            }
        }
        Some(ids)
    }

    fn last_child_is_text(&self, parent: NodeId) -> bool {
        let html = self.inner.0.borrow();
        html.tree
            .get(parent)
            .and_then(|n| n.last_child())
            .is_some_and(|c| matches!(c.value(), Node::Text(_)))
    }

    /// A child for the tree, charged if it is text; none for a stand-in.
    fn child(&self, child: NodeOrText<Handle>, parent: NodeId) -> Option<NodeOrText<NodeId>> {
        match child {
            NodeOrText::AppendNode(Handle::Node(id)) => Some(NodeOrText::AppendNode(id)),
            NodeOrText::AppendNode(Handle::StandIn(..)) => None,
            NodeOrText::AppendText(text) => {
                let new_node = !self.last_child_is_text(parent);
                self.meter
                    .charge(text_cost(&text, new_node))
                    .then_some(NodeOrText::AppendText(text))
            }
        }
    }
}

impl TreeSink for MeteredSink<'_, '_> {
    type Handle = Handle;
    type Output = Result<Html, TooBig>;
    type ElemName<'a>
        = Name<'a>
    where
        Self: 'a;

    fn finish(self) -> Self::Output {
        match self.meter.stopped.get() {
            Some(why) => Err(why),
            None => Ok(self.inner.finish()),
        }
    }

    /// Not kept: nothing reads them, and scraper would keep one per error
    /// (a hostile page has one every two bytes).
    fn parse_error(&self, _msg: Cow<'static, str>) {}

    fn get_document(&self) -> Handle {
        Handle::Node(self.inner.get_document())
    }

    fn elem_name<'a>(&'a self, target: &'a Handle) -> Name<'a> {
        self.meter.step();
        match target {
            Handle::Node(id) => Name::InTree(self.inner.elem_name(id)),
            Handle::StandIn(_, name) => Name::StandIn(name),
        }
    }

    fn create_element(&self, name: QualName, attrs: Vec<Attribute>, flags: ElementFlags) -> Handle {
        // A <template> also gets its contents' fragment node.
        let nodes = if name.local == local_name!("template") {
            2
        } else {
            1
        };
        if self.meter.step() && self.meter.charge(nodes * NODE_BYTES + attrs_cost(&attrs)) {
            Handle::Node(self.inner.create_element(name, attrs, flags))
        } else {
            self.stand_in(name)
        }
    }

    fn create_comment(&self, text: StrTendril) -> Handle {
        if self.meter.step() && self.meter.charge(text_cost(&text, true)) {
            Handle::Node(self.inner.create_comment(text))
        } else {
            self.stand_in(QualName::new(None, ns!(), local_name!("")))
        }
    }

    fn create_pi(&self, target: StrTendril, data: StrTendril) -> Handle {
        let cost = text_cost(&target, true) + text_cost(&data, false);
        if self.meter.step() && self.meter.charge(cost) {
            Handle::Node(self.inner.create_pi(target, data))
        } else {
            self.stand_in(QualName::new(None, ns!(), local_name!("")))
        }
    }

    fn append(&self, parent: &Handle, child: NodeOrText<Handle>) {
        if let Some([parent]) = self.nodes([parent]) {
            if let Some(child) = self.child(child, parent) {
                self.inner.append(&parent, child);
            }
        }
    }

    fn append_based_on_parent_node(
        &self,
        element: &Handle,
        prev_element: &Handle,
        child: NodeOrText<Handle>,
    ) {
        if let Some([element, prev_element]) = self.nodes([element, prev_element]) {
            // Charged as a new text node wherever it lands.
            if let Some(child) = self.child(child, self.inner.get_document()) {
                self.inner
                    .append_based_on_parent_node(&element, &prev_element, child);
            }
        }
    }

    fn append_doctype_to_document(
        &self,
        name: StrTendril,
        public_id: StrTendril,
        system_id: StrTendril,
    ) {
        let cost =
            text_cost(&name, true) + text_cost(&public_id, false) + text_cost(&system_id, false);
        if self.meter.step() && self.meter.charge(cost) {
            self.inner
                .append_doctype_to_document(name, public_id, system_id);
        }
    }

    fn get_template_contents(&self, target: &Handle) -> Handle {
        match target {
            Handle::Node(id) => Handle::Node(self.inner.get_template_contents(id)),
            Handle::StandIn(_, name) => self.stand_in(name.clone()),
        }
    }

    fn same_node(&self, x: &Handle, y: &Handle) -> bool {
        self.meter.step();
        match (x, y) {
            (Handle::Node(a), Handle::Node(b)) => a == b,
            (Handle::StandIn(a, _), Handle::StandIn(b, _)) => a == b,
            _ => false,
        }
    }

    fn set_quirks_mode(&self, mode: QuirksMode) {
        self.inner.set_quirks_mode(mode);
    }

    fn append_before_sibling(&self, sibling: &Handle, new_node: NodeOrText<Handle>) {
        if let Some([sibling]) = self.nodes([sibling]) {
            // Charged as a new text node: merging with the one before is rare.
            if let Some(child) = self.child(new_node, self.inner.get_document()) {
                self.inner.append_before_sibling(&sibling, child);
            }
        }
    }

    fn add_attrs_if_missing(&self, target: &Handle, attrs: Vec<Attribute>) {
        if let Some([target]) = self.nodes([target]) {
            if self.meter.charge(attrs_cost(&attrs)) {
                self.inner.add_attrs_if_missing(&target, attrs);
            }
        }
    }

    fn remove_from_parent(&self, target: &Handle) {
        if let Some([target]) = self.nodes([target]) {
            self.inner.remove_from_parent(&target);
        }
    }

    fn reparent_children(&self, node: &Handle, new_parent: &Handle) {
        if let Some([node, new_parent]) = self.nodes([node, new_parent]) {
            self.inner.reparent_children(&node, &new_parent);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const MIB: usize = 1 << 20;

    fn parse(text: &str, limit: u64) -> Result<String, TooBig> {
        let budget = DomBudget::new(limit);
        let dom = parse_document(text, &budget)?;
        assert!(budget.in_use.load(Ordering::Relaxed) > 0);
        let html = dom.doc.html();
        drop(dom);
        assert_eq!(budget.in_use.load(Ordering::Relaxed), 0, "given back");
        Ok(html)
    }

    #[test]
    fn a_document_within_the_budget_parses_as_scraper_does() {
        let text = "<!DOCTYPE html><title>t</title><template><p a=1>x</template>\
                    <table><td>cell</table><b><p>misnested</b>&amp;text<!-- c --><?pi?>";
        assert_eq!(
            parse(text, 1 << 30).unwrap(),
            Html::parse_document(text).html()
        );
    }

    #[test]
    fn the_worst_cases_are_refused_and_the_budget_given_back() {
        let limit = 16 * MIB as u64;
        let bare = "<p>".repeat(MIB);
        let attrs = "<p a b c d e f g h i j k l m n o q r s t u v w x y z>".repeat(MIB / 56);
        let mut clones = String::from("<p>");
        for i in 0..2000 {
            clones.push_str(&format!("<b id={i}>"));
        }
        clones.push_str(&"</p><p>x".repeat(20_000));
        for (name, text) in [("bare", &bare), ("attrs", &attrs), ("clones", &clones)] {
            assert_eq!(parse(text, limit), Err(TooBig::Memory(limit)), "{name}");
        }
        // Deep nesting is refused for its work, long before it is slow.
        let nested = "<div>".repeat(200_000);
        assert_eq!(parse(&nested, 1 << 40), Err(TooBig::Work));
        // Long text is cheap: its bytes and a node.
        let text = "lorem ipsum ".repeat(MIB);
        assert!(parse(&text, 4 * text.len() as u64).is_ok());
    }

    #[test]
    fn documents_share_the_budget_while_they_are_held() {
        let budget = DomBudget::new(2 * MIB as u64);
        let text = "<p>".repeat(2000);
        let first = parse_document(&text, &budget).unwrap();
        let held = budget.in_use.load(Ordering::Relaxed);
        assert!(held >= 2000 * NODE_BYTES, "{held}");
        let mut kept = vec![first];
        while let Ok(dom) = parse_document(&text, &budget) {
            kept.push(dom);
        }
        assert!(kept.len() >= 2 && kept.len() < 5, "{}", kept.len());
        drop(kept);
        assert!(parse_document(&text, &budget).is_ok());
    }
}
