//! `picket worker`: fetch the spec with the per-scan token, run the scan, report the outcome.

use crate::client::{ApiClient, ClientError};
use crate::clone::Credentials;
use crate::feedback;
use crate::scan::{self, WorkerConfig};
use picket_core::protocol::{ScanFailure, WorkerProgress};
use secrecy::SecretString;

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The scan failed and the control plane was told so; the process exits non-zero.
    #[error("the scan failed ({code}): {message}")]
    ScanFailed { code: &'static str, message: String },
}

/// Runs the attempt the token belongs to, from spec to results. With `log`, the worker's own log
/// lines go to the scan's log while it runs (sent before the results, which end the scan).
pub async fn run(
    api_url: &str,
    token: SecretString,
    cfg: &WorkerConfig,
    log: Option<crate::scanlog::ScanLog>,
) -> Result<(), WorkerError> {
    let client = ApiClient::new(api_url, token)?;
    let spec = client.spec().await?;
    let shipper = log.map(|l| l.ship(client.clone(), spec.attempt));
    tracing::info!(scan = %spec.scan_id, attempt = spec.attempt, kind = %spec.kind, repo = %spec.full_name, "scan started");
    // Running from here: the credential is minted by the provider (it may take a while), and
    // the scan may be cancelled meanwhile like any running scan.
    client.progress(WorkerProgress::Running).await?;
    let credentials = client.credential().await?.map(|c| Credentials {
        username: c.username,
        token: SecretString::from(c.token),
    });
    match scan::run_for_feedback(&spec, credentials.as_ref(), cfg, &client).await {
        Ok((results, diff_lines)) => {
            client.progress(WorkerProgress::Reporting).await?;
            if spec.pr_number.is_some() {
                let input = feedback::input_of(&spec, &results, diff_lines);
                let outcome = feedback::post(&client, &spec, credentials.as_ref(), input).await?;
                tracing::info!(scan = %spec.scan_id, ?outcome, "PR feedback");
            }
            let n = results.findings.len();
            tracing::info!(findings = n, "uploading the results");
            if let Some(s) = shipper {
                s.finish().await;
            }
            client.results(&results).await?;
            tracing::info!(scan = %spec.scan_id, findings = n, "results uploaded");
            Ok(())
        }
        Err(failed) => {
            let e = &failed.error;
            let failure = ScanFailure {
                attempt: spec.attempt,
                code: e.code().to_owned(),
                message: e.to_string(),
                step: failed.step,
                trail: failed.trail,
            };
            tracing::error!(code = e.code(), error = %e, "the scan failed");
            if let Some(s) = shipper {
                s.finish().await;
            }
            client.failure(&failure).await?;
            Err(WorkerError::ScanFailed {
                code: e.code(),
                message: e.to_string(),
            })
        }
    }
}
