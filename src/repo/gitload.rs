//! Reading a commit's tree straight from git objects: no checkout, nothing
//! written. Used by `pipetrim soak` and `pipetrim stats` (through
//! [`crate::repo::history`]) to evaluate many commits of a history.
//!
//! Symlinks: git stores a symlink as a blob holding the link target, and that
//! target text is what [`TreeLoader`] returns (with [`FileMode::Symlink`]).
//! The [`DiskLoader`](crate::repo::load::DiskLoader) follows symlinks instead, so
//! fingerprints of images with symlinked inputs differ from a work tree's.
//! The soak compares plans (incremental against from scratch, both through
//! this loader), never fingerprints, so this does not matter there.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, RwLock};

use gix::ObjectId;
use pipetrim_queries::{FileContent, FileMode, Loaded, Loader, Stamp, Unreadable};

use crate::error::Error;

/// The blobs of one commit's tree: path → (blob id, mode).
#[derive(Debug, Default)]
pub struct TreeIndex {
    pub commit: Option<ObjectId>,
    entries: HashMap<String, (ObjectId, FileMode)>,
}

impl TreeIndex {
    /// Indexes the tree of `commit` (files and symlinks; submodules and
    /// non-UTF-8 paths are left out, as `visible_files` leaves them out).
    pub fn of(repo: &gix::Repository, commit: ObjectId) -> Result<Self, Error> {
        let tree = repo
            .find_commit(commit)
            .and_then(|c| c.tree())
            .map_err(|e| Error::Git(format!("cannot read the tree of {commit}: {e}")))?;
        let mut rec = gix::traverse::tree::Recorder::default();
        tree.traverse()
            .breadthfirst(&mut rec)
            .map_err(|e| Error::Git(format!("cannot walk the tree of {commit}: {e}")))?;
        let mut entries = HashMap::with_capacity(rec.records.len());
        for r in rec.records {
            let mode = if r.mode.is_link() {
                FileMode::Symlink
            } else if r.mode.is_executable() {
                FileMode::Executable
            } else if r.mode.is_blob() {
                FileMode::Regular
            } else {
                continue; // trees, submodules
            };
            // A name that is not UTF-8 lossily (U+FFFD): its blob is still
            // read, under the name a pipeline can show.
            let path = String::from_utf8_lossy(&r.filepath).into_owned();
            entries.insert(path, (r.oid, mode));
        }
        Ok(TreeIndex {
            commit: Some(commit),
            entries,
        })
    }

    /// The sorted paths of the tree.
    pub fn paths(&self) -> Vec<String> {
        let mut v: Vec<String> = self.entries.keys().cloned().collect();
        v.sort();
        v
    }

    pub fn get(&self, path: &str) -> Option<(ObjectId, FileMode)> {
        self.entries.get(path).copied()
    }
}

/// A [`Loader`] over the tree of a commit. The commit can be switched
/// ([`TreeLoader::set_commit`]); the database must then be told which paths
/// changed (`Database::reload`), as `watch` does for a moved HEAD.
pub struct TreeLoader {
    repo: gix::ThreadSafeRepository,
    index: RwLock<Arc<TreeIndex>>,
    /// Paths whose blob could not be read (a partial clone lacks it, or
    /// the object store is damaged): the model treats them fail safe, and
    /// `stats` says which they were.
    unreadable: Mutex<BTreeSet<String>>,
}

impl TreeLoader {
    /// A loader over `repo` (opened read-only; nothing is written), not yet
    /// at any commit: every path is missing until [`Self::set_commit`].
    pub fn new(repo: gix::ThreadSafeRepository) -> Self {
        TreeLoader {
            repo,
            index: RwLock::new(Arc::default()),
            unreadable: Mutex::default(),
        }
    }

    /// Moves the loader to `commit`; returns the tree's sorted paths.
    pub fn set_commit(&self, commit: ObjectId) -> Result<Vec<String>, Error> {
        let idx = TreeIndex::of(&self.repo.to_thread_local(), commit)?;
        let paths = idx.paths();
        *self.index.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(idx);
        Ok(paths)
    }

    /// The current tree.
    pub fn index(&self) -> Arc<TreeIndex> {
        self.index.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// A second loader fixed at this loader's current commit.
    pub fn snapshot(&self) -> TreeLoader {
        TreeLoader {
            repo: self.repo.clone(),
            index: RwLock::new(self.index()),
            unreadable: Mutex::default(),
        }
    }

    /// The paths whose blob could not be read so far.
    pub fn unreadable(&self) -> Vec<String> {
        let set = self.unreadable.lock().unwrap_or_else(|e| e.into_inner());
        set.iter().cloned().collect()
    }
}

impl Loader for TreeLoader {
    fn load(&self, path: &str) -> (FileContent, FileMode) {
        let Some((oid, mode)) = self.index().get(path) else {
            return (FileContent::Missing, FileMode::Regular);
        };
        (self.read_blob(path, oid), mode)
    }

    /// The tree names every blob: nothing is read.
    fn stamp(&self, path: &str) -> (Stamp, FileMode) {
        match self.index().get(path) {
            Some((oid, mode)) => match oid.as_slice().try_into() {
                Ok(id) => (Stamp::Blob(id), mode),
                Err(_) => (Stamp::of(&self.read_blob(path, oid)), mode),
            },
            None => (Stamp::Missing, FileMode::Regular),
        }
    }

    /// Reads the blob the stamp names, whatever the current commit.
    fn load_stamped(&self, path: &str, stamp: &Stamp) -> Loaded {
        match stamp.blob().and_then(|b| ObjectId::try_from(&b[..]).ok()) {
            Some(oid) => Loaded {
                content: self.read_blob(path, oid),
                verified: true,
            },
            None => {
                let (content, _) = self.load(path);
                Loaded {
                    verified: Stamp::of(&content) == *stamp,
                    content,
                }
            }
        }
    }
}

impl TreeLoader {
    /// The blob's content; one that cannot be found is remembered as
    /// `path` (see [`TreeLoader::unreadable`]).
    fn read_blob(&self, path: &str, oid: ObjectId) -> FileContent {
        let content = blob_content(&self.repo.to_thread_local(), oid);
        if matches!(content, FileContent::Unreadable(Unreadable::Io(_))) {
            self.unreadable
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(path.to_string());
        }
        content
    }
}

/// A blob's bytes from the object store; as the disk loader, a blob over
/// [`MAX_PARSE_BYTES`](crate::repo::load::MAX_PARSE_BYTES) is not read, and
/// one that cannot be found is unreadable (fail safe).
pub(crate) fn blob_content(repo: &gix::Repository, oid: ObjectId) -> FileContent {
    if let Ok(h) = repo.find_header(oid)
        && h.size() > crate::repo::load::MAX_PARSE_BYTES
    {
        return FileContent::Unreadable(Unreadable::TooLarge {
            limit: crate::repo::load::MAX_PARSE_BYTES,
        });
    }
    match repo.find_blob(oid) {
        Ok(blob) => FileContent::Bytes(blob.data.clone().into()),
        Err(e) => FileContent::Unreadable(Unreadable::Io(e.to_string())),
    }
}

/// The sorted file paths of `commit`'s tree.
pub fn tree_files(repo: &gix::Repository, commit: ObjectId) -> Result<Vec<String>, Error> {
    Ok(TreeIndex::of(repo, commit)?.paths())
}
