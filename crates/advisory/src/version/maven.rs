//! Maven versions, as `org.apache.maven.artifact.versioning.ComparableVersion` orders them: the
//! class of Maven 3.8 (`maven-artifact`, the one Debian ships in `libmaven3-core-java`; see
//! <https://maven.apache.org/ref/3.8.7/maven-artifact/apidocs/org/apache/maven/artifact/versioning/ComparableVersion.html>).
//!
//! Parsing (any string is a version):
//! - lowercased; split into items at `.` and `-` and at every switch between digits and
//!   letters; an empty item is `0`;
//! - a `-`, and a switch between digits and letters, opens a nested list holding the rest; a
//!   qualifier followed by digits or ending the version also goes into a list of its own when
//!   the current list already holds something (`1.0.jre8` is `[1, [jre, [8]]]`);
//! - a one-letter item directly followed by a digit is a qualifier's short form (`a1` is
//!   `alpha-1`, `b` beta, `m` milestone); `ga`, `final` and `release` mean the empty qualifier
//!   and `cr` means `rc`;
//! - each list then drops its trailing "null" items (`0`, the empty qualifier, empty lists),
//!   walking back from the end past nested lists.
//!
//! Order: numbers by value; known qualifiers `alpha < beta < milestone < rc < snapshot < "" <
//! sp`, unknown ones after them, between themselves by Java's `String.compareTo`; a number is
//! greater than a qualifier or a list; a list is greater than a qualifier; a missing item
//! compares like a `0` against a number, like the empty qualifier against a qualifier.
//!
//! This is why `1.0.0-beta10` sorts before `1.0.0-beta.9`: `beta10` holds the nested list
//! `[10]`, which is less than the number `9` in `beta.9`.

use std::cmp::Ordering;

/// The known qualifiers, in order; `""` is the release itself.
const QUALIFIERS: [&str; 7] = ["alpha", "beta", "milestone", "rc", "snapshot", "", "sp"];

/// A Maven version.
#[derive(Debug, Clone)]
pub struct MavenVersion {
    items: Vec<Item>,
}

#[derive(Debug, Clone)]
enum Item {
    /// Decimal digits without leading zeros (`"0"` for zero): length then bytes is the value.
    Int(String),
    /// A qualifier, aliases resolved, as its comparable form (`"3"` for `rc`, `"7-foo"` for an
    /// unknown `foo`).
    Qualifier(String),
    List(Vec<Item>),
}

impl Item {
    fn number(digits: &str) -> Item {
        let trimmed = digits.trim_start_matches('0');
        Item::Int(if trimmed.is_empty() { "0" } else { trimmed }.to_owned())
    }

    fn qualifier(value: &str, followed_by_digit: bool) -> Item {
        let value = match (followed_by_digit, value) {
            (true, "a") => "alpha",
            (true, "b") => "beta",
            (true, "m") => "milestone",
            (_, "ga" | "final" | "release") => "",
            (_, "cr") => "rc",
            (_, other) => other,
        };
        let comparable = match QUALIFIERS.iter().position(|q| *q == value) {
            Some(i) => i.to_string(),
            None => format!("{}-{value}", QUALIFIERS.len()),
        };
        Item::Qualifier(comparable)
    }

    fn is_null(&self) -> bool {
        match self {
            Item::Int(n) => n == "0",
            Item::Qualifier(q) => q == RELEASE,
            Item::List(items) => items.is_empty(),
        }
    }
}

/// The comparable form of the empty qualifier (the release): its index in [`QUALIFIERS`].
const RELEASE: &str = "5";

impl MavenVersion {
    /// Parses like `new ComparableVersion(version)`; every string is accepted.
    pub fn parse(version: &str) -> MavenVersion {
        let lower = version.to_lowercase();
        // The open lists, innermost last; an item goes into the innermost one.
        let mut stack: Vec<Vec<Item>> = vec![Vec::new()];
        let mut is_digit = false;
        let mut current = String::new();
        fn item(digit: bool, s: &str) -> Item {
            if digit {
                Item::number(s)
            } else {
                Item::qualifier(s, false)
            }
        }
        // A qualifier followed by digits, or ending the version, starts a list of its own
        // unless the current list is still empty (Maven 3.8.7's `parseVersion`, read from the
        // bytecode of Debian's maven-artifact: `1.0.jre8` is `[1, [jre, [8]]]`).
        fn open_unless_empty(stack: &mut Vec<Vec<Item>>) {
            if stack.last().is_some_and(|list| !list.is_empty()) {
                stack.push(Vec::new());
            }
        }
        fn push(stack: &mut [Vec<Item>], it: Item) {
            if let Some(list) = stack.last_mut() {
                list.push(it);
            }
        }
        for c in lower.chars() {
            match c {
                '.' | '-' => {
                    let it = if current.is_empty() {
                        Item::Int("0".to_owned())
                    } else {
                        item(is_digit, &current)
                    };
                    push(&mut stack, it);
                    current.clear();
                    if c == '-' {
                        stack.push(Vec::new());
                    }
                }
                c if c.is_ascii_digit() => {
                    if !is_digit && !current.is_empty() {
                        open_unless_empty(&mut stack);
                        push(&mut stack, Item::qualifier(&current, true));
                        current.clear();
                        stack.push(Vec::new());
                    }
                    is_digit = true;
                    current.push(c);
                }
                c => {
                    if is_digit && !current.is_empty() {
                        push(&mut stack, Item::number(&current));
                        current.clear();
                        stack.push(Vec::new());
                    }
                    is_digit = false;
                    current.push(c);
                }
            }
        }
        if !current.is_empty() {
            if !is_digit {
                open_unless_empty(&mut stack);
            }
            push(&mut stack, item(is_digit, &current));
        }
        // Close the nested lists innermost first, each normalised before it joins its parent.
        while stack.len() > 1 {
            let mut list = stack.pop().unwrap_or_default();
            normalize(&mut list);
            push(&mut stack, Item::List(list));
        }
        let mut items = stack.pop().unwrap_or_default();
        normalize(&mut items);
        MavenVersion { items }
    }
}

/// `ListItem.normalize()`: drop null items from the end, walking back past nested lists.
fn normalize(list: &mut Vec<Item>) {
    let mut i = list.len();
    while i > 0 {
        i -= 1;
        if list[i].is_null() {
            list.remove(i);
        } else if !matches!(list[i], Item::List(_)) {
            break;
        }
    }
}

/// Java's `String.compareTo`: UTF-16 code units.
fn java_string_cmp(a: &str, b: &str) -> Ordering {
    a.encode_utf16().cmp(b.encode_utf16())
}

/// `Item.compareTo(other)`, `None` standing for a missing item (Java's `null`).
fn compare(left: &Item, right: Option<&Item>) -> Ordering {
    match (left, right) {
        (Item::Int(n), None) => {
            if n == "0" {
                Ordering::Equal
            } else {
                Ordering::Greater
            }
        }
        (Item::Int(a), Some(Item::Int(b))) => a.len().cmp(&b.len()).then_with(|| a.cmp(b)),
        (Item::Int(_), Some(_)) => Ordering::Greater,
        (Item::Qualifier(q), None) => java_string_cmp(q, RELEASE),
        (Item::Qualifier(_), Some(Item::Int(_) | Item::List(_))) => Ordering::Less,
        (Item::Qualifier(a), Some(Item::Qualifier(b))) => java_string_cmp(a, b),
        (Item::List(items), None) => match items.first() {
            None => Ordering::Equal,
            Some(first) => compare(first, None),
        },
        (Item::List(_), Some(Item::Int(_))) => Ordering::Less,
        (Item::List(_), Some(Item::Qualifier(_))) => Ordering::Greater,
        (Item::List(a), Some(Item::List(b))) => compare_lists(a, b),
    }
}

fn compare_lists(a: &[Item], b: &[Item]) -> Ordering {
    for i in 0..a.len().max(b.len()) {
        let ord = match (a.get(i), b.get(i)) {
            (Some(l), r) => compare(l, r),
            (None, Some(r)) => compare(r, None).reverse(),
            (None, None) => Ordering::Equal,
        };
        if ord != Ordering::Equal {
            return ord;
        }
    }
    Ordering::Equal
}

impl MavenVersion {
    /// The ecosystem's order (see the module's header).
    fn order(&self, other: &Self) -> Ordering {
        compare_lists(&self.items, &other.items)
    }
}

order_from!(MavenVersion);

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> MavenVersion {
        MavenVersion::parse(s)
    }

    #[test]
    fn qualifiers_and_their_aliases() {
        let ordered = [
            "1-alpha",
            "1-a1",
            "1-beta",
            "1-milestone",
            "1-rc",
            "1-snapshot",
            "1",
            "1-sp",
            "1-foo",
            "1.1",
        ];
        for pair in ordered.windows(2) {
            assert!(v(pair[0]) < v(pair[1]), "{} < {}", pair[0], pair[1]);
        }
        assert_eq!(v("1-ga"), v("1"));
        assert_eq!(v("1.0.0.final"), v("1"));
        assert_eq!(v("1-cr1"), v("1-rc-1"));
        assert_eq!(v("1.0-RC1"), v("1.0-rc1"));
    }

    #[test]
    fn a_nested_number_sorts_before_a_plain_one() {
        assert!(v("1.0.0-beta10") < v("1.0.0-beta.9"));
        assert!(v("1-1") < v("1.1"));
        assert!(v("1.0.0-beta9") < v("1.0.0-beta10"));
        // Maven 3.8: `jre8` is a list of its own, as if written `1-jre-8`.
        assert_eq!(v("1.0.jre8"), v("1-jre-8"));
        assert!(v("1.0.jre8") < v("1-1"));
        assert_eq!(v("1.0.RELEASE"), v("1"));
    }
}
