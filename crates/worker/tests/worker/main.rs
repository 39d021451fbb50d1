//! Worker tests with the real `semgrep` and real git repositories built by the tests.
//!
//! `semgrep` is the project's pinned one (`make semgrep` installs it into .venv) unless
//! `PICKET_SEMGREP` names another; a missing engine fails these tests, it does not skip them.

mod diff;
mod diff_lines;
mod feedback;
mod full;
mod ignores;
mod skipped;
mod supply_chain;
mod support;
mod suppression;
