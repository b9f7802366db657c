//! `pipetrim stats`: the plan of every commit of a first-parent history
//! against its first parent, folded into per-step statistics
//! ([`pipetrim_queries::stats`]). Reads git objects only (no checkout,
//! nothing written, nothing of the repository executed), through the replay
//! `soak` uses ([`crate::repo::history`]).
//!
//! What cannot be read: a commit whose tree (or its parent's) is missing
//! has no change set and no plan; it is **skipped and reported**, never
//! counted as kept or trimmed. A missing blob (a partial clone) is read as
//! unreadable: the model keeps the steps it may feed fail safe (counted
//! under `fail_safe`), and the report lists the paths.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use gix::ObjectId;
use pipetrim_queries::stats::StatsBuilder;

use crate::error::Error;
use crate::repo::history::{self, Replay, evaluate};
use crate::repo::session::SessionOptions;

/// What the walk saw.
pub struct Walk {
    pub builder: StatsBuilder,
    /// Commits asked for, and how many the history had.
    pub requested: usize,
    pub available: usize,
    /// Stopped early (Ctrl-C): the builder holds the commits done.
    pub interrupted: bool,
    /// The first parent of the first commit, and the last commit walked.
    pub span: Option<(String, String)>,
    /// Blobs that could not be read (partial clone), by path.
    pub unreadable: Vec<String>,
    pub elapsed: Duration,
    /// Resident set size at the end, and the peak (KiB; 0 if unknown).
    pub rss_kib: u64,
    pub peak_rss_kib: u64,
}

/// Walks `n` first-parent commits ending at `from` in the git dir `gitdir`
/// (opened read-only). `stop` is checked between commits; `progress` is
/// called after each commit with (done, total, commit).
pub fn walk(
    gitdir: &Path,
    from: &str,
    n: usize,
    opts: &SessionOptions,
    stop: &AtomicBool,
    mut progress: impl FnMut(usize, usize, &ObjectId),
) -> Result<Walk, Error> {
    let t0 = Instant::now();
    let repo = history::open(gitdir)?;
    let chain = history::first_parent_chain(&repo, from, n)?;
    if chain.is_empty() {
        return Err(Error::Usage(format!(
            "`{from}` has no parent: no commit to compare"
        )));
    }
    let mut replay = Replay::new(repo, gitdir, opts);
    let mut builder = StatsBuilder::new();
    let mut interrupted = false;
    let mut last = None;
    for (i, (commit, parent)) in chain.iter().enumerate() {
        if stop.load(Ordering::SeqCst) {
            interrupted = true;
            break;
        }
        let (c, p) = (commit.to_string(), parent.to_string());
        match replay.advance(*parent, *commit) {
            Err(e) => builder.skip(&c, &p, e.to_string()),
            Ok(changes) => match evaluate(&replay.session) {
                Some(Ok(plan)) => builder.add(&c, &p, &changes, &plan),
                Some(Err(d)) => builder.skip(&c, &p, format!("no plan: {d}")),
                None => {
                    builder.skip(&c, &p, "the plan panicked (a bug: please report it)");
                    replay.restart();
                }
            },
        }
        last = Some(*commit);
        progress(i + 1, chain.len(), commit);
        // New cache entries are written as the walk goes, so they do not
        // pile up in memory; every 50 commits, since each write is a
        // durable transaction (per commit, a first walk took 3× as long).
        if (i + 1) % 50 == 0 {
            crate::cache::flush_all();
        }
    }
    Ok(Walk {
        builder,
        requested: n,
        available: chain.len(),
        interrupted,
        span: last.map(|l| (chain[0].1.to_string(), l.to_string())),
        unreadable: replay.loader().unreadable(),
        elapsed: t0.elapsed(),
        rss_kib: crate::soak::proc_status_kib("VmRSS"),
        peak_rss_kib: crate::soak::proc_status_kib("VmHWM"),
    })
}
