//! GitHub webhooks: `github::webhook::{verify, parse}` against GitHub's real example payloads
//! (npm `@octokit/webhooks-examples`, installed under `tests/github` by `make github-fixtures`)
//! and GitHub's published signature test vector.
//!
//! Every expectation is read from the payload itself (with JSON pointers, independently of the
//! parser's serde structs), never written down by hand.

use hmac::{Hmac, Mac};
use http::{HeaderMap, HeaderName, HeaderValue};
use picket_vcs::event::{
    CommentKind, Delivery, Ignored, InstallationAction, InstallationEvent,
    InstallationRepositoriesEvent, PullRequestAction, PullRequestEvent, ReplyEvent, RepoRef,
    RepositorySelection, WebhookEvent,
};
use picket_vcs::github::webhook::{parse, verify};
use picket_vcs::github::AppCredentials;
use picket_vcs::webhook::{ParseError, SignatureError, WebhookSecrets};
use proptest::prelude::*;
use proptest::sample::{select, Index};
use secrecy::SecretString;
use serde_json::{json, Value};
use sha2::Sha256;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::LazyLock;
use time::{Duration, OffsetDateTime};

/// The events Picket reads; each must have real examples.
const EVENTS: [&str; 6] = [
    "pull_request",
    "installation",
    "installation_repositories",
    "issue_comment",
    "pull_request_review_comment",
    "ping",
];

const DELIVERY_ID: &str = "72d3162e-cc78-11e3-81ab-4c9367dc0958";
const JSON: &str = "application/json";
const FORM: &str = "application/x-www-form-urlencoded";

/// Text that no real payload holds: generated payload strings carry it, and no error message may.
const MARKER: &str = "PICKET-PAYLOAD-TEXT";

struct Example {
    /// `api.github.com pull_request[3]`, for failure messages.
    source: String,
    event: &'static str,
    payload: Value,
}

static EXAMPLES: LazyLock<Vec<Example>> = LazyLock::new(load_examples);

fn examples_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/github/node_modules/@octokit/webhooks-examples")
}

/// `api.github.com/index.json` (must be there, a list of `{name, examples[]}`), then every
/// `ghes-*/index.json` of the same shape.
fn load_examples() -> Vec<Example> {
    let dir = examples_dir();
    let main = dir.join("api.github.com/index.json");
    assert!(
        main.is_file(),
        "GitHub's webhook examples are not installed ({} is missing): run `make github-fixtures`",
        main.display()
    );
    let mut out = Vec::new();
    read_index(&main, "api.github.com", true, &mut out);
    let mut ghes: Vec<String> = std::fs::read_dir(&dir)
        .expect("read the webhooks-examples package")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("ghes-"))
        .collect();
    ghes.sort();
    for name in ghes {
        let path = dir.join(&name).join("index.json");
        if path.is_file() {
            read_index(&path, &name, false, &mut out);
        }
    }
    out
}

fn read_index(path: &std::path::Path, source: &str, strict: bool, out: &mut Vec<Example>) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let index: Value = serde_json::from_slice(&bytes).expect("index.json is JSON");
    let Some(list) = index.as_array() else {
        assert!(!strict, "{} is no longer a list of events", path.display());
        return;
    };
    for entry in list {
        let (Some(name), Some(examples)) = (entry["name"].as_str(), entry["examples"].as_array())
        else {
            assert!(
                !strict,
                "{}: an entry without `name` and `examples`",
                path.display()
            );
            continue;
        };
        let Some(event) = EVENTS.iter().find(|e| **e == name) else {
            continue;
        };
        for (i, payload) in examples.iter().enumerate() {
            out.push(Example {
                source: format!("{source} {name}[{i}]"),
                event,
                payload: payload.clone(),
            });
        }
    }
}

fn examples_of(event: &str) -> impl Iterator<Item = &'static Example> + use<'_> {
    EXAMPLES.iter().filter(move |e| e.event == event)
}

fn first_example(event: &str, action: &str) -> &'static Example {
    examples_of(event)
        .find(|e| e.payload["action"] == action)
        .unwrap_or_else(|| panic!("no `{event}` example with action `{action}`"))
}

// ---------------------------------------------------------------------------------------------
// Deliveries as GitHub sends them.

fn headers(event: &str, content_type: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("x-github-delivery", HeaderValue::from_static(DELIVERY_ID));
    h.insert(
        "x-github-event",
        HeaderValue::from_str(event).expect("event name"),
    );
    h.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_str(content_type).expect("content type"),
    );
    h
}

/// GitHub's JSON bodies are pretty-printed; so are ours.
fn json_body(payload: &Value) -> Vec<u8> {
    serde_json::to_vec_pretty(payload).expect("serialize")
}

fn form_body(payload: &Value) -> Vec<u8> {
    form_urlencoded::Serializer::new(String::new())
        .append_pair(
            "payload",
            &serde_json::to_string(payload).expect("serialize"),
        )
        .finish()
        .into_bytes()
}

fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn secrets(current: &str) -> WebhookSecrets {
    WebhookSecrets {
        current: SecretString::from(current),
        previous: None,
    }
}

fn with_signature(mut h: HeaderMap, value: &str) -> HeaderMap {
    h.insert(
        "x-hub-signature-256",
        HeaderValue::from_str(value).expect("header value"),
    );
    h
}

// ---------------------------------------------------------------------------------------------
// The expected event, read from the payload with JSON pointers.

fn text(v: &Value, ptr: &str) -> String {
    v.pointer(ptr)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("`{ptr}` is not a string in the example"))
        .to_owned()
}

fn number(v: &Value, ptr: &str) -> u64 {
    v.pointer(ptr)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("`{ptr}` is not a number in the example"))
}

fn opt_text(v: &Value, ptr: &str) -> Option<String> {
    v.pointer(ptr).and_then(Value::as_str).map(str::to_owned)
}

fn repo(v: &Value) -> RepoRef {
    RepoRef {
        id: number(v, "/id").to_string(),
        full_name: text(v, "/full_name"),
        clone_url: opt_text(v, "/clone_url"),
        default_branch: opt_text(v, "/default_branch"),
        private: v.get("private").and_then(Value::as_bool),
    }
}

fn repos(v: Option<&Value>) -> Vec<RepoRef> {
    v.and_then(Value::as_array)
        .map(|list| list.iter().map(repo).collect())
        .unwrap_or_default()
}

fn installation_id(p: &Value) -> Option<String> {
    p.pointer("/installation/id").map(|id| {
        id.as_u64()
            .expect("installation.id is a number")
            .to_string()
    })
}

fn selection(v: Option<&Value>) -> Option<RepositorySelection> {
    match v?.as_str()? {
        "all" => Some(RepositorySelection::All),
        "selected" => Some(RepositorySelection::Selected),
        other => panic!("repository_selection `{other}` is new: teach the parser"),
    }
}

fn ignored(reason: &'static str) -> WebhookEvent {
    WebhookEvent::Ignored(Ignored { reason })
}

fn reply(kind: CommentKind, p: &Value, number_ptr: &str) -> WebhookEvent {
    WebhookEvent::Reply(ReplyEvent {
        kind,
        repository: repo(&p["repository"]),
        installation_id: installation_id(p),
        number: number(p, number_ptr),
        comment_id: number(p, "/comment/id").to_string(),
        in_reply_to: match kind {
            CommentKind::ReviewThread => p
                .pointer("/comment/in_reply_to_id")
                .and_then(Value::as_u64)
                .map(|id| id.to_string()),
            CommentKind::Conversation => None,
        },
        body: text(p, "/comment/body"),
        author: text(p, "/comment/user/login"),
        author_id: number(p, "/comment/user/id").to_string(),
        author_is_bot: text(p, "/comment/user/type") == "Bot",
    })
}

fn expected(event: &str, p: &Value) -> WebhookEvent {
    let action = p.get("action").and_then(Value::as_str).unwrap_or("");
    match event {
        "pull_request" => {
            let action = match action {
                "opened" => PullRequestAction::Opened,
                "synchronize" => PullRequestAction::Pushed,
                "reopened" => PullRequestAction::Reopened,
                "ready_for_review" => PullRequestAction::ReadyForReview,
                _ => return ignored("action_not_handled"),
            };
            let base_repo = p.pointer("/pull_request/base/repo/id");
            WebhookEvent::PullRequest(PullRequestEvent {
                action,
                repository: repo(&p["repository"]),
                installation_id: installation_id(p),
                number: number(p, "/pull_request/number"),
                head_sha: text(p, "/pull_request/head/sha"),
                head_ref: text(p, "/pull_request/head/ref"),
                base_ref: text(p, "/pull_request/base/ref"),
                base_sha: text(p, "/pull_request/base/sha"),
                from_fork: p.pointer("/pull_request/head/repo/id") != base_repo,
                draft: p
                    .pointer("/pull_request/draft")
                    .and_then(Value::as_bool)
                    .expect("pull_request.draft"),
                updated_at: Some(
                    time::OffsetDateTime::parse(
                        &text(p, "/pull_request/updated_at"),
                        &time::format_description::well_known::Rfc3339,
                    )
                    .expect("pull_request.updated_at"),
                ),
                title: text(p, "/pull_request/title"),
                author: opt_text(p, "/pull_request/user/login"),
            })
        }
        "installation" => {
            let action = match action {
                "created" => InstallationAction::Created,
                "deleted" => InstallationAction::Deleted,
                "suspend" => InstallationAction::Suspended,
                "unsuspend" => InstallationAction::Unsuspended,
                "new_permissions_accepted" => InstallationAction::NewPermissionsAccepted,
                _ => return ignored("action_not_handled"),
            };
            WebhookEvent::Installation(InstallationEvent {
                action,
                installation_id: number(p, "/installation/id").to_string(),
                account: text(p, "/installation/account/login"),
                repository_selection: selection(p.pointer("/installation/repository_selection")),
                repositories: repos(p.get("repositories")),
            })
        }
        "installation_repositories" => match action {
            "added" | "removed" => {
                WebhookEvent::InstallationRepositories(InstallationRepositoriesEvent {
                    installation_id: number(p, "/installation/id").to_string(),
                    account: text(p, "/installation/account/login"),
                    repository_selection: selection(p.get("repository_selection")),
                    added: repos(p.get("repositories_added")),
                    removed: repos(p.get("repositories_removed")),
                })
            }
            _ => ignored("action_not_handled"),
        },
        "issue_comment" => match action {
            "created"
                if p.pointer("/issue/pull_request")
                    .is_some_and(|v| !v.is_null()) =>
            {
                reply(CommentKind::Conversation, p, "/issue/number")
            }
            "created" => ignored("not_a_pull_request"),
            _ => ignored("action_not_handled"),
        },
        "pull_request_review_comment" => match action {
            "created" => reply(CommentKind::ReviewThread, p, "/pull_request/number"),
            _ => ignored("action_not_handled"),
        },
        "ping" => WebhookEvent::Ping,
        _ => ignored("event_not_handled"),
    }
}

/// A short name for what an event became, for coverage counts.
fn outcome(event: &WebhookEvent) -> String {
    match event {
        WebhookEvent::PullRequest(e) => format!("pull_request:{:?}", e.action),
        WebhookEvent::Installation(e) => format!("installation:{:?}", e.action),
        WebhookEvent::InstallationRepositories(e) => format!(
            "installation_repositories:+{}-{}",
            e.added.len().min(1),
            e.removed.len().min(1)
        ),
        WebhookEvent::Reply(e) => format!("reply:{:?}", e.kind),
        WebhookEvent::Ping => "ping".to_owned(),
        WebhookEvent::Ignored(i) => format!("ignored:{}", i.reason),
    }
}

fn parse_example(event: &str, payload: &Value, content_type: &str) -> Delivery {
    let body = if content_type == FORM {
        form_body(payload)
    } else {
        json_body(payload)
    };
    parse(&headers(event, content_type), &body).unwrap_or_else(|e| panic!("{event}: {e}"))
}

fn check(event: &str, source: &str, payload: &Value) -> Delivery {
    let delivery = parse_example(event, payload, JSON);
    assert_eq!(delivery.id, DELIVERY_ID, "{source}");
    assert_eq!(delivery.event, event, "{source}");
    assert_eq!(
        delivery.action.as_deref(),
        payload.get("action").and_then(Value::as_str),
        "{source}"
    );
    assert_eq!(delivery.payload, expected(event, payload), "{source}");
    let form = parse_example(event, payload, FORM);
    assert_eq!(
        form, delivery,
        "{source}: the form-encoded body reads differently"
    );
    delivery
}

// ---------------------------------------------------------------------------------------------
// Parsing GitHub's examples.

#[test]
fn every_github_example_parses_into_its_event() {
    let mut per_event: BTreeMap<&str, usize> = BTreeMap::new();
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    let mut sources: BTreeMap<String, usize> = BTreeMap::new();
    for example in EXAMPLES.iter() {
        let delivery = check(example.event, &example.source, &example.payload);
        *per_event.entry(example.event).or_default() += 1;
        *outcomes.entry(outcome(&delivery.payload)).or_default() += 1;
        let source = example.source.split(' ').next().unwrap_or_default();
        *sources.entry(source.to_owned()).or_default() += 1;
    }
    for event in EVENTS {
        assert!(
            per_event.get(event).copied().unwrap_or(0) > 0,
            "no `{event}` example found (moved file?): {per_event:?}"
        );
    }
    assert!(
        sources.len() > 1,
        "only {sources:?}: the ghes-* examples were not read"
    );
    // Each mapping was exercised by at least one real payload.
    for must in [
        "pull_request:Opened",
        "pull_request:Pushed",
        "pull_request:Reopened",
        "pull_request:ReadyForReview",
        "installation:Created",
        "installation:Deleted",
        "installation:Suspended",
        "installation:Unsuspended",
        "installation:NewPermissionsAccepted",
        "installation_repositories:+1-0",
        "installation_repositories:+0-1",
        "reply:ReviewThread",
        "ping",
        "ignored:action_not_handled",
        "ignored:not_a_pull_request",
    ] {
        assert!(
            outcomes.get(must).copied().unwrap_or(0) > 0,
            "no example became `{must}`: {outcomes:?}"
        );
    }
    // Real pull requests carry real data: a PullRequest event's fields are not empty.
    let pr = parse_example(
        "pull_request",
        &first_example("pull_request", "opened").payload,
        JSON,
    );
    let WebhookEvent::PullRequest(pr) = pr.payload else {
        panic!("an opened pull request was not read as one");
    };
    assert_eq!(pr.head_sha.len(), 40);
    assert!(!pr.repository.full_name.is_empty() && pr.number > 0);
}

/// GitHub's examples hold no comment on a pull request's conversation and no reply in a review
/// thread: derive them from the real `created` comments, the way GitHub marks them
/// (`issue.pull_request`, `comment.in_reply_to_id`).
#[test]
fn comments_on_pull_requests_and_thread_replies_are_replies() {
    let mut conversations = 0;
    for example in examples_of("issue_comment").filter(|e| e.payload["action"] == "created") {
        let mut p = example.payload.clone();
        let issue_url = text(&p, "/issue/html_url");
        p["issue"]["pull_request"] = json!({
            "url": text(&p, "/issue/url").replace("/issues/", "/pulls/"),
            "html_url": issue_url.replace("/issues/", "/pull/"),
            "diff_url": format!("{issue_url}.diff"),
            "patch_url": format!("{issue_url}.patch"),
            "merged_at": null,
        });
        let delivery = check("issue_comment", &example.source, &p);
        let WebhookEvent::Reply(reply) = &delivery.payload else {
            panic!("{}: not a reply", example.source);
        };
        assert_eq!(reply.kind, CommentKind::Conversation);
        assert_eq!(reply.in_reply_to, None);
        assert_eq!(reply.number, number(&p, "/issue/number"));
        // A bot's comment (Picket's own, coming back) says so.
        p["comment"]["user"]["type"] = json!("Bot");
        let WebhookEvent::Reply(reply) = check("issue_comment", &example.source, &p).payload else {
            panic!("{}: not a reply", example.source);
        };
        assert!(reply.author_is_bot);
        conversations += 1;
    }
    assert!(conversations > 0, "no created issue_comment example");

    let created: Vec<_> = examples_of("pull_request_review_comment")
        .filter(|e| e.payload["action"] == "created")
        .collect();
    assert!(!created.is_empty(), "no created review comment example");
    let parent = number(&created[0].payload, "/comment/id");
    for example in &created {
        let mut p = example.payload.clone();
        p["comment"]["in_reply_to_id"] = json!(parent);
        let WebhookEvent::Reply(reply) =
            check("pull_request_review_comment", &example.source, &p).payload
        else {
            panic!("{}: not a reply", example.source);
        };
        assert_eq!(reply.in_reply_to, Some(parent.to_string()));
        assert_eq!(reply.kind, CommentKind::ReviewThread);
    }
}

/// No example is a fork PR: make one from a real `opened` one.
#[test]
fn a_head_in_another_repository_or_in_none_is_a_fork() {
    let opened = &first_example("pull_request", "opened").payload;
    let base_id = number(opened, "/pull_request/base/repo/id");
    assert_eq!(
        number(opened, "/pull_request/head/repo/id"),
        base_id,
        "the example is expected to be a same-repository PR"
    );
    let from_fork = |p: &Value| match parse_example("pull_request", p, JSON).payload {
        WebhookEvent::PullRequest(e) => e.from_fork,
        other => panic!("not a pull request event: {other:?}"),
    };
    assert!(!from_fork(opened));

    let mut fork = opened.clone();
    fork["pull_request"]["head"]["repo"]["id"] = json!(base_id + 1);
    fork["pull_request"]["head"]["repo"]["full_name"] = json!("someone-else/Hello-World");
    assert!(from_fork(&fork));
    check("pull_request", "fork PR", &fork);

    let mut gone = opened.clone();
    gone["pull_request"]["head"]["repo"] = Value::Null;
    assert!(from_fork(&gone));
    check("pull_request", "fork PR with its fork deleted", &gone);
}

#[test]
fn a_form_encoded_body_reads_as_its_json() {
    for example in EXAMPLES.iter() {
        let json = parse(&headers(example.event, JSON), &json_body(&example.payload));
        for content_type in [FORM, "Application/X-WWW-Form-Urlencoded; charset=utf-8"] {
            let form = parse(
                &headers(example.event, content_type),
                &form_body(&example.payload),
            );
            assert_eq!(form, json, "{} as {content_type}", example.source);
        }
    }
}

fn parse_error(event: &str, content_type: &str, body: &[u8]) -> ParseError {
    match parse(&headers(event, content_type), body) {
        Err(e) => e,
        Ok(d) => panic!("{event} parsed: {:?}", d.payload),
    }
}

fn assert_names_path(e: &ParseError, path: &str) {
    assert_eq!(e.code, "payload_invalid", "{e}");
    assert!(
        e.message.contains(&format!("`{path}")),
        "{path} not in `{e}`"
    );
    assert!(!e.message.contains(MARKER), "payload text in `{e}`");
}

#[test]
fn broken_deliveries_are_parse_errors_naming_what_is_wrong() {
    let opened = &first_example("pull_request", "opened").payload;
    let body = json_body(opened);

    let mut h = headers("pull_request", JSON);
    h.remove("x-github-delivery");
    let e = parse(&h, &body).expect_err("no delivery id");
    assert_eq!(e.code, "header_missing");
    assert!(e.message.contains("X-GitHub-Delivery"), "{e}");

    let mut h = headers("pull_request", JSON);
    h.remove("x-github-event");
    let e = parse(&h, &body).expect_err("no event");
    assert_eq!(e.code, "header_missing");
    assert!(e.message.contains("X-GitHub-Event"), "{e}");

    let e = parse(&headers("", JSON), &body).expect_err("empty event");
    assert_eq!(e.code, "header_invalid");

    let e = parse_error("pull_request", JSON, &form_body(opened));
    assert_eq!(e.code, "body_not_json");
    let e = parse_error("pull_request", FORM, b"other=1");
    assert_eq!(e.code, "body_not_json");
    assert!(e.message.contains("payload"), "{e}");
    let e = parse_error("ping", FORM, b"payload=%7B%22zen");
    assert_eq!(e.code, "body_not_json");

    let edit = |ptr: &str, value: Option<Value>| {
        let mut p = opened.clone();
        let (parent, key) = ptr.rsplit_once('/').expect("pointer");
        let parent = p.pointer_mut(parent).expect("parent");
        match value {
            Some(v) => parent[key] = v,
            None => {
                parent.as_object_mut().expect("object").remove(key);
            }
        }
        json_body(&p)
    };
    let e = parse_error("pull_request", JSON, &edit("/pull_request/head/sha", None));
    assert_names_path(&e, "pull_request.head.sha");
    let e = parse_error(
        "pull_request",
        JSON,
        &edit("/pull_request/head/sha", Some(json!(MARKER))),
    );
    assert_names_path(&e, "pull_request.head.sha");
    let e = parse_error(
        "pull_request",
        JSON,
        &edit("/pull_request/number", Some(json!(format!("{MARKER} 12")))),
    );
    assert_names_path(&e, "pull_request.number");
    let e = parse_error(
        "pull_request",
        JSON,
        &edit("/pull_request/base/repo", Some(json!([MARKER]))),
    );
    assert_names_path(&e, "pull_request.base.repo");
    let e = parse_error("pull_request", JSON, &edit("/action", None));
    assert_names_path(&e, "action");
    let e = parse_error("pull_request", JSON, b"[]");
    assert_eq!(e.code, "payload_invalid");

    let created = &first_example("installation", "created").payload;
    let mut p = created.clone();
    p["installation"]
        .as_object_mut()
        .expect("object")
        .remove("account");
    let e = parse_error("installation", JSON, &json_body(&p));
    assert_names_path(&e, "installation.account");
    let mut p = created.clone();
    p["repositories"][0]["id"] = json!(MARKER);
    let e = parse_error("installation", JSON, &json_body(&p));
    assert_names_path(&e, "repositories[0].id");

    // Events Picket does not read need no particular shape.
    let ignored = parse(&headers("push", JSON), b"{}").expect("an unknown event is ignored");
    assert_eq!(ignored.payload, self::ignored("event_not_handled"));
}

// ---------------------------------------------------------------------------------------------
// Signatures.

/// GitHub's own test values ("Validating webhook deliveries", "Testing the webhook payload
/// validation": <https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries>).
#[test]
fn githubs_published_test_vector_verifies() {
    let secret = "It's a Secret to Everybody";
    let signature = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
    let now = OffsetDateTime::now_utc();
    let h = with_signature(HeaderMap::new(), signature);
    assert_eq!(verify(&h, b"Hello, World!", &secrets(secret), now), Ok(()));
    assert_eq!(
        verify(&h, b"Hello, World?", &secrets(secret), now),
        Err(SignatureError::Mismatch)
    );
    assert_eq!(
        verify(
            &h,
            b"Hello, World!",
            &secrets("It's a secret to everybody"),
            now
        ),
        Err(SignatureError::Mismatch)
    );
    let upper = format!("sha256={}", signature["sha256=".len()..].to_uppercase());
    let h = with_signature(HeaderMap::new(), &upper);
    assert_eq!(verify(&h, b"Hello, World!", &secrets(secret), now), Ok(()));
}

#[test]
fn signatures_over_real_deliveries() {
    let now = OffsetDateTime::now_utc();
    let secret = "whsec-picket-test";
    let accepted = secrets(secret);
    let payload = &first_example("pull_request", "synchronize").payload;
    let body = json_body(payload);
    let good = sign(secret, &body);
    let base = headers("pull_request", JSON);

    assert_eq!(
        verify(&with_signature(base.clone(), &good), &body, &accepted, now),
        Ok(())
    );
    // The header name in any case (HTTP/1.1 as GitHub sends it) is the same header.
    let mut h = base.clone();
    h.insert(
        HeaderName::from_bytes(b"X-Hub-Signature-256").expect("name"),
        HeaderValue::from_str(&good.to_uppercase().replacen("SHA256=", "sha256=", 1))
            .expect("value"),
    );
    assert_eq!(verify(&h, &body, &accepted, now), Ok(()));

    // Missing, or only the legacy SHA-1 one.
    assert_eq!(
        verify(&base, &body, &accepted, now),
        Err(SignatureError::Missing)
    );
    let mut sha1 = base.clone();
    sha1.insert(
        "x-hub-signature",
        HeaderValue::from_static("sha1=2fd4e1c67a2d28fced849ee1bb76e7391b93eb12"),
    );
    assert_eq!(
        verify(&sha1, &body, &accepted, now),
        Err(SignatureError::Sha1Only)
    );
    // Both, as GitHub sends them: the SHA-256 one decides.
    assert_eq!(
        verify(&with_signature(sha1, &good), &body, &accepted, now),
        Ok(())
    );

    // Wrong secret, changed body.
    assert_eq!(
        verify(
            &with_signature(base.clone(), &sign("another", &body)),
            &body,
            &accepted,
            now
        ),
        Err(SignatureError::Mismatch)
    );
    let mut tampered = body.clone();
    let last = tampered.len() - 2;
    tampered[last] ^= 0x01;
    assert_eq!(
        verify(
            &with_signature(base.clone(), &good),
            &tampered,
            &accepted,
            now
        ),
        Err(SignatureError::Mismatch)
    );

    // The same JSON re-serialized is other bytes: the signature covers bytes, not JSON.
    let compact = serde_json::to_vec(payload).expect("serialize");
    assert_ne!(compact, body);
    assert_eq!(
        serde_json::from_slice::<Value>(&compact).expect("json"),
        serde_json::from_slice::<Value>(&body).expect("json")
    );
    assert_eq!(
        verify(
            &with_signature(base.clone(), &good),
            &compact,
            &accepted,
            now
        ),
        Err(SignatureError::Mismatch)
    );

    // Malformed.
    let digits = &good["sha256=".len()..];
    for bad in [
        String::new(),
        digits.to_owned(),
        format!("sha1={digits}"),
        format!("sha256:{digits}"),
        format!("sha256={}", &digits[1..]),
        format!("sha256={digits}0"),
        format!("sha256={digits}00"),
        format!("sha256={}g", &digits[1..]),
        format!("sha256= {digits}"),
        "sha256=".to_owned(),
    ] {
        assert_eq!(
            verify(&with_signature(base.clone(), &bad), &body, &accepted, now),
            Err(SignatureError::Malformed),
            "{bad:?}"
        );
    }
    let mut twice = with_signature(base.clone(), &good);
    twice.append(
        "x-hub-signature-256",
        HeaderValue::from_str(&good).expect("value"),
    );
    assert_eq!(
        verify(&twice, &body, &accepted, now),
        Err(SignatureError::Malformed)
    );
}

/// After a rotation the previous secret passes until its overlap ends, and not after.
#[test]
fn the_previous_secret_passes_only_during_its_overlap() {
    let now = OffsetDateTime::now_utc();
    let mut credentials = AppCredentials {
        app_id: 1,
        private_key: SecretString::from("not a key"),
        webhook_secret: SecretString::from("old-secret"),
        previous_webhook_secret: None,
        previous_valid_until: None,
    };
    let overlap = Duration::hours(1);
    credentials.rotate_webhook_secret(SecretString::from("new-secret"), now, overlap);
    let accepted = credentials.webhook_secrets();

    let body = json_body(&examples_of("ping").next().expect("a ping example").payload);
    let headers_with = |secret: &str| with_signature(headers("ping", JSON), &sign(secret, &body));
    let old = headers_with("old-secret");
    let new = headers_with("new-secret");

    for at in [now, now + overlap - Duration::seconds(1)] {
        assert_eq!(verify(&old, &body, &accepted, at), Ok(()), "at {at}");
        assert_eq!(verify(&new, &body, &accepted, at), Ok(()), "at {at}");
    }
    for at in [now + overlap, now + overlap * 2] {
        assert_eq!(
            verify(&old, &body, &accepted, at),
            Err(SignatureError::Mismatch),
            "at {at}"
        );
        assert_eq!(verify(&new, &body, &accepted, at), Ok(()), "at {at}");
    }
    assert_eq!(
        verify(&headers_with("other"), &body, &accepted, now),
        Err(SignatureError::Mismatch)
    );
}

// ---------------------------------------------------------------------------------------------
// Whatever arrives, nothing panics and no error quotes the payload.

fn arb_key() -> impl Strategy<Value = String> {
    prop_oneof![
        select(vec![
            "action",
            "id",
            "number",
            "sha",
            "ref",
            "repo",
            "head",
            "base",
            "user",
            "login",
            "type",
            "title",
            "draft",
            "body",
            "issue",
            "comment",
            "pull_request",
            "repository",
            "full_name",
            "installation",
            "account",
            "repositories",
            "repositories_added",
            "in_reply_to_id",
        ])
        .prop_map(str::to_owned),
        "[a-z]{1,6}".prop_map(|s| format!("{MARKER}{s}")),
    ]
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON numbers are finite", |f| f.is_finite())
            .prop_map(Value::from),
        "[0-9a-f]{40}".prop_map(Value::from),
        select(vec![
            "opened",
            "synchronize",
            "created",
            "added",
            "Bot",
            "User",
            "all",
            "selected",
        ])
        .prop_map(Value::from),
        ".{0,12}".prop_map(|s| Value::String(format!("{MARKER}{s}"))),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(arb_key(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn arb_event() -> impl Strategy<Value = String> {
    prop_oneof![
        select(EVENTS.to_vec()).prop_map(str::to_owned),
        "[a-z_]{1,12}",
    ]
}

/// Every node's JSON pointer below the root.
fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
    let children: Vec<(String, &Value)> = match v {
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| (k.replace('~', "~0").replace('/', "~1"), v))
            .collect(),
        Value::Array(list) => list
            .iter()
            .enumerate()
            .map(|(i, v)| (i.to_string(), v))
            .collect(),
        _ => return,
    };
    for (key, child) in children {
        let ptr = format!("{at}/{key}");
        out.push(ptr.clone());
        pointers(child, ptr, out);
    }
}

/// Deletes the node at `ptr`, or puts `value` in its place.
fn mutate(root: &mut Value, ptr: &str, value: Option<Value>) {
    let (parent, key) = ptr.rsplit_once('/').expect("a pointer below the root");
    let key = key.replace("~1", "/").replace("~0", "~");
    match (root.pointer_mut(parent).expect("parent exists"), value) {
        (Value::Object(map), Some(v)) => {
            map.insert(key, v);
        }
        (Value::Object(map), None) => {
            map.remove(&key);
        }
        (Value::Array(list), Some(v)) => list[key.parse::<usize>().expect("index")] = v,
        (Value::Array(list), None) => {
            list.remove(key.parse::<usize>().expect("index"));
        }
        _ => unreachable!("pointers name children of objects and arrays"),
    }
}

fn assert_quiet(result: &Result<Delivery, ParseError>) -> Result<(), TestCaseError> {
    if let Err(e) = result {
        prop_assert!(!e.message.contains(MARKER), "payload text in `{}`", e);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_never_panic(
        event in arb_event(),
        form in any::<bool>(),
        body in prop::collection::vec(any::<u8>(), 0..512),
        signature in prop::collection::vec(any::<u8>(), 0..80),
        secret in ".{0,20}",
    ) {
        let mut h = headers(&event, if form { FORM } else { JSON });
        let _ = parse(&h, &body);
        if let Ok(value) = HeaderValue::from_bytes(&signature) {
            h.insert("x-hub-signature-256", value);
        }
        let result = verify(&h, &body, &secrets(&secret), OffsetDateTime::now_utc());
        prop_assert_ne!(result, Ok(()));
        let mut prefixed = b"sha256=".to_vec();
        prefixed.extend_from_slice(&signature);
        if let Ok(value) = HeaderValue::from_bytes(&prefixed) {
            h.insert("x-hub-signature-256", value);
            let _ = verify(&h, &body, &secrets(&secret), OffsetDateTime::now_utc());
        }
    }

    #[test]
    fn arbitrary_json_never_panics(event in arb_event(), payload in arb_json(), form in any::<bool>()) {
        let (content_type, body) = if form { (FORM, form_body(&payload)) } else { (JSON, json_body(&payload)) };
        let result = parse(&headers(&event, content_type), &body);
        assert_quiet(&result)?;
    }

    #[test]
    fn damaged_real_examples_never_panic(
        which in any::<Index>(),
        edits in prop::collection::vec((any::<Index>(), prop::option::of(arb_json())), 1..4),
    ) {
        let example = which.get(&EXAMPLES[..]);
        let mut payload = example.payload.clone();
        for (at, value) in edits {
            let mut all = Vec::new();
            pointers(&payload, String::new(), &mut all);
            if all.is_empty() {
                break;
            }
            let ptr: &String = at.get(&all);
            mutate(&mut payload, ptr, value);
        }
        let body = json_body(&payload);
        let h = headers(example.event, JSON);
        let result = parse(&h, &body);
        assert_quiet(&result)?;
        if let Err(e) = &result {
            prop_assert!(e.message.starts_with('`'), "no path in `{}`", e);
        }
        let signed = with_signature(h, &sign("s", &body));
        prop_assert_eq!(verify(&signed, &body, &secrets("s"), OffsetDateTime::now_utc()), Ok(()));
    }
}
