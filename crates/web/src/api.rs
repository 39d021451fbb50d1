//! The REST API, called in process: every action of the UI is one request to the same router a
//! bearer client reaches, carrying the session's caller ([`picket_api::extract::InProcess`])
//! instead of a token, so it meets the same extractors, validation and authorization.

use axum::body::Body;
use axum::http::{header, Method, Request};
use axum::Router;
use http_body_util::BodyExt;
use picket_api::extract::{Caller, InProcess};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use tower::ServiceExt;

/// The API router, to call in process.
#[derive(Clone)]
pub struct Api {
    router: Router,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Api")
    }
}

/// An API refusal, as its RFC 9457 problem tells it.
#[derive(Debug, Clone, Deserialize)]
pub struct Refusal {
    pub status: u16,
    /// The stable problem code (`forbidden`, `invalid_body`, ...).
    pub code: String,
    pub detail: String,
    #[serde(default)]
    pub errors: Vec<FieldRefusal>,
}

/// One refused field of a [`Refusal`].
#[derive(Debug, Clone, Deserialize)]
pub struct FieldRefusal {
    pub field: String,
    pub message: String,
}

impl Refusal {
    /// The detail and each refused field the detail does not already name, for a person.
    pub fn message(&self) -> String {
        let mut out = self.detail.clone();
        for e in &self.errors {
            let said = format!("{}: {}", e.field, e.message);
            if !self.detail.contains(&said) {
                out.push_str("; ");
                out.push_str(&said);
            }
        }
        out
    }

    /// The API's status, as the page's.
    pub fn status(&self) -> axum::http::StatusCode {
        axum::http::StatusCode::from_u16(self.status).unwrap_or(axum::http::StatusCode::BAD_GATEWAY)
    }

    /// What the page says: for a refusal of the token's role, that the role may not `action`
    /// ("change rule modes"); otherwise [`Refusal::message`].
    pub fn say(&self, action: &str) -> String {
        if self.code == "forbidden" {
            format!("Your token's role may not {action}; ask an admin.")
        } else {
            self.message()
        }
    }

    fn unreadable(status: u16, what: &str) -> Refusal {
        Refusal {
            status,
            code: "internal".to_owned(),
            detail: format!("the API's answer could not be read: {what}"),
            errors: Vec::new(),
        }
    }
}

impl Api {
    pub fn new(router: Router) -> Api {
        Api { router }
    }

    /// `method path` with `body` as JSON, as `caller`; the 2xx answer parsed as `T`, or the
    /// problem the API answered.
    pub async fn call<T: DeserializeOwned>(
        &self,
        caller: Caller,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<T, Refusal> {
        let mut req = Request::builder().method(method).uri(path);
        let body = match body {
            Some(json) => {
                req = req.header(header::CONTENT_TYPE, "application/json");
                Body::from(json.to_string())
            }
            None => Body::empty(),
        };
        let mut req = req
            .body(body)
            .map_err(|e| Refusal::unreadable(500, &e.to_string()))?;
        req.extensions_mut().insert(InProcess(caller));
        let resp = self
            .router
            .clone()
            .oneshot(req)
            .await
            .unwrap_or_else(|never| match never {});
        let status = resp.status();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| Refusal::unreadable(status.as_u16(), &e.to_string()))?
            .to_bytes();
        if status.is_success() {
            // 204 No Content reads as `null`.
            let bytes: &[u8] = if bytes.is_empty() { b"null" } else { &bytes };
            serde_json::from_slice(bytes)
                .map_err(|e| Refusal::unreadable(status.as_u16(), &e.to_string()))
        } else {
            Err(serde_json::from_slice(&bytes)
                .unwrap_or_else(|e| Refusal::unreadable(status.as_u16(), &e.to_string())))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(detail: &str, errors: &[(&str, &str)]) -> Refusal {
        Refusal {
            status: 422,
            code: "invalid_body".to_owned(),
            detail: detail.to_owned(),
            errors: errors
                .iter()
                .map(|(f, m)| FieldRefusal {
                    field: (*f).to_owned(),
                    message: (*m).to_owned(),
                })
                .collect(),
        }
    }

    #[test]
    fn a_field_the_detail_already_names_is_said_once() {
        let r = refusal(
            "weekly_scan.time: must be a UTC time of day",
            &[("weekly_scan.time", "must be a UTC time of day")],
        );
        assert_eq!(r.message(), "weekly_scan.time: must be a UTC time of day");
        let r = refusal(
            "2 fields are refused",
            &[("a", "must be 1-3"), ("b", "must be set")],
        );
        assert_eq!(
            r.message(),
            "2 fields are refused; a: must be 1-3; b: must be set"
        );
    }
}
