//! go.mod.

use crate::support::{fixture, flags, ids, package};
use picket_lockfile::Source;

#[test]
fn requires_indirect_and_replaces() {
    let lock = fixture("go-mod/handwritten/go.mod");
    assert_eq!(
        ids(&lock),
        vec![
            "golang.org/x/net@v0.23.0",
            "github.com/BurntSushi/toml@v1.3.2",
            "github.com/pkg/errors@v0.9.1",
            "golang.org/x/text@v0.14.0",
            "example.com/quoted/path@v1.0.0",
            "example.com/fork/module@v1.2.1",
            "example.com/other/version@v2.1.0+incompatible",
            "example.com/local/fork@v0.0.0-20230101000000-abcdefabcdef",
            "gopkg.in/yaml.v3@v3.0.1",
        ]
    );
    assert_eq!(
        flags(package(&lock, "golang.org/x/net", "v0.23.0")),
        (Some(9), Some(true), None, None)
    );
    assert_eq!(
        flags(package(&lock, "github.com/pkg/errors", "v0.9.1")),
        (Some(13), Some(false), None, None)
    );
    // `// indirect; …` is still indirect.
    assert_eq!(
        package(&lock, "golang.org/x/text", "v0.14.0").direct,
        Some(false)
    );
    // Replaced by another module: that module, on the replace line.
    let fork = package(&lock, "example.com/fork/module", "v1.2.1");
    assert_eq!((fork.line, fork.direct), (Some(22), Some(true)));
    assert!(fork.is_registry());
    assert_eq!(
        package(&lock, "example.com/other/version", "v2.1.0+incompatible").line,
        Some(25)
    );
    // Replaced by a directory: not a registry module.
    let local = package(
        &lock,
        "example.com/local/fork",
        "v0.0.0-20230101000000-abcdefabcdef",
    );
    assert_eq!(
        local.source,
        Source::Path {
            path: Some("../fork".into())
        }
    );
    assert_eq!(local.line, Some(26));
}
