//! Checks recorded requests against GitHub's REST OpenAPI description (npm `@octokit/openapi`
//! 23.0.2, `generated/api.github.com.json`, installed under `tests/github/node_modules` by
//! `make github-fixtures`), loaded once per process.
//!
//! Per request: an operation exists for the method and path (templates like
//! `/repos/{owner}/{repo}/pulls/{pull_number}`; literal segments win over parameters), the
//! operation is enabled for GitHub Apps (`x-github.enabledForGitHubApps`), path and query
//! parameters are declared and of their schema's type, required query parameters are present,
//! a JSON body validates against the `requestBody` `application/json` schema (OpenAPI 3.0
//! `nullable` mapped to JSON Schema; `#/components/...` references resolved inside a document
//! that embeds the referenced components), and the credential is the kind the operation takes:
//! an App JWT for `/app…` operations and `…/installation` lookups, none for
//! `/app-manifests/{code}/conversions`, an installation token otherwise. POST /graphql (not in
//! the REST description) and GET /repositories/{id} (served by GitHub, undocumented) are
//! checked for an installation token only. Requests whose credential
//! the server refused ([`super::Auth::Invalid`]) are not reported for their credential: the
//! refusal was the server's answer.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, LazyLock, Mutex};

use serde_json::{json, Map, Value};

use super::{Auth, RecordedRequest};

/// Where the description lives, relative to this crate.
pub(super) fn description_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/github/node_modules/@octokit/openapi/generated/api.github.com.json")
}

#[derive(Debug)]
enum Seg {
    Lit(String),
    Param(String),
}

struct Op {
    method: String,
    template: String,
    segs: Vec<Seg>,
    /// The operation object, with the path item's parameters merged into `parameters`.
    op: Value,
}

/// Path parameter names and values.
type PathParams = Vec<(String, String)>;

struct Spec {
    ops: Vec<Op>,
    components: Value,
    webhooks: Value,
}

static SPEC: LazyLock<Result<Spec, String>> = LazyLock::new(load);

type Compiled = Arc<Result<jsonschema::Validator, String>>;
static VALIDATORS: LazyLock<Mutex<HashMap<String, Compiled>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

fn load() -> Result<Spec, String> {
    let path = description_path();
    let text = std::fs::read(&path).map_err(|e| {
        format!(
            "GitHub's OpenAPI description is missing at {} ({e}): run `make github-fixtures`",
            path.display()
        )
    })?;
    let doc: Value =
        serde_json::from_slice(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut ops = Vec::new();
    for (template, item) in doc["paths"].as_object().ok_or("no paths")? {
        let shared = item
            .get("parameters")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let segs: Vec<Seg> = template
            .split('/')
            .filter(|s| !s.is_empty())
            .map(
                |s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                    Some(name) => Seg::Param(name.to_string()),
                    None => Seg::Lit(s.to_string()),
                },
            )
            .collect();
        for (method, op) in item.as_object().into_iter().flatten() {
            if !["get", "post", "put", "patch", "delete", "head"].contains(&method.as_str()) {
                continue;
            }
            let mut op = op.clone();
            let mut params = shared.clone();
            params.extend(op["parameters"].as_array().cloned().unwrap_or_default());
            op["parameters"] = Value::Array(params);
            ops.push(Op {
                method: method.to_uppercase(),
                template: template.clone(),
                segs: segs
                    .iter()
                    .map(|s| match s {
                        Seg::Lit(l) => Seg::Lit(l.clone()),
                        Seg::Param(p) => Seg::Param(p.clone()),
                    })
                    .collect(),
                op,
            });
        }
    }
    Ok(Spec {
        ops,
        components: doc["components"].clone(),
        webhooks: doc["x-webhooks"].clone(),
    })
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// The operation for `method` and the concrete `path`, with its path parameter values; or why
/// there is none.
fn find<'a>(spec: &'a Spec, method: &str, path: &str) -> Result<(&'a Op, PathParams), String> {
    let segs: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect();
    let matches = |op: &Op| -> Option<(usize, PathParams)> {
        // Parameters that may carry slashes (branch names, file paths) take the rest.
        let greedy = op.segs.len() < segs.len()
            && matches!(op.segs.last(), Some(Seg::Param(p)) if ["basehead", "path", "ref", "branch"].contains(&p.as_str()));
        if op.segs.len() != segs.len() && !greedy {
            return None;
        }
        let mut literal = 0;
        let mut params = Vec::new();
        for (i, seg) in op.segs.iter().enumerate() {
            let last = i + 1 == op.segs.len();
            match seg {
                Seg::Lit(l) if *l == segs[i] => literal += 1,
                Seg::Lit(_) => return None,
                Seg::Param(p) => {
                    let value = if last {
                        segs[i..].join("/")
                    } else {
                        segs[i].clone()
                    };
                    params.push((p.clone(), value));
                }
            }
        }
        // An exact length match beats a greedy one.
        Some((literal * 2 + usize::from(!greedy), params))
    };
    let mut best: Option<(usize, &Op, PathParams)> = None;
    let mut other_methods = Vec::new();
    for op in &spec.ops {
        if let Some((score, params)) = matches(op) {
            if op.method != method {
                other_methods.push(op.method.clone());
                continue;
            }
            if best.as_ref().is_none_or(|(s, _, _)| score > *s) {
                best = Some((score, op, params));
            }
        }
    }
    match best {
        Some((_, op, params)) => Ok((op, params)),
        None if other_methods.is_empty() => {
            Err("no operation in GitHub's REST API has this path".into())
        }
        None => {
            other_methods.sort();
            other_methods.dedup();
            Err(format!(
                "the path exists, but not for {method} (only {})",
                other_methods.join(", ")
            ))
        }
    }
}

/// Resolves a `{"$ref": "#/components/parameters/x"}`.
fn deref<'a>(spec: &'a Spec, v: &'a Value) -> &'a Value {
    match v.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let pointer = r.trim_start_matches("#/components");
            spec.components.pointer(pointer).unwrap_or(v)
        }
        None => v,
    }
}

/// OpenAPI 3.0 schema → JSON Schema: `nullable: true` becomes `anyOf [schema, null]`.
/// `strict` (for checking this server's answers): objects with `properties` take no others, and `allOf` parts (their `$ref`s resolved in `components`) are merged
/// into one object so that each property is checked once against the whole.
fn convert(v: &Value, strict: bool, components: &Value) -> Value {
    match v {
        Value::Object(map) => {
            if strict {
                if let Some(parts) = map.get("allOf").and_then(Value::as_array) {
                    let mut props = Map::new();
                    merge_all_of(parts, components, &mut props);
                    let mut merged = Map::new();
                    merged.insert("type".into(), json!("object"));
                    merged.insert("properties".into(), Value::Object(props));
                    if let Some(n) = map.get("nullable") {
                        merged.insert("nullable".into(), n.clone());
                    }
                    return convert(&Value::Object(merged), strict, components);
                }
            }
            let mut out = Map::new();
            let mut nullable = false;
            for (k, v) in map {
                match k.as_str() {
                    "nullable" => nullable = v.as_bool().unwrap_or(false),
                    "example" | "examples" | "description" | "discriminator" | "xml" => {}
                    // Property names live under "properties": keep their keys, convert values.
                    "properties" | "patternProperties" => {
                        let props = v
                            .as_object()
                            .map(|p| {
                                p.iter()
                                    .map(|(k, v)| (k.clone(), convert(v, strict, components)))
                                    .collect()
                            })
                            .unwrap_or_default();
                        out.insert(k.clone(), Value::Object(props));
                    }
                    _ => {
                        out.insert(k.clone(), convert(v, strict, components));
                    }
                }
            }
            if strict && out.contains_key("properties") && !out.contains_key("additionalProperties")
            {
                out.insert("additionalProperties".into(), Value::Bool(false));
            }
            if nullable {
                json!({"anyOf": [Value::Object(out), {"type": "null"}]})
            } else {
                Value::Object(out)
            }
        }
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| convert(v, strict, components))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The properties of every part of an `allOf` (references and nested `allOf`s followed).
fn merge_all_of(parts: &[Value], components: &Value, into: &mut Map<String, Value>) {
    for part in parts {
        let part = match part.get("$ref").and_then(Value::as_str) {
            Some(r) => components
                .pointer(r.trim_start_matches("#/components"))
                .unwrap_or(&Value::Null),
            None => part,
        };
        if let Some(nested) = part.get("allOf").and_then(Value::as_array) {
            merge_all_of(nested, components, into);
        }
        if let Some(props) = part.get("properties").and_then(Value::as_object) {
            for (k, v) in props {
                into.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
    }
}

fn collect_refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                if k == "$ref" {
                    if let Some(r) = v.as_str() {
                        out.push(r.to_string());
                    }
                } else {
                    collect_refs(v, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

/// A validator for `schema`, with the components it references (transitively) embedded.
fn compile(spec: &Spec, schema: &Value, strict: bool) -> Result<jsonschema::Validator, String> {
    let mut components: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
    let mut pending = Vec::new();
    collect_refs(schema, &mut pending);
    while let Some(r) = pending.pop() {
        let Some(rest) = r.strip_prefix("#/components/") else {
            return Err(format!("unsupported reference {r}"));
        };
        let (kind, name) = rest
            .split_once('/')
            .ok_or_else(|| format!("bad reference {r}"))?;
        if components.get(kind).is_some_and(|m| m.contains_key(name)) {
            continue;
        }
        let target = spec
            .components
            .get(kind)
            .and_then(|k| k.get(name))
            .ok_or_else(|| format!("dangling reference {r}"))?;
        collect_refs(target, &mut pending);
        components
            .entry(kind.to_string())
            .or_default()
            .insert(name.to_string(), convert(target, strict, &spec.components));
    }
    let root = json!({
        "allOf": [convert(schema, strict, &spec.components)],
        "components": components,
    });
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft4)
        .should_validate_formats(true)
        .build(&root)
        .map_err(|e| e.to_string())
}

fn validator(spec: &Spec, key: &str, schema: &Value, strict: bool) -> Compiled {
    let mut cache = VALIDATORS.lock().unwrap_or_else(|e| e.into_inner());
    cache
        .entry(key.to_string())
        .or_insert_with(|| Arc::new(compile(spec, schema, strict)))
        .clone()
}

fn schema_errors(spec: &Spec, key: &str, schema: &Value, value: &Value) -> Vec<String> {
    schema_errors_with(spec, key, schema, value, false)
}

fn schema_errors_with(
    spec: &Spec,
    key: &str,
    schema: &Value,
    value: &Value,
    strict: bool,
) -> Vec<String> {
    match &*validator(spec, key, schema, strict) {
        Ok(v) => v
            .iter_errors(value)
            .map(|e| {
                let at = e.instance_path().to_string();
                format!("{} (at '{}')", e, if at.is_empty() { "/" } else { &at })
            })
            .collect(),
        Err(e) => vec![format!("its schema could not be compiled: {e}")],
    }
}

/// A parameter's string value as the JSON its schema expects (integers, booleans, arrays).
fn coerce(schema: &Value, raw: &str) -> Value {
    match schema.get("type").and_then(Value::as_str) {
        Some("integer") | Some("number") => serde_json::from_str::<Value>(raw)
            .ok()
            .filter(Value::is_number)
            .unwrap_or_else(|| json!(raw)),
        Some("boolean") => match raw {
            "true" => json!(true),
            "false" => json!(false),
            _ => json!(raw),
        },
        Some("array") => Value::Array(
            raw.split(',')
                .map(|p| coerce(schema.get("items").unwrap_or(&Value::Null), p))
                .collect(),
        ),
        _ => json!(raw),
    }
}

/// What credential the operation takes.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
enum Kind {
    Jwt,
    Installation,
    Nothing,
}

fn expected_kind(template: &str) -> Kind {
    if template == "/app-manifests/{code}/conversions" {
        Kind::Nothing
    } else if template == "/app"
        || template.starts_with("/app/")
        || [
            "/repos/{owner}/{repo}/installation",
            "/orgs/{org}/installation",
            "/users/{username}/installation",
        ]
        .contains(&template)
    {
        Kind::Jwt
    } else {
        Kind::Installation
    }
}

fn auth_violation(expected: Kind, auth: &Auth) -> Option<String> {
    let actual = match auth {
        Auth::Invalid => return None,
        Auth::None => Kind::Nothing,
        Auth::Jwt { .. } => Kind::Jwt,
        Auth::InstallationToken { .. } => Kind::Installation,
    };
    let name = |k: Kind| match k {
        Kind::Jwt => "an App JWT",
        Kind::Installation => "an installation token",
        Kind::Nothing => "no credential",
    };
    (actual != expected).then(|| {
        format!(
            "sent {} where the operation takes {}",
            name(actual),
            name(expected)
        )
    })
}

fn check(spec: &Spec, r: &RecordedRequest) -> Vec<String> {
    if r.method == "POST" && r.path == "/graphql" {
        return auth_violation(Kind::Installation, &r.auth)
            .into_iter()
            .collect();
    }
    // GET /repositories/{id}: served by GitHub (the repository by its stable id, surviving
    // renames and transfers) but absent from the description; checked for its credential.
    let segs: Vec<&str> = r.path.split('/').filter(|s| !s.is_empty()).collect();
    if r.method == "GET"
        && matches!(segs.as_slice(), ["repositories", id] if id.parse::<u64>().is_ok())
    {
        return auth_violation(Kind::Installation, &r.auth)
            .into_iter()
            .collect();
    }
    let (op, path_params) = match find(spec, &r.method, &r.path) {
        Ok(found) => found,
        Err(e) => return vec![e],
    };
    let mut out = Vec::new();
    let id = op.op["operationId"]
        .as_str()
        .unwrap_or(&op.template)
        .to_string();
    let app_credential = matches!(r.auth, Auth::Jwt { .. } | Auth::InstallationToken { .. });
    if app_credential && op.op["x-github"]["enabledForGitHubApps"] == json!(false) {
        out.push(format!("operation {id} is not available to GitHub Apps"));
    }
    let params: Vec<&Value> = op.op["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| deref(spec, p))
        .collect();
    let declared = |name: &str, place: &str| {
        params
            .iter()
            .find(|p| p["name"] == json!(name) && p["in"] == json!(place))
            .copied()
    };
    for (name, value) in &path_params {
        if let Some(p) = declared(name, "path") {
            let key = format!("{} {} path {name}", op.method, op.template);
            for e in schema_errors(spec, &key, &p["schema"], &coerce(&p["schema"], value)) {
                out.push(format!("path parameter {name}={value:?}: {e}"));
            }
        }
    }
    let query: Vec<(String, String)> = r
        .query
        .as_deref()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (
                percent_decode(&k.replace('+', " ")),
                percent_decode(&v.replace('+', " ")),
            )
        })
        .collect();
    for (name, value) in &query {
        match declared(name, "query") {
            None => out.push(format!(
                "query parameter {name:?} is not a parameter of {id}"
            )),
            Some(p) => {
                let key = format!("{} {} query {name}", op.method, op.template);
                for e in schema_errors(spec, &key, &p["schema"], &coerce(&p["schema"], value)) {
                    out.push(format!("query parameter {name}={value:?}: {e}"));
                }
            }
        }
    }
    for p in &params {
        if p["in"] == json!("query") && p["required"] == json!(true) {
            let name = p["name"].as_str().unwrap_or("");
            if !query.iter().any(|(k, _)| k == name) {
                out.push(format!("required query parameter {name:?} is missing"));
            }
        }
    }
    let body_schema = op.op["requestBody"]["content"]["application/json"]["schema"].clone();
    let body_required = op.op["requestBody"]["required"] == json!(true);
    match (&r.body, body_schema.is_null()) {
        (Some(Value::String(raw)), _) => {
            out.push(format!("the body is not JSON: {:.80}", raw));
        }
        (Some(body), false) => {
            let key = format!("{} {} body", op.method, op.template);
            for e in schema_errors(spec, &key, &body_schema, body) {
                out.push(format!("body: {e}"));
            }
        }
        (Some(_), true) => out.push(format!("{id} takes no JSON body")),
        (None, false) if body_required => out.push(format!("{id} requires a JSON body")),
        (None, _) => {}
    }
    out.extend(auth_violation(expected_kind(&op.template), &r.auth));
    out
}

/// Every violation in `requests`, one line each: `<METHOD> <path>: <problem>`.
pub(super) fn violations(requests: &[RecordedRequest]) -> Vec<String> {
    let spec = match &*SPEC {
        Ok(spec) => spec,
        Err(e) => return vec![e.clone()],
    };
    let mut out = Vec::new();
    for r in requests {
        let target = match &r.query {
            Some(q) => format!("{}?{q}", r.path),
            None => r.path.clone(),
        };
        for v in check(spec, r) {
            out.push(format!("{} {target}: {v}", r.method));
        }
    }
    out
}

/// Every successful REST answer in `requests` checked strictly against its response schema.
pub(super) fn response_violations(requests: &[RecordedRequest]) -> Vec<String> {
    let spec = match &*SPEC {
        Ok(spec) => spec,
        Err(e) => return vec![e.clone()],
    };
    let mut out = Vec::new();
    for r in requests {
        let Some(body) = &r.response else { continue };
        if !(200..300).contains(&r.status) || r.path == "/graphql" {
            continue;
        }
        let Ok((op, _)) = find(spec, &r.method, &r.path) else {
            continue;
        };
        let status = r.status.to_string();
        let response = deref(spec, &op.op["responses"][&status]);
        let schema = &response["content"]["application/json"]["schema"];
        let target = format!("{} {} -> {status}", r.method, r.path);
        if schema.is_null() {
            out.push(format!(
                "{target}: the description has no JSON answer for this status"
            ));
            continue;
        }
        let key = format!("response {} {} {status}", op.method, op.template);
        let mut secrets = Vec::new();
        collect_secrets(body, &mut secrets);
        for mut e in schema_errors_with(spec, &key, schema, body, true) {
            for secret in &secrets {
                e = e.replace(secret.as_str(), "<redacted>");
            }
            if e.len() > 400 {
                let cut = (0..=400)
                    .rev()
                    .find(|i| e.is_char_boundary(*i))
                    .unwrap_or(0);
                e.truncate(cut);
                e.push('…');
            }
            out.push(format!("{target}: {e}"));
        }
    }
    out
}

/// Values of secret-bearing fields (tokens, keys, secrets), kept out of messages.
fn collect_secrets(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v.as_str()) {
                    ("token" | "pem" | "webhook_secret" | "client_secret", Some(s))
                        if !s.is_empty() =>
                    {
                        out.push(s.to_string());
                    }
                    _ => collect_secrets(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_secrets(v, out)),
        _ => {}
    }
}

/// `payload` checked strictly against the `x-webhooks` schema named `hook`.
pub(super) fn webhook_violations(hook: &str, payload: &Value) -> Vec<String> {
    let spec = match &*SPEC {
        Ok(spec) => spec,
        Err(e) => return vec![e.clone()],
    };
    let schema =
        &spec.webhooks[hook]["post"]["requestBody"]["content"]["application/json"]["schema"];
    if schema.is_null() {
        return vec![format!("no webhook named {hook:?} in the description")];
    }
    schema_errors_with(spec, &format!("webhook {hook}"), schema, payload, true)
        .into_iter()
        .map(|e| format!("{hook}: {e}"))
        .collect()
}
