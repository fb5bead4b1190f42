//! `ferry client`: an interactive prompt (`get URL [URL...]`, `jobs`, `help`,
//! `quit`). `get` returns to the prompt at once; each URL is fetched in the
//! background (at most `--jobs` at a time, the rest queued) and prints its
//! result line when it is done. On a terminal the prompt is rustyline (line
//! editing, history kept across sessions) and results go through its
//! `ExternalPrinter`, which redraws the line being typed below them instead of
//! garbling it. With piped standard input the commands are read line by line
//! and results printed plainly, so sessions can be scripted.
//!
//! `quit` or Ctrl-D waits for the running downloads; Ctrl-C at the prompt
//! warns, a second Ctrl-C (or one while waiting) cancels them.
//!
//! This file reads the commands and decides what each download is fetched
//! with; the downloads themselves are the job table's (`jobs`).

mod jobs;

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use rustyline::error::ReadlineError;
use rustyline::{Config, DefaultEditor, ExternalPrinter};
use tokio::runtime::Runtime;

use jobs::{Jobs, Output};

use crate::complete::CompleteOptions;
use crate::error::ClientError;
use crate::get::{self, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_USAGE};
use crate::job::Settings;
use crate::options::GetOptions;

const PROMPT: &str = "ferry> ";

const HELP: &str = "\
commands:
  get URL [URL...]   fetch each URL through the proxy in the background and save it
                     (http:// is assumed when a URL has no scheme)
  get --complete [--no-js] [--no-images] URL [URL...]
                     save each page as one self-contained file, assets inlined
  jobs               list downloads that are queued or running
  help               show this text
  quit               wait for running downloads, then leave (also: exit, Ctrl-D);
                     Ctrl-C twice cancels running downloads";

/// One line typed at the prompt.
#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    Get(Vec<String>, GetFlags),
    Jobs,
    Help,
    Quit,
    /// A blank line or a `#` comment.
    Nothing,
    /// Not a command; the message says why.
    Bad(String),
}

/// The options a `get` line may carry (as `ferry get`'s flags).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct GetFlags {
    pub complete: bool,
    pub no_js: bool,
    pub no_images: bool,
}

/// Splits a `get` line's words into its flags and URLs.
fn get_command(words: Vec<String>) -> Command {
    let mut flags = GetFlags::default();
    let mut urls = Vec::new();
    for word in words {
        match word.as_str() {
            "--complete" => flags.complete = true,
            "--no-js" => flags.no_js = true,
            "--no-images" => flags.no_images = true,
            w if w.starts_with("--") => {
                return Command::Bad(format!(
                    "unknown option {w:?}; get takes --complete, --no-js, --no-images"
                ));
            }
            _ => urls.push(word),
        }
    }
    if urls.is_empty() {
        return Command::Bad("usage: get [--complete [--no-js] [--no-images]] URL [URL...]".into());
    }
    if (flags.no_js || flags.no_images) && !flags.complete {
        return Command::Bad("--no-js and --no-images go with --complete".into());
    }
    Command::Get(urls, flags)
}

/// Parses one prompt line.
pub fn parse_command(line: &str) -> Command {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return Command::Nothing;
    }
    let mut words = line.split_whitespace();
    let verb = words.next().unwrap_or("").to_ascii_lowercase();
    let rest: Vec<String> = words.map(str::to_string).collect();
    match verb.as_str() {
        "get" | "g" if rest.is_empty() => Command::Bad("usage: get URL [URL...]".into()),
        "get" | "g" => get_command(rest),
        "jobs" | "j" if rest.is_empty() => Command::Jobs,
        "help" | "h" | "?" => Command::Help,
        "quit" | "exit" | "q" if rest.is_empty() => Command::Quit,
        "jobs" | "j" | "quit" | "exit" | "q" => Command::Bad(format!("{verb} takes no arguments")),
        _ if verb.contains('.') || verb.contains("://") => Command::Bad(format!(
            "unknown command {verb:?}; to fetch it, type: get {verb}"
        )),
        _ => Command::Bad(format!(
            "unknown command {verb:?}; type help for the commands"
        )),
    }
}

pub fn run(args: GetOptions) -> Result<ExitCode, ClientError> {
    if args.output.is_some() {
        eprintln!("ferry client: -o/--output is for `ferry get` with one URL; use --output-dir");
        return Ok(ExitCode::from(EXIT_USAGE));
    }
    let settings = match Settings::from_options(&args) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            eprintln!("{}", crate::report::inert(&format!("ferry client: {e}")));
            return Ok(ExitCode::from(EXIT_USAGE));
        }
    };
    let runtime = get::runtime()?;
    let interactive = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    if interactive {
        interactive_session(&runtime, settings, &args)
    } else {
        piped_session(&runtime, settings, &args)
    }
}

/// Plain standard output, one whole line at a time.
struct Stdout;

impl Output for Stdout {
    fn line(&self, text: String) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{text}");
        let _ = out.flush();
    }
}

/// rustyline's printer: prints above the prompt and redraws the line being typed.
struct Printer(Mutex<Box<dyn ExternalPrinter + Send>>);

impl Output for Printer {
    fn line(&self, text: String) {
        let printed = match self.0.lock() {
            Ok(mut printer) => printer.print(format!("{text}\n")).is_ok(),
            Err(_) => false,
        };
        if !printed {
            Stdout.line(text);
        }
    }
}

/// One session: its downloads, and what a `get` line fetches them with.
struct Session {
    jobs: Jobs,
    settings: Arc<Settings>,
    /// What `get --complete` uses when the session was not started with --complete.
    complete: CompleteOptions,
}

impl Session {
    fn new(
        runtime: &Runtime,
        settings: Arc<Settings>,
        args: &GetOptions,
        out: Arc<dyn Output>,
    ) -> Session {
        Session {
            jobs: Jobs::new(runtime, args, out),
            settings,
            complete: CompleteOptions {
                no_js: args.no_js,
                no_images: args.no_images,
                max_asset_size: args.max_asset_size,
                max_page_size: args.max_page_size,
            },
        }
    }

    /// The settings for a `get` line with these flags.
    fn settings_for(&self, flags: GetFlags) -> Arc<Settings> {
        if !flags.complete {
            return self.settings.clone();
        }
        let mut opts = self
            .settings
            .complete
            .clone()
            .unwrap_or_else(|| self.complete.clone());
        opts.no_js |= flags.no_js;
        opts.no_images |= flags.no_images;
        Arc::new(Settings {
            complete: Some(opts),
            ..(*self.settings).clone()
        })
    }

    /// Starts fetching `url` in the background.
    fn get(&self, url: String, flags: GetFlags) {
        self.jobs.start(url, self.settings_for(flags));
    }
}

/// What the session loop does after a command.
enum Flow {
    Continue,
    Quit,
}

/// Runs one command; `bad` counts commands that failed (for the exit code).
fn dispatch(line: &str, session: &Session, out: &dyn Output, bad: &mut usize) -> Flow {
    match parse_command(line) {
        Command::Get(urls, flags) => {
            for url in urls {
                session.get(url, flags);
            }
        }
        Command::Jobs => out.line(session.jobs.listing()),
        Command::Help => out.line(HELP.to_string()),
        Command::Quit => return Flow::Quit,
        Command::Nothing => {}
        Command::Bad(message) => {
            *bad += 1;
            out.line(message);
        }
    }
    Flow::Continue
}

fn exit_code(jobs: &Jobs, bad: usize, cancelled: bool) -> ExitCode {
    if cancelled {
        ExitCode::from(EXIT_INTERRUPTED)
    } else if jobs.failures() > 0 || bad > 0 {
        ExitCode::from(EXIT_FAILED)
    } else {
        ExitCode::SUCCESS
    }
}

/// Commands from a pipe or file, one per line; waits for every download at the end.
fn piped_session(
    runtime: &Runtime,
    settings: Arc<Settings>,
    args: &GetOptions,
) -> Result<ExitCode, ClientError> {
    let out: Arc<dyn Output> = Arc::new(Stdout);
    let session = Session::new(runtime, settings, args, out.clone());
    let jobs = &session.jobs;
    for url in &args.urls {
        session.get(url.clone(), GetFlags::default());
    }
    let mut bad = 0;
    for line in std::io::stdin().lock().lines() {
        let line = line.map_err(|source| ClientError::Io {
            context: "reading commands from standard input",
            source,
        })?;
        if let Flow::Quit = dispatch(&line, &session, out.as_ref(), &mut bad) {
            break;
        }
    }
    let finished = jobs.wait_all();
    Ok(exit_code(jobs, bad, !finished))
}

/// The prompt on a terminal.
fn interactive_session(
    runtime: &Runtime,
    settings: Arc<Settings>,
    args: &GetOptions,
) -> Result<ExitCode, ClientError> {
    let config = Config::builder()
        .auto_add_history(false)
        .history_ignore_dups(true)?
        .max_history_size(1000)?
        .build();
    let mut editor = DefaultEditor::with_config(config)?;
    let history = history_path();
    if let Some(path) = &history {
        let _ = editor.load_history(path);
    }
    let out: Arc<dyn Output> = match editor.create_external_printer() {
        Ok(printer) => Arc::new(Printer(Mutex::new(Box::new(printer)))),
        Err(_) => Arc::new(Stdout),
    };
    let session = Session::new(runtime, settings, args, out.clone());
    let jobs = &session.jobs;
    out.line("ferry client: type help for the commands, quit to leave".to_string());
    for url in &args.urls {
        session.get(url.clone(), GetFlags::default());
    }
    let mut bad = 0;
    let mut interrupted_once = false;
    loop {
        match editor.readline(PROMPT) {
            Ok(line) => {
                interrupted_once = false;
                if !line.trim().is_empty() {
                    let _ = editor.add_history_entry(line.as_str());
                }
                if let Flow::Quit = dispatch(&line, &session, out.as_ref(), &mut bad) {
                    break;
                }
            }
            Err(ReadlineError::Interrupted) => {
                let running = jobs.unfinished();
                if interrupted_once {
                    if running > 0 {
                        out.line(format!("cancelling {running} download(s)"));
                        jobs.cancel_all();
                        save_history(&mut editor, history.as_ref());
                        return Ok(ExitCode::from(EXIT_INTERRUPTED));
                    }
                    break;
                }
                interrupted_once = true;
                if running > 0 {
                    out.line(format!(
                        "{running} download(s) running: Ctrl-C again cancels them, quit waits for them"
                    ));
                } else {
                    out.line("(Ctrl-C again or quit to leave)".to_string());
                }
            }
            Err(ReadlineError::Eof) => break,
            Err(e) => {
                save_history(&mut editor, history.as_ref());
                return Err(e.into());
            }
        }
    }
    save_history(&mut editor, history.as_ref());
    let running = jobs.unfinished();
    if running > 0 {
        out.line(format!(
            "waiting for {running} download(s) to finish (Ctrl-C cancels them)"
        ));
    }
    let finished = jobs.wait_all();
    if !finished {
        out.line("cancelled".to_string());
    }
    Ok(exit_code(jobs, bad, !finished))
}

/// `~/.local/share/ferry/client_history` (the platform's data directory).
fn history_path() -> Option<PathBuf> {
    dirs::data_local_dir().map(|d| d.join("ferry").join("client_history"))
}

fn save_history(editor: &mut DefaultEditor, path: Option<&PathBuf>) {
    if let Some(path) = path {
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let _ = editor.save_history(path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands() {
        let cases: &[(&str, Command)] = &[
            (
                "get http://a/ b.example",
                Command::Get(
                    vec!["http://a/".into(), "b.example".into()],
                    GetFlags::default(),
                ),
            ),
            (
                "  GET   x  ",
                Command::Get(vec!["x".into()], GetFlags::default()),
            ),
            (
                "get --complete x --no-js",
                Command::Get(
                    vec!["x".into()],
                    GetFlags {
                        complete: true,
                        no_js: true,
                        no_images: false,
                    },
                ),
            ),
            (
                "get --no-images x",
                Command::Bad("--no-js and --no-images go with --complete".into()),
            ),
            (
                "get --full x",
                Command::Bad(
                    "unknown option \"--full\"; get takes --complete, --no-js, --no-images".into(),
                ),
            ),
            ("get", Command::Bad("usage: get URL [URL...]".into())),
            ("jobs", Command::Jobs),
            ("help", Command::Help),
            ("?", Command::Help),
            ("quit", Command::Quit),
            ("exit", Command::Quit),
            ("", Command::Nothing),
            ("   ", Command::Nothing),
            ("# a comment", Command::Nothing),
            ("quit now", Command::Bad("quit takes no arguments".into())),
            (
                "example.com",
                Command::Bad(
                    "unknown command \"example.com\"; to fetch it, type: get example.com".into(),
                ),
            ),
            (
                "fetch x",
                Command::Bad("unknown command \"fetch\"; type help for the commands".into()),
            ),
        ];
        for (line, want) in cases {
            assert_eq!(&parse_command(line), want, "{line:?}");
        }
    }
}
