//! Mapping picket-core's enums to the Postgres enums of the same names.
//!
//! Core knows nothing of sqlx, so the mapping lives here: [`PgEnum`] names the Postgres type of each
//! core enum and [`Pg`] wraps a value so it can be bound and decoded. In compile-checked queries,
//! decode with an override (`state AS "state: Pg<ScanState>"`) and bind with a text cast
//! (`$1::text::scan_state`, binding `state.as_str()`).

use picket_core::{
    FindingStatus, Product, Provider, Role, RuleMode, ScanKind, ScanState, ScanTrigger, Severity,
};
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgArgumentBuffer, PgTypeInfo, PgValueRef};
use sqlx::{Decode, Encode, Postgres, Type};
use std::str::FromStr;

/// A core enum stored as a Postgres enum.
pub trait PgEnum: Sized + Copy + FromStr + 'static {
    const TYPE_NAME: &'static str;
    const VARIANTS: &'static [Self];
    fn as_str(self) -> &'static str;
}

/// A core enum value as sqlx sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pg<T>(pub T);

impl<T: PgEnum> Type<Postgres> for Pg<T> {
    fn type_info() -> PgTypeInfo {
        PgTypeInfo::with_name(T::TYPE_NAME)
    }
}

impl<'r, T: PgEnum> Decode<'r, Postgres> for Pg<T> {
    fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
        let s = <&str as Decode<Postgres>>::decode(value)?;
        T::from_str(s)
            .map(Pg)
            .map_err(|_| format!("unknown {} value {s:?}", T::TYPE_NAME).into())
    }
}

impl<T: PgEnum> Encode<'_, Postgres> for Pg<T> {
    fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        <&str as Encode<Postgres>>::encode(self.0.as_str(), buf)
    }
}

macro_rules! pg_enum {
    ($ty:ty, $name:literal) => {
        impl PgEnum for $ty {
            const TYPE_NAME: &'static str = $name;
            const VARIANTS: &'static [Self] = &<$ty>::ALL;
            fn as_str(self) -> &'static str {
                <$ty>::as_str(self)
            }
        }
    };
}

pg_enum!(ScanKind, "scan_kind");
pg_enum!(ScanTrigger, "scan_trigger");
pg_enum!(ScanState, "scan_state");
pg_enum!(Product, "product");
pg_enum!(Severity, "severity");
pg_enum!(FindingStatus, "finding_status");
pg_enum!(RuleMode, "rule_mode");
pg_enum!(Role, "token_role");
pg_enum!(Provider, "vcs_provider");

/// The string forms of a list of states, for `= ANY($1::text[]::scan_state[])`.
pub fn state_names(states: &[ScanState]) -> Vec<String> {
    states.iter().map(|s| s.as_str().to_owned()).collect()
}

/// The names of objects addressed by name within an org (policies, rule packs): 1-100
/// characters of `A-Z a-z 0-9 space . _ -`, starting with a letter or digit. Mirrors the
/// tables' CHECKs, so callers can refuse bad names before touching the database.
pub fn valid_object_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphanumeric())
        && name.len() <= 100
        && bytes.all(|b| b.is_ascii_alphanumeric() || b" ._-".contains(&b))
}
