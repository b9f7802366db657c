//! pipetrim's incremental core.
//!
//! Architecture invariant: this crate knows nothing of git, the file system
//! watcher or the terminal. It reads the world only through the salsa inputs
//! of [`db`]; the edges (the `pipetrim` crate) fill them.

pub mod cache;
pub mod cargo;
pub mod db;
pub mod diag;
pub mod fingerprint;
pub mod images;
pub mod inputs;
pub mod paths;
pub mod pathspec;
pub mod pipeline;
pub mod plan;
pub mod prime;
pub mod python;
pub mod specs;
pub mod stats;
mod yaml;

pub use db::{
    ChangeSet, Database, Db, File, FileContent, FileMode, FileSet, Loaded, Loader, Options, Stamp,
    Unreadable, Workspace,
};
pub use diag::Diagnostic;
