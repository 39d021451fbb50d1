//! The web UI's pages against real PostgreSQL (one fresh database per test, `#[sqlx::test]`;
//! `DATABASE_URL` names a server where the user may create databases), through the router in
//! process: a browser-like client signs in with a token, carries the session cookie and the
//! CSRF token, and reads the HTML. Fixtures are written through picket-db, as the worker's
//! results upload writes them.

mod supply_chain;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use picket_core::protocol::{ReportedFinding, ScanResults, ScanTrail};
use picket_core::{OrgId, ProjectId, Provider, Role, ScanId, ScanState};
use picket_db::connections::{self, NewConnection};
use picket_db::crypto::CredentialCipher;
use picket_db::projects::{self, NewProject};
use picket_db::{orgs, queue, tokens, worker, Db};
use secrecy::ExposeSecret;
use sqlx::PgPool;
use std::time::Duration;
use tower::ServiceExt;

/// The UI (with the API merged in) of a fresh org `a`, and a browser signed in to it.
pub struct App {
    pub pool: PgPool,
    pub org: OrgId,
    router: Router,
    cookie: String,
    cipher: CredentialCipher,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("org", &self.org)
            .finish_non_exhaustive()
    }
}

/// An answer, as a browser sees it.
#[derive(Debug)]
pub struct Page {
    pub status: StatusCode,
    pub location: Option<String>,
    pub body: String,
}

impl Page {
    /// The CSRF token the page's forms carry.
    pub fn csrf(&self) -> String {
        const FIELD: &str = "name=\"_csrf\" value=\"";
        let at = self.body.find(FIELD).expect("a form with a CSRF token");
        let rest = &self.body[at + FIELD.len()..];
        rest[..rest.find('"').unwrap()].to_owned()
    }

    /// Fails the test, showing the page, unless it contains `text`.
    #[track_caller]
    pub fn has(&self, text: &str) -> &Self {
        assert!(
            self.body.contains(text),
            "the page lacks {text:?}:\n{}",
            self.body
        );
        self
    }

    /// Fails the test, showing the page, if it contains `text`.
    #[track_caller]
    pub fn lacks(&self, text: &str) -> &Self {
        assert!(
            !self.body.contains(text),
            "the page has {text:?}:\n{}",
            self.body
        );
        self
    }

    /// The page from `open` (a substring that starts an element) to the end of that element's
    /// `close` tag, so an assertion can be held to one section.
    #[track_caller]
    pub fn part(&self, open: &str, close: &str) -> Page {
        let start = self
            .body
            .find(open)
            .unwrap_or_else(|| panic!("the page lacks {open:?}:\n{}", self.body));
        let len = self.body[start..]
            .find(close)
            .map_or(self.body.len() - start, |e| e + close.len());
        Page {
            status: self.status,
            location: None,
            body: self.body[start..start + len].to_owned(),
        }
    }
}

impl App {
    /// Org `a`, a browser signed in with an admin token.
    pub async fn start(pool: PgPool) -> App {
        let org = orgs::create(&pool, "a", "Org A").await.expect("org");
        let cipher = CredentialCipher::from_hex(&CredentialCipher::generate_hex()).unwrap();
        let api = picket_api::router(
            picket_api::AppState::new(
                Db::from_pool(pool.clone()),
                CredentialCipher::from_hex(&CredentialCipher::generate_hex()).unwrap(),
            ),
            &picket_api::ApiConfig::default(),
        );
        let router = picket_web::router(
            api,
            Db::from_pool(pool.clone()),
            picket_web::WebConfig::default(),
        );
        let mut app = App {
            pool,
            org: org.id,
            router,
            cookie: String::new(),
            cipher,
        };
        app.sign_in(Role::Admin).await;
        app
    }

    /// Signs the browser in (again) with a new token of `role`.
    pub async fn sign_in(&mut self, role: Role) {
        let (_, token) = tokens::create(&self.pool, self.org, role.as_str(), role, None)
            .await
            .expect("token");
        self.cookie.clear();
        let page = self
            .post("/sign-in", &[("token", token.expose_secret())])
            .await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
        assert!(!self.cookie.is_empty(), "sign-in set no session cookie");
    }

    async fn send(&mut self, req: Request<Body>) -> Page {
        let resp = self
            .router
            .clone()
            .oneshot(req)
            .await
            .unwrap_or_else(|never| match never {});
        if let Some(c) = resp.headers().get(header::SET_COOKIE) {
            let pair = c.to_str().unwrap().split(';').next().unwrap().to_owned();
            if !pair.ends_with('=') {
                self.cookie = pair;
            }
        }
        let status = resp.status();
        let location = resp
            .headers()
            .get(header::LOCATION)
            .map(|v| v.to_str().unwrap().to_owned());
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        Page {
            status,
            location,
            body: String::from_utf8(bytes.to_vec()).expect("UTF-8 page"),
        }
    }

    pub async fn get(&mut self, path: &str) -> Page {
        let req = Request::get(path)
            .header(header::COOKIE, &self.cookie)
            .body(Body::empty())
            .unwrap();
        self.send(req).await
    }

    /// A form posted from this server's own page (`Sec-Fetch-Site: same-origin`).
    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let req = Request::post(path)
            .header(header::COOKIE, &self.cookie)
            .header("sec-fetch-site", "same-origin")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(serde_urlencoded::to_string(form).unwrap()))
            .unwrap();
        self.send(req).await
    }

    /// A project of a plain git connection; its initial full scan is queued.
    pub async fn project(&self, name: &str) -> (ProjectId, ScanId) {
        let conn = connections::create(
            &self.pool,
            &self.cipher,
            &NewConnection {
                org_id: self.org,
                provider: Provider::Git,
                name: format!("git-{name}"),
                base_url: "https://git.example".to_owned(),
                credentials: None,
                follow_installations: false,
            },
        )
        .await
        .expect("connection");
        let mut tx = self.pool.begin().await.unwrap();
        let added = projects::add_many(
            &mut tx,
            self.org,
            &[NewProject {
                connection_id: conn.id,
                provider_repo_id: name.to_owned(),
                full_name: name.to_owned(),
                clone_url: format!("https://git.example/{name}.git"),
                default_branch: "main".to_owned(),
            }],
            None,
            time::OffsetDateTime::now_utc(),
        )
        .await
        .expect("add project")
        .expect("project added");
        tx.commit().await.unwrap();
        (added[0].project.id, added[0].initial_scan.id)
    }

    /// Runs the queued scan `scan` as a worker would: claimed, running, then its results (these
    /// findings and this trail) uploaded, which stores them and ends it `succeeded`.
    pub async fn report(&self, scan: ScanId, findings: Vec<ReportedFinding>, trail: ScanTrail) {
        let claimed = queue::claim(&self.pool, "test-scheduler", Duration::from_secs(300))
            .await
            .unwrap()
            .expect("a claimable scan");
        assert_eq!(claimed.scan.id, scan);
        queue::advance_as(
            &self.pool,
            &claimed.lease,
            ScanState::Running,
            None,
            worker::WORKER_ACTOR,
        )
        .await
        .unwrap();
        let results = ScanResults {
            attempt: claimed.scan.attempt,
            commit_sha: "c0ffee".repeat(6) + "c0ff",
            merge_base_sha: None,
            rules_run: Vec::new(),
            deleted_paths: Vec::new(),
            unread_paths: Vec::new(),
            files_scanned: 3,
            findings,
            fixed_in_pr: Vec::new(),
            trail,
        };
        let digest = worker::results_digest(&results).unwrap();
        let mut conn = self.pool.acquire().await.unwrap();
        worker::record_results(&mut conn, &claimed.lease, &results, &digest)
            .await
            .expect("results recorded");
    }
}
