//! pip's requirements files (<https://pip.pypa.io/en/stable/reference/requirements-file-format/>),
//! read as pip reads them: lines ending in `\` are joined, `#` after whitespace starts a
//! comment, a line starting with `-` is an option. Only a requirement pinned with `==` (without
//! a wildcard) or `===` is a package; a range, no version, a URL (`name @ https://…`), a VCS or
//! local path, and `-e` are reported as unresolved with the reason, never guessed.
//!
//! `-r` / `--requirement` and `-c` / `--constraint` are listed as includes, resolved against
//! this file's folder (pip resolves them against the including file); one naming a URL or a
//! file outside the repository is unresolved. The annotations pip-compile and `uv pip compile`
//! write under each pin (`# via -r requirements.in`, `# via requests`;
//! <https://pip-tools.readthedocs.io/en/latest/#requirements-from-requirements-in>) tell
//! direct from transitive: a pin whose `via` names a `-r` input file is direct.

use crate::error::ErrorKind;
use crate::model::{Include, IncludeKind, Package, Parsed, Source, Unresolved, UnresolvedReason};
use crate::text::numbered_lines;
use picket_core::Ecosystem;

/// A logical line: its first physical line and its text (continuations joined).
struct Logical {
    line: u32,
    text: String,
}

pub(crate) fn parse(text: &str, path: &str) -> Result<Parsed, ErrorKind> {
    let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
    let mut out = Parsed::default();
    // Inside a multi-line `# via` list.
    let mut via_open = false;
    // The package the last logical line pinned, which `# via` lines annotate.
    let mut last: Option<usize> = None;
    // Per package: whether a `via` named an input file, and whether it had any `via`.
    let mut annotated: Vec<(bool, bool)> = Vec::new();
    let mut pending: Option<Logical> = None;
    for (n, raw) in numbered_lines(text) {
        if pending.is_none() && raw.trim_start().starts_with('#') {
            if let Some(item) = via_item(raw, &mut via_open) {
                if let Some(i) = last {
                    annotated.resize(out.packages.len().max(annotated.len()), (false, false));
                    annotated[i].1 = true;
                    annotated[i].0 |= item.starts_with("-r ");
                }
            }
            continue;
        }
        via_open = false;
        let continued = raw.ends_with('\\') && !has_comment(raw);
        let body = if continued {
            &raw[..raw.len() - 1]
        } else {
            raw
        };
        let logical = pending.get_or_insert_with(|| Logical {
            line: n,
            text: String::new(),
        });
        logical.text.push_str(body);
        if !continued {
            if let Some(logical) = pending.take() {
                let before = out.packages.len();
                line(&logical, dir, &mut out)?;
                if out.packages.len() > before {
                    last = Some(before);
                } else if !logical.text.trim().is_empty() {
                    last = None;
                }
            }
        }
    }
    if let Some(logical) = pending.take() {
        line(&logical, dir, &mut out)?; // a file ending in `\`
    }
    for (i, (direct, any)) in annotated.into_iter().enumerate() {
        if let Some(p) = out.packages.get_mut(i) {
            p.direct = any.then_some(direct);
        }
    }
    Ok(out)
}

/// A comment-only line's `via` item: pip-compile writes `# via x`, or `# via` followed by
/// `#   x` lines.
fn via_item<'a>(raw: &'a str, open: &mut bool) -> Option<&'a str> {
    let comment = raw.trim_start().trim_start_matches('#');
    if let Some(rest) = comment.trim().strip_prefix("via") {
        if rest.trim().is_empty() {
            *open = true;
            return None;
        }
        *open = false;
        return rest.starts_with(char::is_whitespace).then(|| rest.trim());
    }
    if *open && comment.starts_with("   ") {
        return Some(comment.trim());
    }
    *open = false;
    None
}

/// pip's comment rule: `#` at the start or after whitespace.
fn has_comment(line: &str) -> bool {
    comment_start(line).is_some()
}

fn comment_start(line: &str) -> Option<usize> {
    line.char_indices().find_map(|(i, c)| {
        (c == '#' && (i == 0 || line[..i].ends_with(char::is_whitespace))).then_some(i)
    })
}

fn line(logical: &Logical, dir: &str, out: &mut Parsed) -> Result<(), ErrorKind> {
    let text = match comment_start(&logical.text) {
        Some(i) => &logical.text[..i],
        None => &logical.text,
    };
    let text = text.trim();
    if text.is_empty() {
        return Ok(());
    }
    let unresolved = |reason| Unresolved {
        line: Some(logical.line),
        text: text.to_owned(),
        reason,
    };
    if text.starts_with('-') {
        let (option, value) = option(text);
        let kind = match option {
            "-r" | "--requirement" => IncludeKind::Requirements,
            "-c" | "--constraint" => IncludeKind::Constraints,
            "-e" | "--editable" => {
                out.unresolved.push(unresolved(UnresolvedReason::Editable));
                return Ok(());
            }
            // Index, link and install options name no package.
            _ => return Ok(()),
        };
        match resolve_include(dir, value) {
            Some(path) => out.includes.push(Include {
                path,
                kind,
                line: logical.line,
            }),
            None => out
                .unresolved
                .push(unresolved(UnresolvedReason::IncludeOutsideRepository)),
        }
        return Ok(());
    }
    // Per-requirement options (`--hash=…`) start at the first token beginning with `-`.
    let requirement = text
        .split(' ')
        .take_while(|t| !t.starts_with('-'))
        .collect::<Vec<_>>()
        .join(" ");
    match requirement_version(&requirement) {
        Ok((name, version)) => {
            let mut p = Package::new(Ecosystem::PyPi, name, version);
            p.line = Some(logical.line);
            p.source = Source::Registry { url: None };
            out.packages.push(p);
        }
        Err(Some(reason)) => out.unresolved.push(unresolved(reason)),
        Err(None) => {
            return Err(ErrorKind::invalid(
                Some(logical.line),
                format!("invalid requirement {requirement:?}"),
            ))
        }
    }
    Ok(())
}

/// `-r file`, `-rfile`, `--requirement=file`, `--requirement file` → (option, value).
fn option(text: &str) -> (&str, &str) {
    let (head, rest) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
    if let Some((o, v)) = head.split_once('=') {
        return (o, v.trim());
    }
    if !head.starts_with("--") && head.len() > 2 {
        if let (Some(o), Some(v)) = (head.get(..2), head.get(2..)) {
            return (o, v);
        }
    }
    (head, rest.trim())
}

/// An include's path relative to the repository root; `None` for a URL or a path outside it.
fn resolve_include(dir: &str, value: &str) -> Option<String> {
    if value.is_empty() || value.contains("://") || value.starts_with('/') {
        return None;
    }
    let mut parts: Vec<&str> = dir.split('/').filter(|s| !s.is_empty()).collect();
    for segment in value.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            s => parts.push(s),
        }
    }
    Some(parts.join("/"))
}

/// A requirement's (name, exact version); `Err(Some(reason))` when it pins no exact version,
/// `Err(None)` when it is no requirement at all.
fn requirement_version(req: &str) -> Result<(&str, &str), Option<UnresolvedReason>> {
    const VCS: [&str; 4] = ["git+", "hg+", "svn+", "bzr+"];
    let req = req.trim();
    let name_end = req
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
        .unwrap_or(req.len());
    let name = &req[..name_end];
    let rest = req[name_end..].trim_start();
    // `name @ url` (PEP 508), or a bare URL or path.
    let url = if let Some(url) = rest.strip_prefix('@') {
        Some(url.trim())
    } else if req.contains("://") || VCS.iter().any(|v| req.starts_with(v)) {
        Some(req)
    } else {
        None
    };
    if let Some(url) = url {
        return Err(Some(if VCS.iter().any(|v| url.starts_with(v)) {
            UnresolvedReason::Vcs
        } else if url.starts_with("file:") {
            UnresolvedReason::LocalPath
        } else {
            UnresolvedReason::Url
        }));
    }
    let is_path = req.starts_with('.')
        || req.contains('/')
        || [".whl", ".tar.gz", ".zip", ".tar.bz2"]
            .iter()
            .any(|s| req.ends_with(s));
    if is_path {
        return Err(Some(UnresolvedReason::LocalPath));
    }
    if name.is_empty() || !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err(None);
    }
    // Extras, then the markers after `;`, then the specifiers (PEP 508 allows parentheses).
    let rest = match rest.strip_prefix('[') {
        Some(r) => &r[r.find(']').ok_or(None)? + 1..],
        None => rest,
    };
    let specifiers = rest.split(';').next().unwrap_or("").trim();
    let specifiers = specifiers
        .strip_prefix('(')
        .and_then(|s| s.strip_suffix(')'))
        .unwrap_or(specifiers);
    for clause in specifiers.split(',').map(str::trim) {
        let version = clause
            .strip_prefix("===")
            .or_else(|| {
                clause
                    .strip_prefix("==")
                    .filter(|v| !v.trim().ends_with('*'))
            })
            .map(str::trim);
        if let Some(v) = version.filter(|v| {
            !v.is_empty()
                && v.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '!' | '-' | '_'))
        }) {
            return Ok((name, v));
        }
    }
    let known = ["~=", "==", "!=", "<=", ">=", "<", ">", "==="];
    let valid = specifiers.is_empty()
        || specifiers
            .split(',')
            .all(|c| known.iter().any(|op| c.trim().starts_with(op)));
    if valid {
        Err(Some(UnresolvedReason::NotPinned))
    } else {
        Err(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_exact_pins_are_packages() {
        assert_eq!(
            requirement_version("Django==4.2.1"),
            Ok(("Django", "4.2.1"))
        );
        assert_eq!(
            requirement_version("a[x,y] == 1.0 ; python_version<'3.9'"),
            Ok(("a", "1.0"))
        );
        assert_eq!(requirement_version("b===1.0-local"), Ok(("b", "1.0-local")));
        assert_eq!(requirement_version("c>=1,==1.2"), Ok(("c", "1.2")));
        assert_eq!(requirement_version("d (==2.0)"), Ok(("d", "2.0")));
        use UnresolvedReason::*;
        assert_eq!(requirement_version("e==1.*"), Err(Some(NotPinned)));
        assert_eq!(requirement_version("f>=1"), Err(Some(NotPinned)));
        assert_eq!(requirement_version("g"), Err(Some(NotPinned)));
        assert_eq!(requirement_version("h==${VERSION}"), Err(Some(NotPinned)));
        assert_eq!(
            requirement_version("i @ https://x/i-1.0.tar.gz"),
            Err(Some(Url))
        );
        assert_eq!(requirement_version("j @ git+https://x/j"), Err(Some(Vcs)));
        assert_eq!(requirement_version("git+https://x/k#egg=k"), Err(Some(Vcs)));
        assert_eq!(requirement_version("./local"), Err(Some(LocalPath)));
        assert_eq!(
            requirement_version("dist/l-1.0-py3-none-any.whl"),
            Err(Some(LocalPath))
        );
        assert_eq!(requirement_version("m ~~ 1"), Err(None));
    }

    #[test]
    fn includes_resolve_inside_the_repository() {
        assert_eq!(
            resolve_include("app", "base.txt").as_deref(),
            Some("app/base.txt")
        );
        assert_eq!(
            resolve_include("app/req", "../c.txt").as_deref(),
            Some("app/c.txt")
        );
        assert_eq!(resolve_include("", "./x/y.txt").as_deref(), Some("x/y.txt"));
        assert_eq!(resolve_include("", "../outside.txt"), None);
        assert_eq!(resolve_include("", "/etc/x.txt"), None);
        assert_eq!(resolve_include("", "https://h/r.txt"), None);
        assert_eq!(option("-rbase.txt"), ("-r", "base.txt"));
        assert_eq!(
            option("--requirement=base.txt"),
            ("--requirement", "base.txt")
        );
        assert_eq!(option("-c  c.txt"), ("-c", "c.txt"));
    }
}
