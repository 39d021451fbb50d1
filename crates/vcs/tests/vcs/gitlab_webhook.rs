//! GitLab deliveries: the plain token and the Standard Webhooks signing token, and merge request
//! and note events parsed from payloads written from GitLab's documentation
//! (`fixtures/gitlab/README.md`).

use base64::Engine;
use hmac::{Hmac, Mac};
use http::{HeaderMap, HeaderValue};
use picket_vcs::event::{
    CommentKind, PullRequestAction, PullRequestEvent, ReplyEvent, RepoRef, WebhookEvent,
};
use picket_vcs::gitlab::webhook::{parse, verify};
use picket_vcs::webhook::{PreviousSecret, SignatureError, WebhookSecrets};
use proptest::prelude::*;
use secrecy::SecretString;
use serde_json::{json, Value};
use sha2::Sha256;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

fn fixture(name: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vcs/fixtures/gitlab")
        .join(name);
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

fn headers(event: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("x-gitlab-event", HeaderValue::from_str(event).unwrap());
    h.insert(
        "idempotency-key",
        HeaderValue::from_static("f0e3d2c1-0000-4000-8000-000000000001"),
    );
    h.insert("content-type", HeaderValue::from_static("application/json"));
    h
}

fn secrets(current: &str) -> WebhookSecrets {
    WebhookSecrets {
        current: SecretString::from(current.to_owned()),
        previous: None,
    }
}

fn payload_of(event: &str, body: &Value) -> WebhookEvent {
    parse(&headers(event), &serde_json::to_vec(body).unwrap())
        .unwrap()
        .payload
}

fn web() -> RepoRef {
    RepoRef {
        id: "14".into(),
        full_name: "acme/platform/web".into(),
        clone_url: Some("https://gitlab.example.test/acme/platform/web.git".into()),
        default_branch: Some("main".into()),
        private: Some(true),
    }
}

fn opened() -> PullRequestEvent {
    PullRequestEvent {
        action: PullRequestAction::Opened,
        repository: web(),
        installation_id: None,
        number: 7,
        head_sha: "da1560886d4f094c3e6c9ef40349f7d38b5d27d7".into(),
        head_ref: "feature/login".into(),
        base_ref: "main".into(),
        base_sha: String::new(),
        from_fork: false,
        draft: false,
        updated_at: Some(datetime!(2026-11-30 09:12:45 UTC)),
        title: "Log in with SSO".into(),
        author: None,
    }
}

#[test]
fn merge_request_events_that_bring_code_queue_and_the_rest_are_ignored() {
    let open = fixture("merge_request_open.json");
    let delivery = parse(
        &headers("Merge Request Hook"),
        &serde_json::to_vec(&open).unwrap(),
    )
    .unwrap();
    assert_eq!(delivery.id, "f0e3d2c1-0000-4000-8000-000000000001");
    assert_eq!(delivery.event, "Merge Request Hook");
    assert_eq!(delivery.action.as_deref(), Some("open"));
    assert_eq!(delivery.payload, WebhookEvent::PullRequest(opened()));

    let with = |f: &dyn Fn(&mut Value)| {
        let mut p = open.clone();
        f(&mut p);
        payload_of("Merge Request Hook", &p)
    };
    // A push: `update` with `oldrev`.
    let pushed = with(&|p| {
        p["object_attributes"]["action"] = json!("update");
        p["object_attributes"]["oldrev"] = json!("0b4bc9a49b562e85de7cc9e834518ea6828729b9");
        p["object_attributes"]["updated_at"] = json!("2026-11-30 09:30:00 UTC");
    });
    let mut expected = opened();
    expected.action = PullRequestAction::Pushed;
    expected.updated_at = Some(datetime!(2026-11-30 09:30:00 UTC));
    assert_eq!(pushed, WebhookEvent::PullRequest(expected));
    // A title edit or a new reviewer: `update` without `oldrev`.
    let edited = with(&|p| {
        p["object_attributes"]["action"] = json!("update");
        p["changes"] = json!({"title": {"previous": "WIP", "current": "Log in with SSO"}});
    });
    assert_eq!(
        edited,
        WebhookEvent::Ignored(picket_vcs::event::Ignored {
            reason: "metadata_only"
        })
    );
    // Marked ready: `changes.draft` from true to false.
    let ready = with(&|p| {
        p["object_attributes"]["action"] = json!("update");
        p["changes"] = json!({"draft": {"previous": true, "current": false}});
    });
    assert!(matches!(
        ready,
        WebhookEvent::PullRequest(PullRequestEvent {
            action: PullRequestAction::ReadyForReview,
            ..
        })
    ));
    let reopened = with(&|p| p["object_attributes"]["action"] = json!("reopen"));
    assert!(matches!(
        reopened,
        WebhookEvent::PullRequest(PullRequestEvent {
            action: PullRequestAction::Reopened,
            ..
        })
    ));
    for action in ["close", "merge", "approved", "unapproved", "approval"] {
        let got = with(&|p| p["object_attributes"]["action"] = json!(action));
        assert_eq!(
            got,
            WebhookEvent::Ignored(picket_vcs::event::Ignored {
                reason: "action_not_handled"
            }),
            "{action}"
        );
    }
    // From another project (a fork), a draft, a public project.
    let fork = with(&|p| {
        p["object_attributes"]["source_project_id"] = json!(77);
        p["object_attributes"]["draft"] = json!(true);
        p["project"]["visibility_level"] = json!(20);
    });
    let WebhookEvent::PullRequest(fork) = fork else {
        panic!("{fork:?}")
    };
    assert!(fork.from_fork && fork.draft);
    assert_eq!(fork.repository.private, Some(false));
}

#[test]
fn a_handled_event_missing_what_it_needs_is_refused_by_path() {
    let mut p = fixture("merge_request_open.json");
    p["object_attributes"]
        .as_object_mut()
        .unwrap()
        .remove("last_commit");
    let err = parse(
        &headers("Merge Request Hook"),
        &serde_json::to_vec(&p).unwrap(),
    )
    .unwrap_err();
    assert_eq!(err.code, "payload_invalid");
    assert_eq!(err.message, "`object_attributes.last_commit` is missing");
    p = fixture("merge_request_open.json");
    p["object_attributes"]["last_commit"]["id"] = json!("da15608");
    let err = parse(
        &headers("Merge Request Hook"),
        &serde_json::to_vec(&p).unwrap(),
    )
    .unwrap_err();
    assert_eq!(
        err.message,
        "`object_attributes.last_commit.id` is not a full commit SHA"
    );
    // No delivery id at all.
    let mut h = headers("Merge Request Hook");
    h.remove("idempotency-key");
    let err = parse(&h, b"{}").unwrap_err();
    assert_eq!(err.code, "header_missing");
    // Older versions name the event instead.
    h.insert(
        "x-gitlab-event-uuid",
        HeaderValue::from_static("7b1c2f0e-old"),
    );
    assert_eq!(parse(&h, b"{}").unwrap().id, "7b1c2f0e-old");
    let err = parse(&headers("Push Hook"), b"not json").unwrap_err();
    assert_eq!(err.code, "body_not_json");
}

#[test]
fn notes_on_merge_requests_are_replies_and_others_are_ignored() {
    let note = fixture("note_diff.json");
    assert_eq!(
        payload_of("Note Hook", &note),
        WebhookEvent::Reply(ReplyEvent {
            kind: CommentKind::ReviewThread,
            repository: RepoRef {
                private: Some(false),
                ..web()
            },
            installation_id: None,
            number: 7,
            comment_id: "1244".into(),
            in_reply_to: Some("6a9c1750b37d513a43987b574953fceb50b03ce7".into()),
            body: "@picket-bot ignore false positive: the input is a constant".into(),
            author: "jane".into(),
            author_id: "52".into(),
            author_is_bot: false,
        })
    );
    let mut overview = note.clone();
    overview["object_attributes"]["type"] = Value::Null;
    let WebhookEvent::Reply(r) = payload_of("Note Hook", &overview) else {
        panic!()
    };
    assert_eq!(r.kind, CommentKind::Conversation);
    for on in ["Issue", "Commit", "Snippet"] {
        let mut other = note.clone();
        other["object_attributes"]["noteable_type"] = json!(on);
        assert_eq!(
            payload_of("Note Hook", &other),
            WebhookEvent::Ignored(picket_vcs::event::Ignored {
                reason: "not_a_merge_request"
            })
        );
    }
    assert_eq!(
        payload_of("Pipeline Hook", &json!({"object_kind": "pipeline"})),
        WebhookEvent::Ignored(picket_vcs::event::Ignored {
            reason: "event_not_handled"
        })
    );
}

#[test]
fn the_plain_token_is_compared_whole() {
    let now = datetime!(2026-11-30 12:00 UTC);
    let s = secrets("s3cret-token");
    let mut h = headers("Merge Request Hook");
    assert_eq!(verify(&h, b"{}", &s, now), Err(SignatureError::Missing));
    for wrong in ["s3cret-toke", "s3cret-token2", "S3CRET-TOKEN", ""] {
        h.insert("x-gitlab-token", HeaderValue::from_str(wrong).unwrap());
        assert_eq!(
            verify(&h, b"{}", &s, now),
            Err(SignatureError::Mismatch),
            "{wrong}"
        );
    }
    h.insert("x-gitlab-token", HeaderValue::from_static("s3cret-token"));
    assert_eq!(verify(&h, b"{}", &s, now), Ok(()));
    h.append("x-gitlab-token", HeaderValue::from_static("s3cret-token"));
    assert_eq!(verify(&h, b"{}", &s, now), Err(SignatureError::Malformed));
    // After a rotation the previous token passes until its window closes.
    let rotated = WebhookSecrets {
        current: SecretString::from("new-token".to_owned()),
        previous: Some(PreviousSecret {
            secret: SecretString::from("s3cret-token".to_owned()),
            valid_until: now + Duration::hours(1),
        }),
    };
    let mut h = headers("Merge Request Hook");
    h.insert("x-gitlab-token", HeaderValue::from_static("s3cret-token"));
    assert_eq!(verify(&h, b"{}", &rotated, now), Ok(()));
    assert_eq!(
        verify(&h, b"{}", &rotated, now + Duration::hours(2)),
        Err(SignatureError::Mismatch)
    );
}

/// A Standard Webhooks signature computed here, independently of the crate Picket uses.
fn signature(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    let b64 = base64::engine::general_purpose::STANDARD;
    format!("v1,{}", b64.encode(mac.finalize().into_bytes()))
}

fn signed(key: &[u8], id: &str, timestamp: i64, body: &[u8], extra: &str) -> HeaderMap {
    let mut h = headers("Merge Request Hook");
    h.insert("webhook-id", HeaderValue::from_str(id).unwrap());
    h.insert(
        "webhook-timestamp",
        HeaderValue::from_str(&timestamp.to_string()).unwrap(),
    );
    let sig = format!("{extra}{}", signature(key, id, timestamp, body));
    h.insert(
        "webhook-signature",
        HeaderValue::from_str(sig.trim()).unwrap(),
    );
    h
}

#[test]
fn a_signing_token_checks_the_standard_webhooks_signature() {
    let key = b"a 32-byte signing key for tests!";
    let b64 = base64::engine::general_purpose::STANDARD;
    let s = secrets(&format!("whsec_{}", b64.encode(key)));
    let now = OffsetDateTime::from_unix_timestamp(1_764_500_000).unwrap();
    let body = serde_json::to_vec(&fixture("merge_request_open.json")).unwrap();
    let ts = now.unix_timestamp();
    assert_eq!(
        verify(&signed(key, "msg_1", ts, &body, ""), &body, &s, now),
        Ok(())
    );
    // Several signatures, one of them right (key rotation on GitLab's side).
    let several = signed(key, "msg_1", ts, &body, "v1,AAAA v1a,xyz ");
    assert_eq!(verify(&several, &body, &s, now), Ok(()));
    // Another body, id or key: no match.
    let mut other = body.clone();
    other.push(b' ');
    assert_eq!(
        verify(&signed(key, "msg_1", ts, &body, ""), &other, &s, now),
        Err(SignatureError::Mismatch)
    );
    let mut h = signed(key, "msg_1", ts, &body, "");
    h.insert("webhook-id", HeaderValue::from_static("msg_2"));
    assert_eq!(verify(&h, &body, &s, now), Err(SignatureError::Mismatch));
    assert_eq!(
        verify(
            &signed(b"another key", "msg_1", ts, &body, ""),
            &body,
            &s,
            now
        ),
        Err(SignatureError::Mismatch)
    );
    // Outside five minutes either way, or not a number: refused before any MAC.
    for off in [-301, 301] {
        let h = signed(key, "msg_1", ts + off, &body, "");
        assert_eq!(
            verify(&h, &body, &s, now),
            Err(SignatureError::Malformed),
            "{off}"
        );
    }
    let mut h = signed(key, "msg_1", ts, &body, "");
    h.insert("webhook-timestamp", HeaderValue::from_static("soon"));
    assert_eq!(verify(&h, &body, &s, now), Err(SignatureError::Malformed));
    // A signing token wants the signature: the plain token header alone is not enough.
    let mut h = headers("Merge Request Hook");
    h.insert("x-gitlab-token", HeaderValue::from_static("whatever"));
    assert_eq!(verify(&h, &body, &s, now), Err(SignatureError::Missing));
    // The id of a signed delivery names it when there is no Idempotency-Key.
    let mut h = signed(key, "msg_1", ts, &body, "");
    h.remove("idempotency-key");
    assert_eq!(parse(&h, &body).unwrap().id, "msg_1");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Whatever the body and headers, parsing and verifying answer without panicking.
    #[test]
    fn parsing_and_verifying_never_panic(
        body in proptest::collection::vec(any::<u8>(), 0..2048),
        event in prop_oneof![
            Just("Merge Request Hook".to_owned()),
            Just("Note Hook".to_owned()),
            "[ -~]{0,20}",
        ],
        token in "[ -~]{0,40}",
        mutate in proptest::option::of(("[a-z_]{1,20}", any::<i64>())),
    ) {
        let mut h = headers(&event);
        h.insert("x-gitlab-token", HeaderValue::from_str(&token).unwrap());
        let _ = verify(&h, &body, &secrets("t"), OffsetDateTime::now_utc());
        let _ = verify(&h, &body, &secrets("whsec_AAAA"), OffsetDateTime::now_utc());
        let _ = parse(&h, &body);
        // A real payload with one field replaced by a number.
        let mut p = fixture("merge_request_open.json");
        if let Some((field, n)) = mutate {
            p["object_attributes"][field] = json!(n);
        }
        let _ = parse(&h, &serde_json::to_vec(&p).unwrap());
    }
}
