//! Connections, built once and shared: the control plane's way from a connection id to a live
//! [`SourceProvider`] and to a [`FeedbackClient`] for one repository.
//!
//! The credentials come from a [`CredentialStore`] (the CLI wires one over picket-db, which
//! decrypts them); a client is rebuilt when the stored credentials change (a rotated secret or
//! key), which the store tells by a digest of the sealed bytes, never by the secret itself.

use crate::provider::{FeedbackClient, RepoLocator, SourceProvider};
use crate::{ErrorCode, Result, VcsError};
use async_trait::async_trait;
use picket_core::{ConnectionId, Provider};
use secrecy::SecretString;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

/// A connection's stored credentials, decrypted.
pub struct StoredConnection {
    pub provider: Provider,
    /// The provider's API root (GitHub Enterprise Server: `https://host/api/v3`); empty for the
    /// provider's public service.
    pub base_url: String,
    /// The plaintext the connection stores (GitHub: [`AppCredentials`](crate::github::AppCredentials) JSON).
    pub credentials: SecretString,
    /// Changes whenever the stored credentials change (a digest of the sealed bytes).
    pub version: Vec<u8>,
}

impl fmt::Debug for StoredConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredConnection")
            .field("provider", &self.provider)
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

/// Where connections' credentials are read from.
#[async_trait]
pub trait CredentialStore: Send + Sync + fmt::Debug {
    /// The connection's credentials; `NotFound` when it does not exist, `BadConfig` when it holds
    /// none.
    async fn load(&self, connection: ConnectionId) -> Result<StoredConnection>;
}

/// A built provider and the credentials version it was built from.
type Live = (Vec<u8>, Arc<dyn SourceProvider>);

/// Live providers by connection, built on first use.
#[derive(Debug)]
pub struct Registry {
    store: Arc<dyn CredentialStore>,
    options: crate::client::ClientOptions,
    live: Mutex<HashMap<ConnectionId, Live>>,
}

impl Registry {
    pub fn new(store: Arc<dyn CredentialStore>, options: crate::client::ClientOptions) -> Registry {
        Registry {
            store,
            options,
            live: Mutex::new(HashMap::new()),
        }
    }

    /// How this registry's clients reach providers (TLS trust, timeouts, retries): for calls made
    /// outside any connection, such as the App manifest conversion.
    pub fn options(&self) -> &crate::client::ClientOptions {
        &self.options
    }

    /// The connection's provider, as its credentials are now.
    pub async fn source(&self, connection: ConnectionId) -> Result<Arc<dyn SourceProvider>> {
        let stored = self.store.load(connection).await?;
        if let Some((version, live)) = self.live.lock().expect("registry lock").get(&connection) {
            if *version == stored.version {
                return Ok(live.clone());
            }
        }
        let built = connect(&stored, &self.options)?;
        self.live
            .lock()
            .expect("registry lock")
            .insert(connection, (stored.version, built.clone()));
        Ok(built)
    }

    /// A feedback client for the control plane's own calls on one repository of the connection
    /// (see [`SourceProvider::feedback_client`]: GitHub reuses the installation's cached token).
    pub async fn feedback(
        &self,
        connection: ConnectionId,
        repo: &RepoLocator,
    ) -> Result<Arc<dyn FeedbackClient>> {
        let source = self.source(connection).await?;
        source.feedback_client(repo).await.map(Arc::from)
    }
}

/// The client options of one connection: the registry's, at the connection's API root (its own
/// base URL, else the provider's public service).
fn connection_options(
    stored: &StoredConnection,
    options: &crate::client::ClientOptions,
) -> crate::client::ClientOptions {
    let mut options = options.clone();
    if !stored.base_url.is_empty() || stored.provider != Provider::Github {
        options.api_url = api_url(stored.provider, &stored.base_url);
    }
    options
}

/// A connection's API root: its own base URL, else its provider's public service
/// (`https://api.github.com`, `https://gitlab.com/api/v4`, `https://api.bitbucket.org/2.0`).
/// Azure DevOps has no default: its root names the organization
/// (`https://dev.azure.com/{organization}`), so an Azure DevOps connection without a base URL
/// has none (empty, which no client accepts).
pub fn api_url(provider: Provider, base_url: &str) -> String {
    match (base_url.is_empty(), provider) {
        (false, _) => base_url.to_owned(),
        (true, Provider::Gitlab) => crate::gitlab::DEFAULT_API_URL.to_owned(),
        (true, Provider::AzureDevops) => String::new(),
        (true, Provider::Bitbucket) => crate::bitbucket::DEFAULT_API_URL.to_owned(),
        (true, _) => crate::github::DEFAULT_API_URL.to_owned(),
    }
}

/// The stored credentials as `T`, or [`ErrorCode::BadConfig`] naming the provider.
fn credentials<T: serde::de::DeserializeOwned>(stored: &StoredConnection) -> Result<T> {
    serde_json::from_str(secrecy::ExposeSecret::expose_secret(&stored.credentials)).map_err(|_| {
        VcsError::new(
            ErrorCode::BadConfig,
            format!(
                "the connection's stored credentials are not a {} connection's",
                stored.provider.as_str()
            ),
        )
    })
}

/// Builds the provider of a connection from its stored credentials.
pub fn connect(
    stored: &StoredConnection,
    options: &crate::client::ClientOptions,
) -> Result<Arc<dyn SourceProvider>> {
    let options = connection_options(stored, options);
    match stored.provider {
        Provider::Github => {
            let creds: crate::github::AppCredentials = credentials(stored)?;
            Ok(Arc::new(crate::github::api::GitHubApp::new(
                &creds, &options,
            )?))
        }
        Provider::Gitlab => {
            let creds: crate::gitlab::GitLabCredentials = credentials(stored)?;
            Ok(Arc::new(crate::gitlab::api::GitLab::new(&creds, &options)?))
        }
        Provider::AzureDevops => {
            if stored.base_url.is_empty() {
                return Err(VcsError::new(
                    ErrorCode::BadConfig,
                    "an Azure DevOps connection needs its organization's URL \
                     (`https://dev.azure.com/<organization>`) as its base URL",
                ));
            }
            let creds: crate::azure::AzureCredentials = credentials(stored)?;
            Ok(Arc::new(crate::azure::api::Azure::new(&creds, &options)?))
        }
        Provider::Bitbucket => {
            let creds: crate::bitbucket::BitbucketCredentials = credentials(stored)?;
            Ok(Arc::new(crate::bitbucket::api::Bitbucket::new(
                &creds, &options,
            )?))
        }
        other => Err(VcsError::new(
            ErrorCode::BadConfig,
            format!("{} connections have no provider client yet", other.as_str()),
        )),
    }
}

/// A feedback client for a scan, from the credential minted for it (the worker builds its own
/// with this too).
pub fn feedback_client(
    provider: Provider,
    options: &crate::client::ClientOptions,
    credential: &crate::provider::ScopedCredential,
) -> Result<Box<dyn FeedbackClient>> {
    match provider {
        Provider::Github => Ok(Box::new(crate::github::api::GitHubFeedback::new(
            credential, options,
        )?)),
        Provider::Gitlab => Ok(Box::new(crate::gitlab::api::GitLabFeedback::new(
            credential, options,
        )?)),
        Provider::AzureDevops => Ok(Box::new(crate::azure::api::AzureFeedback::new(
            credential, options,
        )?)),
        Provider::Bitbucket => Ok(Box::new(crate::bitbucket::api::BitbucketFeedback::new(
            credential, options,
        )?)),
        other => Err(VcsError::new(
            ErrorCode::BadConfig,
            format!("{} connections have no feedback client yet", other.as_str()),
        )),
    }
}

/// Serializes a secret in the clear: for credentials on their way to being sealed (picket-db
/// encrypts them at rest), never for output.
pub(crate) fn expose<S: serde::Serializer>(s: &SecretString, ser: S) -> Result<S::Ok, S::Error> {
    ser.serialize_str(secrecy::ExposeSecret::expose_secret(s))
}

/// [`expose`] for an optional secret.
pub(crate) fn expose_opt<S: serde::Serializer>(
    s: &Option<SecretString>,
    ser: S,
) -> Result<S::Ok, S::Error> {
    match s {
        Some(s) => ser.serialize_some(secrecy::ExposeSecret::expose_secret(s)),
        None => ser.serialize_none(),
    }
}
