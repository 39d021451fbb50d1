//! From engine matches to Picket's finding identities (domain.md §3).
//!
//! The anchor is the whitespace-normalised text of the match's first line, read from the
//! checkout by byte offset (Semgrep's OSS output hides matched lines). picket-core numbers
//! findings that share rule, path and anchor and hashes the identity into a fingerprint.

use crate::semgrep::EngineFinding;
use picket_core::finding::{fingerprints, FindingLocation};
use picket_core::Fingerprint;
use std::collections::HashMap;
use std::path::Path;

/// The text of the match's first line: from its start to the end of that line or of the match.
pub fn anchor_of(content: &[u8], start: usize, end: usize) -> String {
    let start = start.min(content.len());
    let end = end.clamp(start, content.len());
    let first_line_end = content[start..end]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(end, |i| start + i);
    String::from_utf8_lossy(&content[start..first_line_end]).into_owned()
}

/// Reads files once each, caching their contents for the matches in them.
#[derive(Debug, Default)]
pub struct Files {
    cache: HashMap<std::path::PathBuf, Vec<u8>>,
}

impl Files {
    pub fn read(&mut self, path: &Path) -> &[u8] {
        self.cache
            .entry(path.to_path_buf())
            .or_insert_with(|| std::fs::read(path).unwrap_or_default())
    }
}

/// Fingerprints of `findings`, in order, with each finding's path replaced by `path_of` (a diff
/// scan maps base paths to their head names so a renamed file keeps its findings' identities).
pub fn identify(
    findings: &[&EngineFinding],
    root_dirs: &[&Path],
    files: &mut Files,
    path_of: impl Fn(&EngineFinding) -> String,
) -> Vec<Fingerprint> {
    let locations: Vec<FindingLocation> = findings
        .iter()
        .map(|f| {
            let content = files.read(&root_dirs[f.root].join(&f.path));
            FindingLocation {
                rule: f.rule.clone(),
                path: path_of(f),
                start_line: f.start_line,
                start_col: f.start_col,
                anchor: anchor_of(content, f.start_offset, f.end_offset),
            }
        })
        .collect();
    fingerprints(&locations)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchor_is_the_first_line_of_the_match() {
        let src = b"x = 1\n    return eval(\n        y)\n";
        let start = 17; // the `e` of eval
        assert_eq!(anchor_of(src, start, src.len() - 1), "eval(");
        assert_eq!(anchor_of(src, 0, 5), "x = 1");
        // Offsets past the end are clamped, never a panic.
        assert_eq!(anchor_of(src, 999, 1000), "");
    }
}
