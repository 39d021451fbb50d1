//! Connections: credentials go in, are sealed under the row id, and never come out.

use picket_tests::{id_of, TestApp};
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

/// A GitHub App's private key (PKCS#1 PEM), drawn for the test.
fn private_key() -> String {
    use rsa::pkcs1::EncodeRsaPrivateKey;
    rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 1024)
        .unwrap()
        .to_pkcs1_pem(rsa::pkcs1::LineEnding::LF)
        .unwrap()
        .to_string()
}
const WEBHOOK_SECRET: &str = "whsec-zzz-0123456789";
const PAT: &str = "glpat-very-secret-token-123456";

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn credentials_are_sealed_and_never_returned(pool: PgPool) {
    let app = TestApp::start(pool).await;
    let admin = app.admin();
    let key = private_key();
    let private_key = key.as_str();
    let gh = admin
        .connection("github-app")
        .credentials(
            json!({"app_id": 1234, "private_key": private_key, "webhook_secret": WEBHOOK_SECRET}),
        )
        .create()
        .await;
    let gl = admin
        .connection("gitlab")
        .provider("gitlab")
        .credentials(json!({"token": PAT, "webhook_secret": WEBHOOK_SECRET}))
        .create()
        .await;
    let public = admin
        .post(
            "/api/v1/connections",
            json!({"provider": "git", "name": "public"}),
        )
        .await
        .expect(201);
    assert_eq!(gh["has_credentials"], true);
    assert_eq!(gl["provider"], "gitlab");
    assert_eq!(public["has_credentials"], false);
    assert_eq!(public["base_url"], "");
    for c in [&gh, &gl, &public] {
        assert!(c.get("credentials").is_none(), "{c}");
    }

    let list = admin.get("/api/v1/connections").await;
    let one = admin
        .get(&format!("/api/v1/connections/{}", id_of(&gh)))
        .await;
    for text in [&list.text, &one.text] {
        assert!(!text.contains(private_key) && !text.contains(PAT) && !text.contains("whsec"));
    }
    assert_eq!(list.json()["connections"].as_array().unwrap().len(), 3);
    assert_eq!(one.json()["name"], "github-app");

    // At rest: ciphertext only, which opens with the server key and this row's id, and no other.
    let cipher = app.cipher();
    for (conn, gitlab) in [(&gh, false), (&gl, true)] {
        let id: Uuid = id_of(conn).parse().unwrap();
        let sealed: Vec<u8> =
            sqlx::query_scalar("SELECT credentials FROM vcs_connections WHERE id = $1")
                .bind(id)
                .fetch_one(&app.pool)
                .await
                .unwrap();
        for secret in [private_key, PAT, WEBHOOK_SECRET] {
            assert!(!sealed.windows(secret.len()).any(|w| w == secret.as_bytes()));
        }
        let opened = cipher
            .open(&sealed, id.as_bytes())
            .expect("opens under its own id");
        let opened =
            String::from_utf8(secrecy::ExposeSecret::expose_secret(&opened).clone()).unwrap();
        let v: serde_json::Value = serde_json::from_str(&opened).unwrap();
        assert_eq!(v["webhook_secret"], WEBHOOK_SECRET);
        if gitlab {
            assert_eq!(v["token"], PAT);
        } else {
            assert_eq!(v["private_key"], private_key);
            assert_eq!(v["app_id"], 1234);
        }
        assert!(cipher.open(&sealed, Uuid::new_v4().as_bytes()).is_err());
    }

    // Nor in any log line.
    let logs = app.logs();
    assert!(logs.contains("connection created"), "logging is captured");
    for secret in [private_key, PAT, WEBHOOK_SECRET, "PRIVATE KEY"] {
        assert!(!logs.contains(secret), "{secret} was logged");
    }
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn connections_are_validated_and_deleted_only_when_unused(pool: PgPool) {
    let app = TestApp::start(pool).await;
    let admin = app.admin();
    let conn = admin.connection("gh").create().await;
    let before = app.count("vcs_connections").await;

    admin
        .post(
            "/api/v1/connections",
            json!({"provider": "github", "name": "gh"}),
        )
        .await
        .problem(409, "connection_exists");
    for (body, field) in [
        (json!({"provider": "svn", "name": "x"}), "provider"),
        (json!({"provider": "git", "name": ""}), "name"),
        (
            json!({"provider": "git", "name": "x", "base_url": "ftp://x"}),
            "base_url",
        ),
        (
            json!({"provider": "git", "name": "x", "credentials": 42}),
            "credentials",
        ),
        (
            json!({"provider": "git", "name": "x", "credentials": ["a"]}),
            "credentials",
        ),
        (
            json!({"provider": "git", "name": "x", "credentials": "x".repeat(70_000)}),
            "credentials",
        ),
    ] {
        let resp = admin.post("/api/v1/connections", body.clone()).await;
        resp.problem(422, "invalid_body");
        assert_eq!(resp.error_fields(), [field], "{body}");
    }
    assert_eq!(app.count("vcs_connections").await, before);

    // In use by a project: refused, and still there.
    let id = id_of(&conn);
    admin.projects(&id).repo("acme/api").add().await;
    admin
        .delete(&format!("/api/v1/connections/{id}"))
        .await
        .problem(409, "connection_in_use");
    admin
        .get(&format!("/api/v1/connections/{id}"))
        .await
        .expect(200);

    let unused = admin.connection("unused").create().await;
    admin
        .delete(&format!("/api/v1/connections/{}", id_of(&unused)))
        .await
        .expect(204);
    admin
        .get(&format!("/api/v1/connections/{}", id_of(&unused)))
        .await
        .problem(404, "not_found");
    admin
        .delete(&format!("/api/v1/connections/{}", id_of(&unused)))
        .await
        .problem(404, "not_found");
}
