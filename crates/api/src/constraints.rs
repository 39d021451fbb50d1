//! The rules the handlers check on strings, each defined once and used twice: the handler checks
//! a value with [`Text::verdict`], and the OpenAPI description states the same rule with
//! [`Text::schema`] (`minLength`, `maxLength`, `pattern`, and `not` for what the pattern cannot
//! say), so the description cannot promise a value the server refuses or refuse one it takes.
//!
//! Patterns are written in the subset that ECMA-262 (what JSON Schema specifies), Rust's `regex`
//! (what checks them here) and Python's `re` (what schemathesis generates from) read alike:
//! anchored with `^…$`, explicit character classes, `\xHH` and `\uHHHH` escapes, no `\s`, `\d`,
//! `\w`, `.` or lookaround. Lengths count Unicode scalar values, as JSON Schema's do.

use crate::error::ApiError;
use regex::Regex;
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use utoipa::openapi::extensions::Extensions;
use utoipa::openapi::schema::{
    AdditionalProperties, Object, ObjectBuilder, Schema, SchemaType, Type,
};

/// Characters no text field takes: C0 and C1 control characters (Unicode category Cc).
const NO_CONTROL: &str = r"^[^\x00-\x1f\x7f-\x9f]*$";

/// A rule for one string value.
#[derive(Debug, Clone, Copy)]
pub struct Text {
    /// Fewest characters.
    pub min: usize,
    /// Most characters.
    pub max: usize,
    /// A pattern the whole value must match.
    pub pattern: &'static str,
    /// Patterns that must match nowhere in the value.
    pub forbidden: &'static [&'static str],
    /// Values refused outright.
    pub reserved: &'static [&'static str],
    /// The rule in words, for error messages.
    pub expected: &'static str,
}

impl Text {
    /// Free text of `min..=max` characters without control characters.
    pub const fn plain(min: usize, max: usize, expected: &'static str) -> Text {
        Text {
            min,
            max,
            pattern: NO_CONTROL,
            forbidden: &[],
            reserved: &[],
            expected,
        }
    }

    /// `Ok` when `value` satisfies the rule, else what the rule expects.
    pub fn verdict(&self, value: &str) -> Result<(), String> {
        let n = value.chars().count();
        let ok = (self.min..=self.max).contains(&n)
            && regex(self.pattern).is_match(value)
            && !self.forbidden.iter().any(|p| regex(p).is_match(value))
            && !self.reserved.contains(&value);
        if ok {
            Ok(())
        } else {
            Err(self.expected.to_owned())
        }
    }

    /// Refuses a body field (422 `invalid_body` naming `field`).
    pub fn check(&self, field: &str, value: &str) -> Result<(), ApiError> {
        self.verdict(value)
            .map_err(|expected| ApiError::invalid_body(field, format!("must be {expected}")))
    }

    /// Refuses a query parameter (400 `invalid_query` naming `field`).
    pub fn check_query(&self, field: &str, value: &str) -> Result<(), ApiError> {
        self.verdict(value)
            .map_err(|expected| ApiError::invalid_query(field, format!("must be {expected}")))
    }

    /// The rule as a JSON Schema string.
    pub fn schema(&self) -> Object {
        self.build(false)
    }

    /// The rule, or `null`.
    pub fn nullable_schema(&self) -> Object {
        self.build(true)
    }

    fn build(&self, nullable: bool) -> Object {
        let ty = if nullable {
            SchemaType::from_iter([Type::String, Type::Null])
        } else {
            SchemaType::Type(Type::String)
        };
        let mut refused: Vec<serde_json::Value> = self
            .forbidden
            .iter()
            // `type` keeps `null` (of a nullable rule) out of what `not` refuses.
            .map(|p| serde_json::json!({ "type": "string", "pattern": p }))
            .collect();
        if !self.reserved.is_empty() {
            refused.push(serde_json::json!({ "enum": self.reserved }));
        }
        let mut b = ObjectBuilder::new()
            .schema_type(ty)
            .min_length(Some(self.min))
            .max_length(Some(self.max))
            .pattern(Some(self.pattern))
            .description(Some(self.expected));
        if !refused.is_empty() {
            // utoipa has no `not`; its extensions map is written into the schema as it is, so it
            // carries the keyword (a JSON Schema 2020-12 `not`, which OpenAPI 3.1 takes).
            b = b.extensions(Some(keywords([(
                "not",
                serde_json::json!({ "anyOf": refused }),
            )])));
        }
        b.build()
    }
}

/// A closed object (`additionalProperties: false`, as `deny_unknown_fields` makes the body):
/// its properties and which are required.
pub fn closed_object(
    properties: Vec<(&str, Schema)>,
    required: &[&str],
    description: &str,
) -> Object {
    let mut b = ObjectBuilder::new()
        .schema_type(Type::Object)
        .additional_properties(Some(AdditionalProperties::FreeForm(false)))
        .description(Some(description));
    for (name, schema) in properties {
        b = b.property(name, schema);
    }
    for name in required {
        b = b.required(*name);
    }
    b.build()
}

/// A string that must be `value`.
pub fn literal(value: &str) -> Schema {
    Schema::Object(
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some([value]))
            .build(),
    )
}

/// Only `null` (a field that may be sent as `null` but not with a value).
pub fn null_only() -> Schema {
    Schema::Object(ObjectBuilder::new().schema_type(Type::Null).build())
}

/// JSON Schema keywords utoipa's builders lack, to add to a schema through its extensions map.
pub fn keywords<const N: usize>(pairs: [(&str, serde_json::Value); N]) -> Extensions {
    pairs.into_iter().collect()
}

/// One compiled [`Regex`] per pattern, for the life of the process.
fn regex(pattern: &'static str) -> Regex {
    static CACHE: OnceLock<Mutex<HashMap<&'static str, Regex>>> = OnceLock::new();
    let mut cache = CACHE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    cache
        .entry(pattern)
        .or_insert_with(|| Regex::new(pattern).expect("constraint patterns are valid"))
        .clone()
}

/// Characters a git ref name never holds here: control characters, whitespace (Unicode's
/// White_Space) and `~ ^ : ? * [ \`, as `git check-ref-format` refuses them.
macro_rules! ref_class {
    ($first:literal) => {
        concat!(
            "[^",
            $first,
            r"\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000~^:?*\[\\]"
        )
    };
}

/// A branch or other git ref: what `git check-ref-format` refuses that a scan would fail on.
pub const GIT_REF: Text = Text {
    min: 1,
    max: 255,
    pattern: concat!("^", ref_class!("-"), ref_class!(""), "*$"),
    forbidden: &[r"\.\.", r"\.lock$", r"/$"],
    reserved: &[],
    expected: "a git ref name: 1-255 characters, no whitespace, control characters or \
               ~ ^ : ? * [ \\, not starting with `-`, without `..`, not ending with `/` or `.lock`",
};

/// A full commit SHA-1.
pub const COMMIT_SHA: Text = Text {
    min: 40,
    max: 40,
    pattern: "^[0-9a-fA-F]{40}$",
    forbidden: &[],
    reserved: &[],
    expected: "a full commit SHA (40 hex digits)",
};

/// An object id in a path.
pub const UUID: Text = Text {
    min: 36,
    max: 36,
    pattern: "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$",
    forbidden: &[],
    reserved: &[],
    expected: "a UUID (8-4-4-4-12 hex digits)",
};

/// A policy's name (picket-db's `policies::valid_name`, the table's CHECK).
pub const POLICY_NAME: Text = Text {
    min: 1,
    max: 100,
    pattern: "^[A-Za-z0-9][A-Za-z0-9 ._-]*$",
    forbidden: &[],
    reserved: &["effective"],
    expected: "1-100 characters of A-Z a-z 0-9 space . _ -, starting with a letter or digit, \
               and not `effective`",
};

/// A rule pack's name (picket-db's `rule_packs::valid_name`, the table's CHECK).
/// An OSV record id (`GHSA-…`, `PYSEC-…`, `RUSTSEC-…`, `GO-…`, `CVE-…`), as
/// `migrations/20261203100000_advisories.sql` checks it.
pub const ADVISORY_ID: Text = Text {
    min: 1,
    max: 200,
    pattern: "^[A-Za-z0-9][A-Za-z0-9._:-]*$",
    forbidden: &[],
    reserved: &[],
    expected: "an OSV id: 1-200 characters of A-Z a-z 0-9 . _ : -, starting with a letter or digit",
};

pub const RULE_PACK_NAME: Text = Text {
    min: 1,
    max: 100,
    pattern: "^[A-Za-z0-9][A-Za-z0-9 ._-]*$",
    forbidden: &[],
    reserved: &[],
    expected: "1-100 characters of A-Z a-z 0-9 space . _ -, starting with a letter or digit",
};

/// A rule id (picket-core's `RuleId`).
pub const RULE_ID: Text = Text {
    min: 1,
    max: picket_core::RuleId::MAX_LEN,
    pattern: "^[A-Za-z0-9._/:-]*$",
    forbidden: &[],
    reserved: &[],
    expected: "1-200 characters of A-Z a-z 0-9 . _ - / :",
};

/// A display name: orgs, tokens, connections.
pub const NAME: Text = Text::plain(1, 200, "1-200 characters, no control characters");
/// A repository's provider id or full name.
pub const REPO_TEXT: Text = Text::plain(1, 300, "1-300 characters, no control characters");
/// A clone URL as stored.
pub const CLONE_URL: Text = Text::plain(1, 2000, "1-2000 characters, no control characters");
/// A project's default branch as stored.
pub const BRANCH: Text = Text::plain(1, 255, "1-255 characters, no control characters");
/// Why a finding is ignored.
pub const REASON: Text = Text::plain(1, 1000, "1-1000 characters, no control characters");
/// A self-hosted provider's API base URL, or empty for the public cloud.
pub const BASE_URL: Text = Text {
    min: 0,
    max: 2000,
    pattern: r"^(https?://[^\x00-\x1f\x7f-\x9f]*)?$",
    forbidden: &[],
    reserved: &[],
    expected: "empty, or an https:// or http:// URL of at most 2000 characters without \
               control characters",
};
/// Unicode White_Space that is not a control character (those are refused anyway).
macro_rules! spaces {
    () => {
        r"[ \xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    };
}

/// One project path ignore, as far as a schema can say: 1-500 characters without control
/// characters, not blank, not a comment (`#`) or a directive (`:include`). It must also compile
/// as a gitignore glob (picket-engine's `targets::check_pattern`).
pub const PATH_IGNORE: Text = Text {
    min: 1,
    max: 500,
    pattern: NO_CONTROL,
    forbidden: &[
        concat!("^", spaces!(), "*$"),
        concat!("^", spaces!(), "*[#:]"),
    ],
    reserved: &[],
    expected: "a gitignore pattern of 1-500 characters without control characters, not blank, \
               not a comment (#) or a directive (:)",
};

/// A webhook secret: what the provider signs deliveries with (GitHub takes any text).
pub const WEBHOOK_SECRET: Text = Text::plain(16, 256, "16-256 characters, no control characters");
/// A provider's delivery id, as the delivery log keys it (GitHub's are GUIDs).
pub const DELIVERY_ID: Text = Text::plain(1, 100, "1-100 characters, no control characters");

/// A substring or prefix filter on a listing.
pub const FILTER: Text = Text::plain(0, 1000, "at most 1000 characters, no control characters");

// `schema_with` functions: the schemas of the rules above.
macro_rules! schema_fns {
    ($($rule:ident => $plain:ident, $nullable:ident;)*) => {$(
        #[doc = concat!("[`", stringify!($rule), "`] as a schema.")]
        pub fn $plain() -> Object {
            $rule.schema()
        }
        #[doc = concat!("[`", stringify!($rule), "`] or `null`, as a schema.")]
        pub fn $nullable() -> Object {
            $rule.nullable_schema()
        }
    )*};
}

schema_fns! {
    NAME => name, name_opt;
    REPO_TEXT => repo_text, repo_text_opt;
    CLONE_URL => clone_url, clone_url_opt;
    BRANCH => branch, branch_opt;
    REASON => reason, reason_opt;
    BASE_URL => base_url, base_url_opt;
    FILTER => filter, filter_opt;
    GIT_REF => git_ref, git_ref_opt;
    COMMIT_SHA => commit_sha, commit_sha_opt;
    RULE_ID => rule_id, rule_id_opt;
    PATH_IGNORE => path_ignore, path_ignore_opt;
    WEBHOOK_SECRET => webhook_secret, webhook_secret_opt;
    DELIVERY_ID => delivery_id, delivery_id_opt;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_refs() {
        for ok in [
            "main",
            "feature/x-1",
            "release-1.2",
            "a.b",
            "ünïcode",
            "v1.lockx",
            "x-",
        ] {
            assert!(GIT_REF.verdict(ok).is_ok(), "{ok}");
        }
        let long = "a".repeat(256);
        for bad in [
            "",
            "-x",
            "a..b",
            "x.lock",
            "x/",
            "a b",
            "a\tb",
            "a\u{a0}b",
            "a\u{3000}b",
            "a~b",
            "a^b",
            "a:b",
            "a?b",
            "a*b",
            "a[b",
            "a\\b",
            "a\u{85}b",
            long.as_str(),
        ] {
            assert!(GIT_REF.verdict(bad).is_err(), "{bad:?}");
        }
        assert!(
            GIT_REF.verdict(&"é".repeat(255)).is_ok(),
            "characters, not bytes"
        );
    }

    #[test]
    fn names_follow_the_database_checks() {
        for name in [
            "default",
            "a",
            "A b.c_d-e",
            " x",
            "-x",
            "x\n",
            "effective",
            "é",
            "",
        ] {
            assert_eq!(
                POLICY_NAME.verdict(name).is_ok(),
                picket_db::policies::valid_name(name),
                "{name:?}"
            );
            assert_eq!(
                RULE_PACK_NAME.verdict(name).is_ok(),
                picket_db::rule_packs::valid_name(name),
                "{name:?}"
            );
        }
        let long = "a".repeat(101);
        assert!(!picket_db::policies::valid_name(&long) && POLICY_NAME.verdict(&long).is_err());
    }

    #[test]
    fn rule_ids_follow_the_core_type() {
        let long = "a".repeat(201);
        for id in [
            "picket.python.x",
            "a/b:c-d_e",
            "",
            "a b",
            "é",
            long.as_str(),
        ] {
            assert_eq!(
                RULE_ID.verdict(id).is_ok(),
                id.parse::<picket_core::RuleId>().is_ok(),
                "{id:?}"
            );
        }
    }

    #[test]
    fn path_ignores_follow_the_engine_check() {
        for p in [
            "vendor/",
            "*.min.js",
            " x",
            "#x",
            " #x",
            ":include x",
            "\u{3000}:x",
            "",
            " ",
            "\u{a0}",
            "a\tb",
            "!keep.js",
            "x\u{3000}",
        ] {
            let engine_ok = picket_engine::targets::check_pattern(p).is_ok();
            // The engine also refuses globs that do not compile; those pass the rule.
            assert!(
                PATH_IGNORE.verdict(p).is_ok() || !engine_ok,
                "{p:?}: the rule refuses what the engine takes"
            );
            if PATH_IGNORE.verdict(p).is_ok() {
                assert!(engine_ok, "{p:?}: the engine refuses what the rule takes");
            }
        }
    }

    #[test]
    fn plain_text_refuses_control_characters_only() {
        let t = Text::plain(1, 3, "x");
        assert!(t.verdict("a b").is_ok());
        assert!(t.verdict("😀é ").is_ok());
        for bad in ["", "abcd", "a\u{0}", "a\u{7f}", "a\u{9f}"] {
            assert!(t.verdict(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn schemas_state_the_rule() {
        let s = serde_json::to_value(GIT_REF.schema()).unwrap();
        assert_eq!(s["minLength"], 1);
        assert_eq!(s["maxLength"], 255);
        assert_eq!(s["not"]["anyOf"][0]["pattern"], r"\.\.");
        assert_eq!(s["not"]["anyOf"][0]["type"], "string");
        let s = serde_json::to_value(POLICY_NAME.nullable_schema()).unwrap();
        assert_eq!(s["type"], serde_json::json!(["string", "null"]));
        assert_eq!(s["not"]["anyOf"][0]["enum"][0], "effective");
    }
}
