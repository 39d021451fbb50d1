//! Bitbucket Cloud deliveries: the `X-Hub-Signature` HMAC, and pull request and comment events
//! parsed from payloads written from Bitbucket's documentation (`fixtures/bitbucket/README.md`).
//!
//! Expected signatures are computed here with `hmac` and `sha2`, independently of the code under
//! test.

use hmac::{Hmac, Mac};
use http::{HeaderMap, HeaderValue};
use picket_vcs::bitbucket::webhook::{parse, verify};
use picket_vcs::event::{
    CommentKind, Ignored, PullRequestAction, PullRequestEvent, ReplyEvent, RepoRef, WebhookEvent,
};
use picket_vcs::webhook::{is_full_sha, PreviousSecret, SignatureError, WebhookSecrets};
use proptest::prelude::*;
use secrecy::SecretString;
use serde_json::{json, Value};
use sha2::Sha256;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

const REQUEST_UUID: &str = "2f9a1c3e-6b7d-4e8f-9a0b-1c2d3e4f5a6b";

/// Text that no fixture holds: payload strings carry it, and no error message may.
const MARKER: &str = "PICKET-PAYLOAD-TEXT";

fn fixture(name: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vcs/fixtures/bitbucket")
        .join(name);
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

fn headers(event: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("x-event-key", HeaderValue::from_str(event).unwrap());
    h.insert("x-request-uuid", HeaderValue::from_static(REQUEST_UUID));
    h.insert(
        "x-hook-uuid",
        HeaderValue::from_static("{0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d}"),
    );
    h.insert("x-attempt-number", HeaderValue::from_static("1"));
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

fn ignored(reason: &'static str) -> WebhookEvent {
    WebhookEvent::Ignored(Ignored { reason })
}

/// The fixtures' repository: the destination, its uuid with the braces Bitbucket sends.
fn web_shop() -> RepoRef {
    RepoRef {
        id: "{5d7c1e2a-9b3f-4c8e-a1d2-3f4e5a6b7c8d}".into(),
        full_name: "acme/web-shop".into(),
        clone_url: Some("https://bitbucket.org/acme/web-shop.git".into()),
        default_branch: None,
        private: Some(true),
    }
}

fn opened() -> PullRequestEvent {
    PullRequestEvent {
        action: PullRequestAction::Opened,
        repository: web_shop(),
        installation_id: None,
        number: 42,
        head_sha: "7f3a9c2e41b8".into(),
        head_ref: "feature/coupon-check".into(),
        base_ref: "main".into(),
        base_sha: "0b4bc9a49b56".into(),
        from_fork: false,
        draft: false,
        updated_at: Some(datetime!(2026-11-30 09:12:45.401117 UTC)),
        title: "Check the coupon code server-side".into(),
        author: Some("jane".into()),
    }
}

fn pushed() -> PullRequestEvent {
    PullRequestEvent {
        action: PullRequestAction::Pushed,
        head_sha: "e91a6d0c3f27".into(),
        updated_at: Some(datetime!(2026-11-30 10:04:11.552904 UTC)),
        ..opened()
    }
}

#[test]
fn a_created_pull_request_is_opened_with_its_abbreviated_hashes() {
    let body = serde_json::to_vec(&fixture("pullrequest_created.json")).unwrap();
    let delivery = parse(&headers("pullrequest:created"), &body).unwrap();
    assert_eq!(delivery.id, REQUEST_UUID);
    assert_eq!(delivery.event, "pullrequest:created");
    assert_eq!(delivery.action, None);
    assert_eq!(delivery.payload, WebhookEvent::PullRequest(opened()));
    // The hashes are passed on abbreviated: the receiver resolves them through the API.
    assert!(!is_full_sha(&opened().head_sha));
}

#[test]
fn updated_and_push_events_are_pushes_the_receiver_compares_with_known_heads() {
    let updated = fixture("pullrequest_updated.json");
    assert_eq!(
        payload_of("pullrequest:updated", &updated),
        WebhookEvent::PullRequest(pushed())
    );
    // `pullrequest:push` (Bitbucket's OpenAPI hook events) reads the same payload the same way.
    assert_eq!(
        payload_of("pullrequest:push", &updated),
        WebhookEvent::PullRequest(pushed())
    );
    // A title edit is a `pullrequest:updated` too, with the same head: still `Pushed` here; the
    // receiver finds the head already known and queues nothing.
    let mut edited = fixture("pullrequest_created.json");
    edited["pullrequest"]["title"] = json!("Check coupons on the server");
    let WebhookEvent::PullRequest(e) = payload_of("pullrequest:updated", &edited) else {
        panic!()
    };
    assert_eq!(
        (e.action, e.head_sha.as_str()),
        (PullRequestAction::Pushed, "7f3a9c2e41b8")
    );
}

#[test]
fn pull_request_variants_fork_draft_public_full_hashes_and_missing_fields() {
    let created = fixture("pullrequest_created.json");
    let with = |f: &dyn Fn(&mut Value)| {
        let mut p = created.clone();
        f(&mut p);
        let WebhookEvent::PullRequest(e) = payload_of("pullrequest:created", &p) else {
            panic!("{p}")
        };
        e
    };
    // From a fork: the source repository is another one.
    let fork = with(&|p| {
        p["pullrequest"]["source"]["repository"] = json!({
            "type": "repository",
            "full_name": "omar/web-shop",
            "name": "web-shop",
            "uuid": "{c0ffee00-1234-4abc-9def-0123456789ab}"
        });
    });
    assert_eq!(
        fork,
        PullRequestEvent {
            from_fork: true,
            ..opened()
        }
    );
    // The fork is gone (no source repository, or null), or names no uuid: treated as a fork.
    for source_repo in [
        None,
        Some(Value::Null),
        Some(json!({"full_name": "omar/x"})),
    ] {
        let e = with(&|p| match &source_repo {
            None => {
                p["pullrequest"]["source"]
                    .as_object_mut()
                    .unwrap()
                    .remove("repository");
            }
            Some(v) => p["pullrequest"]["source"]["repository"] = v.clone(),
        });
        assert!(e.from_fork, "{source_repo:?}");
    }
    // No repository in the destination: the payload's `repository` is the destination.
    let e = with(&|p| {
        p["pullrequest"]["destination"]
            .as_object_mut()
            .unwrap()
            .remove("repository");
    });
    assert!(!e.from_fork);
    // A draft, a public repository with its main branch, the author's display name only.
    let e = with(&|p| {
        p["pullrequest"]["draft"] = json!(true);
        p["repository"]["is_private"] = json!(false);
        p["repository"]["mainbranch"] = json!({"type": "branch", "name": "main"});
        p["pullrequest"]["author"] = json!({"type": "user", "display_name": "Jane Doe"});
    });
    assert_eq!(
        e,
        PullRequestEvent {
            draft: true,
            repository: RepoRef {
                private: Some(false),
                default_branch: Some("main".into()),
                ..web_shop()
            },
            author: Some("Jane Doe".into()),
            ..opened()
        }
    );
    // No `draft` (older payloads), no author, no `updated_on`, an unreadable `updated_on`.
    let e = with(&|p| {
        let pr = p["pullrequest"].as_object_mut().unwrap();
        pr.remove("draft");
        pr.remove("author");
        pr.remove("updated_on");
    });
    assert_eq!(
        e,
        PullRequestEvent {
            author: None,
            updated_at: None,
            ..opened()
        }
    );
    assert_eq!(
        with(&|p| p["pullrequest"]["updated_on"] = json!("yesterday")).updated_at,
        None
    );
    // Hashes are lowercased; a full SHA passes as it is; 7 digits is the shortest accepted.
    let e = with(&|p| {
        p["pullrequest"]["source"]["commit"]["hash"] = json!("7F3A9C2E41B8");
        p["pullrequest"]["destination"]["commit"]["hash"] =
            json!("0b4bc9a49b562e85de7cc9e834518ea6828729b9");
    });
    assert_eq!(e.head_sha, "7f3a9c2e41b8");
    assert_eq!(e.base_sha, "0b4bc9a49b562e85de7cc9e834518ea6828729b9");
    assert!(is_full_sha(&e.base_sha));
    assert_eq!(
        with(&|p| p["pullrequest"]["source"]["commit"]["hash"] = json!("7f3a9c2")).head_sha,
        "7f3a9c2"
    );
    // The destination's tip is optional: empty when the payload does not carry it.
    for commit in [Value::Null, json!({}), json!({"hash": null})] {
        let e = with(&|p| p["pullrequest"]["destination"]["commit"] = commit.clone());
        assert_eq!(e.base_sha, "", "{commit}");
    }
}

#[test]
fn closed_pull_requests_other_actions_and_other_events_are_ignored() {
    let created = fixture("pullrequest_created.json");
    // Merged and declined: GitHub's parser gives its `closed` action the same reason.
    for event in [
        "pullrequest:fulfilled",
        "pullrequest:rejected",
        "pullrequest:approved",
        "pullrequest:unapproved",
        "pullrequest:changes_request_created",
        "pullrequest:changes_request_removed",
        "pullrequest:comment_updated",
        "pullrequest:comment_deleted",
        "pullrequest:comment_resolved",
        "pullrequest:comment_reopened",
    ] {
        assert_eq!(
            payload_of(event, &created),
            ignored("action_not_handled"),
            "{event}"
        );
        // Ignored events are not read: any JSON will do.
        assert_eq!(
            parse(&headers(event), b"{}").unwrap().payload,
            ignored("action_not_handled")
        );
    }
    for event in [
        "repo:push",
        "repo:fork",
        "repo:commit_status_updated",
        "issue:created",
        "issue:comment_created",
        "project:updated",
    ] {
        let delivery = parse(&headers(event), b"{\"push\": {\"changes\": []}}").unwrap();
        assert_eq!(delivery.event, event);
        assert_eq!(delivery.payload, ignored("event_not_handled"), "{event}");
    }
}

fn inline_reply() -> ReplyEvent {
    ReplyEvent {
        kind: CommentKind::ReviewThread,
        repository: web_shop(),
        installation_id: None,
        number: 42,
        comment_id: "517230884".into(),
        in_reply_to: Some("517229310".into()),
        body: "/fp the coupon code is checked again by the payment service".into(),
        author: "omar".into(),
        author_id: "{8e7d6c5b-4a39-4281-9f0e-d1c2b3a4f5e6}".into(),
        author_is_bot: false,
    }
}

#[test]
fn comments_are_replies_inline_ones_in_review_threads() {
    let comment = fixture("pullrequest_comment_created_inline.json");
    let delivery = parse(
        &headers("pullrequest:comment_created"),
        &serde_json::to_vec(&comment).unwrap(),
    )
    .unwrap();
    assert_eq!(delivery.id, REQUEST_UUID);
    assert_eq!(delivery.event, "pullrequest:comment_created");
    assert_eq!(delivery.payload, WebhookEvent::Reply(inline_reply()));

    let with = |f: &dyn Fn(&mut Value)| {
        let mut p = comment.clone();
        f(&mut p);
        payload_of("pullrequest:comment_created", &p)
    };
    // A top-level comment on the pull request: no `inline`, no `parent`.
    let conversation = with(&|p| {
        let c = p["comment"].as_object_mut().unwrap();
        c.remove("inline");
        c.remove("parent");
    });
    assert_eq!(
        conversation,
        WebhookEvent::Reply(ReplyEvent {
            kind: CommentKind::Conversation,
            in_reply_to: None,
            ..inline_reply()
        })
    );
    // `inline: null` is no anchor either; a reply in a conversation keeps its parent.
    let WebhookEvent::Reply(r) = with(&|p| p["comment"]["inline"] = Value::Null) else {
        panic!()
    };
    assert_eq!(
        (r.kind, r.in_reply_to.as_deref()),
        (CommentKind::Conversation, Some("517229310"))
    );
    // Apps and integrations (`app_user`), workspaces (`team`), or no type: bots.
    for kind in [json!("app_user"), json!("team"), Value::Null] {
        let WebhookEvent::Reply(r) = with(&|p| {
            p["actor"]["type"] = kind.clone();
            p["actor"].as_object_mut().unwrap().remove("nickname");
            p["actor"]["display_name"] = json!("Picket");
        }) else {
            panic!()
        };
        assert!(r.author_is_bot, "{kind}");
        assert_eq!(r.author, "Picket");
    }
}

#[test]
fn a_handled_event_missing_what_it_needs_is_refused_by_path() {
    let refused = |event: &str, p: &Value| {
        parse(&headers(event), &serde_json::to_vec(p).unwrap()).unwrap_err()
    };
    let mut p = fixture("pullrequest_updated.json");
    p["pullrequest"]["source"]["commit"]
        .as_object_mut()
        .unwrap()
        .remove("hash");
    for event in [
        "pullrequest:created",
        "pullrequest:updated",
        "pullrequest:push",
    ] {
        let err = refused(event, &p);
        assert_eq!(err.code, "payload_invalid");
        assert_eq!(err.message, "`pullrequest.source.commit.hash` is missing");
    }
    // Not a hash: too short, too long, not hex. The message names the path, not the value.
    for hash in [
        "7f3a9c".to_owned(),
        "a".repeat(65),
        format!("{MARKER}-7f3a9c2e"),
        "7f3a9c2e41b8 ".to_owned(),
    ] {
        let mut p = fixture("pullrequest_created.json");
        p["pullrequest"]["source"]["commit"]["hash"] = json!(hash);
        let err = refused("pullrequest:created", &p);
        assert_eq!(
            err.message,
            "`pullrequest.source.commit.hash` is not a commit hash (7 to 64 hex digits)"
        );
        let mut p = fixture("pullrequest_created.json");
        p["pullrequest"]["destination"]["commit"]["hash"] = json!(hash);
        let err = refused("pullrequest:created", &p);
        assert_eq!(
            err.message,
            "`pullrequest.destination.commit.hash` is not a commit hash (7 to 64 hex digits)"
        );
    }
    // A field of another type: named, never quoted.
    let mut p = fixture("pullrequest_created.json");
    p["pullrequest"]["id"] = json!(MARKER);
    let err = refused("pullrequest:created", &p);
    assert_eq!(err.code, "payload_invalid");
    assert_eq!(
        err.message,
        "`pullrequest.id` does not have the documented type"
    );
    // Comments need the actor's id and some name.
    let mut c = fixture("pullrequest_comment_created_inline.json");
    c["actor"].as_object_mut().unwrap().remove("uuid");
    let err = refused("pullrequest:comment_created", &c);
    assert_eq!(err.message, "`actor.uuid` is missing");
    let mut c = fixture("pullrequest_comment_created_inline.json");
    let actor = c["actor"].as_object_mut().unwrap();
    actor.remove("nickname");
    actor.remove("display_name");
    let err = refused("pullrequest:comment_created", &c);
    assert_eq!(
        err.message,
        "`actor.nickname` and `actor.display_name` are both missing"
    );
    let mut c = fixture("pullrequest_comment_created_inline.json");
    c["comment"]["content"]
        .as_object_mut()
        .unwrap()
        .remove("raw");
    let err = refused("pullrequest:comment_created", &c);
    assert_eq!(err.message, "`comment.content.raw` is missing");
    // Headers and body.
    let body = serde_json::to_vec(&fixture("pullrequest_created.json")).unwrap();
    let mut h = headers("pullrequest:created");
    h.remove("x-request-uuid");
    let err = parse(&h, &body).unwrap_err();
    assert_eq!(
        (err.code, err.message.as_str()),
        ("header_missing", "the `X-Request-UUID` header is missing")
    );
    let mut h = headers("pullrequest:created");
    h.remove("x-event-key");
    assert_eq!(parse(&h, &body).unwrap_err().code, "header_missing");
    let mut h = headers("pullrequest:created");
    h.insert("x-event-key", HeaderValue::from_static(" "));
    assert_eq!(parse(&h, &body).unwrap_err().code, "header_invalid");
    let err = parse(&headers("repo:push"), MARKER.as_bytes()).unwrap_err();
    assert_eq!(err.code, "body_not_json");
    assert!(!err.message.contains(MARKER), "{}", err.message);
}

/// `sha256=` and the lowercase hex HMAC-SHA256 of `body` under `secret`, computed here.
fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn signed(value: &str) -> HeaderMap {
    let mut h = headers("pullrequest:created");
    h.insert("x-hub-signature", HeaderValue::from_str(value).unwrap());
    h
}

#[test]
fn the_signature_is_the_hmac_sha256_of_the_raw_body() {
    let now = datetime!(2026-11-30 12:00 UTC);
    let secret = "It's a Secret to Everybody";
    let s = secrets(secret);
    let body = serde_json::to_vec(&fixture("pullrequest_created.json")).unwrap();
    let right = signature(secret, &body);
    assert_eq!(verify(&signed(&right), &body, &s, now), Ok(()));
    // Surrounding blanks are not part of the value.
    assert_eq!(
        verify(&signed(&format!(" {right} ")), &body, &s, now),
        Ok(())
    );
    // Uppercase hex (and prefix) is the same number: accepted, as GitHub's check accepts it.
    let upper = format!("sha256={}", right["sha256=".len()..].to_ascii_uppercase());
    assert_eq!(verify(&signed(&upper), &body, &s, now), Ok(()));
    assert_eq!(
        verify(&signed(&right.to_ascii_uppercase()), &body, &s, now),
        Ok(())
    );
    // Another secret, another body.
    assert_eq!(
        verify(&signed(&signature("another secret", &body)), &body, &s, now),
        Err(SignatureError::Mismatch)
    );
    let mut other = body.clone();
    other.push(b'\n');
    assert_eq!(
        verify(&signed(&right), &other, &s, now),
        Err(SignatureError::Mismatch)
    );
    // No header: a hook without a secret.
    assert_eq!(
        verify(&headers("pullrequest:created"), &body, &s, now),
        Err(SignatureError::Missing)
    );
    // GitHub's `X-Hub-Signature-256` is not Bitbucket's header.
    let mut h = headers("pullrequest:created");
    h.insert(
        "x-hub-signature-256",
        HeaderValue::from_str(&right).unwrap(),
    );
    assert_eq!(verify(&h, &body, &s, now), Err(SignatureError::Missing));
    // A SHA-1 signature only (GitHub's legacy scheme under the same header name).
    for value in [
        "sha1=7bd2a5e4b1f0c3d6e9a8b7c6d5e4f3a2b1c0d9e8",
        "SHA1=0123",
        " sha1=x",
    ] {
        assert_eq!(
            verify(&signed(value), &body, &s, now),
            Err(SignatureError::Sha1Only),
            "{value}"
        );
    }
    // Not `sha256=` and 64 hex digits.
    let digits = &right["sha256=".len()..];
    for value in [
        digits.to_owned(),
        format!("sha512={digits}"),
        format!("sha256={}", &digits[..63]),
        format!("sha256={digits}0"),
        format!("sha256={}g", &digits[..63]),
        format!("sha256= {digits}"),
        "sha256=".to_owned(),
        String::new(),
    ] {
        assert_eq!(
            verify(&signed(&value), &body, &s, now),
            Err(SignatureError::Malformed),
            "{value:?}"
        );
    }
    // Two signatures, even both right: refused.
    let mut h = signed(&right);
    h.append("x-hub-signature", HeaderValue::from_str(&right).unwrap());
    assert_eq!(verify(&h, &body, &s, now), Err(SignatureError::Malformed));
}

#[test]
fn after_a_rotation_the_previous_secret_passes_until_its_window_closes() {
    let now = datetime!(2026-11-30 12:00 UTC);
    let body = serde_json::to_vec(&fixture("pullrequest_updated.json")).unwrap();
    let rotated = WebhookSecrets {
        current: SecretString::from("new secret".to_owned()),
        previous: Some(PreviousSecret {
            secret: SecretString::from("old secret".to_owned()),
            valid_until: now + Duration::hours(1),
        }),
    };
    let old = signed(&signature("old secret", &body));
    let new = signed(&signature("new secret", &body));
    assert_eq!(verify(&new, &body, &rotated, now), Ok(()));
    assert_eq!(verify(&old, &body, &rotated, now), Ok(()));
    assert_eq!(
        verify(&old, &body, &rotated, now + Duration::minutes(59)),
        Ok(())
    );
    for later in [Duration::hours(1), Duration::hours(2)] {
        assert_eq!(
            verify(&old, &body, &rotated, now + later),
            Err(SignatureError::Mismatch),
            "{later}"
        );
        assert_eq!(verify(&new, &body, &rotated, now + later), Ok(()));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Whatever the body and headers, verifying and parsing answer without panicking.
    #[test]
    fn verifying_and_parsing_never_panic(
        body in proptest::collection::vec(any::<u8>(), 0..2048),
        event in prop_oneof![
            Just("pullrequest:created".to_owned()),
            Just("pullrequest:updated".to_owned()),
            Just("pullrequest:push".to_owned()),
            Just("pullrequest:comment_created".to_owned()),
            Just("pullrequest:fulfilled".to_owned()),
            "[ -~]{0,30}",
        ],
        signature in prop_oneof![
            "sha256=[0-9a-fA-F]{64}",
            "sha1=[0-9a-f]{40}",
            "[ -~]{0,80}",
        ],
        request_uuid in "[ -~]{0,40}",
        mutate in proptest::option::of((
            prop_oneof![
                Just("/pullrequest"),
                Just("/pullrequest/source"),
                Just("/pullrequest/source/commit"),
                Just("/pullrequest/destination"),
                Just("/repository"),
                Just("/comment"),
                Just("/actor"),
            ],
            "[a-z_]{1,12}",
            prop_oneof![
                any::<i64>().prop_map(Value::from),
                "[ -~]{0,20}".prop_map(|s| Value::from(format!("{MARKER}{s}"))),
                Just(Value::Null),
                Just(json!([])),
            ],
        )),
    ) {
        let mut h = headers(&event);
        h.insert("x-hub-signature", HeaderValue::from_str(&signature).unwrap());
        h.insert("x-request-uuid", HeaderValue::from_str(&request_uuid).unwrap());
        let _ = verify(&h, &body, &secrets("s"), OffsetDateTime::now_utc());
        let _ = parse(&h, &body);
        // A documented payload with one field replaced.
        for name in ["pullrequest_updated.json", "pullrequest_comment_created_inline.json"] {
            let mut p = fixture(name);
            if let Some((at, field, value)) = &mutate {
                if let Some(Value::Object(o)) = p.pointer_mut(at) {
                    o.insert(field.clone(), value.clone());
                }
            }
            let body = serde_json::to_vec(&p).unwrap();
            let _ = verify(&h, &body, &secrets("s"), OffsetDateTime::now_utc());
            if let Err(e) = parse(&h, &body) {
                prop_assert!(!e.message.contains(MARKER));
            }
        }
    }
}
