//! The Buildkite/CI domain: how the reference's `ci/mkpipeline.py` and
//! `bin/ci-builder` behave around the trim plan.
//!
//! - [`env`]: the Buildkite environment and the flags that override it;
//!   whether to trim at all, and test selection (SPEC §6);
//! - [`trim`]: what the plan does to the pipeline: trimmed, a dry run,
//!   or left whole (SPEC §6);
//! - [`finish`]: the finishing passes on the pipeline YAML (SPEC §7);
//! - [`builds`]: the image specs of a build per arch, for build trimming
//!   (SPEC §7–§8);
//! - [`durations`]: median step durations for `stats` (JSON or CSV);
//! - [`upload`]: `buildkite-agent pipeline upload`;
//! - [`annotate`]: `buildkite-agent annotate` (the decisions on the build page);
//! - [`builder`] and [`bootstrap`]: the ci-builder tag and the bootstrap
//!   pipeline (SPEC §9).

pub mod annotate;
pub mod bootstrap;
pub mod builder;
pub mod builds;
pub mod durations;
pub mod env;
pub mod finish;
pub mod trim;
pub mod upload;

use std::io::Write;
use std::process::{Child, ExitStatus};

/// Feeds an agent ([`upload`], [`annotate`]): writes `body` to `child`'s
/// stdin, closes it and waits. A child that exits before reading all of it
/// closes the pipe, and its exit status says why; so the write's result
/// comes beside the status, for each caller to judge by its own rule.
fn feed_and_wait(
    mut child: Child,
    body: &[u8],
) -> std::io::Result<(ExitStatus, std::io::Result<()>)> {
    let written = match child.stdin.take() {
        Some(mut stdin) => stdin.write_all(body),
        None => Ok(()),
    };
    Ok((child.wait()?, written))
}
