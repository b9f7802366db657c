//! How long a `watch` update takes after one edit, per kind of file, on a
//! real checkout: `cargo run --release --example watch_latency -- DIR BASE`.
//!
//! It edits (appends a comment to) a Rust file, a Python module and a
//! Dockerfile of DIR in turn, and the Python module once more with a line
//! added at its top (`python-lines`: every line moves, so its summary
//! changes, which an appended comment leaves as it was), applies each edit
//! to a `WatchEngine` as the watcher would, and restores the file. Run it on a scratch checkout only.
//! `N` (default 20) edits per kind; prints the median and the minimum.
//! Without the persistent cache unless `PIPETRIM_CACHE_DIR` names one.
//! `ONLY=rust` (or `python`, `python-lines`, `dockerfile`) edits one kind
//! only (for profiles).

use std::path::PathBuf;
use std::time::Instant;

use pipetrim::repo::session::SessionOptions;
use pipetrim::watch::{PathChange, WatchEngine};

/// The allocator of the `pipetrim` binary, so the figures are the binary's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let root = PathBuf::from(args.next().ok_or("usage: watch_latency DIR [BASE]")?);
    let base = args.next().unwrap_or_else(|| "main".into());
    let n: usize = std::env::var("N")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(20);
    // The persistent cache, as `watch` uses it, when `PIPETRIM_CACHE_DIR` is set.
    let opts = SessionOptions {
        cache_dir: std::env::var_os("PIPETRIM_CACHE_DIR").map(PathBuf::from),
        ..SessionOptions::default()
    };
    let mut engine = WatchEngine::open(&root, &opts, Some(base))?;
    let t = Instant::now();
    engine.evaluate();
    println!("first answer {:?}", t.elapsed());
    let dockerfile = [
        "misc/images/ubuntu-base/Dockerfile",
        "misc/images/prod-base/Dockerfile",
    ]
    .into_iter()
    .find(|p| root.join(p).exists())
    .ok_or("no Dockerfile to edit")?;
    let python = "misc/python/materialize/mzcompose/services/postgres.py";
    for (kind, path, at_top) in [
        ("rust", "src/persist-client/src/lib.rs", false),
        ("python", python, false),
        ("python-lines", python, true),
        ("dockerfile", dockerfile, false),
    ] {
        if std::env::var("ONLY").is_ok_and(|only| only != kind) {
            continue;
        }
        let full = root.join(path);
        let original = std::fs::read(&full)?;
        let mut times = Vec::with_capacity(n);
        for i in 0..n {
            let mut edited = original.clone();
            let line = format!("\n# edit {i}\n");
            if at_top {
                edited.splice(0..0, line.bytes().skip(1));
            } else {
                edited.extend_from_slice(line.as_bytes());
            }
            std::fs::write(&full, if i % 2 == 0 { &edited } else { &original })?;
            let t = Instant::now();
            std::hint::black_box(engine.apply(&[PathChange::Path(path.to_string())]));
            times.push(t.elapsed().as_secs_f64() * 1e3);
        }
        std::fs::write(&full, &original)?;
        engine.apply(&[PathChange::Path(path.to_string())]);
        times.sort_by(f64::total_cmp);
        println!(
            "{kind}: median {:.2} ms, min {:.2} ms",
            times[times.len() / 2],
            times[0]
        );
    }
    Ok(())
}
