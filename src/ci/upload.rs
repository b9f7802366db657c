//! Handing the finished pipeline to Buildkite.

use std::io::Write;
use std::process::{Child, Command, ExitStatus, Stdio};

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
    let (status, written) = feed_and_wait(child, yaml.as_bytes())
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

/// Writes `body` to `child`'s stdin, closes it and waits. A child that exits
/// before reading all of it closes the pipe, and its exit status says why;
/// so the write's result comes beside the status, for the caller to judge.
pub(crate) fn feed_and_wait(
    mut child: Child,
    body: &[u8],
) -> std::io::Result<(ExitStatus, std::io::Result<()>)> {
    let written = match child.stdin.take() {
        Some(mut stdin) => stdin.write_all(body),
        None => Ok(()),
    };
    Ok((child.wait()?, written))
}
