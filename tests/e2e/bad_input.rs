//! Every class of bad input gets its own problem code, names what was wrong, and writes nothing.

use picket_api::ApiConfig;
use picket_tests::{id_of, TestApp};
use reqwest::Method;
use serde_json::json;
use sqlx::PgPool;

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn each_bad_input_class_has_its_problem(pool: PgPool) {
    let app = TestApp::start(pool).await;
    let admin = app.admin();
    let conn = id_of(&admin.connection("gh").create().await);
    let before = app.counts().await;
    let json_ct = Some("application/json");

    // Malformed JSON: 400.
    for body in [&b"{\"projects\": ["[..], b"", b"nul", b"{} {}"] {
        admin
            .raw(
                Method::POST,
                "/api/v1/projects",
                json_ct,
                Some(body.to_vec()),
            )
            .await
            .problem(400, "malformed_json");
    }
    // Unknown fields: 422 naming the field, at any depth.
    let resp = admin
        .post(
            "/api/v1/connections",
            json!({"provider": "git", "name": "x", "token": "t"}),
        )
        .await;
    resp.problem(422, "invalid_body");
    assert_eq!(resp.error_fields(), ["token"]);
    let resp = admin
        .post(
            "/api/v1/projects",
            json!({"projects": [{"connection_id": conn, "provider_repo_id": "1", "full_name": "a/b",
                   "clone_url": "https://a/b.git", "default_branch": "main", "private": true}]}),
        )
        .await;
    resp.problem(422, "invalid_body");
    assert_eq!(resp.error_fields(), ["projects[0].private"]);
    // Wrong types and missing fields: 422 naming the path.
    let resp = admin
        .post(
            "/api/v1/projects",
            json!({"projects": [{"connection_id": conn, "provider_repo_id": "1", "full_name": 7,
                   "clone_url": "https://a/b.git", "default_branch": "main"}]}),
        )
        .await;
    resp.problem(422, "invalid_body");
    assert_eq!(resp.error_fields(), ["projects[0].full_name"]);
    let resp = admin
        .post(
            "/api/v1/projects",
            json!({"projects": [{"connection_id": conn}]}),
        )
        .await;
    resp.problem(422, "invalid_body");
    assert_eq!(resp.error_fields(), ["projects[0]"]);
    assert!(resp.json()["detail"]
        .as_str()
        .unwrap()
        .contains("provider_repo_id"));
    let resp = admin.post("/api/v1/scans", json!([1, 2])).await;
    resp.problem(422, "invalid_body");
    // Not JSON at all.
    admin
        .raw(
            Method::POST,
            "/api/v1/connections",
            Some("text/plain"),
            Some(b"name=x".to_vec()),
        )
        .await
        .problem(415, "unsupported_media_type");
    admin
        .raw(
            Method::POST,
            "/api/v1/connections",
            None,
            Some(b"{}".to_vec()),
        )
        .await
        .problem(415, "unsupported_media_type");
    // Bad path ids: 400 naming the parameter.
    for path in [
        "/api/v1/projects/42",
        "/api/v1/scans/not-a-uuid",
        "/api/v1/connections/x",
        "/api/v1/projects/x/findings",
    ] {
        let resp = admin.get(path).await;
        resp.problem(400, "invalid_path");
        assert_eq!(resp.error_fields(), ["id"], "{path}");
    }
    admin
        .delete("/api/v1/tokens/zzz")
        .await
        .problem(400, "invalid_path");

    assert_eq!(app.counts().await, before, "bad input wrote something");
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn oversized_bodies_are_413(pool: PgPool) {
    let app = TestApp::start_with(
        pool,
        ApiConfig {
            body_limit_bytes: 64 * 1024,
            ..ApiConfig::default()
        },
    )
    .await;
    let admin = app.admin();
    let conn = id_of(&admin.connection("gh").create().await);
    let before = app.counts().await;
    let body = admin
        .projects(&conn)
        .repos("big/repository-with-a-long-name", 400)
        .body();
    assert!(serde_json::to_vec(&body).unwrap().len() > 64 * 1024);
    admin
        .post("/api/v1/projects", body)
        .await
        .problem(413, "body_too_large");
    // Also without a Content-Length header (chunked): the limit is on the bytes read.
    let status = chunked_post(
        &app.base,
        "/api/v1/connections",
        admin.token().unwrap(),
        100,
        1024,
    )
    .await;
    assert_eq!(status, 413);
    assert_eq!(app.counts().await, before);
}

/// POSTs `chunks` chunks of `size` spaces with `Transfer-Encoding: chunked` over a raw socket
/// (reqwest is built without streaming bodies) and returns the response status.
async fn chunked_post(base: &str, path: &str, token: &str, chunks: usize, size: usize) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base.trim_start_matches("http://");
    let mut sock = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    sock.write_all(head.as_bytes()).await.unwrap();
    let chunk = format!("{size:x}\r\n{}\r\n", " ".repeat(size));
    for _ in 0..chunks {
        // The server may answer and close before reading everything.
        if sock.write_all(chunk.as_bytes()).await.is_err() {
            break;
        }
    }
    let _ = sock.write_all(b"0\r\n\r\n").await;
    let mut response = Vec::new();
    let _ = sock.read_to_end(&mut response).await;
    let text = String::from_utf8_lossy(&response);
    text.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {text:?}"))
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn internal_errors_are_generic(pool: PgPool) {
    let app = TestApp::start(pool).await;
    sqlx::query("ALTER TABLE policy_rules RENAME TO policy_rules_gone")
        .execute(&app.pool)
        .await
        .unwrap();
    let resp = app.admin().get("/api/v1/policies").await;
    let body = resp.problem(500, "internal");
    assert!(
        !resp.text.contains("policy_rules"),
        "internals leaked: {body}"
    );
    assert!(app.logs().contains("policy_rules"), "the cause is logged");
}
