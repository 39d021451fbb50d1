//! Supply Chain on the pages: a finding's vulnerable dependency (Finding page), what a scan read
//! of the lockfiles (Scan page: a lockfile it could not read, no lockfile at all), and the
//! severity selectors and per-advisory modes (Policies page).

use crate::App;
use axum::http::StatusCode;
use picket_core::protocol::{
    LockfileRead, ReportedFinding, ScanTrail, SupplyChainTrail, TrailEntry, VulnerableDependency,
};
use picket_core::{Ecosystem, Fingerprint, Product, Role, RuleId, RuleMode, Severity};
use picket_db::findings;
use picket_db::policies;
use sqlx::PgPool;
use std::collections::BTreeMap;

fn rule(s: &str) -> RuleId {
    s.parse().unwrap()
}

/// A supply-chain finding of `package` in `lockfile`, as the worker reports it.
fn vulnerable(
    lockfile: &str,
    line: u32,
    severity: Severity,
    dep: VulnerableDependency,
    group: &str,
) -> ReportedFinding {
    let r = rule(group);
    ReportedFinding {
        product: Product::SupplyChain,
        fingerprint: Fingerprint::compute(
            &r,
            lockfile,
            &format!("{} {}", dep.ecosystem.as_str(), dep.package),
            0,
        ),
        rule_id: r,
        path: lockfile.to_owned(),
        start_line: line,
        end_line: line,
        severity,
        message: format!(
            "{} {} is affected by {group}.",
            dep.package,
            dep.versions.join(", ")
        ),
        new_in_pr: false,
        secret: None,
        suppressed: None,
        matched_lines: Vec::new(),
        dependency: Some(dep),
    }
}

/// lodash 4.17.20, transitive, dev only, rated high by a CVSS v3 vector, fixed in 4.17.21.
fn lodash() -> ReportedFinding {
    vulnerable(
        "web/package-lock.json",
        41,
        Severity::High,
        VulnerableDependency {
            ecosystem: Ecosystem::Npm,
            package: "lodash".into(),
            versions: vec!["4.17.20".into(), "4.17.19".into()],
            advisories: vec!["GHSA-35jh-r3h4-6jhm".into()],
            aliases: vec!["CVE-2021-23337".into(), "GHSA-35jh-r3h4-6jhm".into()],
            fixed: vec!["4.17.21".into()],
            direct: Some(false),
            dev: Some(true),
            severity_source: Some("cvss_v3".into()),
            summary: Some("Command Injection in lodash".into()),
        },
        "CVE-2021-23337",
    )
}

/// A Go module no advisory rates (shown medium) and no version fixes, direct, dev unknown.
fn unrated() -> ReportedFinding {
    vulnerable(
        "go.mod",
        7,
        Severity::Medium,
        VulnerableDependency {
            ecosystem: Ecosystem::Go,
            package: "github.com/acme/yaml".into(),
            versions: vec!["v1.2.0".into()],
            advisories: vec!["GO-2024-2550".into()],
            aliases: vec!["GO-2024-2550".into()],
            fixed: vec![],
            direct: Some(true),
            dev: None,
            severity_source: None,
            summary: None,
        },
        "GO-2024-2550",
    )
}

async fn finding_id(app: &App, project: picket_core::ProjectId, f: &ReportedFinding) -> String {
    findings::by_fingerprint(&app.pool, app.org, project, f.fingerprint.as_str())
        .await
        .unwrap()
        .expect("the finding is stored")
        .id
        .to_string()
}

fn trail(supply_chain: Option<SupplyChainTrail>) -> ScanTrail {
    ScanTrail {
        supply_chain,
        ..ScanTrail::default()
    }
}

fn lockfile(path: &str, format: &str, ecosystem: Ecosystem, packages: u64) -> LockfileRead {
    LockfileRead {
        path: path.to_owned(),
        format: format.to_owned(),
        ecosystem,
        packages,
        not_registry: 0,
        unresolved: Vec::new(),
        unchecked: Vec::new(),
        error: None,
        merge_base: false,
    }
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn a_supply_chain_finding_shows_its_dependency_advisories_and_mode(pool: PgPool) {
    let mut app = App::start(pool).await;
    let (project, scan) = app.project("acme/shop").await;
    app.report(
        scan,
        vec![lodash(), unrated()],
        trail(Some(SupplyChainTrail {
            lockfiles: vec![
                lockfile("go.mod", "go-mod", Ecosystem::Go, 12),
                lockfile("web/package-lock.json", "package-lock", Ecosystem::Npm, 300),
            ],
            advisories: 2,
            empty_ecosystems: Vec::new(),
        })),
    )
    .await;
    let mut tx = app.pool.begin().await.unwrap();
    policies::put(
        &mut tx,
        app.org,
        "default",
        &BTreeMap::from([(rule("supply-chain:high"), RuleMode::Block)]),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();

    let id = finding_id(&app, project, &lodash()).await;
    let page = app.get(&format!("/findings/{id}")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    page.has("<h1><code>CVE-2021-23337</code> in <code>lodash</code></h1>")
        .has("<code>web/package-lock.json</code>, line 41 (where the lockfile pins the package)")
        // The matched-lines section is not shown for a lockfile entry.
        .lacks("Matched lines");
    let dep = page.part(
        "<section class=\"card\" aria-labelledby=\"dependency-heading\"",
        "</section>",
    );
    dep.has("<p>Command Injection in lodash</p>")
        .has("<dt>Package</dt><dd><code>lodash</code></dd>")
        .has("<dt>Ecosystem</dt><dd>npm</dd>")
        .has("<dt>Installed versions</dt><dd><code>4.17.20</code>, <code>4.17.19</code></dd>")
        .has("<dt>Direct or transitive</dt><dd>transitive dependency</dd>")
        .has("<dt>Development only</dt><dd>yes: only development installs get it</dd>")
        .has("<dt>Fixed in</dt><dd><code>4.17.21</code></dd>")
        .has("<dt>Advisory</dt><dd><a href=\"https://osv.dev/vulnerability/GHSA-35jh-r3h4-6jhm\" rel=\"noreferrer\">GHSA-35jh-r3h4-6jhm</a></dd>")
        // The aliases are the group's other ids, each linked.
        .has("<dt>Aliases</dt><dd><a href=\"https://osv.dev/vulnerability/CVE-2021-23337\" rel=\"noreferrer\">CVE-2021-23337</a></dd>")
        .has("CVSS v3 vector; policies select it as <code>supply-chain:high</code>")
        .has("<strong>block</strong>: set for its severity (supply-chain:high)");

    // Unrated, no fix known, direct, the lockfile silent on dev.
    let id = finding_id(&app, project, &unrated()).await;
    let page = app.get(&format!("/findings/{id}")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let dep = page.part(
        "<section class=\"card\" aria-labelledby=\"dependency-heading\"",
        "</section>",
    );
    dep.has("<dt>Installed version</dt><dd><code>v1.2.0</code></dd>")
        .has("<dt>Ecosystem</dt><dd>Go</dd>")
        .has("<dt>Direct or transitive</dt><dd>direct dependency</dd>")
        .has("<dt>Development only</dt><dd>the lockfile does not say</dd>")
        .has("<dt>Fixed in</dt><dd>no fixed version known</dd>")
        .has("<dt>Aliases</dt><dd><span class=\"muted\">none besides the advisories</span></dd>")
        .has("<dt>Severity from</dt><dd>unrated: no advisory of this vulnerability gives a severity (shown as medium); policies select it as <code>supply-chain:unrated</code></dd>")
        // `supply-chain:high` does not reach it, nor would `supply-chain:medium`.
        .has("<strong>monitor</strong>: no policy names its advisories or supply-chain:unrated");

    // The scan lists both, and the finding list links them.
    let list = app.get("/findings?product=supply_chain").await;
    list.has(&format!(
        "<a href=\"/findings/{id}\"><code>GO-2024-2550</code></a>"
    ))
    .has("<code>CVE-2021-23337</code>")
    .has("2 findings match");
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn a_scan_names_the_lockfile_it_could_not_read(pool: PgPool) {
    let mut app = App::start(pool).await;
    let (_, scan) = app.project("acme/api").await;
    let mut npm = lockfile("package-lock.json", "package-lock", Ecosystem::Npm, 120);
    npm.not_registry = 2;
    npm.unchecked = vec![TrailEntry {
        line: Some(88),
        text: "left-pad 1.x-weird".into(),
        reason: "npm does not accept the version 1.x-weird".into(),
    }];
    let mut requirements = lockfile("requirements.txt", "requirements", Ecosystem::PyPi, 4);
    requirements.unresolved = vec![TrailEntry {
        line: Some(3),
        text: "django>=4".into(),
        reason: "pins no exact version".into(),
    }];
    let mut poetry = lockfile("services/poetry.lock", "poetry-lock", Ecosystem::PyPi, 0);
    poetry.error = Some("line 17: expected a table header".into());
    app.report(
        scan,
        Vec::new(),
        trail(Some(SupplyChainTrail {
            lockfiles: vec![npm, requirements, poetry],
            advisories: 4321,
            empty_ecosystems: vec![Ecosystem::Npm],
        })),
    )
    .await;

    let page = app.get(&format!("/scans/{scan}")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let section = page.part(
        "<section aria-labelledby=\"supply-chain-heading\">",
        "</section>",
    );
    // The unreadable lockfile is named, with the reason, in an error notice above the rest.
    section
        .has("<div class=\"notice error\" id=\"lockfile-errors\">")
        .has("1 lockfile could not be read: none of its packages were checked against advisories.")
        .has("<li><code>services/poetry.lock</code> (poetry-lock, PyPI): line 17: expected a table header</li>")
        .has("<strong>Could not be read:</strong> line 17: expected a table header")
        .lacks("No lockfile in this repository");
    let notice = section.part("<div class=\"notice error\"", "</div>");
    notice.lacks("package-lock.json").lacks("requirements.txt");
    // An ecosystem of which nothing is imported is said to be checked against nothing.
    section
        .part("<div class=\"notice error\" id=\"no-advisories\">", "</div>")
        .has("No advisory of npm is imported: the packages of this ecosystem were checked against nothing.");
    // The others, with what they checked and what they could not.
    section
        .has("Attempt 1 read 3 lockfiles: 124 registry packages checked against 4321 advisories.")
        .has("<td><code>package-lock.json</code><br><span class=\"muted\">package-lock</span></td>")
        .has("<td>120</td><td>2</td><td>0</td><td>1</td>")
        .has("<td>88</td><td><code>left-pad 1.x-weird</code></td><td>not checked</td><td>npm does not accept the version 1.x-weird</td>")
        .has("<td>3</td><td><code>django&#62;=4</code></td><td>no exact version</td><td>pins no exact version</td>");
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn a_scan_of_a_repository_without_a_lockfile_says_so(pool: PgPool) {
    let mut app = App::start(pool).await;
    let (_, scan) = app.project("acme/docs").await;
    // Before the worker reports, the section says what it waits for.
    let page = app.get(&format!("/scans/{scan}")).await;
    page.part(
        "<section aria-labelledby=\"supply-chain-heading\">",
        "</section>",
    )
    .has("What Supply Chain read appears when the worker reports.")
    .lacks("No lockfile");
    app.report(
        scan,
        Vec::new(),
        trail(Some(SupplyChainTrail {
            lockfiles: Vec::new(),
            advisories: 0,
            empty_ecosystems: Vec::new(),
        })),
    )
    .await;
    let page = app.get(&format!("/scans/{scan}")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    page.part("<section aria-labelledby=\"supply-chain-heading\">", "</section>")
        .has("<p class=\"notice\" id=\"no-lockfile\">No lockfile in this repository: Supply Chain found nothing to check.</p>")
        .lacks("lockfile-errors")
        .lacks("<table>");
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn a_scan_where_supply_chain_did_not_run_does_not_claim_no_lockfile(pool: PgPool) {
    let mut app = App::start(pool).await;
    let (_, scan) = app.project("acme/old").await;
    app.report(scan, Vec::new(), trail(None)).await;
    let page = app.get(&format!("/scans/{scan}")).await;
    page.part(
        "<section aria-labelledby=\"supply-chain-heading\">",
        "</section>",
    )
    .has("Supply Chain did not run in attempt 1: no lockfile was read.")
    .lacks("No lockfile in this repository");
}

async fn default_policy(app: &App) -> BTreeMap<RuleId, RuleMode> {
    match policies::get(&app.pool, app.org, "default").await {
        Ok(p) => p.rules,
        Err(picket_db::DbError::NotFound) => BTreeMap::new(),
        Err(e) => panic!("{e}"),
    }
}

/// The six selectors as the form sends them, `sc_high` as `high`, the rest `inherit`.
fn selectors<'a>(csrf: &'a str, high: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("_csrf", csrf),
        ("sc_critical", "inherit"),
        ("sc_high", high),
        ("sc_medium", "inherit"),
        ("sc_low", "inherit"),
        ("sc_info", "inherit"),
        ("sc_unrated", "inherit"),
    ]
}

#[sqlx::test(migrator = "picket_db::MIGRATOR")]
async fn the_policies_page_sets_a_severity_selector_and_an_advisory_mode(pool: PgPool) {
    let mut app = App::start(pool).await;
    let (project, scan) = app.project("acme/shop").await;
    app.report(scan, vec![lodash()], trail(None)).await;
    let finding = finding_id(&app, project, &lodash()).await;

    let page = app.get("/policies").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let section = page.part("<section class=\"card\" id=\"supply-chain\"", "</section>");
    for sel in ["critical", "high", "medium", "low", "info", "unrated"] {
        section.has(&format!("<code>supply-chain:{sel}</code>"));
        section.has(&format!("<select id=\"sc_{sel}\" name=\"sc_{sel}\">"));
    }
    section.has("No policy names an advisory.");
    let csrf = page.csrf();

    // Without the session's form token: refused, nothing stored.
    let refused = app
        .post("/policies/supply-chain", &selectors("forged", "block"))
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let refused = app
        .post(
            "/policies/advisories",
            &[
                ("_csrf", "forged"),
                ("advisory", "CVE-2021-23337"),
                ("mode", "block"),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(default_policy(&app).await.is_empty());

    // The org has no `default` policy yet: it is created holding the selector.
    let set = app
        .post("/policies/supply-chain", &selectors(&csrf, "block"))
        .await;
    assert_eq!(set.status, StatusCode::SEE_OTHER, "{}", set.body);
    assert_eq!(
        set.location.as_deref(),
        Some("/policies?sc_changed=1#supply-chain")
    );
    assert_eq!(
        default_policy(&app).await,
        BTreeMap::from([(rule("supply-chain:high"), RuleMode::Block)])
    );
    let page = app.get("/policies?sc_changed=1").await;
    let row = page.part("<tr id=\"selector-high\">", "</tr>");
    row.has("<option value=\"block\" selected>block</option>")
        .has("<strong data-mode>block</strong>");
    page.part("<tr id=\"selector-critical\">", "</tr>")
        .has("<option value=\"inherit\" selected>not set in default</option>")
        .has("<strong data-mode>monitor</strong>");
    page.has("Supply Chain: 1 mode changed.");
    // The finding of that severity now blocks.
    app.get(&format!("/findings/{finding}"))
        .await
        .has("<strong>block</strong>: set for its severity (supply-chain:high)");

    // The same form again changes nothing; a mode that is not one is refused.
    let again = app
        .post("/policies/supply-chain", &selectors(&csrf, "block"))
        .await;
    assert_eq!(
        again.location.as_deref(),
        Some("/policies?sc_changed=0#supply-chain")
    );
    let bad = app
        .post("/policies/supply-chain", &selectors(&csrf, "loud"))
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    bad.part("<section class=\"card\" id=\"supply-chain\"", "</section>")
        .has("Choose a mode for supply-chain:high.");

    // A per-advisory mode, typed by the admin: it wins over the severity's, weaker or not.
    let set = app
        .post(
            "/policies/advisories",
            &[
                ("_csrf", csrf.as_str()),
                ("advisory", " GHSA-35jh-r3h4-6jhm "),
                ("mode", "monitor"),
            ],
        )
        .await;
    assert_eq!(set.status, StatusCode::SEE_OTHER, "{}", set.body);
    assert_eq!(
        default_policy(&app).await.get("GHSA-35jh-r3h4-6jhm"),
        Some(&RuleMode::Monitor)
    );
    let page = app.get("/policies").await;
    page.part("<tr id=\"advisory-GHSA-35jh-r3h4-6jhm\">", "</tr>")
        .has("<a href=\"https://osv.dev/vulnerability/GHSA-35jh-r3h4-6jhm\" rel=\"noreferrer\"><code>GHSA-35jh-r3h4-6jhm</code></a>")
        .has("<strong data-mode>monitor</strong>");
    app.get(&format!("/findings/{finding}"))
        .await
        .has("<strong>monitor</strong>: set per advisory (GHSA-35jh-r3h4-6jhm)");

    // Ids that are not rule ids, or are selectors, are refused and nothing changes.
    for (typed, says) in [
        ("GHSA 35jh", "Not an advisory id: "),
        ("", "Type an advisory id"),
        (
            "supply-chain:low",
            "supply-chain:low is a severity selector, not an advisory id",
        ),
    ] {
        let bad = app
            .post(
                "/policies/advisories",
                &[
                    ("_csrf", csrf.as_str()),
                    ("advisory", typed),
                    ("mode", "block"),
                ],
            )
            .await;
        assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{typed:?}");
        bad.part("<section class=\"card\" id=\"supply-chain\"", "</section>")
            .has(says);
    }
    assert_eq!(default_policy(&app).await.len(), 2);

    // Taken out of `default`, the severity decides again.
    let out = app
        .post(
            "/policies/advisories",
            &[
                ("_csrf", csrf.as_str()),
                ("advisory", "GHSA-35jh-r3h4-6jhm"),
                ("mode", "inherit"),
            ],
        )
        .await;
    assert_eq!(out.status, StatusCode::SEE_OTHER, "{}", out.body);
    assert_eq!(
        default_policy(&app).await,
        BTreeMap::from([(rule("supply-chain:high"), RuleMode::Block)])
    );

    // A member's session sees the form, and the API's refusal in words.
    app.sign_in(Role::Member).await;
    let csrf = app.get("/policies").await.csrf();
    let refused = app
        .post("/policies/supply-chain", &selectors(&csrf, "comment"))
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    refused.has("may not change rule modes; ask an admin.");
    assert_eq!(
        default_policy(&app).await,
        BTreeMap::from([(rule("supply-chain:high"), RuleMode::Block)])
    );
}
