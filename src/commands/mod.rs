//! One module per subcommand: each reads its flags, asks the model (and
//! the CI domain), and prints. What they share is here: opening the
//! session, the change set of `--base`/`--changed-files`/`--uncommitted`,
//! the plan, and printing text or JSON by `--format`.

pub mod affected;
pub mod bootstrap;
pub mod builder_tag;
pub mod completions;
pub mod compositions;
pub mod crates;
pub mod explain;
pub mod fingerprint;
pub mod graph;
pub mod images;
pub mod man;
pub mod soak;
pub mod stats;
pub mod trim;
pub mod watch;

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use pipetrim_queries::plan::{Plan, plan};

use crate::cli::{ChangeArgs, Format, Global};
use crate::error::Error;
use crate::repo::changes::{self, ResolvedChanges};
use crate::repo::session::Session;

/// The session over `--repo` with the global flags' options.
fn session(g: &Global) -> Result<Session, Error> {
    Session::open(&g.repo, &g.session_options()?)
}

/// The change set the flags ask for, in the checkout at `root`.
fn changes(g: &Global, root: &Path, a: &ChangeArgs) -> Result<ResolvedChanges, Error> {
    let uncommitted = match (a.uncommitted, g.from_index) {
        (false, _) => changes::Uncommitted::No,
        (true, false) => changes::Uncommitted::All,
        (true, true) => changes::Uncommitted::Staged,
    };
    changes::resolve(
        root,
        a.base.as_deref(),
        a.changed_files.as_deref(),
        uncommitted,
    )
}

/// A session with its change set applied, and the plan.
fn planned(
    g: &Global,
    paths: Vec<String>,
    unknown: Option<String>,
) -> Result<(Session, Arc<Plan>), Error> {
    let mut s = session(g)?;
    s.set_changes(paths, unknown);
    let p = plan(&s.db, s.ws).clone()?;
    Ok((s, p))
}

/// Prints `json` (pretty) under `--format json`, else `text`.
fn print_out(g: &Global, json: &serde_json::Value, text: &str) -> Result<i32, Error> {
    let mut out = std::io::stdout().lock();
    let r = match g.format {
        // Streamed through a small buffer: a plan's JSON is ~120 KB, and a
        // string that size is a fresh huge page in a run this short.
        Format::Json => {
            let mut w = std::io::BufWriter::with_capacity(16 * 1024, &mut out);
            serde_json::to_writer_pretty(&mut w, json)
                .map_err(std::io::Error::other)
                .and_then(|()| writeln!(w))
                .and_then(|()| w.flush())
        }
        Format::Text | Format::Dot | Format::Mermaid | Format::Markdown => {
            writeln!(out, "{}", text.trim_end())
        }
    };
    r.map_err(|e| Error::Io(e.to_string()))?;
    Ok(0)
}

/// Writes `bytes` to stdout as they are (generated scripts and pages).
fn write_stdout(bytes: &[u8]) -> Result<i32, Error> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(|e| Error::Io(e.to_string()))?;
    Ok(0)
}

/// The directory a file of `path` is written in (`.` for a bare name).
pub fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Writes `bytes` to a temporary file beside `path`, then renames it over
/// `path`: readers see the old file or the whole new one.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let err = |e: std::io::Error| Error::Io(format!("cannot write `{}`: {e}", path.display()));
    let mut tmp = tempfile::Builder::new()
        .prefix(".pipetrim-")
        .tempfile_in(parent_dir(path))
        .map_err(err)?;
    // A temporary file is private (0600); the report is not: it keeps the
    // mode of the file it replaces, else gets the usual 0644.
    let mode = std::fs::metadata(path)
        .map(|m| m.permissions())
        .unwrap_or_else(|_| std::os::unix::fs::PermissionsExt::from_mode(0o644));
    tmp.as_file().set_permissions(mode).map_err(err)?;
    tmp.write_all(bytes).map_err(err)?;
    tmp.as_file().sync_all().map_err(err)?;
    tmp.persist(path).map_err(|e| err(e.error))?;
    Ok(())
}
