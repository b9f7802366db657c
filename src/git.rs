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
            .and_then(|c| c.tree())
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
            // A non-UTF-8 name is kept (lossily): dropping it made a change
            // to it invisible, and every step, even `inputs: ["*"]`, trimmed.
            out.insert(String::from_utf8_lossy(loc).into_owned());
        }
    }
    Ok(out.into_iter().collect())
}

/// Staged, unstaged and untracked (non-ignored) changes relative to HEAD.
pub fn uncommitted(root: &Path) -> Result<Vec<String>, Error> {
    let _ = root;
    Err(Error::Git("--uncommitted is not supported yet".into()))
}
