//! The scan target, validated once, and the commits it pins before anything is fetched.

use git2::Oid;

use super::{CloneError, Target};

/// The target, validated once: full ref names, parsed SHAs.
#[derive(Debug, Clone)]
pub(super) enum Plan {
    Full {
        git_ref: String,
        commit: Option<Oid>,
    },
    Diff {
        head_ref: String,
        head: Option<Oid>,
        base_ref: String,
        merge_base: Option<Oid>,
    },
}

impl Plan {
    pub(super) fn new(target: &Target) -> Result<Self, CloneError> {
        let sha = |what: &str, sha: &Option<String>| {
            sha.as_deref().map(|s| parse_sha(what, s)).transpose()
        };
        Ok(match target {
            Target::Full { git_ref, commit } => Plan::Full {
                git_ref: full_ref(git_ref)?,
                commit: sha("commit", commit)?,
            },
            Target::Diff {
                head_ref,
                head,
                base_ref,
                merge_base,
            } => Plan::Diff {
                head_ref: full_ref(head_ref)?,
                head: sha("head", head)?,
                base_ref: full_ref(base_ref)?,
                merge_base: sha("merge base", merge_base)?,
            },
        })
    }
}

fn full_ref(name: &str) -> Result<String, CloneError> {
    let full = if name == "HEAD" || name.starts_with("refs/") {
        name.to_owned()
    } else {
        format!("refs/heads/{name}")
    };
    // git's ref-name rules exclude ':', '*', '^', whitespace and friends, so a valid name cannot
    // smuggle a second refspec or a glob into the fetch.
    if git2::Reference::is_valid_name(&full) {
        Ok(full)
    } else {
        Err(CloneError::InvalidTarget(format!(
            "{name:?} is not a valid ref name"
        )))
    }
}

fn parse_sha(what: &str, sha: &str) -> Result<Oid, CloneError> {
    // Oid::from_str pads short hex with zeros; an abbreviated SHA must not silently become a
    // different object id.
    if sha.len() != 40 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(CloneError::InvalidTarget(format!(
            "{what} {sha:?} is not a full 40-hex-digit SHA"
        )));
    }
    Oid::from_str(sha).map_err(|e| CloneError::InvalidTarget(format!("{what}: {}", e.message())))
}

/// Which commit of the target a pin stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    Head,
    Base,
    MergeBase,
}

impl Role {
    pub(super) fn local_ref(self) -> &'static str {
        match self {
            Role::Head => "refs/picket/head",
            Role::Base => "refs/picket/base",
            Role::MergeBase => "refs/picket/merge-base",
        }
    }

    pub(super) fn label(self) -> &'static str {
        match self {
            Role::Head => "head",
            Role::Base => "target",
            Role::MergeBase => "merge base",
        }
    }
}

/// One commit the scan needs, pinned to an id before anything is fetched.
#[derive(Debug, Clone)]
pub(super) struct Pin {
    pub(super) role: Role,
    /// The remote ref it was asked by; `None` for a merge base given by SHA only.
    pub(super) git_ref: Option<String>,
    pub(super) oid: Oid,
    /// What the remote advertised for `git_ref`, peeled to a commit.
    pub(super) advertised: Option<Oid>,
}

impl Pin {
    /// Fetching by name works on every server; by SHA only where the server allows it, so a
    /// SHA is only asked for when the ref no longer points at it.
    pub(super) fn by_sha(&self) -> bool {
        self.advertised != Some(self.oid)
    }

    fn refspec(&self) -> String {
        match (&self.git_ref, self.by_sha()) {
            (Some(name), false) => format!("+{name}:{}", self.role.local_ref()),
            _ => format!("+{}:{}", self.oid, self.role.local_ref()),
        }
    }

    pub(super) fn mismatch(&self, actual: Oid, detail: String) -> CloneError {
        CloneError::CommitMismatch {
            what: self.role.label(),
            git_ref: self.git_ref.clone().unwrap_or_default(),
            expected: self.oid.to_string(),
            actual: actual.to_string(),
            detail,
        }
    }
}

pub(super) fn pin_ref(
    role: Role,
    git_ref: &str,
    expected: Option<Oid>,
    advertised: &[(String, Oid)],
) -> Result<Pin, CloneError> {
    // An annotated tag is advertised twice: the tag object, then `name^{}` with its commit.
    let peeled = format!("{git_ref}^{{}}");
    let tip = advertised
        .iter()
        .find(|(name, _)| *name == peeled)
        .or_else(|| advertised.iter().find(|(name, _)| name == git_ref))
        .map(|(_, oid)| *oid)
        .ok_or_else(|| CloneError::RefNotFound(git_ref.to_owned()))?;
    Ok(Pin {
        role,
        git_ref: Some(git_ref.to_owned()),
        oid: expected.unwrap_or(tip),
        advertised: Some(tip),
    })
}

pub(super) fn refspecs(pins: &[Pin]) -> Vec<String> {
    pins.iter().map(Pin::refspec).collect()
}
