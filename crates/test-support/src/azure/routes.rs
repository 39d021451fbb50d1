//! Checks recorded requests against Azure DevOps's REST route table: the static
//! `beginRequest({ apiVersion, method, routeTemplate, queryParams, body })` calls of npm
//! `azure-devops-extension-api` 5.276.0 (`Git/GitClient.js`, `Locations/LocationsClient.js`,
//! `ServiceHooks/ServiceHooksClient.js`, installed under `tests/azure/node_modules` by
//! `make azure-fixtures`), read once per process.
//!
//! Route templates follow the package's own `Common/Util/Url.js`: `{name}` is one path segment,
//! `{*name}` the rest of the path; a parameter is required when literal text follows it and may
//! be left out otherwise (its value then goes in the query, as the package's `routeUrl` does);
//! literals compare without regard to case, as Azure's routing does. The method defaults to
//! GET.
//!
//! Per request: the path starts with the organization; some route matches it with the request's
//! method; the request's `api-version` is the one that route declares; every query parameter is
//! one of the route's `queryParams` (an object parameter such as `searchCriteria` is sent
//! flattened, `searchCriteria.status`), or a trailing route parameter left out of the path; a
//! route that takes a body gets a JSON body and one that takes none gets none; and the request
//! carries a credential. Requests whose credential the server refused are not reported for it:
//! the refusal was the server's answer.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::LazyLock;

use super::{Auth, RecordedRequest};

/// The package's directory, relative to this crate.
pub(super) fn package_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/azure/node_modules/azure-devops-extension-api")
}

/// The client files whose routes are read.
pub(super) const CLIENT_FILES: &[&str] = &[
    "Git/GitClient.js",
    "Locations/LocationsClient.js",
    "ServiceHooks/ServiceHooksClient.js",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Seg {
    Lit(String),
    Param { name: String, required: bool },
    Wild { name: String, required: bool },
}

/// One `beginRequest` of the package.
#[derive(Debug, Clone)]
pub(super) struct Route {
    pub file: &'static str,
    pub method: String,
    pub template: String,
    pub segs: Vec<Seg>,
    pub api_version: String,
    /// The names in `queryParams` (`$top`, `searchCriteria`, ...).
    pub query: BTreeSet<String>,
    pub body: bool,
}

pub(super) static TABLE: LazyLock<Result<Vec<Route>, String>> = LazyLock::new(load);

fn load() -> Result<Vec<Route>, String> {
    let dir = package_dir();
    let mut routes = Vec::new();
    for file in CLIENT_FILES {
        let path = dir.join(file);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            format!(
                "Azure DevOps's route table is missing at {} ({e}): run `make azure-fixtures`",
                path.display()
            )
        })?;
        let found = parse_client(file, &text)?;
        if found.is_empty() {
            return Err(format!("{}: no beginRequest calls found", path.display()));
        }
        routes.extend(found);
    }
    Ok(routes)
}

/// The text from `open` (an index of `{` or `(`) to its matching closer, strings skipped.
fn balanced(text: &str, open: usize) -> Option<&str> {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut quote: Option<u8> = None;
    let mut i = open;
    while i < bytes.len() {
        let b = bytes[i];
        match quote {
            Some(q) => {
                if b == b'\\' {
                    i += 1;
                } else if b == q {
                    quote = None;
                }
            }
            None => match b {
                b'"' | b'\'' | b'`' => quote = Some(b),
                b'{' | b'(' | b'[' => depth += 1,
                b'}' | b')' | b']' => {
                    depth -= 1;
                    if depth == 0 {
                        return Some(&text[open..=i]);
                    }
                }
                _ => {}
            },
        }
        i += 1;
    }
    None
}

/// The string value of `key: "..."` in an object literal's text.
fn string_field(block: &str, key: &str) -> Option<String> {
    let at = block.find(&format!("{key}: \""))? + key.len() + 3;
    let end = block[at..].find('"')?;
    Some(block[at..at + end].to_string())
}

/// The keys of an object literal (`{ '$top': top, searchCriteria: searchCriteria }`).
fn object_keys(block: &str) -> BTreeSet<String> {
    let inner = block.trim().trim_start_matches('{').trim_end_matches('}');
    inner
        .split(',')
        .filter_map(|entry| entry.split_once(':'))
        .map(|(k, _)| k.trim().trim_matches('\'').trim_matches('"').to_string())
        .filter(|k| !k.is_empty())
        .collect()
}

pub(super) fn parse_template(template: &str) -> Vec<Seg> {
    let parts: Vec<&str> = template.split('/').filter(|s| !s.is_empty()).collect();
    let mut segs: Vec<Seg> = parts
        .iter()
        .map(
            |s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(name) => match name.strip_prefix('*') {
                    Some(name) => Seg::Wild {
                        name: name.to_string(),
                        required: false,
                    },
                    None => Seg::Param {
                        name: name.to_string(),
                        required: false,
                    },
                },
                None => Seg::Lit(s.to_string()),
            },
        )
        .collect();
    // A parameter with literal text after it is required (Url.js, parseRouteTemplate).
    let mut literal_after = false;
    for seg in segs.iter_mut().rev() {
        match seg {
            Seg::Lit(_) => literal_after = true,
            Seg::Param { required, .. } | Seg::Wild { required, .. } => *required = literal_after,
        }
    }
    segs
}

pub(super) fn parse_client(file: &'static str, text: &str) -> Result<Vec<Route>, String> {
    const CALL: &str = "this.beginRequest(";
    let mut routes = Vec::new();
    let mut method_start = 0;
    let mut from = 0;
    while let Some(found) = text[from..].find(CALL) {
        let at = from + found;
        let open = at + CALL.len();
        let block = balanced(text, open).ok_or_else(|| format!("{file}: unbalanced call"))?;
        // The query values are declared in the same method, before its beginRequest.
        let before = &text[method_start..at];
        let query = match before.rfind("const queryValues = {") {
            Some(q) => {
                let brace = method_start + q + "const queryValues = ".len();
                balanced(text, brace).map(object_keys).unwrap_or_default()
            }
            None => BTreeSet::new(),
        };
        let template = string_field(block, "routeTemplate")
            .ok_or_else(|| format!("{file}: a beginRequest without routeTemplate"))?;
        let api_version = string_field(block, "apiVersion")
            .ok_or_else(|| format!("{file}: {template} has no apiVersion"))?;
        routes.push(Route {
            file,
            method: string_field(block, "method").unwrap_or_else(|| "GET".to_string()),
            segs: parse_template(&template),
            template,
            api_version,
            query: if block.contains("queryParams: queryValues") {
                query
            } else {
                BTreeSet::new()
            },
            body: block.contains("body:"),
        });
        from = open + block.len();
        method_start = from;
    }
    Ok(routes)
}

/// Route parameters bound by a path (`None` when it does not match), with the trailing ones
/// left out.
pub(super) fn match_path(segs: &[Seg], path: &[String]) -> Option<Vec<String>> {
    let mut i = 0;
    let mut omitted = Vec::new();
    for seg in segs {
        match seg {
            Seg::Lit(l) => {
                if i >= path.len() || !path[i].eq_ignore_ascii_case(l) {
                    return None;
                }
                i += 1;
            }
            Seg::Param { name, required } => {
                if i < path.len() {
                    i += 1;
                } else if *required {
                    return None;
                } else {
                    omitted.push(name.clone());
                }
            }
            Seg::Wild { name, required } => {
                if i < path.len() {
                    i = path.len();
                } else if *required {
                    return None;
                } else {
                    omitted.push(name.clone());
                }
            }
        }
    }
    (i == path.len()).then_some(omitted)
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

pub(super) fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    query
        .map(|q| {
            q.split('&')
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (k, v) = p.split_once('=').unwrap_or((p, ""));
                    (
                        percent_decode(&k.replace('+', " ")),
                        percent_decode(&v.replace('+', " ")),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn check(table: &[Route], organization: &str, r: &RecordedRequest) -> Vec<String> {
    let mut out = Vec::new();
    if r.auth == Auth::None {
        out.push("sent no credential".to_string());
    }
    let segs: Vec<String> = r
        .path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect();
    let Some((org, rest)) = segs.split_first() else {
        out.push("the path names no organization".to_string());
        return out;
    };
    if org != organization {
        out.push(format!("the path is outside organization {organization:?}"));
        return out;
    }
    let matched: Vec<(&Route, Vec<String>)> = table
        .iter()
        .filter_map(|route| match_path(&route.segs, rest).map(|omitted| (route, omitted)))
        .collect();
    if matched.is_empty() {
        out.push("no route of the table matches the path".to_string());
        return out;
    }
    let with_method: Vec<&(&Route, Vec<String>)> = matched
        .iter()
        .filter(|(m, _)| m.method == r.method)
        .collect();
    if with_method.is_empty() {
        let methods: BTreeSet<&str> = matched.iter().map(|(m, _)| m.method.as_str()).collect();
        out.push(format!(
            "{} is not a method of {} (the table has {methods:?})",
            r.method, matched[0].0.template
        ));
        return out;
    }
    let query = query_pairs(r.query.as_deref());
    let version: Vec<&str> = query
        .iter()
        .filter(|(k, _)| k == "api-version")
        .map(|(_, v)| v.as_str())
        .collect();
    let declared: BTreeSet<&str> = with_method
        .iter()
        .map(|(m, _)| m.api_version.as_str())
        .collect();
    let routes: Vec<&(&Route, Vec<String>)> = match version.as_slice() {
        [] => {
            out.push(format!("no api-version (the table declares {declared:?})"));
            with_method
        }
        [v] => {
            let same: Vec<_> = with_method
                .iter()
                .copied()
                .filter(|(m, _)| m.api_version == *v)
                .collect();
            if same.is_empty() {
                out.push(format!(
                    "api-version {v} is not the table's {declared:?} for {}",
                    with_method[0].0.template
                ));
                with_method
            } else {
                same
            }
        }
        _ => {
            out.push("api-version is given more than once".to_string());
            with_method
        }
    };
    for (k, _) in query.iter().filter(|(k, _)| k != "api-version") {
        let known = routes.iter().any(|(m, omitted)| {
            m.query
                .iter()
                .any(|q| k == q || (k.starts_with(q.as_str()) && k[q.len()..].starts_with('.')))
                || omitted.contains(k)
        });
        if !known {
            out.push(format!(
                "query parameter {k:?} is not one of {}'s",
                routes[0].0.template
            ));
        }
    }
    let takes_body = routes.iter().any(|(m, _)| m.body);
    let takes_none = routes.iter().any(|(m, _)| !m.body);
    match (&r.body, takes_body, takes_none) {
        (Some(_), false, _) => out.push(format!("{} takes no body", routes[0].0.template)),
        (None, true, false) => out.push(format!("{} takes a JSON body", routes[0].0.template)),
        _ => {}
    }
    out
}

/// Every violation in `requests`, one line each: `<METHOD> <path>: <problem>`.
pub(super) fn violations(organization: &str, requests: &[RecordedRequest]) -> Vec<String> {
    let table = match &*TABLE {
        Ok(table) => table,
        Err(e) => return vec![e.clone()],
    };
    let mut out = Vec::new();
    for r in requests {
        let target = match &r.query {
            Some(q) => format!("{}?{q}", r.path),
            None => r.path.clone(),
        };
        for v in check(table, organization, r) {
            out.push(format!("{} {target}: {v}", r.method));
        }
    }
    out
}
