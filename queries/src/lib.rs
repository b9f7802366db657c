//! pipetrim's incremental core.
//!
//! Architecture invariant: this crate knows nothing of git, the file system
//! watcher or the terminal. It reads the world only through the salsa inputs
//! of [`db`]; the edges (the `pipetrim` crate) fill them.

pub mod db;
pub mod diag;
pub mod paths;
pub mod python;

pub use db::{
    ChangeSet, Database, Db, File, FileContent, FileMode, FileSet, Loader, Options, Workspace,
};
pub use diag::Diagnostic;
