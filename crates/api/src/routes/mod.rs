//! The `/api/v1` routes, one module per resource. Each module's `router()` registers its handlers
//! with `utoipa_axum::routes!`, which adds the route to axum and the operation to the OpenAPI
//! document in one step, so the document cannot list a route that is not served or miss one that
//! is.

mod advisories;
pub(crate) mod connections;
mod findings;
mod manifest;
mod onboarding;
mod org;
mod policies;
mod projects;
mod rule_packs;
mod scans;
mod tokens;
pub(crate) mod webhooks;
mod worker;

use crate::error::{ApiError, FieldError, Problem};
use crate::AppState;
use picket_db::DbError;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

pub use policies::MAX_RULES as MAX_POLICY_RULES;
pub use scans::MAX_BULK_SCAN;
pub use webhooks::WEBHOOK_BODY_LIMIT_BYTES;
pub use worker::RESULTS_BODY_LIMIT_BYTES;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Picket API",
        description = "Managed code scanning: projects, scans, findings and policies of one org. \
                       Every request carries `Authorization: Bearer pkt_...` (the worker routes: \
                       the scan's own `pks_...` token); every object belongs to the token's org, and objects of other orgs answer 404. Errors are RFC \
                       9457 `application/problem+json` with a stable `code`.",
    ),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    components(schemas(Problem, FieldError)),
    tags(
        (name = "org", description = "The caller's organization"),
        (name = "tokens", description = "API tokens (admin)"),
        (name = "connections", description = "Source-provider connections"),
        (name = "projects", description = "Repositories added to Picket"),
        (name = "scans", description = "Full and diff-aware scans"),
        (name = "findings", description = "What scans found"),
        (name = "policies", description = "Rule modes: monitor, comment, block"),
        (name = "rule-packs", description = "The org's own Semgrep rules"),
        (name = "advisories", description = "Supply Chain's OSV advisories, shared by every \
                                             org of the installation (read-only)"),
        (name = "worker", description = "The worker protocol: one scan's worker, authenticated \
                                         by its per-scan token (`Authorization: Bearer pks_...`), \
                                         which works only for that scan's current attempt and \
                                         only while the scan is active"),
        (name = "webhooks", description = "Provider deliveries (`/webhooks/...`, outside \
                                           `/api/v1`): no bearer token; each delivery is \
                                           authenticated by its signature over the raw body"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .bearer_format("pkt_<43 base62 characters>")
            .build();
        components.add_security_scheme("bearer", SecurityScheme::Http(scheme));
        let scan_token = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .bearer_format("pks_<43 base62 characters>, minted per scan attempt")
            .build();
        components.add_security_scheme("scan_token", SecurityScheme::Http(scan_token));
    }
}

/// Every `/api/v1` route with its OpenAPI operation.
pub(crate) fn api() -> OpenApiRouter<AppState> {
    let mut router = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(org::router())
        .merge(tokens::router())
        .merge(connections::router())
        .merge(onboarding::router())
        .merge(manifest::router())
        .merge(projects::router())
        .merge(scans::router())
        .merge(findings::router())
        .merge(policies::router())
        .merge(rule_packs::router())
        .merge(advisories::router())
        .merge(worker::router())
        .merge(webhooks::router());
    standard_responses(router.get_openapi_mut());
    router
}

/// Adds to every operation the answers the shared layers and extractors can give, whatever the
/// handler: 401 (every route takes a token), 400 when it has path or query parameters (their
/// extractors), 400/413/415/422 when it takes a body ([`crate::extract::ApiJson`] and the body
/// limit), 500 `internal` and 503 `timeout` (the panic and timeout layers). A status the route
/// documents itself keeps its own description. Statuses a handler decides (403 for admin routes,
/// 404, 409) are documented on the route.
fn standard_responses(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::path::ParameterIn;
    for item in doc.paths.paths.values_mut() {
        let ops = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for op in ops.into_iter().flatten() {
            let params = op.parameters.as_deref().unwrap_or_default();
            let mut add = vec![
                (
                    "500",
                    "`internal`: the server failed; its log has the details",
                ),
                (
                    "503",
                    "`timeout`: the request took too long and was rolled back",
                ),
            ];
            if !takes_no_token(op) {
                add.push((
                    "401",
                    "`unauthorized`: no token, or one that is unknown, revoked, expired or not valid here",
                ));
            }
            if params.iter().any(|p| p.parameter_in == ParameterIn::Path) {
                add.push(("400", "`invalid_path`: a path parameter is refused"));
            }
            if params.iter().any(|p| p.parameter_in == ParameterIn::Query) {
                add.push((
                    "400",
                    "`invalid_query`: a query parameter is unknown or refused",
                ));
            }
            if op.request_body.is_some() {
                add.extend([
                    (
                        "400",
                        "`malformed_json` or `unreadable_body`: the body is not JSON",
                    ),
                    (
                        "413",
                        "`body_too_large`: the body is larger than the server takes",
                    ),
                    (
                        "415",
                        "`unsupported_media_type`: the body is not sent as application/json",
                    ),
                    (
                        "422",
                        "`invalid_body`: the JSON does not fit the schema or a value is refused; \
                         `errors` names the fields",
                    ),
                ]);
            }
            let responses = &mut op.responses.responses;
            let mut joined: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
            for (status, text) in add {
                joined.entry(status).or_default().push(text);
            }
            for (status, texts) in joined {
                responses
                    .entry(status.to_owned())
                    .or_insert_with(|| problem_response(&texts.join("; ")).into());
            }
        }
    }
}

/// Whether an operation declares that it takes no token (`security: [{}]`: the webhook routes,
/// authenticated by a signature, and the App manifest callback, by its state).
fn takes_no_token(op: &utoipa::openapi::path::Operation) -> bool {
    op.security.as_ref().is_some_and(|requirements| {
        requirements.iter().all(|r| {
            serde_json::to_value(r).is_ok_and(|v| v.as_object().is_some_and(|o| o.is_empty()))
        })
    })
}

/// A problem+json answer.
fn problem_response(description: &str) -> utoipa::openapi::Response {
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    ResponseBuilder::new()
        .description(description)
        .content(
            crate::error::PROBLEM_JSON,
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .build(),
        )
        .build()
}

/// Refuses a string whose length in characters is outside `min..=max`.
pub(crate) fn check_len(field: &str, value: &str, min: usize, max: usize) -> Result<(), ApiError> {
    let n = value.chars().count();
    if n < min || n > max {
        return Err(ApiError::invalid_body(
            field,
            format!("must be {min}-{max} characters (got {n})"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(ApiError::invalid_body(
            field,
            "must not contain control characters",
        ));
    }
    Ok(())
}

/// Names the missing object in a 404; every other database error converts as usual.
pub(crate) fn not_found_as(e: DbError, what: &str) -> ApiError {
    match e {
        DbError::NotFound => ApiError::not_found(what),
        other => other.into(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    /// The unbounded parts of an input schema, by path: a string without `maxLength` (or
    /// `enum`, or `format: uuid`), an integer without `minimum` and `maximum`, an array without `maxItems`, an
    /// object open to unknown fields without bounds on them.
    fn unbounded(doc: &Value, schema: &Value, at: &str, out: &mut Vec<String>) {
        if let Some(r) = schema["$ref"].as_str() {
            let name = r.trim_start_matches("#/components/schemas/");
            return unbounded(doc, &doc["components"]["schemas"][name], at, out);
        }
        for key in ["oneOf", "anyOf", "allOf"] {
            for (i, s) in schema[key].as_array().into_iter().flatten().enumerate() {
                unbounded(doc, s, &format!("{at}/{key}[{i}]"), out);
            }
        }
        let types: Vec<&str> = match &schema["type"] {
            Value::String(t) => vec![t.as_str()],
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        let has = |k: &str| !schema[k].is_null();
        let fixed_format = schema["format"] == "uuid";
        if types.contains(&"string") && !has("maxLength") && !has("enum") && !fixed_format {
            out.push(format!("{at}: string without maxLength"));
        }
        if types.contains(&"integer") && !(has("minimum") && has("maximum")) {
            out.push(format!("{at}: integer without minimum and maximum"));
        }
        if types.contains(&"array") {
            if !has("maxItems") {
                out.push(format!("{at}: array without maxItems"));
            }
            unbounded(doc, &schema["items"], &format!("{at}[]"), out);
        }
        if types.contains(&"object") {
            for (name, s) in schema["properties"].as_object().into_iter().flatten() {
                unbounded(doc, s, &format!("{at}.{name}"), out);
            }
            match &schema["additionalProperties"] {
                Value::Bool(false) => {}
                extra @ Value::Object(_) if has("maxProperties") && has("propertyNames") => {
                    unbounded(doc, extra, &format!("{at}.*"), out)
                }
                _ => out.push(format!(
                    "{at}: object open to unknown fields (no additionalProperties: false, or a \
                     map without maxProperties and propertyNames)"
                )),
            }
        }
    }

    /// Every input of every operation (but the worker protocol's, which only Picket's own worker
    /// sends) states its bounds, and every operation documents the answers its layers give. With
    /// the contract test (tests/e2e/contract.rs), which checks that the server keeps to them, a
    /// route cannot be added without describing what it takes.
    #[test]
    fn every_input_is_bounded_and_every_operation_documents_its_errors() {
        let doc = serde_json::to_value(crate::openapi()).unwrap();
        let mut problems = Vec::new();
        let mut operations = 0;
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let tags = op["tags"].as_array().cloned().unwrap_or_default();
                // The worker's and the providers' routes take what only Picket's own worker, or
                // a provider signing with the connection's secret, sends.
                if tags.iter().any(|t| t == "worker" || t == "webhooks") {
                    continue;
                }
                operations += 1;
                let at = format!("{} {path}", method.to_uppercase());
                let mut expected = vec!["500", "503"];
                // An operation that takes no token (the manifest callback) never answers 401.
                if op["security"] != serde_json::json!([{}]) {
                    expected.push("401");
                }
                for p in op["parameters"].as_array().into_iter().flatten() {
                    let name = format!("{at} parameter {}", p["name"]);
                    unbounded(&doc, &p["schema"], &name, &mut problems);
                    expected.push("400");
                }
                let body = &op["requestBody"]["content"]["application/json"]["schema"];
                if !body.is_null() {
                    unbounded(&doc, body, &format!("{at} body"), &mut problems);
                    expected.extend(["400", "413", "415", "422"]);
                }
                for status in expected {
                    if op["responses"][status].is_null() {
                        problems.push(format!("{at}: status {status} is not documented"));
                    }
                }
            }
        }
        assert!(operations >= 25, "only {operations} operations");
        assert!(problems.is_empty(), "{problems:#?}");
    }

    #[test]
    fn the_walker_sees_an_unbounded_input() {
        let doc = serde_json::json!({});
        let mut out = Vec::new();
        let schema = serde_json::json!({
            "type": "object", "additionalProperties": false,
            "properties": {
                "name": {"type": "string"},
                "n": {"type": "integer", "minimum": 1},
                "ids": {"type": "array", "items": {"type": "string", "maxLength": 3}},
                "open": {"type": "object"},
                "ok": {"type": ["string", "null"], "maxLength": 9},
            },
        });
        unbounded(&doc, &schema, "body", &mut out);
        assert_eq!(out.len(), 4, "{out:#?}");
    }
}
