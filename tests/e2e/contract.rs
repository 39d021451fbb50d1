//! The API contract: schemathesis (the pinned PyPI package, `make schemathesis`) against a real
//! `picket run`, with every check, on every operation but the worker routes, must find nothing.
//! It generates requests from the OpenAPI description the server publishes, so a route that
//! refuses a request its description allows, accepts one it forbids, or answers a status it does
//! not document fails this test, including a route added later.
//!
//! Two passes: as the org's admin (everything), then as a member (the admin routes' 403 must be
//! documented). The server runs in a network namespace this test creates with only loopback in
//! it: projects the fuzzer adds get scans, and their fuzzed clone URLs must reach nothing beyond
//! it. Its data directory is a temporary directory; both go when the test ends, pass or fail.
//! Needs root (the namespace), as the sandbox tests do.

use crate::running::{http, schemathesis_binary, scratch, Netns, Server, LISTEN, REPO};
use std::path::Path;

/// One schemathesis run with `token`; returns its exit status and output.
fn schemathesis(ns: &Netns, dir: &Path, token: &str, extra: &[&str]) -> (bool, String) {
    let out = ns
        .exec(schemathesis_binary())
        .arg("--config-file")
        .arg(Path::new(REPO).join("tests/contract/schemathesis.toml"))
        .args(["run", &format!("http://{LISTEN}/api/v1/openapi.json")])
        .args([
            "--checks",
            "all",
            "--exclude-tag",
            "worker",
            "--exclude-tag",
            "webhooks",
        ])
        // One worker: schemathesis' threads race in Python's `ast` on 3.11 (a runtime error,
        // not a finding).
        .args(["--workers", "1"])
        .arg("--header")
        .arg(format!("Authorization: Bearer {token}"))
        .args(extra)
        // Hypothesis keeps its example database in the working directory.
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .output()
        .expect("running schemathesis");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn schemathesis_finds_the_server_doing_what_its_openapi_description_says() {
    let dir = scratch("contract");
    let ns = Netns::create("contract");
    let (server, admin) = Server::start(&ns, &dir.path().join("data"));

    let (ok, report) = schemathesis(&ns, dir.path(), &admin, &[]);
    assert!(ok, "schemathesis (admin) found failures:\n{report}");
    assert!(
        report.contains("Tested: ") && !report.contains("Tested: 0"),
        "schemathesis tested nothing:\n{report}"
    );

    // A member's requests: the admin routes answer 403, which must be documented.
    let member = member_token(&ns, &admin);
    let (ok, report) = schemathesis(
        &ns,
        dir.path(),
        &member,
        &[
            "--max-examples",
            "20",
            "--phases",
            "examples,coverage,fuzzing",
        ],
    );
    assert!(ok, "schemathesis (member) found failures:\n{report}");
    drop(server);
}

/// A member token, made through the API inside the namespace.
fn member_token(ns: &Netns, admin: &str) -> String {
    let body = serde_json::json!({"name": "contract-member", "role": "member"});
    let (status, _, answer) = http(ns, "POST", "/api/v1/tokens", admin, Some(&body));
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&answer));
    let answer: serde_json::Value = serde_json::from_slice(&answer).expect("JSON");
    answer["token"].as_str().expect("a token").to_owned()
}
