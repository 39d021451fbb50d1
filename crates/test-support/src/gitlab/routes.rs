//! GitLab's REST endpoints as `@gitbeaker/core` calls them: the (method, path template) pairs
//! read from the installed package's `dist/index.js` (npm `@gitbeaker/core` 43.8.0, pinned in
//! `tests/gitlab/package-lock.json`, installed by `make gitlab-fixtures`), loaded once per
//! process. GitLab publishes no OpenAPI description of its v4 API; gitbeaker's resources are
//! the most complete machine-readable list of its endpoints.
//!
//! The file is plain JavaScript (esbuild output). Each resource is a class whose methods call
//! `RequestHelper.get()(this, <endpoint>, options)` (also `post`, `put`, `patch`, `del`); the
//! endpoint is a tagged template (`` endpoint`projects/${projectId}/hooks` ``), a plain template
//! or string, a local variable assigned in branches (`let url12; if (a) url12 = …; else …`,
//! `url12 += "/all"`, arrays built with `push` and `join("/")`), or a call of a helper function
//! (`url4(resourceId, this.resourceType2, resourceIId)`). Shared resources
//! (`ResourceDiscussions`, `ResourceNotes`, `ResourceHooks`, …) take their first segments from
//! the constructor (`super({ prefixUrl: resourceType })`, `this.resource2Type = resource2Type`),
//! bound by each concrete subclass (`super("projects", "merge_requests", options)`).
//!
//! A small symbolic evaluator reads all of that: a tokenizer for the JavaScript the file uses, and
//! an evaluation of expressions to the set of strings they may take, where anything unknown (a
//! method parameter, an option) is a wildcard. Every `${…}` that is not a known string is one
//! path-segment wildcard (gitbeaker's `endpoint` tag percent-encodes it, so it never spans a
//! `/`). Branches are all taken: a variable assigned in an `if` and in its `else` has both
//! values. Every `RequestHelper` call site of the file must yield at least one endpoint, or
//! [`RouteTable::unresolved`] names it.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::LazyLock;

/// The pinned `@gitbeaker/core` version (also in the Makefile and tests/gitlab/package.json).
pub const GITBEAKER_CORE_VERSION: &str = "43.8.0";

/// Where the package's CommonJS bundle lives, relative to this crate.
pub fn gitbeaker_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/gitlab/node_modules/@gitbeaker/core/dist/index.js")
}

/// Stands for "any value" inside evaluated strings.
const WILD: char = '\u{1}';

/// One segment of an endpoint template.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Segment {
    /// A fixed segment (`merge_requests`).
    Literal(String),
    /// A whole-segment parameter (`${projectId}`).
    Param,
    /// Fixed text around parameters, e.g. `binary-${architecture}` is `["binary-", ""]`:
    /// the pieces between which parameters stand.
    Pattern(Vec<String>),
}

impl Segment {
    /// Whether this segment accepts `raw`, one path segment as sent (still percent-encoded).
    fn accepts(&self, raw: &str) -> bool {
        match self {
            Segment::Param => !raw.is_empty(),
            Segment::Literal(l) => l == raw || *l == percent_decode(raw),
            Segment::Pattern(pieces) => glob(pieces, raw) || glob(pieces, &percent_decode(raw)),
        }
    }

    fn literal_weight(&self) -> usize {
        match self {
            Segment::Literal(_) => 2,
            Segment::Pattern(_) => 1,
            Segment::Param => 0,
        }
    }
}

/// `pieces` joined by wildcards (each matching any run of characters) matches all of `s`.
fn glob(pieces: &[String], s: &str) -> bool {
    let Some((first, rest)) = pieces.split_first() else {
        return s.is_empty();
    };
    let Some(mut tail) = s.strip_prefix(first.as_str()) else {
        return false;
    };
    let Some((last, middle)) = rest.split_last() else {
        return tail.is_empty();
    };
    for piece in middle {
        match tail.find(piece.as_str()) {
            Some(at) => tail = &tail[at + piece.len()..],
            None => return false,
        }
    }
    tail.ends_with(last.as_str())
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// One endpoint: an HTTP method and a path template relative to `/api/v4/`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Endpoint {
    /// `GET`, `POST`, `PUT`, `PATCH` or `DELETE`.
    pub method: String,
    pub segments: Vec<Segment>,
}

impl Endpoint {
    /// The template with `*` for each parameter, e.g. `projects/*/merge_requests/*/notes`.
    pub fn template(&self) -> String {
        self.segments
            .iter()
            .map(|s| match s {
                Segment::Literal(l) => l.clone(),
                Segment::Param => "*".to_string(),
                Segment::Pattern(pieces) => pieces.join("*"),
            })
            .collect::<Vec<_>>()
            .join("/")
    }

    /// Whether this endpoint serves `method` on `segments` (raw path segments after `/api/v4/`).
    pub fn matches(&self, method: &str, segments: &[&str]) -> bool {
        self.method.eq_ignore_ascii_case(method)
            && self.segments.len() == segments.len()
            && self
                .segments
                .iter()
                .zip(segments)
                .all(|(s, raw)| s.accepts(raw))
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.method, self.template())
    }
}

/// The endpoints of `@gitbeaker/core`.
#[derive(Debug, Clone)]
pub struct RouteTable {
    endpoints: BTreeSet<Endpoint>,
    /// `RequestHelper` call sites in the file.
    pub call_sites: usize,
    /// Call sites no endpoint could be read from, as `line N: <method>`; empty when the
    /// extractor understood the whole file.
    pub unresolved: Vec<String>,
    /// Concrete resource classes read (gitbeaker's `resources` object).
    pub resources: usize,
}

static TABLE: LazyLock<Result<RouteTable, String>> = LazyLock::new(|| {
    let path = gitbeaker_path();
    let src = std::fs::read_to_string(&path).map_err(|e| {
        format!(
            "@gitbeaker/core is missing at {} ({e}): run `make gitlab-fixtures`",
            path.display()
        )
    })?;
    RouteTable::from_source(&src).map_err(|e| format!("{}: {e}", path.display()))
});

impl RouteTable {
    /// The table read from the installed package (once per process).
    pub fn load() -> Result<&'static RouteTable, String> {
        TABLE.as_ref().map_err(Clone::clone)
    }

    /// Reads a gitbeaker `dist/index.js`.
    pub fn from_source(src: &str) -> Result<RouteTable, String> {
        let tokens = Lexer::new(src).lex(false)?;
        let program = Program::parse(&tokens)?;
        if program.resources.is_empty() {
            return Err("no `var resources = { … }` object found".into());
        }
        let mut sites = Vec::new();
        find_call_sites(&tokens, &mut sites);
        let mut endpoints = BTreeSet::new();
        let mut resolved: HashSet<usize> = HashSet::new();
        for name in &program.resources {
            let Some(class) = program.classes.get(name) else {
                continue;
            };
            let mut fields = Env::new();
            let prefix = program.construct(class, &[], &mut fields, 0);
            let eval = Eval {
                program: &program,
                fields: &fields,
                depth: 0,
            };
            for (method_name, func) in program.methods_of(class) {
                if method_name == "constructor" {
                    continue;
                }
                let mut env = Env::new();
                let mut returns = None;
                eval.run(
                    &func.body,
                    &mut env,
                    &mut |at, method, value| {
                        let method = match method {
                            "get" => "GET",
                            "post" => "POST",
                            "put" => "PUT",
                            "patch" => "PATCH",
                            "del" => "DELETE",
                            _ => return,
                        };
                        for p in prefix.strs() {
                            for path in value.strs() {
                                // Every GitLab endpoint starts with a fixed segment; one
                                // that does not was misread.
                                if let Some(e) = endpoint(method, &p, &path)
                                    .filter(|e| matches!(e.segments[0], Segment::Literal(_)))
                                {
                                    endpoints.insert(e);
                                    resolved.insert(at);
                                }
                            }
                        }
                    },
                    &mut returns,
                );
            }
        }
        let unresolved = sites
            .iter()
            .filter(|(at, _)| !resolved.contains(at))
            .map(|(at, method)| format!("line {}: {method}", line_of(src, *at)))
            .collect();
        Ok(RouteTable {
            endpoints,
            call_sites: sites.len(),
            unresolved,
            resources: program.resources.len(),
        })
    }

    /// How many distinct (method, template) pairs.
    pub fn len(&self) -> usize {
        self.endpoints.len()
    }

    pub fn is_empty(&self) -> bool {
        self.endpoints.is_empty()
    }

    pub fn endpoints(&self) -> impl Iterator<Item = &Endpoint> {
        self.endpoints.iter()
    }

    /// Whether the table has exactly this template (`*` for parameters), e.g.
    /// `contains("GET", "projects/*/merge_requests/*/discussions")`.
    pub fn contains(&self, method: &str, template: &str) -> bool {
        self.endpoints
            .iter()
            .any(|e| e.method.eq_ignore_ascii_case(method) && e.template() == template)
    }

    /// The endpoint serving `method` on `path` (relative to `/api/v4/`, percent-encoded as
    /// sent, query excluded): the most literal one when several match.
    pub fn find(&self, method: &str, path: &str) -> Option<&Endpoint> {
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        self.endpoints
            .iter()
            .filter(|e| e.matches(method, &segments))
            .max_by_key(|e| {
                e.segments
                    .iter()
                    .map(Segment::literal_weight)
                    .sum::<usize>()
            })
    }
}

fn line_of(src: &str, at: usize) -> usize {
    src.char_indices()
        .take_while(|(i, _)| *i < at)
        .filter(|(_, c)| *c == '\n')
        .count()
        + 1
}

/// `prefix/path` as an endpoint: the query (if any) dropped, empty segments dropped.
fn endpoint(method: &str, prefix: &str, path: &str) -> Option<Endpoint> {
    let full = format!("{prefix}/{path}");
    let full = full.split('?').next().unwrap_or_default();
    let segments: Vec<Segment> = full
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            if s.chars().all(|c| c == WILD) {
                Segment::Param
            } else if s.contains(WILD) {
                let mut pieces: Vec<String> = Vec::new();
                let mut current = String::new();
                let mut last_wild = false;
                for c in s.chars() {
                    if c == WILD {
                        if !last_wild {
                            pieces.push(std::mem::take(&mut current));
                        }
                        last_wild = true;
                    } else {
                        current.push(c);
                        last_wild = false;
                    }
                }
                pieces.push(current);
                Segment::Pattern(pieces)
            } else {
                Segment::Literal(s.to_string())
            }
        })
        .collect();
    (!segments.is_empty()).then(|| Endpoint {
        method: method.to_string(),
        segments,
    })
}

// ---------------------------------------------------------------------------------------------
// Tokens

#[derive(Debug, Clone, PartialEq)]
enum Kind {
    Ident(String),
    Str(String),
    Template(Vec<Part>),
    Num,
    Regex,
    Punct(&'static str),
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Lit(String),
    Expr(Vec<Tok>),
}

#[derive(Debug, Clone, PartialEq)]
struct Tok {
    kind: Kind,
    /// Byte offset in the source.
    at: usize,
}

impl Tok {
    fn is(&self, p: &str) -> bool {
        matches!(self.kind, Kind::Punct(q) if q == p)
    }

    fn ident(&self) -> Option<&str> {
        match &self.kind {
            Kind::Ident(s) => Some(s),
            _ => None,
        }
    }

    fn is_ident(&self, name: &str) -> bool {
        self.ident() == Some(name)
    }
}

/// Longest first.
const PUNCTS: &[&str] = &[
    ">>>=", "...", "===", "!==", "**=", "<<=", ">>=", ">>>", "??=", "||=", "&&=", "=>", "==", "!=",
    "<=", ">=", "&&", "||", "??", "?.", "++", "--", "+=", "-=", "*=", "/=", "%=", "&=", "|=", "^=",
    "**", "<<", ">>", "{", "}", "(", ")", "[", "]", ";", ",", "<", ">", "+", "-", "*", "/", "%",
    "&", "|", "^", "!", "~", "?", ":", "=", ".", "@", "#",
];

/// Words after which a `/` starts a regular expression rather than a division.
const REGEX_AFTER: &[&str] = &[
    "return",
    "typeof",
    "instanceof",
    "in",
    "of",
    "new",
    "delete",
    "void",
    "throw",
    "case",
    "do",
    "else",
    "yield",
    "await",
];

struct Lexer<'a> {
    src: &'a str,
    chars: Vec<(usize, char)>,
    i: usize,
}

impl<'a> Lexer<'a> {
    fn new(src: &'a str) -> Lexer<'a> {
        Lexer {
            src,
            chars: src.char_indices().collect(),
            i: 0,
        }
    }

    fn peek(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.i + ahead).map(|(_, c)| *c)
    }

    fn offset(&self) -> usize {
        self.chars
            .get(self.i)
            .map(|(o, _)| *o)
            .unwrap_or(self.src.len())
    }

    fn error(&self, what: &str) -> String {
        format!("{what} at line {}", line_of(self.src, self.offset()))
    }

    fn skip_space(&mut self) {
        loop {
            match (self.peek(0), self.peek(1)) {
                (Some(c), _) if c.is_whitespace() => self.i += 1,
                (Some('/'), Some('/')) => {
                    while self.peek(0).is_some_and(|c| c != '\n') {
                        self.i += 1;
                    }
                }
                (Some('/'), Some('*')) => {
                    self.i += 2;
                    while self.peek(0).is_some()
                        && !(self.peek(0) == Some('*') && self.peek(1) == Some('/'))
                    {
                        self.i += 1;
                    }
                    self.i += 2;
                }
                _ => return,
            }
        }
    }

    /// Tokens up to the end, or (`in_template`) up to the `}` closing a `${`.
    fn lex(&mut self, in_template: bool) -> Result<Vec<Tok>, String> {
        let mut out: Vec<Tok> = Vec::new();
        let mut depth = 0usize;
        loop {
            self.skip_space();
            let at = self.offset();
            let Some(c) = self.peek(0) else {
                if in_template {
                    return Err(self.error("unterminated template expression"));
                }
                return Ok(out);
            };
            let kind = if c == '}' && in_template && depth == 0 {
                self.i += 1;
                return Ok(out);
            } else if c.is_alphabetic() || c == '_' || c == '$' {
                let mut s = String::new();
                while let Some(c) = self
                    .peek(0)
                    .filter(|c| c.is_alphanumeric() || *c == '_' || *c == '$')
                {
                    s.push(c);
                    self.i += 1;
                }
                Kind::Ident(s)
            } else if c.is_ascii_digit() {
                while self
                    .peek(0)
                    .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
                {
                    self.i += 1;
                }
                Kind::Num
            } else if c == '"' || c == '\'' {
                Kind::Str(self.string(c)?)
            } else if c == '`' {
                Kind::Template(self.template()?)
            } else if c == '/' && regex_allowed(out.last()) {
                self.regex()?;
                Kind::Regex
            } else {
                let rest = &self.src[at..];
                let p = PUNCTS
                    .iter()
                    .find(|p| rest.starts_with(**p))
                    .ok_or_else(|| self.error(&format!("unexpected character {c:?}")))?;
                self.i += p.chars().count();
                match *p {
                    "{" => depth += 1,
                    "}" => depth = depth.saturating_sub(1),
                    _ => {}
                }
                Kind::Punct(p)
            };
            out.push(Tok { kind, at });
        }
    }

    fn string(&mut self, quote: char) -> Result<String, String> {
        self.i += 1;
        let mut s = String::new();
        loop {
            match self.peek(0) {
                None | Some('\n') => return Err(self.error("unterminated string")),
                Some('\\') => {
                    if let Some(c) = self.peek(1) {
                        s.push(c);
                    }
                    self.i += 2;
                }
                Some(c) if c == quote => {
                    self.i += 1;
                    return Ok(s);
                }
                Some(c) => {
                    s.push(c);
                    self.i += 1;
                }
            }
        }
    }

    fn template(&mut self) -> Result<Vec<Part>, String> {
        self.i += 1;
        let mut parts = Vec::new();
        let mut lit = String::new();
        loop {
            match self.peek(0) {
                None => return Err(self.error("unterminated template")),
                Some('\\') => {
                    if let Some(c) = self.peek(1) {
                        lit.push(c);
                    }
                    self.i += 2;
                }
                Some('`') => {
                    self.i += 1;
                    if !lit.is_empty() {
                        parts.push(Part::Lit(lit));
                    }
                    return Ok(parts);
                }
                Some('$') if self.peek(1) == Some('{') => {
                    self.i += 2;
                    if !lit.is_empty() {
                        parts.push(Part::Lit(std::mem::take(&mut lit)));
                    }
                    parts.push(Part::Expr(self.lex(true)?));
                }
                Some(c) => {
                    lit.push(c);
                    self.i += 1;
                }
            }
        }
    }

    fn regex(&mut self) -> Result<(), String> {
        self.i += 1;
        let mut class = false;
        loop {
            match self.peek(0) {
                None | Some('\n') => return Err(self.error("unterminated regular expression")),
                Some('\\') => self.i += 2,
                Some('[') => {
                    class = true;
                    self.i += 1;
                }
                Some(']') => {
                    class = false;
                    self.i += 1;
                }
                Some('/') if !class => {
                    self.i += 1;
                    while self.peek(0).is_some_and(|c| c.is_ascii_alphabetic()) {
                        self.i += 1;
                    }
                    return Ok(());
                }
                Some(_) => self.i += 1,
            }
        }
    }
}

fn regex_allowed(prev: Option<&Tok>) -> bool {
    match prev.map(|t| &t.kind) {
        None => true,
        Some(Kind::Punct(p)) => !matches!(*p, ")" | "]" | "}"),
        Some(Kind::Ident(w)) => REGEX_AFTER.contains(&w.as_str()),
        Some(_) => false,
    }
}

/// Every `RequestHelper.<m>()(` in `tokens` (templates included): (offset, method).
fn find_call_sites(tokens: &[Tok], out: &mut Vec<(usize, String)>) {
    for (i, t) in tokens.iter().enumerate() {
        if let Some(method) = request_helper_call(tokens, i) {
            out.push((t.at, method.to_string()));
        }
        if let Kind::Template(parts) = &t.kind {
            for part in parts {
                if let Part::Expr(inner) = part {
                    find_call_sites(inner, out);
                }
            }
        }
    }
}

/// `RequestHelper . m ( ) (` at `i`: the method.
fn request_helper_call(t: &[Tok], i: usize) -> Option<&str> {
    if !t[i].is_ident("RequestHelper") {
        return None;
    }
    let method = t.get(i + 2)?.ident()?;
    (t.get(i + 1)?.is(".")
        && t.get(i + 3)?.is("(")
        && t.get(i + 4)?.is(")")
        && t.get(i + 5)?.is("("))
    .then_some(method)
}

// ---------------------------------------------------------------------------------------------
// Structure: helper functions, classes, the resources list

fn is_open(t: &Tok) -> bool {
    t.is("(") || t.is("[") || t.is("{")
}

fn is_close(t: &Tok) -> bool {
    t.is(")") || t.is("]") || t.is("}")
}

/// The index of the bracket closing the one at `open`.
fn matching(t: &[Tok], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (j, tok) in t.iter().enumerate().skip(open) {
        if is_open(tok) {
            depth += 1;
        } else if is_close(tok) {
            depth = depth.checked_sub(1)?;
            if depth == 0 {
                return Some(j);
            }
        }
    }
    None
}

/// `t` split at `sep` outside brackets.
fn split_top<'t>(t: &'t [Tok], seps: &[&str]) -> Vec<&'t [Tok]> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (j, tok) in t.iter().enumerate() {
        if is_open(tok) {
            depth += 1;
        } else if is_close(tok) {
            depth = depth.saturating_sub(1);
        } else if depth == 0 && seps.iter().any(|s| tok.is(s)) {
            parts.push(&t[start..j]);
            start = j + 1;
        }
    }
    parts.push(&t[start..]);
    parts
}

/// Where the expression starting at `start` ends: a `;` or `,` outside brackets, or a bracket
/// closing one opened before `start`.
fn expr_end(t: &[Tok], start: usize) -> usize {
    let mut depth = 0usize;
    for (j, tok) in t.iter().enumerate().skip(start) {
        if is_open(tok) {
            depth += 1;
        } else if is_close(tok) {
            if depth == 0 {
                return j;
            }
            depth -= 1;
        } else if depth == 0 && (tok.is(";") || tok.is(",")) {
            return j;
        }
    }
    t.len()
}

#[derive(Debug)]
enum Param {
    /// A plain parameter (`projectId`, `options = {}`, `...args`).
    Name(String),
    /// A destructuring pattern (`{ projectId, ...options } = {}`): its names stay unknown.
    Pattern,
}

#[derive(Debug)]
struct Func {
    params: Vec<Param>,
    body: Vec<Tok>,
}

fn parse_params(t: &[Tok]) -> Vec<Param> {
    split_top(t, &[","])
        .into_iter()
        .filter(|p| !p.is_empty())
        .map(|p| {
            let p = if p[0].is("...") { &p[1..] } else { p };
            match p.first().and_then(Tok::ident) {
                Some(name) => Param::Name(name.to_string()),
                None => Param::Pattern,
            }
        })
        .collect()
}

#[derive(Debug)]
struct Class {
    /// The parent class when it is one of the file's (not `requesterUtils.BaseResource`).
    parent: Option<String>,
    methods: Vec<(String, Func)>,
}

#[derive(Debug, Default)]
struct Program {
    funcs: HashMap<String, Func>,
    classes: HashMap<String, Class>,
    resources: Vec<String>,
}

impl Program {
    fn parse(t: &[Tok]) -> Result<Program, String> {
        let mut program = Program::default();
        let mut i = 0;
        while i < t.len() {
            // function name(params) { body }
            if t[i].is_ident("function") {
                if let (Some(name), Some(true)) = (
                    t.get(i + 1).and_then(Tok::ident),
                    t.get(i + 2).map(|x| x.is("(")),
                ) {
                    let close = matching(t, i + 2).ok_or("unbalanced function parameters")?;
                    if t.get(close + 1).is_some_and(|x| x.is("{")) {
                        let end = matching(t, close + 1).ok_or("unbalanced function body")?;
                        program.funcs.insert(
                            name.to_string(),
                            Func {
                                params: parse_params(&t[i + 3..close]),
                                body: t[close + 2..end].to_vec(),
                            },
                        );
                        i = end + 1;
                        continue;
                    }
                }
            }
            // var Name = class [extends Parent] { … }
            if matches!(t[i].ident(), Some("var" | "let" | "const"))
                && t.get(i + 2).is_some_and(|x| x.is("="))
                && t.get(i + 3).is_some_and(|x| x.is_ident("class"))
            {
                let name = t
                    .get(i + 1)
                    .and_then(Tok::ident)
                    .ok_or("class without a name")?;
                let mut j = i + 4;
                let mut parent = None;
                if t.get(j).is_some_and(|x| x.is_ident("extends")) {
                    let start = j + 1;
                    while j < t.len() && !t[j].is("{") {
                        j += 1;
                    }
                    if j == start + 1 {
                        parent = t[start].ident().map(str::to_string);
                    }
                }
                let end = matching(t, j).ok_or("unbalanced class body")?;
                let methods = parse_class_body(&t[j + 1..end])?;
                program
                    .classes
                    .insert(name.to_string(), Class { parent, methods });
                i = end + 1;
                continue;
            }
            // var name = (params) => expression;  var name = (params) => { body };
            if matches!(t[i].ident(), Some("var" | "let" | "const"))
                && t.get(i + 2).is_some_and(|x| x.is("="))
                && t.get(i + 3).is_some_and(|x| x.is("("))
            {
                if let (Some(name), Some(close)) =
                    (t.get(i + 1).and_then(Tok::ident), matching(t, i + 3))
                {
                    if t.get(close + 1).is_some_and(|x| x.is("=>")) {
                        let params = parse_params(&t[i + 4..close]);
                        let (body, end) = if t.get(close + 2).is_some_and(|x| x.is("{")) {
                            let end = matching(t, close + 2).ok_or("unbalanced arrow body")?;
                            (t[close + 3..end].to_vec(), end + 1)
                        } else {
                            let end = expr_end(t, close + 2);
                            let mut body = vec![Tok {
                                kind: Kind::Ident("return".into()),
                                at: t[close + 1].at,
                            }];
                            body.extend_from_slice(&t[close + 2..end]);
                            (body, end)
                        };
                        program
                            .funcs
                            .insert(name.to_string(), Func { params, body });
                        i = end;
                        continue;
                    }
                }
            }
            // var resources = { A, B, … }
            if t[i].is_ident("var")
                && t.get(i + 1).is_some_and(|x| x.is_ident("resources"))
                && t.get(i + 2).is_some_and(|x| x.is("="))
                && t.get(i + 3).is_some_and(|x| x.is("{"))
            {
                let end = matching(t, i + 3).ok_or("unbalanced resources object")?;
                program.resources = split_top(&t[i + 4..end], &[","])
                    .into_iter()
                    .filter_map(|entry| match entry {
                        [only] => only.ident().map(str::to_string),
                        _ => None,
                    })
                    .collect();
                i = end + 1;
                continue;
            }
            i += 1;
        }
        Ok(program)
    }

    /// Own methods, then inherited ones not overridden.
    fn methods_of<'p>(&'p self, class: &'p Class) -> Vec<(&'p str, &'p Func)> {
        let mut out: Vec<(&str, &Func)> = Vec::new();
        let mut current = Some(class);
        let mut hops = 0;
        while let Some(c) = current {
            for (name, func) in &c.methods {
                if !out.iter().any(|(n, _)| n == name) {
                    out.push((name, func));
                }
            }
            current = c.parent.as_ref().and_then(|p| self.classes.get(p));
            hops += 1;
            if hops > 16 {
                break;
            }
        }
        out
    }

    /// Runs `class`'s constructor on `args`: the resource's `prefixUrl`, and the `this.x = …`
    /// fields set on the way.
    fn construct(&self, class: &Class, args: &[Val], fields: &mut Env, depth: usize) -> Val {
        let empty = || Val::S(BTreeSet::from([String::new()]));
        if depth > 16 {
            return empty();
        }
        let Some(ctor) = class
            .methods
            .iter()
            .find(|(n, _)| n == "constructor")
            .map(|(_, f)| f)
        else {
            // The implicit constructor passes its arguments on.
            return match class.parent.as_ref().and_then(|p| self.classes.get(p)) {
                Some(parent) => self.construct(parent, args, fields, depth + 1),
                None => empty(),
            };
        };
        let mut env = bind(&ctor.params, args.to_vec());
        let mut prefix = empty();
        let t = &ctor.body;
        let mut i = 0;
        while i < t.len() {
            if t[i].is_ident("super") && t.get(i + 1).is_some_and(|x| x.is("(")) {
                let close = matching(t, i + 1).unwrap_or(t.len() - 1);
                let call_args = split_top(&t[i + 2..close], &[","]);
                let eval = Eval {
                    program: self,
                    fields,
                    depth,
                };
                match class.parent.as_ref().and_then(|p| self.classes.get(p)) {
                    Some(parent) => {
                        let values: Vec<Val> =
                            call_args.iter().map(|a| eval.expr(a, &env)).collect();
                        prefix = self.construct(parent, &values, fields, depth + 1);
                    }
                    None => {
                        // super({ prefixUrl: …, ...options }) on gitbeaker's BaseResource.
                        if let Some(obj) = call_args
                            .first()
                            .filter(|a| a.first().is_some_and(|x| x.is("{")))
                        {
                            for entry in split_top(&obj[1..obj.len().saturating_sub(1)], &[","]) {
                                if entry.first().is_some_and(|x| x.is_ident("prefixUrl"))
                                    && entry.get(1).is_some_and(|x| x.is(":"))
                                {
                                    prefix = eval.expr(&entry[2..], &env);
                                }
                            }
                        }
                    }
                }
                i = close + 1;
                continue;
            }
            if t[i].is_ident("this")
                && t.get(i + 1).is_some_and(|x| x.is("."))
                && t.get(i + 3).is_some_and(|x| x.is("="))
            {
                if let Some(field) = t.get(i + 2).and_then(Tok::ident) {
                    let end = expr_end(t, i + 4);
                    let value = Eval {
                        program: self,
                        fields,
                        depth,
                    }
                    .expr(&t[i + 4..end], &env);
                    fields.insert(field.to_string(), value.clone());
                    env.insert(format!("this.{field}"), value);
                    i = end;
                    continue;
                }
            }
            i += 1;
        }
        prefix
    }
}

fn parse_class_body(t: &[Tok]) -> Result<Vec<(String, Func)>, String> {
    let mut methods = Vec::new();
    let mut i = 0;
    while i < t.len() {
        let Some(name) = t[i].ident() else {
            i += 1;
            continue;
        };
        if matches!(name, "static" | "async" | "get" | "set")
            && t.get(i + 1).and_then(Tok::ident).is_some()
        {
            i += 1;
            continue;
        }
        match t.get(i + 1) {
            Some(x) if x.is("(") => {
                let close = matching(t, i + 1).ok_or("unbalanced method parameters")?;
                if !t.get(close + 1).is_some_and(|x| x.is("{")) {
                    i = close + 1;
                    continue;
                }
                let end = matching(t, close + 1).ok_or("unbalanced method body")?;
                methods.push((
                    name.to_string(),
                    Func {
                        params: parse_params(&t[i + 2..close]),
                        body: t[close + 2..end].to_vec(),
                    },
                ));
                i = end + 1;
            }
            // A field (`resource2Type;` or `x = …;`).
            Some(x) if x.is(";") || x.is("=") => i = expr_end(t, i + 1) + 1,
            _ => i += 1,
        }
    }
    Ok(methods)
}

// ---------------------------------------------------------------------------------------------
// Evaluation

/// The values an expression may take: strings (with [`WILD`] for unknown parts), or arrays of
/// strings.
#[derive(Debug, Clone, PartialEq)]
enum Val {
    S(BTreeSet<String>),
    A(BTreeSet<Vec<String>>),
}

/// Beyond this many alternatives, a value becomes unknown.
const MAX_ALTERNATIVES: usize = 256;

fn unknown() -> Val {
    Val::S(BTreeSet::from([WILD.to_string()]))
}

impl Val {
    fn strs(&self) -> BTreeSet<String> {
        match self {
            Val::S(s) => s.clone(),
            Val::A(a) => a.iter().map(|v| v.join(",")).collect(),
        }
    }

    fn union(self, other: Val) -> Val {
        match (self, other) {
            (Val::S(mut a), Val::S(b)) => {
                a.extend(b);
                capped(a)
            }
            (Val::A(mut a), Val::A(b)) => {
                a.extend(b);
                Val::A(a)
            }
            (a, b) => {
                let mut s = a.strs();
                s.extend(b.strs());
                capped(s)
            }
        }
    }
}

fn capped(s: BTreeSet<String>) -> Val {
    if s.len() > MAX_ALTERNATIVES {
        unknown()
    } else {
        Val::S(s)
    }
}

/// Every `a + b` for `a` in `left`, `b` in `right`.
fn concat(left: &BTreeSet<String>, right: &BTreeSet<String>) -> BTreeSet<String> {
    if left.len() * right.len() > MAX_ALTERNATIVES {
        return BTreeSet::from([WILD.to_string()]);
    }
    left.iter()
        .flat_map(|a| right.iter().map(move |b| format!("{a}{b}")))
        .collect()
}

type Env = HashMap<String, Val>;

fn bind(params: &[Param], args: Vec<Val>) -> Env {
    let mut env = Env::new();
    let mut args = args.into_iter();
    for p in params {
        let arg = args.next();
        if let (Param::Name(name), Some(value)) = (p, arg) {
            env.insert(name.clone(), value);
        }
    }
    env
}

struct Eval<'p> {
    program: &'p Program,
    /// The class's `this.x` fields.
    fields: &'p Env,
    depth: usize,
}

impl Eval<'_> {
    /// Walks a function body in order, following assignments to locals (every branch taken),
    /// calling `on_call(offset, method, endpoint value)` for each `RequestHelper` call and
    /// collecting `return` values.
    fn run(
        &self,
        t: &[Tok],
        env: &mut Env,
        on_call: &mut dyn FnMut(usize, &str, &Val),
        returns: &mut Option<Val>,
    ) {
        let mut i = 0;
        while i < t.len() {
            // if (…) a [else b]; loops: each branch on its own copy of the locals, merged
            // after (a branch not taken leaves them as they were).
            if matches!(t[i].ident(), Some("if" | "while" | "for" | "switch"))
                && t.get(i + 1).is_some_and(|x| x.is("("))
            {
                if let Some(close) = matching(t, i + 1) {
                    let then_end = statement_end(t, close + 1).min(t.len());
                    let mut taken = env.clone();
                    self.run(&t[close + 1..then_end], &mut taken, on_call, returns);
                    let mut other = env.clone();
                    let mut end = then_end;
                    if t[i].is_ident("if") && t.get(then_end).is_some_and(|x| x.is_ident("else")) {
                        end = statement_end(t, then_end + 1).min(t.len());
                        self.run(&t[then_end + 1..end], &mut other, on_call, returns);
                    }
                    *env = merge(taken, other);
                    i = end;
                    continue;
                }
            }
            let prev_dot = i > 0 && (t[i - 1].is(".") || t[i - 1].is("?."));
            // const x = …; let x; const [a, b] = …; const { a, ...b } = …;
            if matches!(t[i].ident(), Some("const" | "let" | "var")) {
                match t.get(i + 1) {
                    Some(x) if x.ident().is_some() => {
                        let name = x.ident().unwrap_or_default().to_string();
                        if t.get(i + 2).is_some_and(|x| x.is("=")) {
                            let end = expr_end(t, i + 3);
                            let value = self.expr(&t[i + 3..end], env);
                            env.insert(name, value);
                            i += 3;
                        } else {
                            env.insert(name, Val::S(BTreeSet::new()));
                            i += 2;
                        }
                        continue;
                    }
                    Some(x) if x.is("[") || x.is("{") => {
                        let close = matching(t, i + 1).unwrap_or(t.len() - 1);
                        for tok in &t[i + 2..close] {
                            if let Some(name) = tok.ident() {
                                env.remove(name);
                            }
                        }
                        i = close + 1;
                        continue;
                    }
                    _ => {}
                }
            }
            if let (Some(name), false) = (t[i].ident(), prev_dot) {
                // x = …
                if t.get(i + 1).is_some_and(|x| x.is("=")) && !is_keyword(name) {
                    let end = expr_end(t, i + 2);
                    let value = self.expr(&t[i + 2..end], env);
                    env.insert(name.to_string(), value);
                    i += 2;
                    continue;
                }
                // x += …  (maybe in a branch: both the old and the new value)
                if t.get(i + 1).is_some_and(|x| x.is("+=")) {
                    let end = expr_end(t, i + 2);
                    let add = self.expr(&t[i + 2..end], env).strs();
                    let old = env.get(name).cloned().unwrap_or_else(unknown).strs();
                    env.insert(name.to_string(), capped(concat(&old, &add)));
                    i += 2;
                    continue;
                }
                // x.push(…)  (maybe in a branch: with and without the element)
                if t.get(i + 1).is_some_and(|x| x.is("."))
                    && t.get(i + 2).is_some_and(|x| x.is_ident("push"))
                    && t.get(i + 3).is_some_and(|x| x.is("("))
                {
                    if let (Some(close), Some(Val::A(old))) = (matching(t, i + 3), env.get(name)) {
                        let items = self.expr(&t[i + 4..close], env).strs();
                        let mut all = BTreeSet::new();
                        for base in old {
                            for item in &items {
                                let mut grown = base.clone();
                                grown.push(item.clone());
                                all.insert(grown);
                            }
                        }
                        let value = if all.len() > MAX_ALTERNATIVES {
                            unknown()
                        } else {
                            Val::A(all)
                        };
                        env.insert(name.to_string(), value);
                        i = close + 1;
                        continue;
                    }
                }
            }
            if let Some(method) = request_helper_call(t, i) {
                if let Some(close) = matching(t, i + 5) {
                    let args = split_top(&t[i + 6..close], &[","]);
                    if let Some(endpoint) = args.get(1) {
                        let value = self.expr(endpoint, env);
                        on_call(t[i].at, method, &value);
                    }
                }
                i += 6;
                continue;
            }
            if t[i].is_ident("return") {
                let end = expr_end(t, i + 1);
                if end > i + 1 {
                    let value = self.expr(&t[i + 1..end], env);
                    *returns = Some(match returns.take() {
                        Some(old) => old.union(value),
                        None => value,
                    });
                }
            }
            i += 1;
        }
    }

    /// The values of expression `t`.
    fn expr(&self, t: &[Tok], env: &Env) -> Val {
        let Some(first) = t.first() else {
            return unknown();
        };
        if first.is_ident("await") {
            return self.expr(&t[1..], env);
        }
        if first.is("(") && matching(t, 0) == Some(t.len() - 1) {
            return self.expr(&t[1..t.len() - 1], env);
        }
        // a ? b : c (the condition is not evaluated: both)
        if let Some(q) = position_top(t, "?") {
            let mut nested = 0usize;
            let mut depth = 0usize;
            for j in q + 1..t.len() {
                let tok = &t[j];
                if is_open(tok) {
                    depth += 1;
                } else if is_close(tok) {
                    depth = depth.saturating_sub(1);
                } else if depth == 0 && tok.is("?") {
                    nested += 1;
                } else if depth == 0 && tok.is(":") {
                    if nested == 0 {
                        return self
                            .expr(&t[q + 1..j], env)
                            .union(self.expr(&t[j + 1..], env));
                    }
                    nested -= 1;
                }
            }
            return unknown();
        }
        let alternatives = split_top(t, &["||", "??"]);
        if alternatives.len() > 1 {
            return alternatives
                .into_iter()
                .map(|a| self.expr(a, env))
                .reduce(Val::union)
                .unwrap_or_else(unknown);
        }
        let terms = split_top(t, &["+"]);
        if terms.len() > 1 && terms.iter().all(|x| !x.is_empty()) {
            let mut acc = BTreeSet::from([String::new()]);
            for term in terms {
                acc = concat(&acc, &self.expr(term, env).strs());
            }
            return capped(acc);
        }
        self.postfix(t, env)
    }

    /// A primary expression followed by the few method calls endpoints are built with.
    fn postfix(&self, t: &[Tok], env: &Env) -> Val {
        let Some((mut value, mut k)) = self.primary(t, env) else {
            return unknown();
        };
        while k < t.len() {
            let call = t[k].is(".")
                && t.get(k + 2).is_some_and(|x| x.is("("))
                && t.get(k + 1).and_then(Tok::ident).is_some();
            if !call {
                return unknown();
            }
            let Some(close) = matching(t, k + 2) else {
                return unknown();
            };
            let args = &t[k + 3..close];
            value = match t[k + 1].ident().unwrap_or_default() {
                "join" => {
                    let sep = match args {
                        [Tok {
                            kind: Kind::Str(s), ..
                        }] => s.clone(),
                        _ => ",".to_string(),
                    };
                    match value {
                        Val::A(arrays) => capped(arrays.iter().map(|a| a.join(&sep)).collect()),
                        other => other,
                    }
                }
                // `.map(encodeURIComponent)` and friends keep the segments.
                "map" | "toString" | "trim" => value,
                // `x.substring(0, x.length - 1)`: the singular of a plural resource type.
                "substring" | "slice"
                    if args.iter().any(|a| a.is_ident("length"))
                        && args.iter().any(|a| a.is("-")) =>
                {
                    Val::S(
                        value
                            .strs()
                            .into_iter()
                            .map(|s| {
                                if s.ends_with(WILD) {
                                    s
                                } else {
                                    let mut s = s;
                                    s.pop();
                                    s
                                }
                            })
                            .collect(),
                    )
                }
                _ => unknown(),
            };
            k = close + 1;
        }
        value
    }

    /// The value of the primary expression at the start of `t` and how many tokens it took.
    fn primary(&self, t: &[Tok], env: &Env) -> Option<(Val, usize)> {
        match &t.first()?.kind {
            Kind::Str(s) => Some((Val::S(BTreeSet::from([s.clone()])), 1)),
            Kind::Template(parts) => Some((self.template(parts, env), 1)),
            Kind::Punct("[") => {
                let close = matching(t, 0)?;
                let mut arrays: BTreeSet<Vec<String>> = BTreeSet::from([Vec::new()]);
                for element in split_top(&t[1..close], &[","]) {
                    if element.is_empty() {
                        continue;
                    }
                    let values = self.expr(element, env).strs();
                    arrays = arrays
                        .iter()
                        .flat_map(|a| {
                            values.iter().map(move |v| {
                                let mut grown = a.clone();
                                grown.push(v.clone());
                                grown
                            })
                        })
                        .collect();
                    if arrays.len() > MAX_ALTERNATIVES {
                        return None;
                    }
                }
                Some((Val::A(arrays), close + 1))
            }
            Kind::Ident(name) => {
                let name = name.as_str();
                // endpoint`…`
                if name == "endpoint" {
                    if let Some(Kind::Template(parts)) = t.get(1).map(|x| &x.kind) {
                        return Some((self.template(parts, env), 2));
                    }
                }
                // new RawPathSegment("…")
                if name == "new"
                    && t.get(1).is_some_and(|x| x.is_ident("RawPathSegment"))
                    && t.get(2).is_some_and(|x| x.is("("))
                {
                    let close = matching(t, 2)?;
                    return Some((self.expr(&t[3..close], env), close + 1));
                }
                // this.field
                if name == "this" && t.get(1).is_some_and(|x| x.is(".")) {
                    let field = t.get(2)?.ident()?;
                    if t.get(3).is_some_and(|x| x.is("(")) {
                        return None;
                    }
                    let value = env
                        .get(&format!("this.{field}"))
                        .or_else(|| self.fields.get(field))
                        .cloned()
                        .unwrap_or_else(unknown);
                    return Some((value, 3));
                }
                // f(args)
                if t.get(1).is_some_and(|x| x.is("(")) {
                    let close = matching(t, 1)?;
                    let args = split_top(&t[2..close], &[","]);
                    let value = if name == "encodeURIComponent" {
                        let inner = args
                            .first()
                            .map(|a| self.expr(a, env))
                            .unwrap_or_else(unknown);
                        Val::S(
                            inner
                                .strs()
                                .into_iter()
                                .map(|s| s.replace('/', "%2F"))
                                .collect(),
                        )
                    } else if let Some(func) = self.program.funcs.get(name) {
                        self.call(func, &args, env)
                    } else {
                        unknown()
                    };
                    return Some((value, close + 1));
                }
                Some((env.get(name).cloned().unwrap_or_else(unknown), 1))
            }
            _ => None,
        }
    }

    fn template(&self, parts: &[Part], env: &Env) -> Val {
        let mut acc = BTreeSet::from([String::new()]);
        for part in parts {
            let values = match part {
                Part::Lit(s) => BTreeSet::from([s.clone()]),
                Part::Expr(inner) => self.expr(inner, env).strs(),
            };
            acc = concat(&acc, &values);
        }
        capped(acc)
    }

    /// A helper function's return values for these arguments.
    fn call(&self, func: &Func, args: &[&[Tok]], env: &Env) -> Val {
        if self.depth > 8 {
            return unknown();
        }
        let values = args.iter().map(|a| self.expr(a, env)).collect();
        let mut inner_env = bind(&func.params, values);
        let inner = Eval {
            program: self.program,
            fields: self.fields,
            depth: self.depth + 1,
        };
        let mut returns = None;
        inner.run(&func.body, &mut inner_env, &mut |_, _, _| {}, &mut returns);
        returns.unwrap_or_else(unknown)
    }
}

/// Locals after one of two branches ran: each variable may hold either branch's values.
fn merge(mut a: Env, b: Env) -> Env {
    for (name, value) in b {
        let merged = match a.remove(&name) {
            Some(old) if old != value => old.union(value),
            _ => value,
        };
        a.insert(name, merged);
    }
    a
}

/// The end (exclusive) of the statement starting at `start`.
fn statement_end(t: &[Tok], start: usize) -> usize {
    match t.get(start) {
        None => t.len(),
        Some(x) if x.is("{") => matching(t, start).map_or(t.len(), |c| c + 1),
        Some(x) if x.is_ident("if") && t.get(start + 1).is_some_and(|x| x.is("(")) => {
            let Some(close) = matching(t, start + 1) else {
                return t.len();
            };
            let end = statement_end(t, close + 1);
            if t.get(end).is_some_and(|x| x.is_ident("else")) {
                statement_end(t, end + 1)
            } else {
                end
            }
        }
        Some(_) => {
            let mut j = start;
            loop {
                let end = expr_end(t, j);
                match t.get(end) {
                    Some(x) if x.is(",") => j = end + 1,
                    Some(x) if x.is(";") => return end + 1,
                    _ => return end,
                }
            }
        }
    }
}

fn position_top(t: &[Tok], p: &str) -> Option<usize> {
    let mut depth = 0usize;
    for (j, tok) in t.iter().enumerate() {
        if is_open(tok) {
            depth += 1;
        } else if is_close(tok) {
            depth = depth.saturating_sub(1);
        } else if depth == 0 && tok.is(p) {
            return Some(j);
        }
    }
    None
}

fn is_keyword(word: &str) -> bool {
    matches!(
        word,
        "const" | "let" | "var" | "return" | "if" | "else" | "this" | "new" | "typeof" | "await"
    )
}

#[cfg(test)]
mod unit {
    use super::*;

    const SAMPLE: &str = r#"
function url4(resourceId, resourceType2, resourceId2, awardId) {
  const [rId, rId2] = [resourceId, resourceId2].map(encodeURIComponent);
  const output = [rId, resourceType2, rId2];
  output.push("award_emoji");
  if (awardId) output.push(awardId);
  return output.join("/");
}
function parse(s) { return s.split(/=(.*)/); }
var ResourceNotes = class extends requesterUtils.BaseResource {
  resource2Type;
  constructor(resourceType, resource2Type, options) {
    super({ prefixUrl: resourceType, ...options });
    this.resource2Type = resource2Type;
  }
  all(resourceId, resource2Id, options) {
    return RequestHelper.get()(this, endpoint`${resourceId}/${this.resource2Type}/${resource2Id}/notes`, options);
  }
  award(a, b) {
    return RequestHelper.post()(this, url4(a, this.resource2Type, b), {});
  }
};
var MergeRequestNotes = class extends ResourceNotes {
  constructor(options) {
    super("projects", "merge_requests", options);
  }
};
var Members = class extends requesterUtils.BaseResource {
  show(resourceId, userId, { includeInherited, ...options } = {}) {
    let url12 = endpoint`projects/${resourceId}/members`;
    if (includeInherited) url12 += "/all";
    const x = a ? `keys/${b}` : `keys?fingerprint=${c}`;
    return RequestHelper.get()(this, `${url12}/${userId}`, options);
  }
};
var resources = {
  MergeRequestNotes,
  Members
};
"#;

    #[test]
    fn reads_shared_resources_helpers_and_branches() {
        let table = RouteTable::from_source(SAMPLE).expect("parse");
        let all: Vec<String> = table.endpoints().map(|e| e.to_string()).collect();
        assert_eq!(
            all,
            [
                "GET projects/*/members/all/*",
                "GET projects/*/members/*",
                "GET projects/*/merge_requests/*/notes",
                "POST projects/*/merge_requests/*/award_emoji",
                "POST projects/*/merge_requests/*/award_emoji/*",
            ]
        );
        assert_eq!(table.call_sites, 3);
        assert!(table.unresolved.is_empty(), "{:?}", table.unresolved);
        assert!(table
            .find("GET", "projects/acme%2Fapp/merge_requests/7/notes")
            .is_some());
        assert!(table
            .find("GET", "projects/acme/app/merge_requests/7/notes")
            .is_none());
        assert!(table
            .find("DELETE", "projects/1/merge_requests/7/notes")
            .is_none());
    }

    #[test]
    fn glob_segments() {
        let p = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert!(glob(&p(&["binary-", ""]), "binary-amd64"));
        assert!(!glob(&p(&["binary-", ""]), "source-amd64"));
        assert!(glob(&p(&["", "$", ""]), "pkg$abc"));
        assert!(!glob(&p(&["", "$", ""]), "pkgabc"));
        assert!(glob(
            &p(&["", "_repository_storage_moves"]),
            "project_repository_storage_moves"
        ));
    }
}
