//! POST /graphql: a small but real GraphQL executor for the review-thread operations a
//! GitHub App client sends. The query text is parsed (operations, aliases, arguments,
//! variables with defaults; no fragments), and only the requested fields are answered.
//!
//! Served (GitHub GraphQL schema names):
//! - `query { repository(owner:, name:) { pullRequest(number:) { reviewThreads(first:, after:)
//!   { nodes { id isResolved isOutdated path line comments(first:, after:) { nodes { id
//!   databaseId body author { login } } pageInfo totalCount } } pageInfo totalCount edges } } } }`
//! - `mutation { resolveReviewThread(input: {threadId:}) { thread { id isResolved } } }` and
//!   `unresolveReviewThread`.
//! - `node(id:)` for a review thread, `rateLimit { limit remaining resetAt cost }`.
//!
//! Errors come back as GitHub does: HTTP 200 with `{"data": …, "errors": [{"type", "path",
//! "message"}]}`; a credential problem is HTTP 401 like REST.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde_json::{json, Map, Value};

use super::http::{err, ApiError, Cred, Reply, Req};
use super::State;

// ---------------------------------------------------------------------------------------------
// Parsing

#[derive(Debug, Clone)]
enum Val {
    Var(String),
    Lit(Value),
    List(Vec<Val>),
    Obj(Vec<(String, Val)>),
}

#[derive(Debug, Clone)]
struct Field {
    alias: Option<String>,
    name: String,
    args: Vec<(String, Val)>,
    selection: Vec<Field>,
}

impl Field {
    fn key(&self) -> &str {
        self.alias.as_deref().unwrap_or(&self.name)
    }
}

struct Operation {
    mutation: bool,
    defaults: BTreeMap<String, Value>,
    selection: Vec<Field>,
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Parser<'a> {
    fn skip(&mut self) {
        while self.i < self.s.len() {
            match self.s[self.i] {
                b' ' | b'\t' | b'\n' | b'\r' | b',' => self.i += 1,
                b'#' => {
                    while self.i < self.s.len() && self.s[self.i] != b'\n' {
                        self.i += 1;
                    }
                }
                _ => break,
            }
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip();
        self.s.get(self.i).copied()
    }

    fn expect(&mut self, c: u8) -> Result<(), String> {
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            Err(format!(
                "Parse error on \"{}\" at offset {}: expected '{}'",
                self.s.get(self.i).map(|b| *b as char).unwrap_or(' '),
                self.i,
                c as char
            ))
        }
    }

    fn name(&mut self) -> Result<String, String> {
        self.skip();
        let start = self.i;
        while self.i < self.s.len()
            && (self.s[self.i].is_ascii_alphanumeric() || self.s[self.i] == b'_')
        {
            self.i += 1;
        }
        if start == self.i {
            return Err(format!("Parse error at offset {start}: expected a name"));
        }
        Ok(String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }

    fn string(&mut self) -> Result<String, String> {
        self.expect(b'"')?;
        let mut out = String::new();
        let text = std::str::from_utf8(&self.s[self.i..]).map_err(|e| e.to_string())?;
        let mut chars = text.char_indices();
        while let Some((at, c)) = chars.next() {
            match c {
                '"' => {
                    self.i += at + 1;
                    return Ok(out);
                }
                '\\' => match chars.next().map(|(_, c)| c) {
                    Some('n') => out.push('\n'),
                    Some('t') => out.push('\t'),
                    Some('r') => out.push('\r'),
                    Some('u') => {
                        let hex: String = (0..4)
                            .filter_map(|_| chars.next().map(|(_, c)| c))
                            .collect();
                        let code = u32::from_str_radix(&hex, 16).map_err(|e| e.to_string())?;
                        out.push(char::from_u32(code).unwrap_or('\u{fffd}'));
                    }
                    Some(c) => out.push(c),
                    None => break,
                },
                c => out.push(c),
            }
        }
        Err("Parse error: unterminated string".into())
    }

    fn value(&mut self) -> Result<Val, String> {
        match self.peek() {
            Some(b'$') => {
                self.i += 1;
                Ok(Val::Var(self.name()?))
            }
            Some(b'"') => Ok(Val::Lit(Value::String(self.string()?))),
            Some(b'[') => {
                self.i += 1;
                let mut items = Vec::new();
                while self.peek() != Some(b']') {
                    items.push(self.value()?);
                }
                self.i += 1;
                Ok(Val::List(items))
            }
            Some(b'{') => {
                self.i += 1;
                let mut fields = Vec::new();
                while self.peek() != Some(b'}') {
                    let k = self.name()?;
                    self.expect(b':')?;
                    fields.push((k, self.value()?));
                }
                self.i += 1;
                Ok(Val::Obj(fields))
            }
            Some(c) if c == b'-' || c.is_ascii_digit() => {
                let start = self.i;
                self.i += 1;
                while self.i < self.s.len()
                    && (self.s[self.i].is_ascii_digit() || b".eE+-".contains(&self.s[self.i]))
                {
                    self.i += 1;
                }
                let text = std::str::from_utf8(&self.s[start..self.i]).unwrap_or("0");
                let v: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
                Ok(Val::Lit(v))
            }
            Some(_) => {
                let word = self.name()?;
                Ok(Val::Lit(match word.as_str() {
                    "true" => Value::Bool(true),
                    "false" => Value::Bool(false),
                    "null" => Value::Null,
                    _ => Value::String(word), // enum value
                }))
            }
            None => Err("Parse error: unexpected end of query".into()),
        }
    }

    fn selection(&mut self) -> Result<Vec<Field>, String> {
        self.expect(b'{')?;
        let mut fields = Vec::new();
        while self.peek() != Some(b'}') {
            if self.peek() == Some(b'.') {
                return Err("Fragments are not supported by this test server".into());
            }
            let first = self.name()?;
            let (alias, name) = if self.peek() == Some(b':') {
                self.i += 1;
                (Some(first), self.name()?)
            } else {
                (None, first)
            };
            let mut args = Vec::new();
            if self.peek() == Some(b'(') {
                self.i += 1;
                while self.peek() != Some(b')') {
                    let k = self.name()?;
                    self.expect(b':')?;
                    args.push((k, self.value()?));
                }
                self.i += 1;
            }
            let selection = if self.peek() == Some(b'{') {
                self.selection()?
            } else {
                Vec::new()
            };
            fields.push(Field {
                alias,
                name,
                args,
                selection,
            });
        }
        self.i += 1;
        Ok(fields)
    }

    /// The document's operation (one; `operationName` is not needed for single-op documents).
    fn operation(&mut self) -> Result<Operation, String> {
        let mut mutation = false;
        let mut defaults = BTreeMap::new();
        if self.peek() != Some(b'{') {
            let kind = self.name()?;
            match kind.as_str() {
                "query" => {}
                "mutation" => mutation = true,
                other => return Err(format!("Parse error: unexpected '{other}'")),
            }
            if self
                .peek()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')
            {
                self.name()?;
            }
            if self.peek() == Some(b'(') {
                self.i += 1;
                while self.peek() != Some(b')') {
                    self.expect(b'$')?;
                    let var = self.name()?;
                    self.expect(b':')?;
                    // The type: name, [list], with `!`.
                    let mut depth = 0;
                    loop {
                        match self.peek() {
                            Some(b'[') => {
                                depth += 1;
                                self.i += 1;
                            }
                            Some(b']') => {
                                depth -= 1;
                                self.i += 1;
                            }
                            Some(b'!') => self.i += 1,
                            Some(c) if c.is_ascii_alphabetic() => {
                                self.name()?;
                            }
                            _ => break,
                        }
                        if depth == 0
                            && !matches!(self.peek(), Some(b'!') | Some(b'[') | Some(b']'))
                        {
                            break;
                        }
                    }
                    if self.peek() == Some(b'=') {
                        self.i += 1;
                        let default = self.value()?;
                        let v = literal(&default)
                            .ok_or("a variable's default cannot name a variable")?;
                        defaults.insert(var, v);
                    }
                }
                self.i += 1;
            }
        }
        let selection = self.selection()?;
        if self.peek().is_some() {
            return Err(
                "This test server answers documents with one operation and no fragments".into(),
            );
        }
        Ok(Operation {
            mutation,
            defaults,
            selection,
        })
    }
}

/// A constant value (no variables inside).
fn literal(v: &Val) -> Option<Value> {
    match v {
        Val::Var(_) => None,
        Val::Lit(v) => Some(v.clone()),
        Val::List(items) => items
            .iter()
            .map(literal)
            .collect::<Option<Vec<_>>>()
            .map(Value::Array),
        Val::Obj(fields) => fields
            .iter()
            .map(|(k, v)| literal(v).map(|v| (k.clone(), v)))
            .collect::<Option<Map<_, _>>>()
            .map(Value::Object),
    }
}

// ---------------------------------------------------------------------------------------------
// Execution

struct Ctx<'a> {
    st: &'a mut State,
    vars: Map<String, Value>,
    errors: Vec<Value>,
    token: super::Token,
}

fn eval(ctx: &Ctx<'_>, v: &Val) -> Value {
    match v {
        Val::Var(name) => ctx.vars.get(name).cloned().unwrap_or(Value::Null),
        Val::Lit(v) => v.clone(),
        Val::List(items) => items.iter().map(|i| eval(ctx, i)).collect(),
        Val::Obj(fields) => Value::Object(
            fields
                .iter()
                .map(|(k, v)| (k.clone(), eval(ctx, v)))
                .collect(),
        ),
    }
}

fn arg(ctx: &Ctx<'_>, f: &Field, name: &str) -> Value {
    f.args
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| eval(ctx, v))
        .unwrap_or(Value::Null)
}

/// A GraphQL error (`type` as GitHub spells it: NOT_FOUND, FORBIDDEN, …).
struct GqlError {
    kind: Option<&'static str>,
    message: String,
}

fn gql_err(kind: &'static str, message: impl Into<String>) -> GqlError {
    GqlError {
        kind: Some(kind),
        message: message.into(),
    }
}

fn undefined(field: &Field, ty: &str) -> GqlError {
    GqlError {
        kind: None,
        message: format!("Field '{}' doesn't exist on type '{ty}'", field.name),
    }
}

type Resolved = Result<Value, GqlError>;

/// Resolves one node of a connection from its key.
type NodeFn<'f, T> = &'f dyn Fn(&mut Ctx<'_>, T, &Field, &[String]) -> Resolved;

/// Answers the selection on an object whose fields `leaf` resolves.
fn object(
    ctx: &mut Ctx<'_>,
    path: &[String],
    selection: &[Field],
    ty: &str,
    mut leaf: impl FnMut(&mut Ctx<'_>, &Field, &[String]) -> Resolved,
) -> Resolved {
    let mut out = Map::new();
    for f in selection {
        let mut p = path.to_vec();
        p.push(f.key().to_string());
        let v = if f.name == "__typename" {
            Ok(json!(ty))
        } else {
            leaf(ctx, f, &p)
        };
        match v {
            Ok(v) => {
                out.insert(f.key().to_string(), v);
            }
            Err(e) => {
                if e.kind.is_none() {
                    // A schema error: the whole document fails validation.
                    return Err(e);
                }
                ctx.errors
                    .push(json!({"type": e.kind, "path": p, "message": e.message}));
                out.insert(f.key().to_string(), Value::Null);
            }
        }
    }
    Ok(Value::Object(out))
}

fn scalar(v: Value, f: &Field) -> Resolved {
    if !f.selection.is_empty() {
        return Err(GqlError {
            kind: None,
            message: format!("Selections can't be made on scalars (field '{}')", f.name),
        });
    }
    Ok(v)
}

fn cursor(index: usize) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("cursor:v2:{index}"))
}

fn from_cursor(c: &str) -> Option<usize> {
    let raw = base64::engine::general_purpose::STANDARD.decode(c).ok()?;
    String::from_utf8(raw)
        .ok()?
        .strip_prefix("cursor:v2:")?
        .parse()
        .ok()
}

/// Slices `items` by `first`/`after` (GitHub requires `first` or `last`, at most 100).
fn window(ctx: &Ctx<'_>, f: &Field, len: usize) -> Result<(usize, usize), GqlError> {
    let first = arg(ctx, f, "first").as_u64();
    let last = arg(ctx, f, "last").as_u64();
    let Some(n) = first.or(last) else {
        return Err(GqlError {
            kind: Some("MISSING_PAGINATION_BOUNDARIES"),
            message: format!(
                "You must provide a `first` or `last` value to properly paginate the `{}` connection.",
                f.name
            ),
        });
    };
    if n > 100 {
        return Err(GqlError {
            kind: Some("EXCESSIVE_PAGINATION"),
            message: format!(
                "Requesting {n} records on the `{}` connection exceeds the `{}` limit of 100 records.",
                f.name,
                if first.is_some() { "first" } else { "last" }
            ),
        });
    }
    let start = match arg(ctx, f, "after").as_str() {
        Some(c) => from_cursor(c).map(|i| i + 1).ok_or_else(|| GqlError {
            kind: Some("INVALID_CURSOR_ARGUMENTS"),
            message: format!("`{c}` does not appear to be a valid cursor."),
        })?,
        None => 0,
    };
    let start = start.min(len);
    let n = n as usize;
    if first.is_some() {
        Ok((start, (start + n).min(len)))
    } else {
        Ok((len.saturating_sub(n).max(start), len))
    }
}

/// A connection over `ids` (nodes, edges, pageInfo, totalCount).
fn connection<T: Copy>(
    ctx: &mut Ctx<'_>,
    f: &Field,
    path: &[String],
    ty: &str,
    ids: &[T],
    node: NodeFn<'_, T>,
) -> Resolved {
    let (start, end) = window(ctx, f, ids.len())?;
    let page: Vec<(usize, T)> = (start..end).map(|i| (i, ids[i])).collect();
    let total = ids.len();
    object(ctx, path, &f.selection, ty, |ctx, g, p| {
        match g.name.as_str() {
            "totalCount" => scalar(json!(total), g),
            "nodes" => {
                let mut out = Vec::new();
                for (_, id) in &page {
                    out.push(node(ctx, *id, g, p)?);
                }
                Ok(Value::Array(out))
            }
            "edges" => {
                let mut out = Vec::new();
                for (i, id) in &page {
                    let i = *i;
                    let id = *id;
                    out.push(object(ctx, p, &g.selection, "Edge", |ctx, h, p| {
                        match h.name.as_str() {
                            "cursor" => scalar(json!(cursor(i)), h),
                            "node" => node(ctx, id, h, p),
                            _ => Err(undefined(h, "Edge")),
                        }
                    })?);
                }
                Ok(Value::Array(out))
            }
            "pageInfo" => object(ctx, p, &g.selection, "PageInfo", |_, h, _| {
                match h.name.as_str() {
                    "hasNextPage" => scalar(json!(end < total), h),
                    "hasPreviousPage" => scalar(json!(start > 0), h),
                    "endCursor" => scalar(
                        if end > start {
                            json!(cursor(end - 1))
                        } else {
                            Value::Null
                        },
                        h,
                    ),
                    "startCursor" => scalar(
                        if end > start {
                            json!(cursor(start))
                        } else {
                            Value::Null
                        },
                        h,
                    ),
                    _ => Err(undefined(h, "PageInfo")),
                }
            }),
            _ => Err(undefined(g, ty)),
        }
    })
}

fn comment_node(ctx: &mut Ctx<'_>, id: u64, f: &Field, path: &[String]) -> Resolved {
    let Some(c) = ctx
        .st
        .review_comments
        .iter()
        .find(|c| c.comment.id == id)
        .map(|c| (c.comment.clone(), c.created_at, c.repo_id, c.number))
    else {
        return Ok(Value::Null);
    };
    let (c, created, repo_id, number) = c;
    let full_name = ctx.st.repos[&repo_id].full_name();
    object(
        ctx,
        path,
        &f.selection,
        "PullRequestReviewComment",
        |ctx, g, p| match g.name.as_str() {
            "id" => scalar(json!(c.node_id), g),
            "databaseId" | "fullDatabaseId" => scalar(json!(c.id), g),
            "body" => scalar(json!(c.body), g),
            "path" => scalar(json!(c.path), g),
            "line" | "originalLine" => scalar(json!(c.line), g),
            "createdAt" | "updatedAt" => scalar(json!(super::http::iso(created)), g),
            "url" => scalar(
                json!(format!(
                    "https://github.com/{full_name}/pull/{number}#discussion_r{}",
                    c.id
                )),
                g,
            ),
            "author" => object(
                ctx,
                p,
                &g.selection,
                if c.author.ends_with("[bot]") {
                    "Bot"
                } else {
                    "User"
                },
                |_, h, _| match h.name.as_str() {
                    "login" => scalar(json!(c.author.trim_end_matches("[bot]")), h),
                    _ => Err(undefined(h, "Actor")),
                },
            ),
            _ => Err(undefined(g, "PullRequestReviewComment")),
        },
    )
}

fn thread_node(ctx: &mut Ctx<'_>, thread_id: &str, f: &Field, path: &[String]) -> Resolved {
    let Some(thread) = ctx.st.threads.get(thread_id) else {
        return Ok(Value::Null);
    };
    let (resolved, comment_ids) = (thread.resolved, thread.comment_ids.clone());
    let first = ctx
        .st
        .review_comments
        .iter()
        .find(|c| Some(&c.comment.id) == comment_ids.first())
        .map(|c| c.comment.clone());
    let thread_id = thread_id.to_string();
    object(
        ctx,
        path,
        &f.selection,
        "PullRequestReviewThread",
        |ctx, g, p| match g.name.as_str() {
            "id" => scalar(json!(thread_id), g),
            "isResolved" => scalar(json!(resolved), g),
            "isOutdated" => scalar(json!(false), g),
            "isCollapsed" => scalar(json!(resolved), g),
            "path" => scalar(json!(first.as_ref().map(|c| c.path.clone())), g),
            "line" => scalar(json!(first.as_ref().and_then(|c| c.line)), g),
            "startLine" => scalar(json!(first.as_ref().and_then(|c| c.start_line)), g),
            "diffSide" => scalar(json!(first.as_ref().and_then(|c| c.side.clone())), g),
            "comments" => connection(
                ctx,
                g,
                p,
                "PullRequestReviewCommentConnection",
                &comment_ids,
                &comment_node,
            ),
            _ => Err(undefined(g, "PullRequestReviewThread")),
        },
    )
}

fn pull_node(ctx: &mut Ctx<'_>, repo_id: u64, number: u64, f: &Field, path: &[String]) -> Resolved {
    let Some(pull) = ctx.st.repos[&repo_id].pulls.get(&number) else {
        return Err(gql_err(
            "NOT_FOUND",
            format!("Could not resolve to a PullRequest with the number of {number}."),
        ));
    };
    let (id, head, title, state) = (
        pull.id,
        pull.pull.head_sha.clone(),
        pull.pull.title.clone(),
        pull.state.to_uppercase(),
    );
    object(
        ctx,
        path,
        &f.selection,
        "PullRequest",
        |ctx, g, p| match g.name.as_str() {
            "id" => scalar(json!(super::http::node_id("PR_", id)), g),
            "number" => scalar(json!(number), g),
            "databaseId" => scalar(json!(id), g),
            "title" => scalar(json!(title), g),
            "headRefOid" => scalar(json!(head), g),
            "state" => scalar(json!(state), g),
            "reviewThreads" => {
                let ids: Vec<String> = ctx
                    .st
                    .threads
                    .iter()
                    .filter(|(_, t)| t.repo_id == repo_id && t.number == number)
                    .map(|(id, t)| (t.comment_ids.first().copied().unwrap_or(0), id.clone()))
                    .collect::<BTreeMap<u64, String>>()
                    .into_values()
                    .collect();
                let idx: Vec<usize> = (0..ids.len()).collect();
                connection(
                    ctx,
                    g,
                    p,
                    "PullRequestReviewThreadConnection",
                    &idx,
                    &|ctx, i, h, p| thread_node(ctx, &ids[i], h, p),
                )
            }
            _ => Err(undefined(g, "PullRequest")),
        },
    )
}

fn visible_repo(ctx: &Ctx<'_>, owner: &str, name: &str) -> Option<u64> {
    let repo = ctx.st.repo_by_name(owner, name)?;
    let t = &ctx.token;
    (repo.installation_id == t.installation_id
        && t.repository_ids
            .as_ref()
            .is_none_or(|ids| ids.contains(&repo.id)))
    .then_some(repo.id)
}

fn can(ctx: &Ctx<'_>, perm: &str, write: bool) -> bool {
    ctx.token.permissions.get(perm).is_some_and(|l| {
        if write {
            l == "write" || l == "admin"
        } else {
            !l.is_empty()
        }
    })
}

fn query_root(ctx: &mut Ctx<'_>, f: &Field, path: &[String]) -> Resolved {
    match f.name.as_str() {
        "repository" => {
            let owner = arg(ctx, f, "owner").as_str().unwrap_or("").to_string();
            let name = arg(ctx, f, "name").as_str().unwrap_or("").to_string();
            let Some(repo_id) = visible_repo(ctx, &owner, &name) else {
                return Err(gql_err(
                    "NOT_FOUND",
                    format!("Could not resolve to a Repository with the name '{owner}/{name}'."),
                ));
            };
            let repo = &ctx.st.repos[&repo_id];
            let (full, rname, rid) = (repo.full_name(), repo.name.clone(), repo.id);
            object(ctx, path, &f.selection, "Repository", |ctx, g, p| {
                match g.name.as_str() {
                    "id" => scalar(json!(super::http::node_id("R_", rid)), g),
                    "databaseId" => scalar(json!(rid), g),
                    "name" => scalar(json!(rname), g),
                    "nameWithOwner" => scalar(json!(full), g),
                    "pullRequest" => {
                        if !can(ctx, "pull_requests", false) {
                            return Err(gql_err(
                                "FORBIDDEN",
                                "Resource not accessible by integration",
                            ));
                        }
                        let number = arg(ctx, g, "number").as_u64().unwrap_or(0);
                        pull_node(ctx, repo_id, number, g, p)
                    }
                    _ => Err(undefined(g, "Repository")),
                }
            })
        }
        "node" => {
            let id = arg(ctx, f, "id").as_str().unwrap_or("").to_string();
            let visible = ctx.st.threads.get(&id).and_then(|t| {
                let repo = ctx.st.repos.get(&t.repo_id)?;
                visible_repo(ctx, &repo.owner, &repo.name)
            });
            if visible.is_none() {
                return Err(gql_err(
                    "NOT_FOUND",
                    format!("Could not resolve to a node with the global id of '{id}'"),
                ));
            }
            thread_node(ctx, &id, f, path)
        }
        "rateLimit" => {
            let reset = super::http::iso(
                std::time::SystemTime::now() + std::time::Duration::from_secs(3600),
            );
            object(ctx, path, &f.selection, "RateLimit", |_, g, _| {
                match g.name.as_str() {
                    "limit" => scalar(json!(5000), g),
                    "remaining" => scalar(json!(4999), g),
                    "used" => scalar(json!(1), g),
                    "cost" => scalar(json!(1), g),
                    "resetAt" => scalar(json!(reset), g),
                    _ => Err(undefined(g, "RateLimit")),
                }
            })
        }
        _ => Err(undefined(f, "Query")),
    }
}

fn mutation_root(ctx: &mut Ctx<'_>, f: &Field, path: &[String]) -> Resolved {
    let resolve = match f.name.as_str() {
        "resolveReviewThread" => true,
        "unresolveReviewThread" => false,
        _ => return Err(undefined(f, "Mutation")),
    };
    let input = arg(ctx, f, "input");
    let id = input["threadId"].as_str().unwrap_or("").to_string();
    let repo_visible = ctx.st.threads.get(&id).and_then(|t| {
        let repo = ctx.st.repos.get(&t.repo_id)?;
        visible_repo(ctx, &repo.owner, &repo.name)
    });
    if repo_visible.is_none() {
        return Err(gql_err(
            "NOT_FOUND",
            format!("Could not resolve to a node with the global id of '{id}'"),
        ));
    }
    if !can(ctx, "pull_requests", true) {
        return Err(gql_err(
            "FORBIDDEN",
            "Resource not accessible by integration",
        ));
    }
    ctx.st.threads.get_mut(&id).expect("thread").resolved = resolve;
    let client_mutation_id = input
        .get("clientMutationId")
        .cloned()
        .unwrap_or(Value::Null);
    let ty = if resolve {
        "ResolveReviewThreadPayload"
    } else {
        "UnresolveReviewThreadPayload"
    };
    object(ctx, path, &f.selection, ty, |ctx, g, p| {
        match g.name.as_str() {
            "clientMutationId" => scalar(client_mutation_id.clone(), g),
            "thread" => thread_node(ctx, &id, g, p),
            _ => Err(undefined(g, ty)),
        }
    })
}

/// POST /graphql.
pub(super) fn handle(st: &mut State, req: &Req) -> Result<Reply, ApiError> {
    let token = match &req.cred {
        Cred::Token(_, t) => t.clone(),
        Cred::None => return Err(err(401, "This endpoint requires you to be authenticated.")),
        Cred::Jwt(_) => return Err(err(403, "Resource not accessible by integration")),
        Cred::Invalid(status, message) => return Err(err(*status, message.clone())),
    };
    if st
        .installations
        .get(&token.installation_id)
        .is_some_and(|i| i.suspended_at.is_some())
    {
        return Err(err(403, "This installation has been suspended"));
    }
    let body = req.body.clone().unwrap_or(Value::Null);
    let reply = |v: Value| Ok(Reply::new(200, v));
    let Some(text) = body.get("query").and_then(Value::as_str) else {
        return reply(
            json!({"errors": [{"message": "A query attribute must be specified and must be a string."}]}),
        );
    };
    let op = match (Parser {
        s: text.as_bytes(),
        i: 0,
    })
    .operation()
    {
        Ok(op) => op,
        Err(message) => return reply(json!({"errors": [{"message": message}]})),
    };
    let mut vars: Map<String, Value> = op.defaults.into_iter().collect();
    if let Some(given) = body.get("variables").and_then(Value::as_object) {
        vars.extend(given.clone());
    }
    let mut ctx = Ctx {
        st,
        vars,
        errors: Vec::new(),
        token,
    };
    let result = if op.mutation {
        object(&mut ctx, &[], &op.selection, "Mutation", mutation_root)
    } else {
        object(&mut ctx, &[], &op.selection, "Query", query_root)
    };
    match result {
        Ok(data) => {
            let mut out = json!({"data": data});
            if !ctx.errors.is_empty() {
                out["errors"] = Value::Array(ctx.errors);
            }
            reply(out)
        }
        Err(e) => reply(json!({"errors": [{"message": e.message}]})),
    }
}

#[cfg(test)]
mod parser_tests {
    use super::*;

    fn parse(q: &str) -> Result<Operation, String> {
        Parser {
            s: q.as_bytes(),
            i: 0,
        }
        .operation()
    }

    #[test]
    fn operations_variables_aliases_and_literals() {
        let op = parse(
            "# a comment\nquery($owner: String!, $ids: [ID!]! = [\"x\"], $n: Int = 5) {\n  r: repository(owner: $owner, name: \"a \\\"b\\\"\") { __typename id }\n}",
        )
        .unwrap();
        assert!(!op.mutation);
        assert_eq!(op.defaults.get("n"), Some(&json!(5)));
        assert_eq!(op.defaults.get("ids"), Some(&json!(["x"])));
        assert!(parse("query($a: Int = $b) { x }").is_err());
        let f = &op.selection[0];
        assert_eq!((f.key(), f.name.as_str()), ("r", "repository"));
        assert!(matches!(&f.args[0].1, Val::Var(v) if v == "owner"));
        assert!(matches!(&f.args[1].1, Val::Lit(Value::String(s)) if s == "a \"b\""));
        assert_eq!(f.selection.len(), 2);

        let op = parse("mutation M($t: ID!) { resolveReviewThread(input: {threadId: $t, clientMutationId: \"c\"}) { thread { id } } }").unwrap();
        assert!(op.mutation);
        assert!(matches!(&op.selection[0].args[0].1, Val::Obj(fields) if fields.len() == 2));

        assert!(
            parse("{ repository(owner: \"a\") { ...F } }").is_err(),
            "fragments"
        );
        assert!(parse("subscription { x }").is_err());
        assert!(parse("{ a } { b }").is_err(), "one operation");
        assert!(parse("{ a(").is_err());
    }
}
