//! Handing the finished pipeline to Buildkite.

use std::io::Write;
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
    let mut child = cmd
        .stdin(Stdio::piped())
        .spawn()
        .map_err(|e| Error::Io(format!("cannot run buildkite-agent: {e}")))?;
    if let Some(stdin) = child.stdin.as_mut() {
        stdin
            .write_all(yaml.as_bytes())
            .map_err(|e| Error::Io(e.to_string()))?;
    }
    let status = child.wait().map_err(|e| Error::Io(e.to_string()))?;
    if !status.success() {
        return Err(Error::Io(format!(
            "buildkite-agent pipeline upload failed: {status}"
        )));
    }
    Ok(())
}
