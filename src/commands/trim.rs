//! `pipetrim trim`: the CI one-shot. The change set and the plan, what the
//! plan does to the pipeline, the finishing passes, then the YAML (or the
//! JSON plan) out and the ✓/✗ report on stderr (SPEC §5–§7).
//!
//! The rules live elsewhere: whether and how to trim in [`crate::ci::env`]
//! and [`crate::ci::trim`], the finishing in [`crate::ci::finish`], the
//! build hashes in [`crate::ci::builds`]. This module orders the steps and
//! decides what is fatal, what warns and what `--strict` refuses.

use std::mem::ManuallyDrop;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use pipetrim_queries::pipeline::template;
use pipetrim_queries::plan::{Plan, plan};
use pipetrim_queries::prime::{
    plan_needs_parsing, plan_needs_parsing_here, prime_manifests_here, prime_plan,
    used_composition_count,
};
use pipetrim_queries::{Database, Diagnostic, Workspace};
use serde_yaml_ng::Value;

use super::{changes, print_out, session};
use crate::ci::env::{Overrides, TrimContext};
use crate::ci::finish::{self, BuildHashes};
use crate::ci::{annotate, builds, trim, upload};
use crate::cli::{Format, Global, TrimArgs};
use crate::error::Error;
use crate::output::diagnostic::{self, warn};
use crate::output::explain::Evidence;
use crate::output::markdown::{self, Summary};
use crate::output::report::{text_report, trim_json};
use crate::repo::changes::ResolvedChanges;
use crate::repo::session::Session;

/// Runs `trim`. With `PIPETRIM_TIMINGS` set, the phases are marked on the
/// run's timeline (`crate::timeline`).
pub fn run(g: &Global, a: &TrimArgs) -> Result<i32, Error> {
    // The template and the priming do not need the change set: they run
    // while the change set (gix) is still being computed.
    let mut cold = false;
    let (s, changes) = open_with_changes(g, a, |s, priming| {
        let _ = template(&s.db, s.ws.options(&s.db));
        crate::timeline::mark("template");
        priming.store(true, std::sync::atomic::Ordering::Relaxed);
        // From the index, a warm run over a few compositions only looks
        // results up: no worker threads unless there is Python to parse or
        // contents to hash (`crate::pool`). Nothing used rayon yet.
        // When there is, every core works on it, this thread included.
        cold = if g.from_index && used_composition_count(&s.db, s.ws) <= crate::pool::FEW {
            let cold = plan_needs_parsing_here(&s.db, s.ws);
            if cold {
                crate::pool::every_core_with_this_one();
            } else {
                crate::pool::this_thread_only();
            }
            cold
        } else {
            plan_needs_parsing(&s.db, s.ws)
        };
        let (db, ws) = (s.db.clone(), s.ws);
        crate::pool::all_cores_if(cold, move || prime_plan(&db, ws));
        crate::timeline::mark("prime");
        // The JSON plan reads what the priming computed: a first run's new
        // cache file can be written while the plan is made.
        if g.format == Format::Json {
            crate::cache::flush_early();
        }
    });
    // A one-shot run: the OS frees the database faster than dropping it
    // query by query would.
    let mut s = ManuallyDrop::new(s?);
    let changes = changes?;
    if let Some(why) = &changes.unknown {
        if a.strict {
            return Err(Error::Git(format!(
                "{why} (--strict: not keeping every step)"
            )));
        }
        warn(format_args!(
            "the change set is unknown, nothing is trimmed: {why}"
        ));
    }
    let ResolvedChanges {
        paths,
        unknown,
        against,
    } = changes;
    s.set_changes(paths, unknown.clone());
    // The report says where the files came from when it is not the work tree.
    let against = if g.from_index {
        format!("{against}, with the files of the git index (--from-index)")
    } else {
        against
    };
    let mut ctx = TrimContext::from_env(&g.pipeline, &overrides(a), |k| std::env::var(k).ok())?;
    let db = &s.db;
    let tpl = template(db, s.ws.options(db)).clone()?;
    let mut pipeline = tpl.value.clone();
    ctx.finish.lto = finish::compute_lto(
        &pipeline,
        &g.pipeline,
        ctx.finish.tag.as_deref(),
        ctx.finish.pull_request,
        ctx.finish.release_lto_build,
    );
    // The build steps' concurrency groups (and skips) need the image specs
    // of both arches; only the YAML uses them. They do not depend on the
    // change set: computed beside the plan, on a second database handle.
    let (plan_result, hashes) = if g.format == Format::Json {
        let p = plan(db, s.ws).clone();
        crate::timeline::mark("plan");
        (p, None)
    } else {
        // A handle is Send, not Sync: each side gets its own.
        let (ws, mine) = (s.ws, db.clone());
        let other = Session {
            root: s.root.clone(),
            db: db.clone(),
            ws,
        };
        let finish = &ctx.finish;
        // Side by side where the cache was cold (the fingerprints then
        // hash contents) or the pool has several threads; in turn on this
        // thread where the run is small and warm.
        let (p, h) = crate::pool::all_cores_if(cold, move || {
            rayon::join(
                move || {
                    let p = plan(&mine, ws).clone();
                    crate::timeline::mark("plan");
                    p
                },
                move || builds::build_hashes(&other, finish, a.exists_cmd.as_deref()),
            )
        });
        crate::timeline::mark("fingerprints");
        // Every leaf is known now: write them while the pipeline is finished.
        crate::cache::flush_early();
        (p, Some(h))
    };
    let no_trim = ctx.no_trim_reason();
    // The plan fails only when the template does not load, and that was
    // checked above: a broken template exits 2 with its file and line in
    // every mode (SPEC §10), since there is no pipeline to upload.
    let plan = plan_result?;
    if a.strict
        && let Some(e) = plan.errors.first()
    {
        return Err(Error::Input(e.clone()));
    }
    if let Some(h) = hashes {
        ctx.finish.build_hashes = hashes_or_warn(h);
    }
    // Test selection first: it counts steps of the untrimmed pipeline.
    ctx.select_tests(&mut pipeline)?;
    let decision = trim::decide(no_trim.as_deref(), &plan, unknown.as_deref(), &against);
    trim::apply(&mut pipeline, &plan, &decision, s.ws.changes(db).paths(db))?;
    finish::finish(&mut pipeline, &ctx.finish)
        .map_err(|e| Error::Usage(format!("{}: {e}", tpl.path)))?;
    crate::timeline::mark("finish");
    report(&s, &plan, &decision.reason);
    crate::timeline::mark("report");
    let code = match g.format {
        Format::Json => {
            let d = &decision;
            let json = trim_json(&plan, d.trimmed, d.dry_run, &d.reason);
            print_out(g, &json, "")?
        }
        Format::Text | Format::Dot | Format::Mermaid | Format::Markdown => {
            write_pipeline(&pipeline, a)?
        }
    };
    crate::timeline::mark("output");
    let summary = Summary {
        plan: &plan,
        trimmed: decision.trimmed,
        dry_run: decision.dry_run,
        reason: &decision.reason,
        against: &against,
        pipeline: &g.pipeline,
    };
    publish_markdown(&s, &summary, a)?;
    Ok(code)
}

/// The Markdown summary, after the pipeline is out: to `--report-markdown`
/// (a failed write is an error, as for `--output`) and, with `--annotate`,
/// to the build page (a failure there only warns: the trim succeeded).
fn publish_markdown(s: &Session, summary: &Summary, a: &TrimArgs) -> Result<(), Error> {
    if !a.annotate && a.report_markdown.is_none() {
        return Ok(());
    }
    let md = markdown::trim_markdown(summary, &Evidence::of(s));
    if let Some(path) = &a.report_markdown {
        super::write_atomically(path, md.as_bytes())?;
    }
    if a.annotate {
        let style = markdown::style(summary.plan);
        if let Err(e) = annotate::annotate(&md, style, a.annotate_cmd.as_deref()) {
            warn(format_args!("no annotation on the build page: {e}"));
        }
    }
    Ok(())
}

/// The build hashes, or `None` with a warning: without them the build
/// steps are left as the template has them (fail safe: builds run).
fn hashes_or_warn(hashes: Result<BuildHashes, Error>) -> Option<BuildHashes> {
    match hashes {
        Ok(h) => Some(h),
        Err(e) => {
            warn(format_args!(
                "image fingerprints unavailable, build steps left as they are: {e}"
            ));
            None
        }
    }
}

/// The finished pipeline as YAML: to `--output`, else stdout unless
/// `--upload`, and to `buildkite-agent` with `--upload`.
fn write_pipeline(pipeline: &Value, a: &TrimArgs) -> Result<i32, Error> {
    let yaml = serde_yaml_ng::to_string(pipeline).map_err(|e| Error::Io(e.to_string()))?;
    if let Some(path) = &a.output {
        super::write_atomically(path, yaml.as_bytes())?;
    } else if !a.upload {
        print!("{yaml}");
    }
    if a.upload {
        upload::pipeline_upload(&yaml, a.dry_run)?;
    }
    Ok(0)
}

/// The session and the change set, the change set (gix) computed while
/// the files are listed and `prepare` warms the session. The thread that
/// computes the change set then parses manifests, which need only the file
/// set, on a core that would otherwise wait while the template is parsed;
/// `prepare` stops it (through the flag it is given) when the priming,
/// which parses the rest on every core, starts.
///
/// With nothing cached (no cache file, or `--no-cache`) every leaf is
/// computed, so the pool of every core starts first and that thread is
/// its worker ([`crate::pool::every_core_with_this_one_and_first`]): the
/// priming then runs on a heap the change set warmed, not on a new
/// thread's fresh memory. That worker first parses the template and the
/// root manifest from the work tree ([`parse_ahead`], given a cache
/// directory to offer the entries through) while this thread lists the
/// files, then parses manifests until they are ready.
fn open_with_changes(
    g: &Global,
    a: &TrimArgs,
    prepare: impl FnOnce(&Session, &AtomicBool),
) -> (Result<Session, Error>, Result<ResolvedChanges, Error>) {
    let priming = Arc::new(AtomicBool::new(false));
    let (to_side, opened) = std::sync::mpsc::channel::<(Database, Workspace)>();
    let cache_dir = g.cache_dir();
    let on_pool = cache_dir.as_deref().is_none_or(crate::cache::holds_nothing);
    // With a cache to offer them through, the template and the root
    // manifest are parsed first, from the work tree, before the session
    // that the main thread's parse would wait for exists.
    let ahead = cache_dir.filter(|_| on_pool);
    let (ahead_done, ahead_wait) = std::sync::mpsc::channel::<()>();
    // Nothing to wait for without it.
    let ahead_done = ahead.is_some().then_some(ahead_done);
    let ahead_ready = Arc::new(AtomicBool::new(ahead.is_none()));
    // What the side computes, and marks on the timeline.
    let side = {
        let (g, changes_args, priming) = (g.clone(), a.changes.clone(), priming.clone());
        let ready = ahead_ready.clone();
        move || {
            if let Some(dir) = ahead {
                parse_ahead(&g, &dir);
                ready.store(true, std::sync::atomic::Ordering::Relaxed);
                crate::timeline::mark("template ahead (thread)");
            }
            drop(ahead_done);
            let c = changes(&g, &g.repo, &changes_args);
            crate::timeline::mark("changes (thread)");
            // The handle is dropped before the change set is handed over:
            // it is set on the database only once every other handle is gone.
            if let Ok((db, ws)) = opened.recv() {
                prime_manifests_here(&db, ws, &priming);
                crate::timeline::mark("manifests (thread)");
            }
            c
        }
    };
    std::thread::scope(|scope| {
        let (to_main, from_side) = std::sync::mpsc::channel();
        let side = move || {
            // A panic would abort a pool's thread: it is an error instead.
            let c = std::panic::catch_unwind(std::panic::AssertUnwindSafe(side))
                .unwrap_or_else(|_| Err(Error::Git("computing the change set panicked".into())));
            let _ = to_main.send(c);
        };
        if on_pool {
            crate::pool::every_core_with_this_one_and_first(side);
        } else {
            scope.spawn(side);
        }
        let s = session(g);
        crate::timeline::mark("session");
        if let Ok(s) = &s {
            let _ = to_side.send((s.db.clone(), s.ws));
        }
        drop(to_side);
        if let Ok(s) = &s {
            // Manifests, until the side has the template ready (then
            // the side's own turn at them comes after the change set).
            prime_manifests_here(&s.db, s.ws, &ahead_ready);
            let _ = ahead_wait.recv();
            prepare(s, &priming);
        }
        // No thread could run it: computed here.
        let changes = from_side
            .recv()
            .unwrap_or_else(|_| changes(g, &g.repo, &a.changes));
        (s, changes)
    })
}

/// Parses the pipeline's template and the root manifest from the work tree
/// and offers what their queries would store to the cache in `dir`
/// ([`pipetrim_queries::pipeline::entries_ahead`]); read the careful way
/// (a FIFO is not waited on). Bytes that differ from the ones the run uses
/// give entries nobody looks up.
fn parse_ahead(g: &Global, dir: &std::path::Path) {
    use pipetrim_queries::FileContent;
    let read = |rel: &str| match crate::repo::load::read_checked(&g.repo.join(rel)).0 {
        FileContent::Bytes(b) => Some(b),
        _ => None,
    };
    let path = pipetrim_queries::pipeline::template_path(&g.pipeline);
    let Some(template) = read(&path) else {
        return;
    };
    let root = read("Cargo.toml");
    let entries =
        pipetrim_queries::pipeline::entries_ahead(&g.pipeline, &template, root.as_deref());
    crate::cache::shared(dir).put_ahead(entries);
}

/// The flags that override the Buildkite environment.
fn overrides(a: &TrimArgs) -> Overrides {
    Overrides {
        coverage: a.coverage,
        sanitizer: a.sanitizer.clone(),
        priority: a.priority,
        branch: a.branch.clone(),
        tag: a.tag.clone(),
    }
}

/// The reason and the ✓/✗ report on stderr, coloured where the terminal
/// and `NO_COLOR`/`CLICOLOR_FORCE` allow (anstream decides).
fn report(s: &Session, plan: &Plan, reason: &str) {
    use std::io::Write;
    let source = |d: &Diagnostic| diagnostic::source_line(&s.root, d);
    let stderr = std::io::stderr();
    let styled = anstream::AutoStream::choice(&stderr) != anstream::ColorChoice::Never;
    // One write: stderr is not buffered.
    let mut text = String::with_capacity(128 * 1024);
    text.push_str("--- ");
    text.push_str(reason);
    text.push('\n');
    text_report(&mut text, plan, &source, styled);
    let _ = stderr.lock().write_all(text.as_bytes());
}
