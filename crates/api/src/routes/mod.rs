//! The `/api/v1` routes, one module per resource. Each module's `router()` registers its handlers
//! with `utoipa_axum::routes!`, which adds the route to axum and the operation to the OpenAPI
//! document in one step, so the document cannot list a route that is not served or miss one that
//! is.

mod connections;
mod findings;
mod org;
mod policies;
mod projects;
mod rule_packs;
mod scans;
mod tokens;
mod worker;

use crate::error::{ApiError, FieldError, Problem};
use crate::AppState;
use picket_db::DbError;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

pub use scans::MAX_BULK_SCAN;
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
        (name = "worker", description = "The worker protocol: one scan's worker, authenticated \
                                         by its per-scan token (`Authorization: Bearer pks_...`), \
                                         which works only for that scan's current attempt and \
                                         only while the scan is active"),
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
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(org::router())
        .merge(tokens::router())
        .merge(connections::router())
        .merge(projects::router())
        .merge(scans::router())
        .merge(findings::router())
        .merge(policies::router())
        .merge(rule_packs::router())
        .merge(worker::router())
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
