//! Trust for the worker's TLS clients: the system's roots plus the operator's CA bundle
//! (`PICKET_CA_BUNDLE`, a PEM file of CA certificates), so that a git host, or a control plane,
//! whose certificate a private CA signed can be reached.
//!
//! Both TLS clients of the worker take their roots from `SSL_CERT_FILE` when it is set:
//! libgit2's OpenSSL reads it (and `SSL_CERT_DIR`) once, when libgit2 initialises TLS, and the
//! API client's rustls roots come from `rustls-native-certs`, which reads the same variable.
//! [`trust`] therefore writes one file, the system's CA file (where OpenSSL's defaults put it,
//! as `openssl-probe` finds it) followed by the bundle, and points `SSL_CERT_FILE` at it, before
//! either client starts. The system's CA directory stays in effect for OpenSSL.
//!
//! A bundle is checked when it is read ([`CaBundle::read`]): PEM with at least one certificate,
//! every certificate usable as a trust anchor, and nothing else in it (a private key pasted into
//! a bundle would otherwise travel into every scan environment).

use rustls::pki_types::pem::{self, PemObject, SectionKind};
use rustls::pki_types::CertificateDer;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

/// A checked CA bundle: its PEM text and its certificates.
#[derive(Clone)]
pub struct CaBundle {
    pem: Vec<u8>,
    certs: Vec<CertificateDer<'static>>,
}

impl fmt::Debug for CaBundle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CaBundle")
            .field("certificates", &self.certs.len())
            .finish()
    }
}

/// Why a CA bundle cannot be used. Messages name the file, never its content.
#[derive(Debug, thiserror::Error)]
pub enum CaBundleError {
    #[error("cannot read the CA bundle {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the CA bundle {path} is not valid PEM: {reason}")]
    NotPem { path: PathBuf, reason: String },
    #[error("the CA bundle {path} holds no certificate (PEM `CERTIFICATE` sections)")]
    Empty { path: PathBuf },
    #[error("the CA bundle {path} holds a {kind} section; only CA certificates belong in it")]
    NotACertificate { path: PathBuf, kind: String },
    #[error(
        "certificate {index} of the CA bundle {path} is not a usable CA certificate: {reason}"
    )]
    BadCertificate {
        path: PathBuf,
        index: usize,
        reason: String,
    },
    #[error("cannot write the worker's trust file in {dir}: {source}")]
    Write {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Any PEM section, to refuse what is not a certificate.
struct Section(SectionKind, Vec<u8>);

impl PemObject for Section {
    fn from_pem(kind: SectionKind, der: Vec<u8>) -> Option<Self> {
        Some(Section(kind, der))
    }
}

impl CaBundle {
    /// Reads and checks the PEM file at `path`.
    pub fn read(path: &Path) -> Result<CaBundle, CaBundleError> {
        let bytes = std::fs::read(path).map_err(|source| CaBundleError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        CaBundle::parse(path, bytes)
    }

    /// Checks PEM text; `path` only names it in errors.
    pub fn parse(path: &Path, pem: Vec<u8>) -> Result<CaBundle, CaBundleError> {
        let mut certs = Vec::new();
        for section in Section::pem_slice_iter(&pem) {
            let Section(kind, der) = section.map_err(|e| CaBundleError::NotPem {
                path: path.to_path_buf(),
                reason: pem_error(&e),
            })?;
            if kind != SectionKind::Certificate {
                return Err(CaBundleError::NotACertificate {
                    path: path.to_path_buf(),
                    kind: format!("{kind:?}"),
                });
            }
            certs.push(CertificateDer::from(der));
        }
        if certs.is_empty() {
            return Err(CaBundleError::Empty {
                path: path.to_path_buf(),
            });
        }
        let mut roots = rustls::RootCertStore::empty();
        for (i, cert) in certs.iter().enumerate() {
            roots
                .add(cert.clone())
                .map_err(|e| CaBundleError::BadCertificate {
                    path: path.to_path_buf(),
                    index: i + 1,
                    reason: e.to_string(),
                })?;
        }
        Ok(CaBundle { pem, certs })
    }

    /// The bundle as read: PEM, certificates only.
    pub fn pem(&self) -> &[u8] {
        &self.pem
    }

    /// Its certificates, DER.
    pub fn certificates(&self) -> &[CertificateDer<'static>] {
        &self.certs
    }
}

fn pem_error(e: &pem::Error) -> String {
    match e {
        pem::Error::Base64Decode(_) => "a section is not valid base64".to_owned(),
        pem::Error::MissingSectionEnd { .. } => "a section has no END line".to_owned(),
        pem::Error::IllegalSectionStart { .. } => "a BEGIN line is malformed".to_owned(),
        other => other.to_string(),
    }
}

/// The trust file [`trust`] wrote; deleted when dropped. Keep it for the life of the process.
#[derive(Debug)]
pub struct TrustFile(tempfile::NamedTempFile);

impl TrustFile {
    pub fn path(&self) -> &Path {
        self.0.path()
    }
}

/// Makes this process's TLS clients trust `bundle` besides the system's roots: writes the
/// system's CA file (where OpenSSL looks: `SSL_CERT_FILE` when already set, else the usual
/// system paths) followed by the bundle to a new file in `dir`, and sets `SSL_CERT_FILE` to it.
///
/// Call it first thing, before any TLS client (libgit2, the API client) exists and before the
/// process starts work on other threads: OpenSSL reads the variable once, and changing the
/// environment is only sound while nothing else reads it (git2 itself sets these variables the
/// same way, from `openssl-probe`, when it initialises).
pub fn trust(bundle: &CaBundle, dir: &Path) -> Result<TrustFile, CaBundleError> {
    let file = write_trust_file(bundle, dir, openssl_probe::probe().cert_file.as_deref())?;
    std::env::set_var("SSL_CERT_FILE", file.path());
    tracing::debug!(
        file = %file.path().display(),
        certificates = bundle.certificates().len(),
        "the CA bundle is trusted besides the system's roots"
    );
    Ok(file)
}

/// The trust file: `system`'s content (when given and readable), then the bundle.
fn write_trust_file(
    bundle: &CaBundle,
    dir: &Path,
    system: Option<&Path>,
) -> Result<TrustFile, CaBundleError> {
    let write_err = |source| CaBundleError::Write {
        dir: dir.to_path_buf(),
        source,
    };
    let mut file = tempfile::Builder::new()
        .prefix("picket-ca-")
        .suffix(".pem")
        .tempfile_in(dir)
        .map_err(write_err)?;
    if let Some(system) = system {
        match std::fs::read(system) {
            Ok(roots) => {
                file.write_all(&roots).map_err(write_err)?;
                file.write_all(b"\n").map_err(write_err)?;
            }
            Err(e) => tracing::warn!(
                file = %system.display(),
                error = %e,
                "the system's CA file cannot be read; trusting the CA bundle only"
            ),
        }
    }
    file.write_all(bundle.pem()).map_err(write_err)?;
    file.flush().map_err(write_err)?;
    Ok(TrustFile(file))
}

#[cfg(test)]
mod tests {
    use super::*;
    use picket_test_support::TestCa;

    fn parse(text: &str) -> Result<CaBundle, CaBundleError> {
        CaBundle::parse(Path::new("/etc/picket/ca.pem"), text.as_bytes().to_vec())
    }

    #[test]
    fn a_bundle_of_ca_certificates_with_comments_between_them_is_read() {
        let (a, b) = (
            TestCa::new("Company Root CA"),
            TestCa::new("Company Issuing CA"),
        );
        let text = format!(
            "# Company Root CA\n{}\n# Issuing\n{}",
            a.cert_pem(),
            b.cert_pem()
        );
        let bundle = parse(&text).unwrap();
        assert_eq!(bundle.certificates(), [a.cert_der(), b.cert_der()]);
        assert_eq!(bundle.pem(), text.as_bytes());
        assert_eq!(format!("{bundle:?}"), "CaBundle { certificates: 2 }");
    }

    #[test]
    fn bundles_that_are_not_ca_certificates_are_refused_by_name() {
        let empty = parse("# nothing here\n").unwrap_err();
        assert!(matches!(empty, CaBundleError::Empty { .. }), "{empty}");
        assert!(empty.to_string().contains("/etc/picket/ca.pem"), "{empty}");

        let ca = TestCa::new("Company CA");
        let with_key = format!(
            "{}-----BEGIN PRIVATE KEY-----\nQUJD\n-----END PRIVATE KEY-----\n",
            ca.cert_pem()
        );
        let err = parse(&with_key).unwrap_err();
        assert!(
            matches!(err, CaBundleError::NotACertificate { .. }),
            "{err}"
        );
        // The message names the kind of section, never its content.
        assert!(!err.to_string().contains("QUJD"), "{err}");

        let truncated = "-----BEGIN CERTIFICATE-----\nMIIB\n";
        let err = parse(truncated).unwrap_err();
        assert!(matches!(err, CaBundleError::NotPem { .. }), "{err}");

        let not_x509 = "-----BEGIN CERTIFICATE-----\nQUJDRA==\n-----END CERTIFICATE-----\n";
        let err = parse(not_x509).unwrap_err();
        assert!(
            matches!(err, CaBundleError::BadCertificate { index: 1, .. }),
            "{err}"
        );

        let err = CaBundle::read(Path::new("/nonexistent/picket-ca.pem")).unwrap_err();
        assert!(matches!(err, CaBundleError::Read { .. }));
        assert!(err.to_string().contains("/nonexistent/picket-ca.pem"));
    }

    #[test]
    fn the_trust_file_is_the_system_roots_then_the_bundle_and_goes_with_its_guard() {
        let dir = tempfile::tempdir().unwrap();
        let system = dir.path().join("system.pem");
        let roots = TestCa::new("Public Root").cert_pem();
        std::fs::write(&system, &roots).unwrap();
        let bundle = parse(&TestCa::new("Company CA").cert_pem()).unwrap();

        let file = write_trust_file(&bundle, dir.path(), Some(&system)).unwrap();
        let text = std::fs::read(file.path()).unwrap();
        let both = parse(std::str::from_utf8(&text).unwrap()).unwrap();
        assert_eq!(both.certificates().len(), 2);
        assert!(text.starts_with(roots.as_bytes()));
        assert!(text.ends_with(bundle.pem()));
        let path = file.path().to_path_buf();
        drop(file);
        assert!(!path.exists());

        // No readable system file: the bundle alone.
        let file = write_trust_file(&bundle, dir.path(), Some(&dir.path().join("none"))).unwrap();
        assert_eq!(std::fs::read(file.path()).unwrap(), bundle.pem());
    }
}
