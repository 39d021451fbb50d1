//! The secret settings of every command: given as variables or as files, and dropped from the
//! process environment before anything runs.
//!
//! A secret setting is one whose argument hides its environment value (`hide_env_values`):
//! `DATABASE_URL`, `PICKET_SECRET_KEY`, `PICKET_SCAN_TOKEN`, and any added later. Each may be
//! given as `<NAME>_FILE`, the path of a file holding the value (a Kubernetes Secret mounted as
//! a volume; a trailing newline is dropped). Once the command line is parsed, [`scrub`] removes
//! every secret variable from the environment, so no child process (the Semgrep engine, which
//! parses untrusted repository content) can inherit one; children are started with
//! environments of their own making besides.
//!
//! Both run in `main` before the async runtime starts: the environment is changed while the
//! process has one thread.

use clap::CommandFactory;
use std::collections::BTreeSet;

/// The environment variable names of every secret setting of the `picket` command line.
pub fn names() -> BTreeSet<String> {
    fn walk(cmd: &clap::Command, out: &mut BTreeSet<String>) {
        for arg in cmd.get_arguments() {
            if arg.is_hide_env_values_set() {
                if let Some(env) = arg.get_env() {
                    out.insert(env.to_string_lossy().into_owned());
                }
            }
        }
        for sub in cmd.get_subcommands() {
            walk(sub, out);
        }
    }
    let mut out = BTreeSet::new();
    walk(&crate::Cli::command(), &mut out);
    out
}

/// Reads each secret given as `<NAME>_FILE` into `<NAME>` (for clap to parse). A secret given
/// both ways is refused, and so is an unreadable file; the error names the variable and the
/// path, never a value.
pub fn load_files() -> Result<(), String> {
    for name in names() {
        let file_var = format!("{name}_FILE");
        let Some(path) = std::env::var_os(&file_var) else {
            continue;
        };
        if std::env::var_os(&name).is_some() {
            return Err(format!("both {name} and {file_var} are set: set one"));
        }
        let value = std::fs::read_to_string(&path).map_err(|e| {
            format!(
                "{file_var}: cannot read {}: {e}",
                std::path::Path::new(&path).display()
            )
        })?;
        std::env::set_var(&name, value.strip_suffix('\n').unwrap_or(&value));
    }
    Ok(())
}

/// Removes every secret variable (and its `_FILE` path) from this process's environment.
pub fn scrub() {
    for name in names() {
        std::env::remove_var(format!("{name}_FILE"));
        std::env::remove_var(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secret_settings_are_the_hidden_ones() {
        let names = names();
        for secret in ["DATABASE_URL", "PICKET_SECRET_KEY", "PICKET_SCAN_TOKEN"] {
            assert!(names.contains(secret), "{names:?}");
        }
        assert!(!names.contains("PICKET_API_URL"), "{names:?}");
        assert!(!names.contains("PICKET_LOG"), "{names:?}");
    }
}
