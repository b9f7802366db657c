//! `pipetrim soak`: incremental against from-scratch plans over the
//! first-parent history of a git dir (read-only).

use crate::cli::Global;
use crate::error::Error;

pub fn run(g: &Global, commits: usize, from: &str) -> Result<i32, Error> {
    let opts = g.session_options()?;
    let report = crate::soak::soak(&g.repo, from, commits, &opts, |i, c, r| {
        if (i + 1) % 25 == 0 {
            eprintln!(
                "soak: {} commits ({c}), {} panics, {} differences, RSS {} MiB",
                i + 1,
                r.panics,
                r.differences.len(),
                r.rss_last_kib / 1024
            );
        }
    })?;
    print!("{}", report.summary());
    Ok(if report.ok() { 0 } else { 1 })
}
