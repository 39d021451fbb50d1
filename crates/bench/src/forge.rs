//! The providers' test servers as the benchmarks use them: started with a bot identity Picket
//! can act as, connected to Picket through `POST /api/v1/connections` as an admin does, and
//! asked afterwards what they received and which of those requests their provider's reference
//! refuses (every benchmark fails on one).

use crate::{connection_id, create_connection, Provider};
use anyhow::Context;
use picket_test_support::azure::{self, AzureServer, TestPullRequest};
use picket_test_support::bitbucket::{self, BitbucketServer};
use picket_test_support::github::{self, signature_256, GitHubServer, TestApp};
use picket_test_support::gitlab::{self, access, GitLabServer, TestMergeRequest};
use picket_test_support::{git, run};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

/// The GitLab group, Bitbucket workspace and GitHub account the benchmark repositories live in.
pub(crate) const OWNER: &str = "acme";
/// The Azure DevOps project the benchmark repositories live in.
pub(crate) const AZURE_PROJECT: &str = "Platform";
/// The bot Picket acts as on GitLab and Bitbucket.
pub(crate) const BOT: &str = "picket-bot";
/// The Azure DevOps identity whose personal access token Picket holds.
const AZURE_USER: &str = "picket@acme.example";
/// The webhook secret of the GitLab and Bitbucket connections (GitHub's is its App's, Azure
/// DevOps's is drawn by Picket).
const HOOK_SECRET: &str = "picket-bench-hook-secret-0123456789";

/// A provider's test server and the credential Picket is given for it.
pub(crate) enum Forge {
    Github(GitHubServer, TestApp),
    /// The server and the bot's token (scopes `api`, `read_repository`).
    Gitlab(GitLabServer, String),
    /// The server and a workspace access token of Picket's scopes.
    Bitbucket(BitbucketServer, String),
    /// The server and a personal access token.
    Azure(AzureServer, String),
}

/// A connection Picket holds for a [`Forge`].
#[derive(Debug, Clone)]
pub(crate) struct Connected {
    pub id: uuid::Uuid,
    /// What authenticates a delivery: the HMAC key (GitHub, Bitbucket), the hook's token
    /// (GitLab), the Basic-auth password Picket drew (Azure DevOps).
    pub secret: String,
    /// The receiver's path, `/webhooks/{provider}/{connection}`.
    pub hook_path: String,
}

impl Forge {
    /// Starts `provider`'s test server, with the identity Picket will act as.
    pub(crate) async fn start(provider: Provider) -> Forge {
        match provider {
            Provider::Github => {
                let server = GitHubServer::start().await;
                let app = server.add_app("picket");
                Forge::Github(server, app)
            }
            Provider::Gitlab => {
                let server = GitLabServer::start().await;
                let bot = server.add_bot(BOT);
                let token = server.add_token(bot, &["api", "read_repository"]);
                let group = server.add_group(OWNER);
                server.add_group_member(group, bot, access::DEVELOPER);
                Forge::Gitlab(server, token)
            }
            Provider::Bitbucket => {
                let server = BitbucketServer::start(OWNER).await;
                let token = server.add_token(BOT, bitbucket::PICKET_SCOPES);
                Forge::Bitbucket(server, token)
            }
            Provider::Azure => {
                let server = AzureServer::start(OWNER, AZURE_PROJECT).await;
                let pat = server.add_pat(AZURE_USER);
                Forge::Azure(server, pat)
            }
        }
    }

    pub(crate) fn provider(&self) -> Provider {
        match self {
            Forge::Github(..) => Provider::Github,
            Forge::Gitlab(..) => Provider::Gitlab,
            Forge::Bitbucket(..) => Provider::Bitbucket,
            Forge::Azure(..) => Provider::Azure,
        }
    }

    /// Creates a connection `name` to this server through the API at `api`, as `token`'s admin.
    pub(crate) async fn connect(
        &self,
        api: &str,
        token: &str,
        name: &str,
    ) -> anyhow::Result<Connected> {
        let body = match self {
            Forge::Github(server, app) => json!({
                "provider": "github", "name": name, "base_url": server.api_url(),
                "credentials": {"app_id": app.id, "private_key": app.private_key_pem,
                                "webhook_secret": app.webhook_secret},
            }),
            Forge::Gitlab(server, bot_token) => json!({
                "provider": "gitlab", "name": name, "base_url": server.api_url(),
                "credentials": {"token": bot_token, "webhook_secret": HOOK_SECRET, "group": OWNER},
            }),
            Forge::Bitbucket(server, bot_token) => json!({
                "provider": "bitbucket", "name": name, "base_url": server.api_url(),
                "credentials": {"token": bot_token, "webhook_secret": HOOK_SECRET,
                                "workspace": OWNER},
            }),
            Forge::Azure(server, pat) => json!({
                "provider": "azure_devops", "name": name, "base_url": server.api_url(),
                "credentials": {"pat": pat, "project": AZURE_PROJECT},
            }),
        };
        let conn = create_connection(api, token, body).await?;
        let id = connection_id(&conn)?;
        let secret = match self {
            Forge::Github(_, app) => app.webhook_secret.clone(),
            Forge::Gitlab(..) | Forge::Bitbucket(..) => HOOK_SECRET.to_owned(),
            Forge::Azure(..) => conn["webhook_password"]
                .as_str()
                .context("the Azure DevOps connection shows no webhook password")?
                .to_owned(),
        };
        Ok(Connected {
            id,
            secret,
            hook_path: format!("/webhooks/{}/{id}", self.provider().route()),
        })
    }

    /// Requests the server has received so far.
    pub(crate) fn request_count(&self) -> usize {
        match self {
            Forge::Github(s, _) => s.requests().len(),
            Forge::Gitlab(s, _) => s.requests().len(),
            Forge::Bitbucket(s, _) => s.requests().len(),
            Forge::Azure(s, _) => s.requests().len(),
        }
    }

    /// Fails when the provider's reference refuses a request the server received.
    pub(crate) fn check(&self) -> anyhow::Result<()> {
        let violations = match self {
            Forge::Github(s, _) => s.violations(),
            Forge::Gitlab(s, _) => s.violations(),
            Forge::Bitbucket(s, _) => s.violations(),
            Forge::Azure(s, _) => s.violations(),
        };
        anyhow::ensure!(
            violations.is_empty(),
            "requests {}'s reference refuses: {violations:#?}",
            self.provider().title()
        );
        Ok(())
    }
}

/// The benchmark repository's name on every provider (`acme/shop`, `Platform/shop`).
pub(crate) const REPO_NAME: &str = "shop";
/// The pull request's source branch.
const SOURCE_BRANCH: &str = "feature";
/// The pull request's author.
const AUTHOR: &str = "alice";

/// The benchmark repository as a provider's server knows it.
#[derive(Debug, Clone)]
pub(crate) struct ServerRepo {
    /// The provider's id of it: Picket's `provider_repo_id`.
    pub id: String,
    pub full_name: String,
    /// GitHub: the App installation it is reached through.
    pub installation: Option<u64>,
}

/// A push to the pull request: where its head moves, and what the diff then is.
#[derive(Debug)]
pub(crate) struct Push<'a> {
    /// The bare repository the worker clones (`file://`).
    pub git: &'a Path,
    pub number: u64,
    pub head: &'a str,
    /// The previous head; `None` for the push that opens the pull request.
    pub before: Option<&'a str>,
    pub merge_base: &'a str,
    /// The target branch's tip.
    pub target: &'a str,
    /// The new-side lines of each file of the diff, as the provider shows them.
    pub diff: &'a BTreeMap<String, Vec<u64>>,
}

/// A webhook delivery: its headers and body.
pub(crate) type Delivery = (Vec<(String, String)>, Vec<u8>);

/// How a provider's request moved the pull request's check (a GitHub check run, a GitLab
/// commit status, a Bitbucket Code Insights report or build status, an Azure DevOps pull
/// request status).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CheckMove {
    /// Shown as waiting (GitHub `queued`, GitLab `pending`; Bitbucket and Azure DevOps have one
    /// state for waiting and running).
    Waiting,
    /// Shown as running (GitHub `in_progress`, GitLab `running`).
    Running,
    Completed,
}

/// One request a provider's server received, as the benchmark counts it.
#[derive(Debug, Clone)]
pub(crate) struct Call {
    pub at: Instant,
    /// The method and the route's template (`POST /projects/:id/statuses/:sha`).
    pub operation: String,
    /// The credential it carried.
    pub credential: String,
    /// What it did to the check, and the state as the provider names it.
    pub check: Option<(CheckMove, String)>,
    /// It wrote, edited or resolved a comment or thread.
    pub writes_comment: bool,
    /// It minted a GitHub installation token.
    pub mints: bool,
}

impl Forge {
    /// Registers the benchmark repository (cloned from `clone_url`, default branch `main`).
    pub(crate) fn add_repository(&self, clone_url: &str) -> ServerRepo {
        let full_name = format!("{OWNER}/{REPO_NAME}");
        match self {
            Forge::Github(server, app) => {
                let installation = server.add_installation(app.id, OWNER);
                let id = server.add_repo(installation, &full_name, "main", clone_url);
                ServerRepo {
                    id: id.to_string(),
                    full_name,
                    installation: Some(installation),
                }
            }
            Forge::Gitlab(server, _) => {
                let id = server.add_project(OWNER, REPO_NAME);
                server.update_project(id, |p| p.http_url_to_repo = clone_url.to_owned());
                let author = server.add_user(AUTHOR);
                server.add_project_member(id, author, access::MAINTAINER);
                ServerRepo {
                    id: id.to_string(),
                    full_name,
                    installation: None,
                }
            }
            Forge::Bitbucket(server, _) => ServerRepo {
                id: server.add_repo(REPO_NAME, "main", clone_url),
                full_name,
                installation: None,
            },
            Forge::Azure(server, _) => ServerRepo {
                id: server.add_repo(REPO_NAME, Some("main")),
                full_name: format!("{AZURE_PROJECT}/{REPO_NAME}"),
                installation: None,
            },
        }
    }

    /// Moves the pull request to `push.head`: the git ref the worker fetches (Azure DevOps: a
    /// merge commit of the target and the head, as `refs/pull/<n>/merge` is), and the server's
    /// state (the pull request, its diff version or iteration, merge base, diff lines).
    pub(crate) fn push(&self, repo: &ServerRepo, push: &Push<'_>) -> anyhow::Result<()> {
        let provider = match self.provider() {
            Provider::Github => picket_core::Provider::Github,
            Provider::Gitlab => picket_core::Provider::Gitlab,
            Provider::Bitbucket => picket_core::Provider::Bitbucket,
            Provider::Azure => picket_core::Provider::AzureDevops,
        };
        let git_ref = picket_vcs::provider::pull_request_ref(provider, push.number, SOURCE_BRANCH);
        let fetched = match self {
            Forge::Azure(..) => {
                let tree = format!("{}^{{tree}}", push.head);
                let mut merge = git(push.git);
                for (k, v) in [
                    ("GIT_AUTHOR_NAME", "Azure DevOps"),
                    ("GIT_AUTHOR_EMAIL", "azure@example.test"),
                    ("GIT_COMMITTER_NAME", "Azure DevOps"),
                    ("GIT_COMMITTER_EMAIL", "azure@example.test"),
                ] {
                    merge.env(k, v);
                }
                run(merge.args([
                    "commit-tree",
                    &tree,
                    "-p",
                    push.target,
                    "-p",
                    push.head,
                    "-m",
                    "Merge",
                ]))
                .trim()
                .to_owned()
            }
            _ => push.head.to_owned(),
        };
        run(git(push.git).args(["update-ref", &git_ref, &fetched]));
        let (number, head, base) = (push.number, push.head, push.merge_base);
        let title = "Reports: parse, render, digest";
        match self {
            Forge::Github(server, _) => {
                let id: u64 = repo.id.parse()?;
                if push.before.is_none() {
                    server.add_pull(
                        id,
                        github::TestPull {
                            number,
                            head_sha: head.into(),
                            head_ref: SOURCE_BRANCH.into(),
                            base_ref: "main".into(),
                            base_sha: push.target.into(),
                            merge_base: base.into(),
                            title: title.into(),
                            author: AUTHOR.into(),
                            ..github::TestPull::default()
                        },
                    );
                } else {
                    server.update_pull(id, number, |p| p.head_sha = head.into());
                }
                for (path, lines) in push.diff {
                    server.set_diff_lines(id, number, path, lines);
                }
            }
            Forge::Gitlab(server, _) => {
                let id: u64 = repo.id.parse()?;
                if push.before.is_none() {
                    let mut mr = TestMergeRequest::new(number, SOURCE_BRANCH, head, AUTHOR);
                    mr.title = title.into();
                    server.add_merge_request(id, mr);
                }
                server.push_version(id, number, base, push.target, head);
                server.set_merge_base(id, "main", head, base);
                server.set_merge_base(id, push.target, head, base);
                for (path, lines) in push.diff {
                    server.set_diff_lines(id, number, head, path, lines);
                }
            }
            Forge::Bitbucket(server, _) => {
                if push.before.is_none() {
                    let mut pull =
                        bitbucket::TestPull::open(number, SOURCE_BRANCH, head, push.target, AUTHOR);
                    pull.title = title.into();
                    server.add_pull(REPO_NAME, pull);
                } else {
                    server.update_pull(REPO_NAME, number, |p| p.head = head.into());
                }
                server.set_merge_base(REPO_NAME, push.target, head, base);
                for (path, lines) in push.diff {
                    server.set_diff_lines(REPO_NAME, number, path, lines);
                }
            }
            Forge::Azure(server, _) => {
                server.set_ref(&repo.id, "refs/heads/main", push.target);
                server.set_ref(&repo.id, &format!("refs/heads/{SOURCE_BRANCH}"), head);
                server.set_merge_base(&repo.id, push.target, head, base);
                let changed: Vec<&str> = push.diff.keys().map(String::as_str).collect();
                if push.before.is_none() {
                    server.add_pull(
                        &repo.id,
                        TestPullRequest {
                            id: number,
                            title: title.into(),
                            source_branch: SOURCE_BRANCH.into(),
                            target_branch: "main".into(),
                            head: head.into(),
                            base: push.target.into(),
                            merge_base: base.into(),
                            changed_paths: changed.iter().map(|p| p.to_string()).collect(),
                            author: format!("{AUTHOR}@acme.example"),
                            ..TestPullRequest::default()
                        },
                    );
                } else {
                    server.push_iteration(&repo.id, number, head, push.target, base, &changed);
                }
            }
        }
        Ok(())
    }

    /// The webhook the provider sends for `push` (`opened` or its provider's new-code event),
    /// authenticated for `conn`: its headers and body.
    pub(crate) fn delivery(
        &self,
        conn: &Connected,
        repo: &ServerRepo,
        push: &Push<'_>,
    ) -> anyhow::Result<Delivery> {
        let id = uuid::Uuid::new_v4().to_string();
        let now = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)?;
        let opened = push.before.is_none();
        let header = |k: &str, v: &str| (k.to_owned(), v.to_owned());
        let (mut headers, body) = match self {
            Forge::Github(server, app) => {
                let action = if opened { "opened" } else { "synchronize" };
                let payload =
                    server.pull_request_payload(repo.id.parse()?, push.number, action, push.before);
                let d = server.webhook(app, "pull_request", &payload);
                return Ok((d.headers, d.body));
            }
            Forge::Gitlab(..) => {
                let mut p = fixture("gitlab/merge_request_open.json")?;
                let project: u64 = repo.id.parse()?;
                p["project"]["id"] = json!(project);
                p["project"]["path_with_namespace"] = json!(repo.full_name);
                let mr = &mut p["object_attributes"];
                mr["action"] = json!(if opened { "open" } else { "update" });
                mr["iid"] = json!(push.number);
                mr["source_project_id"] = json!(project);
                mr["target_project_id"] = json!(project);
                mr["source_branch"] = json!(SOURCE_BRANCH);
                mr["target_branch"] = json!("main");
                mr["last_commit"]["id"] = json!(push.head);
                mr["updated_at"] = json!(now);
                if let Some(before) = push.before {
                    mr["oldrev"] = json!(before);
                }
                let headers = vec![
                    header("x-gitlab-event", "Merge Request Hook"),
                    header("idempotency-key", &id),
                    header("x-gitlab-token", &conn.secret),
                ];
                (headers, serde_json::to_vec(&p)?)
            }
            Forge::Bitbucket(..) => {
                let (event, name) = if opened {
                    ("pullrequest:created", "bitbucket/pullrequest_created.json")
                } else {
                    ("pullrequest:updated", "bitbucket/pullrequest_updated.json")
                };
                let mut p = fixture(name)?;
                for at in [
                    "/repository",
                    "/pullrequest/source/repository",
                    "/pullrequest/destination/repository",
                ] {
                    let r = p.pointer_mut(at).context(at)?;
                    r["uuid"] = json!(repo.id);
                    r["full_name"] = json!(repo.full_name);
                    r["name"] = json!(REPO_NAME);
                }
                let pr = &mut p["pullrequest"];
                pr["id"] = json!(push.number);
                pr["updated_on"] = json!(now);
                pr["source"]["branch"]["name"] = json!(SOURCE_BRANCH);
                // Bitbucket abbreviates hashes to 12 digits: the receiver resolves the head.
                pr["source"]["commit"]["hash"] = json!(push.head[..12]);
                pr["destination"]["commit"]["hash"] = json!(push.target[..12]);
                let body = serde_json::to_vec(&p)?;
                let headers = vec![
                    header("x-event-key", event),
                    header("x-request-uuid", &id),
                    header("x-attempt-number", "1"),
                    header("x-hub-signature", &signature_256(&conn.secret, &body)),
                ];
                (headers, body)
            }
            Forge::Azure(server, _) => {
                let name = if opened {
                    "azure/pullrequest_created.json"
                } else {
                    "azure/pullrequest_updated.json"
                };
                let mut p = fixture(name)?;
                p["id"] = json!(id);
                p["createdDate"] = json!(now);
                let pr = &mut p["resource"];
                pr["repository"]["id"] = json!(repo.id);
                pr["repository"]["name"] = json!(REPO_NAME);
                pr["repository"]["project"]["id"] = json!(server.project_id());
                pr["repository"]["project"]["name"] = json!(AZURE_PROJECT);
                pr["pullRequestId"] = json!(push.number);
                pr["sourceRefName"] = json!(format!("refs/heads/{SOURCE_BRANCH}"));
                pr["targetRefName"] = json!("refs/heads/main");
                pr["lastMergeSourceCommit"]["commitId"] = json!(push.head);
                pr["lastMergeTargetCommit"]["commitId"] = json!(push.target);
                let auth = azure_basic(&conn.secret)?;
                (
                    vec![header("authorization", &auth)],
                    serde_json::to_vec(&p)?,
                )
            }
        };
        headers.push(header("content-type", "application/json"));
        Ok((headers, body))
    }
}

impl Call {
    /// A call to a provider whose credential is the connection's own (nothing minted), named
    /// after its path with `names` as [`route_template`] takes them.
    fn rest(
        at: Instant,
        method: &str,
        path: &str,
        names: &[(&str, &str)],
        credential: String,
        check: Option<(CheckMove, String)>,
    ) -> Call {
        Call {
            at,
            operation: format!("{method} {}", route_template(path, names)),
            credential,
            check,
            writes_comment: writes_comment(method, path),
            mints: false,
        }
    }
}

impl Forge {
    /// Every request the server has received, as the benchmark counts them.
    pub(crate) fn calls(&self) -> Vec<Call> {
        let github_names = [(OWNER, "{owner}"), (REPO_NAME, "{repo}")];
        let bitbucket_names = [(OWNER, "{workspace}"), (REPO_NAME, "{repo_slug}")];
        let azure_names = [(OWNER, "{organization}"), (AZURE_PROJECT, "{project}")];
        match self {
            Forge::Github(server, _) => server
                .requests()
                .iter()
                .map(|r| {
                    let body = r.body.as_ref().unwrap_or(&Value::Null);
                    let check = r.path.contains("/check-runs").then(|| {
                        match body["status"].as_str().unwrap_or_default() {
                            "queued" => (CheckMove::Waiting, "queued".to_owned()),
                            "in_progress" => (CheckMove::Running, "in_progress".to_owned()),
                            _ => (CheckMove::Completed, text(&body["conclusion"])),
                        }
                    });
                    let mutation = r.path == "/graphql"
                        && body["query"]
                            .as_str()
                            .is_some_and(|q| q.trim_start().starts_with("mutation"));
                    Call {
                        at: r.at,
                        operation: github_operation(&r.method, &r.path, body, &github_names),
                        credential: github_credential(&r.auth).to_owned(),
                        check,
                        writes_comment: mutation || writes_comment(&r.method, &r.path),
                        mints: r.method == "POST" && r.path.ends_with("/access_tokens"),
                    }
                })
                .collect(),
            Forge::Gitlab(server, _) => server
                .requests()
                .iter()
                .map(|r| {
                    // The server's route where it has one (it names it as GitLab's docs do).
                    let operation = r.route.map_or_else(
                        || format!("{} {}", r.method, route_template(&r.path, &[])),
                        str::to_owned,
                    );
                    let check =
                        (r.method == "POST" && operation.contains("/statuses/")).then(|| {
                            let state = text(&r.params["state"]);
                            let moved = match state.as_str() {
                                "pending" => CheckMove::Waiting,
                                "running" => CheckMove::Running,
                                _ => CheckMove::Completed,
                            };
                            (moved, state)
                        });
                    let credential = match &r.auth {
                        gitlab::Auth::Token { username, via, .. } => {
                            format!("{username}'s token ({via})")
                        }
                        other => format!("{other:?}"),
                    };
                    let call = Call::rest(r.at, &r.method, &r.path, &[], credential, check);
                    Call { operation, ..call }
                })
                .collect(),
            Forge::Bitbucket(server, _) => server
                .requests()
                .iter()
                .map(|r| {
                    let body = r.body.as_ref().unwrap_or(&Value::Null);
                    let report = r.method == "PUT" && r.path.contains("/reports/");
                    let build = r.method == "POST" && r.path.ends_with("/statuses/build");
                    let check = (report || build).then(|| {
                        let state = text(if report {
                            &body["result"]
                        } else {
                            &body["state"]
                        });
                        let moved = match state.as_str() {
                            "PENDING" | "INPROGRESS" => CheckMove::Waiting,
                            _ => CheckMove::Completed,
                        };
                        (moved, state)
                    });
                    let credential = match &r.token {
                        Some(name) => format!("access token ({name})"),
                        None => "none".to_owned(),
                    };
                    Call::rest(
                        r.at,
                        &r.method,
                        &r.path,
                        &bitbucket_names,
                        credential,
                        check,
                    )
                })
                .collect(),
            Forge::Azure(server, _) => server
                .requests()
                .iter()
                .map(|r| {
                    let body = r.body.as_ref().unwrap_or(&Value::Null);
                    let check = (r.method == "POST" && r.path.ends_with("/statuses")).then(|| {
                        let state = text(&body["state"]);
                        let moved = if state == "pending" {
                            CheckMove::Waiting
                        } else {
                            CheckMove::Completed
                        };
                        (moved, state)
                    });
                    let credential = match &r.auth {
                        azure::Auth::Pat { .. } => "PAT (Basic)".to_owned(),
                        other => format!("{other:?}"),
                    };
                    Call::rest(r.at, &r.method, &r.path, &azure_names, credential, check)
                })
                .collect(),
        }
    }
}

/// A JSON string's text, or the value as JSON.
fn text(v: &Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_owned)
}

/// Whether a request writes, edits or resolves a comment, a review, a discussion or a thread.
fn writes_comment(method: &str, path: &str) -> bool {
    let path = path.to_ascii_lowercase();
    method != "GET"
        && [
            "comment",
            "/reviews",
            "/replies",
            "/discussions",
            "/notes",
            "/threads",
        ]
        .iter()
        .any(|w| path.contains(w))
}

/// A request path as its provider's reference writes the route: the names in `names` (owner,
/// repository, project) as their parameter, numbers as `{id}`, commit hashes as `{sha}`, GUIDs
/// (Bitbucket's in braces, percent-encoded or not) as `{uuid}`, GitHub's `base...head` as
/// `{basehead}`, Bitbucket's `a..b` as `{revspec}` and its report ids as `{reportId}`.
fn route_template(path: &str, names: &[(&str, &str)]) -> String {
    let hex = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit());
    let segs: Vec<&str> = path.split('/').collect();
    segs.iter()
        .enumerate()
        .map(|(i, seg)| {
            let seg = *seg;
            let plain = seg
                .replace("%7B", "")
                .replace("%7D", "")
                .replace("%7b", "")
                .replace("%7d", "");
            let plain = plain.trim_matches(['{', '}']);
            let guid = plain.len() == 36
                && plain.split('-').map(str::len).eq([8, 4, 4, 4, 12])
                && hex(&plain.replace('-', ""));
            match names.iter().find(|(n, _)| *n == seg) {
                Some((_, param)) => (*param).to_owned(),
                None if !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit()) => "{id}".into(),
                None if seg.contains("...") => "{basehead}".into(),
                None if seg.contains("..") => "{revspec}".into(),
                None if i > 0 && segs[i - 1] == "reports" => "{reportId}".into(),
                None if seg.len() >= 12 && hex(seg) => "{sha}".into(),
                None if guid => "{uuid}".into(),
                None => seg.to_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// A GitHub request's operation, as GitHub's REST reference names paths; GraphQL by its
/// operation (`mutation resolveReviewThread`, ...); a token mint with what it asked for.
fn github_operation(method: &str, path: &str, body: &Value, names: &[(&str, &str)]) -> String {
    if path == "/graphql" {
        // `query|mutation [name] [(variables)] { field ...`: the kind and the root field.
        let query = body["query"].as_str().unwrap_or_default().trim_start();
        let kind = if query.starts_with("mutation") {
            "mutation"
        } else {
            "query"
        };
        let field = query
            .split_once('{')
            .map(|(_, rest)| rest)
            .unwrap_or_default()
            .split(|c: char| !c.is_alphanumeric() && c != '_')
            .find(|w| !w.is_empty())
            .unwrap_or("?");
        return format!("POST /graphql ({kind} {field})");
    }
    let mut op = format!("{method} {}", route_template(path, names));
    // Who minted a token shows in what it asked for.
    if op.ends_with("/access_tokens") && !body.is_null() {
        let perms: Vec<String> = body["permissions"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| format!("{k}: {}", v.as_str().unwrap_or("?")))
            .collect();
        let repos = body["repository_ids"].as_array().map_or(0, Vec::len);
        op.push_str(&format!(" ({}; {repos} repositories)", perms.join(", ")));
    }
    op
}

fn github_credential(a: &github::Auth) -> &'static str {
    match a {
        github::Auth::None => "none",
        github::Auth::Jwt { .. } => "App JWT",
        github::Auth::InstallationToken { .. } => "installation token",
        github::Auth::Invalid => "refused",
    }
}

/// A fixture of picket-vcs's webhook tests, `provider/name.json`.
pub(crate) fn fixture(path: &str) -> anyhow::Result<Value> {
    let file = format!(
        "{}/../vcs/tests/vcs/fixtures/{path}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&file).with_context(|| file.clone())?;
    Ok(serde_json::from_str(&text)?)
}

/// The `Authorization` header of an Azure DevOps Web Hooks subscription with `password`:
/// Basic, user [`picket_vcs::azure::webhook::USERNAME`] (as reqwest writes it).
pub(crate) fn azure_basic(password: &str) -> anyhow::Result<String> {
    let request = reqwest::Client::new()
        .post("http://127.0.0.1/")
        .basic_auth(picket_vcs::azure::webhook::USERNAME, Some(password))
        .build()?;
    let value = request
        .headers()
        .get("authorization")
        .context("no Basic authorization")?;
    Ok(value.to_str()?.to_owned())
}
