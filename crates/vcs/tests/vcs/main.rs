//! picket-vcs integration tests: one binary, a module per area.

mod api;
mod webhook;
