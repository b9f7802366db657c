//! `pipetrim stats`: the walk ([`crate::stats`]), a progress bar on a
//! terminal, the report in `--format`, the plot with `--svg`.
//!
//! Ctrl-C (or SIGTERM) stops the walk after the current commit: the report
//! covers the commits done and says it was interrupted, and the exit code
//! is 130. A second Ctrl-C exits at once. Files (`--output`, `--svg`) are
//! written to a temporary file beside them and renamed, so they are whole
//! or absent, never half-written.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::ci::durations;
use crate::cli::{Format, Global, StatsArgs};
use crate::error::Error;
use crate::output::stats::{self as render, Meta};

/// The exit code after an interrupt (128 + SIGINT), as shells report it.
const INTERRUPTED: i32 = 130;

pub fn run(g: &Global, a: &StatsArgs) -> Result<i32, Error> {
    if matches!(g.format, Format::Dot | Format::Mermaid) {
        return Err(Error::Usage(
            "stats prints --format text, json or markdown".into(),
        ));
    }
    let opts = g.session_options()?;
    let durations = a.durations.as_deref().map(durations::read).transpose()?;
    for p in [&a.output, &a.svg].into_iter().flatten() {
        check_writable(p)?;
    }
    let stop = Arc::new(AtomicBool::new(false));
    on_interrupt(&stop)?;

    let bar = ProgressBar::with_draw_target(Some(a.commits as u64), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} stats {bar:30} {pos}/{len} commits, eta {eta} {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    let walk = crate::stats::walk(
        &g.repo,
        &a.from,
        a.commits,
        &opts,
        &stop,
        |done, total, c| {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
            let id = c.to_string();
            bar.set_message(id.get(..10).unwrap_or(&id).to_string());
        },
    );
    bar.finish_and_clear();
    let walk = walk?;

    let meta = Meta {
        pipeline: g.pipeline.clone(),
        from: a.from.clone(),
        requested: a.commits,
        interrupted: walk.interrupted,
        unreadable: walk.unreadable.clone(),
        span: walk.span.clone(),
    };
    let done = walk.builder.len();
    let stats = walk.builder.finish(a.top, a.hot, durations.as_ref());
    if let Some(d) = &durations {
        let unknown: Vec<&String> = d
            .keys()
            .filter(|id| !stats.steps.iter().any(|s| &s.id == *id))
            .collect();
        if !unknown.is_empty() {
            eprintln!(
                "warning: --durations names {} step(s) no plan has: {}",
                unknown.len(),
                unknown
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    let report = match g.format {
        Format::Json => {
            let mut s = serde_json::to_string_pretty(&render::json(&stats, &meta))
                .map_err(|e| Error::Io(e.to_string()))?;
            s.push('\n');
            s
        }
        Format::Markdown => render::markdown(&stats, &meta),
        _ => render::text(&stats, &meta),
    };
    match &a.output {
        Some(path) => super::write_atomically(path, report.as_bytes())?,
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(report.as_bytes())
                .and_then(|()| out.flush())
                .map_err(|e| Error::Io(e.to_string()))?;
        }
    }
    if let Some(path) = &a.svg {
        let svg = render::svg(&stats, &meta)
            .map_err(|e| Error::Io(format!("cannot draw the plot: {e}")))?;
        super::write_atomically(path, svg.as_bytes())?;
    }
    let secs = walk.elapsed.as_secs_f64().max(1e-9);
    eprintln!(
        "stats: {done} commits in {secs:.1}s ({:.1} commits/s), RSS {} MiB (peak {} MiB)",
        done as f64 / secs,
        walk.rss_kib / 1024,
        walk.peak_rss_kib / 1024
    );
    if walk.interrupted {
        eprintln!("stats: interrupted; the report covers the {done} commits done");
        return Ok(INTERRUPTED);
    }
    Ok(0)
}

/// Ctrl-C and SIGTERM set `stop`; a second one exits at once (130).
fn on_interrupt(stop: &Arc<AtomicBool>) -> Result<(), Error> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    use signal_hook::flag;
    for sig in [SIGINT, SIGTERM] {
        flag::register_conditional_shutdown(sig, INTERRUPTED, Arc::clone(stop))
            .and_then(|_| flag::register(sig, Arc::clone(stop)))
            .map_err(|e| Error::Io(format!("cannot handle signal {sig}: {e}")))?;
    }
    Ok(())
}

/// Fails early (before the walk) when `path` cannot be written: its
/// directory must exist.
fn check_writable(path: &Path) -> Result<(), Error> {
    let dir = super::parent_dir(path);
    if !dir.is_dir() {
        return Err(Error::Usage(format!(
            "cannot write `{}`: `{}` is not a directory",
            path.display(),
            dir.display()
        )));
    }
    Ok(())
}
