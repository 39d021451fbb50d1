//! HTTP to GitHub: one hyper client with Picket's TLS trust (the platform's roots plus the
//! operator's extra CA certificates) under octocrab, which signs App JWTs and sets the
//! `Authorization` header; a retry loop that honours rate limits and retries 5xx.
//!
//! octocrab's own `OctocrabBuilder::build` only trusts the platform's roots, so the client is
//! built with `OctocrabBuilder::new_empty().with_service(..)`: [`GitHubService`] is the bottom of
//! the stack. It turns octocrab's relative URIs (octocrab only attaches credentials to requests
//! without an authority or for `api.github.com`) into absolute ones under the connection's REST
//! root (GraphQL under its GraphQL root), sets GitHub's headers and counts every request sent.

use super::policy::{self, Attempts, RetryPolicy, Verdict};
use super::ClientOptions;
use crate::error::{ErrorCode, VcsError};
use crate::Result;
use http::header::{HeaderValue, ACCEPT, USER_AGENT};
use http::{HeaderMap, Method, Request, Response, Uri};
use http_body_util::BodyExt;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use octocrab::{AuthState, OctoBody, Octocrab, OctocrabBuilder};
use serde::de::DeserializeOwned;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

type HyperClient = hyper_util::client::legacy::Client<HttpsConnector<HttpConnector>, OctoBody>;

/// The bottom of octocrab's service stack.
#[derive(Clone)]
pub(crate) struct GitHubService {
    client: HyperClient,
    /// REST root without a trailing slash (`https://api.github.com`, `https://ghe/api/v3`).
    rest: String,
    /// The GraphQL endpoint (`https://api.github.com/graphql`, `https://ghe/api/graphql`).
    graphql: String,
    user_agent: HeaderValue,
    calls: Arc<AtomicU64>,
}

impl tower::Service<Request<OctoBody>> for GitHubService {
    type Response = Response<hyper::body::Incoming>;
    type Error = hyper_util::client::legacy::Error;
    type Future = hyper_util::client::legacy::ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // The legacy client is always ready (it queues on its pool).
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut req: Request<OctoBody>) -> Self::Future {
        let pq = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_else(|| "/".to_owned());
        let absolute = if req.uri().authority().is_some() {
            None
        } else if pq == "/graphql" {
            Some(self.graphql.clone())
        } else {
            Some(format!("{}{}", self.rest, pq))
        };
        if let Some(uri) = absolute.and_then(|a| a.parse::<Uri>().ok()) {
            *req.uri_mut() = uri;
        }
        let headers = req.headers_mut();
        headers.insert(USER_AGENT, self.user_agent.clone());
        headers.insert(
            ACCEPT,
            HeaderValue::from_static("application/vnd.github+json"),
        );
        headers.insert(
            "x-github-api-version",
            HeaderValue::from_static("2022-11-28"),
        );
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.client.request(req)
    }
}

/// Which credential a request carries.
#[derive(Clone)]
pub(crate) enum Cred {
    /// The client's own credential: the App's JWT ([`GitHubApp`](super::GitHubApp), for
    /// `/app/...` operations) or the scan's token ([`GitHubFeedback`](super::GitHubFeedback)).
    Own,
    /// An installation token.
    Token(octocrab::Octocrab),
}

/// One answer.
#[derive(Debug)]
pub(crate) struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    /// The body as `T`; [`ErrorCode::BadResponse`] (without the body's content, which may hold a
    /// token) when it does not decode.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_slice(&self.body).map_err(|e| {
            VcsError {
                code: ErrorCode::BadResponse,
                status: Some(self.status),
                message: format!(
                    "GitHub's answer did not have the documented shape ({:?} error at line {} column {})",
                    e.classify(),
                    e.line(),
                    e.column()
                ),
                retry_after: None,
            }
        })
    }

    /// The `rel="next"` link's page number.
    pub fn next_page(&self) -> Option<u32> {
        let link = self.headers.get("link")?.to_str().ok()?;
        policy::page_of(&policy::next_link(link)?)
    }
}

/// The HTTP side of a client: octocrab over [`GitHubService`], plus the retry loop.
#[derive(Clone)]
pub(crate) struct Http {
    /// Authenticates as the App (provider) or with the scan's token (feedback).
    crab: Octocrab,
    calls: Arc<AtomicU64>,
    retry: RetryPolicy,
    timeout: Duration,
}

impl std::fmt::Debug for Http {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Http")
            .field("calls", &self.calls.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

fn bad_config(message: impl Into<String>) -> VcsError {
    VcsError::new(ErrorCode::BadConfig, message)
}

impl Http {
    /// A client for `options.api_url`, authenticating with `auth`.
    pub fn new(options: &ClientOptions, auth: AuthState) -> Result<Http> {
        let rest = options.api_url.trim_end_matches('/').to_owned();
        let parsed = url::Url::parse(&rest)
            .map_err(|e| bad_config(format!("API URL {rest:?} is not a URL: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(bad_config(format!(
                "API URL {rest:?} is not an http(s) URL"
            )));
        }
        if parsed.query().is_some() || parsed.fragment().is_some() {
            return Err(bad_config(format!(
                "API URL {rest:?} has a query or fragment"
            )));
        }
        let graphql = policy::graphql_url(&rest);
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(options.connect_timeout));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(crate::client::tls_config(&options.extra_roots)?)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build(https);
        let calls = Arc::new(AtomicU64::new(0));
        let service = GitHubService {
            client,
            rest,
            graphql,
            user_agent: HeaderValue::from_static(concat!("picket/", env!("CARGO_PKG_VERSION"))),
            calls: calls.clone(),
        };
        let crab = OctocrabBuilder::new_empty()
            .with_service(service)
            .with_auth(auth)
            .build()
            .map_err(|e: std::convert::Infallible| bad_config(e.to_string()))?;
        Ok(Http {
            crab,
            calls,
            retry: options.retry,
            timeout: options.request_timeout,
        })
    }

    /// Requests sent so far (every attempt, token mints included).
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// An octocrab handle sending `token` (an installation token) on the same connection pool.
    pub fn with_token(&self, token: &secrecy::SecretString) -> Result<Octocrab> {
        use secrecy::ExposeSecret;
        self.crab
            .user_access_token(token.expose_secret().to_owned())
            .map_err(|_| bad_config("could not use the installation token"))
    }

    /// Sends one request (retrying as [`RetryPolicy`] says) and returns a 2xx/3xx answer, or the
    /// error GitHub's answer maps to.
    pub async fn send(
        &self,
        cred: &Cred,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<Reply> {
        let crab = match cred {
            Cred::Own => &self.crab,
            Cred::Token(crab) => crab,
        };
        let mut attempts = Attempts::default();
        loop {
            let reply = self.once(crab, &method, path, body).await?;
            let now = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            match policy::judge(
                reply.status,
                &reply.headers,
                &reply.body,
                now,
                &self.retry,
                &attempts,
            ) {
                Verdict::Done => return Ok(reply),
                Verdict::Fail(e) => return Err(e),
                Verdict::Retry { wait, rate_limit } => {
                    if rate_limit {
                        attempts.waited += wait;
                        if reply.headers.get("retry-after").is_none()
                            && reply
                                .headers
                                .get("x-ratelimit-remaining")
                                .and_then(|v| v.to_str().ok())
                                != Some("0")
                        {
                            attempts.secondary += 1;
                        }
                    } else {
                        attempts.server_errors += 1;
                    }
                    tracing::debug!(
                        status = reply.status,
                        wait_ms = wait.as_millis() as u64,
                        rate_limit,
                        "GitHub asked to wait; retrying"
                    );
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    /// One attempt: the answer whatever its status, or a transport error.
    async fn once(
        &self,
        crab: &Octocrab,
        method: &Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<Reply> {
        let attempt = async {
            let response = match *method {
                Method::GET => crab._get(path).await,
                Method::POST => crab._post(path, body).await,
                Method::PATCH => crab._patch(path, body).await,
                Method::PUT => crab._put(path, body).await,
                Method::DELETE => crab._delete(path, body).await,
                _ => return Err(bad_config(format!("method {method} is not used"))),
            }
            .map_err(transport_error)?;
            let (parts, body) = response.into_parts();
            let body = body
                .collect()
                .await
                .map_err(transport_error)?
                .to_bytes()
                .to_vec();
            Ok(Reply {
                status: parts.status.as_u16(),
                headers: parts.headers,
                body,
            })
        };
        match tokio::time::timeout(self.timeout, attempt).await {
            Ok(result) => result,
            Err(_) => Err(VcsError::new(
                ErrorCode::Unavailable,
                format!("GitHub did not answer within {} s", self.timeout.as_secs()),
            )),
        }
    }

    /// Every page of a listing (`per_page=100`, following the `Link` header's next page).
    pub async fn all_pages<T: DeserializeOwned>(&self, cred: &Cred, path: &str) -> Result<Vec<T>> {
        let mut all = Vec::new();
        let mut page = 1;
        loop {
            let reply = self
                .send(
                    cred,
                    Method::GET,
                    &format!("{path}?per_page=100&page={page}"),
                    None,
                )
                .await?;
            let items: Vec<T> = reply.json()?;
            all.extend(items);
            match reply.next_page() {
                Some(next) if next > page => page = next,
                _ => return Ok(all),
            }
        }
    }

    /// Sends and decodes the JSON answer.
    pub async fn json<T: DeserializeOwned>(
        &self,
        cred: &Cred,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<T> {
        self.send(cred, method, path, body).await?.json()
    }

    /// A GraphQL request; GraphQL `errors` (HTTP 200) become [`ErrorCode::Rejected`], or
    /// `RateLimited` / `NotFound` / `Forbidden` for GitHub's `RATE_LIMITED` / `NOT_FOUND` /
    /// `FORBIDDEN` error types, their messages joined.
    pub async fn graphql<T: DeserializeOwned>(
        &self,
        cred: &Cred,
        query: &str,
        variables: serde_json::Value,
    ) -> Result<T> {
        #[derive(serde::Deserialize)]
        struct Answer<T> {
            data: Option<T>,
            #[serde(default)]
            errors: Vec<GraphqlError>,
        }
        #[derive(serde::Deserialize)]
        struct GraphqlError {
            message: String,
            #[serde(default, rename = "type")]
            kind: Option<String>,
        }
        let body = serde_json::json!({ "query": query, "variables": variables });
        let reply = self
            .send(cred, Method::POST, "/graphql", Some(&body))
            .await?;
        let answer: Answer<T> = reply.json()?;
        if !answer.errors.is_empty() {
            let code = if answer
                .errors
                .iter()
                .any(|e| e.kind.as_deref() == Some("RATE_LIMITED"))
            {
                // GraphQL's own limit answers 200 with this error type; no wait is given.
                ErrorCode::RateLimited
            } else if answer
                .errors
                .iter()
                .any(|e| e.kind.as_deref() == Some("NOT_FOUND"))
            {
                ErrorCode::NotFound
            } else if answer
                .errors
                .iter()
                .any(|e| e.kind.as_deref() == Some("FORBIDDEN"))
            {
                ErrorCode::Forbidden
            } else {
                ErrorCode::Rejected
            };
            return Err(VcsError {
                code,
                status: Some(reply.status),
                message: answer
                    .errors
                    .iter()
                    .map(|e| e.message.as_str())
                    .collect::<Vec<_>>()
                    .join("; "),
                retry_after: None,
            });
        }
        answer.data.ok_or_else(|| VcsError {
            code: ErrorCode::BadResponse,
            status: Some(reply.status),
            message: "GraphQL answer without data".into(),
            retry_after: None,
        })
    }
}

/// A request that got no answer. The message names the failure, never the request (its headers
/// hold the credential).
fn transport_error(e: octocrab::Error) -> VcsError {
    let mut message = String::from("could not reach GitHub");
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(&e);
    let mut depth = 0;
    while let Some(s) = source {
        if depth > 4 {
            break;
        }
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
        depth += 1;
    }
    let code = match e {
        octocrab::Error::Uri { .. } | octocrab::Error::UriParse { .. } => ErrorCode::BadConfig,
        octocrab::Error::JWT { .. } => ErrorCode::BadConfig,
        _ => ErrorCode::Unreachable,
    };
    VcsError::new(code, message)
}
