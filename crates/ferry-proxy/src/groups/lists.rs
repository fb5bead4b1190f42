//! The subscribed block lists as files: parsing the formats people subscribe
//! to (hosts files, plain domain lists, the domain rules of Adblock-style
//! lists, mixed in one list if need be) into a [`DomainSet`], and keeping
//! each list's last good copy on disk ([`ListStore`]) so that a list that
//! cannot be fetched, or that parses to nothing, leaves the last good copy
//! in force. Fetching and swapping lists in is `crate::background`'s; the
//! set in force is `super::subscriptions`'.
//!
//! A list is read as bytes, a line at a time, without copying the lines: a
//! line that is not a usable rule is counted as skipped and never fails the
//! whole list, whatever it holds (binary junk, a web page, a line of ten
//! million characters).

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::access::acl::DomainSet;

/// A list as parsed: its domains and how many lines were of use.
#[derive(Debug, Clone)]
pub struct ParsedList {
    pub domains: DomainSet,
    /// Distinct domain patterns in `domains`.
    pub entries: usize,
    /// Lines that were not a usable rule (comments and blank lines are not
    /// counted). A hosts line counts as skipped if any of its names was
    /// unusable; its good names are taken all the same.
    pub skipped: usize,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ListError {
    /// Nothing in the list was a domain rule; the last good copy stays.
    #[error("no domain rules in it ({} skipped): {why}", lines(*skipped))]
    Empty { skipped: usize, why: &'static str },
}

fn lines(n: usize) -> String {
    if n == 1 {
        "1 line".to_string()
    } else {
        format!("{n} lines")
    }
}

/// Lines longer than this are skipped unread: no rule is this long (a domain
/// name is at most 253 characters), and a list that is one huge line must not
/// cost more than finding its end.
const MAX_LINE: usize = 1024;

/// Names hosts files map for the system's own use, never block entries.
/// They are passed over without counting them as skipped.
const HOSTS_FILE_NOISE: &[&str] = &[
    "localhost",
    "localhost.localdomain",
    "localhost4",
    "localhost4.localdomain4",
    "localhost6",
    "localhost6.localdomain6",
    "local",
    "broadcasthost",
    "ip6-localhost",
    "ip6-loopback",
    "ip6-localnet",
    "ip6-mcastprefix",
    "ip6-allnodes",
    "ip6-allrouters",
    "ip6-allhosts",
    "0.0.0.0",
];

/// Adblock options after `||domain^$` that do not narrow the rule to some
/// pages or some kinds of request, so the rule blocks the whole domain.
const WHOLE_DOMAIN_OPTIONS: &[&str] = &[
    "important",
    "third-party",
    "3p",
    "first-party",
    "1p",
    "all",
    "document",
    "doc",
    "popup",
];

/// Parses a subscribed list; each entry's origin is `origin` (`list NAME`).
///
/// Each line is one of (a list may mix them):
/// - a hosts-file line, `0.0.0.0 ads.example other.example` (any IPv4 or
///   IPv6 address first; `localhost` and the like are passed over);
/// - a domain, `ads.example` (it and its subdomains) or `*.ads.example`
///   (its subdomains only);
/// - an Adblock-style domain rule, `||ads.example^`, possibly with options
///   that keep it a whole-domain rule (`$third-party`, `$important`, ...);
/// - a comment (`#`, `!`, or a trailing ` # ...`), a blank line, or an
///   Adblock header (`[Adblock Plus 2.0]`): ignored.
///
/// Anything else is skipped: other Adblock rules (`@@` exceptions, `##`
/// cosmetic rules, `/regex/`, paths, wildcards, options that narrow the rule),
/// IP addresses alone, names with characters a domain cannot have, non-ASCII
/// names (lists carry IDNs as punycode), and names of a single label: an
/// entry `com` would block a whole top-level domain, which in a subscribed
/// list is almost always a mistake (Pi-hole refuses them too).
///
/// A list with no domain rules at all is an error, so that a fetch that
/// brought back an error page keeps the last good copy in force.
pub fn parse_subscribed_list(bytes: &[u8], origin: &str) -> Result<ParsedList, ListError> {
    let text = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut domains = DomainSet::default();
    // One rule a line is the usual shape: room for them all up front spares
    // the rehashing as the set grows (and the spare room is given back below).
    domains.reserve(text.iter().filter(|&&b| b == b'\n').count() + 1);
    let mut skipped = 0;
    for line in text.split(|&b| b == b'\n') {
        if parse_line(line, origin, &mut domains) == LineVerdict::Skipped {
            skipped += 1;
        }
    }
    domains.shrink_to_fit();
    if domains.is_empty() {
        return Err(ListError::Empty {
            skipped,
            why: why_empty(text, skipped),
        });
    }
    Ok(ParsedList {
        entries: domains.len(),
        domains,
        skipped,
    })
}

#[derive(Debug, PartialEq, Eq)]
enum LineVerdict {
    /// A comment, a blank line, a header, hosts-file boilerplate.
    Ignored,
    /// At least one domain was taken and nothing in the line was unusable.
    Used,
    /// Not a usable rule (or, on a hosts line, not all of it was).
    Skipped,
}

fn parse_line(line: &[u8], origin: &str, into: &mut DomainSet) -> LineVerdict {
    let line = trim_start(line);
    match line.first() {
        None | Some(b'#' | b'!') => return LineVerdict::Ignored,
        Some(_) if line.len() > MAX_LINE => return LineVerdict::Skipped,
        Some(_) => {}
    }
    let Some(line) = strip_comment(line) else {
        return LineVerdict::Skipped;
    };
    let line = trim_end(line);
    if line.is_empty() {
        return LineVerdict::Ignored;
    }
    if let Some(rule) = line.strip_prefix(b"||") {
        return match adblock_domain(rule) {
            Some(name) => insert(name, origin, into),
            None => LineVerdict::Skipped,
        };
    }
    if is_adblock_header(line) {
        return LineVerdict::Ignored;
    }
    let mut words = line
        .split(|b| b.is_ascii_whitespace())
        .filter(|w| !w.is_empty());
    let Some(first) = words.next() else {
        return LineVerdict::Ignored;
    };
    if is_ip_address(first) {
        return hosts_line(words, origin, into);
    }
    if words.next().is_some() {
        return LineVerdict::Skipped;
    }
    insert(first, origin, into)
}

/// The names after the address of a hosts-file line.
fn hosts_line<'a>(
    names: impl Iterator<Item = &'a [u8]>,
    origin: &str,
    into: &mut DomainSet,
) -> LineVerdict {
    let (mut used, mut bad, mut noise) = (false, false, false);
    for name in names {
        if HOSTS_FILE_NOISE
            .iter()
            .any(|n| n.as_bytes().eq_ignore_ascii_case(name))
        {
            noise = true;
        } else if insert(name, origin, into) == LineVerdict::Used {
            used = true;
        } else {
            bad = true;
        }
    }
    match (used, bad, noise) {
        (_, true, _) => LineVerdict::Skipped,
        (true, false, _) => LineVerdict::Used,
        // `127.0.0.1 localhost`.
        (false, false, true) => LineVerdict::Ignored,
        // An address alone.
        (false, false, false) => LineVerdict::Skipped,
    }
}

fn insert(name: &[u8], origin: &str, into: &mut DomainSet) -> LineVerdict {
    match domain_pattern(name) {
        Some(pattern) if into.insert(pattern, origin).is_ok() => LineVerdict::Used,
        _ => LineVerdict::Skipped,
    }
}

/// `name` as a domain pattern fit for a block list, or `None`: ASCII letters,
/// digits, '-' and '_' in labels of 1 to 63, at least two labels, a last
/// label that is not all digits (so not an IPv4 address), an optional
/// leading `*.` and trailing '.'.
fn domain_pattern(name: &[u8]) -> Option<&str> {
    let body = name.strip_prefix(b"*.").unwrap_or(name);
    let body = body.strip_suffix(b".").unwrap_or(body);
    if body.is_empty() || body.len() > 253 {
        return None;
    }
    let mut labels = 0;
    let mut last: &[u8] = &[];
    for label in body.split(|&b| b == b'.') {
        let fine = !label.is_empty()
            && label.len() <= 63
            && label
                .iter()
                .all(|&b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !fine {
            return None;
        }
        labels += 1;
        last = label;
    }
    if labels < 2 || last.iter().all(u8::is_ascii_digit) {
        return None;
    }
    // All ASCII by now.
    std::str::from_utf8(name).ok()
}

/// The domain of an Adblock rule `||domain^` (after the `||`), if the rule
/// blocks that whole domain.
fn adblock_domain(rule: &[u8]) -> Option<&[u8]> {
    let end = rule
        .iter()
        .position(|&b| !(b.is_ascii_alphanumeric() || b"-._".contains(&b)))
        .unwrap_or(rule.len());
    let (name, rest) = rule.split_at(end);
    let whole_domain = match rest {
        b"^" | b"^|" => true,
        _ => rest.strip_prefix(b"^$").is_some_and(|options| {
            options.split(|&b| b == b',').all(|option| {
                WHOLE_DOMAIN_OPTIONS.iter().any(|o| {
                    o.as_bytes()
                        .eq_ignore_ascii_case(trim_end(trim_start(option)))
                })
            })
        }),
    };
    whole_domain.then_some(name)
}

/// `[Adblock Plus 2.0]`, `[uBlock Origin]`, ...
fn is_adblock_header(line: &[u8]) -> bool {
    line.starts_with(b"[")
        && line.ends_with(b"]")
        && line.iter().any(u8::is_ascii_alphabetic)
        && !line.contains(&b':')
}

/// An IPv4 or IPv6 address, possibly with a zone (`fe80::1%lo0`).
fn is_ip_address(word: &[u8]) -> bool {
    let address = word.split(|&b| b == b'%').next().unwrap_or(word);
    !address.is_empty()
        && address
            .iter()
            .all(|&b| b.is_ascii_hexdigit() || b == b'.' || b == b':')
        && std::str::from_utf8(address).is_ok_and(|a| a.parse::<IpAddr>().is_ok())
}

/// The line without its trailing comment, or `None` if its `#` is an Adblock
/// cosmetic rule's (`example.com##.ad`, `#@#`, `#?#`, `#$#`, `#%#`).
fn strip_comment(line: &[u8]) -> Option<&[u8]> {
    let Some(at) = line.iter().position(|&b| b == b'#') else {
        return Some(line);
    };
    let after_word = at > 0 && !line[at - 1].is_ascii_whitespace();
    let cosmetic = matches!(line.get(at + 1), Some(b'#' | b'@' | b'?' | b'$' | b'%'));
    if after_word && cosmetic {
        None
    } else {
        Some(&line[..at])
    }
}

fn trim_start(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    &bytes[start..]
}

fn trim_end(bytes: &[u8]) -> &[u8] {
    let end = bytes
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(0, |i| i + 1);
    &bytes[..end]
}

/// Why a list with no rules is not a list, as best the bytes tell.
fn why_empty(text: &[u8], skipped: usize) -> &'static str {
    let head = &text[..text.len().min(8192)];
    let start = trim_start(&head[..head.len().min(1024)]);
    let starts_with_ci = |prefix: &[u8]| {
        start.len() >= prefix.len() && start[..prefix.len()].eq_ignore_ascii_case(prefix)
    };
    if skipped == 0 {
        "it has nothing but blank lines and comments"
    } else if text.starts_with(b"\x1f\x8b") {
        "it is gzip-compressed data, not a text list"
    } else if text.starts_with(b"PK\x03\x04") {
        "it is a zip archive, not a text list"
    } else if starts_with_ci(b"<!doctype html") || starts_with_ci(b"<html") {
        "it is a web page, not a list (an error or login page?)"
    } else if head.contains(&0) {
        "it is binary data, not text"
    } else {
        "not a hosts file, a domain list, or an Adblock-style list"
    }
}

/// The last good copy of each subscribed list, a file `NAME.list` in `dir`.
#[derive(Debug, Clone)]
pub struct ListStore {
    dir: PathBuf,
}

impl ListStore {
    pub fn new(dir: PathBuf) -> ListStore {
        ListStore { dir }
    }

    /// Keeps `bytes` as the list's copy, whole or not at all: they are
    /// written to a temporary file in `dir`, synced, and renamed over the
    /// copy. Creates `dir` if need be.
    pub fn save(&self, name: &str, bytes: &[u8]) -> io::Result<()> {
        let file_name = file_name(name).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "the list name {name:?} cannot name a file: use letters, digits, '-', '.' and '_', not starting with '.'"
                ),
            )
        })?;
        fs::create_dir_all(&self.dir)?;
        static SAVES: AtomicU64 = AtomicU64::new(0);
        let temp = self.dir.join(format!(
            ".{file_name}.{}-{}.tmp",
            std::process::id(),
            SAVES.fetch_add(1, Ordering::Relaxed)
        ));
        let written =
            write_synced(&temp, bytes).and_then(|()| fs::rename(&temp, self.dir.join(&file_name)));
        if written.is_err() {
            let _ = fs::remove_file(&temp);
        }
        written?;
        // The rename lasts through a crash once the directory is synced;
        // not every system can sync a directory, and the copy is whole
        // either way.
        if let Ok(dir) = File::open(&self.dir) {
            let _ = dir.sync_all();
        }
        Ok(())
    }

    /// The list's saved copy and when it was saved (its file's modification
    /// time), or `None` if there is none or it cannot be read.
    pub fn load(&self, name: &str) -> Option<(Vec<u8>, SystemTime)> {
        let mut file = File::open(self.dir.join(file_name(name)?)).ok()?;
        let meta = file.metadata().ok()?;
        if !meta.is_file() {
            return None;
        }
        // A system without modification times: the copy counts as old, so
        // it is in force and fetched again at once.
        let saved = meta.modified().unwrap_or(UNIX_EPOCH);
        let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
        file.read_to_end(&mut bytes).ok()?;
        Some((bytes, saved))
    }
}

/// The file a list's copy is kept in, if `name` can name a file in the
/// store's directory and nothing else: letters, digits, '-', '.', '_', not
/// starting with '.' (so neither `..` nor a hidden file), no separators.
fn file_name(name: &str) -> Option<String> {
    let fine = !name.is_empty()
        && name.len() <= 200
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b));
    fine.then(|| format!("{name}.list"))
}

fn write_synced(path: &std::path::Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = File::options().write(true).create_new(true).open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    fn parse(text: &str) -> ParsedList {
        parse_subscribed_list(text.as_bytes(), "list test").unwrap()
    }

    fn blocks(list: &ParsedList, host: &str) -> bool {
        list.domains.find(host).is_some()
    }

    #[test]
    fn hosts_files() {
        let list = parse(
            "127.0.0.1 localhost\n\
             ::1 localhost ip6-localhost ip6-loopback\n\
             fe80::1%lo0 localhost\n\
             255.255.255.255 broadcasthost\n\
             0.0.0.0 0.0.0.0\n\
             0.0.0.0 ads.example\n\
             127.0.0.1 a.example\tb.example\n\
             ::1 six.example\n\
             :: zero.example\n",
        );
        assert_eq!((list.entries, list.skipped), (5, 0));
        for host in [
            "ads.example",
            "x.a.example",
            "b.example",
            "six.example",
            "zero.example",
        ] {
            assert!(blocks(&list, host), "{host}");
        }
        assert!(!blocks(&list, "localhost"));
        assert_eq!(
            list.domains.find("www.ads.example"),
            Some(("ads.example".to_string(), "list test"))
        );
    }

    #[test]
    fn hosts_lines_with_a_bad_name_count_as_skipped_but_keep_the_good_ones() {
        let list = parse("0.0.0.0 good.example bad!name.example\n0.0.0.0\n");
        assert_eq!((list.entries, list.skipped), (1, 2));
        assert!(blocks(&list, "good.example"));
    }

    #[test]
    fn plain_domain_lists() {
        let list = parse("ads.example\n*.cdn.example\nTracker.Example.\n");
        assert_eq!((list.entries, list.skipped), (3, 0));
        assert!(blocks(&list, "ads.example"));
        assert!(blocks(&list, "x.cdn.example"));
        assert!(!blocks(&list, "cdn.example"));
        assert!(blocks(&list, "tracker.example"));
    }

    #[test]
    fn adblock_domain_rules() {
        let list = parse(
            "[Adblock Plus 2.0]\n\
             ! Title: test\n\
             ||a.example^\n\
             ||b.example^$third-party\n\
             ||c.example^$important,3p\n\
             ||d.example^|\n",
        );
        assert_eq!((list.entries, list.skipped), (4, 0));
        for host in ["a.example", "www.b.example", "c.example", "d.example"] {
            assert!(blocks(&list, host), "{host}");
        }
    }

    #[test]
    fn other_adblock_rules_are_skipped() {
        let rules = [
            "@@||b.example^",
            "example.com##.ad",
            "example.com#@#.ad",
            "||a.example/path",
            "||a.example",
            "||a*b.example^",
            "||*.a.example^",
            "|http://a.example/",
            "/ads[0-9]+/",
            "||a.example^$script",
            "||a.example^$domain=b.example",
            "||a.example^$third-party,image",
            "||com^",
        ];
        let text = format!("||ok.example^\n{}\n", rules.join("\n"));
        let list = parse(&text);
        assert_eq!((list.entries, list.skipped), (1, rules.len()));
        assert!(!blocks(&list, "a.example"));
        assert!(!blocks(&list, "example.com"));
    }

    #[test]
    fn mixed_list_with_comments_crlf_bom_and_tabs() {
        let text = "\u{feff}# a comment\r\n\
                    ! another\r\n\
                    \r\n\
                    \t  \r\n\
                    0.0.0.0\tads.example # trailing comment\r\n\
                    plain.example\t\r\n\
                    ||adblock.example^\r\n\
                    with.comment.example#no space\r\n";
        let list = parse(text);
        assert_eq!((list.entries, list.skipped), (4, 0));
        for host in [
            "ads.example",
            "plain.example",
            "adblock.example",
            "with.comment.example",
        ] {
            assert!(blocks(&list, host), "{host}");
        }
    }

    #[test]
    fn junk_lines_are_skipped_not_fatal() {
        let junk = [
            "10.1.2.3",
            "::1",
            "single",
            "two words.example",
            "bad!char.example",
            "under score.example",
            "bücher.example",
            "a..b.example",
            "-",
            "*",
            "*.",
            "*.com",
            "example.123",
            "address=/ads.example/0.0.0.0",
        ];
        let text = format!("good.example\n{}\n", junk.join("\n"));
        let list = parse(&text);
        assert_eq!((list.entries, list.skipped), (1, junk.len()));
        let mut bytes = b"good.example\n".to_vec();
        bytes.extend_from_slice(b"\xff\xfe.example\nok\xc3.example\nalso.example\n");
        let list = parse_subscribed_list(&bytes, "t").unwrap();
        assert_eq!((list.entries, list.skipped), (2, 2));
    }

    #[test]
    fn single_labels_and_localhost_names_are_not_entries() {
        let err = parse_subscribed_list(b"com\nads\n0.0.0.0 localhost\n", "t").unwrap_err();
        assert!(matches!(err, ListError::Empty { skipped: 2, .. }), "{err}");
        let list = parse("127.0.0.1 localhost.localdomain local\nads.example\n");
        assert_eq!((list.entries, list.skipped), (1, 0));
        assert!(!blocks(&list, "localhost.localdomain"));
        // Spellings of a whole top-level domain, or of nothing, in each format.
        let list = parse("*.com\n||com^\n0.0.0.0 com\n*.\n||^\nads.example\n");
        assert_eq!(list.entries, 1);
        assert!(!blocks(&list, "shop.com"));
        assert!(blocks(&list, "ads.example"));
    }

    #[test]
    fn a_list_of_nothing_usable_is_an_error_that_says_why() {
        let err = parse_subscribed_list(
            b"<!DOCTYPE html>\n<html><body>Not found</body></html>\n",
            "t",
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "no domain rules in it (2 lines skipped): it is a web page, not a list (an error or login page?)"
        );
        let err = parse_subscribed_list(b"# only comments\n\n", "t").unwrap_err();
        assert_eq!(
            err.to_string(),
            "no domain rules in it (0 lines skipped): it has nothing but blank lines and comments"
        );
        let err = parse_subscribed_list(b"what is this\n", "t").unwrap_err();
        assert_eq!(
            err.to_string(),
            "no domain rules in it (1 line skipped): not a hosts file, a domain list, or an Adblock-style list"
        );
        assert!(parse_subscribed_list(b"", "t").is_err());
        assert!(
            parse_subscribed_list(b"\x1f\x8b\x08\x00junk", "t")
                .unwrap_err()
                .to_string()
                .contains("gzip")
        );
    }

    #[test]
    fn binary_junk_is_skipped() {
        // A fixed pseudo-random sequence with NULs and every byte value.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let junk: Vec<u8> = (0..64 * 1024)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                if i % 97 == 0 { 0 } else { (x >> 24) as u8 }
            })
            .collect();
        let err = parse_subscribed_list(&junk, "t").unwrap_err();
        let ListError::Empty { skipped, .. } = err;
        assert!(skipped > 0);

        let mut mixed = b"0.0.0.0 first.example\n".to_vec();
        mixed.extend_from_slice(&junk);
        mixed.extend_from_slice(b"\nlast.example\n");
        let list = parse_subscribed_list(&mixed, "t").unwrap();
        assert_eq!(list.entries, 2);
        assert!(blocks(&list, "first.example") && blocks(&list, "last.example"));
    }

    #[test]
    fn a_ten_million_character_line_is_skipped_quickly() {
        let mut text = b"a.example\n".to_vec();
        text.resize(text.len() + 10_000_000, b'a');
        text.extend_from_slice(b".example\nb.example\n");
        let started = Instant::now();
        let list = parse_subscribed_list(&text, "t").unwrap();
        let took = started.elapsed();
        assert_eq!((list.entries, list.skipped), (2, 1));
        // A few milliseconds in release, some tens in a debug build.
        assert!(took < Duration::from_secs(2), "{took:?}");
    }

    #[test]
    fn store_keeps_the_last_copy() {
        let dir = tempfile::tempdir().unwrap();
        let store = ListStore::new(dir.path().join("lists"));
        assert!(store.load("ads").is_none());
        store.save("ads", b"ads.example\n").unwrap();
        store.save("ads", b"other.example\n").unwrap();
        let (bytes, saved) = store.load("ads").unwrap();
        assert_eq!(bytes, b"other.example\n");
        assert!(saved.elapsed().unwrap_or_default() < Duration::from_secs(60));
        let names: Vec<_> = fs::read_dir(dir.path().join("lists"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, ["ads.list"], "no temporary file left behind");
    }

    #[test]
    fn store_names_cannot_leave_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let store = ListStore::new(dir.path().join("lists"));
        for name in [
            "../x", "..", ".", "a/b", "/etc/x", "", ".hidden", "a\\b", "a\0b",
        ] {
            let err = store.save(name, b"x.example\n").unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{name:?}");
            assert!(store.load(name).is_none(), "{name:?}");
        }
        assert!(!dir.path().join("x").exists() && !dir.path().join("x.list").exists());
        store.save("easylist-2.0_x", b"x.example\n").unwrap();
        assert!(store.load("easylist-2.0_x").is_some());
    }

    /// The memory and speed of a million-entry list, for the README:
    /// `cargo test --release -p ferry-proxy --lib -- --ignored million --nocapture`
    #[test]
    #[ignore = "a measurement, run by hand in release"]
    fn million_entry_list_memory_and_speed() {
        const N: usize = 1_000_000;
        let name = |n: usize| format!("ads-{n}.tracker{}.example", n % 997);
        let mut text = String::with_capacity(N * 36);
        text.push_str("# a hosts file\n127.0.0.1 localhost\n");
        for n in 0..N {
            text.push_str("0.0.0.0 ");
            text.push_str(&name(n));
            text.push('\n');
        }
        let probes: Vec<String> = (0..N)
            .map(|i| {
                let n = (i * 7919) % N;
                if i % 2 == 0 {
                    format!("www.{}", name(n))
                } else {
                    format!("www.ads-{n}.tracker{}.example", (n + 1) % 997)
                }
            })
            .collect();

        let before = rss_kib();
        let started = Instant::now();
        let list = parse_subscribed_list(text.as_bytes(), "list big").unwrap();
        let parse_time = started.elapsed();
        let after = rss_kib();
        assert_eq!((list.entries, list.skipped), (N, 0));

        let mut hits = 0;
        let mut rounds = Vec::new();
        for chunk in probes.chunks(10_000) {
            let started = Instant::now();
            for host in chunk {
                hits += usize::from(list.domains.find(host).is_some());
            }
            rounds.push(started.elapsed() / u32::try_from(chunk.len()).unwrap());
        }
        rounds.sort();
        assert_eq!(hits, N / 2);

        let grown = (after - before) * 1024;
        println!(
            "{N} entries ({} MB of hosts file): parsed in {parse_time:.2?}; \
             RSS {} -> {} MiB (+{:.1} MiB, {} bytes per entry); \
             find: median {:?} per lookup (half hits, half misses)",
            text.len() / 1_000_000,
            before / 1024,
            after / 1024,
            grown as f64 / (1024.0 * 1024.0),
            grown / N,
            rounds[rounds.len() / 2],
        );
    }

    /// VmRSS of this process, in KiB.
    fn rss_kib() -> usize {
        let status = fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }
}
