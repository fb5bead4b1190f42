//! The URLs inside CSS: where they are and what replaces them. cssparser's
//! tokenizer finds them (so escapes, comments, strings and nesting are read as
//! a browser reads them), and the text is rewritten by the tokens' byte
//! positions, so everything else in a stylesheet stays exactly as it was.
//!
//! A reference is an `@import` target (a string or `url()` right after
//! `@import`), a `url()` anywhere, or a string inside `image-set()`.

use std::ops::Range;

use cssparser::{ParseError, Parser, Token};

/// Deeper blocks than this are skipped (a hostile sheet nesting a million
/// parentheses must not overflow the stack).
const MAX_NESTING: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefKind {
    /// The target of an `@import`: another stylesheet.
    Import,
    /// A `url()` (image, font, cursor, …).
    Url,
}

/// One URL in a piece of CSS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ref {
    pub kind: RefKind,
    /// The URL as written, escapes resolved.
    pub url: String,
    /// The bytes of the whole `url(...)` token, or of the string, in the source.
    pub span: Range<usize>,
}

/// Every URL reference in `css`, in source order.
pub fn references(css: &str) -> Vec<Ref> {
    let mut parser = Parser::new(css);
    let mut out = Vec::new();
    scan(&mut parser, 0, true, false, &mut out);
    out
}

fn scan(p: &mut Parser<'_>, depth: usize, top: bool, strings_are_urls: bool, out: &mut Vec<Ref>) {
    let mut after_import = false;
    loop {
        let start = p.position().byte_index();
        let token = match p.next_including_whitespace_and_comments() {
            Ok(t) => t.clone(),
            Err(_) => break,
        };
        let kind = if after_import {
            RefKind::Import
        } else {
            RefKind::Url
        };
        match token {
            Token::WhiteSpace(_) | Token::Comment(_) => continue,
            Token::AtKeyword(ref name) if top && name.eq_ignore_ascii_case("import") => {
                after_import = true;
                continue;
            }
            Token::UnquotedUrl(url) => out.push(Ref {
                kind,
                url: url.to_string(),
                span: start..p.position().byte_index(),
            }),
            Token::QuotedString(s) if after_import || strings_are_urls => out.push(Ref {
                kind,
                url: s.to_string(),
                span: start..p.position().byte_index(),
            }),
            Token::Function(name) if name.eq_ignore_ascii_case("url") => {
                // `url("...")`: the argument is a string token inside the block.
                let inner = p.parse_nested_block(|p| {
                    let mut found = None;
                    while let Ok(t) = p.next() {
                        if let Token::QuotedString(s) = t {
                            found.get_or_insert_with(|| s.to_string());
                        }
                    }
                    Ok::<_, ParseError<()>>(found)
                });
                if let Ok(Some(url)) = inner {
                    out.push(Ref {
                        kind,
                        url,
                        span: start..p.position().byte_index(),
                    });
                }
            }
            Token::Function(name) if depth < MAX_NESTING => {
                let image_set = name.to_ascii_lowercase().ends_with("image-set");
                let _ = p.parse_nested_block(|p| {
                    scan(p, depth + 1, false, image_set, out);
                    Ok::<_, ParseError<()>>(())
                });
            }
            Token::CurlyBracketBlock | Token::SquareBracketBlock | Token::ParenthesisBlock
                if depth < MAX_NESTING =>
            {
                let _ = p.parse_nested_block(|p| {
                    scan(p, depth + 1, false, strings_are_urls, out);
                    Ok::<_, ParseError<()>>(())
                });
            }
            _ => {}
        }
        after_import = false;
    }
}

/// `css` with each reference for which `replacement` gives a URL written as
/// `url("that URL")`; the others are left as they were.
pub fn rewrite(
    css: &str,
    refs: &[Ref],
    mut replacement: impl FnMut(&Ref) -> Option<String>,
) -> String {
    let mut out = String::with_capacity(css.len());
    let mut last = 0;
    for r in refs {
        if r.span.start < last || r.span.end > css.len() {
            continue;
        }
        let Some(url) = replacement(r) else { continue };
        out.push_str(&css[last..r.span.start]);
        out.push_str("url(\"");
        push_escaped(&mut out, &url);
        out.push_str("\")");
        last = r.span.end;
    }
    out.push_str(&css[last..]);
    out
}

/// Writes `url` so it stays inside a double-quoted CSS string. The URLs
/// written are `data:` (base64) or serialized by the `url` crate, which
/// percent-encodes quotes; this is the guard for anything else.
fn push_escaped(out: &mut String, url: &str) {
    for c in url.chars() {
        match c {
            '"' => out.push_str("%22"),
            '\\' => out.push_str("%5C"),
            '\n' | '\r' | '\x0c' => {}
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn urls(css: &str) -> Vec<(RefKind, String, String)> {
        references(css)
            .into_iter()
            .map(|r| (r.kind, r.url, css[r.span].to_string()))
            .collect()
    }

    #[test]
    fn finds_imports_urls_and_image_sets() {
        let css = r#"@charset "utf-8";
@import "a.css" screen;
@import url(b.css);
@IMPORT url( "c\"q.css" );
/* url(comment.png) */
body { background: url(bg.png) , url( 'x y.png' ); content: "url(no.png)" }
@font-face { font-family: F; src: url(f.woff2) format("woff2") }
.s { background-image: image-set("one.png" 1x, url(two.png) 2x) }
@media print { .p { cursor: url(\63 ur.cur), auto } }
"#;
        let got = urls(css);
        let want: Vec<(RefKind, &str, &str)> = vec![
            (RefKind::Import, "a.css", "\"a.css\""),
            (RefKind::Import, "b.css", "url(b.css)"),
            (RefKind::Import, "c\"q.css", "url( \"c\\\"q.css\" )"),
            (RefKind::Url, "bg.png", "url(bg.png)"),
            (RefKind::Url, "x y.png", "url( 'x y.png' )"),
            (RefKind::Url, "f.woff2", "url(f.woff2)"),
            (RefKind::Url, "one.png", "\"one.png\""),
            (RefKind::Url, "two.png", "url(two.png)"),
            (RefKind::Url, "cur.cur", "url(\\63 ur.cur)"),
        ];
        let got: Vec<(RefKind, &str, &str)> = got
            .iter()
            .map(|(k, u, s)| (*k, u.as_str(), s.as_str()))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn rewrites_by_position_and_keeps_the_rest() {
        let css = "@import 'a.css' print;\nbody{background:url(b.png) no-repeat}/*x*/";
        let refs = references(css);
        let out = rewrite(css, &refs, |r| match r.url.as_str() {
            "a.css" => Some("data:text/css;base64,QQ==".into()),
            _ => None,
        });
        assert_eq!(
            out,
            "@import url(\"data:text/css;base64,QQ==\") print;\nbody{background:url(b.png) no-repeat}/*x*/"
        );
        let out = rewrite(css, &refs, |_| Some("http://e/\"q\\".into()));
        assert!(out.contains("url(\"http://e/%22q%5C\") no-repeat"), "{out}");
    }

    #[test]
    fn hostile_nesting_and_broken_css_end() {
        let deep = "(".repeat(200_000) + "url(x.png)";
        assert!(references(&deep).is_empty());
        let broken = "a { background: url(unterminated.png; } @import \"no-end";
        let _ = references(broken);
        let shallow = "a{b:c(d(url(ok.png)))}";
        assert_eq!(references(shallow).len(), 1);
    }
}
