//! The worker's side of the worker protocol: HTTP calls to the control plane, each carrying the
//! per-scan token. The token and the clone credential never reach a log or an error message.

use picket_core::protocol::{
    CloneCredential, FeedbackBegin, FeedbackDone, FeedbackStart, ScanFailure, ScanResults,
    ScanSpec, WorkerProgress,
};
use secrecy::{ExposeSecret, SecretString};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach the control plane at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("the control plane answered {status} to {what}: {body}")]
    Refused {
        what: &'static str,
        status: u16,
        body: String,
    },
    #[error("the control plane's answer to {what} is not what the worker expects: {reason}")]
    Decode { what: &'static str, reason: String },
}

/// An error and its causes, `: `-separated: reqwest's own text ("error sending request") says
/// nothing of why (a refused connection, a certificate no trusted CA signed).
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let next = c.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        cause = c.source();
    }
    text
}

impl ClientError {
    /// 401/409 mean this attempt is over (its token expired or its lease moved on): stop quietly.
    pub fn is_fenced(&self) -> bool {
        matches!(
            self,
            ClientError::Refused {
                status: 401 | 409,
                ..
            }
        )
    }
}

/// A connection to the control plane for one scan.
#[derive(Debug, Clone)]
pub struct ApiClient {
    http: reqwest::Client,
    base: String,
    token: SecretString,
}

impl ApiClient {
    /// `base` is the control plane's root URL, e.g. `http://127.0.0.1:7300`.
    pub fn new(base: &str, token: SecretString) -> Result<ApiClient, ClientError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(300))
            .build()
            .map_err(|e| ClientError::Unreachable {
                url: base.to_owned(),
                reason: e.to_string(),
            })?;
        Ok(ApiClient {
            http,
            base: base.trim_end_matches('/').to_owned(),
            token,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}/api/v1/worker/scan{path}", self.base)
    }

    async fn send(
        &self,
        what: &'static str,
        req: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, ClientError> {
        let resp = req
            .bearer_auth(self.token.expose_secret())
            .send()
            .await
            // reqwest's error text names the URL, never the Authorization header.
            .map_err(|e| ClientError::Unreachable {
                url: self.base.clone(),
                reason: with_causes(&e.without_url()),
            })?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status().as_u16();
        let body = resp.text().await.unwrap_or_default();
        Err(ClientError::Refused {
            what,
            status,
            body: body.chars().take(2000).collect(),
        })
    }

    async fn json<T: serde::de::DeserializeOwned>(
        what: &'static str,
        resp: reqwest::Response,
    ) -> Result<T, ClientError> {
        resp.json().await.map_err(|e| ClientError::Decode {
            what,
            reason: e.without_url().to_string(),
        })
    }

    pub async fn spec(&self) -> Result<ScanSpec, ClientError> {
        let resp = self
            .send("the spec request", self.http.get(self.url("")))
            .await?;
        Self::json("the spec request", resp).await
    }

    /// The clone credential, or `None` when the project's connection has none (a public URL).
    pub async fn credential(&self) -> Result<Option<CloneCredential>, ClientError> {
        match self
            .send(
                "the credential request",
                self.http.get(self.url("/credential")),
            )
            .await
        {
            Ok(resp) => Self::json("the credential request", resp).await.map(Some),
            Err(ClientError::Refused { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub async fn progress(&self, state: WorkerProgress) -> Result<(), ClientError> {
        let body = serde_json::json!({ "state": state });
        self.send(
            "a progress report",
            self.http.post(self.url("/progress")).json(&body),
        )
        .await
        .map(drop)
    }

    pub async fn results(&self, results: &ScanResults) -> Result<(), ClientError> {
        self.send(
            "the results upload",
            self.http.post(self.url("/results")).json(results),
        )
        .await
        .map(drop)
    }

    /// Sends log lines to the scan's log.
    pub async fn logs(&self, batch: &picket_core::protocol::LogBatch) -> Result<(), ClientError> {
        self.send("log lines", self.http.post(self.url("/logs")).json(batch))
            .await
            .map(drop)
    }

    pub async fn failure(&self, failure: &ScanFailure) -> Result<(), ClientError> {
        self.send(
            "the failure report",
            self.http.post(self.url("/failure")).json(failure),
        )
        .await
        .map(drop)
    }

    /// Begins the PR feedback (fenced by the lease); `None` when the scan takes none (404).
    pub async fn begin_feedback(
        &self,
        begin: &FeedbackBegin,
    ) -> Result<Option<FeedbackStart>, ClientError> {
        match self
            .send(
                "the feedback start",
                self.http.post(self.url("/feedback/begin")).json(begin),
            )
            .await
        {
            Ok(resp) => Self::json("the feedback start", resp).await.map(Some),
            Err(ClientError::Refused { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Reports the PR feedback's comments as posted.
    pub async fn feedback_done(&self, done: &FeedbackDone) -> Result<(), ClientError> {
        self.send(
            "the feedback report",
            self.http.post(self.url("/feedback/done")).json(done),
        )
        .await
        .map(drop)
    }
}

#[async_trait::async_trait]
impl crate::supply_chain::AdvisorySource for ApiClient {
    /// `POST /api/v1/worker/scan/advisories`.
    async fn advisories(
        &self,
        query: &picket_core::protocol::AdvisoryQuery,
    ) -> Result<crate::supply_chain::Advisories, String> {
        const WHAT: &str = "the advisory query";
        let resp = self
            .send(WHAT, self.http.post(self.url("/advisories")).json(query))
            .await
            .map_err(|e| e.to_string())?;
        Self::json(WHAT, resp).await.map_err(|e| e.to_string())
    }
}
