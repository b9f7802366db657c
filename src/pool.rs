//! Threads for the one-shot commands.
//!
//! rayon starts its global pool on first use: a thread per core, each with
//! a stack and a heap of its own. On a warm run that only looks a few
//! results up (no parsing, no hashing of contents, no system call per
//! file) that start-up costs more than the second core gives back: on c01
//! (36 compositions used, 45 images) a warm `fingerprint --from-index` is
//! 0.74 ms faster with no worker thread at all (BENCHMARKS, round 12). At
//! scale 10 (1,000 compositions, 450 images) the lookups alone are tens of
//! milliseconds, and one thread is 40 ms slower. So a command whose warm
//! work is small ([`FEW`]) calls [`this_thread_only`] before it first uses
//! rayon, and runs what may still be heavy (contents to hash) through
//! [`all_cores`], which starts a pool of its own the first time it is
//! needed. A run that knows before that it is heavy (`trim` with Python to
//! parse) calls [`every_core_with_this_one`] instead, so the main thread
//! works beside the others rather than waiting on new threads.

use std::sync::OnceLock;

/// Up to this many compositions used (or images fingerprinted), a warm
/// run's lookups take less time than starting the threads.
pub const FEW: usize = 100;

/// Makes the global pool this thread alone: parallel iterators then run
/// here, in order, with no thread started. Does nothing if the pool runs
/// already.
pub fn this_thread_only() {
    global_pool_with_this_thread(1);
}

/// Makes the global pool every core, this thread one of them: for a run
/// that is known to be heavy before it first uses rayon (Python to parse).
/// This thread then works beside the others instead of waiting for a pool
/// of its own, and one thread fewer starts on fresh memory. Does nothing
/// if the pool runs already.
pub fn every_core_with_this_one() {
    global_pool_with_this_thread(cores());
}

/// [`every_core_with_this_one`] for a run known to be heavy before it
/// starts (nothing to answer from a cache), whose first worker thread runs
/// `first` before it joins the pool: the work that would otherwise have a
/// thread of its own (`trim`'s change set). That thread's heap then serves
/// the priming: a new thread starts on fresh memory, which the kernel
/// clears (1-2 ms per 2 MiB huge page on the VMs measured). Until `first`
/// returns the pool has one thread fewer, which only slows it. With one
/// core, or a pool that cannot start, `first` gets a thread of its own
/// (if none can start, it is dropped unrun: the caller must notice, as a
/// channel's closed end tells it). `first` must not panic (a pool's thread
/// aborts the process on a panic).
pub fn every_core_with_this_one_and_first(first: impl FnOnce() + Send + 'static) {
    let first = std::sync::Arc::new(std::sync::Mutex::new(Some(first)));
    let take = |f: &std::sync::Mutex<Option<_>>| f.lock().unwrap_or_else(|e| e.into_inner()).take();
    let handed = first.clone();
    let built = cores() > 1
        && with_this_thread(cores())
            .start_handler(move |index| {
                // Index 0 is this thread, which does not call it.
                if index == 1
                    && let Some(f) = take(&handed)
                {
                    f();
                }
            })
            .build_global()
            .is_ok();
    if !built && let Some(f) = take(&first) {
        let _ = std::thread::Builder::new().spawn(f);
    }
}

/// The global pool: `threads` threads, this one among them (ignored if
/// the pool runs already).
fn global_pool_with_this_thread(threads: usize) {
    let _ = with_this_thread(threads).build_global();
}

/// A pool of `threads` threads, this one among them.
fn with_this_thread(threads: usize) -> rayon::ThreadPoolBuilder {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .use_current_thread()
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Runs `f` (and the parallel iterators in it) on every core: on the
/// global pool when it has several threads, else on a pool started for
/// heavy work on its first use (run here, if it cannot start).
pub fn all_cores<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    if rayon::current_num_threads() > 1 {
        return f();
    }
    static POOL: OnceLock<Option<rayon::ThreadPool>> = OnceLock::new();
    let pool = POOL.get_or_init(|| {
        let cores = cores();
        (cores > 1)
            .then(|| {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(cores)
                    .build()
                    .ok()
            })
            .flatten()
    });
    match pool {
        Some(p) => p.install(f),
        None => f(),
    }
}

/// [`all_cores`] when `heavy`, else `f` here (on the global pool as it is).
pub fn all_cores_if<R: Send>(heavy: bool, f: impl FnOnce() -> R + Send) -> R {
    if heavy { all_cores(f) } else { f() }
}

#[cfg(test)]
mod tests {
    use super::{all_cores, all_cores_if, every_core_with_this_one_and_first};

    /// The work handed to the pool's first worker runs, on another thread,
    /// whether this call builds the global pool or finds it built (another
    /// test may have); the pool then has every core.
    #[test]
    fn the_first_work_runs_on_another_thread() {
        let (tx, rx) = std::sync::mpsc::channel();
        let here = std::thread::current().id();
        every_core_with_this_one_and_first(move || {
            let _ = tx.send(std::thread::current().id());
        });
        let there = rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("the first work never ran");
        assert_ne!(there, here);
        assert_eq!(all_cores(rayon::current_num_threads), super::cores());
    }

    /// Heavy work gets every core even from a pool of one thread (what
    /// `this_thread_only` makes the global pool); light work stays there.
    #[test]
    fn heavy_work_gets_every_core_from_a_one_thread_pool() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        one.install(|| {
            assert_eq!(rayon::current_num_threads(), 1);
            assert_eq!(all_cores(rayon::current_num_threads), cores);
            assert_eq!(all_cores_if(true, rayon::current_num_threads), cores);
            assert_eq!(all_cores_if(false, rayon::current_num_threads), 1);
            let sum: u64 = all_cores(|| {
                use rayon::prelude::*;
                (1..=1000u64).into_par_iter().sum()
            });
            assert_eq!(sum, 500_500);
        });
    }
}
