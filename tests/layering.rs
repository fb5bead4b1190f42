//! The layers stay layers (see `ARCHITECTURE.md`): no import circle between
//! the files of any crate; `ferry-proxy`'s modules import only from their
//! own floor or the floors below; and no source file grows past 650 lines
//! before its tests.
//!
//! "File A imports file B" when A names, in a `use` item or an inline path
//! starting `crate::`, `super::` or `self::` (or a child module of A's),
//! an item of the module file B defines; the longest module prefix of the
//! path decides which file, so a path through a `mod.rs` or `lib.rs`
//! re-export is an import of that `mod.rs` or `lib.rs`. Items under
//! `#[cfg(test)]` do not count. Written by hand because it is a small
//! reading of `use` lines, not a Rust parser: no crate does exactly this.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// `ferry-proxy`'s floors, lowest first: a module may import from its own
/// floor or any floor below. Keyed by the module's first path segment.
const PROXY_FLOORS: &[&[&str]] = &[
    &[
        "config", "conn", "outcome", "body", "pages", "headers", "host", "timeouts", "turns",
    ],
    &["access", "upstream", "intercept", "cache_rules", "groups"],
    &["error"],
    &["telemetry"],
    &["state"],
    &["phases"],
    &["own_pages", "background", "explain"],
    &["exchange"],
    &["listener"],
    &[""],
];

/// The longest a source file may be before its `#[cfg(test)]` tests.
const MAX_LINES: usize = 650;

type Module = Vec<String>;

#[test]
fn no_crate_has_an_import_circle() {
    let mut circles = Vec::new();
    for src in source_dirs() {
        let graph = Graph::read(&src);
        for circle in graph.circles() {
            circles.push(format!("{}: {}", src.display(), circle.join(", ")));
        }
    }
    assert!(
        circles.is_empty(),
        "import circles:\n{}",
        circles.join("\n")
    );
}

#[test]
fn proxy_modules_import_only_from_their_floor_or_below() {
    let src = root().join("crates/ferry-proxy/src");
    let graph = Graph::read(&src);
    let floor_of = |file: &Path| -> usize {
        let module = graph.module_of(file);
        let first = module.first().map_or("", String::as_str);
        PROXY_FLOORS
            .iter()
            .position(|floor| floor.contains(&first))
            .unwrap_or_else(|| {
                panic!(
                    "{first:?} ({}) is on no floor of PROXY_FLOORS: add it",
                    file.display()
                )
            })
    };
    let mut upward = Vec::new();
    for (from, targets) in &graph.edges {
        for to in targets {
            let (a, b) = (floor_of(from), floor_of(to));
            if b > a {
                upward.push(format!(
                    "{} (floor {a}) imports {} (floor {b})",
                    graph.rel(from),
                    graph.rel(to)
                ));
            }
        }
    }
    assert!(
        upward.is_empty(),
        "imports that point up:\n{}",
        upward.join("\n")
    );
}

#[test]
fn no_source_file_is_over_the_line_limit() {
    let mut long = Vec::new();
    for src in source_dirs() {
        for file in rust_files(&src) {
            let text = std::fs::read_to_string(&file).unwrap();
            let before_tests = text.split("#[cfg(test)]\nmod tests").next().unwrap_or("");
            let lines = before_tests.lines().count();
            if lines > MAX_LINES {
                long.push(format!(
                    "{} has {lines} lines before its tests",
                    file.display()
                ));
            }
        }
    }
    assert!(
        long.is_empty(),
        "files over {MAX_LINES} lines (split them by concern):\n{}",
        long.join("\n")
    );
}

/// One name for each thing: within a crate, no two top-level structs,
/// enums, traits or type aliases share a name, so a name found by search
/// means one thing. Test-only files and items do not count.
#[test]
fn no_two_types_in_a_crate_share_a_name() {
    assert_eq!(
        top_level_type_names(
            "pub(crate) struct A;\nenum B {}\nimpl X {\n    type C = u8;\n}\npub type D = u8;\ntrait E {}\n"
        ),
        ["A", "B", "D", "E"]
    );
    let mut repeated = Vec::new();
    for src in source_dirs() {
        let mut seen: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for file in rust_files(&src) {
            let name = file.file_name().unwrap().to_string_lossy();
            if name == "tests.rs" || name == "proptests.rs" {
                continue;
            }
            let text = std::fs::read_to_string(&file).unwrap();
            let code = without_test_items(&code_only(&text));
            for type_name in top_level_type_names(&code) {
                let at = file.strip_prefix(&src).unwrap().display().to_string();
                seen.entry(type_name).or_default().push(at);
            }
        }
        for (name, files) in seen.into_iter().filter(|(_, f)| f.len() > 1) {
            repeated.push(format!("{}: {name} in {}", src.display(), files.join(", ")));
        }
    }
    assert!(
        repeated.is_empty(),
        "type names used twice in one crate (rename one):\n{}",
        repeated.join("\n")
    );
}

/// The names of the structs, enums, traits and type aliases declared at
/// the start of a line (items inside `impl` blocks are indented).
fn top_level_type_names(code: &str) -> Vec<String> {
    let mut names = Vec::new();
    for line in code.lines() {
        let mut rest = line;
        if let Some(r) = rest.strip_prefix("pub") {
            rest = match r.strip_prefix('(') {
                Some(r) => r.split_once(')').map_or("", |(_, r)| r),
                None => r,
            };
            rest = rest.trim_start();
        }
        for keyword in ["struct ", "enum ", "trait ", "type "] {
            if let Some(r) = rest.strip_prefix(keyword) {
                let name: String = r.chars().take_while(|c| is_ident_char(*c)).collect();
                if !name.is_empty() {
                    names.push(name);
                }
            }
        }
    }
    names
}

#[test]
fn the_reading_finds_circles_floors_and_test_items() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write("lib.rs", "mod a;\nmod b;\nmod c;\nmod d;\npub use a::A;\n");
    write("a.rs", "use crate::b::{self, B as Bee};\npub struct A;\n");
    write(
        "b/mod.rs",
        "mod inner;\npub use inner::B;\n#[cfg(test)]\nmod tests {\n    use crate::c::C;\n    const S: &str = \"{{\";\n    const Q: char = '{';\n}\nfn f() { let _ = super::c::C; }\n",
    );
    write(
        "d.rs",
        "const T: &str = \"use crate::a::A; // not code\";\nconst R: &str = r#\"crate::a::A\"#;\n/* crate::b::B */\nfn g<'a>(x: &'a str) -> &'a str { x }\n",
    );
    write(
        "b/inner.rs",
        "// use crate::a::A;\npub struct B { x: crate::a::A }\n",
    );
    write("c.rs", "pub struct C;\n#[cfg(test)]\nuse crate::a::A;\n");
    let graph = Graph::read(dir.path());
    let edges = |file: &str| -> Vec<String> {
        let mut out: Vec<String> = graph.edges[&dir.path().join(file)]
            .iter()
            .map(|t| graph.rel(t))
            .collect();
        out.sort();
        out
    };
    assert_eq!(edges("lib.rs"), ["a.rs"]);
    assert_eq!(edges("a.rs"), ["b/mod.rs"]);
    assert_eq!(
        edges("b/mod.rs"),
        ["b/inner.rs", "c.rs"],
        "test items do not count"
    );
    assert_eq!(
        edges("b/inner.rs"),
        ["a.rs"],
        "inline paths count, comments do not"
    );
    assert_eq!(edges("c.rs"), Vec::<String>::new());
    assert_eq!(
        edges("d.rs"),
        Vec::<String>::new(),
        "strings and comments are not code"
    );
    let circles = graph.circles();
    assert_eq!(circles, [vec!["a.rs", "b/inner.rs", "b/mod.rs"]]);
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn source_dirs() -> Vec<PathBuf> {
    let mut dirs = vec![root().join("src")];
    let mut crates: Vec<PathBuf> = std::fs::read_dir(root().join("crates"))
        .unwrap()
        .map(|e| e.unwrap().path().join("src"))
        .filter(|p| p.is_dir())
        .collect();
    crates.sort();
    dirs.extend(crates);
    dirs
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The files of one crate and which imports which.
struct Graph {
    src: PathBuf,
    modules: BTreeMap<Module, PathBuf>,
    edges: BTreeMap<PathBuf, BTreeSet<PathBuf>>,
}

impl Graph {
    fn read(src: &Path) -> Graph {
        let mut modules = BTreeMap::new();
        for file in rust_files(src) {
            let module = module_path(src, &file);
            // Binaries under src/bin are crates of their own.
            if module.first().is_some_and(|m| m == "bin") {
                continue;
            }
            modules.entry(module).or_insert(file);
        }
        let mut graph = Graph {
            src: src.to_path_buf(),
            modules,
            edges: BTreeMap::new(),
        };
        let files: Vec<(Module, PathBuf)> = graph
            .modules
            .iter()
            .map(|(m, f)| (m.clone(), f.clone()))
            .collect();
        for (module, file) in files {
            let text = without_test_items(&code_only(&std::fs::read_to_string(&file).unwrap()));
            let children = child_modules(&text);
            let mut targets = BTreeSet::new();
            for path in paths_in(&text) {
                let first = path.split("::").next().unwrap_or("");
                let path = if children.contains(first) {
                    format!("self::{path}")
                } else if ["crate", "super", "self"].contains(&first) {
                    path
                } else {
                    continue;
                };
                if let Some(target) = graph.resolve(&module, &path) {
                    if target != file {
                        targets.insert(target);
                    }
                }
            }
            graph.edges.insert(file, targets);
        }
        graph
    }

    fn rel(&self, file: &Path) -> String {
        file.strip_prefix(&self.src)
            .unwrap_or(file)
            .display()
            .to_string()
    }

    fn module_of(&self, file: &Path) -> Module {
        module_path(&self.src, file)
    }

    /// The file defining the longest module prefix of `path`, read from
    /// inside `here`.
    fn resolve(&self, here: &Module, path: &str) -> Option<PathBuf> {
        let mut segments = path.split("::").peekable();
        let mut base: Module = match segments.peek() {
            Some(&"crate") => {
                segments.next();
                Vec::new()
            }
            _ => here.clone(),
        };
        while let Some(&s) = segments.peek() {
            match s {
                "super" => {
                    base.pop();
                }
                "self" => {}
                _ => break,
            }
            segments.next();
        }
        base.extend(segments.filter(|s| *s != "self").map(str::to_string));
        (0..=base.len())
            .rev()
            .find_map(|n| self.modules.get(&base[..n]).cloned())
    }

    /// Each set of files that import each other (strongly connected, more
    /// than one file), as paths relative to the source dir, sorted.
    fn circles(&self) -> Vec<Vec<String>> {
        let nodes: Vec<&PathBuf> = self.modules.values().collect();
        let index_of: BTreeMap<&PathBuf, usize> =
            nodes.iter().enumerate().map(|(i, n)| (*n, i)).collect();
        let adjacency: Vec<Vec<usize>> = nodes
            .iter()
            .map(|n| {
                self.edges
                    .get(*n)
                    .into_iter()
                    .flatten()
                    .filter_map(|t| index_of.get(t).copied())
                    .collect()
            })
            .collect();
        let mut out: Vec<Vec<String>> = strongly_connected(&adjacency)
            .into_iter()
            .filter(|c| c.len() > 1)
            .map(|c| {
                let mut names: Vec<String> = c.iter().map(|&i| self.rel(nodes[i])).collect();
                names.sort();
                names
            })
            .collect();
        out.sort();
        out
    }
}

/// `a/b.rs` and `a/b/mod.rs` are module `a::b`; `lib.rs` and `main.rs` the root.
fn module_path(src: &Path, file: &Path) -> Module {
    let rel = file.strip_prefix(src).unwrap_or(file).with_extension("");
    let mut parts: Module = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts == ["lib"] || parts == ["main"] {
        return Vec::new();
    }
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts
}

/// Tarjan's algorithm, iteratively (no recursion depth to worry about).
fn strongly_connected(adjacency: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let n = adjacency.len();
    let (mut index, mut low) = (vec![usize::MAX; n], vec![0; n]);
    let (mut on_stack, mut stack, mut out) = (vec![false; n], Vec::new(), Vec::new());
    let mut next = 0;
    for start in 0..n {
        if index[start] != usize::MAX {
            continue;
        }
        let mut work = vec![(start, 0usize)];
        while let Some(&mut (v, ref mut child)) = work.last_mut() {
            if *child == 0 {
                index[v] = next;
                low[v] = next;
                next += 1;
                stack.push(v);
                on_stack[v] = true;
            }
            if let Some(&w) = adjacency[v].get(*child) {
                *child += 1;
                if index[w] == usize::MAX {
                    work.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
                continue;
            }
            work.pop();
            if let Some(&(parent, _)) = work.last() {
                low[parent] = low[parent].min(low[v]);
            }
            if low[v] == index[v] {
                let mut component = Vec::new();
                while let Some(w) = stack.pop() {
                    on_stack[w] = false;
                    component.push(w);
                    if w == v {
                        break;
                    }
                }
                out.push(component);
            }
        }
    }
    out
}

/// The code alone: comments removed, and the contents of string and
/// character literals blanked (their quotes and line breaks kept), so
/// neither can be read as a `use`, a path or a brace.
fn code_only(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        let prev_ident = i > 0 && is_ident_char(chars[i - 1]);
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
            continue;
        }
        if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(chars[i]));
                    i += 1;
                }
            }
            continue;
        }
        // Raw strings: r"…", r#"…"#, br#"…"#.
        let raw_at = match (c, next) {
            ('r', Some('"' | '#')) if !prev_ident => Some(i + 1),
            ('b', Some('r')) if !prev_ident && matches!(chars.get(i + 2), Some('"' | '#')) => {
                Some(i + 2)
            }
            _ => None,
        };
        if let Some(at) = raw_at {
            let hashes = chars[at..].iter().take_while(|&&h| h == '#').count();
            if chars.get(at + hashes) == Some(&'"') {
                out.extend(chars[i..at + hashes + 1].iter());
                i = at + hashes + 1;
                while i < chars.len() {
                    if chars[i] == '"'
                        && chars[i + 1..]
                            .iter()
                            .take(hashes)
                            .filter(|&&h| h == '#')
                            .count()
                            == hashes
                    {
                        out.push('"');
                        out.extend(std::iter::repeat_n('#', hashes));
                        i += 1 + hashes;
                        break;
                    }
                    out.push(blank(chars[i]));
                    i += 1;
                }
                continue;
            }
        }
        if c == '"' {
            out.push('"');
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    out.push(' ');
                    i += 1;
                }
                if let Some(&ch) = chars.get(i) {
                    out.push(blank(ch));
                }
                i += 1;
            }
            out.push('"');
            i += 1;
            continue;
        }
        if c == '\'' {
            // A character literal ('x', '\n', '\u{7b}'), not a lifetime ('a).
            let end = if next == Some('\\') {
                chars[i + 2..]
                    .iter()
                    .position(|&q| q == '\'')
                    .map(|p| i + 2 + p)
            } else if chars.get(i + 2) == Some(&'\'') {
                Some(i + 2)
            } else {
                None
            };
            if let Some(end) = end {
                out.push_str("' '");
                i = end + 1;
                continue;
            }
        }
        out.push(c);
        i += 1;
    }
    out
}

/// The code without the items marked `#[cfg(test)]`: a `mod x;` (or any
/// item ending in `;` before a brace), or an item with a body in braces.
fn without_test_items(code: &str) -> String {
    const MARK: &str = "#[cfg(test)]";
    let mut out = String::with_capacity(code.len());
    let mut rest = code;
    while let Some(at) = rest.find(MARK) {
        out.push_str(&rest[..at]);
        rest = &rest[at + MARK.len()..];
        rest = &rest[item_end(rest)..];
    }
    out.push_str(rest);
    out
}

/// Where the item at the start of `code` ends: after its `;` when one comes
/// before any `{`, else after the `}` that closes its first `{`.
fn item_end(code: &str) -> usize {
    let mut depth = 0usize;
    for (i, b) in code.bytes().enumerate() {
        match b {
            b';' if depth == 0 => return i + 1,
            b'{' => depth += 1,
            b'}' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
    }
    code.len()
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// The names of the child modules a file declares (`mod x;`).
fn child_modules(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (at, _) in text.match_indices("mod ") {
        if at > 0 && is_ident(text.as_bytes()[at - 1]) {
            continue;
        }
        let rest = text[at + 4..].trim_start();
        let name: String = rest.chars().take_while(|&c| is_ident_char(c)).collect();
        if !name.is_empty() && rest[name.len()..].trim_start().starts_with(';') {
            out.insert(name);
        }
    }
    out
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Every path the file names: each leaf of every `use` tree, and every
/// inline `crate::`/`super::`/`self::` path outside them.
fn paths_in(text: &str) -> Vec<String> {
    let mut paths = Vec::new();
    let mut outside_uses = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = find_word(rest, "use") {
        let after = &rest[at + 3..];
        if !after.starts_with(|c: char| c.is_whitespace()) {
            outside_uses.push_str(&rest[..at + 3]);
            rest = after;
            continue;
        }
        let Some(end) = after.find(';') else { break };
        outside_uses.push_str(&rest[..at]);
        expand_use_tree(&after[..end], &mut paths);
        rest = &after[end + 1..];
    }
    outside_uses.push_str(rest);
    for start in ["crate::", "super::", "self::"] {
        for (at, _) in outside_uses.match_indices(start) {
            if at > 0 && is_ident(outside_uses.as_bytes()[at - 1]) {
                continue;
            }
            let path: String = outside_uses[at..]
                .chars()
                .take_while(|&c| is_ident_char(c) || c == ':')
                .collect();
            paths.push(path.trim_end_matches(':').to_string());
        }
    }
    paths
}

/// `word` at a word boundary in `text`.
fn find_word(text: &str, word: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(found) = text[from..].find(word) {
        let at = from + found;
        if at == 0 || !is_ident(text.as_bytes()[at - 1]) {
            return Some(at);
        }
        from = at + word.len();
    }
    None
}

/// `a::{b, c::{d as e}}` → `a::b`, `a::c::d`.
fn expand_use_tree(tree: &str, out: &mut Vec<String>) {
    let mut words = tree.split_whitespace().peekable();
    let mut compact = String::new();
    while let Some(word) = words.next() {
        if word == "as" {
            // The rename, up to a separator that may be glued to it.
            if let Some(alias) = words.next() {
                compact.extend(alias.chars().skip_while(|&c| is_ident_char(c)));
            }
            continue;
        }
        compact.push_str(word);
    }
    expand(&compact, "", out);
}

fn expand(tree: &str, prefix: &str, out: &mut Vec<String>) {
    for part in split_top_level(tree) {
        match part.find('{') {
            None => out.push(format!("{prefix}{part}")),
            Some(open) => {
                let close = part.rfind('}').unwrap_or(part.len());
                let inner = &part[open + 1..close.max(open + 1)];
                expand(inner, &format!("{prefix}{}", &part[..open]), out);
            }
        }
    }
}

fn split_top_level(tree: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in tree.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&tree[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&tree[start..]);
    parts.into_iter().filter(|p| !p.is_empty()).collect()
}
