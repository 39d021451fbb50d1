//! Byte offsets to 1-based line numbers.

/// Line starts of a text, to turn byte offsets into 1-based lines.
#[derive(Debug)]
pub(crate) struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    pub(crate) fn new(text: &str) -> LineIndex {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { starts }
    }

    /// The 1-based line holding byte `offset`.
    pub(crate) fn line(&self, offset: usize) -> u32 {
        let line = self.starts.partition_point(|&s| s <= offset);
        u32::try_from(line).unwrap_or(u32::MAX)
    }
}

/// The 1-based line holding byte `offset` of `bytes`.
pub(crate) fn line_of_offset(bytes: &[u8], offset: usize) -> u32 {
    let newlines = bytes[..offset.min(bytes.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count();
    u32::try_from(newlines + 1).unwrap_or(u32::MAX)
}

/// The lines of `text` with their 1-based numbers, without line terminators (`\n` or `\r\n`).
pub(crate) fn numbered_lines(text: &str) -> impl Iterator<Item = (u32, &str)> {
    text.split('\n').enumerate().map(|(i, l)| {
        (
            u32::try_from(i + 1).unwrap_or(u32::MAX),
            l.strip_suffix('\r').unwrap_or(l),
        )
    })
}

/// For each `[[package]]` table of a TOML lockfile, in order, the 1-based line of its
/// `version = ` key (the line that pins it), or of its header when it has none. The n-th is
/// the n-th element of the `package` array (TOML keeps the order of an array of tables): the
/// Cargo, Poetry, uv and PDM lockfiles, whose tools write every package that way.
pub(crate) fn package_table_lines(text: &str) -> Vec<u32> {
    let mut out: Vec<u32> = Vec::new();
    let mut in_package = false;
    let mut version_seen = false;
    for (n, l) in numbered_lines(text) {
        let l = l.trim();
        if l.starts_with('[') {
            in_package = l == "[[package]]";
            if in_package {
                out.push(n);
                version_seen = false;
            }
        } else if in_package && !version_seen && l.starts_with("version") {
            let after = l["version".len()..].trim_start();
            if after.starts_with('=') {
                if let Some(last) = out.last_mut() {
                    *last = n;
                }
                version_seen = true;
            }
        }
    }
    out
}

/// Deserialises a TOML lockfile; a syntax or shape error carries its line.
pub(crate) fn from_toml<T: serde::de::DeserializeOwned>(
    text: &str,
) -> Result<T, crate::error::ErrorKind> {
    toml::from_str(text).map_err(|e| {
        let line = e.span().map(|s| LineIndex::new(text).line(s.start));
        crate::error::ErrorKind::syntax(line, e.message())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_map_to_lines() {
        let idx = LineIndex::new("a\nbc\n\nd");
        assert_eq!(idx.line(0), 1);
        assert_eq!(idx.line(1), 1);
        assert_eq!(idx.line(2), 2);
        assert_eq!(idx.line(5), 3);
        assert_eq!(idx.line(6), 4);
        assert_eq!(line_of_offset(b"a\nb\nc", 4), 3);
        let lines: Vec<_> = numbered_lines("x\r\ny").collect();
        assert_eq!(lines, vec![(1, "x"), (2, "y")]);
        let toml = "version = 4\n\n[[package]]\nname = \"a\"\nversion = \"1\"\n\n[[package]]\nname = \"b\"\n[package.source]\nversion = \"x\"\n";
        assert_eq!(package_table_lines(toml), vec![5, 7]);
    }
}
