//! `go.mod` (<https://go.dev/ref/mod#go-mod-file>). With minimal version selection the
//! `require` versions are the ones built, and since Go 1.17 the file lists every module the
//! build needs; `// indirect` marks those the main module does not import itself
//! (<https://go.dev/ref/mod#go-mod-file-require>). A `replace` swaps a module (or one version of
//! it) for another module version, which is then what is built and matched, or for a local
//! directory, which is no registry module (<https://go.dev/ref/mod#go-mod-file-replace>).
//! The `go` and `toolchain` lines give a minimum, not the toolchain that builds, so the
//! standard library is not reported.

use crate::error::ErrorKind;
use crate::model::{Package, Parsed, Source};
use crate::text::numbered_lines;
use picket_core::Ecosystem;
use std::collections::HashMap;

struct Require {
    path: String,
    version: String,
    indirect: bool,
    line: u32,
}

struct Replacement {
    path: String,
    version: Option<String>,
    line: u32,
}

pub(crate) fn parse(text: &str) -> Result<Parsed, ErrorKind> {
    let mut block: Option<String> = None;
    let mut has_module = false;
    let mut requires: Vec<Require> = Vec::new();
    let mut replaces: HashMap<(String, Option<String>), Replacement> = HashMap::new();
    for (n, raw) in numbered_lines(text) {
        let (code, comment) = split_comment(raw);
        let tokens = tokenize(code).map_err(|m| ErrorKind::syntax(Some(n), m))?;
        if tokens.is_empty() {
            continue;
        }
        let (verb, args) = match &block {
            Some(_) if tokens == [")"] => {
                block = None;
                continue;
            }
            Some(verb) => (verb.clone(), &tokens[..]),
            None if tokens.len() == 2 && tokens[1] == "(" => {
                block = Some(tokens[0].clone());
                continue;
            }
            None => (tokens[0].clone(), &tokens[1..]),
        };
        let invalid = |what: &str| ErrorKind::invalid(Some(n), format!("malformed {what}"));
        match verb.as_str() {
            "module" => has_module = true,
            "require" => {
                let [path, version] = args else {
                    return Err(invalid("require"));
                };
                let indirect = comment.is_some_and(|c| {
                    let c = c.trim();
                    c == "indirect" || c.starts_with("indirect;")
                });
                requires.push(Require {
                    path: path.clone(),
                    version: version.clone(),
                    indirect,
                    line: n,
                });
            }
            "replace" => {
                let arrow = args
                    .iter()
                    .position(|t| t == "=>")
                    .ok_or_else(|| invalid("replace"))?;
                let (old, new) = (&args[..arrow], &args[arrow + 1..]);
                let (old_path, old_version) = match old {
                    [p] => (p.clone(), None),
                    [p, v] => (p.clone(), Some(v.clone())),
                    _ => return Err(invalid("replace")),
                };
                let (path, version) = match new {
                    [p] => (p.clone(), None),
                    [p, v] => (p.clone(), Some(v.clone())),
                    _ => return Err(invalid("replace")),
                };
                replaces.insert(
                    (old_path, old_version),
                    Replacement {
                        path,
                        version,
                        line: n,
                    },
                );
            }
            // go, toolchain, exclude, retract, godebug, tool, ignore and later directives
            // change nothing about which module versions are built.
            _ => {}
        }
    }
    if block.is_some() {
        return Err(ErrorKind::syntax(None, "unterminated ( block"));
    }
    if !has_module {
        return Err(ErrorKind::invalid(None, "no module directive"));
    }
    let mut out = Vec::with_capacity(requires.len());
    for r in requires {
        let replacement = replaces
            .get(&(r.path.clone(), Some(r.version.clone())))
            .or_else(|| replaces.get(&(r.path.clone(), None)));
        let mut p = match replacement {
            Some(to) if is_local(&to.path) => {
                let mut p = Package::new(Ecosystem::Go, &r.path, &r.version);
                p.source = Source::Path {
                    path: Some(to.path.clone()),
                };
                p.line = Some(to.line);
                p
            }
            Some(to) => {
                let version = to.version.clone().ok_or_else(|| {
                    ErrorKind::invalid(Some(to.line), "a module replacement needs a version")
                })?;
                let mut p = Package::new(Ecosystem::Go, &to.path, &version);
                p.line = Some(to.line);
                p
            }
            None => {
                let mut p = Package::new(Ecosystem::Go, &r.path, &r.version);
                p.line = Some(r.line);
                p
            }
        };
        p.direct = Some(!r.indirect);
        out.push(p);
    }
    Ok(out.into())
}

/// A replacement that is a directory: it starts with `./`, `../` or `/` (Go's rule; Windows
/// drive paths too).
fn is_local(path: &str) -> bool {
    path.starts_with("./")
        || path.starts_with("../")
        || path.starts_with('/')
        || path.starts_with(".\\")
        || path.starts_with("..\\")
        || path.as_bytes().get(1..3) == Some(b":\\")
}

/// The code and the `//` comment of a line (a `//` inside a quoted string is code).
fn split_comment(line: &str) -> (&str, Option<&str>) {
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        match quote {
            Some('"') if escaped => escaped = false,
            Some('"') if c == '\\' => escaped = true,
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '"' || c == '`' => quote = Some(c),
            None if line[i..].starts_with("//") => return (&line[..i], Some(&line[i + 2..])),
            None => {}
        }
    }
    (line, None)
}

/// Whitespace-separated tokens, `"…"` and `` `…` `` strings unquoted, `(`, `)` and `=>` apart.
fn tokenize(code: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut chars = code.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '(' || c == ')' {
            out.push(c.to_string());
            chars.next();
        } else if c == '"' || c == '`' {
            chars.next();
            let mut s = String::new();
            loop {
                match chars.next() {
                    None => return Err("unterminated string".into()),
                    Some('\\') if c == '"' => s.extend(chars.next()),
                    Some(d) if d == c => break,
                    Some(d) => s.push(d),
                }
            }
            out.push(s);
        } else {
            let mut s = String::new();
            while let Some(&d) = chars.peek() {
                if d.is_whitespace() || d == '(' || d == ')' {
                    break;
                }
                s.push(d);
                chars.next();
            }
            // `a=>b` without spaces is legal.
            match s.split_once("=>") {
                Some((a, b)) => out.extend(
                    [a, "=>", b]
                        .into_iter()
                        .filter(|t| !t.is_empty())
                        .map(str::to_owned),
                ),
                None => out.push(s),
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_into_tokens_and_comments() {
        assert_eq!(
            split_comment("\tgolang.org/x/text v0.3.7 // indirect"),
            ("\tgolang.org/x/text v0.3.7 ", Some(" indirect"))
        );
        assert_eq!(split_comment("module \"a//b\""), ("module \"a//b\"", None));
        assert_eq!(
            tokenize("replace a v1=>b v2").unwrap(),
            vec!["replace", "a", "v1", "=>", "b", "v2"]
        );
        assert_eq!(tokenize("require (").unwrap(), vec!["require", "("]);
        assert!(tokenize("module \"x").is_err());
        assert!(is_local("../fork") && is_local("C:\\src") && !is_local("example.com/fork"));
    }
}
