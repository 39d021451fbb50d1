//! The Policies page: every rule of Picket's pack and of the org's packs, with its effective mode
//! (the strongest any policy gives it; Monitor when none names it), the mode the `default`
//! policy gives it, its open findings, filters (mode, severity, language, pack) and a bulk mode
//! change, sent as one `PATCH /api/v1/policies/default`.
//!
//! **Supply Chain.** Its findings take their mode from the policy rule of their severity
//! (`supply-chain:critical` … `supply-chain:info`, `supply-chain:unrated`), unless a policy names
//! one of their advisory ids (`picket_core::policy::mode_of`). The page's Supply Chain section
//! sets the six severity selectors' modes and a mode per advisory id the admin types, through
//! the same `PATCH`.

use super::{render, Layout};
use crate::api::Refusal;
use crate::pages::projects::Choice;
use crate::session::Session;
use crate::supply_chain::{looks_like_advisory, osv_url, selector_field, SELECTOR_SEVERITIES};
use crate::WebState;
use askama::Template;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use picket_core::policy::{effective_modes, supply_chain_selector};
use picket_core::{RuleMode, Severity};
use picket_db::{overview, policies, rule_packs, DbError};
use picket_engine::rulepack::{dir_rule_docs, rule_docs, RuleDoc};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// The policy this page edits.
pub const UI_POLICY: &str = "default";
/// The name Picket's own pack goes by on the page.
const PICKET_PACK: &str = "picket";

#[derive(Debug, Clone, Default, Deserialize)]
pub struct PoliciesQuery {
    pub mode: Option<String>,
    pub severity: Option<String>,
    pub language: Option<String>,
    pub pack: Option<String>,
    pub q: Option<String>,
    /// Set after a change: how many rules changed.
    #[serde(default, deserialize_with = "super::lenient")]
    pub changed: Option<usize>,
    /// Set after a change of the Supply Chain section: how many of its modes changed.
    #[serde(default, deserialize_with = "super::lenient")]
    pub sc_changed: Option<usize>,
}

/// One severity selector of Supply Chain (`supply-chain:high`, ...).
#[derive(Debug, Clone)]
pub struct SelectorView {
    pub id: String,
    /// `critical` ... `info`, or `unrated`.
    pub label: &'static str,
    /// The form field carrying its mode.
    pub field: String,
    /// The mode the `default` policy gives it (`inherit` when none): the form's choice.
    pub here: &'static str,
    /// Its effective mode (the strongest any policy gives it).
    pub mode: &'static str,
    pub stronger_elsewhere: bool,
}

/// A mode some policy gives one advisory id.
#[derive(Debug, Clone)]
pub struct AdvisoryModeView {
    pub id: String,
    pub url: String,
    pub mode: &'static str,
    pub here: Option<&'static str>,
    pub stronger_elsewhere: bool,
    /// Open findings whose rule (vulnerability group key) is this id.
    pub open: i64,
}

/// The Supply Chain section's own message and the advisory id being typed.
#[derive(Debug, Clone, Default)]
struct SupplyChainForm {
    error: Option<String>,
    advisory: String,
    mode: Option<String>,
}

/// The choices of a mode select: the three modes and "not set in `default`".
const MODE_CHOICES: [(&str, &str); 4] = [
    ("monitor", "monitor"),
    ("comment", "comment"),
    ("block", "block"),
    ("inherit", "not set in default"),
];

#[derive(Debug, Clone)]
pub struct RuleView {
    pub id: String,
    pub pack: String,
    pub languages: String,
    pub severity: String,
    pub message: String,
    pub mode: &'static str,
    /// The mode the `default` policy gives it, if any.
    pub here: Option<&'static str>,
    /// Another policy gives it a stronger mode than `default` does.
    pub stronger_elsewhere: bool,
    pub open: i64,
}

#[derive(Template)]
#[template(path = "policies.html")]
struct PoliciesPage {
    layout: Layout,
    csrf: String,
    rules: Vec<RuleView>,
    total: usize,
    modes: Vec<Choice>,
    severities: Vec<(String, bool)>,
    languages: Vec<(String, bool)>,
    packs: Vec<(String, bool)>,
    q: String,
    hidden: Vec<(&'static str, String)>,
    notice: Option<String>,
    error: Option<String>,
    other_policies: Vec<String>,
    mode_choices: [(&'static str, &'static str); 4],
    selectors: Vec<SelectorView>,
    advisories: Vec<AdvisoryModeView>,
    sc_notice: Option<String>,
    sc_error: Option<String>,
    sc_advisory: String,
    sc_mode: String,
}

/// Picket's own pack, read once per process; empty without a rules directory. A failed read is
/// logged and tried again next time.
async fn picket_rules(state: &WebState) -> &[RuleDoc] {
    let Some(dir) = state.cfg.rules_dir.clone() else {
        return &[];
    };
    let read = state
        .picket_rules
        .get_or_try_init(|| async move {
            match tokio::task::spawn_blocking(move || dir_rule_docs(&dir)).await {
                Ok(Ok(docs)) => Ok(docs),
                Ok(Err(e)) => Err(e.to_string()),
                Err(e) => Err(e.to_string()),
            }
        })
        .await;
    match read {
        Ok(docs) => docs,
        Err(e) => {
            tracing::warn!(error = %e, "reading Picket's rule pack");
            &[]
        }
    }
}

/// Every rule the org's scans run: Picket's pack, then the org's packs, each with its pack.
pub async fn all_rules(
    state: &WebState,
    session: &Session,
) -> Result<Vec<(String, RuleDoc)>, DbError> {
    let mut out: Vec<(String, RuleDoc)> = picket_rules(state)
        .await
        .iter()
        .map(|d| (PICKET_PACK.to_owned(), d.clone()))
        .collect();
    let pool = state.db().pool();
    for pack in rule_packs::list(pool, session.caller.org_id).await? {
        out.extend(pack_rules(state, session, &pack.name).await?);
    }
    Ok(out)
}

/// One rule's pack and documentation: Picket's pack first, else the one org pack that holds it
/// (the pack list names each pack's rules, so only that pack is read).
pub async fn rule(
    state: &WebState,
    session: &Session,
    id: &str,
) -> Result<Option<(String, RuleDoc)>, DbError> {
    if let Some(d) = picket_rules(state).await.iter().find(|d| d.id == id) {
        return Ok(Some((PICKET_PACK.to_owned(), d.clone())));
    }
    let pool = state.db().pool();
    let packs = rule_packs::list(pool, session.caller.org_id).await?;
    let Some(pack) = packs
        .iter()
        .find(|p| p.rules.iter().any(|r| r.as_str() == id))
    else {
        return Ok(None);
    };
    Ok(pack_rules(state, session, &pack.name)
        .await?
        .into_iter()
        .find(|(_, d)| d.id == id))
}

/// The documented rules of the org's pack `name` (none when it was deleted meanwhile).
async fn pack_rules(
    state: &WebState,
    session: &Session,
    name: &str,
) -> Result<Vec<(String, RuleDoc)>, DbError> {
    match rule_packs::get(state.db().pool(), session.caller.org_id, name).await {
        Ok((_, content)) => Ok(rule_docs(&content)
            .unwrap_or_default()
            .into_iter()
            .map(|d| (name.to_owned(), d))
            .collect()),
        Err(DbError::NotFound) => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

fn options(values: BTreeSet<String>, current: Option<&str>) -> Vec<(String, bool)> {
    values
        .into_iter()
        .map(|v| {
            let selected = Some(v.as_str()) == current;
            (v, selected)
        })
        .collect()
}

async fn show(
    state: &WebState,
    session: &Session,
    q: &PoliciesQuery,
    status: StatusCode,
    error: Option<String>,
) -> Response {
    show_with(state, session, q, status, error, SupplyChainForm::default()).await
}

async fn show_with(
    state: &WebState,
    session: &Session,
    q: &PoliciesQuery,
    status: StatusCode,
    error: Option<String>,
    sc: SupplyChainForm,
) -> Response {
    let pool = state.db().pool();
    let org = session.caller.org_id;
    let rules = match all_rules(state, session).await {
        Ok(r) => r,
        Err(e) => return super::db_unavailable(&e, session),
    };
    let all_policies = match policies::list(pool, org).await {
        Ok(p) => p,
        Err(e) => return super::db_unavailable(&e, session),
    };
    let open: HashMap<String, i64> = match overview::open_findings_by_rule(pool, org).await {
        Ok(o) => o.into_iter().collect(),
        Err(e) => return super::db_unavailable(&e, session),
    };
    let effective = effective_modes(all_policies.iter().map(|p| &p.rules));
    let here: BTreeMap<_, _> = all_policies
        .iter()
        .find(|p| p.name == UI_POLICY)
        .map(|p| p.rules.clone())
        .unwrap_or_default();
    let mode_filter: Option<RuleMode> = q.mode.as_deref().and_then(|m| m.parse().ok());
    let text = |v: &Option<String>| v.clone().filter(|s| !s.trim().is_empty());
    let (sev, lang, pack, needle) = (
        text(&q.severity),
        text(&q.language),
        text(&q.pack),
        text(&q.q),
    );
    let severities = options(
        rules.iter().map(|(_, d)| d.severity.clone()).collect(),
        sev.as_deref(),
    );
    let languages = options(
        rules
            .iter()
            .flat_map(|(_, d)| d.languages.clone())
            .collect(),
        lang.as_deref(),
    );
    let packs = options(
        rules.iter().map(|(p, _)| p.clone()).collect(),
        pack.as_deref(),
    );
    let known: BTreeSet<String> = rules.iter().map(|(_, d)| d.id.clone()).collect();
    let selectors: Vec<SelectorView> = SELECTOR_SEVERITIES
        .iter()
        .map(|sev| {
            let id = supply_chain_selector(*sev);
            let mode = effective.get(&id).copied().unwrap_or_default();
            let here_mode = here.get(&id).copied();
            SelectorView {
                label: sev.map_or("unrated", Severity::as_str),
                field: selector_field(*sev),
                here: here_mode.map_or("inherit", RuleMode::as_str),
                mode: mode.as_str(),
                stronger_elsewhere: here_mode.unwrap_or_default() < mode,
                id: id.to_string(),
            }
        })
        .collect();
    let advisories: Vec<AdvisoryModeView> = effective
        .iter()
        .filter(|(id, _)| looks_like_advisory(id.as_str()) && !known.contains(id.as_str()))
        .map(|(id, mode)| {
            let here_mode = here.get(id).copied();
            AdvisoryModeView {
                id: id.to_string(),
                url: osv_url(id.as_str()),
                mode: mode.as_str(),
                here: here_mode.map(RuleMode::as_str),
                stronger_elsewhere: here_mode.unwrap_or_default() < *mode,
                open: open.get(id.as_str()).copied().unwrap_or(0),
            }
        })
        .collect();
    let total = rules.len();
    let views: Vec<RuleView> = rules
        .into_iter()
        .filter_map(|(pack_name, d)| {
            let id: picket_core::RuleId = d.id.parse().ok()?;
            let mode = effective.get(&id).copied().unwrap_or_default();
            let here_mode = here.get(&id).copied();
            let keep = mode_filter.is_none_or(|m| m == mode)
                && sev.as_deref().is_none_or(|s| s == d.severity)
                && lang
                    .as_deref()
                    .is_none_or(|l| d.languages.iter().any(|x| x == l))
                && pack.as_deref().is_none_or(|p| p == pack_name)
                && needle
                    .as_deref()
                    .is_none_or(|n| d.id.to_lowercase().contains(&n.to_lowercase()));
            keep.then(|| RuleView {
                open: open.get(&d.id).copied().unwrap_or(0),
                id: d.id,
                pack: pack_name,
                languages: d.languages.join(", "),
                severity: d.severity,
                message: d.message.chars().take(200).collect(),
                mode: mode.as_str(),
                here: here_mode.map(RuleMode::as_str),
                stronger_elsewhere: here_mode.unwrap_or_default() < mode,
            })
        })
        .collect();
    let mut hidden = Vec::new();
    for (k, v) in [
        ("mode", &q.mode),
        ("severity", &q.severity),
        ("language", &q.language),
        ("pack", &q.pack),
        ("q", &q.q),
    ] {
        if let Some(v) = text(v) {
            hidden.push((k, v));
        }
    }
    render(
        status,
        &PoliciesPage {
            layout: Layout::new("Policies", "policies", Some(session)),
            csrf: session.csrf.clone(),
            total,
            modes: RuleMode::ALL
                .iter()
                .map(|m| Choice {
                    value: m.as_str(),
                    label: m.as_str(),
                    selected: mode_filter == Some(*m),
                })
                .collect(),
            severities,
            languages,
            packs,
            q: needle.unwrap_or_default(),
            hidden,
            rules: views,
            notice: q.changed.map(|n| {
                format!(
                    "Mode changed for {n} rule{}.",
                    if n == 1 { "" } else { "s" }
                )
            }),
            error,
            other_policies: all_policies
                .into_iter()
                .map(|p| p.name)
                .filter(|n| n != UI_POLICY)
                .collect(),
            mode_choices: MODE_CHOICES,
            selectors,
            advisories,
            sc_notice: q.sc_changed.map(|n| match n {
                0 => "Supply Chain: nothing changed.".to_owned(),
                1 => "Supply Chain: 1 mode changed.".to_owned(),
                n => format!("Supply Chain: {n} modes changed."),
            }),
            sc_error: sc.error,
            sc_advisory: sc.advisory,
            sc_mode: sc.mode.unwrap_or_else(|| "block".to_owned()),
        },
    )
}

/// `GET /policies`.
pub async fn page(
    State(state): State<WebState>,
    session: Session,
    Query(q): Query<PoliciesQuery>,
) -> Response {
    show(&state, &session, &q, StatusCode::OK, None).await
}

/// `POST /policies/modes`: the selected rules (`rule`, repeated) get `mode` in the `default`
/// policy (`inherit` takes them out of it).
pub async fn set_modes(State(state): State<WebState>, session: Session, body: Bytes) -> Response {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let q = PoliciesQuery {
        mode: get("f_mode"),
        severity: get("severity"),
        language: get("language"),
        pack: get("pack"),
        q: get("q"),
        changed: None,
        sc_changed: None,
    };
    let rules: Vec<String> = pairs
        .iter()
        .filter(|(k, _)| k == "rule")
        .map(|(_, v)| v.clone())
        .collect();
    let mode = match get("mode").as_deref() {
        Some("inherit") => serde_json::Value::Null,
        Some(m) if m.parse::<RuleMode>().is_ok() => serde_json::Value::from(m),
        _ => {
            return show(
                &state,
                &session,
                &q,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some("Choose a mode.".to_owned()),
            )
            .await
        }
    };
    if rules.is_empty() {
        return show(
            &state,
            &session,
            &q,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("Select at least one rule.".to_owned()),
        )
        .await;
    }
    let changes: serde_json::Map<String, serde_json::Value> =
        rules.iter().map(|r| (r.clone(), mode.clone())).collect();
    match patch_default(&state, &session, changes).await {
        Ok(()) => {
            let mut pairs: Vec<(&str, String)> = Vec::new();
            for (k, v) in [
                ("mode", &q.mode),
                ("severity", &q.severity),
                ("language", &q.language),
                ("pack", &q.pack),
                ("q", &q.q),
            ] {
                if let Some(v) = v.clone().filter(|v| !v.is_empty()) {
                    pairs.push((k, v));
                }
            }
            pairs.push(("changed", rules.len().to_string()));
            Redirect::to(&format!(
                "/policies?{}",
                serde_urlencoded::to_string(&pairs).unwrap_or_default()
            ))
            .into_response()
        }
        Err(r) => {
            let status = r.status();
            let message = r.say("change rule modes");
            show(&state, &session, &q, status, Some(message)).await
        }
    }
}

/// Gives the rules of `changes` their modes in the `default` policy (a null mode takes the rule
/// out of it), through the REST API as the session's token: one `PATCH`.
async fn patch_default(
    state: &WebState,
    session: &Session,
    changes: serde_json::Map<String, serde_json::Value>,
) -> Result<(), Refusal> {
    let path = format!("/api/v1/policies/{UI_POLICY}");
    let answer: Result<serde_json::Value, Refusal> = state
        .api
        .call(
            session.caller,
            Method::PATCH,
            &path,
            Some(serde_json::json!({ "rules": changes })),
        )
        .await;
    match answer {
        Ok(_) => Ok(()),
        // The org has no `default` policy yet: it is created holding these rules (taking rules
        // out of a policy that does not exist changes nothing).
        Err(r) if r.code == "not_found" => {
            let set: serde_json::Map<String, serde_json::Value> =
                changes.into_iter().filter(|(_, m)| !m.is_null()).collect();
            if set.is_empty() {
                return Ok(());
            }
            state
                .api
                .call::<serde_json::Value>(
                    session.caller,
                    Method::PUT,
                    &path,
                    Some(serde_json::json!({ "rules": set })),
                )
                .await
                .map(|_| ())
        }
        Err(r) => Err(r),
    }
}

/// A mode select's value as the API's: a mode, or null for `inherit` (not set in `default`).
fn mode_value(raw: Option<&str>) -> Option<serde_json::Value> {
    match raw {
        Some("inherit") => Some(serde_json::Value::Null),
        Some(m) => m
            .parse::<RuleMode>()
            .ok()
            .map(|m| serde_json::Value::from(m.as_str())),
        None => None,
    }
}

/// The modes the `default` policy gives now (none when it does not exist).
async fn default_modes(
    state: &WebState,
    session: &Session,
) -> Result<BTreeMap<picket_core::RuleId, RuleMode>, DbError> {
    match policies::get(state.db().pool(), session.caller.org_id, UI_POLICY).await {
        Ok(p) => Ok(p.rules),
        Err(DbError::NotFound) => Ok(BTreeMap::new()),
        Err(e) => Err(e),
    }
}

/// After a change of the Supply Chain section: back to it, saying how many modes changed.
fn back_to_supply_chain(changed: usize) -> Response {
    Redirect::to(&format!("/policies?sc_changed={changed}#supply-chain")).into_response()
}

async fn supply_chain_refused(
    state: &WebState,
    session: &Session,
    status: StatusCode,
    form: SupplyChainForm,
) -> Response {
    show_with(
        state,
        session,
        &PoliciesQuery::default(),
        status,
        None,
        form,
    )
    .await
}

/// `POST /policies/supply-chain`: the six severity selectors' modes (`sc_critical` …
/// `sc_info`, `sc_unrated`: a mode, or `inherit` to take it out of `default`); only those that
/// differ from the `default` policy are sent.
pub async fn set_supply_chain(
    State(state): State<WebState>,
    session: Session,
    body: Bytes,
) -> Response {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let here = match default_modes(&state, &session).await {
        Ok(h) => h,
        Err(e) => return super::db_unavailable(&e, &session),
    };
    let mut changes = serde_json::Map::new();
    for sev in SELECTOR_SEVERITIES {
        let field = selector_field(sev);
        // A selector the form does not carry keeps its mode.
        let Some(raw) = get(&field) else { continue };
        let id = supply_chain_selector(sev);
        let Some(wanted) = mode_value(Some(raw)) else {
            let error = format!("Choose a mode for {id}.");
            return supply_chain_refused(
                &state,
                &session,
                StatusCode::UNPROCESSABLE_ENTITY,
                SupplyChainForm {
                    error: Some(error),
                    ..SupplyChainForm::default()
                },
            )
            .await;
        };
        let now = here.get(&id).map(|m| serde_json::Value::from(m.as_str()));
        if now.unwrap_or(serde_json::Value::Null) != wanted {
            changes.insert(id.to_string(), wanted);
        }
    }
    if changes.is_empty() {
        return back_to_supply_chain(0);
    }
    let n = changes.len();
    match patch_default(&state, &session, changes).await {
        Ok(()) => back_to_supply_chain(n),
        Err(r) => {
            supply_chain_refused(
                &state,
                &session,
                r.status(),
                SupplyChainForm {
                    error: Some(r.say("change rule modes")),
                    ..SupplyChainForm::default()
                },
            )
            .await
        }
    }
}

/// `POST /policies/advisories`: `mode` (or `inherit`) for the advisory id `advisory` in the
/// `default` policy. The id is checked as a rule id; it wins over the severity selectors for
/// every finding of a vulnerability it names.
pub async fn set_advisory(
    State(state): State<WebState>,
    session: Session,
    body: Bytes,
) -> Response {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let advisory = get("advisory").unwrap_or_default().trim().to_owned();
    let raw_mode = get("mode");
    let refuse = |error: String| SupplyChainForm {
        error: Some(error),
        advisory: advisory.chars().take(300).collect(),
        mode: raw_mode.clone(),
    };
    let id = match advisory.parse::<picket_core::RuleId>() {
        Ok(id) if id.as_str().starts_with("supply-chain:") => {
            let form = refuse(format!(
                "{id} is a severity selector, not an advisory id: set it in the table above."
            ));
            return supply_chain_refused(&state, &session, StatusCode::UNPROCESSABLE_ENTITY, form)
                .await;
        }
        Ok(id) => id,
        Err(e) => {
            let form = refuse(if advisory.is_empty() {
                "Type an advisory id (GHSA-…, CVE-…, PYSEC-…, GO-…, RUSTSEC-…).".to_owned()
            } else {
                format!("Not an advisory id: {e}.")
            });
            return supply_chain_refused(&state, &session, StatusCode::UNPROCESSABLE_ENTITY, form)
                .await;
        }
    };
    let Some(mode) = mode_value(raw_mode.as_deref()) else {
        let form = refuse("Choose a mode.".to_owned());
        return supply_chain_refused(&state, &session, StatusCode::UNPROCESSABLE_ENTITY, form)
            .await;
    };
    let changes = serde_json::Map::from_iter([(id.to_string(), mode)]);
    match patch_default(&state, &session, changes).await {
        Ok(()) => back_to_supply_chain(1),
        Err(r) => {
            let form = refuse(r.say("change rule modes"));
            supply_chain_refused(&state, &session, r.status(), form).await
        }
    }
}

#[derive(Debug, Deserialize)]
struct PackList {
    rule_packs: Vec<Pack>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Pack {
    pub name: String,
    pub rules: Vec<String>,
    pub languages: Vec<String>,
    pub size_bytes: i64,
}

#[derive(Template)]
#[template(path = "rule_packs.html")]
struct PacksPage {
    layout: Layout,
    csrf: String,
    admin: bool,
    packs: Vec<Pack>,
    name: String,
    content: String,
    notice: Option<String>,
    error: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct PacksQuery {
    saved: Option<String>,
    deleted: Option<String>,
}

async fn show_packs(
    state: &WebState,
    session: &Session,
    status: StatusCode,
    form: (String, String),
    notice: Option<String>,
    error: Option<String>,
) -> Response {
    let list: PackList = match state
        .api
        .call(session.caller, Method::GET, "/api/v1/rule-packs", None)
        .await
    {
        Ok(l) => l,
        Err(r) => {
            return super::error_page(
                r.status(),
                "Rule packs could not be read",
                &r.message(),
                Some(session),
            )
        }
    };
    render(
        status,
        &PacksPage {
            layout: Layout::new("Rule packs", "policies", Some(session)),
            csrf: session.csrf.clone(),
            admin: session.is_admin(),
            packs: list.rule_packs,
            name: form.0,
            content: form.1,
            notice,
            error,
        },
    )
}

/// `GET /policies/packs`: the org's rule packs, and the upload form.
pub async fn packs(
    State(state): State<WebState>,
    session: Session,
    Query(q): Query<PacksQuery>,
) -> Response {
    let notice = match (q.saved, q.deleted) {
        (Some(n), _) => Some(format!("Rule pack {n} saved: the next scans load it.")),
        (_, Some(n)) => Some(format!("Rule pack {n} deleted.")),
        _ => None,
    };
    show_packs(
        &state,
        &session,
        StatusCode::OK,
        Default::default(),
        notice,
        None,
    )
    .await
}

#[derive(Deserialize)]
pub struct PackForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    content: String,
}

impl std::fmt::Debug for PackForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PackForm")
            .field("name", &self.name)
            .finish()
    }
}

/// `POST /policies/packs`: uploads (creates or replaces) a pack; the engine checks it first and
/// its message is shown on refusal.
pub async fn upload_pack(
    State(state): State<WebState>,
    session: Session,
    axum::Form(form): axum::Form<PackForm>,
) -> Response {
    let name = form.name.trim().to_owned();
    let valid_name = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if !valid_name {
        return show_packs(
            &state,
            &session,
            StatusCode::UNPROCESSABLE_ENTITY,
            (name, form.content),
            None,
            Some("A pack's name is letters, digits, '-', '_' and '.'.".to_owned()),
        )
        .await;
    }
    let answer = state
        .api
        .call::<serde_json::Value>(
            session.caller,
            Method::PUT,
            &format!("/api/v1/rule-packs/{name}"),
            Some(serde_json::json!({ "content": form.content })),
        )
        .await;
    match answer {
        Ok(_) => Redirect::to(&format!(
            "/policies/packs?saved={}",
            percent_encoding::utf8_percent_encode(&name, percent_encoding::NON_ALPHANUMERIC)
        ))
        .into_response(),
        Err(r) => {
            let status = r.status();
            let message = match r.code.as_str() {
                "forbidden" => {
                    "Your token's role may not change rule packs; ask an admin.".to_owned()
                }
                "invalid_rule_pack" => format!("The engine refused the pack: {}", r.message()),
                _ => r.message(),
            };
            show_packs(
                &state,
                &session,
                status,
                (name, form.content),
                None,
                Some(message),
            )
            .await
        }
    }
}

#[derive(Deserialize)]
struct PackWithContent {
    name: String,
    content: String,
    rules: Vec<String>,
}

#[derive(Template)]
#[template(path = "rule_pack.html")]
struct PackPage {
    layout: Layout,
    csrf: String,
    admin: bool,
    name: String,
    content: String,
    rules: Vec<String>,
}

/// `GET /policies/packs/{name}`: a pack's rules and YAML.
pub async fn pack(
    State(state): State<WebState>,
    session: Session,
    axum::extract::Path(name): axum::extract::Path<String>,
) -> Response {
    let path = format!(
        "/api/v1/rule-packs/{}",
        percent_encoding::utf8_percent_encode(&name, percent_encoding::NON_ALPHANUMERIC)
    );
    match state
        .api
        .call::<PackWithContent>(session.caller, Method::GET, &path, None)
        .await
    {
        Ok(p) => render(
            StatusCode::OK,
            &PackPage {
                layout: Layout::new(format!("Rule pack {}", p.name), "policies", Some(&session)),
                csrf: session.csrf.clone(),
                admin: session.is_admin(),
                name: p.name,
                content: p.content,
                rules: p.rules,
            },
        ),
        Err(r) => super::error_page(
            r.status(),
            "No such rule pack",
            &r.message(),
            Some(&session),
        ),
    }
}

/// `POST /policies/packs/{name}/delete`.
pub async fn delete_pack(
    State(state): State<WebState>,
    session: Session,
    axum::extract::Path(name): axum::extract::Path<String>,
) -> Response {
    let encoded = percent_encoding::utf8_percent_encode(&name, percent_encoding::NON_ALPHANUMERIC)
        .to_string();
    match state
        .api
        .call::<serde_json::Value>(
            session.caller,
            Method::DELETE,
            &format!("/api/v1/rule-packs/{encoded}"),
            None,
        )
        .await
    {
        Ok(_) => Redirect::to(&format!("/policies/packs?deleted={encoded}")).into_response(),
        Err(r) => {
            let status = r.status();
            let message = r.say("change rule packs");
            show_packs(
                &state,
                &session,
                status,
                Default::default(),
                None,
                Some(message),
            )
            .await
        }
    }
}
