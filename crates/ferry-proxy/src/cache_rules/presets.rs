//! Rules that know the package ecosystems, by the shape of their paths and
//! never by host name: mirrors, Artifactory-style proxies and local
//! registries serve the same paths under other hosts. Files whose name
//! says their version or their digest never change and are `immutable`;
//! the indexes that name the current versions change and are kept fresh
//! only briefly (`index_fresh`), unless the origin says otherwise, and are
//! answered within that time even when the client reloads (pip asks for
//! `max-age=0` on every index page). Where a path shape alone is too
//! common on the web (an npm package document is `/<name>`), the client's
//! `Accept` or `User-Agent` narrows the rule (`a|b`: either word).

use super::rule::CacheRule;
use crate::config::CacheRuleConfig;

/// The User-Agent words of npm and the clients that read its registry.
const NODE_CLIENTS: &str = "npm/|pnpm/|yarn/|bun/";

/// Every preset, by name (`packages` is all of them).
pub const NAMES: [&str; 8] = [
    "debian", "pypi", "npm", "crates", "go", "maven", "rubygems", "oci",
];

/// What one preset line says about a path shape.
enum Kind {
    Immutable,
    /// Immutable, keyed without the query (signed download URLs).
    ImmutableAnyQuery,
    Index,
}

/// (name, path, Accept words, User-Agent words, kind)
type PresetRow = (
    &'static str,
    &'static str,
    Option<&'static str>,
    Option<&'static str>,
    Kind,
);

fn lines(preset: &str) -> Vec<PresetRow> {
    use Kind::*;
    match preset {
        // Debian, Ubuntu and their mirrors: versioned files in pool/,
        // content-addressed indexes under by-hash/, the rest of dists/ changes.
        "debian" => vec![
            ("debian-pool", "**/pool/**/*.deb", None, None, Immutable),
            ("debian-pool", "**/pool/**/*.udeb", None, None, Immutable),
            ("debian-pool", "**/pool/**/*.dsc", None, None, Immutable),
            ("debian-pool", "**/pool/**/*.tar.*", None, None, Immutable),
            ("debian-pool", "**/pool/**/*.diff.gz", None, None, Immutable),
            ("debian-by-hash", "**/by-hash/**", None, None, Immutable),
            ("debian-index", "**/dists/**", None, None, Index),
        ],
        // PyPI and its mirrors: files under /packages/ are named by digest
        // and version; the simple index names the current ones.
        "pypi" => vec![
            ("pypi-files", "**/packages/**/*.whl", None, None, Immutable),
            (
                "pypi-files",
                "**/packages/**/*.whl.metadata",
                None,
                None,
                Immutable,
            ),
            (
                "pypi-files",
                "**/packages/**/*.tar.gz",
                None,
                None,
                Immutable,
            ),
            ("pypi-files", "**/packages/**/*.zip", None, None, Immutable),
            (
                "pypi-index",
                "**/simple/**",
                Some("application/vnd.pypi.simple"),
                None,
                Index,
            ),
        ],
        // npm: tarballs are named by version; package documents (asked for
        // by npm and the clients that read its registry) change with each
        // release.
        "npm" => vec![
            ("npm-tarballs", "**/-/*.tgz", None, None, Immutable),
            ("npm-documents", "/*", None, Some(NODE_CLIENTS), Index),
            ("npm-documents", "/@*/*", None, Some(NODE_CLIENTS), Index),
        ],
        // crates.io: downloads are versioned (`/crates/NAME/VERSION/download`
        // whatever comes before: the API, its static host, Artifactory-style
        // proxies); the sparse index changes.
        "crates" => vec![
            ("crates-files", "**/crates/*/*.crate", None, None, Immutable),
            (
                "crates-files",
                "**/crates/*/*/download",
                None,
                None,
                Immutable,
            ),
            ("crates-index", "/config.json", None, Some("cargo"), Index),
            ("crates-index", "/1/*", None, Some("cargo"), Index),
            ("crates-index", "/2/*", None, Some("cargo"), Index),
            ("crates-index", "/3/?/*", None, Some("cargo"), Index),
            ("crates-index", "/*/*/*", None, Some("cargo"), Index),
        ],
        // Go module proxies: a version's zip, go.mod and info never change.
        "go" => vec![
            ("go-modules", "**/@v/*.zip", None, None, Immutable),
            ("go-modules", "**/@v/*.mod", None, None, Immutable),
            ("go-modules", "**/@v/*.info", None, None, Immutable),
            ("go-index", "**/@v/list", None, None, Index),
            ("go-index", "**/@latest", None, None, Index),
        ],
        // Maven repositories: release artifacts are versioned; snapshots
        // and metadata change (first match wins: snapshots come first).
        "maven" => vec![
            ("maven-snapshots", "**/*-SNAPSHOT/**", None, None, Index),
            ("maven-index", "**/maven-metadata.xml", None, None, Index),
            (
                "maven-artifacts",
                "**/maven2/**/*.jar",
                None,
                None,
                Immutable,
            ),
            (
                "maven-artifacts",
                "**/maven2/**/*.pom",
                None,
                None,
                Immutable,
            ),
            (
                "maven-artifacts",
                "**/maven2/**/*.aar",
                None,
                None,
                Immutable,
            ),
            (
                "maven-artifacts",
                "**/repository/**/*.jar",
                None,
                None,
                Immutable,
            ),
            (
                "maven-artifacts",
                "**/repository/**/*.pom",
                None,
                None,
                Immutable,
            ),
        ],
        // RubyGems: gems and gemspecs are versioned; the compact index changes.
        "rubygems" => vec![
            ("rubygems-files", "**/gems/*.gem", None, None, Immutable),
            (
                "rubygems-files",
                "**/quick/Marshal.4.8/*.gemspec.rz",
                None,
                None,
                Immutable,
            ),
            ("rubygems-index", "/info/*", None, Some("gems"), Index),
            ("rubygems-index", "/versions", None, Some("gems"), Index),
        ],
        // OCI registries: blobs and manifests by digest never change (nor do
        // blob downloads by digest on a storage host, whose URL is signed);
        // a tag names whatever it names now.
        "oci" => vec![
            ("oci-blobs", "/v2/**/blobs/sha256:*", None, None, Immutable),
            (
                "oci-manifests",
                "/v2/**/manifests/sha256:*",
                None,
                None,
                Immutable,
            ),
            (
                "oci-blobs",
                "**/blobs/sha256/**",
                None,
                None,
                ImmutableAnyQuery,
            ),
            ("oci-tags", "/v2/**/manifests/*", None, None, Index),
        ],
        _ => Vec::new(),
    }
}

/// The rules of the presets named in `names` (`packages` is every one), in
/// order, with index files fresh for `index_fresh` when the origin gives
/// no freshness of its own.
pub fn rules(names: &[String], index_fresh: &str) -> Result<Vec<CacheRule>, String> {
    let mut chosen: Vec<&str> = Vec::new();
    for name in names {
        match name.as_str() {
            "packages" => chosen.extend(NAMES),
            n if NAMES.contains(&n) => {
                chosen.push(NAMES[NAMES.iter().position(|x| *x == n).unwrap_or(0)])
            }
            other => {
                return Err(format!(
                    "no cache preset {other:?}; there are: packages (all), {}",
                    NAMES.join(", ")
                ));
            }
        }
    }
    chosen.dedup();
    let mut rules = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for preset in chosen {
        if !seen.insert(preset) {
            continue;
        }
        for (name, path, accept, user_agent, kind) in lines(preset) {
            let config = CacheRuleConfig {
                name: name.into(),
                path: Some(path.into()),
                accept: accept.map(Into::into),
                user_agent: user_agent.map(Into::into),
                immutable: matches!(kind, Kind::Immutable | Kind::ImmutableAnyQuery),
                ignore_reload: matches!(kind, Kind::Index),
                ignore_query: matches!(kind, Kind::ImmutableAnyQuery),
                fresh: matches!(kind, Kind::Index).then(|| index_fresh.to_string()),
                ..Default::default()
            };
            rules.push(CacheRule::new(&config)?);
        }
    }
    Ok(rules)
}

#[cfg(test)]
mod tests {
    use http::HeaderMap;

    use super::*;

    fn first_match<'a>(
        rules: &'a [CacheRule],
        host: &str,
        path: &str,
        headers: &HeaderMap,
    ) -> Option<&'a str> {
        rules
            .iter()
            .find(|r| r.matches(host, path, headers))
            .map(|r| &*r.name)
    }

    #[test]
    fn package_paths_match_on_any_host_and_ordinary_pages_do_not() {
        let rules = rules(&["packages".into()], "1m").unwrap();
        let none = HeaderMap::new();
        let cases: &[(&str, &str, Option<&str>)] = &[
            (
                "deb.example",
                "/debian/pool/main/h/hello/hello_2.10-3_amd64.deb",
                Some("debian-pool"),
            ),
            (
                "mirror.lan",
                "/ubuntu/pool/universe/x/xz/xz_5.4.dsc",
                Some("debian-pool"),
            ),
            (
                "deb.example",
                "/debian/dists/bookworm/main/binary-amd64/by-hash/SHA256/0a1b",
                Some("debian-by-hash"),
            ),
            (
                "deb.example",
                "/debian/dists/bookworm/InRelease",
                Some("debian-index"),
            ),
            (
                "files.example",
                "/packages/3a/1f/0123abcd/six-1.16.0-py2.py3-none-any.whl",
                Some("pypi-files"),
            ),
            (
                "registry.example",
                "/left-pad/-/left-pad-1.3.0.tgz",
                Some("npm-tarballs"),
            ),
            (
                "static.example",
                "/crates/serde/serde-1.0.0.crate",
                Some("crates-files"),
            ),
            (
                "proxy.golang.example",
                "/golang.org/x/text/@v/v0.3.0.zip",
                Some("go-modules"),
            ),
            (
                "repo.example",
                "/maven2/org/x/y/1.0/y-1.0.jar",
                Some("maven-artifacts"),
            ),
            (
                "repo.example",
                "/maven2/org/x/y/1.0-SNAPSHOT/y-1.0-SNAPSHOT.jar",
                Some("maven-snapshots"),
            ),
            (
                "registry.example",
                "/v2/library/alpine/blobs/sha256:abcd",
                Some("oci-blobs"),
            ),
            (
                "registry.example",
                "/v2/library/alpine/manifests/3.20",
                Some("oci-tags"),
            ),
            // Ordinary pages on ordinary sites.
            ("news.example", "/", None),
            ("news.example", "/about", None),
            ("news.example", "/en/us/index.html", None),
            ("shop.example", "/downloads/app.jar", None),
            ("shop.example", "/simple/page", None),
        ];
        for (host, path, want) in cases {
            assert_eq!(
                first_match(&rules, host, path, &none),
                *want,
                "{host}{path}"
            );
        }
        // The shapes too common on the web need the client's own words.
        // (npm 11 asks for a package document with these.)
        let mut npm = HeaderMap::new();
        npm.insert(http::header::ACCEPT, "application/json".parse().unwrap());
        npm.insert(
            http::header::USER_AGENT,
            "npm/11.19.1 node/v20.20.2 linux x64 workspaces/false"
                .parse()
                .unwrap(),
        );
        assert_eq!(
            first_match(&rules, "registry.example", "/left-pad", &npm),
            Some("npm-documents")
        );
        assert_eq!(
            first_match(&rules, "registry.example", "/@types/node", &npm),
            Some("npm-documents")
        );
        assert_eq!(first_match(&rules, "news.example", "/about", &none), None);
        // A crate download through any front: the API, the static host, a proxy.
        for path in [
            "/api/v1/crates/ryu/1.0.23/download",
            "/crates/ryu/1.0.23/download",
            "/artifactory/api/cargo/crates-io/v1/crates/ryu/1.0.23/download",
        ] {
            assert_eq!(
                first_match(&rules, "h.example", path, &none),
                Some("crates-files"),
                "{path}"
            );
        }
        let mut cargo = HeaderMap::new();
        cargo.insert(
            http::header::USER_AGENT,
            "cargo/1.95.0 (f2d3ce0bd 2026-03-21)".parse().unwrap(),
        );
        assert_eq!(
            first_match(&rules, "index.example", "/se/rd/serde", &cargo),
            Some("crates-index")
        );
        assert_eq!(
            first_match(&rules, "index.example", "/se/rd/serde", &none),
            None
        );
    }

    #[test]
    fn presets_are_named_and_unknown_ones_refused() {
        assert!(rules(&["npm".into(), "npm".into()], "1m").unwrap().len() == 3);
        let err = rules(&["debain".into()], "1m").unwrap_err();
        assert!(err.contains("debian"), "{err}");
        assert!(rules(&["pypi".into()], "soon").is_err());
    }
}
