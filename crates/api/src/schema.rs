//! OpenAPI schemas for values whose Rust types live in crates without utoipa (picket-core's enums,
//! picket-db's roles and providers). Each lists exactly the strings the type serializes to, taken
//! from the type's own `ALL` list, so the document cannot disagree with the wire format.

use picket_core::feedback::DraftFeedback;
use picket_core::triage::IgnoreReason;
use picket_core::Provider;
use picket_core::Role;
use picket_core::{FindingStatus, Product, RuleMode, ScanKind, ScanState, ScanTrigger, Severity};
use utoipa::openapi::schema::{Object, ObjectBuilder, SchemaType, Type};

fn strings(values: impl IntoIterator<Item = &'static str>, nullable: bool) -> Object {
    let ty = if nullable {
        SchemaType::from_iter([Type::String, Type::Null])
    } else {
        SchemaType::Type(Type::String)
    };
    let mut values: Vec<serde_json::Value> = values.into_iter().map(Into::into).collect();
    if nullable {
        values.push(serde_json::Value::Null);
    }
    ObjectBuilder::new()
        .schema_type(ty)
        .enum_values(Some(values))
        .build()
}

pub fn scan_state() -> Object {
    strings(ScanState::ALL.map(ScanState::as_str), false)
}

pub fn scan_state_opt() -> Object {
    strings(ScanState::ALL.map(ScanState::as_str), true)
}

pub fn scan_kind() -> Object {
    strings(ScanKind::ALL.map(ScanKind::as_str), false)
}

pub fn scan_trigger() -> Object {
    strings(ScanTrigger::ALL.map(ScanTrigger::as_str), false)
}

pub fn product() -> Object {
    strings(Product::ALL.map(Product::as_str), false)
}

pub fn product_opt() -> Object {
    strings(Product::ALL.map(Product::as_str), true)
}

pub fn severity() -> Object {
    strings(Severity::ALL.map(Severity::as_str), false)
}

pub fn severity_opt() -> Object {
    strings(Severity::ALL.map(Severity::as_str), true)
}

pub fn finding_status() -> Object {
    strings(FindingStatus::ALL.map(FindingStatus::as_str), false)
}

pub fn finding_status_opt() -> Object {
    strings(FindingStatus::ALL.map(FindingStatus::as_str), true)
}

pub fn draft_feedback() -> Object {
    strings(DraftFeedback::ALL.map(DraftFeedback::as_str), false)
}

pub fn draft_feedback_opt() -> Object {
    strings(DraftFeedback::ALL.map(DraftFeedback::as_str), true)
}

pub fn role() -> Object {
    strings(Role::ALL.map(Role::as_str), false)
}

pub fn provider() -> Object {
    strings(Provider::ALL.map(Provider::as_str), false)
}

pub fn ignore_reason() -> Object {
    strings(IgnoreReason::ALL.map(IgnoreReason::as_str), false)
}

pub fn ignore_reason_opt() -> Object {
    strings(IgnoreReason::ALL.map(IgnoreReason::as_str), true)
}

/// An RFC 3339 moment.
pub fn date_time() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
            utoipa::openapi::KnownFormat::DateTime,
        )))
        .max_length(Some(64))
        .build()
}

pub fn log_level() -> Object {
    strings(
        picket_core::protocol::LogLevel::ALL.map(picket_core::protocol::LogLevel::as_str),
        false,
    )
}

/// An RFC 3339 moment, or `null`.
pub fn date_time_opt() -> Object {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
            utoipa::openapi::KnownFormat::DateTime,
        )))
        .max_length(Some(64))
        .build()
}

pub fn provider_opt() -> Object {
    strings(Provider::ALL.map(Provider::as_str), true)
}

/// A map from rule id to mode.
pub fn rule_modes() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .additional_properties(Some(utoipa::openapi::Schema::Object(strings(
            RuleMode::ALL.map(RuleMode::as_str),
            false,
        ))))
        .description(Some("rule id → mode (monitor < comment < block)"))
        .build()
}

/// A rule map as a request sends it: at most [`crate::routes::MAX_POLICY_RULES`] rules, each key
/// a rule id.
pub fn rule_modes_input() -> Object {
    let mut o = rule_modes();
    o.max_properties = Some(crate::routes::MAX_POLICY_RULES);
    o.extensions = Some(crate::constraints::keywords([(
        "propertyNames",
        serde_json::to_value(crate::constraints::RULE_ID.schema()).unwrap_or_default(),
    )]));
    o
}

/// Changes to a rule map: rule id → mode, or `null` to take the rule out; at most
/// [`crate::routes::MAX_POLICY_RULES`] rules.
pub fn rule_mode_changes() -> Object {
    let mut o = ObjectBuilder::new()
        .schema_type(Type::Object)
        .additional_properties(Some(utoipa::openapi::Schema::Object(strings(
            RuleMode::ALL.map(RuleMode::as_str),
            true,
        ))))
        .description(Some(
            "rule id → mode (monitor < comment < block), or null to remove",
        ))
        .build();
    o.max_properties = Some(crate::routes::MAX_POLICY_RULES);
    o.extensions = Some(crate::constraints::keywords([(
        "propertyNames",
        serde_json::to_value(crate::constraints::RULE_ID.schema()).unwrap_or_default(),
    )]));
    o
}

/// Provider credentials as sent: a token string, an object of a few fields, or `null`.
/// Write-only. The same shape the connections route checks.
pub fn credentials() -> Object {
    use crate::routes::connections::{
        MAX_CREDENTIAL_CHARS, MAX_CREDENTIAL_FIELDS, MAX_CREDENTIAL_FIELD_NAME,
    };
    let shape = serde_json::json!([
        { "type": "string", "minLength": 1, "maxLength": MAX_CREDENTIAL_CHARS },
        {
            "type": "object",
            "minProperties": 1,
            "maxProperties": MAX_CREDENTIAL_FIELDS,
            "propertyNames": { "minLength": 1, "maxLength": MAX_CREDENTIAL_FIELD_NAME },
            "additionalProperties": {
                "type": ["string", "integer", "boolean"],
                "maxLength": MAX_CREDENTIAL_CHARS,
                "minimum": i64::MIN,
                "maximum": i64::MAX,
            },
        },
        { "type": "null" },
    ]);
    ObjectBuilder::new()
        .schema_type(SchemaType::AnyValue)
        .description(Some(
            "The provider's credentials: a token string of 1-16384 characters, or an object of \
             1-16 fields (names of 1-64 characters) whose values are strings of at most 16384 \
             characters, integers or booleans (e.g. a GitHub App's app_id, private_key, \
             webhook_secret). Encrypted at rest and never returned.",
        ))
        .write_only(Some(true))
        .extensions(Some(crate::constraints::keywords([("anyOf", shape)])))
        .build()
}

/// Weekdays as the API names them, Monday first (index = the stored weekday).
pub const WEEKDAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

pub fn weekday() -> Object {
    strings(WEEKDAYS, false)
}

pub fn ecosystem() -> Object {
    strings(
        picket_core::Ecosystem::ALL.map(picket_core::Ecosystem::as_str),
        false,
    )
}

pub fn ecosystems() -> utoipa::openapi::schema::Array {
    utoipa::openapi::schema::ArrayBuilder::new()
        .items(ecosystem())
        .build()
}
