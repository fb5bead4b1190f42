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
pub mod page;
pub mod srcset;

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;
use futures_util::future::join_all;
use url::Url;

use assets::Assets;
pub use assets::{AssetError, AssetFetch, MAX_ASSETS_PER_PAGE};
use data_url::data_url;
use page::{Kind, Resolve, WalkOptions};

use crate::charset;

/// Frames inside frames are inlined this deep; deeper ones stay links.
pub const MAX_FRAME_DEPTH: usize = 3;
/// `@import` chains are followed this deep.
pub const MAX_IMPORT_DEPTH: usize = 8;

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

/// The completed document (UTF-8) and what happened to its assets.
pub async fn complete_page(
    body: Bytes,
    content_type: Option<&str>,
    url: &Url,
    fetch: AssetFetch,
    opts: &CompleteOptions,
) -> (String, AssetReport) {
    let ctx = Ctx {
        assets: Assets::new(fetch, opts.max_asset_size, opts.max_page_size),
        no_js: opts.no_js,
        no_images: opts.no_images,
    };
    let html = complete_document(&ctx, body, content_type, url, 0).await;
    let (inlined, failed) = ctx.assets.summary();
    (
        html,
        AssetReport {
            inlined,
            failed,
            not_completed: None,
        },
    )
}

struct Ctx {
    assets: Assets,
    no_js: bool,
    no_images: bool,
}

type Needs = HashSet<(Kind, Url)>;
type Resolved = HashMap<(Kind, Url), Result<String, AssetError>>;
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
                Some(value.clone())
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

/// A document completed: walked, its needs fetched and completed, walked again.
fn complete_document<'a>(
    ctx: &'a Ctx,
    body: Bytes,
    content_type: Option<&'a str>,
    url: &'a Url,
    depth: usize,
) -> BoxFuture<'a, String> {
    Box::pin(async move {
        let encoding = charset::detect(content_type, &body[..body.len().min(1024)]);
        let text = charset::decode(&body, encoding);
        drop(body);
        let opts = WalkOptions {
            no_js: ctx.no_js,
            no_images: ctx.no_images,
            frames: depth < MAX_FRAME_DEPTH,
        };
        let mut collector = Collector::default();
        page::walk(&text, url, opts, &mut collector, false);
        let resolved = resolve_all(ctx, collector.0, &[], depth).await;
        let mut applier = Applier {
            ctx,
            resolved: &resolved,
        };
        page::walk(&text, url, opts, &mut applier, true).unwrap_or(text)
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
) -> BoxFuture<'a, Result<String, AssetError>> {
    Box::pin(async move {
        match kind {
            Kind::Data => {
                let body = ctx.assets.get(url).await?;
                if ctx.no_images && body.essence().starts_with("image/") {
                    // An empty image keeps the rule valid and fetches nothing offline.
                    return Ok("data:,".to_string());
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
                Ok(data_url("text/css;charset=utf-8", css.as_bytes()))
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
                let frame_url = body.url.clone();
                Ok(complete_document(
                    ctx,
                    body.bytes.clone(),
                    content_type.as_deref(),
                    &frame_url,
                    depth + 1,
                )
                .await)
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
