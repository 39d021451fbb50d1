//! What the GitHub-facing loops' tests share: a GitHub App on the test server, and an org of a
//! fresh database with a connection holding the App's credentials.

use picket_core::{ConnectionId, OrgId, Provider, ScanId};
use picket_db::connections::{self, CredentialStore, NewConnection};
use picket_db::crypto::CredentialCipher;
use picket_db::webhooks::{self, PullRequestHead, PullRequestOutcome};
use picket_test_support::github::{GitHubServer, TestApp};
use picket_vcs::github::api::ClientOptions;
use picket_vcs::github::AppCredentials;
use picket_vcs::Registry;
use secrecy::SecretString;
use sqlx::PgPool;
use std::sync::Arc;

pub struct AppConnection {
    pub server: GitHubServer,
    pub app: TestApp,
    pub org: OrgId,
    pub connection: ConnectionId,
    /// The providers' clients, reaching the test server, with the connection's credentials.
    pub registry: Arc<Registry>,
}

/// The App `picket` on a new test server; org `acme` with a GitHub connection for the App.
pub async fn app_connection(pool: &PgPool) -> AppConnection {
    let server = GitHubServer::start().await;
    let app = server.add_app("picket");
    let org = OrgId::new();
    sqlx::query("INSERT INTO orgs (id, slug, name) VALUES ($1, 'acme', 'Acme')")
        .bind(org.0)
        .execute(pool)
        .await
        .unwrap();
    let cipher = Arc::new(CredentialCipher::from_hex(&CredentialCipher::generate_hex()).unwrap());
    let credentials = AppCredentials {
        app_id: app.id,
        private_key: SecretString::from(app.private_key_pem.clone()),
        webhook_secret: SecretString::from(app.webhook_secret.clone()),
        previous_webhook_secret: None,
        previous_valid_until: None,
    };
    let connection = connections::create(
        pool,
        &cipher,
        &NewConnection {
            org_id: org,
            provider: Provider::Github,
            name: "acme".into(),
            base_url: server.api_url(),
            credentials: Some(SecretString::from(
                serde_json::to_string(&credentials).unwrap(),
            )),
            follow_installations: false,
        },
    )
    .await
    .unwrap()
    .id;
    let registry = Arc::new(Registry::new(
        Arc::new(CredentialStore::new(pool.clone(), cipher)),
        ClientOptions::new(server.api_url()),
    ));
    AppConnection {
        server,
        app,
        org,
        connection,
        registry,
    }
}

/// Queues the diff scan of PR `number`'s head `head` of repository `repo_id`, as a webhook about
/// it would (a non-draft PR on `main`); the scan queued.
pub async fn queue_head(
    pool: &PgPool,
    connection: ConnectionId,
    repo_id: u64,
    installation: u64,
    number: i32,
    head: &str,
) -> ScanId {
    let mut tx = pool.begin().await.unwrap();
    let (repo_id, installation) = (repo_id.to_string(), installation.to_string());
    let outcome = webhooks::queue_pull_request(
        &mut tx,
        &PullRequestHead {
            connection_id: connection,
            repo_id: &repo_id,
            installation_id: Some(&installation),
            number,
            git_ref: &format!("refs/pull/{number}/head"),
            head_sha: head,
            base_ref: "main",
            base_sha: None,
            draft: false,
            updated_at: None,
        },
        "test",
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    match outcome {
        PullRequestOutcome::Queued { scan, .. } => scan,
        other => panic!("{other:?}"),
    }
}
