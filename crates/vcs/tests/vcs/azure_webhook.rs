//! Azure DevOps service-hook deliveries: Basic authentication against stored password hashes,
//! and pull request and pull request comment events parsed from payloads written from
//! Microsoft's documentation (`fixtures/azure/README.md`).

use base64::Engine;
use http::{HeaderMap, HeaderValue};
use picket_vcs::azure::webhook::{
    generate_password, parse, password_hash, verify, PASSWORD_BYTES, USERNAME,
};
use picket_vcs::event::{
    CommentKind, Ignored, PullRequestAction, PullRequestEvent, ReplyEvent, RepoRef, WebhookEvent,
};
use picket_vcs::webhook::{PreviousSecret, SignatureError, WebhookSecrets};
use proptest::prelude::*;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

fn fixture(name: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vcs/fixtures/azure")
        .join(name);
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

fn payload_of(body: &Value) -> WebhookEvent {
    parse(&HeaderMap::new(), &serde_json::to_vec(body).unwrap())
        .unwrap()
        .payload
}

fn ignored(reason: &'static str) -> WebhookEvent {
    WebhookEvent::Ignored(Ignored { reason })
}

fn web() -> RepoRef {
    RepoRef {
        id: "7c4d2e91-3b6a-4f58-9e0d-1a2b3c4d5e6f".into(),
        full_name: "Platform/web".into(),
        clone_url: Some("https://dev.azure.com/acme/Platform/_git/web".into()),
        default_branch: Some("main".into()),
        private: None,
    }
}

fn opened() -> PullRequestEvent {
    PullRequestEvent {
        action: PullRequestAction::Opened,
        repository: web(),
        installation_id: None,
        number: 42,
        head_sha: "1a954628a960aaef81d7b2d4521929579f3541e6".into(),
        head_ref: "feature/login".into(),
        base_ref: "main".into(),
        base_sha: "0e8a3ad980ec179856012b7eecf4327e99cd44cd".into(),
        from_fork: false,
        draft: false,
        updated_at: Some(datetime!(2026-11-30 09:12:45.6789012 UTC)),
        title: "Log in with SSO".into(),
        author: Some("jane@acme.example".into()),
    }
}

#[test]
fn a_created_pull_request_is_opened() {
    let body = serde_json::to_vec(&fixture("pullrequest_created.json")).unwrap();
    let delivery = parse(&HeaderMap::new(), &body).unwrap();
    assert_eq!(delivery.id, "c4f1e0d2-8a7b-4c3d-9e2f-1a0b9c8d7e6f");
    assert_eq!(delivery.event, "git.pullrequest.created");
    assert_eq!(delivery.action, None);
    assert_eq!(delivery.payload, WebhookEvent::PullRequest(opened()));
}

#[test]
fn an_updated_pull_request_is_pushed() {
    let updated = fixture("pullrequest_updated.json");
    let delivery = parse(&HeaderMap::new(), &serde_json::to_vec(&updated).unwrap()).unwrap();
    assert_eq!(delivery.id, "e7a9b1c3-5d2f-4e8a-b6c4-0f2e4d6c8a1b");
    assert_eq!(delivery.event, "git.pullrequest.updated");
    assert_eq!(
        delivery.payload,
        WebhookEvent::PullRequest(PullRequestEvent {
            action: PullRequestAction::Pushed,
            head_sha: "178c040fb76195151aba3d9f4ab33804b03b96c8".into(),
            base_sha: "58c6e48657dbabae737e6184e7702f2a07697fab".into(),
            updated_at: Some(datetime!(2026-11-30 09:30:02.25 UTC)),
            ..opened()
        })
    );
}

#[test]
fn pull_request_fields_follow_the_payload() {
    let with = |f: &dyn Fn(&mut Value)| {
        let mut p = fixture("pullrequest_created.json");
        f(&mut p);
        let WebhookEvent::PullRequest(pr) = payload_of(&p) else {
            panic!("not a pull request event")
        };
        pr
    };
    // From a fork, a draft, upper-case hex, no author's unique name.
    let fork = with(&|p| {
        p["resource"]["forkSource"] = json!({
            "name": "refs/heads/feature/login",
            "repository": {"id": "11111111-2222-4333-8444-555555555555", "name": "web-fork"}
        });
        p["resource"]["isDraft"] = json!(true);
        p["resource"]["lastMergeSourceCommit"]["commitId"] =
            json!("1A954628A960AAEF81D7B2D4521929579F3541E6");
        p["resource"]["createdBy"]["uniqueName"] = Value::Null;
    });
    assert!(fork.from_fork && fork.draft);
    assert_eq!(fork.head_sha, "1a954628a960aaef81d7b2d4521929579f3541e6");
    assert_eq!(fork.author.as_deref(), Some("Jane Doe"));
    // `forkSource: null` is no fork; no `isDraft` is not a draft.
    let plain = with(&|p| {
        p["resource"]["forkSource"] = Value::Null;
        p["resource"].as_object_mut().unwrap().remove("isDraft");
    });
    assert!(!plain.from_fork && !plain.draft);
    // The project's visibility, when the payload gives it.
    for (visibility, private) in [
        (json!("private"), Some(true)),
        (json!("organization"), Some(true)),
        (json!("public"), Some(false)),
        (json!("unchanged"), None),
        (json!(2), None),
    ] {
        let pr =
            with(&|p| p["resource"]["repository"]["project"]["visibility"] = visibility.clone());
        assert_eq!(pr.repository.private, private, "{visibility}");
    }
    // No target tip: an empty base SHA. Branches that are not `refs/heads/...` stay whole.
    let bare = with(&|p| {
        p["resource"]
            .as_object_mut()
            .unwrap()
            .remove("lastMergeTargetCommit");
        p["resource"]["sourceRefName"] = json!("refs/pull/7/head");
        p["resource"]["repository"]
            .as_object_mut()
            .unwrap()
            .remove("defaultBranch");
        p.as_object_mut().unwrap().remove("createdDate");
    });
    assert_eq!(bare.base_sha, "");
    assert_eq!(bare.head_ref, "refs/pull/7/head");
    assert_eq!(bare.repository.default_branch, None);
    assert_eq!(bare.updated_at, None);
}

#[test]
fn closed_or_unmerged_pull_requests_and_other_events_are_ignored() {
    for name in ["pullrequest_created.json", "pullrequest_updated.json"] {
        for status in [
            json!("completed"),
            json!("abandoned"),
            json!("Abandoned"),
            json!(3),
        ] {
            let mut p = fixture(name);
            p["resource"]["status"] = status.clone();
            assert_eq!(
                payload_of(&p),
                ignored("closed_pull_request"),
                "{name} {status}"
            );
        }
        // Azure has not computed the merge yet.
        let mut p = fixture(name);
        p["resource"]
            .as_object_mut()
            .unwrap()
            .remove("lastMergeSourceCommit");
        assert_eq!(payload_of(&p), ignored("merge_not_computed"), "{name}");
        p["resource"]["lastMergeSourceCommit"] = Value::Null;
        assert_eq!(payload_of(&p), ignored("merge_not_computed"), "{name}");
    }
    for event in ["git.pullrequest.merged", "git.pullrequest.approved"] {
        let mut p = fixture("pullrequest_updated.json");
        p["eventType"] = json!(event);
        assert_eq!(payload_of(&p), ignored("action_not_handled"), "{event}");
    }
    for event in ["git.push", "build.complete", "workitem.updated"] {
        let p = json!({"id": "4a5d99d6-1c75-4e53-91b9-ee80057d4ce3", "eventType": event});
        assert_eq!(payload_of(&p), ignored("event_not_handled"), "{event}");
    }
}

fn reply() -> ReplyEvent {
    ReplyEvent {
        kind: CommentKind::ReviewThread,
        repository: web(),
        installation_id: None,
        number: 42,
        comment_id: "7/2".into(),
        in_reply_to: Some("7".into()),
        body: "@picket ignore false positive: the input is a constant".into(),
        author: "jane@acme.example".into(),
        author_id: "2e5d8c1b-4a3f-4e69-b7d0-9c8b7a6f5e4d".into(),
        author_is_bot: false,
    }
}

#[test]
fn a_pull_request_comment_is_a_reply() {
    let comment = fixture("pullrequest_comment.json");
    let delivery = parse(&HeaderMap::new(), &serde_json::to_vec(&comment).unwrap()).unwrap();
    assert_eq!(delivery.id, "f3b2a1c0-9d8e-4f7a-8b6c-5d4e3f2a1b0c");
    assert_eq!(delivery.event, "ms.vss-code.git-pullrequest-comment-event");
    assert_eq!(delivery.action, None);
    assert_eq!(delivery.payload, WebhookEvent::Reply(reply()));

    let with = |f: &dyn Fn(&mut Value)| {
        let mut p = comment.clone();
        f(&mut p);
        payload_of(&p)
    };
    // A thread's first comment is no reply in a thread.
    let first = with(&|p| p["resource"]["comment"]["parentCommentId"] = json!(0));
    assert_eq!(
        first,
        WebhookEvent::Reply(ReplyEvent {
            kind: CommentKind::Conversation,
            ..reply()
        })
    );
    // The thread from the comment's own link when the thread link is missing.
    let self_only = with(&|p| {
        p["resource"]["comment"]["_links"]
            .as_object_mut()
            .unwrap()
            .remove("threads");
    });
    assert_eq!(self_only, WebhookEvent::Reply(reply()));
    // No links at all: the bare comment id, no thread.
    let unlinked = with(&|p| {
        p["resource"]["comment"]
            .as_object_mut()
            .unwrap()
            .remove("_links");
    });
    assert_eq!(
        unlinked,
        WebhookEvent::Reply(ReplyEvent {
            comment_id: "2".into(),
            in_reply_to: None,
            ..reply()
        })
    );
    // System comments and service identities are bots.
    for f in [
        &(|p: &mut Value| p["resource"]["comment"]["commentType"] = json!("system"))
            as &dyn Fn(&mut Value),
        &|p| p["resource"]["comment"]["commentType"] = json!(3),
        &|p| {
            p["resource"]["comment"]["author"]["descriptor"] =
                json!("svc.MjA3ZjBhNWMtZTEwMDpCdWlsZDo1OTBjZmQyYQ");
            p["resource"]["comment"]["author"]["uniqueName"] = json!("");
        },
    ] {
        let WebhookEvent::Reply(r) = with(f) else {
            panic!("not a reply")
        };
        assert!(r.author_is_bot);
    }
    let WebhookEvent::Reply(r) = with(&|p| {
        p["resource"]["comment"]["author"]["descriptor"] = json!("aad.NzY1NDMyMTAtZmVkYw");
    }) else {
        panic!("not a reply")
    };
    assert!(!r.author_is_bot);
    // A deleted comment.
    let deleted = with(&|p| {
        p["resource"]["comment"]["isDeleted"] = json!(true);
        p["resource"]["comment"]
            .as_object_mut()
            .unwrap()
            .remove("content");
    });
    assert_eq!(deleted, ignored("comment_deleted"));
}

#[test]
fn a_handled_event_missing_what_it_needs_is_refused_by_path() {
    let refused =
        |p: &Value| parse(&HeaderMap::new(), &serde_json::to_vec(p).unwrap()).unwrap_err();
    let mut p = fixture("pullrequest_created.json");
    p["resource"]
        .as_object_mut()
        .unwrap()
        .remove("pullRequestId");
    let err = refused(&p);
    assert_eq!(err.code, "payload_invalid");
    assert_eq!(err.message, "`resource.pullRequestId` is missing");

    let mut p = fixture("pullrequest_updated.json");
    p["resource"]["lastMergeSourceCommit"]["commitId"] = json!("178c040");
    assert_eq!(
        refused(&p).message,
        "`resource.lastMergeSourceCommit.commitId` is not a full commit SHA"
    );
    let mut p = fixture("pullrequest_updated.json");
    p["resource"]["pullRequestId"] = json!("forty-two");
    let err = refused(&p);
    assert_eq!(
        err.message,
        "`resource.pullRequestId` does not have the documented type"
    );
    assert!(!err.message.contains("forty-two"));

    // Resource version 1.0 of the comment event, or minimal resource details.
    let mut p = fixture("pullrequest_comment.json");
    p["resource"].as_object_mut().unwrap().remove("pullRequest");
    assert_eq!(refused(&p).message, "`resource.pullRequest` is missing");
    let mut p = fixture("pullrequest_comment.json");
    p["resource"]["comment"]["author"]
        .as_object_mut()
        .unwrap()
        .remove("id");
    assert_eq!(
        refused(&p).message,
        "`resource.comment.author.id` is missing"
    );

    // The envelope.
    let mut p = fixture("pullrequest_created.json");
    p.as_object_mut().unwrap().remove("id");
    assert_eq!(refused(&p).message, "`id` is missing");
    for id in [json!(""), json!("  "), json!(7), json!("a b")] {
        p["id"] = id;
        assert_eq!(refused(&p).message, "`id` is empty or not visible ASCII");
    }
    let mut p = fixture("pullrequest_created.json");
    p.as_object_mut().unwrap().remove("eventType");
    assert_eq!(refused(&p).message, "`eventType` is missing");
    let err = parse(&HeaderMap::new(), b"not json").unwrap_err();
    assert_eq!(err.code, "body_not_json");
}

fn basic(user: &str, password: &str) -> HeaderMap {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut h = HeaderMap::new();
    h.insert(
        "authorization",
        HeaderValue::from_str(&format!(
            "Basic {}",
            b64.encode(format!("{user}:{password}"))
        ))
        .unwrap(),
    );
    h
}

fn secrets(hash: &str) -> WebhookSecrets {
    WebhookSecrets {
        current: SecretString::from(hash.to_owned()),
        previous: None,
    }
}

#[test]
fn basic_authentication_is_checked_against_the_stored_hash() {
    let now = datetime!(2026-11-30 12:00 UTC);
    let password = "Vt3pX0q-7nYb2Jr_LkZs9aWc4Fh6Ge8Dm1Ou5Ri0Ty2";
    let s = secrets(&password_hash(password));
    assert_eq!(verify(&basic(USERNAME, password), &s, now), Ok(()));
    // The scheme's name is case-insensitive; padding may be left out.
    let b64 = base64::engine::general_purpose::STANDARD_NO_PAD;
    let mut h = HeaderMap::new();
    h.insert(
        "authorization",
        HeaderValue::from_str(&format!(
            "basic  {}",
            b64.encode(format!("picket:{password}"))
        ))
        .unwrap(),
    );
    assert_eq!(verify(&h, &s, now), Ok(()));
    // A stored hash in upper case still matches.
    let upper = secrets(&password_hash(password).to_ascii_uppercase());
    assert_eq!(verify(&basic(USERNAME, password), &upper, now), Ok(()));

    for wrong in [
        "",
        "Vt3pX0q",
        &format!("{password}x"),
        &password.to_ascii_lowercase(),
    ] {
        assert_eq!(
            verify(&basic(USERNAME, wrong), &s, now),
            Err(SignatureError::Mismatch),
            "{wrong}"
        );
    }
    for user in ["", "Picket", "admin", "picket "] {
        assert_eq!(
            verify(&basic(user, password), &s, now),
            Err(SignatureError::Mismatch),
            "{user:?}"
        );
    }
    // A password holding a colon: only the first one separates the user.
    let colon = secrets(&password_hash("a:b"));
    assert_eq!(verify(&basic(USERNAME, "a:b"), &colon, now), Ok(()));

    assert_eq!(
        verify(&HeaderMap::new(), &s, now),
        Err(SignatureError::Missing)
    );
    let b64 = base64::engine::general_purpose::STANDARD;
    let credentials = b64.encode(format!("picket:{password}"));
    let malformed: Vec<HeaderValue> = vec![
        HeaderValue::from_str(&format!("Bearer {credentials}")).unwrap(),
        HeaderValue::from_str(&credentials).unwrap(),
        HeaderValue::from_static("Basic"),
        HeaderValue::from_static("Basic !!not*base64!!"),
        // Base64 of bytes that are not UTF-8.
        HeaderValue::from_str(&format!("Basic {}", b64.encode(b"picket:\xff\xfe"))).unwrap(),
        // No colon.
        HeaderValue::from_str(&format!("Basic {}", b64.encode("picket"))).unwrap(),
        // Not visible ASCII.
        HeaderValue::from_bytes(b"Basic \xe9t\xe9").unwrap(),
    ];
    for value in malformed {
        let mut h = HeaderMap::new();
        h.insert("authorization", value.clone());
        assert_eq!(
            verify(&h, &s, now),
            Err(SignatureError::Malformed),
            "{value:?}"
        );
    }
    // The header twice, even both right.
    let mut h = basic(USERNAME, password);
    h.append("authorization", h["authorization"].clone());
    assert_eq!(verify(&h, &s, now), Err(SignatureError::Malformed));
    // A stored secret that is no hash matches nothing.
    assert_eq!(
        verify(&basic(USERNAME, password), &secrets(password), now),
        Err(SignatureError::Mismatch)
    );
}

#[test]
fn after_a_rotation_the_previous_password_passes_until_its_window_closes() {
    let now = datetime!(2026-11-30 12:00 UTC);
    let rotated = WebhookSecrets {
        current: SecretString::from(password_hash("the-new-password")),
        previous: Some(PreviousSecret {
            secret: SecretString::from(password_hash("the-old-password")),
            valid_until: now + Duration::hours(1),
        }),
    };
    let old = basic(USERNAME, "the-old-password");
    assert_eq!(verify(&old, &rotated, now), Ok(()));
    assert_eq!(
        verify(&old, &rotated, now + Duration::hours(2)),
        Err(SignatureError::Mismatch)
    );
    let new = basic(USERNAME, "the-new-password");
    assert_eq!(verify(&new, &rotated, now + Duration::hours(2)), Ok(()));
}

#[test]
fn a_generated_password_verifies_and_only_its_hash_is_kept() {
    let (password, hash) = generate_password();
    let password = password.expose_secret();
    assert_eq!(hash.len(), 64);
    assert!(hash
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
    assert_eq!(hash, password_hash(password));
    // URL-safe base64 of 32 bytes, no padding, no colon.
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(password)
        .unwrap();
    assert_eq!(raw.len(), PASSWORD_BYTES);
    assert!(!password.contains(':') && !password.contains('='));
    let now = OffsetDateTime::now_utc();
    assert_eq!(
        verify(&basic(USERNAME, password), &secrets(&hash), now),
        Ok(())
    );
    let (other, other_hash) = generate_password();
    assert_ne!(other.expose_secret(), password);
    assert_ne!(other_hash, hash);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Whatever the body and headers, parsing and verifying answer without panicking.
    #[test]
    fn parsing_and_verifying_never_panic(
        body in proptest::collection::vec(any::<u8>(), 0..2048),
        authorization in proptest::collection::vec(32u8..=255, 0..80),
        credentials in proptest::collection::vec(any::<u8>(), 0..60),
        event in prop_oneof![
            Just("git.pullrequest.created".to_owned()),
            Just("git.pullrequest.updated".to_owned()),
            Just("ms.vss-code.git-pullrequest-comment-event".to_owned()),
            "[ -~]{0,30}",
        ],
        mutate in proptest::option::of(("[a-zA-Z_]{1,20}", any::<i64>())),
        comment_field in proptest::option::of(("[a-zA-Z_]{1,20}", "[ -~]{0,20}")),
    ) {
        let now = OffsetDateTime::now_utc();
        let s = secrets(&password_hash("p"));
        let mut h = HeaderMap::new();
        if let Ok(value) = HeaderValue::from_bytes(&authorization) {
            h.insert("authorization", value);
        }
        let _ = verify(&h, &s, now);
        let b64 = base64::engine::general_purpose::STANDARD;
        let mut basic = b"Basic ".to_vec();
        basic.extend(b64.encode(&credentials).bytes());
        h.insert("authorization", HeaderValue::from_bytes(&basic).unwrap());
        let _ = verify(&h, &s, now);
        let _ = parse(&h, &body);
        // Real payloads with one field replaced.
        for name in ["pullrequest_created.json", "pullrequest_comment.json"] {
            let mut p = fixture(name);
            p["eventType"] = json!(event);
            if let Some((field, n)) = &mutate {
                p["resource"][field] = json!(n);
            }
            if let Some((field, text)) = &comment_field {
                p["resource"]["comment"][field] = json!(text);
                p["resource"]["pullRequest"][field] = json!(text);
            }
            let _ = parse(&h, &serde_json::to_vec(&p).unwrap());
        }
    }
}
