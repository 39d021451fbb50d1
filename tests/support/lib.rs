//! Test harness: the real API over real HTTP against a fresh PostgreSQL database.
//!
//! `TestApp::start(pool)` takes the per-test database that `#[sqlx::test]` hands out, creates org
//! `a` with an admin token the way `picket admin` does (picket-db `orgs::create` +
//! `tokens::create`), binds the router to 127.0.0.1:0 and serves it on a background task until the
//! `TestApp` is dropped. Everything the server logs is captured (see [`TestApp::logs`]) so tests
//! can assert that secrets never reach a log line.
//!
//! Requests go through [`Client`] (one bearer token each); answers come back as [`Resp`], whose
//! `expect`/`problem` helpers fail the test with the full body when the status is not the one
//! expected. Small builders create fixtures through the API itself:
//! `app.admin().connection("gh").create().await`, `app.admin().projects(conn).repo("acme/api")
//! .add().await`.
//!
//! [`k8s`] renders and validates Kubernetes objects offline with the pinned tools.

use picket_api::{ApiConfig, AppState};
use picket_core::OrgId;
use picket_core::Role;
use picket_db::crypto::CredentialCipher;
use picket_db::{orgs, tokens, Db};
use picket_engine::semgrep::SemgrepConfig;
use reqwest::header::{HeaderMap, AUTHORIZATION, CONTENT_TYPE};
use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};
use sqlx::PgPool;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

pub use serde_json;

pub mod k8s;
pub mod kube_api;

/// Log lines written by the server, shared with the capturing subscriber.
#[derive(Clone, Default)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self.0.lock() {
            Ok(mut v) => v.extend_from_slice(buf),
            // A test that panicked while logging poisons the lock; keep capturing anyway.
            Err(poisoned) => poisoned.into_inner().extend_from_slice(buf),
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogBuffer {
    type Writer = LogBuffer;
    fn make_writer(&'a self) -> LogBuffer {
        self.clone()
    }
}

/// `target/<profile>/picket`, next to this test's `deps/` directory.
pub fn picket_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's path");
    let path = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<test>")
        .join("picket");
    assert!(
        path.exists(),
        "{} is missing: run `cargo build -p picket-cli --bin picket` first (`make test` does)",
        path.display()
    );
    path
}

/// The pinned Semgrep that `make semgrep` installs (the tests' engine).
pub fn semgrep_binary() -> PathBuf {
    let path = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.venv/bin/semgrep"));
    assert!(
        path.exists(),
        "{} is missing: run `make semgrep` first",
        path.display()
    );
    path
}

/// Picket's rule pack in the source tree.
pub const RULES_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../crates/worker/rules");

/// A running API with its database and org `a`.
pub struct TestApp {
    pub base: String,
    pub pool: PgPool,
    pub cipher_key: SecretString,
    /// Org `a`, created at start.
    pub org_id: OrgId,
    admin: Client,
    http: reqwest::Client,
    logs: LogBuffer,
    shutdown: Option<oneshot::Sender<()>>,
    _log_guard: tracing::subscriber::DefaultGuard,
}

impl std::fmt::Debug for TestApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestApp")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

impl TestApp {
    /// Starts the API with default settings.
    pub async fn start(pool: PgPool) -> TestApp {
        Self::start_with(pool, ApiConfig::default()).await
    }

    pub async fn start_with(pool: PgPool, cfg: ApiConfig) -> TestApp {
        let logs = LogBuffer::default();
        // `#[sqlx::test]` runs each test on a current-thread runtime, so a thread-local default
        // subscriber sees every task of this test's server and nothing of other tests.
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(
                "debug,picket_api=trace,tower_http=trace",
            ))
            .with_writer(logs.clone())
            .with_ansi(false)
            .finish();
        let log_guard = tracing::subscriber::set_default(subscriber);

        let cipher_key = CredentialCipher::generate_hex();
        let cipher = CredentialCipher::from_hex(&cipher_key).expect("generated key is valid");
        let db = Db::from_pool(pool.clone());
        let org = orgs::create(&pool, "a", "Org A")
            .await
            .expect("create org a");
        let (_, token) = tokens::create(&pool, org.id, "bootstrap", Role::Admin, None)
            .await
            .expect("create admin token");

        let engine = SemgrepConfig::new(semgrep_binary(), PathBuf::from(RULES_DIR));
        let cipher = Arc::new(cipher);
        // Providers are reached at each connection's own base URL (a test's GitHub server).
        let providers = picket_vcs::Registry::new(
            Arc::new(picket_db::connections::CredentialStore::new(
                pool.clone(),
                cipher.clone(),
            )),
            picket_vcs::github::api::ClientOptions::new(picket_vcs::github::DEFAULT_API_URL),
        );
        let state = AppState::new(db, cipher)
            .with_rule_engine(engine)
            .with_providers(Arc::new(providers));
        let router = picket_web::router(
            picket_api::router(state, &cfg),
            Db::from_pool(pool.clone()),
            picket_web::WebConfig::default(),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let shutdown = async {
                let _ = rx.await;
            };
            if let Err(e) = picket_api::serve(listener, router, shutdown).await {
                panic!("server failed: {e}");
            }
        });
        let base = format!("http://{addr}");
        let http = reqwest::Client::new();
        let admin = Client {
            http: http.clone(),
            base: base.clone(),
            token: Some(token.expose_secret().to_owned()),
        };
        TestApp {
            base,
            pool,
            cipher_key,
            org_id: org.id,
            admin,
            http,
            logs,
            shutdown: Some(tx),
            _log_guard: log_guard,
        }
    }

    /// Org `a`'s bootstrap admin.
    pub fn admin(&self) -> Client {
        self.admin.clone()
    }

    /// A client presenting `token`.
    pub fn client(&self, token: &str) -> Client {
        Client {
            http: self.http.clone(),
            base: self.base.clone(),
            token: Some(token.to_owned()),
        }
    }

    /// A client without a token.
    pub fn anonymous(&self) -> Client {
        Client {
            http: self.http.clone(),
            base: self.base.clone(),
            token: None,
        }
    }

    /// A new member token of org `a`, created through the API.
    pub async fn member(&self) -> Client {
        let body = self
            .admin()
            .post(
                "/api/v1/tokens",
                json!({"name": "member", "role": "member"}),
            )
            .await
            .expect(201);
        self.client(body["token"].as_str().expect("token in response"))
    }

    /// Another org with its own admin token.
    pub async fn org(&self, slug: &str) -> OtherOrg {
        let org = orgs::create(&self.pool, slug, &format!("Org {slug}"))
            .await
            .expect("create org");
        let (_, token) = tokens::create(&self.pool, org.id, "admin", Role::Admin, None)
            .await
            .expect("create token");
        OtherOrg {
            id: org.id,
            admin: self.client(token.expose_secret()),
        }
    }

    /// The cipher the server seals credentials with.
    pub fn cipher(&self) -> CredentialCipher {
        CredentialCipher::from_hex(&self.cipher_key).expect("valid key")
    }

    /// Everything logged so far.
    pub fn logs(&self) -> String {
        let bytes = match self.logs.0.lock() {
            Ok(v) => v.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// A GitHub connection `name` for the test server's App `gh`, whose webhook secret is
    /// `webhook_secret`, created by the admin; the API's answer (201).
    pub async fn github_connection(
        &self,
        name: &str,
        server: &picket_test_support::github::GitHubServer,
        gh: &picket_test_support::github::TestApp,
        webhook_secret: &str,
    ) -> Value {
        self.admin()
            .post(
                "/api/v1/connections",
                json!({
                    "provider": "github", "name": name, "base_url": server.api_url(),
                    "credentials": {"app_id": gh.id, "private_key": gh.private_key_pem,
                                    "webhook_secret": webhook_secret},
                }),
            )
            .await
            .expect(201)
    }

    /// Row count of a table, to prove a refused request wrote nothing.
    pub async fn count(&self, table: &str) -> i64 {
        sqlx::query_scalar::<_, i64>(&format!("SELECT count(*) FROM {table}"))
            .fetch_one(&self.pool)
            .await
            .expect("count")
    }

    /// Row counts of every table the API writes.
    pub async fn counts(&self) -> Vec<(&'static str, i64)> {
        let mut out = Vec::new();
        for t in [
            "orgs",
            "api_tokens",
            "vcs_connections",
            "projects",
            "scans",
            "scan_events",
            "findings",
            "policies",
            "policy_rules",
            "rule_packs",
            "rule_pack_rules",
        ] {
            out.push((t, self.count(t).await));
        }
        out
    }
}

/// An org other than `a`.
#[derive(Debug)]
pub struct OtherOrg {
    pub id: OrgId,
    pub admin: Client,
}

/// An HTTP client with one bearer token.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

// Test failures print clients; the token stays out of them like everywhere else.
impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .field("has_token", &self.token.is_some())
            .finish()
    }
}

impl Client {
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.send(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Resp {
        self.send(Method::POST, path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: Value) -> Resp {
        self.send(Method::PUT, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Resp {
        self.send(Method::PATCH, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Resp {
        self.send(Method::DELETE, path, None).await
    }

    pub async fn send(&self, method: Method, path: &str, body: Option<Value>) -> Resp {
        let bytes = body.map(|b| serde_json::to_vec(&b).expect("serialize body"));
        self.raw(method, path, Some("application/json"), bytes)
            .await
    }

    /// A request with exactly these bytes and content type.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> Resp {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            req = req.header(AUTHORIZATION, format!("Bearer {t}"));
        }
        if let Some(b) = body {
            if let Some(ct) = content_type {
                req = req.header(CONTENT_TYPE, ct);
            }
            req = req.body(b);
        }
        let resp = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.expect("read body");
        Resp {
            method,
            path: path.to_owned(),
            status,
            headers,
            text,
        }
    }

    /// Builds a connection to create.
    pub fn connection(&self, name: &str) -> ConnectionBuilder {
        ConnectionBuilder {
            client: self.clone(),
            body: json!({"provider": "github", "name": name, "base_url": "https://api.github.com"}),
        }
    }

    /// Builds a batch of projects to add on `connection_id`.
    pub fn projects(&self, connection_id: &str) -> ProjectsBuilder {
        ProjectsBuilder {
            client: self.clone(),
            connection_id: connection_id.to_owned(),
            items: Vec::new(),
        }
    }

    /// One connection and one project `name` on it; returns (connection id, project JSON).
    pub async fn seed_project(&self, name: &str) -> (String, Value) {
        let conn = self.connection(&format!("conn-{name}")).create().await;
        let id = conn["id"].as_str().expect("connection id").to_owned();
        let mut projects = self.projects(&id).repo(name).add().await;
        (id, projects.remove(0))
    }
}

/// A response, read whole.
#[derive(Debug)]
pub struct Resp {
    pub method: Method,
    pub path: String,
    pub status: u16,
    pub headers: HeaderMap,
    pub text: String,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| {
            panic!(
                "{} {}: body is not JSON ({e}): {}",
                self.method, self.path, self.text
            )
        })
    }

    /// The JSON body, after checking the status.
    #[track_caller]
    pub fn expect(&self, status: u16) -> Value {
        assert_eq!(
            self.status, status,
            "{} {} answered {} (expected {status}): {}",
            self.method, self.path, self.status, self.text
        );
        if self.text.is_empty() {
            Value::Null
        } else {
            self.json()
        }
    }

    /// The problem body, after checking status, media type and code.
    #[track_caller]
    pub fn problem(&self, status: u16, code: &str) -> Value {
        let body = self.expect(status);
        let ct = self
            .headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        assert_eq!(
            ct, "application/problem+json",
            "{} {}: {}",
            self.method, self.path, self.text
        );
        assert_eq!(
            body["code"], code,
            "{} {}: {}",
            self.method, self.path, self.text
        );
        assert_eq!(body["status"], status);
        assert_eq!(body["type"], format!("urn:picket:problem:{code}"));
        assert!(
            body["title"].is_string() && body["detail"].is_string(),
            "{}",
            self.text
        );
        body
    }

    /// The `field` of each entry of a problem's `errors`.
    pub fn error_fields(&self) -> Vec<String> {
        self.json()["errors"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| e["field"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// A connection about to be created.
#[derive(Debug)]
pub struct ConnectionBuilder {
    client: Client,
    body: Value,
}

impl ConnectionBuilder {
    pub fn provider(mut self, p: &str) -> Self {
        self.body["provider"] = json!(p);
        self
    }

    pub fn credentials(mut self, c: Value) -> Self {
        self.body["credentials"] = c;
        self
    }

    /// Creates it; panics unless 201. Returns the connection JSON.
    pub async fn create(self) -> Value {
        self.client
            .post("/api/v1/connections", self.body)
            .await
            .expect(201)
    }
}

/// Projects about to be added in one request.
#[derive(Debug)]
pub struct ProjectsBuilder {
    client: Client,
    connection_id: String,
    items: Vec<Value>,
}

impl ProjectsBuilder {
    /// Adds repository `full_name` (its provider id is the name too, its branch `main`).
    pub fn repo(mut self, full_name: &str) -> Self {
        self.items.push(json!({
            "connection_id": self.connection_id,
            "provider_repo_id": full_name,
            "full_name": full_name,
            "clone_url": format!("https://github.com/{full_name}.git"),
            "default_branch": "main",
        }));
        self
    }

    /// Adds `n` repositories `{prefix}-{i}`.
    pub fn repos(mut self, prefix: &str, n: usize) -> Self {
        for i in 0..n {
            self = self.repo(&format!("{prefix}-{i:05}"));
        }
        self
    }

    pub fn body(&self) -> Value {
        json!({ "projects": self.items })
    }

    /// Sends the request as is.
    pub async fn send(self) -> Resp {
        let body = self.body();
        self.client.post("/api/v1/projects", body).await
    }

    /// Adds them; panics unless 201. Returns the projects in request order.
    pub async fn add(self) -> Vec<Value> {
        let body = self.send().await.expect(201);
        body["projects"].as_array().expect("projects array").clone()
    }
}

/// `id` of a JSON object, as a string.
pub fn id_of(v: &Value) -> String {
    v["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id in {v}"))
        .to_owned()
}
