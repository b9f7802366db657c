//! Errors of the edges. Repository content errors are `Diagnostic`s of the
//! core; these wrap them with the exit code they mean.

use pipetrim_queries::Diagnostic;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad input in the repository (exit code 2).
    #[error("{0}")]
    Input(#[from] Diagnostic),
    /// Bad usage: flags, arguments, environment (exit code 2).
    #[error("{0}")]
    Usage(String),
    /// Git could not answer (exit code 2 unless the answer fails safe).
    #[error("git: {0}")]
    Git(String),
    #[error("{0}")]
    Io(String),
}

impl Error {
    pub fn exit_code(&self) -> i32 {
        2
    }
}
