//! `pipetrim watch`: keep one [`Session`] alive, feed it file-system events
//! and answer "which CI steps does my change need?" after every edit.
//!
//! The engine ([`WatchEngine`]) knows nothing of notify: it takes a batch of
//! [`PathChange`]s, updates only the salsa inputs they touch and re-reads the
//! plan from the memoized graph. [`run`] adds the notify watcher, the
//! debounce and the output; tests drive the engine directly.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use pipetrim_queries::plan::plan;
use serde::Serialize;

use crate::error::Error;
use crate::repo::git::{self, Changes};
use crate::repo::load::visible_files;
use crate::repo::session::{Session, SessionOptions};

/// More events than this in one batch: rescan everything instead.
pub const FLOOD: usize = 10_000;
/// Flush a batch after this much quiet.
pub const QUIET: Duration = Duration::from_millis(20);
/// Flush a batch at the latest this long after its first event, so that a
/// build writing to an ignored directory cannot starve the answer.
pub const MAX_BATCH: Duration = Duration::from_millis(500);

/// At most this many files are named per added or removed step.
const WHY_MAX: usize = 5;

/// One thing that happened on disk, repo-relative and `/`-separated.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PathChange {
    /// Something happened at this path (a file or directory was created,
    /// written, deleted or renamed from or to it). The engine looks at the
    /// disk to see what it is now.
    Path(String),
    /// Events were lost (or too many arrived): rescan everything.
    Rescan,
}

/// One answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evaluation {
    pub seq: u64,
    /// Ids of the steps the change needs (changed, or depended on by one).
    pub needed: Vec<String>,
    /// Steps needed now that were not in the last answer.
    pub added: Vec<String>,
    /// Steps no longer needed.
    pub removed: Vec<String>,
    /// For each added or removed step, the files that caused it (or
    /// `needed by <step>` when a dependent step pulled it in).
    pub why: BTreeMap<String, Vec<String>>,
    /// Work-tree paths whose change this answer reflects.
    pub changed_files: Vec<String>,
    /// Time from the batch to the answer, excluding the debounce delay.
    pub latency_ms: f64,
    /// The plan cannot be computed (every step is kept), or some steps'
    /// inputs cannot (those are kept): what is wrong, file and line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The change set is unknown (no base ref, shallow clone): every step with inputs is kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changes_unknown: Option<String>,
    /// The answer repeats the last one (same change set, steps and error):
    /// text output skips it and `seq` is not advanced; JSON output prints
    /// every evaluation, numbered by [`WatchEngine::number`].
    #[serde(skip)]
    pub quiet: bool,
}

pub struct WatchEngine {
    pub session: Session,
    base: Option<String>,
    seq: u64,
    /// The committed part of the change set; recomputed when `.git/` moves.
    committed: Option<Changes>,
    /// Uncommitted work; the work-tree part is updated path by path, the
    /// whole is recomputed after a rescan or when `.git/` moves.
    uncommitted: Option<Result<git::Uncommitted, String>>,
    /// The index, for the path-by-path updates.
    index: Option<git::IndexSnapshot>,
    /// The plan of the last printed answer (its kept steps were the needed
    /// ones): shared, not copied step by step (1,500 steps at scale 10).
    last: Option<std::sync::Arc<pipetrim_queries::plan::Plan>>,
    /// The last printed answer's change set.
    last_changes: Option<(Vec<String>, Option<String>)>,
    last_error: Option<String>,
}

impl WatchEngine {
    /// Loads `root` and computes nothing yet (call [`WatchEngine::evaluate`]).
    pub fn open(root: &Path, opts: &SessionOptions, base: Option<String>) -> Result<Self, Error> {
        Ok(Self::from_session(Session::open(root, opts)?, base))
    }

    /// An engine over an existing session (tests: a database with a log).
    pub fn from_session(session: Session, base: Option<String>) -> Self {
        session.db.track_loaded();
        WatchEngine {
            session,
            base,
            seq: 0,
            committed: None,
            uncommitted: None,
            index: None,
            last: None,
            last_changes: None,
            last_error: None,
        }
    }

    pub fn root(&self) -> &Path {
        &self.session.root
    }

    /// Recomputes the change set and the plan; never quiet.
    pub fn evaluate(&mut self) -> Evaluation {
        let start = Instant::now();
        self.uncommitted = None;
        let mut ev = self.answer(Vec::new(), start);
        ev.quiet = false;
        self.commit(&mut ev);
        ev
    }

    /// Applies a batch of events and answers.
    pub fn apply(&mut self, events: &[PathChange]) -> Evaluation {
        let start = Instant::now();
        let touched = self.update_inputs(events);
        let mut ev = self.answer(touched.into_iter().collect(), start);
        // An answer that repeats the last one is not printed: git
        // bookkeeping (an editor's `git status` refreshing the index), edits
        // that change no step, and our own output when it is redirected into
        // the watched tree (which would otherwise feed back forever).
        let moved = ev.error != self.last_error
            || ev.changes_unknown != self.last_changes.as_ref().and_then(|c| c.1.clone())
            || !ev.added.is_empty()
            || !ev.removed.is_empty()
            || self.last_changes.as_ref().map(|c| &c.0) != Some(&self.current_changes().0);
        ev.quiet = !moved;
        if !ev.quiet {
            self.commit(&mut ev);
        }
        ev
    }

    /// Gives a quiet answer that is printed anyway (`--format json` prints
    /// every evaluation) the next `seq`. The last answer stays as it is:
    /// a quiet one equals it.
    pub fn number(&mut self, ev: &mut Evaluation) {
        ev.seq = self.seq;
        self.seq += 1;
    }

    fn current_changes(&self) -> (Vec<String>, Option<String>) {
        let db = &self.session.db;
        let cs = self.session.ws.changes(db);
        (cs.paths(db).as_ref().clone(), cs.unknown(db).clone())
    }

    /// Records `ev` as the last printed answer.
    fn commit(&mut self, ev: &mut Evaluation) {
        ev.seq = self.seq;
        self.seq += 1;
        self.last_error = ev.error.clone();
        self.last_changes = Some(self.current_changes());
        if ev.error.is_none() || !ev.needed.is_empty() {
            let db = &self.session.db;
            if let Ok(p) = plan(db, self.session.ws) {
                self.last = Some(p.clone());
            }
        }
    }

    /// Updates the salsa inputs for a batch; returns the work-tree paths
    /// whose change is visible to the model (content, presence or the
    /// change set may differ).
    fn update_inputs(&mut self, events: &[PathChange]) -> BTreeSet<String> {
        let root = self.session.root.clone();
        let mut touched = BTreeSet::new();
        let mut rescan = events.len() > FLOOD || events.contains(&PathChange::Rescan);
        let mut git_moved = false;
        // The file list is copied only when it changes (a file created or
        // deleted): an edit looks paths up in the sorted list as it is.
        let base = self
            .session
            .ws
            .files(&self.session.db)
            .paths(&self.session.db)
            .clone();
        let mut set: Option<BTreeSet<String>> = None;
        let mut excludes = Excludes::new(&root);
        let mut set_changed = false;
        let mut new_files: Vec<String> = Vec::new();
        if rescan {
            git_moved = true;
            for p in self.session.db.loaded_paths() {
                if self.session.db.reload(&p) {
                    touched.insert(p);
                }
            }
        }
        for ev in events {
            let PathChange::Path(p) = ev else { continue };
            let p = p.trim_end_matches('/');
            if p.is_empty() {
                rescan = true;
                continue;
            }
            if p == ".git" || p.starts_with(".git/") {
                match classify_git_path(p) {
                    GitPath::Irrelevant => {}
                    GitPath::Refs => git_moved = true,
                    GitPath::Index | GitPath::Excludes => {
                        git_moved = true;
                        rescan = true;
                    }
                }
                continue;
            }
            if rescan {
                touched.insert(p.to_string());
                continue;
            }
            // Whatever was read from this path or below it is re-read.
            let mut reloaded = false;
            for l in self.session.db.loaded_under(p) {
                if self.session.db.reload(&l) {
                    touched.insert(l);
                    reloaded = true;
                }
            }
            if p.rsplit('/').next() == Some(".gitignore") {
                rescan = true;
                touched.insert(p.to_string());
                continue;
            }
            let in_set = match &set {
                Some(s) => s.contains(p),
                None => base.binary_search_by(|x| x.as_str().cmp(p)).is_ok(),
            };
            let children = match &set {
                Some(s) => has_children(s, p),
                None => sorted_has_children(&base, p),
            };
            match std::fs::symlink_metadata(root.join(p)) {
                Ok(meta) if meta.is_dir() => {
                    // A directory appeared or was renamed here: its files
                    // may not have events of their own. An ignored one
                    // still holds the files the index tracks there.
                    if children || !excludes.is_excluded(p, true) || excludes.tracks_below(p) {
                        rescan = true;
                        touched.insert(p.to_string());
                    }
                }
                Ok(_) => {
                    if in_set {
                        touched.insert(p.to_string());
                    } else if excludes.is_tracked(p) {
                        set.get_or_insert_with(|| base.iter().cloned().collect())
                            .insert(p.to_string());
                        set_changed = true;
                        touched.insert(p.to_string());
                    } else {
                        // Decided below, all at once, unless ignored.
                        new_files.push(p.to_string());
                        if reloaded {
                            touched.insert(p.to_string());
                        }
                    }
                }
                Err(_) => {
                    if children {
                        rescan = true;
                        touched.insert(p.to_string());
                    } else if in_set {
                        set.get_or_insert_with(|| base.iter().cloned().collect())
                            .remove(p);
                        set_changed = true;
                        touched.insert(p.to_string());
                    } else if reloaded {
                        touched.insert(p.to_string());
                    }
                }
            }
        }
        if !rescan && !new_files.is_empty() {
            let query: Vec<(&str, bool)> = new_files.iter().map(|p| (p.as_str(), false)).collect();
            for (p, ignored) in new_files.iter().zip(excludes.excluded(&query)) {
                if !ignored {
                    set.get_or_insert_with(|| base.iter().cloned().collect())
                        .insert(p.clone());
                    set_changed = true;
                    touched.insert(p.clone());
                }
            }
        }
        if rescan {
            match visible_files(&root) {
                Ok(files) => self.session.set_files(files),
                Err(e) => eprintln!("warning: cannot list the files of the checkout: {e}"),
            }
        } else if set_changed && let Some(set) = set {
            self.session.set_files(set.into_iter().collect());
        }
        if git_moved {
            self.committed = None;
            self.index = None;
        }
        if rescan || git_moved {
            self.uncommitted = None;
        } else {
            self.update_uncommitted(&touched);
        }
        touched
    }

    /// Re-decides, for each touched path, whether it is uncommitted work.
    fn update_uncommitted(&mut self, touched: &BTreeSet<String>) {
        let Some(Ok(parts)) = &mut self.uncommitted else {
            return;
        };
        let root = &self.session.root;
        if self.index.is_none() {
            match git::IndexSnapshot::load(root) {
                Ok(i) => self.index = Some(i),
                Err(_) => {
                    self.uncommitted = None;
                    return;
                }
            }
        }
        let Some(index) = &self.index else { return };
        let files = self.session.ws.files(&self.session.db);
        for p in touched {
            let differs = match index.worktree_differs(root, p) {
                Some(d) => d,
                // Untracked: uncommitted iff visible.
                None => files.contains(&self.session.db, p),
            };
            if differs {
                parts.worktree.insert(p.clone());
            } else {
                parts.worktree.remove(p);
            }
        }
    }

    /// Recomputes the change set and reads the plan.
    fn answer(&mut self, changed_files: Vec<String>, start: Instant) -> Evaluation {
        let (paths, unknown) = self.change_set();
        self.session.set_changes(paths, unknown);
        let db = &self.session.db;
        let result = plan(db, self.session.ws);
        let mut ev = Evaluation {
            seq: self.seq,
            needed: Vec::new(),
            added: Vec::new(),
            removed: Vec::new(),
            why: BTreeMap::new(),
            changed_files,
            latency_ms: 0.0,
            error: None,
            changes_unknown: self.session.ws.changes(db).unknown(db).clone(),
            quiet: false,
        };
        match result {
            Err(e) => ev.error = Some(e.to_string()),
            Ok(p) => {
                let mut errors: Vec<String> = Vec::new();
                for e in &p.errors {
                    let s = e.to_string();
                    if !errors.contains(&s) {
                        errors.push(s);
                    }
                }
                if !errors.is_empty() {
                    ev.error = Some(errors.join("; "));
                }
                let now: BTreeMap<&str, &pipetrim_queries::plan::StepDecision> =
                    p.kept().map(|d| (d.id.as_str(), d)).collect();
                ev.needed = p.kept().map(|d| d.id.clone()).collect();
                let last: BTreeMap<&str, &pipetrim_queries::plan::StepDecision> = self
                    .last
                    .as_deref()
                    .map(|l| l.kept().map(|d| (d.id.as_str(), d)).collect())
                    .unwrap_or_default();
                let batch: BTreeSet<&String> = ev.changed_files.iter().collect();
                for d in p.kept() {
                    let id = d.id.as_str();
                    if last.contains_key(id) {
                        continue;
                    }
                    ev.added.push(id.to_string());
                    let mut because: Vec<String> = d
                        .changed_inputs
                        .iter()
                        .filter(|f| batch.contains(f))
                        .cloned()
                        .collect();
                    if because.is_empty() {
                        because = d.changed_inputs.iter().take(3).cloned().collect();
                    }
                    if because.is_empty() {
                        because.extend(d.reasons.iter().find_map(|r| match r {
                            pipetrim_queries::plan::Reason::DependedOn { step } => {
                                Some(format!("needed by {step}"))
                            }
                            pipetrim_queries::plan::Reason::FailSafe { diagnostic } => {
                                Some(format!("fail safe: {diagnostic}"))
                            }
                            pipetrim_queries::plan::Reason::ChangesUnknown { .. } => {
                                Some("change set unknown".into())
                            }
                            _ => None,
                        }));
                    }
                    because.truncate(WHY_MAX);
                    ev.why.insert(id.to_string(), because);
                }
                for (id, s) in last {
                    if now.contains_key(id) {
                        continue;
                    }
                    ev.removed.push(id.to_string());
                    let mut because: Vec<String> = s
                        .changed_inputs
                        .iter()
                        .filter(|f| batch.contains(f))
                        .cloned()
                        .collect();
                    if because.is_empty() {
                        because = ev.changed_files.iter().take(3).cloned().collect();
                    }
                    because.truncate(WHY_MAX);
                    ev.why.insert(id.to_string(), because);
                }
            }
        }
        ev.latency_ms = start.elapsed().as_secs_f64() * 1000.0;
        ev
    }

    /// Merge-base diff ∪ uncommitted work (SPEC §5).
    fn change_set(&mut self) -> (Vec<String>, Option<String>) {
        let root = self.session.root.clone();
        let committed = self
            .committed
            .get_or_insert_with(|| git::changes_against(&root, self.base.as_deref()));
        match committed {
            Changes::Unknown(why) => (Vec::new(), Some(why.clone())),
            Changes::Known { paths, .. } => {
                let mut paths = paths.clone();
                let parts = self.uncommitted.get_or_insert_with(|| {
                    git::uncommitted_parts(&root).map_err(|e| e.to_string())
                });
                match parts {
                    Ok(u) => {
                        paths.extend(u.staged.iter().cloned());
                        paths.extend(u.worktree.iter().cloned());
                        (paths, None)
                    }
                    Err(e) => (
                        Vec::new(),
                        Some(format!("uncommitted changes unknown: {e}")),
                    ),
                }
            }
        }
    }
}

/// Whether the sorted set holds a path below directory `dir`.
/// [`has_children`] on a sorted list.
fn sorted_has_children(sorted: &[String], dir: &str) -> bool {
    let prefix = format!("{dir}/");
    let at = sorted.partition_point(|p| p.as_str() < prefix.as_str());
    sorted.get(at).is_some_and(|p| p.starts_with(&prefix))
}

fn has_children(set: &BTreeSet<String>, dir: &str) -> bool {
    let prefix = format!("{dir}/");
    set.range::<str, _>((
        std::ops::Bound::Included(prefix.as_str()),
        std::ops::Bound::Unbounded,
    ))
    .next()
    .is_some_and(|p| p.starts_with(&prefix))
}

enum GitPath {
    /// Objects, logs, lock files: nothing that changes an answer by itself.
    Irrelevant,
    /// HEAD, refs, packed-refs: the committed change set may have moved.
    Refs,
    /// The index: tracked files (thus visible files) and the status may differ.
    Index,
    /// `.git/info/exclude`: ignore rules changed.
    Excludes,
}

fn classify_git_path(p: &str) -> GitPath {
    let rest = p.strip_prefix(".git").unwrap_or(p).trim_start_matches('/');
    if rest.starts_with("objects")
        || rest.starts_with("logs")
        || rest.ends_with(".lock")
        || rest.is_empty()
    {
        GitPath::Irrelevant
    } else if rest == "index" {
        GitPath::Index
    } else if rest == "info/exclude" {
        GitPath::Excludes
    } else {
        GitPath::Refs
    }
}

/// Ignore rules and the index of the checkout, loaded on first use in a batch.
struct Excludes {
    root: PathBuf,
    repo: Option<Option<gix::Repository>>,
    index: Option<BTreeSet<String>>,
}

impl Excludes {
    fn new(root: &Path) -> Self {
        Excludes {
            root: root.to_path_buf(),
            repo: None,
            index: None,
        }
    }

    fn repo(&mut self) -> Option<&gix::Repository> {
        self.repo
            .get_or_insert_with(|| git::open(&self.root).ok())
            .as_ref()
    }

    fn is_tracked(&mut self, path: &str) -> bool {
        self.tracked().contains(path)
    }

    /// Whether the index tracks a file below the directory `dir`: such
    /// files count even where git ignores the directory.
    fn tracks_below(&mut self, dir: &str) -> bool {
        let below = format!("{dir}/");
        self.tracked()
            .range::<str, _>((
                std::ops::Bound::Included(below.as_str()),
                std::ops::Bound::Unbounded,
            ))
            .next()
            .is_some_and(|p| p.starts_with(&below))
    }

    /// The index's paths, read on first use.
    fn tracked(&mut self) -> &BTreeSet<String> {
        if self.index.is_none() {
            let mut set = BTreeSet::new();
            if let Some(repo) = self.repo()
                && let Ok(index) = repo.index_or_empty()
            {
                for e in index.entries() {
                    if let Ok(p) = std::str::from_utf8(e.path(&index)) {
                        set.insert(p.to_string());
                    }
                }
            }
            self.index = Some(set);
        }
        self.index.get_or_insert_with(BTreeSet::new)
    }

    /// Whether git ignores `path` or one of its parent directories. When
    /// that cannot be decided, the path counts as not ignored (the caller
    /// then adds it, which is the safe side).
    fn is_excluded(&mut self, path: &str, is_dir: bool) -> bool {
        self.excluded(&[(path, is_dir)])
            .first()
            .copied()
            .unwrap_or(false)
    }

    /// [`Excludes::is_excluded`] for many paths, with one ignore stack (it
    /// caches the `.gitignore` files of the directories it has seen).
    fn excluded(&mut self, paths: &[(&str, bool)]) -> Vec<bool> {
        let mut out = vec![false; paths.len()];
        let Some(repo) = self.repo() else {
            return out;
        };
        let Ok(index) = repo.index_or_empty() else {
            return out;
        };
        let Ok(mut stack) = repo.excludes(
            &index,
            None,
            gix::worktree::stack::state::ignore::Source::WorktreeThenIdMappingIfNotSkipped,
        ) else {
            return out;
        };
        for (slot, (path, is_dir)) in out.iter_mut().zip(paths) {
            let parts: Vec<&str> = path.split('/').collect();
            for i in 1..=parts.len() {
                let prefix = parts[..i].join("/");
                let dir = i < parts.len() || *is_dir;
                let mode = if dir {
                    gix::index::entry::Mode::DIR
                } else {
                    gix::index::entry::Mode::FILE
                };
                match stack.at_path(Path::new(&prefix), Some(mode)) {
                    Ok(platform) if platform.is_excluded() => {
                        *slot = true;
                        break;
                    }
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
        }
        out
    }
}

/// Output format of [`run`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Text,
    Json,
}

/// Renders one answer.
pub fn render(ev: &Evaluation, output: Output) -> String {
    match output {
        Output::Json => {
            serde_json::to_string(ev).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
        }
        Output::Text => {
            let mut s = String::new();
            if ev.seq == 0 {
                s.push_str(&format!(
                    "[{}] {} step(s) needed ({:.1} ms)\n",
                    ev.seq,
                    ev.needed.len(),
                    ev.latency_ms
                ));
            } else {
                s.push_str(&format!(
                    "[{}] {} step(s) needed, +{} -{} ({:.1} ms){}\n",
                    ev.seq,
                    ev.needed.len(),
                    ev.added.len(),
                    ev.removed.len(),
                    ev.latency_ms,
                    match ev.changed_files.as_slice() {
                        [] => String::new(),
                        [one] => format!(" after {one}"),
                        [first, rest @ ..] => format!(" after {first} and {} more", rest.len()),
                    }
                ));
                for id in &ev.added {
                    s.push_str(&format!("  + {id}{}\n", because(ev, id)));
                }
                for id in &ev.removed {
                    s.push_str(&format!("  - {id}{}\n", because(ev, id)));
                }
            }
            if let Some(e) = &ev.error {
                s.push_str(&format!("  error: {e}\n"));
            }
            if let Some(u) = &ev.changes_unknown {
                s.push_str(&format!("  change set unknown, every step kept: {u}\n"));
            }
            if !ev.needed.is_empty() {
                s.push_str(&format!("  needed: {}\n", ev.needed.join(", ")));
            }
            s.trim_end().to_string()
        }
    }
}

fn because(ev: &Evaluation, id: &str) -> String {
    match ev.why.get(id) {
        Some(files) if files.len() > 3 => {
            format!("  ({}, ...)", files[..3].join(", "))
        }
        Some(files) if !files.is_empty() => format!("  ({})", files.join(", ")),
        _ => String::new(),
    }
}

enum Msg {
    Fs(notify::Result<notify::Event>),
}

/// Watches `root` until Ctrl-C, printing an answer after every settled batch.
pub fn run(
    root: &Path,
    opts: &SessionOptions,
    base: Option<String>,
    output: Output,
) -> Result<i32, Error> {
    use notify::Watcher;

    let root = root
        .canonicalize()
        .map_err(|e| Error::Usage(format!("`{}`: {e}", root.display())))?;
    let (tx, rx) = mpsc::channel::<Msg>();
    // Start watching before loading, so no edit falls between the two.
    let fs_tx = tx.clone();
    let mut watcher = notify::recommended_watcher(move |res| {
        let _ = fs_tx.send(Msg::Fs(res));
    })
    .map_err(|e| Error::Io(format!("cannot start the file watcher: {e}")))?;
    watcher
        .watch(&root, notify::RecursiveMode::Recursive)
        .map_err(|e| {
            Error::Io(format!(
                "cannot watch `{}`: {e} (hint: raise fs.inotify.max_user_watches)",
                root.display()
            ))
        })?;
    // Ctrl-C: the default SIGINT action ends the process. Every answer is
    // written and flushed as one line before the next batch is read, so
    // nothing is left half-printed.
    drop(tx);

    let own_output = OwnOutput::of_stdout();
    let mut engine = WatchEngine::open(&root, opts, base)?;
    let first = engine.evaluate();
    emit(&first, output)?;
    // New cache entries are written after each answer (not at exit, which
    // a watcher never reaches cleanly), and the file is not held between.
    crate::cache::flush_all();
    loop {
        let mut batch: Vec<PathChange> = Vec::new();
        let mut stop = false;
        // Block for the first event, then gather until quiet.
        match rx.recv() {
            Ok(Msg::Fs(res)) => push_event(&root, res, &mut batch),
            Err(_) => break,
        }
        let started = Instant::now();
        loop {
            let left = MAX_BATCH.saturating_sub(started.elapsed());
            if left.is_zero() {
                break;
            }
            match rx.recv_timeout(QUIET.min(left)) {
                Ok(Msg::Fs(res)) => {
                    if batch.len() <= FLOOD {
                        push_event(&root, res, &mut batch);
                    } else if !matches!(batch.last(), Some(PathChange::Rescan)) {
                        batch.push(PathChange::Rescan);
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => break,
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    stop = true;
                    break;
                }
            }
        }
        if stop {
            break;
        }
        if batch.is_empty() {
            continue;
        }
        batch.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
        batch.dedup();
        let mut ev = engine.apply(&batch);
        // JSON prints every evaluation, so that a tool sees each edit was
        // processed; but not a quiet one that only our own output caused
        // (stdout redirected into the tree), which would feed back forever.
        if ev.quiet
            && output == Output::Json
            && !own_output.as_ref().is_some_and(|o| o.caused(&root, &batch))
        {
            engine.number(&mut ev);
            ev.quiet = false;
        }
        if !ev.quiet {
            emit(&ev, output)?;
        }
        crate::cache::flush_all();
    }
    drop(watcher);
    let _ = std::io::stdout().flush();
    Ok(0)
}

/// The file stdout writes to, when it is a regular file (a redirect): its
/// device and inode, to recognise events that our own output caused.
struct OwnOutput {
    dev: u64,
    ino: u64,
}

impl OwnOutput {
    #[cfg(unix)]
    fn of_stdout() -> Option<Self> {
        use std::os::fd::AsFd;
        use std::os::unix::fs::MetadataExt;
        let fd = std::io::stdout().as_fd().try_clone_to_owned().ok()?;
        let meta = std::fs::File::from(fd).metadata().ok()?;
        meta.is_file().then(|| OwnOutput {
            dev: meta.dev(),
            ino: meta.ino(),
        })
    }

    #[cfg(not(unix))]
    fn of_stdout() -> Option<Self> {
        None
    }

    /// Every change of the batch is to our own output file.
    fn caused(&self, root: &Path, batch: &[PathChange]) -> bool {
        batch.iter().all(|c| match c {
            PathChange::Path(p) => self.is(&root.join(p)),
            PathChange::Rescan => false,
        })
    }

    #[cfg(unix)]
    fn is(&self, path: &Path) -> bool {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(path).is_ok_and(|m| m.dev() == self.dev && m.ino() == self.ino)
    }

    #[cfg(not(unix))]
    fn is(&self, _path: &Path) -> bool {
        false
    }
}

fn emit(ev: &Evaluation, output: Output) -> Result<(), Error> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", render(ev, output))
        .and_then(|()| out.flush())
        .map_err(|e| Error::Io(format!("cannot write the answer: {e}")))
}

fn push_event(root: &Path, res: notify::Result<notify::Event>, batch: &mut Vec<PathChange>) {
    use notify::EventKind;
    use notify::event::{AccessKind, AccessMode};
    let event = match res {
        Ok(e) => e,
        Err(e) => {
            eprintln!("warning: file watcher: {e}; rescanning");
            batch.push(PathChange::Rescan);
            return;
        }
    };
    if event.need_rescan() {
        batch.push(PathChange::Rescan);
        return;
    }
    match event.kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => {}
        EventKind::Access(_) => return,
        _ => {}
    }
    for p in &event.paths {
        match relative(root, p) {
            Some(rel) => batch.push(PathChange::Path(rel)),
            None if p == root => batch.push(PathChange::Rescan),
            None => {}
        }
    }
}

/// `path` relative to `root`, `/`-separated; `None` outside the root. A
/// name that is not UTF-8 is lossy (U+FFFD), as the file set lists it.
fn relative(root: &Path, path: &Path) -> Option<String> {
    let rel = path.strip_prefix(root).ok()?;
    let s = rel.to_string_lossy();
    if s.is_empty() {
        return None;
    }
    Some(s.replace(std::path::MAIN_SEPARATOR, "/"))
}
