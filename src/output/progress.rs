//! A progress bar for the one slow part a user waits on: hashing image
//! inputs for fingerprints.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use pipetrim_queries::prime::{prime_hashes, prime_image_files};
use pipetrim_queries::{Database, FileSet};

/// Runs shorter than this stay quiet: a bar that flashes helps no one.
const SHOW_AFTER: Duration = Duration::from_millis(500);

/// Hashes the input files of `images` (those whose own hash the cache
/// lacks) on every core (`crate::pool::all_cores`: the one heavy part of a
/// fingerprint run), with a progress bar; nothing when there are none.
pub fn hash_image_inputs(db: &Database, files: FileSet, images: &[String]) {
    if images.is_empty() {
        return;
    }
    let db = db.clone();
    crate::pool::all_cores(move || hash_with_progress(&db, prime_image_files(&db, files, images)));
}

/// Hashes files in parallel with an `indicatif` bar on stderr, drawn once
/// hashing has taken [`SHOW_AFTER`]; indicatif hides it when stderr is not
/// a terminal (CI logs, pipes).
fn hash_with_progress(db: &Database, paths: Vec<String>) {
    let start = Instant::now();
    let bar = ProgressBar::with_draw_target(Some(paths.len() as u64), ProgressDrawTarget::hidden());
    if let Ok(style) =
        ProgressStyle::with_template("hashing image inputs {bar:30} {pos}/{len} files ({elapsed})")
    {
        bar.set_style(style);
    }
    let shown = OnceLock::new();
    let progress = |done: usize| {
        if start.elapsed() >= SHOW_AFTER {
            shown.get_or_init(|| bar.set_draw_target(ProgressDrawTarget::stderr()));
        }
        bar.set_position(done as u64);
    };
    prime_hashes(db, &paths, &progress);
    if shown.get().is_some() {
        bar.finish();
    }
}
