//! Showing the decisions on the build page: `buildkite-agent annotate`.
//!
//! The annotation is a courtesy, not the job: whatever goes wrong here is
//! the caller's warning, never a failed trim.

use std::process::{Command, Stdio};

use crate::output::markdown::{Style, truncate};

/// Buildkite refuses an annotation body above 1 MiB (bytes).
pub const BODY_LIMIT: usize = 1024 * 1024;

/// The annotation's context: a later trim of the same build replaces it.
pub const CONTEXT: &str = "pipetrim";

/// Sends `markdown` (cut to [`BODY_LIMIT`]) on the stdin of
/// `buildkite-agent annotate --style STYLE --context pipetrim`, or of
/// `sh -c CMD` with `cmd`: the same flags are its arguments (`"$@"`) and the
/// style is also in `$PIPETRIM_ANNOTATION_STYLE`. `Err` says what failed.
pub fn annotate(markdown: &str, style: Style, cmd: Option<&str>) -> Result<(), String> {
    let body = truncate(markdown, BODY_LIMIT);
    let flags = ["--style", style.as_str(), "--context", CONTEXT];
    let (mut command, shown) = match cmd {
        Some(c) => {
            let mut command = Command::new("sh");
            command.args(["-c", c, "pipetrim-annotate"]).args(flags);
            (command, format!("`sh -c {c:?}`"))
        }
        None => {
            let mut command = Command::new("buildkite-agent");
            command.arg("annotate").args(flags);
            (command, "`buildkite-agent annotate`".to_string())
        }
    };
    let child = command
        .env("PIPETRIM_ANNOTATION_STYLE", style.as_str())
        .stdin(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {shown}: {e}"))?;
    let (status, written) = super::feed_and_wait(child, body.as_bytes())
        .map_err(|e| format!("{shown} did not finish: {e}"))?;
    if !status.success() {
        return Err(format!("{shown} failed: {status}"));
    }
    // A command that does not read its stdin closes the pipe: judged by
    // its exit status, not by the write.
    match written {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(format!("cannot write to {shown}: {e}"))
        }
        _ => Ok(()),
    }
}
