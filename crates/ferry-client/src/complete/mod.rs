//! `--complete`: a page saved as one self-contained HTML file. Stylesheets
//! (their `@import`s and `url()`s too), images (`srcset`, `<picture>`,
//! lazy-loading attributes), fonts, icons and scripts become `data:` URLs,
//! frames become `srcdoc` documents (up to [`MAX_FRAME_DEPTH`] deep), and
//! every URL left over is made absolute.
//!
//! The order of work: [`page::walk`] records what a document needs, the
//! needs are fetched concurrently through the proxy ([`assets`]), stylesheets
//! and frames are completed the same way recursively, and a second walk puts
//! the results in. A failing asset keeps its absolute URL and is counted.
//!
//! Memory: `--max-page-size` bounds the page held, the assets fetched for
//! it and the bytes they add; the parsed HTML of the page and of every frame
//! and `srcdoc` inside it shares one budget of [`DOM_BUDGET_PER_PAGE_CAP`]
//! times that, [`MIN_DOM_BUDGET`] at least ([`crate::dom`]); each document is
//! parsed only while it is walked, never twice at once. A page whose HTML
//! does not fit is saved as fetched, with the reason; a frame that does not
//! fit stays a link.
//!
//! Why not the `monolith` crate as a library: monolith 2.12.0 pins every
//! dependency with `=`: `html5ever =0.39.0` (we parse with 0.40 through
//! scraper, so two HTML parsers would be built), `encoding_rs =0.8.42` (our
//! lock has 0.8.44: a forced downgrade for the whole workspace), `base64
//! =0.23.1`, `clap =4.6.7` (its default `cli` feature; we have 4.6.9), and it
//! brings a second HTTP stack (`reqwest =0.13.5`, blocking) plus rayon, redb,
//! chrono and sha2. Its fetches go through its own reqwest client, so they
//! would not take our `--proxy`/`NO_PROXY` choice or our one-proxy-only rule,
//! and it has no per-asset or per-page size caps (it decodes `data:` URLs in
//! full). Its `Session::new` also `expect`s on client set-up. So the pieces it
//! is built from (html5ever, cssparser) are used directly here instead.

mod assets;
pub mod css;
mod data_url;
mod no_js;
pub mod page;
pub mod srcset;

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::future::join_all;
use url::Url;

use crate::dom::{DomBudget, TooBig};
use assets::Assets;
pub use assets::{AssetError, AssetFetch, MAX_ASSETS_PER_PAGE};
use data_url::data_url;
use page::{Kind, Resolve, WalkOptions};

use crate::charset;

/// Frames inside frames are inlined this deep; deeper ones stay links.
pub const MAX_FRAME_DEPTH: usize = 3;
/// `@import` chains are followed this deep.
pub const MAX_IMPORT_DEPTH: usize = 8;
/// The parsed HTML of a page and its frames may take this many times
/// `--max-page-size` at once. Real pages are charged 12 to 21 bytes per
/// byte of HTML (rustdoc pages and books), so pages up to about 6 MiB fit
/// the default 128 MiB; bare tags are charged 86 and refused from 1.5 MiB.
pub const DOM_BUDGET_PER_PAGE_CAP: u64 = 4;
/// The budget for parsed HTML is never less than this, so that a small
/// `--max-page-size` (to cap what the assets add) still lets the page itself
/// be completed.
pub const MIN_DOM_BUDGET: u64 = 64 * 1024 * 1024;

/// The memory a page's parsed HTML may take at once.
fn dom_budget(max_page_size: u64) -> u64 {
    max_page_size
        .saturating_mul(DOM_BUDGET_PER_PAGE_CAP)
        .max(MIN_DOM_BUDGET)
}

/// The `--complete` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompleteOptions {
    /// Drop scripts, `on*` handlers and `javascript:` URLs.
    pub no_js: bool,
    /// Leave images out.
    pub no_images: bool,
    /// Largest single asset inlined, in bytes.
    pub max_asset_size: u64,
    /// Most bytes fetched for, and added to, one page by its assets.
    pub max_page_size: u64,
}

/// What completing a page did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AssetReport {
    /// Distinct asset URLs inlined.
    pub inlined: usize,
    /// Distinct asset URLs that could not be inlined, with the reason.
    pub failed: Vec<(String, String)>,
    /// Set when the page was saved as fetched, without completing it.
    pub not_completed: Option<String>,
}

/// What is written for a page.
#[derive(Debug)]
pub enum SavedPage {
    /// The completed document, in UTF-8.
    Completed(String),
    /// The page as it came, when it could not be completed.
    AsFetched(Bytes),
}

impl SavedPage {
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            SavedPage::Completed(html) => html.as_bytes(),
            SavedPage::AsFetched(body) => body,
        }
    }
}

/// The page to save and what happened to its assets.
pub async fn complete_page(
    body: Bytes,
    content_type: Option<&str>,
    url: &Url,
    fetch: AssetFetch,
    opts: &CompleteOptions,
) -> (SavedPage, AssetReport) {
    let ctx = Ctx {
        assets: Assets::new(fetch, opts.max_asset_size, opts.max_page_size),
        dom: DomBudget::new(dom_budget(opts.max_page_size)),
        no_js: opts.no_js,
        no_images: opts.no_images,
    };
    let text = decode_html(&body, content_type);
    let needs = match needs_of(&ctx, &text, url, 0) {
        Ok(needs) => needs,
        Err(why) => {
            let report = AssetReport {
                not_completed: Some(why.to_string()),
                ..AssetReport::default()
            };
            return (SavedPage::AsFetched(body), report);
        }
    };
    // From here on the decoded text is all that is needed.
    drop(body);
    let saved = match finish_document(&ctx, &text, url, 0, needs).await {
        Ok(html) => SavedPage::Completed(html),
        // Cannot happen (pass two parses what pass one did, in the same
        // budget), but the page is then saved as it was decoded.
        Err(_) => SavedPage::Completed(text),
    };
    let (inlined, failed) = ctx.assets.summary();
    let report = AssetReport {
        inlined,
        failed,
        not_completed: None,
    };
    (saved, report)
}

struct Ctx {
    assets: Assets,
    /// What the page's parsed documents may take at once.
    dom: DomBudget,
    no_js: bool,
    no_images: bool,
}

type Needs = HashSet<(Kind, Url)>;
/// What each need became. An asset's `data:` URL is one string shared by
/// every document that uses it (frames resolve theirs concurrently).
type Resolved = HashMap<(Kind, Url), Result<Arc<str>, AssetError>>;
type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Pass one: records the needs, resolves nothing.
#[derive(Default)]
struct Collector(Needs);

impl Resolve for Collector {
    fn resolve(&mut self, kind: Kind, url: &Url) -> Option<String> {
        self.0.insert((kind, url.clone()));
        None
    }
}

/// Pass two: hands out what was fetched, within the page's output budget,
/// and counts what failed.
struct Applier<'a> {
    ctx: &'a Ctx,
    resolved: &'a Resolved,
}

impl Resolve for Applier<'_> {
    fn resolve(&mut self, kind: Kind, url: &Url) -> Option<String> {
        let assets = &self.ctx.assets;
        match self.resolved.get(&(kind, url.clone())) {
            Some(Ok(value)) if assets.charge(value.len()) => {
                assets.succeeded(url);
                Some(value.to_string())
            }
            Some(Ok(_)) => {
                assets.failed(url, &AssetError::PageCap(assets.page_cap()));
                None
            }
            Some(Err(e)) => {
                assets.failed(url, e);
                None
            }
            // Not collected in pass one (cannot happen: both passes are one walk).
            None => None,
        }
    }
}

/// An HTML document's text: its `Content-Type` charset, else what its
/// first bytes say.
fn decode_html(body: &[u8], content_type: Option<&str>) -> String {
    let encoding = charset::detect(content_type, &body[..body.len().min(1024)]);
    charset::decode(body, encoding)
}

fn walk_options(ctx: &Ctx, depth: usize) -> WalkOptions {
    WalkOptions {
        no_js: ctx.no_js,
        no_images: ctx.no_images,
        frames: depth < MAX_FRAME_DEPTH,
    }
}

/// Pass one over a document (its DOM is dropped before anything is fetched).
fn needs_of(ctx: &Ctx, text: &str, url: &Url, depth: usize) -> Result<Needs, TooBig> {
    let mut collector = Collector::default();
    page::walk(
        text,
        url,
        walk_options(ctx, depth),
        &ctx.dom,
        &mut collector,
        false,
    )?;
    Ok(collector.0)
}

/// The needs fetched and completed, then pass two puts them in.
fn finish_document<'a>(
    ctx: &'a Ctx,
    text: &'a str,
    url: &'a Url,
    depth: usize,
    needs: Needs,
) -> BoxFuture<'a, Result<String, TooBig>> {
    Box::pin(async move {
        let resolved = resolve_all(ctx, needs, &[], depth).await;
        let mut applier = Applier {
            ctx,
            resolved: &resolved,
        };
        let html = page::walk(
            text,
            url,
            walk_options(ctx, depth),
            &ctx.dom,
            &mut applier,
            true,
        )?;
        Ok(html.unwrap_or_else(|| text.to_string()))
    })
}

/// Fetches and completes every need at once (the asset slots bound how
/// many fetches really run together).
async fn resolve_all(ctx: &Ctx, needs: Needs, chain: &[Url], depth: usize) -> Resolved {
    let work = needs.into_iter().map(|(kind, url)| async move {
        let result = resolve_one(ctx, kind, &url, chain, depth).await;
        ((kind, url), result)
    });
    join_all(work).await.into_iter().collect()
}

fn resolve_one<'a>(
    ctx: &'a Ctx,
    kind: Kind,
    url: &'a Url,
    chain: &'a [Url],
    depth: usize,
) -> BoxFuture<'a, Result<Arc<str>, AssetError>> {
    Box::pin(async move {
        match kind {
            Kind::Data => {
                let body = ctx.assets.get(url).await?;
                if ctx.no_images && body.essence().starts_with("image/") {
                    // An empty image keeps the rule valid and fetches nothing offline.
                    return Ok(Arc::from("data:,"));
                }
                Ok(body.data_url())
            }
            Kind::Css => {
                if chain.contains(url) {
                    return Err(AssetError::Loop);
                }
                if chain.len() >= MAX_IMPORT_DEPTH {
                    return Err(AssetError::TooDeep);
                }
                let body = ctx.assets.get(url).await?;
                let text = decode_css(&body.bytes, body.content_type.as_deref());
                let mut inner = chain.to_vec();
                inner.push(url.clone());
                let base = body.url.clone();
                let mut collector = Collector::default();
                page::inline_css(&text, &base, &mut collector);
                let resolved = resolve_all(ctx, collector.0, &inner, depth).await;
                let mut applier = Applier {
                    ctx,
                    resolved: &resolved,
                };
                let css = page::inline_css(&text, &base, &mut applier);
                Ok(Arc::from(data_url(
                    "text/css;charset=utf-8",
                    css.as_bytes(),
                )))
            }
            Kind::Frame => {
                if depth >= MAX_FRAME_DEPTH {
                    return Err(AssetError::TooDeep);
                }
                let body = ctx.assets.get(url).await?;
                let content_type = body.content_type.clone();
                let head = &body.bytes[..body.bytes.len().min(1024)];
                if !crate::media::is_html(content_type.as_deref(), head) {
                    return Err(AssetError::NotHtml);
                }
                let text = decode_html(&body.bytes, content_type.as_deref());
                let needs = needs_of(ctx, &text, &body.url, depth + 1)?;
                let html = finish_document(ctx, &text, &body.url, depth + 1, needs).await?;
                Ok(Arc::from(html))
            }
        }
    })
}

/// A stylesheet's text: its `Content-Type` charset, else its BOM, else
/// `@charset`, else UTF-8 (CSS Syntax §3.2 without the referrer's encoding).
fn decode_css(bytes: &[u8], content_type: Option<&str>) -> String {
    let declared = content_type.and_then(charset::charset_param).or_else(|| {
        let rest = bytes.strip_prefix(b"@charset \"")?;
        let end = rest.iter().position(|&b| b == b'"')?;
        encoding_rs::Encoding::for_label(&rest[..end])
    });
    let encoding = match declared {
        // A stylesheet that says UTF-16 is really in an ASCII-compatible encoding.
        Some(e) if e == encoding_rs::UTF_16BE || e == encoding_rs::UTF_16LE => encoding_rs::UTF_8,
        Some(e) => e,
        None => encoding_rs::UTF_8,
    };
    charset::decode(bytes, encoding)
}
