//! The client's decisions as pure functions: what an answer means (success, an error code, a
//! wait), how long to wait, pagination links and cursors, annotation chunks, text truncation.
//!
//! Sources: GitHub docs "Rate limits for the REST API" (§ "Exceeding the rate limit": on 403/429
//! honour `retry-after`; when `x-ratelimit-remaining` is 0 wait until `x-ratelimit-reset` (UTC epoch
//! seconds); otherwise wait at least one minute, then exponentially longer) and "Best practices for
//! using the REST API"; `checks/create` / `checks/update` in `@octokit/openapi` 23.0.2 (at most 50
//! annotations per request; `output.summary` and `output.text` at most 65,535 characters).

use crate::error::{ErrorCode, VcsError};
use http::HeaderMap;
use std::time::Duration;

/// At most this many annotations per check-run request (`checks/update`: "The Checks API limits
/// the number of annotations to a maximum of 50 per API request").
pub const ANNOTATIONS_PER_REQUEST: usize = 50;

/// `output.summary` and `output.text` limit, in characters.
pub const MAX_OUTPUT_CHARS: usize = 65_535;

pub use crate::client::RetryPolicy;

/// What the retry loop knows so far about one call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Attempts {
    /// Time already spent waiting for rate limits.
    pub waited: Duration,
    /// Secondary-limit waits so far (for the doubling).
    pub secondary: u32,
    /// 5xx answers so far.
    pub server_errors: u32,
}

/// What to do with one answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A 2xx (or 304): use it.
    Done,
    /// Wait this long, then send the same request again. `rate_limit` tells whether the wait
    /// counts against [`RetryPolicy::max_wait`].
    Retry { wait: Duration, rate_limit: bool },
    /// Give up with this error.
    Fail(VcsError),
}

/// GitHub's `message` from an error body, or the status when the body has none.
pub fn github_message(status: u16, body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_owned))
        .unwrap_or_else(|| format!("HTTP {status}"))
}

fn header_u64(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
}

/// How long GitHub asks us to wait before retrying a 403/429, or `None` when the answer is not a
/// rate limit (a plain 403 is a missing permission).
///
/// `now_epoch` is the current UTC time in seconds since the epoch (for `x-ratelimit-reset`).
pub fn rate_limit_wait(
    status: u16,
    headers: &HeaderMap,
    message: &str,
    now_epoch: u64,
    policy: &RetryPolicy,
    attempts: &Attempts,
) -> Option<Duration> {
    if status != 403 && status != 429 {
        return None;
    }
    if let Some(secs) = header_u64(headers, "retry-after") {
        return Some(Duration::from_secs(secs));
    }
    if header_u64(headers, "x-ratelimit-remaining") == Some(0) {
        let reset = header_u64(headers, "x-ratelimit-reset").unwrap_or(now_epoch);
        // One second more: the reset is rounded to whole seconds.
        return Some(Duration::from_secs(reset.saturating_sub(now_epoch) + 1));
    }
    let lower = message.to_ascii_lowercase();
    if status == 429 || lower.contains("secondary rate limit") || lower.contains("abuse") {
        let factor = 1u32
            .checked_shl(attempts.secondary.min(16))
            .unwrap_or(u32::MAX);
        return Some(policy.secondary_backoff.saturating_mul(factor));
    }
    None
}

/// The error code of a status that is neither a success nor a rate limit.
pub fn code_for_status(status: u16) -> ErrorCode {
    match status {
        401 => ErrorCode::Unauthorized,
        403 => ErrorCode::Forbidden,
        // 301/302/307: GitHub moves a renamed or transferred repository's URLs; the client
        // does not follow redirects (credentials stay with the configured host), so the
        // resource is not where it was asked for.
        301..=303 | 307 | 308 | 404 | 410 => ErrorCode::NotFound,
        429 => ErrorCode::RateLimited,
        400..=499 => ErrorCode::Rejected,
        500..=599 => ErrorCode::Unavailable,
        _ => ErrorCode::BadResponse,
    }
}

/// Decides what to do with one answer: success, a wait and a retry, or an error.
pub fn judge(
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
    now_epoch: u64,
    policy: &RetryPolicy,
    attempts: &Attempts,
) -> Verdict {
    if (200..300).contains(&status) || status == 304 {
        return Verdict::Done;
    }
    let message = github_message(status, body);
    let error = |code| VcsError {
        code,
        status: Some(status),
        message: message.clone(),
        retry_after: None,
    };
    if let Some(wait) = rate_limit_wait(status, headers, &message, now_epoch, policy, attempts) {
        if attempts.waited.saturating_add(wait) > policy.max_wait {
            return Verdict::Fail(VcsError {
                retry_after: Some(wait),
                ..error(ErrorCode::RateLimited)
            });
        }
        return Verdict::Retry {
            wait,
            rate_limit: true,
        };
    }
    if (500..600).contains(&status) {
        if attempts.server_errors < policy.server_error_retries {
            let factor = 1u32
                .checked_shl(attempts.server_errors.min(16))
                .unwrap_or(u32::MAX);
            return Verdict::Retry {
                wait: policy.server_error_backoff.saturating_mul(factor),
                rate_limit: false,
            };
        }
        return Verdict::Fail(error(ErrorCode::Unavailable));
    }
    Verdict::Fail(error(code_for_status(status)))
}

/// The URL of the `rel="next"` link of a `Link` header (RFC 8288, as GitHub sends it:
/// `<https://...&page=2>; rel="next", <...>; rel="last"`).
pub fn next_link(link: &str) -> Option<String> {
    link.split(',').find_map(|part| {
        let (url, params) = part.split_once(';')?;
        let url = url.trim().strip_prefix('<')?.strip_suffix('>')?;
        params
            .split(';')
            .any(|p| {
                let p = p.trim();
                p == "rel=\"next\"" || p == "rel=next"
            })
            .then(|| url.to_owned())
    })
}

/// The `page` query parameter of a link, if it has one.
pub fn page_of(link: &str) -> Option<u32> {
    let query = link.split_once('?')?.1;
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == "page").then(|| v.parse().ok()).flatten()
    })
}

/// Where a repository listing stands: the installation (its index in the App's installation
/// list, ordered by id) and the page of that installation's repositories.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RepoCursor {
    pub installation_index: usize,
    pub page: u32,
}

impl RepoCursor {
    /// The opaque form handed to callers: `r1.<index>.<page>`.
    pub fn encode(self) -> String {
        format!("r1.{}.{}", self.installation_index, self.page)
    }

    /// Reads a cursor made by [`RepoCursor::encode`]; anything else is [`ErrorCode::Rejected`].
    pub fn decode(cursor: &str) -> Result<RepoCursor, VcsError> {
        let bad = || VcsError::new(ErrorCode::Rejected, "not a repository listing cursor");
        let mut parts = cursor.split('.');
        if parts.next() != Some("r1") {
            return Err(bad());
        }
        let installation_index = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
        let page: u32 = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
        if parts.next().is_some() || page == 0 {
            return Err(bad());
        }
        Ok(RepoCursor {
            installation_index,
            page,
        })
    }
}

/// The page number behind a pull request listing cursor (`p1.<page>`).
pub fn decode_page_cursor(cursor: &str) -> Result<u32, VcsError> {
    cursor
        .strip_prefix("p1.")
        .and_then(|p| p.parse::<u32>().ok())
        .filter(|p| *p > 0)
        .ok_or_else(|| VcsError::new(ErrorCode::Rejected, "not a pull request listing cursor"))
}

/// The cursor for page `page` of a pull request listing.
pub fn encode_page_cursor(page: u32) -> String {
    format!("p1.{page}")
}

/// Splits annotations into requests of at most [`ANNOTATIONS_PER_REQUEST`], in order. An empty
/// list gives one empty chunk (the request still carries the status and the text).
pub fn annotation_chunks<T>(annotations: &[T]) -> Vec<&[T]> {
    if annotations.is_empty() {
        return vec![&[]];
    }
    annotations.chunks(ANNOTATIONS_PER_REQUEST).collect()
}

/// `text` cut to at most `limit` characters (on a character boundary), ending with a note saying
/// how many characters were left out; unchanged when it fits.
pub fn truncate_chars(text: &str, limit: usize) -> std::borrow::Cow<'_, str> {
    let total = text.chars().count();
    if total <= limit {
        return std::borrow::Cow::Borrowed(text);
    }
    // The note's length depends on the number it carries; reserve for the widest.
    let note = |omitted: usize| {
        format!("\n\n… (truncated by Picket: {omitted} more characters are in Picket's scan page)")
    };
    let reserve = note(total).chars().count();
    let keep = limit.saturating_sub(reserve);
    let cut = text.char_indices().nth(keep).map_or(text.len(), |(i, _)| i);
    let mut out = String::with_capacity(cut + reserve);
    out.push_str(&text[..cut]);
    out.push_str(&note(total - keep));
    std::borrow::Cow::Owned(out)
}

/// Percent-encodes one path segment (RFC 3986 unreserved characters pass; everything else,
/// `/` included, is escaped, as Octokit's URL templates do for `{basehead}` and names).
pub fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `owner/name` as two encoded path segments (`owner/name`).
pub fn repo_path(full_name: &str) -> Result<String, VcsError> {
    let (owner, name) = full_name
        .split_once('/')
        .filter(|(o, n)| !o.is_empty() && !n.is_empty() && !n.contains('/'))
        .ok_or_else(|| {
            VcsError::new(
                ErrorCode::BadConfig,
                format!("repository name {full_name:?} is not owner/name"),
            )
        })?;
    Ok(format!("{}/{}", segment(owner), segment(name)))
}

/// Where GitHub's GraphQL endpoint is for a REST root: `https://api.github.com` →
/// `https://api.github.com/graphql`; a GitHub Enterprise Server root `https://host/api/v3` →
/// `https://host/api/graphql` (GHES docs: "the REST API at `http(s)://HOSTNAME/api/v3`", "the
/// GraphQL endpoint at `http(s)://HOSTNAME/api/graphql`").
pub fn graphql_url(api_url: &str) -> String {
    let root = api_url.trim_end_matches('/');
    match root.strip_suffix("/api/v3") {
        Some(host) => format!("{host}/api/graphql"),
        None => format!("{root}/graphql"),
    }
}

/// Permission levels ordered as GitHub grants them.
fn level(access: &str) -> u8 {
    match access {
        "read" => 1,
        "write" => 2,
        "admin" => 3,
        _ => 0,
    }
}

/// Permissions Picket needs of a GitHub App: metadata read, contents read (clone), pull requests
/// write (comments), checks write (the check run).
pub const NEEDED_PERMISSIONS: &[(&str, &str)] = &[
    ("metadata", "read"),
    ("contents", "read"),
    ("pull_requests", "write"),
    ("checks", "write"),
];

/// Webhook events Picket needs an App to subscribe to. `installation` and
/// `installation_repositories` are not listed: "All GitHub Apps receive this event by default.
/// You cannot manually subscribe to this event" (`@octokit/openapi` 23.0.2, `x-webhooks`
/// `installation-created` and `installation-repositories-added`, summary).
pub const NEEDED_EVENTS: &[&str] = &[
    "pull_request",
    "issue_comment",
    "pull_request_review_comment",
];

/// The needed permissions the App's `permissions` map lacks, as `name: level`.
pub fn missing_permissions(granted: &serde_json::Map<String, serde_json::Value>) -> Vec<String> {
    NEEDED_PERMISSIONS
        .iter()
        .filter(|(name, need)| {
            let have = granted.get(*name).and_then(|v| v.as_str()).unwrap_or("");
            level(have) < level(need)
        })
        .map(|(name, need)| format!("{name}: {need}"))
        .collect()
}

/// The needed events the App does not subscribe to.
pub fn missing_events(events: &[String]) -> Vec<String> {
    NEEDED_EVENTS
        .iter()
        .filter(|e| !events.iter().any(|have| have == *e))
        .map(|e| (*e).to_owned())
        .collect()
}

/// Whether a collaborator permission answer grants write: `role_name` (`admin`, `maintain`,
/// `write`, `triage`, `read`, or a custom role) when GitHub sends it, else `permission` (`admin`,
/// `write`, `read`, `none`; `maintain` folds into `write`) (`repos/get-collaborator-permission-level`).
pub fn grants_write(permission: &str, role_name: Option<&str>) -> bool {
    let writes = |p: &str| matches!(p, "admin" | "maintain" | "write");
    writes(permission) || role_name.is_some_and(writes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_wait: Duration::from_secs(120),
            secondary_backoff: Duration::from_secs(60),
            server_error_backoff: Duration::from_millis(500),
            server_error_retries: 2,
        }
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn statuses_map_to_codes_with_github_message() {
        let body = br#"{"message":"Bad credentials","documentation_url":"x"}"#;
        for (status, code) in [
            (401, ErrorCode::Unauthorized),
            (403, ErrorCode::Forbidden),
            (404, ErrorCode::NotFound),
            (422, ErrorCode::Rejected),
            (400, ErrorCode::Rejected),
        ] {
            match judge(
                status,
                &HeaderMap::new(),
                body,
                0,
                &policy(),
                &Attempts::default(),
            ) {
                Verdict::Fail(e) => {
                    assert_eq!(e.code, code, "{status}");
                    assert_eq!(e.status, Some(status));
                    assert_eq!(e.message, "Bad credentials");
                }
                other => panic!("{status}: {other:?}"),
            }
        }
        assert_eq!(
            judge(
                201,
                &HeaderMap::new(),
                b"",
                0,
                &policy(),
                &Attempts::default()
            ),
            Verdict::Done
        );
        let moved = br#"{"message":"Moved Permanently","url":"https://x/repositories/1"}"#;
        match judge(
            301,
            &HeaderMap::new(),
            moved,
            0,
            &policy(),
            &Attempts::default(),
        ) {
            Verdict::Fail(e) => {
                assert_eq!(e.code, ErrorCode::NotFound);
                assert_eq!(e.message, "Moved Permanently");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(github_message(502, b"<html>"), "HTTP 502");
    }

    #[test]
    fn retry_after_is_honoured_and_budgeted() {
        let h = headers(&[("retry-after", "7")]);
        let msg = br#"{"message":"You have exceeded a secondary rate limit"}"#;
        assert_eq!(
            judge(403, &h, msg, 0, &policy(), &Attempts::default()),
            Verdict::Retry {
                wait: Duration::from_secs(7),
                rate_limit: true
            }
        );
        let spent = Attempts {
            waited: Duration::from_secs(115),
            ..Attempts::default()
        };
        match judge(429, &h, msg, 0, &policy(), &spent) {
            Verdict::Fail(e) => {
                assert_eq!(e.code, ErrorCode::RateLimited);
                assert_eq!(e.retry_after, Some(Duration::from_secs(7)));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn exhausted_primary_waits_until_reset() {
        let h = headers(&[
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", "1030"),
        ]);
        let msg = br#"{"message":"API rate limit exceeded"}"#;
        assert_eq!(
            judge(403, &h, msg, 1000, &policy(), &Attempts::default()),
            Verdict::Retry {
                wait: Duration::from_secs(31),
                rate_limit: true
            }
        );
        // A reset in the past still waits a second.
        assert_eq!(
            rate_limit_wait(403, &h, "", 2000, &policy(), &Attempts::default()),
            Some(Duration::from_secs(1))
        );
    }

    #[test]
    fn secondary_limits_without_headers_back_off_doubling() {
        let msg = br#"{"message":"You have exceeded a secondary rate limit. Please wait"}"#;
        let waits: Vec<_> = (0..3)
            .map(|n| {
                let a = Attempts {
                    secondary: n,
                    ..Attempts::default()
                };
                rate_limit_wait(
                    403,
                    &HeaderMap::new(),
                    &github_message(403, msg),
                    0,
                    &policy(),
                    &a,
                )
            })
            .collect();
        assert_eq!(
            waits,
            vec![
                Some(Duration::from_secs(60)),
                Some(Duration::from_secs(120)),
                Some(Duration::from_secs(240))
            ]
        );
        // A plain 403 is a permission problem, not a limit.
        assert_eq!(
            rate_limit_wait(
                403,
                &HeaderMap::new(),
                "Resource not accessible by integration",
                0,
                &policy(),
                &Attempts::default()
            ),
            None
        );
        // 60 s + 120 s pass the 120 s budget.
        let a = Attempts {
            secondary: 1,
            waited: Duration::from_secs(60),
            ..Attempts::default()
        };
        assert!(matches!(
            judge(403, &HeaderMap::new(), msg, 0, &policy(), &a),
            Verdict::Fail(VcsError {
                code: ErrorCode::RateLimited,
                ..
            })
        ));
    }

    #[test]
    fn server_errors_retry_twice_then_unavailable() {
        let mut a = Attempts::default();
        for expected in [500u64, 1000] {
            match judge(502, &HeaderMap::new(), b"", 0, &policy(), &a) {
                Verdict::Retry { wait, rate_limit } => {
                    assert_eq!(wait, Duration::from_millis(expected));
                    assert!(!rate_limit);
                }
                other => panic!("{other:?}"),
            }
            a.server_errors += 1;
        }
        assert!(matches!(
            judge(503, &HeaderMap::new(), b"", 0, &policy(), &a),
            Verdict::Fail(VcsError {
                code: ErrorCode::Unavailable,
                status: Some(503),
                ..
            })
        ));
    }

    #[test]
    fn link_headers_give_the_next_page() {
        let link = "<https://api.github.com/installation/repositories?per_page=2&page=2>; rel=\"next\", <https://api.github.com/installation/repositories?per_page=2&page=5>; rel=\"last\"";
        let next = next_link(link).unwrap();
        assert_eq!(page_of(&next), Some(2));
        let last_page = "<https://x/y?page=1>; rel=\"prev\", <https://x/y?page=1>; rel=\"first\"";
        assert_eq!(next_link(last_page), None);
    }

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let c = RepoCursor {
            installation_index: 3,
            page: 12,
        };
        assert_eq!(RepoCursor::decode(&c.encode()).unwrap(), c);
        for bad in [
            "", "r1.", "r1.1", "r1.x.2", "r1.1.0", "r2.1.1", "r1.1.1.1", "p1.4",
        ] {
            assert_eq!(
                RepoCursor::decode(bad).unwrap_err().code,
                ErrorCode::Rejected,
                "{bad}"
            );
        }
        assert_eq!(decode_page_cursor(&encode_page_cursor(9)).unwrap(), 9);
        assert!(decode_page_cursor("r1.0.1").is_err());
        assert!(decode_page_cursor("p1.0").is_err());
    }

    #[test]
    fn annotations_go_fifty_per_request_in_order() {
        let items: Vec<u32> = (0..120).collect();
        let chunks = annotation_chunks(&items);
        assert_eq!(
            chunks.iter().map(|c| c.len()).collect::<Vec<_>>(),
            [50, 50, 20]
        );
        assert_eq!(chunks.concat(), items);
        assert_eq!(annotation_chunks::<u32>(&[]).len(), 1);
        assert_eq!(annotation_chunks(&items[..50]).len(), 1);
    }

    #[test]
    fn truncation_keeps_char_boundaries_and_says_so() {
        assert_eq!(truncate_chars("short", 10), "short");
        let long = "é".repeat(70_000);
        let cut = truncate_chars(&long, MAX_OUTPUT_CHARS);
        assert!(
            cut.chars().count() <= MAX_OUTPUT_CHARS,
            "{}",
            cut.chars().count()
        );
        assert!(cut.chars().count() > MAX_OUTPUT_CHARS - 100);
        assert!(cut.contains("truncated by Picket"));
        let kept = cut.chars().take_while(|c| *c == 'é').count();
        assert!(cut.contains(&format!("{} more characters", 70_000 - kept)));
        let exact = "a".repeat(MAX_OUTPUT_CHARS);
        assert_eq!(
            truncate_chars(&exact, MAX_OUTPUT_CHARS).len(),
            MAX_OUTPUT_CHARS
        );
    }

    #[test]
    fn paths_and_urls() {
        assert_eq!(segment("main...abc"), "main...abc");
        assert_eq!(segment("feature/x y"), "feature%2Fx%20y");
        assert_eq!(repo_path("octo/hello-world").unwrap(), "octo/hello-world");
        assert_eq!(repo_path("nope").unwrap_err().code, ErrorCode::BadConfig);
        assert_eq!(repo_path("a/b/c").unwrap_err().code, ErrorCode::BadConfig);
        assert_eq!(
            graphql_url("https://api.github.com"),
            "https://api.github.com/graphql"
        );
        assert_eq!(
            graphql_url("https://ghe.example/api/v3/"),
            "https://ghe.example/api/graphql"
        );
    }

    #[test]
    fn permissions_and_events() {
        let granted: serde_json::Map<String, serde_json::Value> = serde_json::from_str(
            r#"{"metadata":"read","contents":"write","pull_requests":"read","issues":"write"}"#,
        )
        .unwrap();
        assert_eq!(
            missing_permissions(&granted),
            ["pull_requests: write", "checks: write"]
        );
        assert_eq!(
            missing_events(&["pull_request".into(), "push".into()]),
            ["issue_comment", "pull_request_review_comment"]
        );
        assert!(grants_write("write", Some("maintain")));
        assert!(grants_write("admin", None));
        assert!(!grants_write("read", Some("triage")));
        assert!(!grants_write("none", None));
    }
}
