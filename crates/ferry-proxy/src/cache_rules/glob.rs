//! Path patterns for cache rules, in the glob dialect people know from
//! `.gitignore` and shell: `*` is any run of characters within one path
//! segment, `**` any run across segments (slashes included), `?` one
//! character other than `/`; everything else is itself. Written by hand:
//! the glob crates match file system paths (OS-specific separators,
//! character classes, case rules) where this matches URL paths, and the
//! matcher is a dozen lines.

/// A compiled path pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathGlob {
    pattern: String,
}

impl PathGlob {
    /// The pattern, checked: it starts with `/` or a wildcard, and holds no
    /// whitespace or control characters.
    pub fn new(pattern: &str) -> Result<PathGlob, String> {
        if !(pattern.starts_with('/') || pattern.starts_with('*')) {
            return Err(format!("path pattern {pattern:?} must start with / or *"));
        }
        if pattern.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!("path pattern {pattern:?} holds whitespace"));
        }
        Ok(PathGlob {
            pattern: pattern.to_string(),
        })
    }

    /// Whether `path` (a URL path, without the query) matches.
    pub fn matches(&self, path: &str) -> bool {
        matches_at(self.pattern.as_bytes(), path.as_bytes())
    }
}

/// Backtracking match; patterns are short and have few stars, so the
/// worst case stays small (each star retries at most the path's length).
fn matches_at(pattern: &[u8], path: &[u8]) -> bool {
    match pattern {
        [] => path.is_empty(),
        // `/**/` also matches a single `/` (no directories in between).
        [b'/', b'*', b'*', b'/', rest @ ..] if matches!(path, [b'/', tail @ ..] if matches_at(rest, tail)) => {
            true
        }
        [b'*', b'*', rest @ ..] => (0..=path.len()).any(|i| matches_at(rest, &path[i..])),
        [b'*', rest @ ..] => {
            let segment_end = path.iter().position(|&b| b == b'/').unwrap_or(path.len());
            (0..=segment_end).any(|i| matches_at(rest, &path[i..]))
        }
        [b'?', rest @ ..] => matches!(path, [c, tail @ ..] if *c != b'/' && matches_at(rest, tail)),
        [p, rest @ ..] => matches!(path, [c, tail @ ..] if c == p && matches_at(rest, tail)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stars_stay_in_a_segment_and_double_stars_cross_them() {
        let cases: &[(&str, &str, bool)] = &[
            (
                "**/pool/**/*.deb",
                "/debian/pool/main/h/hello/hello_2.10-3_amd64.deb",
                true,
            ),
            ("**/pool/**/*.deb", "/pool/a.deb", true),
            ("**/pool/**/*.deb", "/debian/pool/main/hello.deb.sig", false),
            (
                "**/by-hash/**",
                "/debian/dists/bookworm/main/binary-amd64/by-hash/SHA256/ab12",
                true,
            ),
            ("/*", "/lodash", true),
            ("/*", "/@types/node", false),
            ("/@*/*", "/@types/node", true),
            ("**/-/*.tgz", "/lodash/-/lodash-4.17.21.tgz", true),
            ("**/-/*.tgz", "/@types/node/-/node-20.0.0.tgz", true),
            ("/3/?/*", "/3/a/abc", true),
            ("/3/?/*", "/3/ab/abc", false),
            ("/??/??/*", "/se/rd/serde", true),
            ("**/@v/*.zip", "/golang.org/x/text/@v/v0.3.0.zip", true),
            (
                "/v2/**/blobs/sha256:*",
                "/v2/library/alpine/blobs/sha256:abc",
                true,
            ),
            (
                "/v2/**/blobs/sha256:*",
                "/v2/library/alpine/blobs/sha256:abc/x",
                false,
            ),
            ("/exact", "/exact", true),
            ("/exact", "/exact/", false),
        ];
        for (pattern, path, want) in cases {
            assert_eq!(
                PathGlob::new(pattern).unwrap().matches(path),
                *want,
                "{pattern} vs {path}"
            );
        }
    }

    #[test]
    fn bad_patterns_are_refused() {
        for bad in ["pool/*", "/a b", "", "/tab\there"] {
            assert!(PathGlob::new(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn many_stars_on_a_long_path_finish() {
        let glob = PathGlob::new("/**a**a**a**a**b").unwrap();
        let path = format!("/{}", "a".repeat(200));
        assert!(!glob.matches(&path));
    }
}
