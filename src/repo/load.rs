//! Loading a checkout into the engine's inputs: the visible files (SPEC §1)
//! and a loader that reads file contents from disk on demand.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use pipetrim_queries::{FileContent, FileMode, Loader};

use crate::error::Error;

/// Reads files below a root directory.
pub struct DiskLoader {
    root: PathBuf,
}

impl DiskLoader {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        DiskLoader { root: root.into() }
    }
}

/// Files larger than this are not read into memory (so never parsed nor
/// hashed): they are `Unreadable`, which keeps steps fail safe and makes a
/// fingerprint that needs one an error naming the file.
pub const MAX_PARSE_BYTES: u64 = 64 * 1024 * 1024;

impl Loader for DiskLoader {
    fn load(&self, path: &str) -> (FileContent, FileMode) {
        let full = self.root.join(path);
        let meta = match std::fs::symlink_metadata(&full) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return (FileContent::Missing, FileMode::Regular);
            }
            Err(e) => return (FileContent::Unreadable(e.to_string()), FileMode::Regular),
        };
        let mode = if meta.file_type().is_symlink() {
            FileMode::Symlink
        } else if meta.permissions().mode() & 0o100 != 0 {
            FileMode::Executable
        } else {
            FileMode::Regular
        };
        let target = match std::fs::metadata(&full) {
            Ok(m) => m,
            Err(e) => return (FileContent::Unreadable(e.to_string()), mode),
        };
        if target.is_dir() {
            return (FileContent::Unreadable("is a directory".into()), mode);
        }
        if target.len() > MAX_PARSE_BYTES {
            return (
                FileContent::Unreadable(format!("is larger than {MAX_PARSE_BYTES} bytes")),
                mode,
            );
        }
        match std::fs::read(&full) {
            Ok(bytes) => (FileContent::Bytes(bytes.into()), mode),
            Err(e) => (FileContent::Unreadable(e.to_string()), mode),
        }
    }
}

/// The visible files of `root`: tracked files present in the work tree plus
/// untracked files that are not ignored; for a plain directory, every file
/// not ignored by `.gitignore`. Sorted, repo-relative, `/`-separated.
///
/// One parallel, ignore-aware walk finds every non-ignored file; tracked
/// files it did not see (inside ignored directories) are checked with
/// `lstat`, so a tracked file counts exactly when it is present.
pub fn visible_files(root: &Path) -> Result<Vec<String>, Error> {
    // The index is read while the tree is walked.
    let (walked, index) = std::thread::scope(|scope| {
        let index = scope.spawn(|| read_index(root));
        let walked = walk(root);
        let index = index
            .join()
            .unwrap_or_else(|_| Err(Error::Git("reading the index panicked".into())));
        (walked, index)
    });
    let index = index?;
    let mut out: Vec<String> = walked.iter().cloned().collect();
    if let Some(index) = index {
        for entry in index.entries() {
            let Ok(path) = std::str::from_utf8(entry.path(&index)) else {
                continue;
            };
            if walked.contains(path) {
                continue;
            }
            // Tracked files deleted from the work tree are not visible.
            if std::fs::symlink_metadata(root.join(path)).is_ok() {
                out.push(path.to_string());
            }
        }
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// The index of the repository at `root`, or `None` for a plain directory.
fn read_index(root: &Path) -> Result<Option<gix::index::File>, Error> {
    let Ok(repo) = crate::repo::git::open(root) else {
        return Ok(None);
    };
    // Read the index without verifying its trailing checksum: git just
    // wrote it, and hashing the whole file is most of the cost.
    gix::index::File::at_or_default(
        repo.index_path(),
        repo.object_hash(),
        true,
        Default::default(),
    )
    .map(Some)
    .map_err(|e| Error::Git(format!("cannot read the index: {e}")))
}

/// Every non-ignored file below `root` (files and symlinks), in parallel.
fn walk(root: &Path) -> std::collections::HashSet<String> {
    let found = std::sync::Mutex::new(std::collections::HashSet::new());
    let mut walk = ignore::WalkBuilder::new(root);
    walk.hidden(false)
        .parents(false)
        .git_ignore(true)
        .git_exclude(true)
        .git_global(true)
        .require_git(false)
        .ignore(false)
        .threads(std::thread::available_parallelism().map_or(2, |n| n.get().min(8)))
        .filter_entry(|e| e.file_name() != ".git");
    walk.build_parallel().run(|| {
        let found = &found;
        Box::new(move |entry| {
            use ignore::WalkState;
            let Ok(entry) = entry else {
                // Unreadable directories: nothing inside can be an input we know of.
                return WalkState::Continue;
            };
            let is_file = entry
                .file_type()
                .is_some_and(|t| t.is_file() || t.is_symlink());
            if is_file
                && let Ok(rel) = entry.path().strip_prefix(root)
                // Non-UTF-8 names cannot be named in a pipeline; skip them.
                && let Some(rel) = rel.to_str()
                && !rel.is_empty()
                && let Ok(mut f) = found.lock()
            {
                f.insert(rel.replace(std::path::MAIN_SEPARATOR, "/"));
            }
            WalkState::Continue
        })
    });
    found.into_inner().unwrap_or_default()
}
