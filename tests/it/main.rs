//! The integration tests of `pipetrim`, in one test binary: each module
//! used to be its own crate linking the whole dependency graph. Fixture
//! repositories and the helpers that run the binary live in [`common`].

mod common;

mod annotate;
mod bootstrap;
mod builder_legacy;
mod cache;
mod cli;
mod explain;
mod failsafe;
mod from_index;
mod fuzz;
mod generated;
mod git_diff;
mod harden;
mod model;
mod reference;
mod soak;
mod stats;
mod trim;
mod watch;
mod watch_json;
