//! The change set (SPEC §5) with gix: merge base of HEAD and the base ref,
//! tree-to-tree diff to HEAD, deletions and both sides of renames counted.

use std::collections::BTreeSet;
use std::path::Path;

use crate::error::Error;

pub fn open(root: &Path) -> Result<gix::Repository, Error> {
    let repo = gix::open(root)
        .map_err(|e| Error::Git(format!("`{}` is not a git repository: {e}", root.display())))?;
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
            .and_then(|c| c.tree().map_err(Into::into))
            .map_err(|e| Error::Git(format!("cannot read the tree of {id}: {e}")))
    };
    let old_tree = tree_of(old)?;
    let new_tree = tree_of(new)?;
    let mut opts = gix::diff::Options::default();
    opts.track_path();
    let opts = opts.with_rewrites(None);
    let changes = repo
        .diff_tree_to_tree(&old_tree, &new_tree, opts)
        .map_err(|e| Error::Git(format!("cannot diff {old}..{new}: {e}")))?;
    let mut out = BTreeSet::new();
    for c in changes {
        let (mode, _) = c.entry_mode_and_id();
        if mode.is_tree() {
            continue;
        }
        for loc in [c.location(), c.source_location()] {
            if let Ok(s) = std::str::from_utf8(loc) {
                out.insert(s.to_string());
            }
        }
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
    let mut out = BTreeSet::new();
    let mut add = |p: &[u8]| {
        if let Ok(s) = std::str::from_utf8(p) {
            out.insert(s.to_string());
        }
    };
    for item in iter {
        let item = item.map_err(|e| Error::Git(format!("cannot compute the status: {e}")))?;
        match &item {
            Item::TreeIndex(change) => {
                add(change.location());
                if let gix::diff::index::ChangeRef::Rewrite {
                    source_location, ..
                } = change
                {
                    add(source_location);
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
    Ok(out.into_iter().collect())
}

fn untracked_file(entry: &gix::dir::Entry) -> bool {
    matches!(entry.status, gix::dir::entry::Status::Untracked)
        && !matches!(
            entry.disk_kind,
            Some(gix::dir::entry::Kind::Directory) | Some(gix::dir::entry::Kind::Repository) | None
        )
}
