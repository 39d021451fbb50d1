//! The web UI over real HTTP, without a browser (the browser's own test is `browser`): sessions
//! and sign-in, CSRF on every state-changing page route, authorization through the REST API,
//! bulk scan of "all matching", live rows over server-sent events, and the vendored assets.

use picket_core::TokenId;
use picket_tests::{id_of, TestApp};
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::StatusCode;
use serde_json::json;
use sqlx::PgPool;
use std::time::Duration;

/// A browser-like client: its own cookie, no redirects followed, the CSRF token of its last page.
struct Browser {
    http: reqwest::Client,
    base: String,
    cookie: Option<String>,
}

struct Page {
    status: StatusCode,
    location: Option<String>,
    set_cookie: Option<String>,
    body: String,
}

impl Page {
    /// The CSRF token the page's forms carry.
    fn csrf(&self) -> String {
        let at = self
            .body
            .find("name=\"_csrf\" value=\"")
            .expect("a form with a CSRF token");
        let rest = &self.body[at + "name=\"_csrf\" value=\"".len()..];
        rest[..rest.find('"').unwrap()].to_owned()
    }
}

impl Browser {
    fn new(app: &TestApp) -> Browser {
        Browser {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: app.base.clone(),
            cookie: None,
        }
    }

    async fn send(&mut self, req: reqwest::RequestBuilder) -> Page {
        let req = match &self.cookie {
            Some(c) => req.header(COOKIE, c),
            None => req,
        };
        let resp = req.send().await.expect("request");
        let set_cookie = resp
            .headers()
            .get(SET_COOKIE)
            .map(|v| v.to_str().unwrap().to_owned());
        if let Some(sc) = &set_cookie {
            let pair = sc.split(';').next().unwrap();
            self.cookie = (!pair.ends_with('=')).then(|| pair.to_owned());
        }
        Page {
            status: resp.status(),
            location: resp
                .headers()
                .get(LOCATION)
                .map(|v| v.to_str().unwrap().to_owned()),
            set_cookie,
            body: resp.text().await.unwrap(),
        }
    }

    async fn get(&mut self, path: &str) -> Page {
        let req = self.http.get(format!("{}{path}", self.base));
        self.send(req).await
    }

    /// A form post from this origin's page (the browser sends `Sec-Fetch-Site: same-origin`).
    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let req = self
            .http
            .post(format!("{}{path}", self.base))
            .header("sec-fetch-site", "same-origin")
            .form(form);
        self.send(req).await
    }

    async fn sign_in(&mut self, token: &str) -> Page {
        let page = self
            .post("/sign-in", &[("token", token), ("next", "/projects")])
            .await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
        page
    }
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn a_token_opens_a_session_that_sign_out_ends(pool: PgPool) {
    let app = TestApp::start(pool.clone()).await;
    let admin = app.admin();
    let conn = id_of(&admin.connection("git").provider("git").create().await);
    admin.projects(&conn).repo("team/web").add().await;
    let mut b = Browser::new(&app);

    let page = b.get("/projects?q=web").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(
        page.location.as_deref(),
        Some("/sign-in?next=%2Fprojects%3Fq%3Dweb")
    );

    let refused = b
        .post(
            "/sign-in",
            &[("token", "pkt_0000000000000000000000000000000000000000000")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert!(refused.body.contains("unknown, revoked or expired"));
    assert!(b.cookie.is_none());

    let signed = b.sign_in(admin.token().unwrap()).await;
    assert_eq!(signed.location.as_deref(), Some("/projects"));
    let cookie = signed.set_cookie.unwrap();
    assert!(
        cookie.starts_with("__Host-picket_session=pkw_")
            && cookie.contains("; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=43200"),
        "{cookie}"
    );
    assert_eq!(app.count("web_sessions").await, 1);
    // Only the id's hash is stored.
    let id = b.cookie.clone().unwrap();
    let id = id.split_once('=').unwrap().1;
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM web_sessions WHERE id_sha256 = $1")
        .bind(picket_db::sessions::hash(id).to_vec())
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(stored, 1);

    let page = b.get("/projects").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("team/web"));
    assert!(page
        .body
        .contains("Signed in as <strong>bootstrap</strong> (admin)"));
    let csrf = page.csrf();

    let out = b.post("/sign-out", &[("_csrf", &csrf)]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert!(out.set_cookie.unwrap().contains("Max-Age=0"));
    assert_eq!(app.count("web_sessions").await, 0);
    // The old cookie no longer opens pages.
    b.cookie = Some(format!("__Host-picket_session={id}"));
    let page = b.get("/projects").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert!(page.location.unwrap().contains("ended=1"));
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn revoking_a_token_ends_the_sessions_opened_with_it(pool: PgPool) {
    let app = TestApp::start(pool).await;
    let admin = app.admin();
    let created = admin
        .post("/api/v1/tokens", json!({"name": "alice", "role": "member"}))
        .await
        .expect(201);
    let mut b = Browser::new(&app);
    b.sign_in(created["token"].as_str().unwrap()).await;
    assert_eq!(b.get("/projects").await.status, StatusCode::OK);

    admin
        .delete(&format!("/api/v1/tokens/{}", id_of(&created)))
        .await
        .expect(204);
    let page = b.get("/projects").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    let to = page.location.unwrap();
    assert!(
        to.starts_with("/sign-in?") && to.contains("ended=1"),
        "{to}"
    );
    let sign_in = b.get(&to).await;
    assert!(sign_in.body.contains("Your session has ended"));
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn a_sign_in_link_opens_one_session_once(pool: PgPool) {
    let app = TestApp::start(pool.clone()).await;
    let token_id: uuid::Uuid =
        sqlx::query_scalar("SELECT id FROM api_tokens WHERE name = 'bootstrap'")
            .fetch_one(&pool)
            .await
            .unwrap();
    let code = picket_db::sessions::create_sign_in_link(
        &pool,
        TokenId(token_id),
        Duration::from_secs(900),
    )
    .await
    .unwrap();
    let code = secrecy::ExposeSecret::expose_secret(&code).to_owned();
    let mut b = Browser::new(&app);
    // Opening the link changes nothing: a preview or prefetch cannot use it up.
    let page = b.get(&format!("/sign-in/link?code={code}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(b.cookie.is_none());
    let used = b.post("/sign-in/link", &[("code", &code)]).await;
    assert_eq!(used.status, StatusCode::SEE_OTHER);
    assert!(b.cookie.is_some());
    assert_eq!(b.get("/projects").await.status, StatusCode::OK);

    let mut other = Browser::new(&app);
    let again = other.post("/sign-in/link", &[("code", &code)]).await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED);
    assert!(again.body.contains("not valid"));
    assert!(other.cookie.is_none());
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn every_state_changing_page_refuses_a_foreign_origin_or_a_missing_token(pool: PgPool) {
    let app = TestApp::start(pool).await;
    let admin = app.admin();
    let conn = id_of(&admin.connection("git").provider("git").create().await);
    let added = admin.projects(&conn).repo("team/web").add().await;
    let project = id_of(&added[0]);
    let scan = added[0]["last_scan"]["id"].as_str().unwrap().to_owned();
    let mut b = Browser::new(&app);
    b.sign_in(admin.token().unwrap()).await;
    let csrf = b.get("/projects").await.csrf();
    let before = app.counts().await;

    let routes = [
        "/projects/scan".to_owned(),
        "/projects".to_owned(),
        "/projects/repositories/add".to_owned(),
        "/projects/repositories/refresh".to_owned(),
        format!("/projects/{project}/settings"),
        format!("/scans/{scan}/cancel"),
        format!("/scans/{scan}/retry"),
        "/sign-out".to_owned(),
    ];
    let form = |csrf: Option<&str>| {
        let mut f = vec![
            ("project".to_owned(), project.clone()),
            ("connection_id".to_owned(), conn.clone()),
            ("full_name".to_owned(), "team/other".to_owned()),
            (
                "clone_url".to_owned(),
                "https://git.example/other.git".to_owned(),
            ),
        ];
        if let Some(c) = csrf {
            f.push(("_csrf".to_owned(), c.to_owned()));
        }
        f
    };
    for route in &routes {
        let url = format!("{}{route}", app.base);
        let cookie = b.cookie.clone().unwrap();
        // The session's cookie, from this origin, without the token.
        let resp = b
            .http
            .post(&url)
            .header(COOKIE, &cookie)
            .header("sec-fetch-site", "same-origin")
            .form(&form(None))
            .send()
            .await
            .unwrap();
        assert_eq!(
            resp.status(),
            StatusCode::FORBIDDEN,
            "{route} without token"
        );
        // A wrong token.
        let resp = b
            .http
            .post(&url)
            .header(COOKIE, &cookie)
            .header("x-csrf-token", "not-the-token")
            .form(&form(None))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{route} wrong token");
        // The token, from another site: by fetch metadata, and by Origin alone.
        let resp = b
            .http
            .post(&url)
            .header(COOKIE, &cookie)
            .header("sec-fetch-site", "cross-site")
            .form(&form(Some(&csrf)))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{route} cross-site");
        let resp = b
            .http
            .post(&url)
            .header(COOKIE, &cookie)
            .header("origin", "http://evil.test")
            .form(&form(Some(&csrf)))
            .send()
            .await
            .unwrap();
        assert_eq!(
            resp.status(),
            StatusCode::FORBIDDEN,
            "{route} foreign origin"
        );
    }
    assert_eq!(
        app.counts().await,
        before,
        "a refused request changed nothing"
    );
    // The header works as well as the field (htmx sends it).
    let resp = b
        .http
        .post(format!("{}/projects/scan", app.base))
        .header(COOKIE, b.cookie.clone().unwrap())
        .header("x-csrf-token", &csrf)
        .header("origin", app.base.as_str())
        .form(&[("project", project.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn a_members_session_is_refused_what_the_api_refuses_a_member(pool: PgPool) {
    let app = TestApp::start(pool.clone()).await;
    let admin = app.admin();
    let conn = id_of(&admin.connection("git").provider("git").create().await);
    let added = admin.projects(&conn).repo("team/web").add().await;
    let project = id_of(&added[0]);
    let member = app.member().await;
    let mut b = Browser::new(&app);
    b.sign_in(member.token().unwrap()).await;
    let csrf = b.get("/projects").await.csrf();

    // Changing settings is an admin's: the API's 403 is the page's.
    let page = b
        .post(
            &format!("/projects/{project}/settings"),
            &[("_csrf", &csrf), ("diff_scans", "on")],
        )
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(page.body.contains("may not change project settings"));
    let full: bool = sqlx::query_scalar("SELECT full_scans_enabled FROM projects")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(full, "unchanged");
    let page = b
        .post(
            "/projects",
            &[
                ("_csrf", &csrf),
                ("connection_id", &conn),
                ("full_name", "team/new"),
                ("clone_url", "https://git.example/new.git"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert_eq!(app.count("projects").await, 1);

    // Scanning is anyone's, as on the API.
    let page = b
        .post("/projects/scan", &[("_csrf", &csrf), ("project", &project)])
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn scanning_all_matching_acts_on_the_servers_query(pool: PgPool) {
    let app = TestApp::start(pool.clone()).await;
    let admin = app.admin();
    let conn = id_of(&admin.connection("git").provider("git").create().await);
    let added = admin
        .projects(&conn)
        .repo("team/web-a")
        .repo("team/web-b")
        .repo("team/web-off")
        .repo("team/api")
        .add()
        .await;
    // Let the initial scans end, so that a bulk scan queues new ones.
    sqlx::query("UPDATE scans SET state = 'cancelled', finished_at = now()")
        .execute(&pool)
        .await
        .unwrap();
    admin
        .patch(
            &format!("/api/v1/projects/{}", id_of(&added[2])),
            json!({"diff_scans_enabled": true, "full_scans_enabled": false}),
        )
        .await
        .expect(200);
    let mut b = Browser::new(&app);
    b.sign_in(admin.token().unwrap()).await;
    let page = b.get("/projects?q=web").await;
    assert!(
        page.body.contains("All 3 matching"),
        "the page counts the query"
    );
    let csrf = page.csrf();

    // No id is posted: the server resolves the filter.
    let done = b
        .post(
            "/projects/scan",
            &[
                ("_csrf", &csrf),
                ("all", "1"),
                ("tab", "scanning"),
                ("q", "web"),
            ],
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    assert_eq!(
        done.location.as_deref(),
        Some("/projects?q=web&queued=2&skipped=1")
    );
    let queued: Vec<String> = sqlx::query_scalar(
        "SELECT p.full_name FROM scans s JOIN projects p ON p.id = s.project_id \
         WHERE s.state = 'queued' ORDER BY 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(queued, ["team/web-a", "team/web-b"]);
    let page = b.get(done.location.as_deref().unwrap()).await;
    assert!(page
        .body
        .contains("Queued 2 full scans. 1 matching project was skipped"));

    // Nothing selected: said plainly, nothing queued.
    let none = b.post("/projects/scan", &[("_csrf", &csrf)]).await;
    assert_eq!(none.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(none.body.contains("Select at least one project"));

    // The API takes the same filter.
    let res = admin
        .post("/api/v1/scans", json!({"matching": {"name": "API"}}))
        .await
        .expect(200);
    assert_eq!(res["scans"].as_array().unwrap().len(), 1);
    assert_eq!(res["skipped"], 0);
    admin
        .post(
            "/api/v1/scans",
            json!({"matching": {}, "project_ids": [id_of(&added[0])]}),
        )
        .await
        .problem(422, "invalid_body");
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn a_live_row_follows_its_scan_without_a_reload(pool: PgPool) {
    let app = TestApp::start(pool.clone()).await;
    let admin = app.admin();
    let conn = id_of(&admin.connection("git").provider("git").create().await);
    let added = admin.projects(&conn).repo("team/web").add().await;
    let project = id_of(&added[0]);
    let scan = added[0]["last_scan"]["id"].as_str().unwrap().to_owned();
    let mut b = Browser::new(&app);
    b.sign_in(admin.token().unwrap()).await;
    let page = b.get("/projects").await;
    assert!(page
        .body
        .contains(&format!("sse-connect=\"/events/projects?ids={project}\"")));

    let mut stream = b
        .http
        .get(format!("{}/events/projects?ids={project}", app.base))
        .header(COOKIE, b.cookie.clone().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(
        stream.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    // Give the stream its first look, then move the scan as a scheduler would.
    tokio::time::sleep(Duration::from_millis(500)).await;
    admin
        .post(&format!("/api/v1/scans/{scan}/cancel"), json!({}))
        .await
        .expect(200);
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !seen.contains("state cancelled") {
        let chunk = tokio::time::timeout_at(deadline, stream.chunk())
            .await
            .expect("a live update within 10 s")
            .unwrap()
            .expect("the stream stays open");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(
        seen.contains(&format!("event: project-{project}")),
        "{seen}"
    );
    assert!(seen.contains(&format!("<tr id=\"project-{project}\"")));
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn pages_load_the_vendored_htmx_with_its_integrity_and_a_favicon(pool: PgPool) {
    let app = TestApp::start(pool).await;
    let mut b = Browser::new(&app);
    let page = b.get("/sign-in").await;
    assert_eq!(page.status, StatusCode::OK);
    let npm = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("browser/node_modules/htmx.org/dist/htmx.min.js");
    let npm = std::fs::read(&npm).unwrap_or_else(|_| {
        panic!(
            "{} is missing: run `make browser-tools` (`make test` does)",
            npm.display()
        )
    });
    let served = b
        .http
        .get(format!("{}/static/htmx-2.0.11.min.js", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(served.status(), StatusCode::OK);
    assert!(served.headers()["cache-control"]
        .to_str()
        .unwrap()
        .contains("immutable"));
    let served = served.bytes().await.unwrap();
    assert_eq!(
        served.as_ref(),
        npm.as_slice(),
        "the vendored htmx is npm's 2.0.11"
    );
    use base64::Engine;
    use sha2::Digest;
    let sri = format!(
        "sha384-{}",
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha384::digest(&npm))
    );
    assert!(
        page.body.contains(&format!(
            "src=\"/static/htmx-2.0.11.min.js\" integrity=\"{sri}\""
        )),
        "the page loads htmx with its integrity hash"
    );
    let favicon = b
        .http
        .get(format!("{}/favicon.ico", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(favicon.status(), StatusCode::OK);
    let csp = b
        .http
        .get(format!("{}/sign-in", app.base))
        .send()
        .await
        .unwrap();
    assert!(csp.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("script-src 'self'"));
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn an_azure_devops_connection_added_from_the_page_shows_its_password_once(pool: PgPool) {
    const PAT: &str = "azdopat0123456789abcdefghijklmnopqrstuvwxyz0123";
    let app = TestApp::start(pool).await;
    let mut b = Browser::new(&app);
    b.sign_in(app.admin().token().unwrap()).await;
    let page = b.get("/connections").await;
    assert!(page.body.contains("Connect Azure DevOps") && page.body.contains("Connect Bitbucket"));
    let csrf = page.csrf();
    // A refusal names the field on the list page, and keeps nothing.
    let refused = b
        .post(
            "/connections",
            &[
                ("_csrf", &csrf),
                ("kind", "azure_devops"),
                ("name", "azure"),
                ("base_url", "https://example.test"),
                ("project", "Platform"),
                ("pat", PAT),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(!refused.body.contains(PAT));
    let added = b
        .post(
            "/connections",
            &[
                ("_csrf", &csrf),
                ("kind", "azure_devops"),
                ("name", "azure"),
                ("base_url", "https://dev.azure.com/acme"),
                ("project", "Platform"),
                ("pat", PAT),
            ],
        )
        .await;
    // Not a redirect: the page the redirect lands on could not show the password.
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.body);
    assert!(added.body.contains("shown once"));
    let at = added.body.find("id=\"webhook-password\">").unwrap();
    let rest = &added.body[at + "id=\"webhook-password\">".len()..];
    let password = &rest[..rest.find('<').unwrap()];
    assert_eq!(password.len(), 43, "{}", added.body);
    assert!(added.body.contains("/webhooks/azure_devops/"));
    assert!(!added.body.contains(PAT));
    // Never again.
    let list = b.get("/connections").await;
    assert!(list.body.contains("azure") && !list.body.contains(password));
    assert!(!app.logs().contains(password) && !app.logs().contains(PAT));
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn a_connections_repositories_are_added_from_its_page(pool: PgPool) {
    use picket_test_support::github::GitHubServer;
    let server = GitHubServer::start().await;
    let gh = server.add_app("picket-web");
    let acme = server.add_installation(gh.id, "acme");
    let mut ids = Vec::new();
    for name in ["acme/api", "acme/web", "acme/docs"] {
        ids.push(server.add_repo(
            acme,
            name,
            "main",
            &format!("https://github.invalid/{name}.git"),
        ));
    }
    let app = TestApp::start(pool.clone()).await;
    let mut b = Browser::new(&app);
    b.sign_in(app.admin().token().unwrap()).await;
    let page = b.get("/connections").await;
    assert!(page.body.contains("No connection yet."));
    let csrf = page.csrf();

    // An App by its credentials, from the form.
    let added = b
        .post(
            "/connections",
            &[
                ("_csrf", &csrf),
                ("kind", "github"),
                ("name", "acme"),
                ("app_id", &gh.id.to_string()),
                ("private_key", &gh.private_key_pem),
                ("webhook_secret", &gh.webhook_secret),
                ("base_url", &server.api_url()),
            ],
        )
        .await;
    assert_eq!(added.status, StatusCode::SEE_OTHER, "{}", added.body);
    let at = added.location.unwrap();
    let page = b.get(&at).await;
    assert!(page.body.contains("Connection added."));
    for name in ["acme/api", "acme/web", "acme/docs"] {
        assert!(page.body.contains(name), "{name} listed");
    }
    let checked = b
        .get(&format!("{}&check=1", at.replace("?created=1", "?x=1")))
        .await;
    assert!(checked
        .body
        .contains("Signed in to GitHub as <code>picket-web</code>"));
    assert!(checked.body.contains("Installed on: acme"));

    // Two chosen ones; then all adds only the third.
    let conn = at
        .trim_start_matches("/connections/")
        .split('?')
        .next()
        .unwrap()
        .to_owned();
    let path = format!("/connections/{conn}/repositories");
    let (api, web) = (ids[0].to_string(), ids[1].to_string());
    let done = b
        .post(
            &path,
            &[
                ("_csrf", &csrf),
                ("select", "chosen"),
                ("repository", &api),
                ("repository", &web),
            ],
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert!(done
        .location
        .as_deref()
        .unwrap()
        .ends_with("?added=2&already=0"));
    let page = b.get(done.location.as_deref().unwrap()).await;
    assert!(page.body.contains("Added 2 repositories as projects"));
    let done = b.post(&path, &[("_csrf", &csrf), ("select", "all")]).await;
    assert!(done
        .location
        .as_deref()
        .unwrap()
        .ends_with("?added=1&already=2"));
    assert_eq!(app.count("projects").await, 3);
    // Nothing chosen: said, nothing added.
    let none = b
        .post(&path, &[("_csrf", &csrf), ("select", "chosen")])
        .await;
    assert_eq!(none.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(none.body.contains("Select at least one repository"));

    // In use: it cannot go.
    let refused = b
        .post(&format!("/connections/{conn}/delete"), &[("_csrf", &csrf)])
        .await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    assert!(refused.body.contains("Projects use this connection"));
    let v = server.violations();
    assert!(v.is_empty(), "requests GitHub would refuse: {v:#?}");
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn the_not_scanning_tab_lists_what_connections_see_and_adds_it(pool: PgPool) {
    use picket_test_support::github::GitHubServer;
    let server = GitHubServer::start().await;
    let gh = server.add_app("picket-inventory");
    let acme = server.add_installation(gh.id, "acme");
    let ids: Vec<u64> = ["acme/api", "acme/web", "acme/docs"]
        .iter()
        .map(|name| {
            server.add_repo(
                acme,
                name,
                "main",
                &format!("https://github.invalid/{name}.git"),
            )
        })
        .collect();
    let app = TestApp::start(pool.clone()).await;
    let conn = id_of(
        &app.github_connection("acme", &server, &gh, &gh.webhook_secret)
            .await,
    );
    let mut b = Browser::new(&app);
    b.sign_in(app.admin().token().unwrap()).await;
    let tab = "/projects?tab=not_scanning";
    let page = b.get(tab).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("</a> not listed in full yet"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("acme/api"));
    let csrf = page.csrf();

    // Listed now: the three, by name, each on its connection.
    let done = b
        .post("/projects/repositories/refresh", &[("_csrf", &csrf)])
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    let page = b.get(done.location.as_deref().unwrap()).await;
    assert!(page.body.contains("they see 3."), "{}", page.body);
    for (id, name) in ids.iter().zip(["acme/api", "acme/web", "acme/docs"]) {
        assert!(page.body.contains(name), "{name} listed");
        assert!(page.body.contains(&format!("value=\"{conn}:{id}\"")));
    }
    // The search narrows it, on the server.
    let page = b.get(&format!("{tab}&q=WEB")).await;
    assert!(page.body.contains("acme/web") && !page.body.contains("acme/docs"));

    // Two added from the tab: projects with their first scans, gone from the list.
    let (api, docs) = (format!("{conn}:{}", ids[0]), format!("{conn}:{}", ids[2]));
    let done = b
        .post(
            "/projects/repositories/add",
            &[
                ("_csrf", &csrf),
                ("repository", &api),
                ("repository", &docs),
            ],
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert_eq!(app.count("projects").await, 2);
    let page = b.get(done.location.as_deref().unwrap()).await;
    assert!(page.body.contains("Added 2 repositories as projects"));
    assert!(page.body.contains("acme/web"));
    assert!(!page.body.contains(&api) && !page.body.contains(&docs));
    // Nothing selected, or a malformed value: said, nothing added.
    for form in [
        vec![("_csrf", csrf.as_str())],
        vec![("_csrf", csrf.as_str()), ("repository", "x:1")],
    ] {
        let none = b.post("/projects/repositories/add", &form).await;
        assert_eq!(none.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(none.body.contains("Select at least one repository"));
    }

    // A rename at the provider shows after the next listing.
    server.rename_repo(ids[1], "acme/website");
    b.post("/projects/repositories/refresh", &[("_csrf", &csrf)])
        .await;
    let page = b.get(tab).await;
    assert!(page.body.contains("acme/website"), "{}", page.body);

    // A member may list again, not add.
    let mut m = Browser::new(&app);
    let member = app.member().await;
    m.sign_in(member.token().unwrap()).await;
    let mcsrf = m.get(tab).await.csrf();
    let web = format!("{conn}:{}", ids[1]);
    let refused = m
        .post(
            "/projects/repositories/add",
            &[("_csrf", &mcsrf), ("repository", &web)],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(app.count("projects").await, 2);
    let listed = m
        .post("/projects/repositories/refresh", &[("_csrf", &mcsrf)])
        .await;
    assert_eq!(listed.status, StatusCode::SEE_OTHER);
    let v = server.violations();
    assert!(v.is_empty(), "requests GitHub would refuse: {v:#?}");
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn the_manifest_page_may_post_to_github_and_nowhere_else(pool: PgPool) {
    let app = TestApp::start_with(
        pool,
        picket_api::ApiConfig {
            public_url: Some("https://picket.example.test".into()),
            ..Default::default()
        },
    )
    .await;
    let mut b = Browser::new(&app);
    b.sign_in(app.admin().token().unwrap()).await;
    let csrf = b.get("/connections").await.csrf();
    let resp = b
        .http
        .post(format!("{}/connections", app.base))
        .header(COOKIE, b.cookie.clone().unwrap())
        .header("sec-fetch-site", "same-origin")
        .form(&[
            ("_csrf", csrf.as_str()),
            ("kind", "github_manifest"),
            ("organization", "acme"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let csp = resp.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.ends_with("form-action 'self' https://github.com"),
        "{csp}"
    );
    let body = resp.text().await.unwrap();
    assert!(
        body.contains("action=\"https://github.com/organizations/acme/settings/apps/new?state=")
    );
    assert!(
        body.contains("name=\"manifest\" value=\"{"),
        "the manifest, escaped, in the form"
    );
    // Every other page keeps its forms at home.
    let other = b.get("/connections").await;
    assert!(other.body.contains("Create the GitHub App"));
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn a_project_is_renamed_its_history_filtered_and_it_is_removed_after_asking(pool: PgPool) {
    let app = TestApp::start(pool.clone()).await;
    let admin = app.admin();
    let conn = id_of(&admin.connection("git").provider("git").create().await);
    let added = admin
        .projects(&conn)
        .repo("team/web")
        .repo("team/api")
        .add()
        .await;
    let project = id_of(&added[0]);
    let initial = added[0]["last_scan"]["id"].as_str().unwrap().to_owned();
    admin
        .post(&format!("/api/v1/scans/{initial}/cancel"), json!({}))
        .await
        .expect(200);
    admin
        .post("/api/v1/scans", json!({"project_ids": [project]}))
        .await
        .expect(200);
    let mut b = Browser::new(&app);
    b.sign_in(admin.token().unwrap()).await;
    let csrf = b.get("/projects").await.csrf();

    // The history, filtered by state through the page and the API alike.
    let page = b.get(&format!("/projects/{project}?state=cancelled")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains(&format!("/scans/{initial}")));
    assert_eq!(page.body.matches("<td><a href=\"/scans/").count(), 1);
    let api = admin
        .get(&format!(
            "/api/v1/projects/{project}/scans?state=queued&kind=full"
        ))
        .await
        .expect(200);
    assert_eq!(api["items"].as_array().unwrap().len(), 1);
    assert_eq!(api["items"][0]["trigger"], "bulk");

    // Rename.
    let saved = b
        .post(
            &format!("/projects/{project}/settings"),
            &[
                ("_csrf", &csrf),
                ("full_name", "team/website"),
                ("full_scans", "on"),
                ("diff_scans", "on"),
            ],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER);
    let name: String = sqlx::query_scalar("SELECT full_name FROM projects WHERE id = $1::uuid")
        .bind(&project)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(name, "team/website");

    // The weekly slot moves and the path ignores are set from the same form; a bad time is
    // refused with the API's words and changes nothing.
    let saved = b
        .post(
            &format!("/projects/{project}/settings"),
            &[
                ("_csrf", &csrf),
                ("full_scans", "on"),
                ("weekly_weekday", "thursday"),
                ("weekly_time", "07:45"),
                ("path_ignores", "docs/\r\n\r\n  vendor/**  \r\n"),
            ],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let stored = admin
        .get(&format!("/api/v1/projects/{project}"))
        .await
        .expect(200);
    assert_eq!(
        stored["weekly_scan"],
        json!({"weekday": "thursday", "time": "07:45:00"})
    );
    assert_eq!(stored["path_ignores"], json!(["docs/", "vendor/**"]));
    assert_eq!(stored["diff_scans_enabled"], false);
    let page = b.get(&format!("/projects/{project}")).await;
    assert!(page.body.contains("<option value=\"thursday\" selected>"));
    assert!(page.body.contains("value=\"07:45:00\""));
    let bad = b
        .post(
            &format!("/projects/{project}/settings"),
            &[
                ("_csrf", &csrf),
                ("full_scans", "on"),
                ("weekly_weekday", "thursday"),
                ("weekly_time", "25:00"),
            ],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.body.contains("HH:MM"), "{}", bad.body);
    let stored = admin
        .get(&format!("/api/v1/projects/{project}"))
        .await
        .expect(200);
    assert_eq!(stored["weekly_scan"]["time"], "07:45:00");

    // Removing asks first; a member may not; an admin may.
    let ask = b.get(&format!("/projects/{project}/remove")).await;
    assert!(ask.body.contains("Remove team/website?") && ask.body.contains("2 scans"));
    assert_eq!(app.count("projects").await, 2, "asking removes nothing");
    let member = app.member().await;
    let mut m = Browser::new(&app);
    m.sign_in(member.token().unwrap()).await;
    let mcsrf = m.get("/projects").await.csrf();
    let refused = m
        .post(&format!("/projects/{project}/remove"), &[("_csrf", &mcsrf)])
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(refused.body.contains("may not remove projects"));
    let gone = b
        .post(&format!("/projects/{project}/remove"), &[("_csrf", &csrf)])
        .await;
    assert_eq!(gone.location.as_deref(), Some("/projects?removed=1"));
    assert_eq!(app.count("projects").await, 1);
    let scans: i64 = sqlx::query_scalar("SELECT count(*) FROM scans WHERE project_id = $1::uuid")
        .bind(&project)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(scans, 0);
    assert_eq!(
        b.get(&format!("/projects/{project}")).await.status,
        StatusCode::NOT_FOUND
    );
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn rule_packs_are_uploaded_checked_by_the_engine_viewed_and_deleted(pool: PgPool) {
    const PACK: &str = "rules:\n- id: acme.no-eval\n  languages: [python]\n  severity: ERROR\n  message: eval runs arbitrary code\n  pattern: eval(...)\n";
    let app = TestApp::start(pool).await;
    let mut b = Browser::new(&app);
    b.sign_in(app.admin().token().unwrap()).await;
    let page = b.get("/policies/packs").await;
    assert!(page.body.contains("No rule pack yet."));
    let csrf = page.csrf();

    // The engine refuses a pattern that does not parse: its message is shown, the text kept.
    let broken = PACK.replace("eval(...)", "eval(");
    let refused = b
        .post(
            "/policies/packs",
            &[("_csrf", &csrf), ("name", "acme"), ("content", &broken)],
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        refused.body.contains("The engine refused the pack"),
        "{}",
        refused.body
    );
    assert!(
        refused.body.contains("pattern: eval(\n"),
        "the text is kept to fix"
    );
    assert_eq!(app.count("rule_packs").await, 0);

    let saved = b
        .post(
            "/policies/packs",
            &[("_csrf", &csrf), ("name", "acme"), ("content", PACK)],
        )
        .await;
    assert_eq!(
        saved.location.as_deref(),
        Some("/policies/packs?saved=acme")
    );
    let view = b.get("/policies/packs/acme").await;
    assert!(view.body.contains("acme.no-eval") && view.body.contains("eval runs arbitrary code"));
    // Its rule shows on the Policies page, in its pack.
    let policies = b.get("/policies?pack=acme").await;
    assert!(policies.body.contains("<code>acme.no-eval</code>"));

    // A member may look, not change.
    let mut m = Browser::new(&app);
    m.sign_in(app.member().await.token().unwrap()).await;
    let mcsrf = m.get("/policies/packs").await.csrf();
    let refused = m
        .post("/policies/packs/acme/delete", &[("_csrf", &mcsrf)])
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let gone = b
        .post("/policies/packs/acme/delete", &[("_csrf", &csrf)])
        .await;
    assert_eq!(
        gone.location.as_deref(),
        Some("/policies/packs?deleted=acme")
    );
    assert_eq!(app.count("rule_packs").await, 0);
}
