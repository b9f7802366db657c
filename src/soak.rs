//! `pipetrim soak`: walks consecutive first-parent commits of a history and
//! checks, at every commit, that one database moved from commit to commit
//! (as `watch` does when HEAD moves) plans exactly what a fresh database
//! plans, and that nothing panics. Reads git objects only (no checkout).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gix::ObjectId;
use pipetrim_queries::Diagnostic;
use pipetrim_queries::plan::Plan;

use crate::error::Error;
use crate::repo::history::{self, Replay, evaluate};
use crate::repo::session::SessionOptions;

/// What the walk found.
#[derive(Debug, Default)]
pub struct SoakReport {
    /// Commits evaluated (each against its first parent).
    pub commits: usize,
    /// Evaluations that panicked (incremental or from scratch).
    pub panics: usize,
    /// Commits where the incremental plan differs from the fresh one.
    pub differences: Vec<String>,
    /// Commits whose plan is an error (the same in both evaluations).
    pub plan_errors: usize,
    /// Commits whose plan has per-step errors (fail-safe keeps).
    pub step_errors: usize,
    /// Commits where the CI glue changed (dry run).
    pub dry_runs: usize,
    /// Kept / unit steps summed over all commits.
    pub kept: usize,
    pub steps: usize,
    pub elapsed: Duration,
    /// Time spent in incremental and fresh evaluations.
    pub incremental: Duration,
    pub fresh: Duration,
    /// Resident set size after the first commit and at the end, and the peak (KiB).
    pub rss_first_kib: u64,
    pub rss_last_kib: u64,
    pub peak_rss_kib: u64,
}

impl SoakReport {
    pub fn ok(&self) -> bool {
        self.panics == 0 && self.differences.is_empty()
    }

    pub fn summary(&self) -> String {
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        let mut s = format!(
            "soak: {} commits in {:.1}s ({:.2} commits/s; incremental {:.0} ms/commit, from scratch {:.0} ms/commit)\n\
             panics: {}\ndifferences: {}\n\
             plans: {} errors, {} with step errors kept fail safe, {} dry runs (CI glue changed), {} of {} steps kept\n\
             memory: RSS {} MiB after the first commit, {} MiB at the end, peak {} MiB\n",
            self.commits,
            secs,
            self.commits as f64 / secs,
            self.incremental.as_secs_f64() * 1000.0 / self.commits.max(1) as f64,
            self.fresh.as_secs_f64() * 1000.0 / self.commits.max(1) as f64,
            self.panics,
            self.differences.len(),
            self.plan_errors,
            self.step_errors,
            self.dry_runs,
            self.kept,
            self.steps,
            self.rss_first_kib / 1024,
            self.rss_last_kib / 1024,
            self.peak_rss_kib / 1024,
        );
        for d in &self.differences {
            s.push_str(&format!("  {d}\n"));
        }
        s
    }
}

/// A field of `/proc/self/status` in KiB (`VmHWM`, `VmRSS`); 0 if unknown.
pub fn proc_status_kib(field: &str) -> u64 {
    let Ok(text) = std::fs::read_to_string("/proc/self/status") else {
        return 0;
    };
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

type Outcome = Result<Arc<Plan>, Diagnostic>;

fn describe(a: &Outcome, b: &Outcome) -> String {
    match (a, b) {
        (Ok(a), Ok(b)) => {
            let kept = |p: &Plan| -> Vec<String> { p.kept().map(|d| d.id.clone()).collect() };
            let (ka, kb) = (kept(a), kept(b));
            let mut parts = Vec::new();
            if ka != kb {
                parts.push(format!("kept {ka:?} incrementally, {kb:?} from scratch"));
            }
            if a.errors != b.errors {
                parts.push(format!(
                    "errors {:?} incrementally, {:?} from scratch",
                    a.errors, b.errors
                ));
            }
            if a.glue_changed != b.glue_changed {
                parts.push(format!(
                    "dry run {} incrementally, {} from scratch",
                    a.glue_changed, b.glue_changed
                ));
            }
            if parts.is_empty() {
                parts.push("the plans differ in their details (globs, reasons)".into());
            }
            parts.join("; ")
        }
        (Ok(_), Err(e)) => format!("a plan incrementally, error from scratch: {e}"),
        (Err(e), Ok(_)) => format!("error incrementally ({e}), a plan from scratch"),
        (Err(a), Err(b)) => format!("error incrementally ({a}), from scratch ({b})"),
    }
}

/// Walks `n` commits ending at `from` in the repository at `gitdir` (opened
/// read-only). `progress` is called after each commit.
pub fn soak(
    gitdir: &Path,
    from: &str,
    n: usize,
    opts: &SessionOptions,
    mut progress: impl FnMut(usize, &ObjectId, &SoakReport),
) -> Result<SoakReport, Error> {
    let repo = history::open(gitdir)?;
    let chain = history::first_parent_chain(&repo, from, n)?;
    let Some(&(_, first_parent)) = chain.first() else {
        return Err(Error::Usage(format!(
            "`{from}` has no parent: nothing to soak"
        )));
    };
    let t0 = Instant::now();
    // The incremental database starts at the first commit's parent.
    let mut replay = Replay::new(repo, gitdir, opts);
    replay.move_to(first_parent)?;
    let _ = evaluate(&replay.session);
    let mut report = SoakReport::default();
    for (i, (commit, parent)) in chain.iter().enumerate() {
        let changes = replay.advance(*parent, *commit)?;
        let t = Instant::now();
        let a = evaluate(&replay.session);
        report.incremental += t.elapsed();

        let fixed = Arc::new(replay.loader().snapshot());
        let mut fresh = replay.fresh(fixed, replay.session.files().to_vec());
        fresh.set_changes(changes, None);
        let t = Instant::now();
        let b = evaluate(&fresh);
        report.fresh += t.elapsed();
        drop(fresh);

        report.commits += 1;
        match (&a, &b) {
            (Some(a), Some(b)) => {
                if a != b {
                    report
                        .differences
                        .push(format!("{commit}: {}", describe(a, b)));
                }
                match b {
                    Ok(p) => {
                        report.step_errors += usize::from(!p.errors.is_empty());
                        report.dry_runs += usize::from(p.glue_changed);
                        let units = p.steps.iter().filter(|d| d.kind.is_trimmable());
                        for d in units {
                            report.steps += 1;
                            report.kept += usize::from(d.kept);
                        }
                    }
                    Err(_) => report.plan_errors += 1,
                }
            }
            _ => {
                report.panics += usize::from(a.is_none()) + usize::from(b.is_none());
                if a.is_none() {
                    // A panic may leave the database mid-update: start over here.
                    replay.restart();
                }
            }
        }
        let rss = proc_status_kib("VmRSS");
        if i == 0 {
            report.rss_first_kib = rss;
        }
        report.rss_last_kib = rss;
        report.elapsed = t0.elapsed();
        progress(i, commit, &report);
        // Each commit's new cache entries are written as the walk goes, so
        // they do not pile up in memory.
        crate::cache::flush_all();
    }
    report.peak_rss_kib = proc_status_kib("VmHWM");
    report.elapsed = t0.elapsed();
    Ok(report)
}
