//! A timeline of one run for `PIPETRIM_TIMINGS`: named marks, in
//! milliseconds since `main` started, printed at exit. Off (one load of an
//! initialised flag per mark) unless the variable is set, so the marks can
//! stay in the hot path.

use std::sync::Mutex;
use std::time::Instant;

static MARKS: Mutex<Vec<(&'static str, Instant)>> = Mutex::new(Vec::new());
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
        m.push((what, Instant::now()));
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
        .map(|(w, t)| format!("{w} {:.2}", t.duration_since(start).as_secs_f64() * 1000.0))
        .collect();
    Some(format!("timeline (ms since start): {}", parts.join(" · ")))
}
