//! Webhook deliveries as GitHub sends them to an App's webhook URL: payloads built from the
//! server's state (so the ids, shas and repositories match what the API then answers) and the
//! headers GitHub sets, signed with the App's webhook secret.
//!
//! Headers (GitHub docs, "Webhook events and payloads" → "Delivery headers"): `X-GitHub-Event`,
//! `X-GitHub-Delivery` (a GUID), `X-GitHub-Hook-ID`, `X-GitHub-Hook-Installation-Target-ID` (the
//! App id), `X-GitHub-Hook-Installation-Target-Type: integration`, `X-Hub-Signature-256:
//! sha256=<hex HMAC-SHA256 of the body>`, `User-Agent: GitHub-Hookshot/…`, `Content-Type:
//! application/json`. Payload shapes are checked against the description's `x-webhooks`
//! schemas in this crate's tests.

use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use super::http::{self, node_id};
use super::{random_string, GitHubServer, TestApp};

/// One delivery: POST `body` with `headers` to the webhook URL.
#[derive(Clone)]
pub struct WebhookDelivery {
    /// `X-GitHub-Event`, e.g. `pull_request`.
    pub event: String,
    /// `X-GitHub-Delivery`.
    pub delivery_id: String,
    /// Every header GitHub sends, names as GitHub spells them.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl std::fmt::Debug for WebhookDelivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookDelivery")
            .field("event", &self.event)
            .field("delivery_id", &self.delivery_id)
            .field("bytes", &self.body.len())
            .finish_non_exhaustive()
    }
}

/// `sha256=<hex>`: the HMAC-SHA256 of `body` under `secret`, as in `X-Hub-Signature-256`.
pub fn signature_256(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

fn guid() -> String {
    let hex = random_string(32).to_ascii_lowercase();
    let hex: String = hex
        .chars()
        .map(|c| if c.is_ascii_hexdigit() { c } else { 'a' })
        .collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

impl GitHubServer {
    /// A signed delivery of `payload` for `event`, from `app` (signed with its
    /// `webhook_secret`).
    pub fn webhook(&self, app: &TestApp, event: &str, payload: &Value) -> WebhookDelivery {
        self.webhook_signed_with(app, event, payload, &app.webhook_secret)
    }

    /// As [`GitHubServer::webhook`], signed with another secret (e.g. during a rotation, or a
    /// forgery).
    pub fn webhook_signed_with(
        &self,
        app: &TestApp,
        event: &str,
        payload: &Value,
        secret: &str,
    ) -> WebhookDelivery {
        let body = serde_json::to_vec(payload).expect("json");
        let delivery_id = guid();
        let headers = vec![
            ("Content-Type".into(), "application/json".into()),
            ("User-Agent".into(), "GitHub-Hookshot/3c1a2f4".into()),
            ("X-GitHub-Event".into(), event.to_string()),
            ("X-GitHub-Delivery".into(), delivery_id.clone()),
            ("X-GitHub-Hook-ID".into(), (app.id + 7_000_000).to_string()),
            (
                "X-GitHub-Hook-Installation-Target-ID".into(),
                app.id.to_string(),
            ),
            (
                "X-GitHub-Hook-Installation-Target-Type".into(),
                "integration".into(),
            ),
            ("X-Hub-Signature-256".into(), signature_256(secret, &body)),
        ];
        WebhookDelivery {
            event: event.to_string(),
            delivery_id,
            headers,
            body,
        }
    }

    /// A `pull_request` payload (`action`: opened, synchronize, reopened, closed,
    /// ready_for_review, converted_to_draft, edited) for a registered pull request, as its
    /// state is now. `synchronize` carries `before`/`after` (pass the old head as `before`).
    pub fn pull_request_payload(
        &self,
        repo_id: u64,
        number: u64,
        action: &str,
        before: Option<&str>,
    ) -> Value {
        let st = self.lock();
        let repo = &st.repos[&repo_id];
        let rec = repo.pulls.get(&number).expect("unknown pull");
        let mut payload = json!({
            "action": action,
            "number": number,
            "pull_request": http::pull_json(&st, repo, rec, true),
            "repository": http::webhook_repo_json(&st, repo_id),
            "installation": {"id": repo.installation_id, "node_id": node_id("MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9u", repo.installation_id)},
            "sender": http::user_json(&st, &rec.pull.author, "User"),
        });
        if action == "synchronize" {
            payload["before"] = json!(before.unwrap_or(&rec.pull.base_sha));
            payload["after"] = json!(rec.pull.head_sha);
        }
        payload
    }

    /// A `pull_request_review_comment` payload (`action`: created, edited, deleted) for a review
    /// comment of a registered pull request (see [`GitHubServer::add_review_comment`] and
    /// [`GitHubServer::add_review_reply`]); `sender` is the comment's author.
    pub fn review_comment_payload(&self, repo_id: u64, comment_id: u64, action: &str) -> Value {
        let st = self.lock();
        let c = st
            .review_comments
            .iter()
            .find(|c| c.repo_id == repo_id && c.comment.id == comment_id)
            .expect("unknown review comment");
        let repo = &st.repos[&repo_id];
        let rec = repo.pulls.get(&c.number).expect("unknown pull");
        let mut comment = http::review_comment_json(&st, c);
        comment["reactions"] = json!({
            "url": format!("{}/reactions", comment["url"].as_str().unwrap_or_default()),
            "total_count": 0, "+1": 0, "-1": 0, "laugh": 0, "hooray": 0, "confused": 0,
            "heart": 0, "rocket": 0, "eyes": 0,
        });
        let sender = comment["user"].clone();
        json!({
            "action": action,
            "comment": comment,
            "pull_request": http::pull_json(&st, repo, rec, false),
            "repository": http::webhook_repo_json(&st, repo_id),
            "installation": {"id": repo.installation_id, "node_id": node_id("MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9u", repo.installation_id)},
            "sender": sender,
        })
    }

    /// An `issue_comment` payload (`action`: created, edited, deleted) for an issue comment on
    /// a registered pull request (see [`GitHubServer::add_issue_comment`]).
    pub fn issue_comment_payload(&self, repo_id: u64, comment_id: u64, action: &str) -> Value {
        let st = self.lock();
        let c = st
            .issue_comments
            .iter()
            .find(|c| c.repo_id == repo_id && c.comment.id == comment_id)
            .expect("unknown comment");
        let repo = &st.repos[&repo_id];
        let rec = repo.pulls.get(&c.number).expect("unknown pull");
        json!({
            "action": action,
            "issue": http::issue_of_pull_json(&st, repo, rec),
            "comment": http::issue_comment_json(&st, c),
            "repository": http::webhook_repo_json(&st, repo_id),
            "installation": {"id": repo.installation_id, "node_id": node_id("MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9u", repo.installation_id)},
            "sender": http::user_json(&st, &c.comment.author, "User"),
        })
    }
}
