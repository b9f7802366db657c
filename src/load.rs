//! Loading a checkout into the engine's inputs: the visible files (SPEC §1)
//! and a loader that reads file contents from disk on demand.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use pipetrim_queries::{FileContent, FileMode, Loaded, Loader, Stamp};

use crate::error::Error;

/// Reads files below a root directory. With the git index, a file whose
/// work-tree stat matches its index entry is stamped with the entry's blob
/// id without being read (as `git status` decides a file is unchanged);
/// any other file is read and hashed.
pub struct DiskLoader {
    root: PathBuf,
    index: RwLock<Option<Arc<gix::index::File>>>,
}

impl DiskLoader {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        DiskLoader {
            root: root.into(),
            index: RwLock::new(None),
        }
    }

    /// A loader that takes blob ids from `index` where the work tree agrees.
    pub fn with_index(root: impl Into<PathBuf>, index: Option<Arc<gix::index::File>>) -> Self {
        DiskLoader {
            root: root.into(),
            index: RwLock::new(index),
        }
    }

    /// Replaces the index blob ids are taken from (after `.git/index` changed).
    pub fn set_index(&self, index: Option<Arc<gix::index::File>>) {
        *self.index.write().unwrap_or_else(|e| e.into_inner()) = index;
    }

    fn index(&self) -> Option<Arc<gix::index::File>> {
        self.index.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The blob id the index holds for `path`, if the file at `full` (a
    /// regular file, with metadata `meta`) is known to still have it: stage
    /// 0, same stat, not racily clean (modified in the second the index was
    /// written). Symlinks never qualify: the index holds the link text, the
    /// loader returns the target's bytes.
    fn index_blob(&self, path: &str, meta: &gix::index::fs::Metadata) -> Option<[u8; 20]> {
        let index = self.index()?;
        let entry =
            index.entry_by_path_and_stage(path.into(), gix::index::entry::Stage::Unconflicted)?;
        if !matches!(
            entry.mode,
            gix::index::entry::Mode::FILE | gix::index::entry::Mode::FILE_EXECUTABLE
        ) {
            return None;
        }
        let options = gix::index::entry::stat::Options::default();
        let stat = gix::index::entry::Stat::from_fs(meta).ok()?;
        if !entry.stat.matches(&stat, options) || entry.stat.is_racy(index.timestamp(), options) {
            return None;
        }
        let id: [u8; 20] = entry.id.as_slice().try_into().ok()?;
        Some(id)
    }
}

/// Files larger than this are not read into memory (so never parsed nor
/// hashed): they are `Unreadable`, which keeps steps fail safe and makes a
/// fingerprint that needs one an error naming the file.
pub const MAX_PARSE_BYTES: u64 = 64 * 1024 * 1024;

fn mode_of(meta: &std::fs::Metadata) -> FileMode {
    if meta.file_type().is_symlink() {
        FileMode::Symlink
    } else if meta.permissions().mode() & 0o100 != 0 {
        FileMode::Executable
    } else {
        FileMode::Regular
    }
}

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
        let mode = mode_of(&meta);
        (read_checked(&full).0, mode)
    }

    fn stamp(&self, path: &str) -> (Stamp, FileMode) {
        let full = self.root.join(path);
        let meta = match std::fs::symlink_metadata(&full) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return (Stamp::Missing, FileMode::Regular);
            }
            Err(e) => return (Stamp::Unreadable(e.to_string()), FileMode::Regular),
        };
        let mode = mode_of(&meta);
        if meta.file_type().is_file()
            && meta.len() <= MAX_PARSE_BYTES
            && let Ok(gmeta) = gix::index::fs::Metadata::from_path_no_follow(&full)
            && let Some(id) = self.index_blob(path, &gmeta)
        {
            return (Stamp::Blob(id), mode);
        }
        (Stamp::of(&read_checked(&full).0), mode)
    }

    fn load_stamped(&self, path: &str, stamp: &Stamp) -> Loaded {
        let full = self.root.join(path);
        let (content, after) = read_checked(&full);
        // Unchanged since stamped: the stat taken after reading still matches
        // the index entry whose blob the stamp names. Otherwise hash.
        let verified = match (&content, stamp) {
            (FileContent::Bytes(b), Stamp::Blob(id)) => {
                after
                    .and_then(|m| self.index_blob(path, &m))
                    .is_some_and(|i| i == *id)
                    || pipetrim_queries::db::blob_id(b) == *id
            }
            _ => false,
        };
        Loaded { content, verified }
    }
}

/// Reads `full` (following symlinks) within the size bound; with the
/// file's metadata taken after the read (regular files only).
fn read_checked(full: &Path) -> (FileContent, Option<gix::index::fs::Metadata>) {
    let target = match std::fs::metadata(full) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return (FileContent::Missing, None);
        }
        Err(e) => return (FileContent::Unreadable(e.to_string()), None),
    };
    if target.is_dir() {
        return (FileContent::Unreadable("is a directory".into()), None);
    }
    if target.len() > MAX_PARSE_BYTES {
        return (
            FileContent::Unreadable(format!("is larger than {MAX_PARSE_BYTES} bytes")),
            None,
        );
    }
    let mut f = match std::fs::File::open(full) {
        Ok(f) => f,
        Err(e) => return (FileContent::Unreadable(e.to_string()), None),
    };
    let mut bytes = Vec::with_capacity(usize::try_from(target.len()).unwrap_or(0));
    if let Err(e) = std::io::Read::read_to_end(&mut f, &mut bytes) {
        return (FileContent::Unreadable(e.to_string()), None);
    }
    let after = std::fs::symlink_metadata(full)
        .ok()
        .filter(|m| m.file_type().is_file())
        .and_then(|_| gix::index::fs::Metadata::from_file(&f).ok());
    (FileContent::Bytes(bytes.into()), after)
}

/// The visible files of `root`: tracked files present in the work tree plus
/// untracked files that are not ignored; for a plain directory, every file
/// not ignored by `.gitignore`. Sorted, repo-relative, `/`-separated.
///
/// One parallel, ignore-aware walk finds every non-ignored file; tracked
/// files it did not see (inside ignored directories) are checked with
/// `lstat`, so a tracked file counts exactly when it is present.
pub fn visible_files(root: &Path) -> Result<Vec<String>, Error> {
    Ok(scan(root)?.0)
}

/// The visible files of `root` and its git index (`None` for a plain
/// directory), read once for both the file list and the loader's stamps.
pub fn scan(root: &Path) -> Result<(Vec<String>, Option<Arc<gix::index::File>>), Error> {
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
    if let Some(index) = &index {
        for entry in index.entries() {
            let Ok(path) = std::str::from_utf8(entry.path(index)) else {
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
    Ok((out, index.map(Arc::new)))
}

/// The index of the repository at `root`, or `None` for a plain directory.
pub fn read_index(root: &Path) -> Result<Option<gix::index::File>, Error> {
    let Ok(repo) = crate::git::open(root) else {
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
