//! API tokens: shown once, stored as a hash, revocable, expiring, lazily marked as used.

use picket_tests::TestApp;
use serde_json::json;
use sha2::{Digest, Sha256};
use sqlx::PgPool;

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn token_is_shown_once_and_stored_as_a_hash(pool: PgPool) {
    let app = TestApp::start(pool).await;
    let admin = app.admin();
    let created = admin
        .post("/api/v1/tokens", json!({"name": "ci", "role": "member"}))
        .await
        .expect(201);
    let token = created["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("pkt_") && token.len() == 47, "{token}");
    assert!(token[4..].bytes().all(|b| b.is_ascii_alphanumeric()));
    assert_eq!(created["role"], "member");
    assert_eq!(created["prefix"], &token[..12]);
    let id = created["id"].as_str().unwrap().to_owned();

    // Listed without the token.
    let list = admin.get("/api/v1/tokens").await.expect(200);
    assert!(!list.to_string().contains(&token));
    let listed = list["tokens"].as_array().unwrap();
    assert_eq!(listed.len(), 2);
    assert!(listed.iter().all(|t| t.get("token").is_none()));

    // The database holds the SHA-256, and the token text appears in no column of any row.
    let stored: Vec<u8> = sqlx::query_scalar("SELECT hash FROM api_tokens WHERE id = $1::uuid")
        .bind(&id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(stored, Sha256::digest(token.as_bytes()).to_vec());
    let rows: Vec<String> = sqlx::query_scalar("SELECT row_to_json(t)::text FROM api_tokens t")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert!(rows.iter().all(|r| !r.contains(&token[4..])), "{rows:?}");

    // It works, as a member.
    let member = app.client(&token);
    assert_eq!(member.get("/api/v1/org").await.expect(200)["slug"], "a");
    member.get("/api/v1/tokens").await.problem(403, "forbidden");

    // Neither this token nor the bootstrap admin's, used on every request above, was logged.
    let logs = app.logs();
    assert!(logs.contains("token created") && logs.contains("finished processing request"));
    for secret in [&token[4..], &admin.token().unwrap()[4..]] {
        assert!(!logs.contains(secret), "a token was logged");
    }
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn revoked_and_expired_tokens_are_refused(pool: PgPool) {
    let app = TestApp::start(pool).await;
    let admin = app.admin();
    let member = app.member().await;
    member.get("/api/v1/org").await.expect(200);
    let id = admin.get("/api/v1/tokens").await.expect(200)["tokens"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    admin
        .delete(&format!("/api/v1/tokens/{id}"))
        .await
        .expect(204);
    let resp = member.get("/api/v1/org").await;
    resp.problem(401, "unauthorized");
    assert_eq!(resp.headers["www-authenticate"], r#"Bearer realm="picket""#);
    // Revoking again is harmless and keeps the first revocation time.
    let first: time::OffsetDateTime =
        sqlx::query_scalar("SELECT revoked_at FROM api_tokens WHERE id = $1::uuid")
            .bind(&id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    admin
        .delete(&format!("/api/v1/tokens/{id}"))
        .await
        .expect(204);
    let again: time::OffsetDateTime =
        sqlx::query_scalar("SELECT revoked_at FROM api_tokens WHERE id = $1::uuid")
            .bind(&id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(first, again);
    let listed = admin.get("/api/v1/tokens").await.expect(200);
    assert!(listed["tokens"][0]["revoked_at"].is_string());

    // Expiry: accepted until the instant passes, days from now.
    let expiring = admin
        .post(
            "/api/v1/tokens",
            json!({"name": "short", "role": "admin", "expires_in_days": 30}),
        )
        .await
        .expect(201);
    let at = time::OffsetDateTime::parse(
        expiring["expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let from_now = at - time::OffsetDateTime::now_utc();
    assert!(
        (time::Duration::days(30) - time::Duration::minutes(1)..=time::Duration::days(30))
            .contains(&from_now),
        "{from_now}"
    );
    let short = app.client(expiring["token"].as_str().unwrap());
    short.get("/api/v1/org").await.expect(200);
    sqlx::query(
        "UPDATE api_tokens SET expires_at = now() - interval '1 second' WHERE id = $1::uuid",
    )
    .bind(expiring["id"].as_str().unwrap())
    .execute(&app.pool)
    .await
    .unwrap();
    short.get("/api/v1/org").await.problem(401, "unauthorized");

    // An expiry out of 1-3650 days is refused and creates nothing.
    let before = app.count("api_tokens").await;
    for days in [json!(0), json!(3651), json!(-1), json!(1.5)] {
        let resp = admin
            .post(
                "/api/v1/tokens",
                json!({"name": "old", "role": "admin", "expires_in_days": days}),
            )
            .await;
        resp.problem(422, "invalid_body");
        assert_eq!(resp.error_fields(), ["expires_in_days"], "{days}");
    }
    // A whole number written with a fraction is a whole number, as JSON Schema counts.
    admin
        .post(
            "/api/v1/tokens",
            json!({"name": "whole", "role": "member", "expires_in_days": 2.0}),
        )
        .await
        .expect(201);
    // A token cannot revoke itself (an admin could lock themselves out in one request).
    let own = admin
        .post("/api/v1/tokens", json!({"name": "self", "role": "admin"}))
        .await
        .expect(201);
    let own_client = app.client(own["token"].as_str().unwrap());
    own_client
        .delete(&format!("/api/v1/tokens/{}", own["id"].as_str().unwrap()))
        .await
        .problem(409, "own_token");
    own_client.get("/api/v1/org").await.expect(200);
    assert_eq!(app.count("api_tokens").await, before + 2);
    // Unknown token ids are 404.
    admin
        .delete(&format!("/api/v1/tokens/{}", uuid::Uuid::new_v4()))
        .await
        .problem(404, "not_found");
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn last_used_is_written_at_most_once_a_minute(pool: PgPool) {
    let app = TestApp::start(pool).await;
    let member = app.member().await;
    let last_used = || async {
        sqlx::query_scalar::<_, Option<time::OffsetDateTime>>(
            "SELECT last_used_at FROM api_tokens WHERE role = 'member'",
        )
        .fetch_one(&app.pool)
        .await
        .unwrap()
    };
    assert_eq!(last_used().await, None);
    member.get("/api/v1/org").await.expect(200);
    let first = last_used().await.expect("marked on first use");
    member.get("/api/v1/org").await.expect(200);
    assert_eq!(
        last_used().await,
        Some(first),
        "no second write within the minute"
    );

    sqlx::query(
        "UPDATE api_tokens SET last_used_at = now() - interval '61 seconds' WHERE role = 'member'",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    let aged = last_used().await.unwrap();
    member.get("/api/v1/org").await.expect(200);
    assert!(
        last_used().await.unwrap() > aged,
        "refreshed after a minute"
    );
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn token_requests_are_validated(pool: PgPool) {
    let app = TestApp::start(pool).await;
    let admin = app.admin();
    let before = app.count("api_tokens").await;
    let resp = admin
        .post("/api/v1/tokens", json!({"name": "x", "role": "owner"}))
        .await;
    resp.problem(422, "invalid_body");
    assert_eq!(resp.error_fields(), ["role"]);
    let resp = admin
        .post("/api/v1/tokens", json!({"name": "", "role": "admin"}))
        .await;
    assert_eq!(resp.error_fields(), ["name"]);
    let resp = admin
        .post(
            "/api/v1/tokens",
            json!({"name": "x", "role": "admin", "expires_in_days": "tomorrow"}),
        )
        .await;
    resp.problem(422, "invalid_body");
    assert_eq!(resp.error_fields(), ["expires_in_days"]);
    assert_eq!(app.count("api_tokens").await, before);
}
