//! `--from-index`: the checkout as git's index records it, without looking
//! at the work tree.
//!
//! A CI job on a fresh checkout has a work tree equal to its index, and
//! proving that file by file (`lstat` of every input, a stat of every
//! directory for untracked files) is most of a warm run. This mode answers
//! for the index instead, exactly: the files are the index entries (as
//! `git ls-files` lists them), each stamped with its entry's blob id, and a
//! file whose bytes are needed is read from the work tree only when its
//! stat matches the entry or its bytes hash to that blob; otherwise the
//! blob comes from the object store. So a
//! dirty work tree never changes the answer (nor poisons the cache): the
//! answer is the index's. Untracked files and unstaged edits are not seen.

use std::path::Path;
use std::sync::Arc;

use gix::index::entry::{Flags, Mode, Stage};
use pipetrim_queries::{FileContent, FileMode, Loaded, Loader, Stamp};

use crate::error::Error;
use crate::repo::gitload::blob_content;
use crate::repo::load::{DiskLoader, read_checked, read_repo_index};

/// Reads the index's version of every file it holds as a regular file;
/// everything else (symlinks, submodules, conflicts, intent-to-add
/// entries, paths the index lacks) as the [`DiskLoader`] does.
pub struct IndexLoader {
    index: Arc<gix::index::File>,
    repo: gix::ThreadSafeRepository,
    disk: DiskLoader,
}

impl IndexLoader {
    /// The sorted files of the index of `root`'s repository, and a loader
    /// of their index versions.
    pub fn open(root: &Path) -> Result<(Vec<String>, Self), Error> {
        let repo = crate::repo::git::open(root).map_err(|e| {
            Error::Usage(format!(
                "--from-index needs a git checkout: {e} (hint: drop --from-index)"
            ))
        })?;
        crate::timeline::mark("git open");
        let index = Arc::new(read_repo_index(&repo)?);
        crate::timeline::mark("index");
        Ok((
            index_files(&index),
            IndexLoader {
                disk: DiskLoader::with_index(root, Some(Arc::clone(&index))),
                index,
                repo: repo.into_sync(),
            },
        ))
    }

    /// The blob id and mode the index holds for `path` as a regular file
    /// (stage 0, not intent-to-add), if it does.
    fn entry(&self, path: &str) -> Option<([u8; 20], FileMode)> {
        let e = self
            .index
            .entry_by_path_and_stage(path.into(), Stage::Unconflicted)?;
        if e.flags.contains(Flags::INTENT_TO_ADD) {
            return None;
        }
        let mode = match e.mode {
            Mode::FILE => FileMode::Regular,
            Mode::FILE_EXECUTABLE => FileMode::Executable,
            _ => return None,
        };
        Some((e.id.as_slice().try_into().ok()?, mode))
    }

    /// The bytes of blob `id`: the work tree's file if it holds exactly
    /// them (the common case, and cheaper than the object store), else the
    /// object store's. Whether it does is decided as `git status` would:
    /// by its stat against the index entry, else by hashing the bytes.
    fn blob(&self, path: &str, id: [u8; 20]) -> FileContent {
        let (content, after) = read_checked(&self.disk.root().join(path));
        if let FileContent::Bytes(b) = &content
            && (after.and_then(|m| self.disk.index_blob(path, &m)) == Some(id)
                || pipetrim_queries::db::blob_id(b) == id)
        {
            return content;
        }
        blob_content(&self.repo.to_thread_local(), gix::ObjectId::from(id))
    }
}

/// The index's paths, sorted and once each (a conflict has up to three
/// entries). A name that is not UTF-8 is left out, as the work-tree scan
/// leaves out such tracked names.
fn index_files(index: &gix::index::File) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(index.entries().len());
    out.extend(
        index
            .entries()
            .iter()
            .filter_map(|e| std::str::from_utf8(e.path(index)).ok().map(str::to_string)),
    );
    if !out.is_sorted() {
        out.sort();
    }
    out.dedup();
    out
}

impl Loader for IndexLoader {
    fn load(&self, path: &str) -> (FileContent, FileMode) {
        match self.entry(path) {
            Some((id, mode)) => (self.blob(path, id), mode),
            None => self.disk.load(path),
        }
    }

    /// The entry's blob id: nothing is read, nothing is stat'ed.
    fn stamp(&self, path: &str) -> (Stamp, FileMode) {
        match self.entry(path) {
            Some((id, mode)) => (Stamp::Blob(id), mode),
            None => self.disk.stamp(path),
        }
    }

    fn load_stamped(&self, path: &str, stamp: &Stamp) -> Loaded {
        match (self.entry(path), stamp) {
            // The bytes read are that blob, from either side: verified
            // (an object store that fails is not).
            (Some((id, _)), Stamp::Blob(s)) if id == *s => {
                let content = self.blob(path, id);
                Loaded {
                    verified: matches!(content, FileContent::Bytes(_)),
                    content,
                }
            }
            _ => self.disk.load_stamped(path, stamp),
        }
    }
}
