//! Extractors whose every rejection is an [`ApiError`] problem, in the order a request meets them:
//! [`Caller`] (bearer token → 401), [`Admin`] (role → 403), or for the worker routes [`Worker`] /
//! [`ScanToken`] (per-scan token → 401), [`ApiPath`] (400 naming the path
//! parameter), [`ApiQuery`] (400 naming the query parameter), then [`ApiJson`] (415, 413, 400
//! `malformed_json`, 422 `invalid_body` naming the field path). axum runs a handler's extractors
//! left to right, so handlers list them in that order and a caller without rights learns nothing
//! about whether its request would have been valid.

use crate::constraints;
use crate::error::ApiError;
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use picket_core::Role;
use picket_core::{ConnectionId, FindingId, OrgId, ProjectId, ScanId, TokenId};
use picket_db::queue::Lease;
use picket_db::tokens;
use picket_db::worker::{self, TokenScan};
use serde::de::DeserializeOwned;

/// The authenticated caller: a live token of one org.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    pub token_id: TokenId,
    pub org_id: OrgId,
    pub role: Role,
}

impl Caller {
    /// Who moved a scan, as recorded in `scan_events.actor`.
    pub fn actor(&self) -> String {
        format!("api:{}", self.token_id)
    }
}

/// The token from an `Authorization: Bearer <token>` header. The scheme is case-insensitive
/// (RFC 9110 §11.1).
fn bearer(parts: &Parts) -> Result<&str, ApiError> {
    let value = parts
        .headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| ApiError::unauthorized("missing Authorization: Bearer token"))?
        .to_str()
        .map_err(|_| ApiError::unauthorized("the Authorization header is not a bearer token"))?;
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => Ok(token.trim()),
        _ => Err(ApiError::unauthorized(
            "the Authorization header is not a bearer token",
        )),
    }
}

/// A caller authenticated by the process itself: the web UI, whose session acts as an API token,
/// puts this on the requests it sends to the API router in process (never on a request from the
/// network, whose extensions start empty), so every action of the UI meets the very extractors,
/// validation and authorization a bearer request meets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InProcess(pub Caller);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(InProcess(caller)) = parts.extensions.get::<InProcess>() {
            let span = tracing::Span::current();
            span.record("org_id", tracing::field::display(caller.org_id));
            span.record("token_id", tracing::field::display(caller.token_id));
            return Ok(*caller);
        }
        let token = bearer(parts)?;
        // A string that cannot be a token is refused without a database round trip.
        if !tokens::looks_like_token(token) {
            return Err(ApiError::unauthorized("the bearer token is malformed"));
        }
        let record = tokens::authenticate(state.db().pool(), &tokens::hash(token))
            .await?
            .ok_or_else(|| ApiError::unauthorized("the token is unknown, revoked or expired"))?;
        let span = tracing::Span::current();
        span.record("org_id", tracing::field::display(record.org_id));
        span.record("token_id", tracing::field::display(record.id));
        Ok(Caller {
            token_id: record.id,
            org_id: record.org_id,
            role: record.role,
        })
    }
}

/// A caller holding an admin token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admin(pub Caller);

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = Caller::from_request_parts(parts, state).await?;
        match caller.role {
            Role::Admin => Ok(Admin(caller)),
            Role::Member => Err(ApiError::forbidden()),
        }
    }
}

/// The one answer to every per-scan token that does not authenticate: whether the token is
/// unknown, retired by a later attempt, or its scan ended, the caller learns nothing more.
pub(crate) fn scan_token_refused() -> ApiError {
    ApiError::unauthorized("the scan token is not valid for this request")
}

/// A per-scan token (`pks_…`) and the scan it was minted for, live or not. Only the results
/// upload takes this directly (a repeat of an upload may arrive after its scan ended); every
/// other worker route takes [`Worker`].
#[derive(Debug, Clone)]
pub struct ScanToken(pub TokenScan);

impl FromRequestParts<AppState> for ScanToken {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer(parts)?;
        // API tokens, and anything else that cannot be a scan token, never reach the database.
        if !worker::looks_like_scan_token(token) {
            return Err(scan_token_refused());
        }
        let scan = worker::authenticate(state.db().pool(), &worker::hash_scan_token(token))
            .await?
            .ok_or_else(scan_token_refused)?;
        let span = tracing::Span::current();
        span.record("org_id", tracing::field::display(scan.org_id));
        span.record("scan_id", tracing::field::display(scan.scan_id));
        Ok(ScanToken(scan))
    }
}

/// A scan's worker holding a live per-scan token: the scan is active and the token was minted
/// under its current lease, which the worker routes present to picket-db's fenced updates.
#[derive(Debug, Clone)]
pub struct Worker {
    pub scan: TokenScan,
    pub lease: Lease,
}

impl Worker {
    /// Refuses a request naming another attempt than the scan's (401, like a bad token).
    pub fn check_attempt(&self, attempt: i32) -> Result<(), ApiError> {
        if attempt == self.scan.attempt {
            Ok(())
        } else {
            Err(scan_token_refused())
        }
    }
}

impl FromRequestParts<AppState> for Worker {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let ScanToken(scan) = ScanToken::from_request_parts(parts, state).await?;
        match scan.lease.clone() {
            Some(lease) => Ok(Worker { scan, lease }),
            None => Err(scan_token_refused()),
        }
    }
}

/// A value taken from a single-parameter route path such as `/projects/{id}`. Its [`Self::RULE`]
/// is both what [`ApiPath`] checks and what the OpenAPI description states (`params(ApiPath<T>)`
/// on a route).
pub trait PathParam: Sized {
    /// The parameter's name in the route, used in errors.
    const NAME: &'static str;
    /// What the raw value must be.
    const RULE: constraints::Text;
    /// What it names, for the description.
    const DESCRIPTION: &'static str;
    /// Turns a value [`Self::RULE`] accepts into `Self`.
    fn parse(raw: &str) -> Result<Self, String>;
}

macro_rules! id_param {
    ($($ty:ty => $what:literal),*) => {$(
        impl PathParam for $ty {
            const NAME: &'static str = "id";
            const RULE: constraints::Text = constraints::UUID;
            const DESCRIPTION: &'static str = $what;
            fn parse(raw: &str) -> Result<Self, String> {
                raw.parse().map_err(|_| format!("{raw:?} is not a UUID"))
            }
        }
    )*};
}
id_param!(
    ProjectId => "Project id",
    ScanId => "Scan id",
    ConnectionId => "Connection id",
    TokenId => "Token id",
    FindingId => "Finding id"
);

impl<T: PathParam> utoipa::IntoParams for ApiPath<T> {
    fn into_params(
        _parameter_in: impl Fn() -> Option<utoipa::openapi::path::ParameterIn>,
    ) -> Vec<utoipa::openapi::path::Parameter> {
        use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
        vec![ParameterBuilder::new()
            .name(T::NAME)
            .parameter_in(ParameterIn::Path)
            .required(utoipa::openapi::Required::True)
            .description(Some(T::DESCRIPTION))
            .schema(Some(T::RULE.schema()))
            .build()]
    }
}

/// A policy's name in `/policies/{name}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyName(pub String);

impl PathParam for PolicyName {
    const NAME: &'static str = "name";
    const RULE: constraints::Text = constraints::POLICY_NAME;
    const DESCRIPTION: &'static str = "Policy name";
    fn parse(raw: &str) -> Result<Self, String> {
        Ok(PolicyName(raw.to_owned()))
    }
}

/// An OSV record id (or an alias of one) in `/advisories/{id}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdvisoryId(pub String);

impl PathParam for AdvisoryId {
    const NAME: &'static str = "id";
    const RULE: constraints::Text = constraints::ADVISORY_ID;
    const DESCRIPTION: &'static str = "OSV record id, or an alias of exactly one record";
    fn parse(raw: &str) -> Result<Self, String> {
        Ok(AdvisoryId(raw.to_owned()))
    }
}

/// A rule pack's name in `/rule-packs/{name}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RulePackName(pub String);

impl PathParam for RulePackName {
    const NAME: &'static str = "name";
    const RULE: constraints::Text = constraints::RULE_PACK_NAME;
    const DESCRIPTION: &'static str = "Rule pack name";
    fn parse(raw: &str) -> Result<Self, String> {
        Ok(RulePackName(raw.to_owned()))
    }
}

/// A typed path parameter; a value that does not parse is a 400 `invalid_path` naming it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiPath<T>(pub T);

impl<T: PathParam, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::invalid_path(T::NAME, e.body_text()))?;
        T::RULE
            .verdict(&raw)
            .and_then(|()| T::parse(&raw))
            .map(ApiPath)
            .map_err(|m| ApiError::invalid_path(T::NAME, m))
    }
}

/// Query parameters; an unknown parameter or a bad value is a 400 `invalid_query` naming it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or_default();
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(de)
            .map(ApiQuery)
            .map_err(|e| {
                let field = e.path().to_string();
                let message = e.into_inner().to_string();
                let field = if field == "." {
                    unknown_field(&message).unwrap_or(field)
                } else {
                    field
                };
                ApiError::invalid_query(field, message)
            })
    }
}

/// The field serde names in an "unknown field `x`" message.
fn unknown_field(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    rest.split_once('`').map(|(name, _)| name.to_owned())
}

/// A JSON request body. Requires `Content-Type: application/json` (or any `+json` type).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiJson<T>(pub T);

fn is_json(parts: &axum::http::HeaderMap) -> bool {
    let Some(ct) = parts
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = ct
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if !is_json(req.headers()) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "the body must be JSON, sent with Content-Type: application/json",
            ));
        }
        // `Bytes` honours the router's `DefaultBodyLimit`, whether or not Content-Length is sent.
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "body_too_large",
                    "the request body is larger than this server accepts",
                )
            } else {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "unreadable_body",
                    "the request body could not be read",
                )
            }
        })?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// Parses a JSON body, telling syntax errors (400 `malformed_json`) from well-formed JSON that does
/// not fit the expected shape (422 `invalid_body`, naming the path of the offending field).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // Syntax first, over the whole document: `{} {}` is malformed even though its first value
    // would already fail the shape check. `IgnoredAny` reads without building anything.
    serde_json::from_slice::<serde::de::IgnoredAny>(bytes).map_err(|e| malformed(&e))?;
    let mut de = serde_json::Deserializer::from_slice(bytes);
    // Every body is an object (see [`Object`]).
    let Object(value) = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => {
                let message = strip_position(&inner.to_string());
                let field = if path == "." {
                    unknown_field(&message).unwrap_or_else(|| "body".to_owned())
                } else {
                    path
                };
                ApiError::invalid_body(field, message)
            }
            _ => malformed(&inner),
        }
    })?;
    Ok(value)
}

fn malformed(e: &serde_json::Error) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "malformed_json",
        format!("the body is not valid JSON: {e}"),
    )
}

/// A struct read only from a JSON object. serde's derive also builds a struct from an array of
/// its fields in order (`[null, null]` for two optional fields), which no object schema allows;
/// this reads through `deserialize_map`, so anything but an object is refused ("invalid type:
/// sequence, expected a JSON object"). Every body is read through it, and nested structs with
/// [`objects`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object<T>(pub T);

impl<'de, T: serde::Deserialize<'de>> serde::Deserialize<'de> for Object<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Only<T>(std::marker::PhantomData<T>);
        impl<'de, T: serde::Deserialize<'de>> serde::de::Visitor<'de> for Only<T> {
            type Value = T;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(serde::de::value::MapAccessDeserializer::new(map))
            }
        }
        d.deserialize_map(Only(std::marker::PhantomData))
            .map(Object)
    }
}

/// A list of structs, each read only from a JSON object (see [`Object`]). For
/// `#[serde(deserialize_with = "crate::extract::objects")]`.
pub fn objects<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    let items = <Vec<Object<T>> as serde::Deserialize>::deserialize(d)?;
    Ok(items.into_iter().map(|Object(t)| t).collect())
}

/// Integer fields as JSON Schema counts integers: `3` and `3.0` alike (a number without a
/// fractional part), where serde's integer types take only the first. For
/// `#[serde(default, deserialize_with = "crate::extract::whole_number")]` on an `Option`.
pub fn whole_number<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<i64>,
{
    use serde::de::Error as _;
    let Some(n) = <Option<serde_json::Number> as serde::Deserialize>::deserialize(d)? else {
        return Ok(None);
    };
    let whole = n.as_i64().or_else(|| {
        n.as_f64()
            .filter(|f| f.fract() == 0.0 && (i64::MIN as f64..i64::MAX as f64).contains(f))
            .map(|f| f as i64)
    });
    whole
        .and_then(|i| T::try_from(i).ok())
        .map(Some)
        .ok_or_else(|| {
            D::Error::custom(format!("invalid value: {n}, expected an integer in range"))
        })
}

/// serde_json appends " at line L column C" to data errors; the field path says more.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Item {
        n: u32,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        items: Vec<Item>,
    }

    #[test]
    fn wrong_types_name_the_field_path() {
        let err = parse_json::<Body>(br#"{"items":[{"n":1},{"n":"x"}]}"#).unwrap_err();
        let p = err.problem();
        assert_eq!((p.status, p.code.as_str()), (422, "invalid_body"));
        assert_eq!(p.errors[0].field, "items[1].n");
    }

    #[test]
    fn unknown_fields_are_named() {
        let err = parse_json::<Body>(br#"{"items":[{"n":1,"extra":2}]}"#).unwrap_err();
        let p = err.problem();
        assert_eq!(p.code, "invalid_body");
        assert!(p.errors[0].field.contains("extra"), "{:?}", p.errors);
        let err = parse_json::<Body>(br#"{"items":[],"bogus":1}"#).unwrap_err();
        assert!(err.problem().errors[0].field.contains("bogus"));
    }

    #[test]
    fn structs_come_only_from_objects() {
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Opt {
            a: Option<u32>,
            b: Option<u32>,
        }
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Outer {
            #[serde(deserialize_with = "objects")]
            items: Vec<Opt>,
        }
        // serde alone takes both.
        assert!(serde_json::from_str::<Opt>("[null, null]").is_ok());
        let err = parse_json::<Opt>(b"[null, null]").unwrap_err().problem();
        assert_eq!((err.status, err.errors[0].field.as_str()), (422, "body"));
        let err = parse_json::<Outer>(br#"{"items": [{"a": 1}, [null, null]]}"#)
            .unwrap_err()
            .problem();
        assert_eq!(err.errors[0].field, "items[1]", "{err:?}");
        let err = parse_json::<Outer>(br#"{"items": [{"a": 1}, {"b": "x"}]}"#)
            .unwrap_err()
            .problem();
        assert_eq!(err.errors[0].field, "items[1].b", "{err:?}");
        assert!(parse_json::<Outer>(br#"{"items": [{"a": 1}, {}]}"#).is_ok());
    }

    #[test]
    fn syntax_errors_are_malformed() {
        for body in [&b"{"[..], b"", b"{\"items\":[]} x", b"nope"] {
            let err = parse_json::<Body>(body).unwrap_err();
            assert_eq!(err.problem().code, "malformed_json", "{body:?}");
        }
    }

    #[test]
    fn json_content_types() {
        let mut h = axum::http::HeaderMap::new();
        assert!(!is_json(&h));
        h.insert(
            header::CONTENT_TYPE,
            "application/json; charset=utf-8".parse().unwrap(),
        );
        assert!(is_json(&h));
        h.insert(
            header::CONTENT_TYPE,
            "application/merge-patch+json".parse().unwrap(),
        );
        assert!(is_json(&h));
        h.insert(header::CONTENT_TYPE, "text/plain".parse().unwrap());
        assert!(!is_json(&h));
    }
}
