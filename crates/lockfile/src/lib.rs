//! Lockfiles read into the packages they pin, for Supply Chain (domain.md §1, §6): which
//! [`picket_core::Ecosystem`], the name as the ecosystem normalises it, the exact version, the
//! lockfile and line, direct or transitive and the dev/optional group where the format says so,
//! and whether the entry comes from the registry at all (git, path and URL entries are not
//! matched against registry advisories). Picket never generates a lockfile; one it cannot parse
//! is an error naming the file and the reason, never an empty result.
