//! The lockfile parsers on real lockfiles made by the real package managers
//! (`tests/fixtures/<format>/<tool-version>/`, each with the `COMMAND` that made it) and on
//! small hand-written ones for the edge cases each format documents (each with a README naming
//! the documentation).

mod bun;
mod cargo;
mod composer;
mod errors;
mod fuzz;
mod gemfile;
mod gomod;
mod gradle;
mod npm;
mod pdm;
mod pipfile;
mod pnpm;
mod poetry;
mod repository;
mod requirements;
mod support;
mod uv;
mod yarn;
