//! picket-vcs integration tests (one binary).

mod api;
