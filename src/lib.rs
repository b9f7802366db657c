//! pipetrim: the edges around the incremental core (git, files, CLI, output).
//!
//! Architecture: `pipetrim-queries` holds the pure, incremental model; this
//! crate fills its inputs (visible files, contents, the change set) and
//! renders its answers. ARCHITECTURE.md has the map; in short:
//!
//! - [`cli`]: the clap types and the dispatch to [`commands`], one module
//!   per subcommand;
//! - [`repo`]: git, the visible files and their contents, the change set,
//!   and the [`repo::session::Session`] every command opens;
//! - [`ci`]: the Buildkite side: the environment, finishing the pipeline,
//!   build trimming, upload, the ci-builder tag and the bootstrap;
//! - [`output`]: the decision report, evidence chains and the graph;
//! - [`watch`] and [`soak`]: the long-running engines.

pub mod cache;
pub mod ci;
pub mod cli;
pub mod commands;
pub mod error;
pub mod output;
pub mod pool;
pub mod repo;
pub mod soak;
pub mod stats;
pub mod timeline;
pub mod watch;
