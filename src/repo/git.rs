//! The change set (SPEC §5) with gix: merge base of HEAD and the base ref,
//! tree-to-tree diff to HEAD, deletions and both sides of renames counted.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::error::Error;

/// The repository at `root`, opened once per process: a `trim` asks for it
/// from the change set's thread and from the session at the same moment,
/// and each open reads the configuration, the refs' layout and the pack
/// indexes again (~0.5 ms and fresh pages). Refs, the index file and
/// objects are still read from disk when used, so a later call sees the
/// repository as it is then; only its configuration is the one read first.
pub fn open(root: &Path) -> Result<gix::Repository, Error> {
    static OPENED: Mutex<Vec<(PathBuf, gix::ThreadSafeRepository)>> = Mutex::new(Vec::new());
    let mut opened = OPENED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, repo)) = opened.iter().find(|(p, _)| p == root) {
        return Ok(repo.to_thread_local());
    }
    let repo = gix::open(root)
        .map_err(|e| Error::Git(format!("`{}` is not a git repository: {e}", root.display())))?;
    opened.push((root.to_path_buf(), repo.clone().into_sync()));
    Ok(repo)
}

/// What changed, or why that cannot be known (then nothing is trimmed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Changes {
    Known {
        base: String,
        merge_base: String,
        paths: Vec<String>,
    },
    Unknown(String),
}

/// Changed paths between the merge base of HEAD and `base` (or the default
/// `origin/main`, then `main`) and HEAD.
pub fn changes_against(root: &Path, base: Option<&str>) -> Changes {
    match try_changes(root, base) {
        Ok(c) => c,
        Err(e) => Changes::Unknown(e.to_string()),
    }
}

fn try_changes(root: &Path, base: Option<&str>) -> Result<Changes, Error> {
    let repo = open(root)?;
    let head = repo
        .head_id()
        .map_err(|e| Error::Git(format!("HEAD does not name a commit: {e}")))?
        .detach();
    let candidates: Vec<&str> = match base {
        Some(b) => vec![b],
        None => vec!["origin/main", "main"],
    };
    let mut base_id = None;
    for c in &candidates {
        if let Ok(id) = repo.rev_parse_single(*c) {
            base_id = Some((c.to_string(), id.detach()));
            break;
        }
    }
    let Some((base_name, base_id)) = base_id else {
        return Err(Error::Git(format!(
            "base ref {} not found (hint: fetch it, or pass --base REF)",
            candidates
                .iter()
                .map(|c| format!("`{c}`"))
                .collect::<Vec<_>>()
                .join(" or ")
        )));
    };
    let base_commit = peel_to_commit(&repo, base_id, &base_name)?;
    let shallow = repo.is_shallow().unwrap_or(false);
    let mb = match repo.merge_base(head, base_commit) {
        Ok(Some(id)) => id.detach(),
        Ok(None) => {
            return Err(Error::Git(format!(
                "HEAD and `{base_name}` have no merge base{}",
                if shallow {
                    " (the clone is shallow: fetch more history with `git fetch --unshallow`)"
                } else {
                    ""
                }
            )));
        }
        Err(e) => {
            return Err(Error::Git(format!(
                "cannot compute the merge base of HEAD and `{base_name}`: {e}{}",
                if shallow {
                    " (the clone is shallow: fetch more history with `git fetch --unshallow`)"
                } else {
                    ""
                }
            )));
        }
    };
    if shallow {
        // A shallow clone may stop walking before the true merge base: only
        // trust a merge base whose commit we actually have with its parents.
        let commit = repo
            .find_commit(mb)
            .map_err(|e| Error::Git(format!("merge base missing in shallow clone: {e}")))?;
        let parents_present = commit
            .parent_ids()
            .all(|p| repo.find_commit(p.detach()).is_ok());
        if !parents_present && mb != base_commit {
            return Err(Error::Git(
                "the clone is shallow and the merge base may be wrong (hint: `git fetch --unshallow`)".into(),
            ));
        }
    }
    let paths = diff_paths(&repo, mb, head)?;
    Ok(Changes::Known {
        base: base_name,
        merge_base: mb.to_string(),
        paths,
    })
}

fn peel_to_commit(
    repo: &gix::Repository,
    id: gix::ObjectId,
    name: &str,
) -> Result<gix::ObjectId, Error> {
    let obj = repo
        .find_object(id)
        .map_err(|e| Error::Git(format!("`{name}`: {e}")))?;
    let commit = obj
        .peel_to_commit()
        .map_err(|e| Error::Git(format!("`{name}` does not name a commit: {e}")))?;
    Ok(commit.id)
}

/// Paths that differ between two commits' trees (no rename detection: a
/// rename is a deletion and an addition, so both sides count).
pub fn diff_paths(
    repo: &gix::Repository,
    old: gix::ObjectId,
    new: gix::ObjectId,
) -> Result<Vec<String>, Error> {
    let tree_of = |id: gix::ObjectId| -> Result<gix::Tree<'_>, Error> {
        repo.find_commit(id)
            .and_then(|c| c.tree())
            .map_err(|e| Error::Git(format!("cannot read the tree of {id}: {e}")))
    };
    let old_tree = tree_of(old)?;
    let new_tree = tree_of(new)?;
    // The plain tree diff: no rename tracking and no blob-diff resource
    // cache (whose setup reads attributes and cost more than the diff).
    let mut recorder = gix::diff::tree::Recorder::default();
    gix::diff::tree(
        gix::objs::TreeRefIter::from_bytes(&old_tree.data, old_tree.id.kind()),
        gix::objs::TreeRefIter::from_bytes(&new_tree.data, new_tree.id.kind()),
        gix::diff::tree::State::default(),
        &repo.objects,
        &mut recorder,
    )
    .map_err(|e| Error::Git(format!("cannot diff {old}..{new}: {e}")))?;
    let mut out = BTreeSet::new();
    for c in recorder.records {
        use gix::diff::tree::recorder::Change;
        let (mode, path) = match &c {
            Change::Addition {
                entry_mode, path, ..
            }
            | Change::Deletion {
                entry_mode, path, ..
            }
            | Change::Modification {
                entry_mode, path, ..
            } => (entry_mode, path),
        };
        // A tree entry replaced by a blob (or back) shows both; only blobs
        // (and links, submodules) are paths.
        if mode.is_tree()
            && !matches!(&c, Change::Modification { previous_entry_mode, .. } if !previous_entry_mode.is_tree())
        {
            continue;
        }
        // A non-UTF-8 name is kept (lossily): dropping it made a change
        // to it invisible, and every step, even `inputs: ["*"]`, trimmed.
        out.insert(String::from_utf8_lossy(path).into_owned());
    }
    Ok(out.into_iter().collect())
}

/// Staged, unstaged and untracked (non-ignored) changes relative to HEAD:
/// HEAD tree vs index (both sides of anything the index moved), index vs
/// work tree (modified, deleted, type changes, intent-to-add) and untracked
/// files that no `.gitignore`, `.git/info/exclude` or core.excludesFile
/// ignores. The same set as `git diff --name-only HEAD` plus
/// `git ls-files --others --exclude-standard`. Sorted, deduplicated.
pub fn uncommitted(root: &Path) -> Result<Vec<String>, Error> {
    let parts = uncommitted_parts(root)?;
    let mut all = parts.staged;
    all.extend(parts.worktree);
    Ok(all.into_iter().collect())
}

/// Uncommitted work, split by where it lives, so that a watcher can update
/// the work-tree part one path at a time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Uncommitted {
    /// HEAD tree vs index (both sides of anything the index moved).
    pub staged: BTreeSet<String>,
    /// Index vs work tree (modified, deleted, type changes, conflicts,
    /// intent-to-add) and untracked non-ignored files.
    pub worktree: BTreeSet<String>,
}

/// [`uncommitted`], split into its staged and work-tree parts.
pub fn uncommitted_parts(root: &Path) -> Result<Uncommitted, Error> {
    use gix::status::Item;
    use gix::status::index_worktree::Item as Wt;
    use gix::status::plumbing::index_as_worktree::EntryStatus;

    let repo = open(root)?;
    let status = repo
        .status(gix::progress::Discard)
        .map_err(|e| Error::Git(format!("cannot compute the status: {e}")))?
        .untracked_files(gix::status::UntrackedFiles::Files)
        .index_worktree_rewrites(None)
        .tree_index_track_renames(gix::status::tree_index::TrackRenames::Disabled)
        .index_worktree_submodules(None);
    let iter = status
        .into_iter(Vec::<gix::bstr::BString>::new())
        .map_err(|e| Error::Git(format!("cannot compute the status: {e}")))?;
    let mut out = Uncommitted::default();
    // A non-UTF-8 name is kept (lossily), as `diff_paths` does: dropping it
    // made the change invisible. The plan reports such paths.
    let add_to = |set: &mut BTreeSet<String>, p: &[u8]| {
        set.insert(String::from_utf8_lossy(p).into_owned());
    };
    for item in iter {
        let item = item.map_err(|e| Error::Git(format!("cannot compute the status: {e}")))?;
        let mut add = |p: &[u8]| add_to(&mut out.worktree, p);
        match &item {
            Item::TreeIndex(change) => {
                add_to(&mut out.staged, change.location());
                if let gix::diff::index::ChangeRef::Rewrite {
                    source_location, ..
                } = change
                {
                    add_to(&mut out.staged, source_location);
                }
            }
            Item::IndexWorktree(Wt::Modification {
                rela_path, status, ..
            }) => match status {
                EntryStatus::NeedsUpdate(_) => {}
                EntryStatus::Change(_)
                | EntryStatus::Conflict { .. }
                | EntryStatus::IntentToAdd => add(rela_path),
            },
            Item::IndexWorktree(Wt::DirectoryContents { entry, .. }) => {
                if untracked_file(entry) {
                    add(&entry.rela_path);
                }
            }
            Item::IndexWorktree(Wt::Rewrite {
                source,
                dirwalk_entry,
                ..
            }) => {
                add(source.rela_path());
                if untracked_file(dirwalk_entry) {
                    add(&dirwalk_entry.rela_path);
                }
            }
        }
    }
    Ok(out)
}

/// The index of a checkout, to decide for single paths whether the work
/// tree differs from it (what `git status` does for every tracked file).
pub struct IndexSnapshot {
    hash: gix::hash::Kind,
    entries: std::collections::HashMap<String, IndexEntry>,
}

struct IndexEntry {
    id: gix::ObjectId,
    mode: gix::index::entry::Mode,
    /// Conflicted or intent-to-add: always differs.
    differs: bool,
    /// skip-worktree or assume-unchanged: git does not look, neither do we.
    skip: bool,
}

impl IndexSnapshot {
    pub fn load(root: &Path) -> Result<Self, Error> {
        use gix::index::entry::{Flags, Stage};
        let repo = open(root)?;
        let index = repo
            .index_or_empty()
            .map_err(|e| Error::Git(format!("cannot read the index: {e}")))?;
        let mut entries = std::collections::HashMap::new();
        for e in index.entries() {
            let Ok(path) = std::str::from_utf8(e.path(&index)) else {
                continue;
            };
            let conflicted = e.stage() != Stage::Unconflicted;
            let entry = entries.entry(path.to_string()).or_insert(IndexEntry {
                id: e.id,
                mode: e.mode,
                differs: false,
                skip: false,
            });
            entry.differs |= conflicted || e.flags.contains(Flags::INTENT_TO_ADD);
            entry.skip |=
                e.flags.contains(Flags::SKIP_WORKTREE) || e.flags.contains(Flags::ASSUME_VALID);
        }
        Ok(IndexSnapshot {
            hash: repo.object_hash(),
            entries,
        })
    }

    pub fn is_tracked(&self, path: &str) -> bool {
        self.entries.contains_key(path)
    }

    /// Whether the work tree's `path` differs from the index (modified,
    /// deleted, type or executable bit changed); `None` when untracked.
    /// When the file cannot be read it counts as differing (the safe side).
    pub fn worktree_differs(&self, root: &Path, path: &str) -> Option<bool> {
        use gix::index::entry::Mode;
        let e = self.entries.get(path)?;
        if e.differs {
            return Some(true);
        }
        if e.skip || e.mode == Mode::COMMIT {
            return Some(false);
        }
        let full = root.join(path);
        let Ok(meta) = std::fs::symlink_metadata(&full) else {
            return Some(true);
        };
        let data = if meta.file_type().is_symlink() {
            if e.mode != Mode::SYMLINK {
                return Some(true);
            }
            match std::fs::read_link(&full) {
                Ok(t) => match t.to_str() {
                    Some(t) => t.as_bytes().to_vec(),
                    None => return Some(true),
                },
                Err(_) => return Some(true),
            }
        } else if meta.is_file() {
            use std::os::unix::fs::PermissionsExt;
            let exec = meta.permissions().mode() & 0o100 != 0;
            let want = if exec {
                Mode::FILE_EXECUTABLE
            } else {
                Mode::FILE
            };
            if e.mode != want {
                return Some(true);
            }
            match std::fs::read(&full) {
                Ok(d) => d,
                Err(_) => return Some(true),
            }
        } else {
            return Some(true);
        };
        Some(
            gix::objs::compute_hash(self.hash, gix::objs::Kind::Blob, &data)
                .map_or(true, |id| id != e.id),
        )
    }
}

fn untracked_file(entry: &gix::dir::Entry) -> bool {
    matches!(entry.status, gix::dir::entry::Status::Untracked)
        && !matches!(
            entry.disk_kind,
            Some(gix::dir::entry::Kind::Directory) | Some(gix::dir::entry::Kind::Repository) | None
        )
}

/// Runs git in `dir` for a unit test, isolated from the user's and the
/// system's configuration; its output, whatever the exit status.
#[cfg(test)]
pub(crate) fn test_git_output(dir: &Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new("git")
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .args(["-c", "user.name=t", "-c", "user.email=t@t"])
        .args(["-c", "init.defaultBranch=main"])
        .args(args)
        .output()
        .expect("git runs")
}

/// [`test_git_output`] that must succeed.
#[cfg(test)]
pub(crate) fn test_git(dir: &Path, args: &[&str]) {
    let out = test_git_output(dir, args);
    assert!(out.status.success(), "git {args:?}: {out:?}");
}

#[cfg(test)]
mod tests {
    use super::test_git as git;
    use super::*;

    /// The repository is opened once, but a later open sees new commits
    /// and a new index (as `watch` needs): only the configuration is kept.
    #[test]
    fn a_second_open_sees_the_repository_as_it_is_then() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let d = tmp.path();
        git(d, &["init", "-q"]);
        std::fs::write(d.join("a"), "1\n").unwrap();
        git(d, &["add", "a"]);
        git(d, &["commit", "-qm", "one"]);
        let first = open(d).unwrap().head_id().unwrap().detach();
        std::fs::write(d.join("a"), "2\n").unwrap();
        std::fs::write(d.join("b"), "b\n").unwrap();
        git(d, &["add", "a", "b"]);
        git(d, &["commit", "-qm", "two"]);
        let repo = open(d).unwrap();
        let second = repo.head_id().unwrap().detach();
        assert_ne!(first, second, "HEAD is read again");
        assert_eq!(
            diff_paths(&repo, first, second).unwrap(),
            ["a", "b"],
            "the new objects are found"
        );
        let index = crate::repo::load::read_repo_index(&repo).unwrap();
        assert_eq!(index.entries().len(), 2, "the index is read again");
    }
}
