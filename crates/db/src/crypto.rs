//! Credentials at rest: XChaCha20-Poly1305 under a 32-byte key from config.
//!
//! Stored form: 24-byte random nonce || ciphertext || 16-byte tag. The row's id is bound as
//! associated data, so a ciphertext copied onto another row fails to open instead of lending its
//! credentials to a different connection.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretBox, SecretString};
use std::fmt;

const NONCE_LEN: usize = 24;

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("the secret key must be 64 hex characters (32 bytes)")]
    BadKey,
    #[error("stored credentials cannot be decrypted with this key")]
    Open,
}

/// The key that seals credentials. `Debug` never shows it.
pub struct CredentialCipher {
    cipher: XChaCha20Poly1305,
}

impl fmt::Debug for CredentialCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CredentialCipher([REDACTED])")
    }
}

impl CredentialCipher {
    /// Parses a key given as 64 hex characters.
    pub fn from_hex(key: &SecretString) -> Result<Self, CryptoError> {
        let bytes = SecretBox::new(Box::new(
            hex::decode(key.expose_secret().trim()).map_err(|_| CryptoError::BadKey)?,
        ));
        let bytes: &[u8] = bytes.expose_secret();
        if bytes.len() != 32 {
            return Err(CryptoError::BadKey);
        }
        Ok(Self {
            cipher: XChaCha20Poly1305::new_from_slice(bytes).map_err(|_| CryptoError::BadKey)?,
        })
    }

    /// A fresh random key, hex-encoded, for first-time setup.
    pub fn generate_hex() -> SecretString {
        let mut key = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut key);
        SecretString::from(hex::encode(key))
    }

    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let ct = self
            .cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .expect("XChaCha20-Poly1305 encryption cannot fail for in-memory buffers");
        let mut out = Vec::with_capacity(NONCE_LEN + ct.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        out
    }

    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<SecretBox<Vec<u8>>, CryptoError> {
        if sealed.len() < NONCE_LEN {
            return Err(CryptoError::Open);
        }
        let (nonce, ct) = sealed.split_at(NONCE_LEN);
        self.cipher
            .decrypt(XNonce::from_slice(nonce), Payload { msg: ct, aad })
            .map(|pt| SecretBox::new(Box::new(pt)))
            .map_err(|_| CryptoError::Open)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cipher() -> CredentialCipher {
        CredentialCipher::from_hex(&CredentialCipher::generate_hex()).unwrap()
    }

    #[test]
    fn round_trip_and_binding_to_the_row() {
        let c = cipher();
        let sealed = c.seal(b"ghp_secret", b"row-1");
        assert!(!sealed.windows(10).any(|w| w == b"ghp_secret"));
        assert_eq!(
            c.open(&sealed, b"row-1").unwrap().expose_secret(),
            b"ghp_secret"
        );
        assert!(matches!(c.open(&sealed, b"row-2"), Err(CryptoError::Open)));
    }

    #[test]
    fn another_key_or_tampering_fails() {
        let c = cipher();
        let mut sealed = c.seal(b"token", b"id");
        assert!(cipher().open(&sealed, b"id").is_err());
        let last = sealed.len() - 1;
        sealed[last] ^= 1;
        assert!(c.open(&sealed, b"id").is_err());
        assert!(c.open(&[1, 2, 3], b"id").is_err());
    }

    #[test]
    fn bad_keys_are_refused_and_never_printed() {
        assert!(CredentialCipher::from_hex(&SecretString::from("abcd".to_owned())).is_err());
        let c = cipher();
        assert_eq!(format!("{c:?}"), "CredentialCipher([REDACTED])");
    }
}
