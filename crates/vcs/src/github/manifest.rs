//! One-click App creation: GitHub's App manifest flow.
//!
//! Picket builds a manifest naming exactly the permissions and events it needs and its webhook
//! URL ([`manifest`]); the admin's browser posts it (form field `manifest`) to
//! [`registration_url`]; GitHub creates the App and redirects the browser to `redirect_url` with
//! a one-time `code` and the `state` Picket chose; [`convert`] exchanges the code (valid for one
//! hour) for the App's id, private key and webhook secret.
//!
//! Source: GitHub Docs, "Registering a GitHub App from a manifest"
//! (<https://docs.github.com/en/apps/sharing-github-apps/registering-a-github-app-from-a-manifest>),
//! and `@octokit/openapi` operation `apps/create-from-manifest`
//! (`POST /app-manifests/{code}/conversions`, no authentication).

use super::api::policy::{NEEDED_EVENTS, NEEDED_PERMISSIONS};
use super::api::ClientOptions;
use super::AppCredentials;
use crate::{ErrorCode, Result, VcsError};
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::{json, Map, Value};

/// What the manifest says about Picket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestRequest {
    /// The App's name on GitHub (unique across GitHub; 34 characters at most).
    pub name: String,
    /// Picket's homepage as the App shows it (`url`).
    pub homepage_url: String,
    /// Where GitHub delivers webhooks: the connection-to-be's `/webhooks/github/…` route.
    pub webhook_url: String,
    /// Where GitHub sends the browser back with the code.
    pub redirect_url: String,
}

/// The manifest JSON: private App, Picket's permissions and events, active webhook.
pub fn manifest(req: &ManifestRequest) -> Value {
    let permissions: Map<String, Value> = NEEDED_PERMISSIONS
        .iter()
        .map(|(name, level)| ((*name).to_owned(), Value::from(*level)))
        .collect();
    json!({
        "name": req.name,
        "url": req.homepage_url,
        "hook_attributes": { "url": req.webhook_url, "active": true },
        "redirect_url": req.redirect_url,
        "public": false,
        "default_permissions": permissions,
        "default_events": NEEDED_EVENTS,
    })
}

/// Where the browser posts the manifest: the organization's new-App page, or the user's when
/// `organization` is `None`, on `web_url` (`https://github.com`, or the GHES host), with
/// `state` (echoed back on the redirect).
pub fn registration_url(web_url: &str, organization: Option<&str>, state: &str) -> Result<String> {
    let mut url = url::Url::parse(web_url)
        .map_err(|_| VcsError::new(ErrorCode::BadConfig, "the GitHub web URL is not a URL"))?;
    let path = match organization {
        Some(org) => format!("organizations/{org}/settings/apps/new"),
        None => "settings/apps/new".to_owned(),
    };
    {
        let mut segments = url.path_segments_mut().map_err(|()| {
            VcsError::new(
                ErrorCode::BadConfig,
                "the GitHub web URL cannot take a path",
            )
        })?;
        segments.pop_if_empty();
        segments.extend(path.split('/'));
    }
    url.query_pairs_mut().append_pair("state", state);
    Ok(url.to_string())
}

/// The web host of an API root: `https://api.github.com` → `https://github.com`,
/// `https://ghe.example/api/v3` → `https://ghe.example`.
pub fn web_url_of(api_url: &str) -> String {
    let root = api_url.trim_end_matches('/');
    if let Some(host) = root.strip_suffix("/api/v3") {
        return host.to_owned();
    }
    root.replace("://api.github.com", "://github.com")
}

#[derive(Deserialize)]
struct Conversion {
    id: u64,
    slug: Option<String>,
    name: Option<String>,
    html_url: Option<String>,
    pem: String,
    webhook_secret: Option<String>,
}

/// The App GitHub created, as a connection stores it.
#[derive(Debug)]
pub struct CreatedApp {
    pub slug: Option<String>,
    /// The App's name on GitHub (the manifest's, or what the admin typed instead).
    pub name: Option<String>,
    /// The App's page (`https://github.com/apps/<slug>`; GitHub Enterprise Server:
    /// `https://<host>/github-apps/<slug>`), where it is installed from (`/installations/new`).
    pub html_url: Option<String>,
    pub credentials: AppCredentials,
}

/// Exchanges the one-time `code` for the App's credentials (`POST /app-manifests/{code}/conversions`).
/// GitHub answers 404 for an unknown or expired code ([`ErrorCode::NotFound`]); an App created
/// without a webhook secret is refused ([`ErrorCode::BadResponse`]): Picket verifies every delivery.
pub async fn convert(code: &str, options: &ClientOptions) -> Result<CreatedApp> {
    let code = super::api::policy::segment(code);
    let answer: Conversion =
        super::api::unauthenticated_post(options, &format!("/app-manifests/{code}/conversions"))
            .await?;
    let webhook_secret = answer
        .webhook_secret
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            VcsError::new(
                ErrorCode::BadResponse,
                "GitHub created the App without a webhook secret",
            )
        })?;
    Ok(CreatedApp {
        slug: answer.slug,
        name: answer.name,
        html_url: answer.html_url,
        credentials: AppCredentials {
            app_id: answer.id,
            private_key: SecretString::from(answer.pem),
            webhook_secret: SecretString::from(webhook_secret),
            previous_webhook_secret: None,
            previous_valid_until: None,
        },
    })
}
