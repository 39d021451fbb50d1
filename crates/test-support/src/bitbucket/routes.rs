//! Bitbucket Cloud's route table, as the npm `bitbucket` 2.12.0 client holds it
//! (`lib/index.js`, installed under `tests/bitbucket/node_modules` by
//! `make bitbucket-fixtures`), loaded once per process, and the check of recorded requests
//! against it.
//!
//! The table is a JavaScript object literal in the minified module (`={branching_model:{...}}`):
//! namespaces of operations, each `{method, url, params, ...}` or `{alias: "ns.op"}`. `url` is a
//! template relative to `/2.0` with `{param}` path parameters (and, on three operations, an
//! RFC 6570 query part `{?a,b}`); `params` declares each parameter's `type` (`string`,
//! `integer`, `boolean`, `any`), `required` and `enum`, the body as `_body`. The literal is read
//! by a small parser of the JSON-like subset the minifier writes (bare keys, `!0`/`!1`).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::LazyLock;

use serde_json::{Map, Value};

use super::RecordedRequest;

/// Where the route table lives, relative to this crate.
pub(super) fn table_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/bitbucket/node_modules/bitbucket/lib/index.js")
}

/// Query parameters every listing takes (Bitbucket Cloud docs, "Pagination", "Filtering and
/// sorting", "Partial response"), which the table does not repeat per operation.
const GENERIC_QUERY: &[&str] = &["page", "pagelen", "q", "sort", "fields"];

#[derive(Debug)]
enum Seg {
    Lit(String),
    Param(String),
}

#[derive(Debug)]
pub(super) struct Op {
    /// `namespace.operation`.
    pub name: String,
    pub method: String,
    /// The template as the table writes it.
    pub template: String,
    segs: Vec<Seg>,
    /// Parameter name → `{type, required, enum, ...}`.
    params: Map<String, Value>,
    /// Names of the template's RFC 6570 query part.
    template_query: Vec<String>,
}

/// Path parameter names and values, in template order.
pub(super) type PathParams = Vec<(String, String)>;

static TABLE: LazyLock<Result<Vec<Op>, String>> = LazyLock::new(load);

/// The operations of the table, or why it could not be read.
pub(super) fn table() -> Result<&'static [Op], String> {
    TABLE.as_ref().map(Vec::as_slice).map_err(Clone::clone)
}

fn load() -> Result<Vec<Op>, String> {
    let path = table_path();
    let text = std::fs::read_to_string(&path).map_err(|e| {
        format!(
            "npm `bitbucket`'s route table is missing at {} ({e}): run `make bitbucket-fixtures`",
            path.display()
        )
    })?;
    let marker = "={branching_model:";
    let start = text
        .find(marker)
        .ok_or_else(|| format!("{}: no route table (`{marker}`)", path.display()))?
        + 1;
    let mut parser = Parser {
        s: text.as_bytes(),
        i: start,
    };
    let table = parser
        .value()
        .map_err(|e| format!("{}: the route table does not parse: {e}", path.display()))?;
    let mut ops = Vec::new();
    for (namespace, operations) in table.as_object().ok_or("the table is not an object")? {
        for (operation, def) in operations.as_object().into_iter().flatten() {
            if def.get("alias").is_some() {
                continue;
            }
            let (Some(method), Some(url)) = (
                def.get("method").and_then(Value::as_str),
                def.get("url").and_then(Value::as_str),
            ) else {
                continue;
            };
            let (path_part, template_query) = match url.find("{?") {
                Some(at) => (
                    &url[..at],
                    url[at + 2..]
                        .trim_end_matches('}')
                        .split(',')
                        .map(str::to_string)
                        .collect(),
                ),
                None => (url, Vec::new()),
            };
            let segs = path_part
                .split('/')
                .filter(|s| !s.is_empty())
                .map(
                    |s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                        Some(name) => Seg::Param(name.to_string()),
                        None => Seg::Lit(s.to_string()),
                    },
                )
                .collect();
            ops.push(Op {
                name: format!("{namespace}.{operation}"),
                method: method.to_uppercase(),
                template: url.to_string(),
                segs,
                params: def
                    .get("params")
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default(),
                template_query,
            });
        }
    }
    if ops.is_empty() {
        return Err(format!("{}: the route table is empty", path.display()));
    }
    Ok(ops)
}

/// A parser of the object literal the minifier writes: objects with bare or quoted keys,
/// arrays, strings in either quotes, numbers, `!0`/`!1`, `true`/`false`/`null`, `void 0`.
struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn expect(&mut self, b: u8) -> Result<(), String> {
        self.ws();
        if self.peek() == Some(b) {
            self.i += 1;
            Ok(())
        } else {
            Err(format!("expected `{}` at byte {}", b as char, self.i))
        }
    }

    fn word(&mut self) -> String {
        let start = self.i;
        while self
            .peek()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'$')
        {
            self.i += 1;
        }
        String::from_utf8_lossy(&self.s[start..self.i]).into_owned()
    }

    fn string(&mut self) -> Result<String, String> {
        let quote = self.s[self.i];
        self.i += 1;
        let mut out = Vec::new();
        while let Some(b) = self.peek() {
            self.i += 1;
            match b {
                b'\\' => {
                    let e = self.peek().ok_or("unterminated escape")?;
                    self.i += 1;
                    match e {
                        b'n' => out.push(b'\n'),
                        b't' => out.push(b'\t'),
                        b'r' => out.push(b'\r'),
                        b'u' => {
                            let hex = std::str::from_utf8(&self.s[self.i..self.i + 4])
                                .map_err(|e| e.to_string())?;
                            let c = u32::from_str_radix(hex, 16).map_err(|e| e.to_string())?;
                            self.i += 4;
                            let c = char::from_u32(c).unwrap_or('\u{fffd}');
                            out.extend(c.to_string().as_bytes());
                        }
                        other => out.push(other),
                    }
                }
                b if b == quote => return String::from_utf8(out).map_err(|e| e.to_string()),
                b => out.push(b),
            }
        }
        Err("unterminated string".into())
    }

    fn value(&mut self) -> Result<Value, String> {
        self.ws();
        match self.peek().ok_or("unexpected end")? {
            b'{' => {
                self.i += 1;
                let mut map = Map::new();
                loop {
                    self.ws();
                    if self.peek() == Some(b'}') {
                        self.i += 1;
                        return Ok(Value::Object(map));
                    }
                    let key = match self.peek() {
                        Some(b'"' | b'\'') => self.string()?,
                        _ => self.word(),
                    };
                    if key.is_empty() {
                        return Err(format!("expected a key at byte {}", self.i));
                    }
                    self.expect(b':')?;
                    let v = self.value()?;
                    map.insert(key, v);
                    self.ws();
                    if self.peek() == Some(b',') {
                        self.i += 1;
                    }
                }
            }
            b'[' => {
                self.i += 1;
                let mut items = Vec::new();
                loop {
                    self.ws();
                    if self.peek() == Some(b']') {
                        self.i += 1;
                        return Ok(Value::Array(items));
                    }
                    items.push(self.value()?);
                    self.ws();
                    if self.peek() == Some(b',') {
                        self.i += 1;
                    }
                }
            }
            b'"' | b'\'' => self.string().map(Value::String),
            b'!' => {
                self.i += 1;
                let w = self.word();
                match w.as_str() {
                    "0" => Ok(Value::Bool(true)),
                    "1" => Ok(Value::Bool(false)),
                    _ => Err(format!("unexpected `!{w}` at byte {}", self.i)),
                }
            }
            b'-' | b'0'..=b'9' => {
                let start = self.i;
                self.i += 1;
                while self
                    .peek()
                    .is_some_and(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E'))
                {
                    self.i += 1;
                }
                let text =
                    std::str::from_utf8(&self.s[start..self.i]).map_err(|e| e.to_string())?;
                serde_json::from_str(text).map_err(|e| format!("number {text:?}: {e}"))
            }
            _ => {
                let w = self.word();
                match w.as_str() {
                    "true" => Ok(Value::Bool(true)),
                    "false" => Ok(Value::Bool(false)),
                    "null" => Ok(Value::Null),
                    "void" => {
                        self.ws();
                        self.word();
                        Ok(Value::Null)
                    }
                    _ => Err(format!("unexpected {w:?} at byte {}", self.i)),
                }
            }
        }
    }
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// The operation for `method` and `path` (relative to `/2.0`, percent-encoded), with its path
/// parameters: the match with the most literal segments wins (`pullrequests/activity` over
/// `pullrequests/{pull_request_id}`).
pub(super) fn find<'a>(
    ops: &'a [Op],
    method: &str,
    path: &str,
) -> Result<(&'a Op, PathParams), String> {
    let segs: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect();
    let mut best: Option<(&Op, PathParams, usize)> = None;
    let mut other_methods = BTreeSet::new();
    for op in ops {
        if op.segs.len() != segs.len() {
            continue;
        }
        let mut params = Vec::new();
        let mut literals = 0;
        let matched = op.segs.iter().zip(&segs).all(|(t, s)| match t {
            Seg::Lit(l) => {
                literals += 1;
                l == s
            }
            Seg::Param(name) => {
                params.push((name.clone(), s.clone()));
                !s.is_empty()
            }
        });
        if !matched {
            continue;
        }
        if op.method != method {
            other_methods.insert(op.method.clone());
            continue;
        }
        if best.as_ref().is_none_or(|(_, _, l)| literals > *l) {
            best = Some((op, params, literals));
        }
    }
    match best {
        Some((op, params, _)) => Ok((op, params)),
        None if !other_methods.is_empty() => Err(format!(
            "no {method} operation at this path (the table has {})",
            other_methods.into_iter().collect::<Vec<_>>().join(", ")
        )),
        None => Err("no operation in the route table has this path".into()),
    }
}

fn parse_query(q: Option<&str>) -> Vec<(String, String)> {
    q.map(|q| {
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

/// Whether `value` is of the declared parameter's type and enum.
fn check_value(name: &str, def: &Value, value: &str) -> Option<String> {
    let ty = def.get("type").and_then(Value::as_str).unwrap_or("any");
    let type_ok = match ty {
        "integer" => value.parse::<i64>().is_ok(),
        "boolean" => matches!(value, "true" | "false"),
        _ => true,
    };
    if !type_ok {
        return Some(format!("parameter `{name}` = {value:?} is not a {ty}"));
    }
    if let Some(allowed) = def.get("enum").and_then(Value::as_array) {
        if !allowed.iter().any(|a| a.as_str() == Some(value)) {
            return Some(format!(
                "parameter `{name}` = {value:?} is not one of {}",
                Value::Array(allowed.clone())
            ));
        }
    }
    None
}

/// What is wrong with one request, per the table.
fn request_violations(ops: &[Op], r: &RecordedRequest) -> Vec<String> {
    let mut out = Vec::new();
    if r.auth_scheme.as_deref() != Some("Bearer") {
        out.push("no `Authorization: Bearer` access token".to_string());
    }
    let Some(rest) = r.path.strip_prefix("/2.0/") else {
        out.push("not under the API root /2.0".to_string());
        return out;
    };
    let (op, path_params) = match find(ops, &r.method, rest) {
        Ok(found) => found,
        Err(e) => {
            out.push(e);
            return out;
        }
    };
    let at = |m: String| format!("{} ({} {}): {m}", op.name, op.method, op.template);
    for (name, value) in &path_params {
        if let Some(def) = op.params.get(name) {
            if let Some(e) = check_value(name, def, value) {
                out.push(at(e));
            }
        }
    }
    let query = parse_query(r.query.as_deref());
    for (name, value) in &query {
        let declared = op
            .params
            .get(name)
            .filter(|_| name != "_body" && !path_params.iter().any(|(p, _)| p == name));
        match declared {
            Some(def) => {
                if let Some(e) = check_value(name, def, value) {
                    out.push(at(e));
                }
            }
            None if GENERIC_QUERY.contains(&name.as_str())
                || op.template_query.iter().any(|q| q == name) => {}
            None => out.push(at(format!("query parameter `{name}` is not declared"))),
        }
    }
    let reads = matches!(op.method.as_str(), "GET" | "DELETE");
    for (name, def) in &op.params {
        let required = def.get("required").and_then(Value::as_bool) == Some(true);
        if name == "_body" {
            if required && r.body.is_none() {
                out.push(at("the operation requires a body; none was sent".into()));
            }
            continue;
        }
        if path_params.iter().any(|(p, _)| p == name) {
            continue;
        }
        // Reads take their parameters in the query; writes take the undeclared-in-path ones
        // in the body (the npm client's rule), so only reads are checked for them.
        if required && reads && !query.iter().any(|(k, _)| k == name) {
            out.push(at(format!("required query parameter `{name}` is missing")));
        }
    }
    if let Some(body) = &r.body {
        if reads {
            out.push(at("a body on a read".into()));
        }
        if matches!(body, Value::String(_)) {
            out.push(at("the body is not JSON".into()));
        }
        if !r
            .content_type
            .as_deref()
            .is_some_and(|c| c.starts_with("application/json"))
        {
            out.push(at(format!(
                "a JSON body sent as {:?}",
                r.content_type.as_deref().unwrap_or("nothing")
            )));
        }
    }
    out
}

/// One line per violation, naming the request.
pub(super) fn violations(requests: &[RecordedRequest]) -> Vec<String> {
    let ops = match table() {
        Ok(ops) => ops,
        Err(e) => return vec![e],
    };
    let mut out = Vec::new();
    for r in requests {
        let target = match &r.query {
            Some(q) => format!("{}?{q}", r.path),
            None => r.path.clone(),
        };
        for v in request_violations(ops, r) {
            out.push(format!("{} {target}: {v}", r.method));
        }
    }
    out
}
