//! Projects: adding many at once (slots, initial scans, all-or-nothing), listing, filtering.

use picket_tests::{id_of, TestApp};
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

/// id, trigger, kind, git_ref, requested_by.
type ScanRow = (Uuid, String, String, Option<String>, Option<Uuid>);

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn adding_many_draws_slots_and_queues_initial_scans(pool: PgPool) {
    let app = TestApp::start(pool).await;
    let admin = app.admin();
    let conn = id_of(&admin.connection("gh").create().await);
    let added = admin
        .projects(&conn)
        .repo("acme/api")
        .repo("acme/web")
        .repo("acme/cli")
        .add()
        .await;
    assert_eq!(added.len(), 3);
    assert_eq!(added[1]["full_name"], "acme/web", "request order is kept");

    for p in &added {
        assert_eq!(p["full_scans_enabled"], true);
        assert_eq!(p["diff_scans_enabled"], true);
        let last = &p["last_scan"];
        assert_eq!(
            (last["state"].as_str(), last["kind"].as_str()),
            (Some("queued"), Some("full"))
        );
        let id: Uuid = id_of(p).parse().unwrap();

        // The slot in the response is the one stored.
        let (weekday, time): (i16, time::Time) =
            sqlx::query_as("SELECT weekly_weekday, weekly_time FROM projects WHERE id = $1")
                .bind(id)
                .fetch_one(&app.pool)
                .await
                .unwrap();
        let days = [
            "monday",
            "tuesday",
            "wednesday",
            "thursday",
            "friday",
            "saturday",
            "sunday",
        ];
        assert_eq!(p["weekly_scan"]["weekday"], days[weekday as usize]);
        let (h, m, s) = time.as_hms();
        assert_eq!(p["weekly_scan"]["time"], format!("{h:02}:{m:02}:{s:02}"));

        // One initial full scan of the default branch, requested by the caller's token.
        let scans: Vec<ScanRow> = sqlx::query_as(
            "SELECT id, trigger::text, kind::text, git_ref, requested_by FROM scans WHERE project_id = $1",
        )
        .bind(id)
        .fetch_all(&app.pool)
        .await
        .unwrap();
        assert_eq!(scans.len(), 1);
        assert_eq!(scans[0].0.to_string(), last["id"].as_str().unwrap());
        assert_eq!(
            (scans[0].1.as_str(), scans[0].2.as_str()),
            ("initial", "full")
        );
        assert_eq!(scans[0].3.as_deref(), Some("main"));
        assert!(scans[0].4.is_some());
    }

    let one = admin
        .get(&format!("/api/v1/projects/{}", id_of(&added[0])))
        .await
        .expect(200);
    assert_eq!(one, added[0]);
    admin
        .get(&format!("/api/v1/projects/{}", Uuid::new_v4()))
        .await
        .problem(404, "not_found");
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn adding_is_all_or_nothing(pool: PgPool) {
    let app = TestApp::start(pool).await;
    let admin = app.admin();
    let conn = id_of(&admin.connection("gh").create().await);
    admin.projects(&conn).repo("acme/api").add().await;
    let before = app.counts().await;

    // One repository already added: 409 naming it, and the new one beside it is not added.
    let resp = admin
        .projects(&conn)
        .repo("acme/new")
        .repo("acme/api")
        .send()
        .await;
    let body = resp.problem(409, "project_exists");
    assert!(
        body["detail"].as_str().unwrap().contains("acme/api"),
        "{body}"
    );
    assert_eq!(resp.error_fields(), ["projects[1].provider_repo_id"]);
    assert_eq!(app.counts().await, before);

    // The same repository twice in one request: each item is valid, together they conflict.
    let resp = admin
        .projects(&conn)
        .repo("acme/x")
        .repo("acme/x")
        .send()
        .await;
    resp.problem(409, "duplicate_project");
    assert_eq!(resp.error_fields(), ["projects[1].provider_repo_id"]);

    // A connection that is not the org's.
    let other = app.org("b").await;
    let foreign = id_of(&other.admin.connection("theirs").create().await);
    let mut body = admin.projects(&conn).repo("acme/ok").body();
    body["projects"].as_array_mut().unwrap().push(json!({
        "connection_id": foreign, "provider_repo_id": "1", "full_name": "b/repo",
        "clone_url": "https://x/b.git", "default_branch": "main"
    }));
    let resp = admin.post("/api/v1/projects", body).await;
    resp.problem(404, "not_found");
    assert_eq!(resp.error_fields(), ["projects[1].connection_id"]);

    // Field checks name every bad item.
    let resp = admin
        .post(
            "/api/v1/projects",
            json!({"projects": [
                {"connection_id": conn, "provider_repo_id": "", "full_name": "a/b",
                 "clone_url": "https://a/b.git", "default_branch": "main"},
                {"connection_id": conn, "provider_repo_id": "2", "full_name": "a/c",
                 "clone_url": "https://a/c.git", "default_branch": "x".repeat(256)}
            ]}),
        )
        .await;
    resp.problem(422, "invalid_body");
    assert_eq!(
        resp.error_fields(),
        ["projects[0].provider_repo_id", "projects[1].default_branch"]
    );
    admin
        .post("/api/v1/projects", json!({"projects": []}))
        .await
        .problem(422, "invalid_body");
    let too_many = admin.projects(&conn).repos("many", 1001).send().await;
    too_many.problem(422, "invalid_body");
    assert_eq!(too_many.error_fields(), ["projects"]);

    let counts = app.counts().await;
    assert_eq!(
        counts
            .iter()
            .filter(|(t, _)| *t != "vcs_connections" && *t != "orgs" && *t != "api_tokens")
            .collect::<Vec<_>>(),
        before
            .iter()
            .filter(|(t, _)| *t != "vcs_connections" && *t != "orgs" && *t != "api_tokens")
            .collect::<Vec<_>>(),
    );
}

fn names(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["full_name"].as_str().unwrap().to_owned())
        .collect()
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn listing_pages_and_filters(pool: PgPool) {
    let app = TestApp::start(pool).await;
    let admin = app.admin();
    let conn = id_of(&admin.connection("gh").create().await);
    let added = admin
        .projects(&conn)
        .repo("Acme/Zeta")
        .repo("acme/alpha")
        .repo("acme/beta")
        .repo("other/gamma")
        .repo("acme/delta")
        .repo("ACME/epsilon")
        .repo("other/eta")
        .add()
        .await;
    let by_name = |n: &str| id_of(added.iter().find(|p| p["full_name"] == n).unwrap());

    // Pages of 3 cover everything once, in name order.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/projects?limit=3&cursor={c}"),
            None => "/api/v1/projects?limit=3".to_owned(),
        };
        let page = admin.get(&path).await.expect(200);
        seen.extend(names(&page));
        pages += 1;
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted);
    assert_eq!(seen.len(), 7);

    let page = admin.get("/api/v1/projects?name=ACME/").await.expect(200);
    assert_eq!(names(&page).len(), 5, "case-insensitive substring");
    let page = admin.get("/api/v1/projects?name=%25").await.expect(200);
    assert!(names(&page).is_empty(), "% is a literal, not a wildcard");

    admin
        .patch(
            &format!("/api/v1/projects/{}", by_name("other/eta")),
            json!({"full_scans_enabled": false}),
        )
        .await
        .expect(200);
    let patched = admin
        .patch(
            &format!("/api/v1/projects/{}", by_name("acme/beta")),
            json!({"diff_scans_enabled": false}),
        )
        .await
        .expect(200);
    assert_eq!(
        (
            patched["full_scans_enabled"].as_bool(),
            patched["diff_scans_enabled"].as_bool()
        ),
        (Some(true), Some(false))
    );
    let page = admin
        .get("/api/v1/projects?full_scans_enabled=false")
        .await
        .expect(200);
    assert_eq!(names(&page), ["other/eta"]);
    let page = admin
        .get("/api/v1/projects?diff_scans_enabled=false&name=beta")
        .await
        .expect(200);
    assert_eq!(names(&page), ["acme/beta"]);

    // Filter on the latest scan: cancel one project's initial scan.
    let scan = added
        .iter()
        .find(|p| p["full_name"] == "acme/delta")
        .unwrap()["last_scan"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    admin
        .post(&format!("/api/v1/scans/{scan}/cancel"), json!({}))
        .await
        .expect(200);
    let page = admin
        .get("/api/v1/projects?last_scan_state=cancelled")
        .await
        .expect(200);
    assert_eq!(names(&page), ["acme/delta"]);
    assert_eq!(page["items"][0]["last_scan"]["state"], "cancelled");
    assert!(page["items"][0]["last_scan"]["finished_at"].is_string());
    let page = admin
        .get("/api/v1/projects?last_scan_state=queued&limit=500")
        .await
        .expect(200);
    assert_eq!(names(&page).len(), 6);

    // Bad parameters name themselves.
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("limit=ten", "limit"),
        ("cursor=garbage", "cursor"),
        ("full_scans_enabled=yes", "full_scans_enabled"),
        ("last_scan_state=paused", "last_scan_state"),
        ("colour=red", "colour"),
    ] {
        let resp = admin.get(&format!("/api/v1/projects?{query}")).await;
        resp.problem(400, "invalid_query");
        assert_eq!(resp.error_fields(), [field], "{query}");
    }
    // A cursor of another listing is refused too.
    let scans = admin
        .get(&format!(
            "/api/v1/projects/{}/scans?limit=1",
            by_name("acme/alpha")
        ))
        .await
        .expect(200);
    assert!(scans["next_cursor"].is_null());
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn patch_validates_and_404s(pool: PgPool) {
    let app = TestApp::start(pool).await;
    let admin = app.admin();
    let (_, p) = admin.seed_project("acme/api").await;
    let path = format!("/api/v1/projects/{}", id_of(&p));
    let resp = admin
        .patch(&path, json!({"full_scans_enabled": "no"}))
        .await;
    resp.problem(422, "invalid_body");
    assert_eq!(resp.error_fields(), ["full_scans_enabled"]);
    let resp = admin.patch(&path, json!({"default_branch": "dev"})).await;
    assert_eq!(resp.error_fields(), ["default_branch"]);
    assert_eq!(
        admin.get(&path).await.expect(200),
        admin.patch(&path, json!({})).await.expect(200)
    );
    // The weekly slot: a weekday by name and a UTC time, HH:MM or HH:MM:SS.
    for (bad, field) in [
        (
            json!({"weekday": "mon", "time": "09:00"}),
            "weekly_scan.weekday",
        ),
        (
            json!({"weekday": "monday", "time": "24:00"}),
            "weekly_scan.time",
        ),
        (
            json!({"weekday": "monday", "time": "9:00"}),
            "weekly_scan.time",
        ),
        (
            json!({"weekday": "monday", "time": "09:00:60"}),
            "weekly_scan.time",
        ),
    ] {
        let resp = admin.patch(&path, json!({ "weekly_scan": bad })).await;
        resp.problem(422, "invalid_body");
        assert_eq!(resp.error_fields(), [field], "{bad}");
    }
    let resp = admin
        .patch(
            &path,
            json!({"weekly_scan": {"weekday": "monday", "time": "09:00", "tz": "x"}}),
        )
        .await;
    resp.problem(422, "invalid_body");
    let moved = admin
        .patch(
            &path,
            json!({"weekly_scan": {"weekday": "sunday", "time": "23:59:30"}}),
        )
        .await
        .expect(200);
    assert_eq!(
        moved["weekly_scan"],
        json!({"weekday": "sunday", "time": "23:59:30"})
    );
    admin
        .patch(
            &format!("/api/v1/projects/{}", Uuid::new_v4()),
            json!({"full_scans_enabled": false}),
        )
        .await
        .problem(404, "not_found");
}
