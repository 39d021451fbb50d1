//! The App manifest flow: the manifest Picket builds names exactly its permissions and events,
//! and a one-time code converts into credentials that then work as an App's.

use picket_test_support::github::GitHubServer;
use picket_vcs::github::api::{ClientOptions, GitHubApp};
use picket_vcs::github::manifest::{self, ManifestRequest};
use picket_vcs::{ErrorCode, SourceProvider};

fn request() -> ManifestRequest {
    ManifestRequest {
        name: "picket-acme".into(),
        homepage_url: "https://picket.example".into(),
        webhook_url: "https://picket.example/webhooks/github/c1".into(),
        redirect_url: "https://picket.example/api/v1/connections/github/manifest/callback".into(),
    }
}

#[test]
fn the_manifest_asks_for_exactly_what_picket_needs() {
    let m = manifest::manifest(&request());
    let perms = m["default_permissions"].as_object().unwrap();
    let mut got: Vec<(String, String)> = perms
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            ("checks".into(), "write".into()),
            ("contents".into(), "read".into()),
            ("metadata".into(), "read".into()),
            ("pull_requests".into(), "write".into()),
        ]
    );
    let events: Vec<&str> = m["default_events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    assert_eq!(
        events,
        [
            "pull_request",
            "issue_comment",
            "pull_request_review_comment"
        ]
    );
    assert_eq!(m["hook_attributes"]["url"], request().webhook_url.as_str());
    assert_eq!(m["hook_attributes"]["active"], true);
    assert_eq!(m["public"], false);
    assert_eq!(m["redirect_url"], request().redirect_url.as_str());

    assert_eq!(
        manifest::registration_url("https://github.com", Some("acme"), "s t").unwrap(),
        "https://github.com/organizations/acme/settings/apps/new?state=s+t"
    );
    assert_eq!(
        manifest::registration_url("https://ghe.example/", None, "x").unwrap(),
        "https://ghe.example/settings/apps/new?state=x"
    );
    assert_eq!(
        manifest::web_url_of("https://api.github.com"),
        "https://github.com"
    );
    assert_eq!(
        manifest::web_url_of("https://ghe.example/api/v3/"),
        "https://ghe.example"
    );
}

#[tokio::test]
async fn a_code_converts_once_into_working_app_credentials() {
    let server = GitHubServer::start().await;
    server.add_manifest_code("c0de", "picket-acme");
    let options = ClientOptions::new(server.api_url());
    let created = manifest::convert("c0de", &options).await.unwrap();
    assert_eq!(created.slug.as_deref(), Some("picket-acme"));
    // The credentials are an App's: its JWT is accepted.
    let app = GitHubApp::new(&created.credentials, &options).unwrap();
    let check = app.check().await.unwrap();
    assert_eq!(check.identity, "picket-acme");
    // The code is single-use, and an unknown one is NotFound.
    let again = manifest::convert("c0de", &options).await.unwrap_err();
    assert_eq!(again.code, ErrorCode::NotFound, "{again}");
    let unknown = manifest::convert("nope", &options).await.unwrap_err();
    assert_eq!(unknown.code, ErrorCode::NotFound);
    assert!(server.violations().is_empty(), "{:#?}", server.violations());
}
