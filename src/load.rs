//! Loading a checkout into the engine's inputs: the visible files (SPEC §1)
//! and a loader that reads file contents from disk on demand.

use std::collections::BTreeSet;
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
pub fn visible_files(root: &Path) -> Result<Vec<String>, Error> {
    let mut out: BTreeSet<String> = BTreeSet::new();
    let repo = crate::git::open(root).ok();
    if let Some(repo) = &repo {
        let index = repo
            .index_or_empty()
            .map_err(|e| Error::Git(format!("cannot read the index: {e}")))?;
        for entry in index.entries() {
            let path = entry.path(&index);
            let Ok(path) = std::str::from_utf8(path) else {
                continue;
            };
            // Tracked files deleted from the work tree are not visible.
            if std::fs::symlink_metadata(root.join(path)).is_ok() {
                out.insert(path.to_string());
            }
        }
    }
    let mut walk = ignore::WalkBuilder::new(root);
    walk.hidden(false)
        .parents(false)
        .git_ignore(true)
        .git_exclude(true)
        .git_global(true)
        .require_git(false)
        .ignore(false)
        .filter_entry(|e| e.file_name() != ".git");
    for entry in walk.build() {
        let entry = match entry {
            Ok(e) => e,
            // Unreadable directories: what is inside cannot be an input we know of.
            Err(_) => continue,
        };
        let is_file = entry
            .file_type()
            .is_some_and(|t| t.is_file() || t.is_symlink());
        if !is_file {
            continue;
        }
        let Ok(rel) = entry.path().strip_prefix(root) else {
            continue;
        };
        let Some(rel) = rel.to_str() else {
            // Non-UTF-8 names cannot be named in a pipeline; skip them.
            continue;
        };
        if !rel.is_empty() {
            out.insert(rel.replace(std::path::MAIN_SEPARATOR, "/"));
        }
    }
    Ok(out.into_iter().collect())
}
