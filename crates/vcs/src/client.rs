//! What every provider client shares: how it reaches the provider (API root, TLS trust,
//! timeouts) and how patient it is with rate limits and server errors.

use crate::error::{ErrorCode, VcsError};
use crate::Result;
use rustls::pki_types::CertificateDer;
use std::sync::Arc;
use std::time::Duration;

/// How a provider client reaches its provider and how patient it is (every provider's client
/// takes these).
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// REST root: GitHub's [`DEFAULT_API_URL`](crate::github::DEFAULT_API_URL) or
    /// `https://<host>/api/v3` (GitHub Enterprise Server), GitLab's `https://<host>/api/v4`, ...
    /// A connection with a base URL of its own replaces it ([`Registry`](crate::Registry)). A
    /// path prefix is kept. Not a URL → [`ErrorCode::BadConfig`](crate::ErrorCode::BadConfig).
    pub api_url: String,
    /// CA certificates trusted besides the platform's (the operator's `PICKET_CA_BUNDLE`, DER).
    pub extra_roots: Vec<CertificateDer<'static>>,
    /// Rate-limit waits and 5xx retries.
    pub retry: RetryPolicy,
    /// TCP connect timeout.
    pub connect_timeout: Duration,
    /// Longest one request (sending it and reading its whole answer) may take; past it the
    /// attempt fails with [`ErrorCode::Unavailable`](crate::ErrorCode::Unavailable).
    pub request_timeout: Duration,
}

impl ClientOptions {
    /// Defaults for `api_url`: no extra roots; rate-limit waits up to 2 minutes per call,
    /// secondary limits backed off from 60 s (GitHub: "wait for at least one minute"), 5xx
    /// retried twice after 1 s and 2 s; 10 s to connect, 30 s per request.
    pub fn new(api_url: impl Into<String>) -> ClientOptions {
        ClientOptions {
            api_url: api_url.into(),
            extra_roots: Vec::new(),
            retry: RetryPolicy {
                max_wait: Duration::from_secs(120),
                secondary_backoff: Duration::from_secs(60),
                server_error_backoff: Duration::from_secs(1),
                server_error_retries: 2,
            },
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
        }
    }
}

impl Default for ClientOptions {
    fn default() -> ClientOptions {
        ClientOptions::new(crate::github::DEFAULT_API_URL)
    }
}

/// How a retry loop is tuned. Tests shrink the durations to milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The longest a single call may spend waiting for rate limits (summed over its retries);
    /// a wait that would pass it fails the call with [`ErrorCode::RateLimited`].
    pub max_wait: Duration,
    /// First wait on a secondary limit without `retry-after` (GitHub: "at least one minute"),
    /// doubled on each further one.
    pub secondary_backoff: Duration,
    /// First wait after a 5xx, doubled on the next.
    pub server_error_backoff: Duration,
    /// How many times a 5xx is retried before the call fails with [`ErrorCode::Unavailable`].
    pub server_error_retries: u32,
}

fn bad_config(message: impl Into<String>) -> VcsError {
    VcsError::new(ErrorCode::BadConfig, message)
}

/// The TLS trust: the platform's roots (as `rustls-native-certs` finds them) plus `extra`.
pub(crate) fn tls_config(
    extra: &[rustls::pki_types::CertificateDer<'static>],
) -> Result<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for cert in native.certs {
        // A platform certificate rustls cannot read is skipped, as browsers do.
        let _ = roots.add(cert);
    }
    for cert in extra {
        roots
            .add(cert.clone())
            .map_err(|e| bad_config(format!("an extra CA certificate is unusable: {e}")))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad_config(format!("TLS configuration: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}
