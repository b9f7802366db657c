//! A progress line for the one slow part a user waits on: hashing image
//! inputs for fingerprints.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use pipetrim_queries::Database;
use pipetrim_queries::prime::prime_hashes;

/// Hashes files in parallel; on a terminal, draws a progress line on stderr
/// once hashing has taken more than half a second (shorter runs stay quiet).
pub fn hash_with_progress(db: &Database, paths: Vec<String>) {
    let total = paths.len();
    let start = Instant::now();
    let tty = std::io::stderr().is_terminal();
    let last = Mutex::new(Instant::now());
    let drew = AtomicBool::new(false);
    let progress = |done: usize| {
        if !tty || start.elapsed() < Duration::from_millis(500) {
            return;
        }
        if let Ok(mut l) = last.try_lock()
            && (l.elapsed() >= Duration::from_millis(100) || done == total)
        {
            *l = Instant::now();
            drew.store(true, Ordering::Relaxed);
            eprint!("\rhashing image inputs: {done}/{total} files");
        }
    };
    prime_hashes(db, &paths, &progress);
    if drew.load(Ordering::Relaxed) {
        eprintln!(
            "\rhashing image inputs: {total}/{total} files, {:.1?}",
            start.elapsed()
        );
    }
}
