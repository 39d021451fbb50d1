//! The server against a real HTTP client (reqwest).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use super::*;

const HEAD_1: &str = "1111111111111111111111111111111111111111";
const HEAD_2: &str = "2222222222222222222222222222222222222222";
const BASE: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const START: &str = "5555555555555555555555555555555555555555";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

struct Fixture {
    server: GitLabServer,
    http: reqwest::Client,
    /// `picket-bot`'s `api` token.
    token: String,
    bot: u64,
    group: u64,
    project: u64,
}

impl Fixture {
    /// Group `acme/platform` (the bot a Developer), private project `acme/platform/app` with
    /// merge request !7 by alice: two versions, lines 10-12 of `src/lib.rs` in the latest diff.
    async fn new() -> Fixture {
        Fixture::with(GitLabServer::start().await).await
    }

    async fn with(server: GitLabServer) -> Fixture {
        let bot = server.add_bot("picket-bot");
        let token = server.add_token(bot, &["api"]);
        let group = server.add_group("acme/platform");
        server.add_group_member(group, bot, access::DEVELOPER);
        let project = server.add_project("acme/platform", "app");
        server.add_user("alice");
        server.add_merge_request(
            project,
            TestMergeRequest::new(7, "feature", HEAD_1, "alice"),
        );
        server.push_version(project, 7, BASE, START, HEAD_1);
        server.push_version(project, 7, BASE, START, HEAD_2);
        server.set_diff_lines(project, 7, HEAD_2, "src/lib.rs", &[10, 11, 12]);
        Fixture {
            server,
            http: reqwest::Client::new(),
            token,
            bot,
            group,
            project,
        }
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, HeaderMap, Value) {
        let mut rb = self
            .http
            .request(method, format!("{}{path}", self.server.api_url()));
        if let Some(token) = token {
            rb = rb.header("PRIVATE-TOKEN", token);
        }
        if let Some(body) = body {
            rb = rb.json(&body);
        }
        send(rb).await
    }

    async fn get(&self, path: &str) -> (StatusCode, HeaderMap, Value) {
        self.call(Method::GET, path, Some(&self.token), None).await
    }

    /// A form-encoded request (`application/x-www-form-urlencoded`), as `curl --form`-less
    /// clients send.
    async fn form(
        &self,
        method: Method,
        path: &str,
        pairs: &[(&str, &str)],
    ) -> (StatusCode, HeaderMap, Value) {
        let body = pairs
            .iter()
            .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
            .collect::<Vec<_>>()
            .join("&");
        let rb = self
            .http
            .request(method, format!("{}{path}", self.server.api_url()))
            .header("PRIVATE-TOKEN", &self.token)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        send(rb).await
    }

    fn assert_no_violations(&self) {
        let v = self.server.violations();
        assert!(v.is_empty(), "{} violations: {v:#?}", v.len());
    }
}

fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

async fn send(rb: reqwest::RequestBuilder) -> (StatusCode, HeaderMap, Value) {
    let resp = rb.send().await.expect("request");
    let status = resp.status();
    let headers = resp.headers().clone();
    let text = resp.text().await.expect("body");
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, headers, value)
}

fn header<'h>(h: &'h HeaderMap, name: &str) -> &'h str {
    h.get(name)
        .map(|v| v.to_str().expect("ascii"))
        .unwrap_or("<absent>")
}

fn position(head: &str, line: u64) -> Value {
    json!({
        "base_sha": BASE,
        "start_sha": START,
        "head_sha": head,
        "position_type": "text",
        "old_path": "src/lib.rs",
        "new_path": "src/lib.rs",
        "new_line": line,
    })
}

#[test]
fn gitbeakers_table_has_the_routes_served() {
    let table = RouteTable::load().expect("run `make gitlab-fixtures`");
    assert!(table.len() >= 1000, "only {} endpoints read", table.len());
    assert!(table.call_sites >= 800, "{} call sites", table.call_sites);
    assert!(table.resources >= 190, "{} resources", table.resources);
    assert!(
        table.unresolved.is_empty(),
        "call sites the extractor could not read: {:?}",
        table.unresolved
    );
    // Every route this server implements is a GitLab endpoint.
    for (method, template) in http::ROUTES {
        let template: Vec<&str> = template
            .split('/')
            .filter(|s| !s.is_empty())
            .map(|s| if s.starts_with(':') { "*" } else { s })
            .collect();
        let template = template.join("/");
        assert!(
            table.contains(method, &template),
            "{method} {template} missing"
        );
    }
    // Read through shared resources (ResourceDiscussions, ResourceNotes, ResourceHooks,
    // ResourceMembers) and helper functions.
    for (method, template) in [
        ("GET", "projects/*/merge_requests/*/discussions"),
        ("PUT", "projects/*/merge_requests/*/discussions/*"),
        ("POST", "projects/*/merge_requests/*/discussions/*/notes"),
        ("PUT", "projects/*/merge_requests/*/discussions/*/notes/*"),
        ("POST", "projects/*/repository/commits/*/discussions"),
        ("POST", "groups/*/epics/*/notes"),
        ("DELETE", "groups/*/hooks/*"),
        ("GET", "groups/*/members/all/*"),
        ("POST", "projects/*/merge_requests/*/award_emoji"),
        ("GET", "projects/*/merge_requests/*/notes/*/award_emoji/*"),
        ("GET", "user/emails"),
        ("GET", "users/*/emails"),
        ("GET", "projects/*/jobs/artifacts/*/raw/*"),
        ("GET", "personal_access_tokens/self"),
        ("GET", "snippet_repository_storage_moves"),
    ] {
        assert!(
            table.contains(method, template),
            "{method} {template} missing"
        );
    }
    // Helper branches are exclusive: no made-up combinations.
    assert!(!table.contains("GET", "projects/*/jobs/artifacts/*/raw/*/download"));
    assert!(table
        .find(
            "GET",
            "projects/acme%2Fplatform%2Fapp/merge_requests/7/discussions"
        )
        .is_some());
    assert!(table
        .find("GET", "projects/1/merge_requests/7/frobnicate")
        .is_none());
    assert!(table.find("PATCH", "projects/1/merge_requests/7").is_none());
}

#[tokio::test]
async fn tokens_are_checked_like_gitlab() {
    let f = Fixture::new().await;
    let (status, h, v) = f.get("/user").await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["username"], json!("picket-bot"));
    assert_eq!(v["id"], json!(f.bot));
    assert_eq!(v["bot"], json!(true));
    assert_eq!(header(&h, "ratelimit-limit"), "2000");

    // Authorization: Bearer works as well as PRIVATE-TOKEN.
    let (status, _, v) = send(
        f.http
            .get(format!(
                "{}/personal_access_tokens/self",
                f.server.api_url()
            ))
            .bearer_auth(&f.token),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["scopes"], json!(["api"]));
    assert_eq!(v["active"], json!(true));
    assert_eq!(v["expires_at"], Value::Null);
    assert_eq!(v["user_id"], json!(f.bot));

    let (status, _, v) = f.call(Method::GET, "/user", Some("glpat-nope"), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(v, json!({"message": "401 Unauthorized"}));
    let (status, _, _) = f.call(Method::GET, "/user", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let expired = f.server.add_token_with(
        f.bot,
        TokenOptions {
            expires_at: Some(
                time::OffsetDateTime::now_utc()
                    .date()
                    .previous_day()
                    .expect("date"),
            ),
            ..TokenOptions::scopes(&["api"])
        },
    );
    let (status, h, v) = f.call(Method::GET, "/user", Some(&expired), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(v["error"], json!("invalid_token"));
    assert_eq!(v["error_description"], json!("Token has expired."));
    assert!(header(&h, "www-authenticate").contains("invalid_token"));
    let revoked = f.server.add_token(f.bot, &["api"]);
    f.server.revoke_token(&revoked);
    let (status, _, v) = f.call(Method::GET, "/user", Some(&revoked), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(v["error_description"].as_str().unwrap().contains("revoked"));

    // read_api reads but does not write; read_repository does not use the API.
    let reader = f.server.add_token(f.bot, &["read_api"]);
    let (status, _, _) = f
        .call(
            Method::GET,
            &format!("/projects/{}", f.project),
            Some(&reader),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, v) = f
        .call(
            Method::POST,
            &format!("/projects/{}/merge_requests/7/notes", f.project),
            Some(&reader),
            Some(json!({"body": "hi"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(v["error"], json!("insufficient_scope"));
    assert_eq!(v["scope"], json!("api"));
    let git_only = f.server.add_token(f.bot, &["read_repository"]);
    let (status, _, _) = f.call(Method::GET, "/user", Some(&git_only), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    f.assert_no_violations();
}

#[tokio::test]
async fn projects_are_paginated_with_gitlabs_headers() {
    let f = Fixture::new().await;
    for i in 0..44 {
        f.server
            .add_project("acme/platform/sub", &format!("p{i:02}"));
    }
    let archived = f.server.add_project("acme", "old");
    f.server
        .add_group_member(f.server.add_group("acme"), f.bot, access::REPORTER);
    f.server.update_project(archived, |p| p.archived = true);
    // Not a member: not listed.
    f.server.add_project("elsewhere", "hidden");

    let (status, h, v) = f
        .get("/projects?membership=true&archived=false&per_page=20&page=2")
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v.as_array().map(Vec::len), Some(20));
    assert_eq!(header(&h, "x-page"), "2");
    assert_eq!(header(&h, "x-per-page"), "20");
    assert_eq!(header(&h, "x-next-page"), "3");
    assert_eq!(header(&h, "x-prev-page"), "1");
    assert_eq!(header(&h, "x-total"), "45");
    assert_eq!(header(&h, "x-total-pages"), "3");
    let link = header(&h, "link");
    let api = f.server.api_url();
    assert!(
        link.contains(&format!(
            "<{api}/projects?archived=false&membership=true&page=3&per_page=20>; rel=\"next\""
        )),
        "{link}"
    );
    assert!(link.contains("page=1&per_page=20>; rel=\"prev\""), "{link}");
    assert!(link.contains("page=3&per_page=20>; rel=\"last\""), "{link}");
    let first = &v[0];
    for field in [
        "id",
        "path_with_namespace",
        "name",
        "http_url_to_repo",
        "web_url",
        "default_branch",
        "visibility",
        "archived",
    ] {
        assert!(first.get(field).is_some(), "{field} missing in {first}");
    }
    assert_eq!(first["namespace"]["full_path"], json!("acme/platform/sub"));
    assert_eq!(
        first["permissions"]["group_access"]["access_level"],
        json!(30)
    );

    let (_, h, v) = f
        .get("/projects?membership=true&archived=false&per_page=20&page=3")
        .await;
    assert_eq!(v.as_array().map(Vec::len), Some(5));
    assert_eq!(header(&h, "x-next-page"), "");
    assert!(!header(&h, "link").contains("rel=\"next\""));

    // The group's projects, by URL-encoded full path, subgroups included.
    let (status, h, v) = f
        .get("/groups/acme%2Fplatform/projects?include_subgroups=true&per_page=100")
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(header(&h, "x-total"), "45");
    let (_, h, _) = f.get(&format!("/groups/{}/projects", f.group)).await;
    assert_eq!(header(&h, "x-total"), "1");
    assert_eq!(header(&h, "x-per-page"), "20");
    let (status, _, v) = f.get("/groups/elsewhere/projects").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(v, json!({"message": "404 Group Not Found"}));
    f.assert_no_violations();
}

#[tokio::test]
async fn past_ten_thousand_the_totals_are_left_out() {
    let f = Fixture::new().await;
    for i in 0..10_001 {
        f.server.add_project("big", &format!("p{i}"));
    }
    f.server
        .set_group_visibility(f.server.add_group("big"), "internal");
    let (status, h, v) = f.get("/groups/big/projects?per_page=100&page=2").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        v.as_array().map(Vec::len),
        Some(0),
        "private projects stay hidden"
    );
    assert_eq!(header(&h, "x-total"), "0");
    let big = f.server.add_group("big");
    f.server.add_group_member(big, f.bot, access::REPORTER);
    let (_, h, v) = f.get("/groups/big/projects?per_page=100&page=2").await;
    assert_eq!(v.as_array().map(Vec::len), Some(100));
    assert_eq!(header(&h, "x-total"), "<absent>");
    assert_eq!(header(&h, "x-total-pages"), "<absent>");
    assert_eq!(header(&h, "x-next-page"), "3");
    let link = header(&h, "link");
    assert!(
        link.contains("rel=\"next\"") && !link.contains("rel=\"last\""),
        "{link}"
    );
}

#[tokio::test]
async fn projects_by_id_or_path_and_visibility() {
    let f = Fixture::new().await;
    let (status, _, v) = f.get("/projects/acme%2Fplatform%2Fapp").await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["id"], json!(f.project));
    assert_eq!(v["path_with_namespace"], json!("acme/platform/app"));
    assert_eq!(v["default_branch"], json!("main"));
    assert_eq!(v["visibility"], json!("private"));
    assert_eq!(v["namespace"]["id"], json!(f.group));
    assert_eq!(v["permissions"]["group_access"]["access_level"], json!(30));
    assert_eq!(
        v["web_url"],
        json!(format!("{}/acme/platform/app", f.server.url()))
    );
    assert_eq!(
        v["http_url_to_repo"],
        json!(format!("{}/acme/platform/app.git", f.server.url()))
    );

    let other = f.server.add_project("elsewhere", "secret");
    let (status, _, v) = f.get(&format!("/projects/{other}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(v, json!({"message": "404 Project Not Found"}));
    f.server
        .update_project(other, |p| p.visibility = "internal".into());
    let (status, _, _) = f.get(&format!("/projects/{other}")).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = f
        .call(Method::GET, &format!("/projects/{other}"), None, None)
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "internal needs a signed-in user"
    );

    // Moved: the old path is gone.
    f.server
        .update_project(f.project, |p| p.path = "application".into());
    let (status, _, _) = f.get("/projects/acme%2Fplatform%2Fapp").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, _) = f.get("/projects/acme%2Fplatform%2Fapplication").await;
    assert_eq!(status, StatusCode::OK);
    f.assert_no_violations();
}

#[tokio::test]
async fn merge_requests_versions_and_merge_base() {
    let f = Fixture::new().await;
    f.server.add_merge_request(
        f.project,
        TestMergeRequest::new(8, "fresh", HEAD_1, "alice"),
    );
    let p = f.project;
    let (status, _, v) = f.get(&format!("/projects/{p}/merge_requests/7")).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["iid"], json!(7));
    assert_eq!(v["sha"], json!(HEAD_2));
    assert_eq!(v["source_branch"], json!("feature"));
    assert_eq!(v["target_branch"], json!("main"));
    assert_eq!(v["author"]["username"], json!("alice"));
    assert_eq!(v["source_project_id"], json!(p));
    assert_eq!(v["draft"], json!(false));
    assert_eq!(
        v["diff_refs"],
        json!({"base_sha": BASE, "head_sha": HEAD_2, "start_sha": START})
    );
    let (_, _, v) = f.get(&format!("/projects/{p}/merge_requests/8")).await;
    assert_eq!(v["diff_refs"], Value::Null, "no diff version yet");
    let (status, _, v) = f.get(&format!("/projects/{p}/merge_requests/99")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(v, json!({"message": "404 Not found"}));

    let (_, h, v) = f
        .get(&format!(
            "/projects/{p}/merge_requests?state=opened&per_page=1"
        ))
        .await;
    assert_eq!(header(&h, "x-total"), "2");
    assert_eq!(v[0]["iid"], json!(8), "newest first");
    assert!(v[0].get("diff_refs").is_none(), "lists carry no diff_refs");
    f.server
        .update_merge_request(p, 8, |m| m.state = "merged".into());
    let (_, h, _) = f
        .get(&format!("/projects/{p}/merge_requests?state=opened"))
        .await;
    assert_eq!(header(&h, "x-total"), "1");

    let (_, _, v) = f
        .get(&format!("/projects/{p}/merge_requests/7/versions"))
        .await;
    assert_eq!(v.as_array().map(Vec::len), Some(2));
    assert_eq!(v[0]["head_commit_sha"], json!(HEAD_2), "newest first");
    assert_eq!(v[1]["head_commit_sha"], json!(HEAD_1));
    assert_eq!(v[0]["base_commit_sha"], json!(BASE));
    assert_eq!(v[0]["start_commit_sha"], json!(START));
    assert_eq!(v[0]["state"], json!("collected"));

    f.server.set_merge_base(p, "main", HEAD_2, BASE);
    let (status, _, v) = f
        .get(&format!(
            "/projects/{p}/repository/merge_base?refs[]={HEAD_2}&refs[]=main"
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["id"], json!(BASE));
    let (status, _, _) = f
        .get(&format!(
            "/projects/{p}/repository/merge_base?refs[]=main&refs[]=other"
        ))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    f.assert_no_violations();
    let (status, _, v) = f
        .get(&format!("/projects/{p}/repository/merge_base?refs[]=main"))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(v, json!({"message": "Provide at least 2 refs"}));
    let v = f.server.violations();
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(v[0].contains("at least 2 refs"), "{v:?}");
}

#[tokio::test]
async fn diff_notes_must_name_the_latest_version_and_a_diff_line() {
    let f = Fixture::new().await;
    let path = format!("/projects/{}/merge_requests/7/discussions", f.project);
    let token = Some(f.token.as_str());

    // The previous version's head: GitLab cannot compute a line code.
    let (status, _, v) = f
        .call(
            Method::POST,
            &path,
            token,
            Some(json!({"body": "old", "position": position(HEAD_1, 10)})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(
        v["message"],
        json!(
            r#"400 Bad request - Note {:line_code=>["can't be blank", "must be a valid line code"]}"#
        )
    );
    // A line outside the diff.
    let (status, _, _) = f
        .call(
            Method::POST,
            &path,
            token,
            Some(json!({"body": "far", "position": position(HEAD_2, 40)})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // A file outside the diff.
    let mut elsewhere = position(HEAD_2, 10);
    elsewhere["new_path"] = json!("README.md");
    elsewhere["old_path"] = json!("README.md");
    let (status, _, _) = f
        .call(
            Method::POST,
            &path,
            token,
            Some(json!({"body": "x", "position": elsewhere})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(f.server.discussions(f.project, 7).is_empty());

    // JSON body.
    let (status, _, v) = f
        .call(
            Method::POST,
            &path,
            token,
            Some(json!({"body": "**finding**", "position": position(HEAD_2, 11)})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    assert_eq!(v["individual_note"], json!(false));
    let note = &v["notes"][0];
    assert_eq!(note["type"], json!("DiffNote"));
    assert_eq!(note["resolvable"], json!(true));
    assert_eq!(note["resolved"], json!(false));
    assert_eq!(note["author"]["username"], json!("picket-bot"));
    assert_eq!(note["position"]["new_line"], json!(11));
    assert_eq!(note["position"]["head_sha"], json!(HEAD_2));
    assert_eq!(v["id"].as_str().map(str::len), Some(40));

    // Form body, as `curl --form 'position[new_line]=12'`.
    let (status, _, v) = f
        .form(
            Method::POST,
            &path,
            &[
                ("body", "from a form"),
                ("position[position_type]", "text"),
                ("position[base_sha]", BASE),
                ("position[start_sha]", START),
                ("position[head_sha]", HEAD_2),
                ("position[old_path]", "src/lib.rs"),
                ("position[new_path]", "src/lib.rs"),
                ("position[new_line]", "12"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    assert_eq!(v["notes"][0]["position"]["new_line"], json!(12));

    // Multipart, as gitbeaker sends positions.
    let boundary = "XyZ";
    let mut body = String::new();
    for (k, val) in [
        ("body", "multipart"),
        ("position[position_type]", "text"),
        ("position[base_sha]", BASE),
        ("position[start_sha]", START),
        ("position[head_sha]", HEAD_2),
        ("position[old_path]", "src/lib.rs"),
        ("position[new_path]", "src/lib.rs"),
        ("position[new_line]", "10"),
    ] {
        body.push_str(&format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{val}\r\n"
        ));
    }
    body.push_str(&format!("--{boundary}--\r\n"));
    let (status, _, v) = send(
        f.http
            .post(format!("{}{path}", f.server.api_url()))
            .header("PRIVATE-TOKEN", &f.token)
            .header(
                "content-type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(body),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    assert_eq!(v["notes"][0]["position"]["new_line"], json!(10));

    let threads = f.server.discussions(f.project, 7);
    assert_eq!(threads.len(), 3);
    assert_eq!(
        threads[0].notes[0]
            .position
            .as_ref()
            .and_then(|p| p.new_line),
        Some(11)
    );
    f.assert_no_violations();

    // A position without old_path is a violation (GitLab documents both paths as required)
    // and refused.
    let mut no_old = position(HEAD_2, 10);
    no_old.as_object_mut().unwrap().remove("old_path");
    let (status, _, _) = f
        .call(
            Method::POST,
            &path,
            token,
            Some(json!({"body": "x", "position": no_old})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let v = f.server.violations();
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(v[0].contains("position[old_path]"), "{v:?}");
}

#[tokio::test]
async fn notes_replies_and_resolution() {
    let f = Fixture::new().await;
    let p = f.project;
    let token = Some(f.token.as_str());
    let human = f.server.add_note(p, 7, "alice", "Looks good?");

    let (status, _, v) = f
        .call(
            Method::POST,
            &format!("/projects/{p}/merge_requests/7/notes"),
            token,
            Some(json!({"body": "Summary: 2 findings"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    assert_eq!(v["type"], Value::Null);
    assert_eq!(v["resolvable"], json!(false));
    assert!(v.get("resolved").is_none());
    assert_eq!(v["noteable_iid"], json!(7));
    let summary = v["id"].as_u64().unwrap();

    let (status, _, v) = f
        .call(
            Method::PUT,
            &format!("/projects/{p}/merge_requests/7/notes/{summary}"),
            token,
            Some(json!({"body": "Summary: 1 finding"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["body"], json!("Summary: 1 finding"));
    // Someone else's note cannot be edited.
    let (status, _, _) = f
        .call(
            Method::PUT,
            &format!("/projects/{p}/merge_requests/7/notes/{human}"),
            token,
            Some(json!({"body": "mine now"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let (_, h, v) = f
        .get(&format!("/projects/{p}/merge_requests/7/notes"))
        .await;
    assert_eq!(header(&h, "x-total"), "2");
    assert_eq!(v[0]["id"], json!(summary), "newest first by default");
    let (_, _, v) = f
        .get(&format!(
            "/projects/{p}/merge_requests/7/notes?sort=asc&order_by=updated_at"
        ))
        .await;
    assert_eq!(v[0]["id"], json!(human));
    let (status, _, v) = f
        .get(&format!("/projects/{p}/merge_requests/7/notes/{summary}"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["body"], json!("Summary: 1 finding"));

    // A thread, a human reply, the bot's reply, resolution.
    let (_, _, v) = f
        .call(
            Method::POST,
            &format!("/projects/{p}/merge_requests/7/discussions"),
            token,
            Some(json!({"body": "On the overview"})),
        )
        .await;
    let did = v["id"].as_str().unwrap().to_string();
    assert_eq!(v["notes"][0]["type"], json!("DiscussionNote"));
    f.server.add_reply(p, 7, &did, "alice", "Fixed");
    let (status, _, v) = f
        .call(
            Method::POST,
            &format!("/projects/{p}/merge_requests/7/discussions/{did}/notes"),
            token,
            Some(json!({"body": "Thanks, verified"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    assert_eq!(v["type"], json!("DiscussionNote"));
    let (status, _, v) = f
        .call(
            Method::PUT,
            &format!("/projects/{p}/merge_requests/7/discussions/{did}?resolved=true"),
            token,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert!(v["notes"]
        .as_array()
        .unwrap()
        .iter()
        .all(|n| n["resolved"] == json!(true)));
    assert_eq!(
        v["notes"][0]["resolved_by"]["username"],
        json!("picket-bot")
    );
    let threads = f.server.discussions(p, 7);
    let thread = threads.iter().find(|d| d.id == did).unwrap();
    assert!(thread.resolved());
    assert_eq!(thread.notes.len(), 3);

    // Plain notes are not resolvable.
    let plain = threads
        .iter()
        .find(|d| d.individual_note)
        .unwrap()
        .id
        .clone();
    let (status, _, _) = f
        .call(
            Method::PUT,
            &format!("/projects/{p}/merge_requests/7/discussions/{plain}?resolved=true"),
            token,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let (_, h, v) = f
        .get(&format!(
            "/projects/{p}/merge_requests/7/discussions?per_page=2"
        ))
        .await;
    assert_eq!(header(&h, "x-total"), "3");
    assert_eq!(v[0]["individual_note"], json!(true), "oldest first");
    assert_eq!(v[0]["notes"][0]["author"]["username"], json!("alice"));
    f.assert_no_violations();

    // A note without a body.
    let (status, _, v) = f
        .call(
            Method::POST,
            &format!("/projects/{p}/merge_requests/7/notes"),
            token,
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(v, json!({"error": "body is missing"}));
    assert_eq!(f.server.violations().len(), 1);
}

#[tokio::test]
async fn commit_statuses_follow_gitlabs_state_machine() {
    let f = Fixture::new().await;
    let path = format!("/projects/{}/statuses/{HEAD_2}", f.project);
    let token = Some(f.token.as_str());
    let post = |state: &str| {
        json!({
            "state": state,
            "name": "picket",
            "target_url": "https://picket.example/scans/1",
            "description": "Scanning",
        })
    };
    let (status, _, v) = f
        .call(Method::POST, &path, token, Some(post("pending")))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    assert_eq!(v["status"], json!("pending"));
    assert_eq!(v["name"], json!("picket"));
    assert_eq!(v["ref"], json!("feature"));
    assert_eq!(v["sha"], json!(HEAD_2));
    let (status, _, v) = f
        .call(Method::POST, &path, token, Some(post("pending")))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        v["message"],
        json!("Cannot transition status via :enqueue from :pending (Reason(s): Status cannot transition via \"enqueue\")")
    );
    let (status, _, _) = f
        .call(Method::POST, &path, token, Some(post("running")))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _, _) = f
        .call(Method::POST, &path, token, Some(post("running")))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _, v) = f
        .call(Method::POST, &path, token, Some(post("success")))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert!(v["finished_at"].is_string());
    // Finished: the next post starts a new status.
    let (status, _, _) = f
        .call(Method::POST, &path, token, Some(post("pending")))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let statuses = f.server.statuses(f.project);
    assert_eq!(statuses.len(), 2);
    assert_eq!(statuses[0].status, "success");
    let latest = f.server.latest_status(f.project, HEAD_2, "picket").unwrap();
    assert_eq!(latest.status, "pending");
    assert_eq!(
        latest.target_url.as_deref(),
        Some("https://picket.example/scans/1")
    );
    assert_eq!(latest.author, "picket-bot");

    // Newer GitLab accepts the repeat.
    f.server.set_idempotent_statuses(true);
    let (status, _, _) = f
        .call(Method::POST, &path, token, Some(post("pending")))
        .await;
    assert_eq!(status, StatusCode::CREATED);

    // The name defaults to "default"; an unknown commit is 404.
    let (_, _, v) = f
        .call(Method::POST, &path, token, Some(json!({"state": "failed"})))
        .await;
    assert_eq!(v["name"], json!("default"));
    let (status, _, v) = f
        .call(
            Method::POST,
            &format!("/projects/{}/statuses/{}", f.project, "9".repeat(40)),
            token,
            Some(post("pending")),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(v, json!({"message": "404 Commit Not Found"}));

    // A Reporter may not post statuses.
    let reporter = f.server.add_user("rita");
    f.server
        .add_project_member(f.project, reporter, access::REPORTER);
    let rita = f.server.add_token(reporter, &["api"]);
    let (status, _, v) = f
        .call(Method::POST, &path, Some(&rita), Some(post("pending")))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(v, json!({"message": "403 Forbidden"}));
    f.assert_no_violations();

    // A missing state: 400, and a violation.
    let (status, _, v) = f
        .call(Method::POST, &path, token, Some(json!({"name": "picket"})))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(v, json!({"error": "state is missing"}));
    let v = f.server.violations();
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(
        v[0].contains("required parameter state is missing"),
        "{v:?}"
    );
}

#[tokio::test]
async fn hooks_keep_their_token_secret() {
    let f = Fixture::new().await;
    let p = f.project;
    // Developer: hooks need Maintainer.
    let (status, _, _) = f.get(&format!("/projects/{p}/hooks")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    f.server.add_project_member(p, f.bot, access::MAINTAINER);
    let (status, _, v) = f
        .call(
            Method::POST,
            &format!("/projects/{p}/hooks"),
            Some(&f.token),
            Some(json!({
                "url": "https://picket.example/hooks/gitlab",
                "token": "s3cret",
                "merge_requests_events": true,
                "note_events": true,
                "push_events": false,
                "enable_ssl_verification": true,
            })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    assert!(v.get("token").is_none());
    assert_eq!(v["merge_requests_events"], json!(true));
    assert_eq!(v["push_events"], json!(false));
    assert_eq!(v["project_id"], json!(p));
    let id = v["id"].as_u64().unwrap();
    let hooks = f.server.project_hooks(p);
    assert_eq!(hooks.len(), 1);
    assert_eq!(hooks[0].token.as_deref(), Some("s3cret"));
    assert!(hooks[0].note_events && !hooks[0].push_events);

    let (_, _, v) = f.get(&format!("/projects/{p}/hooks")).await;
    assert_eq!(v.as_array().map(Vec::len), Some(1));
    assert!(v[0].get("token").is_none());
    let (status, _, v) = f
        .form(
            Method::PUT,
            &format!("/projects/{p}/hooks/{id}"),
            &[
                ("url", "https://picket.example/hooks/gitlab2"),
                ("note_events", "false"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let hook = &f.server.project_hooks(p)[0];
    assert_eq!(hook.url, "https://picket.example/hooks/gitlab2");
    assert!(!hook.note_events && hook.merge_requests_events);
    assert_eq!(hook.token.as_deref(), Some("s3cret"), "kept when not sent");
    let (status, _, _) = f
        .call(
            Method::DELETE,
            &format!("/projects/{p}/hooks/{id}"),
            Some(&f.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(f.server.project_hooks(p).is_empty());

    // Group hooks need Owner.
    let path = format!("/groups/{}/hooks", f.group);
    let body = json!({"url": "https://picket.example/hooks/gitlab", "merge_requests_events": true});
    let (status, _, _) = f
        .call(Method::POST, &path, Some(&f.token), Some(body.clone()))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    f.server.add_group_member(f.group, f.bot, access::OWNER);
    let (status, _, v) = f
        .call(Method::POST, &path, Some(&f.token), Some(body))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    assert_eq!(v["group_id"], json!(f.group));
    assert_eq!(f.server.group_hooks(f.group).len(), 1);
    f.assert_no_violations();
}

#[tokio::test]
async fn members_and_users() {
    let f = Fixture::new().await;
    let p = f.project;
    let (status, _, v) = f.get(&format!("/projects/{p}/members/all/{}", f.bot)).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["access_level"], json!(30), "inherited from the group");
    assert_eq!(v["username"], json!("picket-bot"));
    let alice = f.server.user_id("alice").unwrap();
    let (status, _, v) = f.get(&format!("/projects/{p}/members/all/{alice}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(v, json!({"message": "404 Not found"}));
    f.server.add_project_member(p, alice, access::MAINTAINER);
    let (_, _, v) = f.get(&format!("/projects/{p}/members/all/{alice}")).await;
    assert_eq!(v["access_level"], json!(40));

    let (_, _, v) = f.get("/users?username=alice").await;
    assert_eq!(v.as_array().map(Vec::len), Some(1));
    assert_eq!(v[0]["id"], json!(alice));
    let (_, _, v) = f.get("/users?username=nobody").await;
    assert_eq!(v, json!([]));
    f.assert_no_violations();
}

#[tokio::test]
async fn requests_outside_gitlabs_api_are_violations() {
    let f = Fixture::new().await;
    let p = f.project;
    // A path GitLab does not have.
    let (status, _, v) = f
        .get(&format!("/projects/{p}/merge_requests/7/frobnicate"))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(v, json!({"error": "404 Not Found"}));
    // A method GitLab does not take there (PATCH is GitHub's).
    let (status, _, _) = f
        .call(
            Method::PATCH,
            &format!("/projects/{p}/merge_requests/7/notes/1"),
            Some(&f.token),
            Some(json!({"body": "x"})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // An unencoded project path.
    let (status, _, _) = f.get("/projects/acme/platform/app").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Outside the API base path.
    let (status, _, _) = send(
        f.http
            .get(format!("{}/projects", f.server.url()))
            .header("PRIVATE-TOKEN", &f.token),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // A GitLab endpoint the test server does not serve: loud, but no violation.
    let (status, _, _) = f
        .get(&format!("/projects/{p}/merge_requests/7/changes"))
        .await;
    assert_eq!(status, StatusCode::NOT_IMPLEMENTED);

    let v = f.server.violations();
    assert_eq!(v.len(), 4, "{v:#?}");
    assert!(
        v[0].contains("frobnicate") && v[0].contains("no GitLab endpoint"),
        "{v:?}"
    );
    assert!(v[1].starts_with("PATCH "), "{v:?}");
    assert!(v[2].contains("/projects/acme/platform/app"), "{v:?}");
    assert!(v[3].contains("outside the API base path /api/v4"), "{v:?}");
    assert_eq!(
        f.server
            .request_count("GET", "/projects/:id/merge_requests/:iid"),
        0
    );
    assert_eq!(f.server.request_counts()["GET (unmatched)"], 4);
}

#[tokio::test]
async fn rate_limits_and_faults_then_success() {
    let f = Fixture::new().await;
    let p = f.project;
    let mrs = format!("/projects/{p}/merge_requests/7");
    let (_, h, _) = f.get(&mrs).await;
    assert_eq!(header(&h, "ratelimit-name"), "throttle_authenticated_api");
    assert_eq!(header(&h, "ratelimit-limit"), "2000");
    assert_eq!(header(&h, "ratelimit-observed"), "1");
    assert_eq!(header(&h, "ratelimit-remaining"), "1999");
    let reset: u64 = header(&h, "ratelimit-reset").parse().unwrap();
    assert!(reset > now() && reset <= now() + 60, "{reset}");
    assert!(header(&h, "ratelimit-resettime").ends_with(" GMT"));

    // 429 from the throttle for the next two matching requests, then success.
    f.server.inject(Fault::new(
        "/merge_requests/7",
        FaultKind::TooManyRequests {
            retry_after_secs: 3,
        },
        2,
    ));
    for _ in 0..2 {
        let (status, h, v) = f.get(&mrs).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(header(&h, "retry-after"), "3");
        assert_eq!(header(&h, "ratelimit-remaining"), "0");
        assert_eq!(v, json!("Retry later\n"));
    }
    let (status, _, _) = f.get(&mrs).await;
    assert_eq!(status, StatusCode::OK);

    // Note creation's application limit: 429 while the headers still show quota.
    let notes = format!("/projects/{p}/merge_requests/7/notes");
    f.server.inject(
        Fault::new(
            "/notes",
            FaultKind::ApplicationLimit {
                retry_after_secs: Some(60),
            },
            1,
        )
        .method("POST"),
    );
    let (status, _, _) = f.get(&notes).await;
    assert_eq!(status, StatusCode::OK, "GETs are not matched");
    let (status, h, v) = f
        .call(
            Method::POST,
            &notes,
            Some(&f.token),
            Some(json!({"body": "x"})),
        )
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        v,
        json!({"message": {"error": "This endpoint has been requested too many times. Try again later."}})
    );
    assert_ne!(header(&h, "ratelimit-remaining"), "0");
    assert_eq!(header(&h, "retry-after"), "60");
    assert!(
        f.server.notes(p, 7).is_empty(),
        "a refused request changes nothing"
    );
    let (status, _, _) = f
        .call(
            Method::POST,
            &notes,
            Some(&f.token),
            Some(json!({"body": "x"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);

    // The same limit for real.
    f.server.set_note_creation_limit(Some(2));
    let mut statuses = Vec::new();
    for _ in 0..2 {
        let (status, _, _) = f
            .call(
                Method::POST,
                &notes,
                Some(&f.token),
                Some(json!({"body": "y"})),
            )
            .await;
        statuses.push(status);
    }
    assert_eq!(
        statuses,
        [StatusCode::CREATED, StatusCode::TOO_MANY_REQUESTS]
    );
    f.server.set_note_creation_limit(None);

    // Server errors, in order.
    for status in [500u16, 502, 503] {
        f.server.inject(Fault::new(
            "/versions",
            FaultKind::ServerError { status },
            1,
        ));
    }
    for expected in [500u16, 502, 503, 200] {
        let (status, _, _) = f.get(&format!("{mrs}/versions")).await;
        assert_eq!(status.as_u16(), expected);
    }

    // A slow answer: a client with a shorter timeout gives up; the fault is then spent.
    f.server.inject(Fault::new(
        "/versions",
        FaultKind::Delay(Duration::from_millis(1500)),
        1,
    ));
    let err = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap()
        .get(format!("{}{mrs}/versions", f.server.api_url()))
        .header("PRIVATE-TOKEN", &f.token)
        .send()
        .await
        .expect_err("times out");
    assert!(err.is_timeout(), "{err}");
    let (status, _, _) = f.get(&format!("{mrs}/versions")).await;
    assert_eq!(status, StatusCode::OK);

    // The throttle itself.
    let limited = f.server.add_token(f.bot, &["api"]);
    f.server.set_rate_limit(3);
    for _ in 0..3 {
        let (status, _, _) = f.call(Method::GET, &mrs, Some(&limited), None).await;
        assert_eq!(status, StatusCode::OK);
    }
    let (status, h, _) = f.call(Method::GET, &mrs, Some(&limited), None).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = header(&h, "retry-after").parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    assert_eq!(header(&h, "ratelimit-remaining"), "0");

    // Counted per route (faulted requests included).
    assert_eq!(
        f.server
            .request_count("GET", "/projects/:id/merge_requests/:iid"),
        8
    );
    assert_eq!(
        f.server
            .request_count("POST", "/projects/:id/merge_requests/:iid/notes"),
        4
    );
    assert_eq!(
        f.server
            .request_count("GET", "/projects/:id/merge_requests/:iid/versions"),
        6
    );
    f.assert_no_violations();
}

#[tokio::test]
async fn a_self_managed_instance_under_a_sub_path_over_https() {
    let ca = crate::TestCa::new("Picket test CA");
    let server = GitLabServer::start_with(GitLabConfig {
        base_path: "/gitlab/api/v4".into(),
        tls: Some(ca.server_config(&["127.0.0.1"])),
    })
    .await;
    let mut f = Fixture::with(server).await;
    f.http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca.cert_pem().as_bytes()).unwrap())
        .build()
        .unwrap();
    assert!(f.server.api_url().starts_with("https://127.0.0.1:"));
    assert!(f.server.api_url().ends_with("/gitlab/api/v4"));
    let (status, _, v) = f.get(&format!("/projects/{}", f.project)).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(
        v["web_url"],
        json!(format!("{}/acme/platform/app", f.server.url()))
    );
    assert!(f.server.url().ends_with("/gitlab"));
    let (_, h, _) = f.get("/projects?per_page=1").await;
    assert!(
        header(&h, "link").contains(&format!(
            "<{}/projects?page=1&per_page=1>",
            f.server.api_url()
        )),
        "{}",
        header(&h, "link")
    );
    // /api/v4 without the sub-path is not the API.
    let (status, _, _) = send(
        f.http
            .get(format!("https://{}/api/v4/user", f.server.addr()))
            .header("PRIVATE-TOKEN", &f.token),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let v = f.server.violations();
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(v[0].contains("outside the API base path /gitlab/api/v4"));
}
