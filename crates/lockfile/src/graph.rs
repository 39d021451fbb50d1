//! Dev and optional from a dependency graph, for the lockfiles that record the graph and the
//! project's own dependency lists but no per-package flag (pnpm 9, Bun, uv).
//!
//! A package is dev when only the project's development dependencies lead to it, and optional
//! when production installs reach it only through optional edges.

/// How an edge (or a root) is declared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A production dependency.
    Required,
    /// An optional dependency or an extra.
    Optional,
    /// A development dependency (roots only: below a dev root every edge stays dev).
    Dev,
}

/// A graph over package indices `0..n`.
#[derive(Debug)]
pub(crate) struct Graph {
    edges: Vec<Vec<(usize, Kind)>>,
    roots: Vec<(usize, Kind)>,
}

/// What [`Graph::classify`] finds for one package: `(dev, optional)`, `None` for a package no
/// root reaches (the lockfile holds it but nothing installs it).
pub(crate) type Flags = (Option<bool>, Option<bool>);

impl Graph {
    pub(crate) fn new(n: usize) -> Graph {
        Graph {
            edges: vec![Vec::new(); n],
            roots: Vec::new(),
        }
    }

    pub(crate) fn edge(&mut self, from: usize, to: usize, kind: Kind) {
        self.edges[from].push((to, kind));
    }

    /// A dependency the project itself declares.
    pub(crate) fn root(&mut self, to: usize, kind: Kind) {
        self.roots.push((to, kind));
    }

    /// Whether `i` is the target of a root.
    pub(crate) fn is_root(&self, i: usize) -> bool {
        self.roots.iter().any(|&(r, _)| r == i)
    }

    pub(crate) fn classify(&self) -> Vec<Flags> {
        let n = self.edges.len();
        let required = self.reach(|k| k == Kind::Required, |k| k == Kind::Required);
        let production = self.reach(|k| k != Kind::Dev, |_| true);
        let development = self.reach(|k| k == Kind::Dev, |_| true);
        (0..n)
            .map(|i| {
                if production[i] {
                    (Some(false), Some(!required[i]))
                } else if development[i] {
                    (Some(true), Some(false))
                } else {
                    (None, None)
                }
            })
            .collect()
    }

    fn reach(&self, root: impl Fn(Kind) -> bool, edge: impl Fn(Kind) -> bool) -> Vec<bool> {
        let mut seen = vec![false; self.edges.len()];
        let mut stack: Vec<usize> = self
            .roots
            .iter()
            .filter(|(_, k)| root(*k))
            .map(|&(i, _)| i)
            .collect();
        while let Some(i) = stack.pop() {
            if std::mem::replace(&mut seen[i], true) {
                continue;
            }
            stack.extend(
                self.edges[i]
                    .iter()
                    .filter(|(_, k)| edge(*k))
                    .map(|&(j, _)| j),
            );
        }
        seen
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_and_optional_follow_the_paths_that_reach_a_package() {
        // 0 prod → 1; 2 dev → 1, 3; 4 optional root; 0 -opt-> 5; 6 unreachable.
        let mut g = Graph::new(7);
        g.root(0, Kind::Required);
        g.root(2, Kind::Dev);
        g.root(4, Kind::Optional);
        g.edge(0, 1, Kind::Required);
        g.edge(2, 1, Kind::Required);
        g.edge(2, 3, Kind::Required);
        g.edge(0, 5, Kind::Optional);
        let f = g.classify();
        assert_eq!(f[0], (Some(false), Some(false)));
        assert_eq!(f[1], (Some(false), Some(false)));
        assert_eq!(f[2], (Some(true), Some(false)));
        assert_eq!(f[3], (Some(true), Some(false)));
        assert_eq!(f[4], (Some(false), Some(true)));
        assert_eq!(f[5], (Some(false), Some(true)));
        assert_eq!(f[6], (None, None));
        assert!(g.is_root(4) && !g.is_root(5));
    }
}
