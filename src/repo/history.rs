//! Replaying first-parent history from git objects (no checkout, nothing
//! written): the walk `soak` and `stats` share. One database is moved from
//! commit to commit, as `watch` does when HEAD moves, so each commit costs
//! only what changed (about 8 ms on Materialize), not a cold plan.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use gix::ObjectId;
use pipetrim_queries::Diagnostic;
use pipetrim_queries::plan::{Plan, plan};
use pipetrim_queries::prime::prime_plan;

use crate::error::Error;
use crate::repo::gitload::TreeLoader;
use crate::repo::session::{Session, SessionOptions};

/// Opens the git dir (or a work tree's repository) read-only: isolated
/// from the user's and the system's configuration, nothing is written.
pub fn open(gitdir: &Path) -> Result<gix::Repository, Error> {
    gix::open_opts(gitdir, gix::open::Options::isolated()).map_err(|e| {
        Error::Git(format!(
            "`{}` is not a git repository: {e}",
            gitdir.display()
        ))
    })
}

/// `n` first-parent commits ending at `from`, oldest first, each with its
/// first parent. Fewer if the history is shorter.
pub fn first_parent_chain(
    repo: &gix::Repository,
    from: &str,
    n: usize,
) -> Result<Vec<(ObjectId, ObjectId)>, Error> {
    let start = repo
        .rev_parse_single(from)
        .map_err(|e| Error::Usage(format!("`{from}` does not name a revision: {e}")))?
        .object()
        .map_err(|e| Error::Git(e.to_string()))?
        .peel_to_commit()
        .map_err(|e| Error::Usage(format!("`{from}` does not name a commit: {e}")))?
        .id;
    let mut out = Vec::with_capacity(n);
    let mut cur = start;
    while out.len() < n {
        let commit = repo
            .find_commit(cur)
            .map_err(|e| Error::Git(format!("cannot read commit {cur}: {e}")))?;
        let Some(parent) = commit.parent_ids().next() else {
            break;
        };
        let parent = parent.detach();
        out.push((cur, parent));
        cur = parent;
    }
    out.reverse();
    Ok(out)
}

/// A session whose files are one commit's tree, moved along a history.
pub struct Replay {
    repo: gix::Repository,
    root: PathBuf,
    opts: SessionOptions,
    loader: Arc<TreeLoader>,
    /// The database at the loader's commit, with the last change set.
    pub session: Session,
}

impl Replay {
    /// A replay over `repo` (`root` names it in diagnostics), at no commit
    /// yet: every path is missing until [`Self::move_to`].
    pub fn new(repo: gix::Repository, root: &Path, opts: &SessionOptions) -> Self {
        let loader = Arc::new(TreeLoader::new(repo.clone().into_sync()));
        let session = Session::from_parts(root, Vec::new(), loader.clone(), opts);
        Replay {
            repo,
            root: root.to_path_buf(),
            opts: opts.clone(),
            loader,
            session,
        }
    }

    pub fn repo(&self) -> &gix::Repository {
        &self.repo
    }

    /// The loader, at the commit the session is at.
    pub fn loader(&self) -> &Arc<TreeLoader> {
        &self.loader
    }

    /// Moves the database to `commit`'s tree: the new file list, and every
    /// path a query read whose blob differs from the previous tree's is
    /// reloaded. On error (the tree cannot be read) nothing moved.
    pub fn move_to(&mut self, commit: ObjectId) -> Result<(), Error> {
        let before = self.loader.index();
        let files = self.loader.set_commit(commit)?;
        let after = self.loader.index();
        self.session.set_files(files);
        for path in self.session.db.loaded_paths() {
            if before.get(&path) != after.get(&path) {
                self.session.db.reload(&path);
            }
        }
        Ok(())
    }

    /// Moves to `commit` with the change set `parent..commit` (the tree
    /// diff: deletions count, and renames as both paths); returns that
    /// change set. On error (a tree cannot be read) nothing moved.
    pub fn advance(&mut self, parent: ObjectId, commit: ObjectId) -> Result<Vec<String>, Error> {
        let changes = crate::repo::git::diff_paths(&self.repo, parent, commit)?;
        self.move_to(commit)?;
        self.session.set_changes(changes.clone(), None);
        Ok(changes)
    }

    /// A fresh database at the current commit (after a panic may have left
    /// the old one mid-update); the change set is empty again.
    pub fn restart(&mut self) {
        let files = self.loader.index().paths();
        self.session = self.fresh(self.loader.clone(), files);
    }

    /// A new session over `loader` and `files`, with this replay's options.
    pub fn fresh(&self, loader: Arc<TreeLoader>, files: Vec<String>) -> Session {
        Session::from_parts(&self.root, files, loader, &self.opts)
    }
}

/// The plan, as `trim` computes it (primed in parallel first); `None` when
/// it panicked (the caller should [`Replay::restart`]).
pub fn evaluate(s: &Session) -> Option<Result<Arc<Plan>, Diagnostic>> {
    catch_unwind(AssertUnwindSafe(|| {
        prime_plan(&s.db, s.ws);
        plan(&s.db, s.ws).clone()
    }))
    .ok()
}
