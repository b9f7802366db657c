//! pipetrim: the edges around the incremental core (git, files, CLI, output).
//!
//! Architecture: `pipetrim-queries` holds the pure, incremental model; this
//! crate fills its inputs (visible files, contents, the change set) and
//! renders its answers.

pub mod bootstrap;
pub mod builder;
pub mod cache;
pub mod cli;
pub mod env;
pub mod error;
pub mod explain;
pub mod finish;
pub mod r#gen;
pub mod git;
pub mod gitload;
pub mod graph;
pub mod load;
pub mod report;
pub mod session;
pub mod soak;
pub mod watch;
