//! `ferry get URL...`: every URL fetched through the proxy, at most `--jobs`
//! at once, each saved (or reported as failed) independently; at the end one
//! result line per URL in the order given (or a JSON object per URL as each
//! finishes, with `--json`). Exit code 0 only if every URL was saved; Ctrl-C
//! stops the downloads and removes their temporary files.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::error::ClientError;
use crate::job::{self, Destination, Outcome, Settings};
use crate::options::GetOptions;
use crate::report::{self, Progress};

/// Exit code when some URL was not saved.
pub const EXIT_FAILED: u8 = 1;
/// Exit code for a command line that makes no sense.
pub const EXIT_USAGE: u8 = 2;
/// Exit code after Ctrl-C.
pub const EXIT_INTERRUPTED: u8 = 130;

pub fn run(args: GetOptions) -> Result<ExitCode, ClientError> {
    if args.urls.is_empty() {
        return Ok(usage(
            "ferry get: give at least one URL (see ferry get --help)",
        ));
    }
    if args.output.is_some() && args.urls.len() > 1 {
        return Ok(usage(
            "ferry get: -o/--output names the file for a single URL; use --output-dir for several",
        ));
    }
    let settings = match Settings::from_options(&args) {
        Ok(s) => Arc::new(s),
        Err(e) => return Ok(usage(&format!("ferry get: {e}"))),
    };
    let runtime = runtime()?;
    Ok(runtime.block_on(get_all(args, settings)))
}

/// The runtime `ferry get` and `ferry client` run their jobs on (`ferry
/// client` takes it from here, as it takes the exit codes).
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, ClientError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|source| ClientError::Io {
            context: "starting the async runtime",
            source,
        })
}

fn usage(message: &str) -> ExitCode {
    eprintln!("{}", crate::report::inert(message));
    ExitCode::from(EXIT_USAGE)
}

async fn get_all(args: GetOptions, settings: Arc<Settings>) -> ExitCode {
    let progress = Arc::new(Progress::choose(
        args.quiet,
        std::io::stderr().is_terminal(),
    ));
    let slots = Arc::new(Semaphore::new(usize::from(args.jobs.max(1))));
    let destination = match &args.output {
        Some(file) => Destination::File(file.clone()),
        None => Destination::Auto,
    };
    let mut tasks = JoinSet::new();
    for (index, input) in args.urls.iter().cloned().enumerate() {
        let slots = slots.clone();
        let settings = settings.clone();
        let progress = progress.clone();
        let destination = destination.clone();
        let json = args.json;
        tasks.spawn(async move {
            // The semaphore is never closed, so acquiring only fails if it were.
            let _slot = slots.acquire_owned().await;
            let tracker = progress.start(&input);
            let outcome = job::run(input, destination, settings, tracker.observer.clone()).await;
            progress.finish(&tracker, &outcome);
            if json {
                print_line(&report::json_line(&outcome));
            }
            (index, outcome)
        });
    }

    let mut outcomes: Vec<(usize, Outcome)> = Vec::with_capacity(args.urls.len());
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let interrupted = loop {
        tokio::select! {
            next = tasks.join_next() => match next {
                None => break false,
                Some(Ok(done)) => outcomes.push(done),
                Some(Err(e)) => eprintln!("ferry: a download task failed: {e}"),
            },
            _ = &mut ctrl_c => {
                // Dropping the jobs drops their temporary files.
                tasks.abort_all();
                while tasks.join_next().await.is_some() {}
                break true;
            }
        }
    };
    progress.clear();
    if interrupted {
        eprintln!("ferry: interrupted; unfinished downloads were discarded");
        return ExitCode::from(EXIT_INTERRUPTED);
    }

    outcomes.sort_by_key(|(i, _)| *i);
    if !args.quiet && !args.json {
        for (_, o) in &outcomes {
            print_line(&report::text_line(o));
        }
    }
    let failed = outcomes.iter().filter(|(_, o)| !o.ok()).count();
    if failed == 0 && outcomes.len() == args.urls.len() {
        ExitCode::SUCCESS
    } else {
        if !args.quiet && args.urls.len() > 1 {
            eprintln!("ferry: {failed} of {} URLs failed", args.urls.len());
        }
        ExitCode::from(EXIT_FAILED)
    }
}

/// One line to standard output, written whole.
fn print_line(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}
