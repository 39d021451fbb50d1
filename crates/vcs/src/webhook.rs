//! What every provider's webhook receiver shares: the secrets a connection accepts, with
//! rotation, and why a delivery was refused; and what several providers' modules share: the
//! `sha256=` HMAC signature check (GitHub, Bitbucket Cloud), header and payload reading, commit
//! hashes.

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde_json::Value;
use sha2::Sha256;
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
    /// The secrets of a connection that stores its current secret, the one before the last
    /// rotation and when that one stops being accepted (each provider's credentials do).
    pub fn stored(
        current: &SecretString,
        previous: Option<&SecretString>,
        valid_until: Option<OffsetDateTime>,
    ) -> WebhookSecrets {
        WebhookSecrets {
            current: current.clone(),
            previous: previous
                .zip(valid_until)
                .map(|(secret, valid_until)| PreviousSecret {
                    secret: secret.clone(),
                    valid_until,
                }),
        }
    }

    /// Rotates stored secrets in place: `new` becomes current, and the current one stays
    /// accepted until `now + overlap`.
    pub fn rotate_stored(
        current: &mut SecretString,
        previous: &mut Option<SecretString>,
        valid_until: &mut Option<OffsetDateTime>,
        new: SecretString,
        now: OffsetDateTime,
        overlap: time::Duration,
    ) {
        *previous = Some(std::mem::replace(current, new));
        *valid_until = Some(now + overlap);
    }

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

/// A header's value, trimmed: `header_missing` when absent, `header_invalid` when empty or not
/// visible ASCII (`display` names it in the message).
pub(crate) fn header_text(
    headers: &http::HeaderMap,
    name: &'static str,
    display: &'static str,
) -> Result<String, ParseError> {
    let value = headers.get(name).ok_or_else(|| ParseError {
        code: "header_missing",
        message: format!("the `{display}` header is missing"),
    })?;
    match value.to_str() {
        Ok(text) if !text.trim().is_empty() => Ok(text.trim().to_owned()),
        _ => Err(ParseError {
            code: "header_invalid",
            message: format!("the `{display}` header is empty or not visible ASCII"),
        }),
    }
}

/// Deserializes `T` from `value`, naming the JSON path of whatever does not fit.
pub(crate) fn decode<T: DeserializeOwned>(value: &Value) -> Result<T, ParseError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.inner().to_string();
        // serde's "missing field `x`" names one of our own fields (snake_case, or camelCase for
        // Azure DevOps); any other message may quote the payload ("invalid type: string
        // \"...\""), so it is not kept.
        let missing = inner
            .strip_prefix("missing field `")
            .and_then(|rest| rest.strip_suffix('`'))
            .filter(|field| {
                !field.is_empty()
                    && field
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_')
            });
        let message = match (missing, path.as_str()) {
            (Some(field), ".") => format!("`{field}` is missing"),
            (Some(field), _) => format!("`{path}.{field}` is missing"),
            (None, _) => format!("`{path}` does not have the documented type"),
        };
        ParseError {
            code: "payload_invalid",
            message,
        }
    })
}

/// Whether `sha` is a full commit object name: 40 (SHA-1) or 64 (SHA-256) hex digits, of either
/// case. An abbreviated hash (Bitbucket's webhooks send 12 digits) is not.
pub fn is_full_sha(sha: &str) -> bool {
    matches!(sha.len(), 40 | 64) && sha.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A full commit SHA (40 or 64 hex digits), lowercased; `payload_invalid` naming `path` for
/// anything else (an abbreviated hash included).
pub(crate) fn commit_sha(sha: String, path: &str) -> Result<String, ParseError> {
    if is_full_sha(&sha) {
        Ok(sha.to_ascii_lowercase())
    } else {
        Err(ParseError {
            code: "payload_invalid",
            message: format!("`{path}` is not a full commit SHA"),
        })
    }
}

/// A commit hash that may be abbreviated: 7 to 64 hex digits, lowercased (Bitbucket's webhooks,
/// whose receiver resolves it to the full SHA through the API); `payload_invalid` naming `path`
/// for anything else.
pub(crate) fn commit_hash(sha: String, path: &str) -> Result<String, ParseError> {
    if (7..=64).contains(&sha.len()) && sha.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(sha.to_ascii_lowercase())
    } else {
        Err(ParseError {
            code: "payload_invalid",
            message: format!("`{path}` is not a commit hash (7 to 64 hex digits)"),
        })
    }
}

/// The one value of header `name`: `Ok(None)` when absent, [`SignatureError::Malformed`] when
/// repeated (which of two signatures to believe is not the receiver's choice to make).
pub(crate) fn single_header<'a>(
    headers: &'a http::HeaderMap,
    name: &str,
) -> Result<Option<&'a http::HeaderValue>, SignatureError> {
    let mut values = headers.get_all(name).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(SignatureError::Malformed);
    }
    Ok(Some(value))
}

/// Checks one `sha256=<64 hex digits>` signature header value against the HMAC-SHA256 of the raw
/// `body` keyed with each secret `secrets` accepts at `now` (GitHub's `X-Hub-Signature-256`,
/// Bitbucket Cloud's `X-Hub-Signature`).
///
/// Blanks around the value are ignored; the `sha256=` prefix and the hex digits may be of either
/// case (providers send lowercase; case carries no meaning in hex). The MAC comparison runs in
/// constant time.
///
/// # Errors
///
/// [`SignatureError::Malformed`] when the value is not `sha256=` and 64 hex digits,
/// [`SignatureError::Mismatch`] when no accepted secret produces it.
pub(crate) fn verify_hmac_sha256(
    value: &[u8],
    body: &[u8],
    secrets: &WebhookSecrets,
    now: OffsetDateTime,
) -> Result<(), SignatureError> {
    let expected = decode_sha256_signature(value).ok_or(SignatureError::Malformed)?;
    for secret in secrets.accepted_at(now) {
        // HMAC takes keys of any length: this never fails, but a failure must not panic.
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.expose_secret().as_bytes()) else {
            continue;
        };
        mac.update(body);
        if mac.verify_slice(&expected).is_ok() {
            return Ok(());
        }
    }
    Err(SignatureError::Mismatch)
}

/// `sha256=<64 hex>` (prefix of either case, surrounding blanks allowed) to the 32-byte MAC.
fn decode_sha256_signature(value: &[u8]) -> Option<[u8; 32]> {
    let value = value.trim_ascii();
    let (scheme, digits) = value.split_at_checked(7)?;
    if !scheme.eq_ignore_ascii_case(b"sha256=") || digits.len() != 64 {
        return None;
    }
    let mut mac = [0u8; 32];
    hex::decode_to_slice(digits, &mut mac).ok()?;
    Some(mac)
}
