//! Checks recorded requests against GitLab: under the API base path; an endpoint
//! `@gitbeaker/core` calls for the method and path ([`RouteTable`]); and, for the routes the
//! server implements, the parameters GitLab's documentation marks required, with their allowed
//! values. Parameters are those GitLab reads (query string and body, merged:
//! [`RecordedRequest::params`]).

use serde_json::Value;

use super::{RecordedRequest, RouteTable};

/// What GitLab documents as required, per route of this server.
struct Rule {
    route: &'static str,
    /// Parameter paths that must be present and not blank (`["position", "base_sha"]` is
    /// `position[base_sha]`).
    required: &'static [&'static [&'static str]],
    /// Parameter paths whose value, when present, must be one of these.
    one_of: &'static [(&'static [&'static str], &'static [&'static str])],
}

const BOOLEAN: &[&str] = &["true", "false", "1", "0", "t", "f", "yes", "no"];

const RULES: &[Rule] = &[
    // docs.gitlab.com/api/commits/#set-the-pipeline-status-of-a-commit
    Rule {
        route: "POST /projects/:id/statuses/:sha",
        required: &[&["state"]],
        one_of: &[(
            &["state"],
            &[
                "pending", "running", "success", "failed", "canceled", "skipped",
            ],
        )],
    },
    // docs.gitlab.com/api/project_webhooks/ and group_webhooks/
    Rule {
        route: "POST /projects/:id/hooks",
        required: &[&["url"]],
        one_of: &[],
    },
    Rule {
        route: "PUT /projects/:id/hooks/:hook_id",
        required: &[&["url"]],
        one_of: &[],
    },
    Rule {
        route: "POST /groups/:id/hooks",
        required: &[&["url"]],
        one_of: &[],
    },
    Rule {
        route: "PUT /groups/:id/hooks/:hook_id",
        required: &[&["url"]],
        one_of: &[],
    },
    // docs.gitlab.com/api/discussions/
    Rule {
        route: "POST /projects/:id/merge_requests/:iid/discussions",
        required: &[&["body"]],
        one_of: &[(&["position", "position_type"], &["text", "image", "file"])],
    },
    Rule {
        route: "POST /projects/:id/merge_requests/:iid/discussions/:discussion_id/notes",
        required: &[&["body"]],
        one_of: &[],
    },
    Rule {
        route: "PUT /projects/:id/merge_requests/:iid/discussions/:discussion_id",
        required: &[&["resolved"]],
        one_of: &[(&["resolved"], BOOLEAN)],
    },
    // docs.gitlab.com/api/notes/
    Rule {
        route: "POST /projects/:id/merge_requests/:iid/notes",
        required: &[&["body"]],
        one_of: &[],
    },
    Rule {
        route: "PUT /projects/:id/merge_requests/:iid/notes/:note_id",
        required: &[&["body"]],
        one_of: &[],
    },
    // docs.gitlab.com/api/repositories/#merge-base
    Rule {
        route: "GET /projects/:id/repository/merge_base",
        required: &[&["refs"]],
        one_of: &[],
    },
    // docs.gitlab.com/api/merge_requests/#list-project-merge-requests
    Rule {
        route: "GET /projects/:id/merge_requests",
        required: &[],
        one_of: &[(&["state"], &["opened", "closed", "locked", "merged", "all"])],
    },
    // docs.gitlab.com/api/projects/#list-all-projects
    Rule {
        route: "GET /projects",
        required: &[],
        one_of: &[
            (&["membership"], BOOLEAN),
            (&["archived"], BOOLEAN),
            (&["simple"], BOOLEAN),
            (&["owned"], BOOLEAN),
        ],
    },
    Rule {
        route: "GET /groups/:id/projects",
        required: &[],
        one_of: &[(&["include_subgroups"], BOOLEAN), (&["archived"], BOOLEAN)],
    },
];

fn lookup<'v>(params: &'v Value, path: &[&str]) -> Option<&'v Value> {
    let mut v = params;
    for key in path {
        v = v.get(key)?;
    }
    (!v.is_null()).then_some(v)
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn blank(v: &Value) -> bool {
    match v {
        Value::String(s) => s.trim().is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Null => true,
        _ => false,
    }
}

fn name(path: &[&str]) -> String {
    match path {
        [first, rest @ ..] if !rest.is_empty() => format!("{first}[{}]", rest.join("][")),
        _ => path.join(""),
    }
}

/// The problems of one request with a route of this server.
fn check_params(route: &str, params: &Value) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(rule) = RULES.iter().find(|r| r.route == route) {
        for path in rule.required {
            match lookup(params, path) {
                None => out.push(format!("required parameter {} is missing", name(path))),
                Some(v) if blank(v) => {
                    out.push(format!("required parameter {} is blank", name(path)))
                }
                Some(_) => {}
            }
        }
        for (path, allowed) in rule.one_of {
            if let Some(v) = lookup(params, path) {
                let value = text(v).unwrap_or_default();
                if !allowed.contains(&value.to_ascii_lowercase().as_str()) {
                    out.push(format!(
                        "parameter {} is {value:?}, not one of {allowed:?}",
                        name(path)
                    ));
                }
            }
        }
    }
    match route {
        "POST /projects/:id/merge_requests/:iid/discussions" => check_position(params, &mut out),
        // At least two refs (docs.gitlab.com/api/repositories/#merge-base).
        "GET /projects/:id/repository/merge_base" => {
            if let Some(Value::Array(refs)) = lookup(params, &["refs"]) {
                if refs.len() < 2 {
                    out.push("refs needs at least 2 refs (refs[]=a&refs[]=b)".to_string());
                }
            } else if lookup(params, &["refs"]).is_some() {
                out.push("refs is not an array (send refs[]=a&refs[]=b)".to_string());
            }
        }
        _ => {}
    }
    for key in ["page", "per_page"] {
        if let Some(v) = lookup(params, &[key]) {
            let ok = text(v).is_some_and(|t| t.parse::<u64>().is_ok_and(|n| n > 0));
            if !ok {
                out.push(format!("{key} is {v}, not a positive integer"));
            }
        }
    }
    out
}

/// A diff note's position (docs.gitlab.com/api/discussions/, "Create a new thread in the merge
/// request diff"): the three SHAs of a diff version and the type are required; a text position
/// needs both paths (old_path and new_path, even for a new or unchanged file) and a line.
fn check_position(params: &Value, out: &mut Vec<String>) {
    if lookup(params, &["position"]).is_none() {
        return;
    }
    for key in ["base_sha", "start_sha", "head_sha", "position_type"] {
        if lookup(params, &["position", key]).is_none_or(blank) {
            out.push(format!("required parameter position[{key}] is missing"));
        }
    }
    let text_type = lookup(params, &["position", "position_type"])
        .and_then(text)
        .is_some_and(|t| t == "text");
    if text_type {
        for key in ["old_path", "new_path"] {
            if lookup(params, &["position", key]).is_none_or(blank) {
                out.push(format!(
                    "a text position needs position[{key}] (both old_path and new_path)"
                ));
            }
        }
        if lookup(params, &["position", "new_line"]).is_none()
            && lookup(params, &["position", "old_line"]).is_none()
        {
            out.push(format!(
                "a text position needs position[new_line] ({})",
                "or position[old_line] for a removed line"
            ));
        }
        for key in ["new_line", "old_line"] {
            if let Some(v) = lookup(params, &["position", key]) {
                let ok = text(v).is_some_and(|t| t.parse::<u64>().is_ok_and(|n| n > 0));
                if !ok {
                    out.push(format!("position[{key}] is {v}, not a line number"));
                }
            }
        }
    }
}

/// Every violation in `requests`, one line each: `<METHOD> <path>: <problem>`.
pub(super) fn violations(requests: &[RecordedRequest], base_path: &str) -> Vec<String> {
    let table = match RouteTable::load() {
        Ok(table) => table,
        Err(e) => return vec![e],
    };
    let mut out = Vec::new();
    for r in requests {
        let target = match &r.query {
            Some(q) => format!("{}?{q}", r.path),
            None => r.path.clone(),
        };
        let mut problems = Vec::new();
        match r
            .path
            .strip_prefix(base_path)
            .filter(|rest| rest.is_empty() || rest.starts_with('/'))
        {
            None => problems.push(format!("outside the API base path {base_path}")),
            Some(rest) => {
                if table.find(&r.method, rest).is_none() {
                    problems.push(format!(
                        "no GitLab endpoint {} {rest} (per @gitbeaker/core {})",
                        r.method,
                        super::GITBEAKER_CORE_VERSION
                    ));
                }
            }
        }
        if let Some(route) = r.route {
            problems.extend(check_params(route, &r.params));
        }
        for p in problems {
            out.push(format!("{} {target}: {p}", r.method));
        }
    }
    out
}

#[cfg(test)]
mod unit {
    use serde_json::json;

    use super::check_params;

    #[test]
    fn a_diff_position_needs_both_paths_and_a_line() {
        let route = "POST /projects/:id/merge_requests/:iid/discussions";
        let complete = json!({"body": "b", "position": {
            "base_sha": "a", "start_sha": "b", "head_sha": "c", "position_type": "text",
            "old_path": "x", "new_path": "x", "new_line": "3"}});
        assert!(check_params(route, &complete).is_empty());
        let partial = json!({"body": "b", "position": {
            "base_sha": "a", "head_sha": "c", "position_type": "text", "new_path": "x"}});
        let problems = check_params(route, &partial);
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems.iter().any(|p| p.contains("position[start_sha]")));
        assert!(problems.iter().any(|p| p.contains("position[old_path]")));
        assert!(problems.iter().any(|p| p.contains("position[new_line]")));
        assert_eq!(check_params(route, &json!({})).len(), 1);
    }

    #[test]
    fn statuses_need_a_known_state() {
        let route = "POST /projects/:id/statuses/:sha";
        assert!(check_params(route, &json!({"state": "success"})).is_empty());
        assert_eq!(check_params(route, &json!({})).len(), 1);
        assert_eq!(check_params(route, &json!({"state": "error"})).len(), 1);
    }
}
