//! JSON (and Bun's JSON with trailing commas) read into a small tree that remembers the line
//! of every object key and value, so entries can be pointed at. Parsing is `jsonc-parser`'s.

use crate::error::ErrorKind;
use crate::text::LineIndex;
use jsonc_parser::ast;
use jsonc_parser::{CollectOptions, CommentCollectionStrategy, ParseOptions};

/// A JSON value with the 1-based line it starts on.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub line: u32,
    pub value: Value,
}

/// A JSON value. Numbers keep their text.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Null,
    Bool(bool),
    Number(String),
    String(String),
    Array(Vec<Node>),
    /// Members in file order; `u32` is the line of the key.
    Object(Vec<(String, u32, Node)>),
}

/// Which relaxations of JSON a format allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// RFC 8259 JSON: npm, Pipenv, Composer.
    Strict,
    /// JSON plus comments and trailing commas: Bun's `bun.lock`.
    Jsonc,
}

/// Parses `text` as one JSON document.
pub(crate) fn parse(text: &str, dialect: Dialect) -> Result<Node, ErrorKind> {
    let relaxed = dialect == Dialect::Jsonc;
    let options = ParseOptions {
        allow_comments: relaxed,
        allow_loose_object_property_names: false,
        allow_trailing_commas: relaxed,
        allow_missing_commas: false,
        allow_single_quoted_strings: false,
        allow_hexadecimal_numbers: false,
        allow_unary_plus_numbers: false,
        allow_bare_decimal_point_numbers: false,
        allow_non_finite_numbers: false,
        allow_extended_string_escapes: false,
    };
    let collect = CollectOptions {
        comments: CommentCollectionStrategy::Off,
        tokens: false,
    };
    let lines = LineIndex::new(text);
    let result = jsonc_parser::parse_to_ast(text, &collect, &options)
        .map_err(|e| ErrorKind::syntax(Some(lines.line(e.range().start)), e.kind()))?;
    let root = result
        .value
        .ok_or_else(|| ErrorKind::syntax(None, "empty document"))?;
    Ok(convert(root, &lines))
}

fn convert(value: ast::Value<'_>, lines: &LineIndex) -> Node {
    use jsonc_parser::common::Ranged;
    let line = lines.line(value.range().start);
    let value = match value {
        ast::Value::NullKeyword(_) => Value::Null,
        ast::Value::BooleanLit(b) => Value::Bool(b.value),
        ast::Value::NumberLit(n) => Value::Number(n.value.to_owned()),
        ast::Value::StringLit(s) => Value::String(s.value.into_owned()),
        ast::Value::Array(a) => {
            Value::Array(a.elements.into_iter().map(|v| convert(v, lines)).collect())
        }
        ast::Value::Object(o) => Value::Object(
            o.properties
                .into_iter()
                .map(|p| {
                    let key_line = lines.line(p.range.start);
                    (p.name.into_string(), key_line, convert(p.value, lines))
                })
                .collect(),
        ),
    };
    Node { line, value }
}

impl Node {
    /// The member `key` of an object (the first, if repeated).
    pub(crate) fn get(&self, key: &str) -> Option<&Node> {
        self.members()
            .iter()
            .find(|(k, _, _)| k == key)
            .map(|(_, _, v)| v)
    }

    /// An object's members; empty for anything else.
    pub(crate) fn members(&self) -> &[(String, u32, Node)] {
        match &self.value {
            Value::Object(m) => m,
            _ => &[],
        }
    }

    /// An array's elements; empty for anything else.
    pub(crate) fn elements(&self) -> &[Node] {
        match &self.value {
            Value::Array(e) => e,
            _ => &[],
        }
    }

    pub(crate) fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The string member `key`.
    pub(crate) fn str(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(Node::as_str)
    }

    /// The member `key` is `true`.
    pub(crate) fn flag(&self, key: &str) -> bool {
        matches!(self.get(key).map(|n| &n.value), Some(Value::Bool(true)))
    }

    pub(crate) fn is_object(&self) -> bool {
        matches!(self.value, Value::Object(_))
    }

    /// The keys of the object member `key` (`dependencies`, say).
    pub(crate) fn keys_of(&self, key: &str) -> impl Iterator<Item = &str> {
        self.get(key)
            .map(Node::members)
            .unwrap_or_default()
            .iter()
            .map(|(k, _, _)| k.as_str())
    }

    /// A number or string member `key` as text (`lockfileVersion` is a number, but check).
    pub(crate) fn scalar_text(&self, key: &str) -> Option<String> {
        match &self.get(key)?.value {
            Value::Number(n) => Some(n.clone()),
            Value::String(s) => Some(s.clone()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_carry_their_lines() {
        let doc = parse(
            "{\n  \"a\": {\n    \"b\": [1, \"x\"]\n  },\n  \"c\": true\n}",
            Dialect::Strict,
        )
        .unwrap();
        let (k, line, a) = &doc.members()[0];
        assert_eq!((k.as_str(), *line), ("a", 2));
        assert_eq!(a.members()[0].1, 3);
        assert_eq!(a.get("b").unwrap().elements()[1].as_str(), Some("x"));
        assert!(doc.flag("c"));
    }

    #[test]
    fn trailing_commas_only_in_jsonc() {
        let text = "{\"a\": [1, 2,],}";
        assert!(parse(text, Dialect::Jsonc).is_ok());
        let err = parse(text, Dialect::Strict).unwrap_err();
        assert!(
            matches!(err, ErrorKind::Syntax { line: Some(1), .. }),
            "{err:?}"
        );
        assert!(parse("", Dialect::Strict).is_err());
        assert!(parse("{\"a\": 1", Dialect::Strict).is_err());
    }
}
