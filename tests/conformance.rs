//! The public HTTP caching test suite (npm `http-cache-tests` 0.4.5, the suite
//! behind cache-tests.fyi), run through the real binary as a forward proxy by
//! `conformance/run.mjs`. It fails when a test listed in
//! `conformance/passing.txt` stops passing (the ratchet) and prints tests that
//! newly pass. `scripts/test.sh` installs the suite (`npm ci --prefix conformance`).

mod common;

use std::path::Path;
use std::process::Command;

#[test]
fn http_caching_test_suite_keeps_every_listed_test_passing() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let suite = root.join("conformance/node_modules/http-cache-tests/package.json");
    assert!(
        suite.exists(),
        "the HTTP caching test suite is not installed: run `npm ci --prefix conformance` \
         (scripts/test.sh does)"
    );
    let out = Command::new("node")
        .arg(root.join("conformance/run.mjs"))
        .arg("--ferry")
        .arg(common::ferry())
        .output()
        .expect("run node (install Node.js to run the conformance suite)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "conformance ratchet failed:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("required ") && stdout.contains("optimal "),
        "the suite printed no results:\n{stdout}\n{stderr}"
    );
}
