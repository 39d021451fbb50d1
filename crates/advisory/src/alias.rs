//! One vulnerability, reported by several databases, as one group.
//!
//! A record's `aliases` name the same vulnerability in other databases (CVE, GHSA, PYSEC,
//! RUSTSEC, GO, …): aliasing is symmetric and transitive, so the groups are the connected
//! components of the graph whose edges join each record's id to each of its aliases
//! (<https://ossf.github.io/osv-schema/#aliases-field>). `related` ids are different
//! vulnerabilities and join nothing. A withdrawn record joins nothing either: a record is
//! often withdrawn precisely because it wrongly duplicated another.

use crate::osv::Record;
use std::collections::{BTreeMap, BTreeSet};

/// A set of ids that name one vulnerability.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VulnerabilityGroup {
    /// The group's key: its earliest CVE id (by year, then number) if it has one, else its
    /// least GHSA id, else its least id (compared as strings). It depends only on the ids in the group, never on the order
    /// records were read in; it changes only when the group gains an id that sorts first by
    /// that rule (a new CVE alias, or a record that joins two groups).
    pub key: String,
    /// The ids of the records given that belong to the group, sorted.
    pub records: Vec<String>,
    /// Every id of the group, records' and aliases' alike, sorted.
    pub ids: Vec<String>,
}

/// Groups `records` by aliasing, transitively. Every record not withdrawn is in exactly one
/// group; groups are sorted by key.
pub fn group_aliases<'a>(records: impl IntoIterator<Item = &'a Record>) -> Vec<VulnerabilityGroup> {
    let mut forest = Forest::default();
    let mut record_ids = BTreeSet::new();
    for record in records {
        if record.is_withdrawn() {
            continue;
        }
        let node = forest.node(&record.id);
        record_ids.insert(record.id.clone());
        for alias in &record.aliases {
            let other = forest.node(alias);
            forest.union(node, other);
        }
    }
    let mut components: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    for (id, node) in forest.ids.clone() {
        components.entry(forest.root(node)).or_default().push(id);
    }
    let mut groups: Vec<VulnerabilityGroup> = components
        .into_values()
        .filter_map(|mut ids| {
            ids.sort();
            let records: Vec<String> = ids
                .iter()
                .filter(|id| record_ids.contains(*id))
                .cloned()
                .collect();
            if records.is_empty() {
                return None;
            }
            Some(VulnerabilityGroup {
                key: group_key(&ids),
                records,
                ids,
            })
        })
        .collect();
    groups.sort_by(|a, b| a.key.cmp(&b.key));
    groups
}

/// See [`VulnerabilityGroup::key`]; `ids` is sorted and not empty.
fn group_key(ids: &[String]) -> String {
    ids.iter()
        .filter_map(|id| cve_number(id).map(|n| (n, id)))
        .min()
        .map(|(_, id)| id)
        .or_else(|| ids.iter().find(|id| id.starts_with("GHSA-")))
        .or_else(|| ids.first())
        .cloned()
        .unwrap_or_default()
}

/// `CVE-YYYY-NNNN…` as (year, number), so that `CVE-2020-8927` comes before `CVE-2020-36846`
/// (<https://www.cve.org/About/Process#CVERecordLifecycle>: the sequence number has 4 or more
/// digits).
fn cve_number(id: &str) -> Option<(u32, u64)> {
    let rest = id.strip_prefix("CVE-")?;
    let (year, number) = rest.split_once('-')?;
    Some((year.parse().ok()?, number.parse().ok()?))
}

/// Union-find over ids.
#[derive(Debug, Default)]
struct Forest {
    ids: BTreeMap<String, usize>,
    parent: Vec<usize>,
}

impl Forest {
    fn node(&mut self, id: &str) -> usize {
        if let Some(&n) = self.ids.get(id) {
            return n;
        }
        let n = self.parent.len();
        self.parent.push(n);
        self.ids.insert(id.to_owned(), n);
        n
    }

    fn root(&mut self, mut n: usize) -> usize {
        while self.parent[n] != n {
            self.parent[n] = self.parent[self.parent[n]];
            n = self.parent[n];
        }
        n
    }

    fn union(&mut self, a: usize, b: usize) {
        let (ra, rb) = (self.root(a), self.root(b));
        if ra != rb {
            self.parent[ra.max(rb)] = ra.min(rb);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, aliases: &[&str], withdrawn: bool) -> Record {
        let mut json = serde_json::json!({
            "id": id, "modified": "2024-01-01T00:00:00Z", "aliases": aliases,
        });
        if withdrawn {
            json["withdrawn"] = "2024-02-01T00:00:00Z".into();
        }
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn aliases_join_transitively_and_the_key_prefers_a_cve() {
        let records = [
            record("PYSEC-2021-1", &["GHSA-aaaa-bbbb-cccc"], false),
            record("GHSA-aaaa-bbbb-cccc", &["CVE-2021-9"], false),
            record("RUSTSEC-2020-1", &["GHSA-zzzz-yyyy-xxxx"], false),
            record("GO-2022-1", &[], false),
            record("GHSA-old0-old0-old0", &["CVE-2021-9", "GO-2022-1"], true),
        ];
        let groups = group_aliases(&records);
        let summary: Vec<(&str, Vec<&str>)> = groups
            .iter()
            .map(|g| {
                (
                    g.key.as_str(),
                    g.records.iter().map(String::as_str).collect(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("CVE-2021-9", vec!["GHSA-aaaa-bbbb-cccc", "PYSEC-2021-1"]),
                ("GHSA-zzzz-yyyy-xxxx", vec!["RUSTSEC-2020-1"]),
                ("GO-2022-1", vec!["GO-2022-1"]),
            ]
        );
        // The same records in another order give the same groups.
        let reversed: Vec<&Record> = records.iter().rev().collect();
        assert_eq!(group_aliases(reversed), groups);
    }
}
