//! What every provider's webhook receiver shares: the secrets a connection accepts, with
//! rotation, and why a delivery was refused.

use secrecy::SecretString;
use time::OffsetDateTime;

/// The webhook secrets a connection accepts. After a rotation the previous secret stays valid
/// until `previous_valid_until`, so deliveries signed before the provider learned the new one
/// still pass.
#[derive(Debug, Clone)]
pub struct WebhookSecrets {
    pub current: SecretString,
    pub previous: Option<PreviousSecret>,
}

#[derive(Debug, Clone)]
pub struct PreviousSecret {
    pub secret: SecretString,
    pub valid_until: OffsetDateTime,
}

impl WebhookSecrets {
    /// The secrets to try at `now`: the current one, then the previous one inside its window.
    pub fn accepted_at(&self, now: OffsetDateTime) -> impl Iterator<Item = &SecretString> {
        std::iter::once(&self.current).chain(
            self.previous
                .as_ref()
                .filter(|p| now < p.valid_until)
                .map(|p| &p.secret),
        )
    }
}

/// Why a delivery's signature was refused (answered 401, nothing written).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the delivery carries no signature")]
    Missing,
    #[error("the delivery carries only a SHA-1 signature; Picket accepts SHA-256 only")]
    Sha1Only,
    #[error("the signature header is not `sha256=` followed by 64 hex digits")]
    Malformed,
    #[error("the signature does not match the body under any accepted secret")]
    Mismatch,
}

impl SignatureError {
    /// Stable code for problem documents and the delivery log.
    pub fn code(self) -> &'static str {
        match self {
            SignatureError::Missing => "signature_missing",
            SignatureError::Sha1Only => "signature_sha1_only",
            SignatureError::Malformed => "signature_malformed",
            SignatureError::Mismatch => "signature_mismatch",
        }
    }
}

/// Why a verified delivery could not be read (answered 400, recorded in the delivery log).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ParseError {
    /// `header_missing`, `header_invalid` (empty, or not visible ASCII), `body_not_json`,
    /// `payload_invalid`.
    pub code: &'static str,
    /// What was wrong, naming the header or JSON path; never payload text.
    pub message: String,
}
