//! Handing the finished pipeline to Buildkite.

use std::process::{Command, Stdio};

use crate::error::Error;

/// Pipes `yaml` to `buildkite-agent pipeline upload` (with `--dry-run` if
/// asked); the agent's failure is ours.
pub fn pipeline_upload(yaml: &str, dry_run: bool) -> Result<(), Error> {
    let mut cmd = Command::new("buildkite-agent");
    cmd.args(["pipeline", "upload"]);
    if dry_run {
        cmd.arg("--dry-run");
    }
    let child = cmd
        .stdin(Stdio::piped())
        .spawn()
        .map_err(|e| Error::Io(format!("cannot run buildkite-agent: {e}")))?;
    let (status, written) = super::feed_and_wait(child, yaml.as_bytes())
        .map_err(|e| Error::Io(format!("buildkite-agent did not finish: {e}")))?;
    // An agent that exits 0 without reading the whole pipeline did not
    // upload it.
    if let (Err(e), true) = (written, status.success()) {
        return Err(Error::Io(format!(
            "cannot write the pipeline to buildkite-agent pipeline upload: {e}"
        )));
    }
    if !status.success() {
        return Err(Error::Io(format!(
            "buildkite-agent pipeline upload failed: {status}"
        )));
    }
    Ok(())
}
