//! No parser panics, whatever the bytes: arbitrary text under every format's name, and real
//! fixtures cut short and with bytes changed.

use crate::support::bytes;
use picket_lockfile::{parse_as, Format};
use proptest::prelude::*;

/// A real lockfile of each format (the gradle and go.mod ones are hand-written).
const SAMPLES: [(Format, &str); 15] = [
    (
        Format::PackageLock,
        "package-lock/npm11-workspaces/package-lock.json",
    ),
    (
        Format::NpmShrinkwrap,
        "package-lock/npm6-v1/package-lock.json",
    ),
    (Format::YarnLock, "yarn-lock/yarn4-workspaces/yarn.lock"),
    (
        Format::PnpmLock,
        "pnpm-lock/pnpm7-workspace-v5.4/pnpm-lock.yaml",
    ),
    (Format::BunLock, "bun-lock/bun1.4-workspaces/bun.lock"),
    (
        Format::Requirements,
        "requirements/handwritten/requirements.txt",
    ),
    (
        Format::PoetryLock,
        "poetry-lock/handwritten-1.1/poetry.lock",
    ),
    (Format::PipfileLock, "pipfile-lock/handwritten/Pipfile.lock"),
    (Format::UvLock, "uv-lock/uv0.13/uv.lock"),
    (Format::PdmLock, "pdm-lock/pdm2.29/pdm.lock"),
    (Format::CargoLock, "cargo-lock/cargo1.95/Cargo.lock"),
    (Format::GoMod, "go-mod/handwritten/go.mod"),
    (Format::GemfileLock, "gemfile-lock/handwritten/Gemfile.lock"),
    (
        Format::ComposerLock,
        "composer-lock/composer2.5/composer.lock",
    ),
    (
        Format::GradleLockfile,
        "gradle-lockfile/handwritten/gradle.lockfile",
    ),
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_text_never_panics(format in 0..Format::ALL.len(), text in "(?s).{0,400}") {
        let _ = parse_as("fuzz", Format::ALL[format], text.as_bytes());
    }

    #[test]
    fn arbitrary_bytes_never_panic(format in 0..Format::ALL.len(), data in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = parse_as("fuzz", Format::ALL[format], &data);
    }

    #[test]
    fn damaged_real_lockfiles_never_panic(
        sample in 0..SAMPLES.len(),
        cut in any::<prop::sample::Index>(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8),
    ) {
        let (format, rel) = SAMPLES[sample];
        let mut data = bytes(rel);
        for (at, byte) in edits {
            let i = at.index(data.len());
            data[i] = byte;
        }
        let end = cut.index(data.len() + 1);
        data.truncate(end.max(data.len() / 2));
        let _ = parse_as("fuzz", format, &data);
    }
}

#[test]
fn every_sample_reads_whole() {
    for (format, rel) in SAMPLES {
        let lock = parse_as(rel, format, &bytes(rel)).unwrap_or_else(|e| panic!("{e}"));
        assert!(!lock.packages.is_empty(), "{rel}");
    }
}
