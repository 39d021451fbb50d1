//! HTTP for the token-based providers (GitLab, Bitbucket Cloud, Azure DevOps): one `reqwest`
//! client per connection with Picket's TLS trust, the credential in a header, and a retry loop
//! that waits out rate limits and retries server errors within [`RetryPolicy`]'s budget.
//!
//! Rate limits, as each provider documents them (`../shared/docs/providers.md`):
//! - GitLab answers 429 with `Retry-After` (seconds) and `RateLimit-Reset` (Unix seconds);
//!   application limits such as note creation can answer 429 while `RateLimit-Remaining` still
//!   shows quota, so a 429 is always a rate limit;
//! - Bitbucket Cloud answers 429, sometimes without any header;
//! - Azure DevOps delays, then answers 429 with `Retry-After` and `X-RateLimit-Reset`.
//!
//! A 429 waits `Retry-After`, else until the reset time, else [`RetryPolicy::secondary_backoff`]
//! doubled on each further one. Redirects are not followed (the credential stays with the
//! configured host), and nothing here puts a URL, header or body into an error message: only the
//! provider's own `message`.

use crate::client::{tls_config, ClientOptions, RetryPolicy};
use crate::error::{ErrorCode, VcsError};
use crate::github::api::policy::code_for_status;
use crate::Result;
use http::{HeaderMap, Method};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

pub(crate) use crate::github::api::policy::segment;

/// How a request carries the connection's credential.
#[derive(Clone)]
pub(crate) enum Auth {
    /// `Authorization: Bearer <token>` (GitLab, Bitbucket access tokens).
    Bearer(SecretString),
    /// `Authorization: Basic base64(user:password)` (Azure DevOps personal access tokens: any
    /// user name, the token as the password).
    Basic {
        user: String,
        password: SecretString,
    },
}

/// One answer.
#[derive(Debug)]
pub(crate) struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    provider: &'static str,
}

impl Reply {
    /// The body as `T`; [`ErrorCode::BadResponse`] (without the body's content) when it does not
    /// decode.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T> {
        let mut de = serde_json::Deserializer::from_slice(&self.body);
        serde_path_to_error::deserialize(&mut de).map_err(|e| VcsError {
            code: ErrorCode::BadResponse,
            status: Some(self.status),
            message: format!(
                "{}'s answer did not have the documented shape at `{}`",
                self.provider,
                e.path()
            ),
            retry_after: None,
        })
    }

    /// A header as text, when present and visible ASCII.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A connection's HTTP client.
#[derive(Clone)]
pub(crate) struct Rest {
    client: reqwest::Client,
    /// API root without a trailing slash (`https://gitlab.com/api/v4`).
    root: String,
    auth: Auth,
    retry: RetryPolicy,
    calls: Arc<AtomicU64>,
    /// The provider's name, for messages (`GitLab`).
    provider: &'static str,
}

impl std::fmt::Debug for Rest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rest")
            .field("provider", &self.provider)
            .field("root", &self.root)
            .field("calls", &self.calls.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

fn bad_config(message: impl Into<String>) -> VcsError {
    VcsError::new(ErrorCode::BadConfig, message)
}

/// The API root of `options`, checked: an http(s) URL with a host and no query or fragment,
/// without a trailing slash.
pub(crate) fn api_root(options: &ClientOptions) -> Result<String> {
    let root = options.api_url.trim_end_matches('/').to_owned();
    let parsed = url::Url::parse(&root)
        .map_err(|e| bad_config(format!("API URL {root:?} is not a URL: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(bad_config(format!(
            "API URL {root:?} is not an http(s) URL"
        )));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() || !parsed.username().is_empty() {
        return Err(bad_config(format!(
            "API URL {root:?} has a query, fragment or user name"
        )));
    }
    Ok(root)
}

impl Rest {
    /// A client for `options.api_url`, sending `auth` on every request.
    pub fn new(provider: &'static str, options: &ClientOptions, auth: Auth) -> Result<Rest> {
        let root = api_root(options)?;
        let client = reqwest::Client::builder()
            .use_preconfigured_tls(tls_config(&options.extra_roots)?)
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(options.connect_timeout)
            .timeout(options.request_timeout)
            .user_agent(concat!("picket/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| bad_config(format!("HTTP client: {}", e.without_url())))?;
        Ok(Rest {
            client,
            root,
            auth,
            retry: options.retry,
            calls: Arc::new(AtomicU64::new(0)),
            provider,
        })
    }

    /// Requests sent so far (every attempt).
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// Sends `method path?query` (path from the API root, starting with `/`, segments already
    /// encoded) with an optional JSON body, retrying as [`RetryPolicy`] says; returns a 2xx
    /// answer or the error the answer maps to.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&serde_json::Value>,
    ) -> Result<Reply> {
        let mut waited = Duration::ZERO;
        let mut limited = 0u32;
        let mut server_errors = 0u32;
        loop {
            let reply = self.once(&method, path, query, body).await?;
            if (200..300).contains(&reply.status) {
                return Ok(reply);
            }
            let message = provider_message(reply.status, &reply.body);
            let error = |code| VcsError {
                code,
                status: Some(reply.status),
                message: format!("{}: {message}", self.provider),
                retry_after: None,
            };
            if reply.status == 429 {
                let wait = rate_limit_wait(&reply.headers, now_epoch(), &self.retry, limited);
                if waited.saturating_add(wait) > self.retry.max_wait {
                    return Err(VcsError {
                        retry_after: Some(wait),
                        ..error(ErrorCode::RateLimited)
                    });
                }
                waited += wait;
                limited += 1;
                tracing::debug!(
                    provider = self.provider,
                    wait_ms = wait.as_millis() as u64,
                    "rate limited; retrying"
                );
                tokio::time::sleep(wait).await;
                continue;
            }
            if matches!(reply.status, 500 | 502 | 503 | 504) {
                if server_errors < self.retry.server_error_retries {
                    let factor = 1u32.checked_shl(server_errors.min(16)).unwrap_or(u32::MAX);
                    server_errors += 1;
                    tokio::time::sleep(self.retry.server_error_backoff.saturating_mul(factor))
                        .await;
                    continue;
                }
                return Err(error(ErrorCode::Unavailable));
            }
            return Err(error(code_for_status(reply.status)));
        }
    }

    /// Sends and decodes the JSON answer.
    pub async fn json<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&serde_json::Value>,
    ) -> Result<T> {
        self.send(method, path, query, body).await?.json()
    }

    /// One attempt: the answer whatever its status, or a transport error.
    async fn once(
        &self,
        method: &Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&serde_json::Value>,
    ) -> Result<Reply> {
        let url = format!("{}{path}", self.root);
        let mut request = self.client.request(method.clone(), url);
        if !query.is_empty() {
            request = request.query(query);
        }
        request = match &self.auth {
            Auth::Bearer(token) => request.bearer_auth(token.expose_secret()),
            Auth::Basic { user, password } => {
                request.basic_auth(user, Some(password.expose_secret()))
            }
        };
        request = request.header(http::header::ACCEPT, "application/json");
        if let Some(body) = body {
            request = request.json(body);
        }
        self.calls.fetch_add(1, Ordering::Relaxed);
        let response = request.send().await.map_err(|e| self.transport_error(e))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response
            .bytes()
            .await
            .map_err(|e| self.transport_error(e))?
            .to_vec();
        Ok(Reply {
            status,
            headers,
            body,
            provider: self.provider,
        })
    }

    /// A request that got no (whole) answer. The message names the failure, never the request.
    fn transport_error(&self, e: reqwest::Error) -> VcsError {
        let code = if e.is_timeout() {
            ErrorCode::Unavailable
        } else if e.is_builder() {
            ErrorCode::BadConfig
        } else {
            ErrorCode::Unreachable
        };
        let e = e.without_url();
        let mut message = format!("could not reach {}: {e}", self.provider);
        let mut source = std::error::Error::source(&e);
        let mut depth = 0;
        while let (Some(s), true) = (source, depth < 4) {
            message.push_str(": ");
            message.push_str(&s.to_string());
            source = s.source();
            depth += 1;
        }
        VcsError::new(code, message)
    }
}

fn now_epoch() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn header_u64(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
}

/// How long to wait after the `limited`-th (from 0) 429 of one call: `Retry-After` seconds; else,
/// when the headers show the quota spent (`RateLimit-Remaining` / `X-RateLimit-Remaining` 0 or
/// absent), until `RateLimit-Reset` / `X-RateLimit-Reset` (Unix seconds, one more for rounding);
/// else [`RetryPolicy::secondary_backoff`] doubled per earlier 429. A 429 with quota left is
/// another limit than the headers' (GitLab's note creation limit): their reset says nothing of
/// it.
pub(crate) fn rate_limit_wait(
    headers: &HeaderMap,
    now_epoch: u64,
    policy: &RetryPolicy,
    limited: u32,
) -> Duration {
    if let Some(secs) = header_u64(headers, "retry-after") {
        return Duration::from_secs(secs);
    }
    let remaining = header_u64(headers, "ratelimit-remaining")
        .or_else(|| header_u64(headers, "x-ratelimit-remaining"));
    let reset =
        header_u64(headers, "ratelimit-reset").or_else(|| header_u64(headers, "x-ratelimit-reset"));
    if let (Some(reset), Some(0) | None) = (reset, remaining) {
        if reset > now_epoch {
            return Duration::from_secs(reset - now_epoch + 1);
        }
    }
    let factor = 1u32.checked_shl(limited.min(16)).unwrap_or(u32::MAX);
    policy.secondary_backoff.saturating_mul(factor)
}

/// The provider's own message from an error body, at most 300 characters: GitLab's `message`
/// (text, or an object of field → messages) or `error`, Bitbucket's `error.message`, Azure's
/// `message`; the status when the body has none.
pub(crate) fn provider_message(status: u16, body: &[u8]) -> String {
    let value: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let text = value.as_ref().and_then(|v| {
        let message = v.get("message").or_else(|| v.get("error"))?;
        match message {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Object(map) => map
                .get("message")
                .and_then(|m| m.as_str())
                .map(str::to_owned)
                .or_else(|| Some(serde_json::Value::Object(map.clone()).to_string())),
            other => Some(other.to_string()),
        }
    });
    match text {
        Some(text) => text.chars().take(300).collect(),
        None => format!("HTTP {status}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_wait: Duration::from_secs(120),
            secondary_backoff: Duration::from_secs(60),
            server_error_backoff: Duration::from_secs(1),
            server_error_retries: 2,
        }
    }

    #[test]
    fn a_429_waits_retry_after_then_the_reset_then_a_doubling_backoff() {
        let mut h = HeaderMap::new();
        assert_eq!(
            rate_limit_wait(&h, 1000, &policy(), 0),
            Duration::from_secs(60)
        );
        assert_eq!(
            rate_limit_wait(&h, 1000, &policy(), 2),
            Duration::from_secs(240)
        );
        h.insert("ratelimit-reset", HeaderValue::from_static("1010"));
        assert_eq!(
            rate_limit_wait(&h, 1000, &policy(), 0),
            Duration::from_secs(11)
        );
        // A reset already past falls back to the backoff.
        assert_eq!(
            rate_limit_wait(&h, 2000, &policy(), 0),
            Duration::from_secs(60)
        );
        // Quota left: another limit answered, the reset is not its own.
        h.insert("ratelimit-remaining", HeaderValue::from_static("1999"));
        assert_eq!(
            rate_limit_wait(&h, 1000, &policy(), 0),
            Duration::from_secs(60)
        );
        h.insert("ratelimit-remaining", HeaderValue::from_static("0"));
        assert_eq!(
            rate_limit_wait(&h, 1000, &policy(), 0),
            Duration::from_secs(11)
        );
        h.insert("retry-after", HeaderValue::from_static("3"));
        assert_eq!(
            rate_limit_wait(&h, 1000, &policy(), 0),
            Duration::from_secs(3)
        );
    }

    #[test]
    fn messages_come_from_each_providers_error_shape() {
        assert_eq!(
            provider_message(404, br#"{"message":"404 Project Not Found"}"#),
            "404 Project Not Found"
        );
        assert_eq!(
            provider_message(400, br#"{"message":{"note":["can't be blank"]}}"#),
            r#"{"note":["can't be blank"]}"#
        );
        assert_eq!(
            provider_message(401, br#"{"error":"invalid_token"}"#),
            "invalid_token"
        );
        assert_eq!(
            provider_message(
                404,
                br#"{"type":"error","error":{"message":"Repository not found"}}"#
            ),
            "Repository not found"
        );
        assert_eq!(
            provider_message(502, b"<html>bad gateway</html>"),
            "HTTP 502"
        );
        assert_eq!(
            provider_message(
                400,
                format!(r#"{{"message":"{}"}}"#, "x".repeat(1000)).as_bytes()
            )
            .len(),
            300
        );
    }

    #[test]
    fn an_api_root_must_be_a_plain_http_url() {
        let ok = ClientOptions::new("https://gitlab.example.test/api/v4/");
        assert_eq!(api_root(&ok).unwrap(), "https://gitlab.example.test/api/v4");
        for bad in [
            "gitlab.example.test",
            "ftp://gitlab.example.test",
            "https://gitlab.example.test/api/v4?x=1",
            "https://user@gitlab.example.test/api/v4",
        ] {
            assert_eq!(
                api_root(&ClientOptions::new(bad)).unwrap_err().code,
                ErrorCode::BadConfig,
                "{bad}"
            );
        }
    }
}
