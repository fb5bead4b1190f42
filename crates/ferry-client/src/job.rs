//! One URL from start to saved file: parse it, fetch it through the proxy,
//! stream the body to a temporary file, find the title, name the file and
//! give it that name. The result is an [`Outcome`] either way; `ferry get` and
//! `ferry client` both run their URLs through [`run`].

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use http::{StatusCode, header};
use tokio::sync::Semaphore;
use url::Url;

use crate::complete::{self, AssetFetch, AssetReport, CompleteOptions};
use crate::error::ClientError;
use crate::fetch::{self, FetchOptions};
use crate::naming::{self, FileName, NameInput};
use crate::options::GetOptions;
use crate::proxy_env::{ProxyEnv, ProxySelector};
use crate::save::Part;
use crate::{disposition, media, reply, title};

/// How much of an error page is read to find its cause.
const ERROR_PAGE_LIMIT: usize = 64 * 1024;

/// Settings shared by every job of one run.
#[derive(Debug, Clone)]
pub struct Settings {
    pub selector: ProxySelector,
    pub fetch: FetchOptions,
    /// Directory files are saved in.
    pub output_dir: PathBuf,
    /// Save responses with an error status too (they still count as failures).
    pub save_errors: bool,
    /// Save HTML pages complete, with their assets inlined.
    pub complete: Option<CompleteOptions>,
    /// Asset fetches of all pages share these (`--jobs` of them).
    pub asset_slots: Arc<Semaphore>,
}

impl Settings {
    /// The settings every job of a run shares; fails on a bad `--proxy`.
    pub(crate) fn from_options(args: &GetOptions) -> Result<Settings, ClientError> {
        let selector = ProxySelector::new(args.proxy.as_deref(), ProxyEnv::from_env())?;
        Ok(Settings {
            selector,
            fetch: FetchOptions {
                connect_timeout: Duration::from_secs(args.connect_timeout.max(1)),
                idle_timeout: Duration::from_secs(args.timeout.max(1)),
                max_redirects: args.max_redirects,
            },
            output_dir: args.output_dir.clone(),
            save_errors: args.save_errors,
            complete: args.complete.then_some(CompleteOptions {
                no_js: args.no_js,
                no_images: args.no_images,
                max_asset_size: args.max_asset_size,
                max_page_size: args.max_page_size,
            }),
            asset_slots: Arc::new(Semaphore::new(usize::from(args.jobs.max(1)))),
        })
    }

    /// What completing a page fetches its assets with: the same proxy and
    /// fetch options as pages, and the run's shared asset slots.
    fn asset_fetch(&self) -> AssetFetch {
        AssetFetch {
            selector: self.selector.clone(),
            fetch: self.fetch.clone(),
            slots: self.asset_slots.clone(),
        }
    }
}

/// Where a job's file goes.
#[derive(Debug, Clone)]
pub enum Destination {
    /// Named by [`naming::format_output_name`] in `Settings::output_dir`.
    Auto,
    /// The name the user gave with `-o` (relative to `Settings::output_dir`).
    File(PathBuf),
}

/// Hears about a job's progress (progress bars, the `jobs` command).
pub trait Observer: Send + Sync {
    /// The response head arrived.
    fn response(&self, _status: StatusCode, _length: Option<u64>) {}
    /// `n` more body bytes were saved.
    fn bytes(&self, _n: u64) {}
}

/// An observer that ignores everything.
pub struct Unobserved;
impl Observer for Unobserved {}

/// What happened to one URL.
#[derive(Debug)]
pub struct Outcome {
    /// The URL as given.
    pub input: String,
    /// The URL fetched (after adding a scheme), if it parsed.
    pub url: Option<Url>,
    /// The URL that answered, after redirects.
    pub final_url: Option<Url>,
    pub status: Option<StatusCode>,
    pub file: Option<PathBuf>,
    pub bytes: u64,
    pub elapsed: Duration,
    /// The proxy's cache status (`Cache-Status` / `X-Cache`).
    pub cache: Option<String>,
    pub content_type: Option<String>,
    pub title: Option<String>,
    pub error: Option<ClientError>,
    /// With `--complete`, for an HTML page: what happened to its assets.
    pub assets: Option<AssetReport>,
}

impl Outcome {
    fn new(input: &str) -> Outcome {
        Outcome {
            input: input.to_string(),
            url: None,
            final_url: None,
            status: None,
            file: None,
            bytes: 0,
            elapsed: Duration::ZERO,
            cache: None,
            content_type: None,
            title: None,
            error: None,
            assets: None,
        }
    }

    /// Saved with a success status.
    pub fn ok(&self) -> bool {
        self.error.is_none()
    }

    /// The URL to show: as fetched if it parsed, else as given.
    pub fn shown_url(&self) -> String {
        self.url
            .as_ref()
            .map_or_else(|| self.input.clone(), Url::to_string)
    }
}

/// Fetches and saves one URL.
pub async fn run(
    input: String,
    destination: Destination,
    settings: Arc<Settings>,
    observer: Arc<dyn Observer>,
) -> Outcome {
    let started = Instant::now();
    let mut outcome = Outcome::new(&input);
    if let Err(e) = fetch_and_save(&destination, &settings, observer.as_ref(), &mut outcome).await {
        outcome.error = Some(e);
    }
    outcome.elapsed = started.elapsed();
    outcome
}

async fn fetch_and_save(
    destination: &Destination,
    settings: &Arc<Settings>,
    observer: &dyn Observer,
    outcome: &mut Outcome,
) -> Result<(), ClientError> {
    let url = fetch::parse_target(&outcome.input)?;
    outcome.url = Some(url.clone());
    let mut fetched = fetch::fetch(&url, &settings.selector, &settings.fetch).await?;
    outcome.final_url = Some(fetched.url.clone());
    outcome.status = Some(fetched.status);
    outcome.cache = reply::cache_status(&fetched.headers);
    outcome.content_type = fetched.content_type().map(str::to_string);
    observer.response(fetched.status, fetched.content_length());

    let success = fetched.status.is_success();
    if !success && !settings.save_errors {
        let page = fetched.read_up_to(ERROR_PAGE_LIMIT).await;
        return Err(reply::error_for(fetched.status, &fetched.headers, &page));
    }

    let (dir, user_name) = match destination {
        Destination::Auto => (settings.output_dir.clone(), None),
        Destination::File(path) => {
            let full = settings.output_dir.join(path);
            let name = full
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .ok_or_else(|| {
                    ClientError::Usage(format!("-o {}: not a file name", path.display()))
                })?;
            let dir = full.parent().map(PathBuf::from).unwrap_or_default();
            (dir, Some(name))
        }
    };

    let mut part = Part::create(&dir)?;
    let mut head: Vec<u8> = Vec::new();
    // With --complete the page is held in memory (up to the page cap) until
    // its end shows whether it is HTML to complete.
    let mut held: Option<BytesMut> = settings.complete.as_ref().map(|_| BytesMut::new());
    while let Some(chunk) = fetched.next_chunk().await? {
        if head.len() < title::TITLE_SCAN_LIMIT {
            let take = chunk.len().min(title::TITLE_SCAN_LIMIT - head.len());
            head.extend_from_slice(&chunk[..take]);
        }
        match (&mut held, &settings.complete) {
            (Some(buf), Some(opts)) if (buf.len() + chunk.len()) as u64 <= opts.max_page_size => {
                buf.extend_from_slice(&chunk);
            }
            (Some(buf), Some(_)) => {
                part.write(buf).await?;
                held = None;
                part.write(&chunk).await?;
            }
            _ => part.write(&chunk).await?,
        }
        outcome.bytes += chunk.len() as u64;
        observer.bytes(chunk.len() as u64);
    }

    let content_type = fetched.content_type();
    let html = media::is_html(content_type, &head);
    outcome.title = if html {
        title::page_title(content_type, &head)
    } else {
        None
    };
    let name = match user_name {
        Some(name) => FileName::verbatim(&name),
        None => {
            let suggested = fetched
                .headers
                .get(header::CONTENT_DISPOSITION)
                .and_then(|v| disposition::filename(v.as_bytes()));
            let essence = content_type.and_then(media::essence);
            naming::format_output_name(&NameInput {
                url: &fetched.url,
                html,
                title: outcome.title.as_deref(),
                disposition: suggested.as_deref(),
                content_type: essence.as_deref(),
            })
        }
    };
    if let Some(opts) = &settings.complete {
        let held = held.map(BytesMut::freeze);
        if html && success {
            match held {
                Some(page) => {
                    let (completed, report) = complete::complete_page(
                        page,
                        content_type,
                        &fetched.url,
                        settings.asset_fetch(),
                        opts,
                    )
                    .await;
                    part.write(completed.as_bytes()).await?;
                    outcome.bytes = completed.as_bytes().len() as u64;
                    outcome.assets = Some(report);
                }
                None => {
                    outcome.assets = Some(AssetReport {
                        not_completed: Some(format!(
                            "the page is larger than --max-page-size ({} bytes)",
                            opts.max_page_size
                        )),
                        ..AssetReport::default()
                    });
                }
            }
        } else if let Some(body) = held {
            part.write(&body).await?;
        }
    }
    outcome.file = Some(part.finish(&name).await?);

    if !success {
        return Err(reply::error_for(fetched.status, &fetched.headers, &head));
    }
    Ok(())
}
