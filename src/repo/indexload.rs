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
use pipetrim_queries::db::KnownStamps;
use pipetrim_queries::{FileContent, FileMode, Loaded, Loader, Stamp};

use crate::error::Error;
use crate::repo::gitload::blob_content;
use crate::repo::load::{DiskLoader, read_expecting, read_repo_index};

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
    pub fn open(root: &Path) -> Result<(Vec<String>, Option<KnownStamps>, Self), Error> {
        let repo = crate::repo::git::open(root).map_err(|e| {
            Error::Usage(format!(
                "--from-index needs a git checkout: {e} (hint: drop --from-index)"
            ))
        })?;
        crate::timeline::mark("git open");
        let index = Arc::new(read_repo_index(&repo)?);
        crate::timeline::mark("index");
        let (files, known) = index_files(&index);
        Ok((
            files,
            known,
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
        self.entry_sized(path).map(|(stamp, _)| stamp)
    }

    /// [`Self::entry`], with the file's size as the index records it.
    fn entry_sized(&self, path: &str) -> Option<(([u8; 20], FileMode), u32)> {
        let e = self
            .index
            .entry_by_path_and_stage(path.into(), Stage::Unconflicted)?;
        Some((entry_stamp(e)?, e.stat.size))
    }

    /// The bytes of blob `id`: the work tree's file if it holds exactly
    /// them (the common case, and cheaper than the object store), else the
    /// object store's. Whether it does is decided as `git status` would:
    /// by its stat against the index entry, else by hashing the bytes.
    fn blob(&self, path: &str, id: [u8; 20], size: u32) -> FileContent {
        let (content, after) = read_expecting(&self.disk.root().join(path), size.into());
        if let FileContent::Bytes(b) = &content
            && self.disk.holds_blob(path, after.as_ref(), id, || {
                Some(pipetrim_queries::db::blob_id(b))
            })
        {
            return content;
        }
        blob_content(&self.repo.to_thread_local(), gix::ObjectId::from(id))
    }
}

/// The index's paths, sorted and once each (a conflict has up to three
/// entries), and what [`IndexLoader::stamp`] gives each of them when that
/// is its entry's blob id ([`FileSet::known`](pipetrim_queries::FileSet::known)).
/// A name that is not UTF-8 is left out, as the work-tree scan leaves out
/// such tracked names.
fn index_files(index: &gix::index::File) -> (Vec<String>, Option<KnownStamps>) {
    let mut out: Vec<String> = Vec::with_capacity(index.entries().len());
    let mut known: Vec<Option<([u8; 20], FileMode)>> = Vec::with_capacity(out.capacity());
    for e in index.entries() {
        let Ok(path) = std::str::from_utf8(e.path(index)) else {
            continue;
        };
        let stamp = entry_stamp(e);
        if out.last().is_some_and(|last| last == path) {
            // Another stage of a conflicted path: no stage 0 entry, so
            // the loader answers from the disk.
            if let Some(k) = known.last_mut() {
                *k = None;
            }
            continue;
        }
        out.push(path.to_string());
        known.push(stamp);
    }
    if !out.is_sorted() {
        // Not in the order the index is kept in: the positions would not
        // line up once sorted, so nothing is known in advance.
        out.sort();
        out.dedup();
        return (out, None);
    }
    (out, Some(known.into()))
}

/// The blob id and mode of a regular, unconflicted entry that is not only
/// intended to be added: what the loader stamps its path with.
fn entry_stamp(e: &gix::index::Entry) -> Option<([u8; 20], FileMode)> {
    if e.stage() != Stage::Unconflicted || e.flags.contains(Flags::INTENT_TO_ADD) {
        return None;
    }
    let mode = match e.mode {
        Mode::FILE => FileMode::Regular,
        Mode::FILE_EXECUTABLE => FileMode::Executable,
        _ => return None,
    };
    Some((e.id.as_slice().try_into().ok()?, mode))
}

impl Loader for IndexLoader {
    fn load(&self, path: &str) -> (FileContent, FileMode) {
        match self.entry_sized(path) {
            Some(((id, mode), size)) => (self.blob(path, id, size), mode),
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
        match (self.entry_sized(path), stamp) {
            // The bytes read are that blob, from either side: verified
            // (an object store that fails is not).
            (Some(((id, _), size)), Stamp::Blob(s)) if id == *s => {
                let content = self.blob(path, id, size);
                Loaded {
                    verified: matches!(content, FileContent::Bytes(_)),
                    content,
                }
            }
            _ => self.disk.load_stamped(path, stamp),
        }
    }

    /// As [`Self::load_stamped`], hashed instead of kept: the work tree's
    /// file when it holds exactly the blob, else the object store's.
    fn sha1_stamped(&self, path: &str, stamp: &Stamp) -> (Option<[u8; 20]>, bool) {
        match (self.entry(path), stamp) {
            (Some((id, _)), Stamp::Blob(s)) if id == *s => {
                if let (Ok(sha), true) = self.disk.digest_verified(path, id) {
                    return (Some(sha), true);
                }
                match blob_content(&self.repo.to_thread_local(), gix::ObjectId::from(id)) {
                    FileContent::Bytes(b) => {
                        use sha1::Digest;
                        (Some(sha1::Sha1::digest(&b).into()), true)
                    }
                    _ => (None, false),
                }
            }
            _ => self.disk.sha1_stamped(path, stamp),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::git::{test_git as git, test_git_output};

    /// The stamps known in advance are, position by position, exactly what
    /// the loader stamps each path with, for every kind of entry: regular,
    /// executable, symlink, conflicted (three stages, no stage 0) and
    /// intent-to-add.
    #[test]
    fn known_stamps_line_up_with_the_loaders_stamps() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let d = tmp.path();
        git(d, &["init", "-q"]);
        std::fs::write(d.join("a.txt"), "a\n").unwrap();
        std::fs::write(d.join("c.txt"), "base\n").unwrap();
        std::fs::write(d.join("run.sh"), "#!/bin/sh\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(d.join("run.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::symlink("a.txt", d.join("link")).unwrap();
        git(d, &["add", "a.txt", "c.txt", "link", "run.sh"]);
        git(d, &["commit", "-qm", "base"]);
        git(d, &["checkout", "-qb", "other"]);
        std::fs::write(d.join("c.txt"), "other\n").unwrap();
        git(d, &["commit", "-qam", "other"]);
        git(d, &["checkout", "-q", "main"]);
        std::fs::write(d.join("c.txt"), "main\n").unwrap();
        git(d, &["commit", "-qam", "main"]);
        // The merge conflicts on c.txt (exit status 1 is expected).
        let _ = test_git_output(d, &["merge", "-q", "other"]);
        std::fs::write(d.join("new.txt"), "new\n").unwrap();
        git(d, &["add", "-N", "new.txt"]);

        let (files, known, loader) = IndexLoader::open(d).expect("opens");
        assert_eq!(files, ["a.txt", "c.txt", "link", "new.txt", "run.sh"]);
        let known = known.expect("the index is sorted");
        assert_eq!(known.len(), files.len());
        for (path, k) in files.iter().zip(known.iter()) {
            match k {
                Some((blob, mode)) => {
                    assert_eq!(loader.stamp(path), (Stamp::Blob(*blob), *mode), "{path}")
                }
                None => assert_eq!(loader.entry(path), None, "{path}"),
            }
        }
        let kinds: Vec<Option<FileMode>> = known.iter().map(|k| k.map(|(_, m)| m)).collect();
        assert_eq!(
            kinds,
            [
                Some(FileMode::Regular),
                None, // conflicted
                None, // symlink
                None, // intent to add
                Some(FileMode::Executable),
            ]
        );
    }
}
