//! A timeline of one run for `PIPETRIM_TIMINGS`: named marks, in
//! milliseconds since `main` started, printed at exit. Off (one load of an
//! initialised flag per mark) unless the variable is set, so the marks can
//! stay in the hot path.

use std::sync::Mutex;
use std::time::Instant;

static MARKS: Mutex<Vec<(&'static str, Instant, Option<u64>)>> = Mutex::new(Vec::new());
static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();

/// Starts the clock; called first thing in `main`.
pub fn start() {
    START.get_or_init(Instant::now);
}

/// Whether `PIPETRIM_TIMINGS` is set (read once).
pub fn enabled() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("PIPETRIM_TIMINGS").is_some())
}

/// Records that `what` just ended.
pub fn mark(what: &'static str) {
    if !enabled() {
        return;
    }
    if let Ok(mut m) = MARKS.lock() {
        m.push((what, Instant::now(), anon_kib()));
    }
}

/// The marks as one line (`timeline: a 1.2 · b 3.4 ms`), if any.
pub fn render() -> Option<String> {
    let start = *START.get()?;
    let m = MARKS.lock().ok()?;
    if m.is_empty() {
        return None;
    }
    let parts: Vec<String> = m
        .iter()
        .map(|(w, t, anon)| {
            let ms = t.duration_since(start).as_secs_f64() * 1000.0;
            match anon {
                Some(kib) => format!("{w} {ms:.2} ({:.1} MiB)", *kib as f64 / 1024.0),
                None => format!("{w} {ms:.2}"),
            }
        })
        .collect();
    Some(format!("timeline (ms since start): {}", parts.join(" · ")))
}

/// The process's resident anonymous memory in KiB (`RssAnon` of
/// `/proc/self/status`), where the system says: the fresh pages a phase
/// touches are a large part of a short run's cost. Read only with
/// `PIPETRIM_TIMINGS` (~20 µs a mark).
fn anon_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("RssAnon:"))?;
    line.split_whitespace().next()?.parse().ok()
}
