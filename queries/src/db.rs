//! The salsa database and its inputs.
//!
//! The engine reads the world only through these inputs: the set of visible
//! paths ([`FileSet`]), file contents ([`File`], created on demand through a
//! [`Loader`]), the change set and the options. Everything else is a tracked
//! query, so an edit re-runs only what read the edited input.

use std::sync::{Arc, Mutex};

use dashmap::DashMap;
use salsa::{Durability, Setter};

/// What a file holds, as far as the engine is concerned.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum FileContent {
    /// The bytes of the file (symlinks followed).
    Bytes(Arc<[u8]>),
    /// The path does not exist (or is not a regular file).
    Missing,
    /// The path exists but could not be read; the reason is kept for reports.
    Unreadable(Unreadable),
}

/// Why a path that exists could not be read: structured, so a report can
/// say what to do about it (its `Display` is the reason as reports print it).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Unreadable {
    /// Above the size bound the loaders read (`limit` bytes).
    TooLarge { limit: u64 },
    /// A name git lists that is not UTF-8: listed with U+FFFD, so the file
    /// under that name cannot be opened.
    NotUtf8Name,
    /// A FIFO, socket or device (reading a FIFO would block).
    NotRegular,
    /// A directory where a file is expected.
    Directory,
    /// Permission denied; the system's message.
    Denied(String),
    /// Any other I/O error (a symlink loop, a dangling link, a missing
    /// blob…); the message.
    Io(String),
}

impl Unreadable {
    /// The reason for an I/O error.
    pub fn of_io(e: &std::io::Error) -> Self {
        match e.kind() {
            std::io::ErrorKind::PermissionDenied => Unreadable::Denied(e.to_string()),
            std::io::ErrorKind::IsADirectory => Unreadable::Directory,
            _ => Unreadable::Io(e.to_string()),
        }
    }

    /// What to do when the file is an image's input (it must be hashed).
    pub fn input_hint(&self) -> &'static str {
        match self {
            Unreadable::TooLarge { .. } => {
                "files this big are not read; keep them out of the image's inputs"
            }
            Unreadable::NotUtf8Name => {
                "rename the file: git and Buildkite show such names differently"
            }
            Unreadable::NotRegular => "a FIFO, socket or device among an image's inputs: remove it",
            Unreadable::Directory => {
                "a symlink to a directory, or a file replaced by a directory? fix or remove it"
            }
            Unreadable::Denied(_) => "make the file readable by the user running pipetrim",
            Unreadable::Io(_) => "a symlink loop or a dangling symlink? fix or remove the file",
        }
    }
}

impl std::fmt::Display for Unreadable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unreadable::TooLarge { limit } => write!(f, "is larger than {limit} bytes"),
            Unreadable::NotUtf8Name => f.write_str(
                "has a name that is not UTF-8 (shown with U+FFFD), which pipetrim cannot read: \
                 rename it",
            ),
            Unreadable::NotRegular => {
                f.write_str("is not a regular file (a FIFO, socket or device)")
            }
            Unreadable::Directory => f.write_str("is a directory"),
            Unreadable::Denied(m) | Unreadable::Io(m) => f.write_str(m),
        }
    }
}

impl FileContent {
    pub fn bytes(&self) -> Option<&[u8]> {
        match self {
            FileContent::Bytes(b) => Some(b),
            _ => None,
        }
    }
}

/// The git file mode the fingerprint uses (SPEC §8).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum FileMode {
    #[default]
    Regular,
    Executable,
    Symlink,
}

impl FileMode {
    pub fn git_mode(self) -> u32 {
        match self {
            FileMode::Regular => 0o100644,
            FileMode::Executable => 0o100755,
            FileMode::Symlink => 0o120000,
        }
    }
}

/// What identifies a file's content: the git blob id of the bytes the
/// loader returns (for a symlink the disk loader follows, the id of the
/// target's bytes). The edges read it from the git index or a tree when the
/// work tree agrees, so most files are identified without being read; the
/// persistent cache is keyed by it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Stamp {
    Blob([u8; 20]),
    /// The path does not exist (or is not a regular file).
    Missing,
    /// The path exists but could not be read; the reason is kept for reports.
    Unreadable(Unreadable),
}

impl Stamp {
    /// The stamp of content already in memory (hashes the bytes).
    pub fn of(content: &FileContent) -> Stamp {
        match content {
            FileContent::Bytes(b) => Stamp::Blob(blob_id(b)),
            FileContent::Missing => Stamp::Missing,
            FileContent::Unreadable(why) => Stamp::Unreadable(why.clone()),
        }
    }

    pub fn blob(&self) -> Option<&[u8; 20]> {
        match self {
            Stamp::Blob(b) => Some(b),
            _ => None,
        }
    }
}

/// The git blob id of `bytes` (what `git hash-object` prints).
pub fn blob_id(bytes: &[u8]) -> [u8; 20] {
    use sha1::Digest;
    let mut h = blob_hasher(bytes.len() as u64);
    h.update(bytes);
    h.finalize().into()
}

/// A SHA-1 that has taken the header of a git blob of `len` bytes: fed
/// those bytes, it gives their blob id (for a caller that streams them).
pub fn blob_hasher(len: u64) -> sha1::Sha1 {
    use sha1::Digest;
    let mut h = sha1::Sha1::new();
    h.update(format!("blob {len}\0").as_bytes());
    h
}

/// One file of the checkout. Deletion is a stamp change (`Missing`), since
/// salsa inputs cannot be deleted. The content is not an input: it is read
/// through the loader on demand ([`File::content`]), so a query answered
/// from the persistent cache never reads the file.
#[salsa::input(debug)]
pub struct File {
    #[returns(ref)]
    pub path: String,
    #[returns(ref)]
    pub stamp: Stamp,
    #[returns(copy)]
    pub mode: FileMode,
}

/// A file's content as read, and whether the loader vouches that it is the
/// content the stamp names (only then may results be cached under the stamp).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Loaded {
    pub content: FileContent,
    pub verified: bool,
}

/// Reads the content of `file`; re-runs only when its stamp changes.
#[salsa::tracked(returns(ref))]
pub fn file_content(db: &dyn Db, file: File) -> Loaded {
    read_content(db, file)
}

/// Reads the content of `file` without keeping it: for a caller that needs
/// the bytes once (a digest), so that a few thousand hashed inputs do not
/// stay in memory until the process ends. Depends on the stamp, as
/// [`file_content`] does.
pub fn read_content(db: &dyn Db, file: File) -> Loaded {
    match file.stamp(db) {
        Stamp::Missing => Loaded {
            content: FileContent::Missing,
            verified: true,
        },
        Stamp::Unreadable(why) => Loaded {
            content: FileContent::Unreadable(why.clone()),
            verified: true,
        },
        stamp @ Stamp::Blob(_) => db.loader().load_stamped(file.path(db), stamp),
    }
}

/// The SHA-1 of `file`'s content ([`Loader::sha1_stamped`]) and whether
/// the loader verified it against the stamp; the content is not kept.
/// Depends on the stamp, as [`read_content`] does.
pub fn content_digest(db: &dyn Db, file: File) -> (Option<[u8; 20]>, bool) {
    match file.stamp(db) {
        Stamp::Missing | Stamp::Unreadable(_) => (None, true),
        stamp @ Stamp::Blob(_) => db.loader().sha1_stamped(file.path(db), stamp),
    }
}

impl File {
    /// The content (read on first use, then memoized until the stamp changes).
    pub fn content(self, db: &dyn Db) -> &FileContent {
        &file_content(db, self).content
    }

    /// The content as UTF-8 text, or a message saying why it is not.
    pub fn text(self, db: &dyn Db) -> Result<&str, String> {
        content_text(self.content(db))
    }
}

/// Content as UTF-8 text, or a message saying why it is not.
pub fn content_text(content: &FileContent) -> Result<&str, String> {
    match content {
        FileContent::Bytes(b) => std::str::from_utf8(b)
            .map_err(|e| format!("is not valid UTF-8 (byte {})", e.valid_up_to())),
        FileContent::Missing => Err("does not exist".to_string()),
        FileContent::Unreadable(why) => Err(format!("cannot be read: {why}")),
    }
}

/// The visible files of the checkout (SPEC §1), sorted, repo-relative.
#[salsa::input(debug)]
pub struct FileSet {
    #[returns(ref)]
    pub paths: Arc<Vec<String>>,
    /// The blob id and mode of each path, position by position, where the
    /// edges already know them without reading anything (the git index's,
    /// with `--from-index`); `None` for a path they do not vouch for, or
    /// altogether. Exactly the stamp and mode [`Db::file`] would give the
    /// path, so a query may read these instead of creating a [`File`] per
    /// path (the spec identities of a warm run: 3,292 files on c01).
    #[returns(ref)]
    pub known: Option<KnownStamps>,
}

/// See [`FileSet::known`].
pub type KnownStamps = Arc<[Option<([u8; 20], FileMode)>]>;

impl FileSet {
    /// The visible paths below `dir` (a directory, no trailing `/`; `""` is the root).
    pub fn under<'a>(self, db: &'a dyn Db, dir: &str) -> &'a [String] {
        crate::paths::under(self.paths(db), dir)
    }

    pub fn contains(self, db: &dyn Db, path: &str) -> bool {
        self.paths(db)
            .binary_search_by(|p| p.as_str().cmp(path))
            .is_ok()
    }
}

/// The paths that changed between the base and the head (SPEC §5).
#[salsa::input(debug)]
pub struct ChangeSet {
    #[returns(ref)]
    pub paths: Arc<Vec<String>>,
    /// Set when the change set could not be determined: nothing is trimmed.
    #[returns(ref)]
    pub unknown: Option<String>,
}

/// Options that shape the model.
#[salsa::input(debug)]
pub struct Options {
    #[returns(ref)]
    pub pipeline: String,
    /// First-party Python roots (SPEC §4.2), `misc/python` by default.
    #[returns(ref)]
    pub python_roots: Vec<String>,
    /// Follow imports inside function bodies too (`--lazy-imports`).
    #[returns(copy)]
    pub lazy_imports: bool,
}

/// The whole state of one checkout: the handle the top-level queries take.
#[salsa::input(debug)]
pub struct Workspace {
    #[returns(copy)]
    pub files: FileSet,
    #[returns(copy)]
    pub changes: ChangeSet,
    #[returns(copy)]
    pub options: Options,
}

/// How often a file is expected to change, for salsa: Python modules are
/// HIGH, like the file list; the other files the model parses (manifests,
/// image definitions, templates) are MEDIUM; sources, which only
/// fingerprints hash, are LOW. So an edit of a source does not make salsa
/// re-verify the model (step inputs, import closures, the image graph),
/// only what hashes or matches changed paths; and an edit of a Dockerfile
/// or a manifest does not re-verify the compositions' Python analyses,
/// whose memos read every module of their closures (at scale 10, 1,000
/// analyses: most of a `watch` update). Durability only decides what salsa
/// may skip verifying, never an answer.
pub fn durability_of(path: &str) -> Durability {
    let name = path.rsplit('/').next().unwrap_or(path);
    if name.ends_with(".py") {
        return Durability::HIGH;
    }
    let model = name == "Cargo.toml"
        || name == "mzbuild.yml"
        || name == "Dockerfile"
        || name.ends_with(".yml")
        || name.ends_with(".yaml");
    if model {
        Durability::MEDIUM
    } else {
        Durability::LOW
    }
}

/// Reads a file for the engine. Implemented by the edges (disk, tests).
pub trait Loader: Send + Sync {
    fn load(&self, path: &str) -> (FileContent, FileMode);

    /// The file's stamp and mode, without reading it where the loader knows
    /// the blob id (from the git index or a tree). By default: read and hash.
    fn stamp(&self, path: &str) -> (Stamp, FileMode) {
        let (content, mode) = self.load(path);
        (Stamp::of(&content), mode)
    }

    /// The content the engine holds `stamp` for. `verified` only if the
    /// bytes are known to be that blob (by default: hashed and compared), so
    /// a file that changed since it was stamped is never cached under the
    /// old stamp.
    fn load_stamped(&self, path: &str, stamp: &Stamp) -> Loaded {
        let (content, _) = self.load(path);
        let verified = Stamp::of(&content) == *stamp;
        Loaded { content, verified }
    }

    /// The SHA-1 of the content [`Self::load_stamped`] gives (`None` when
    /// that is not bytes), and whether it is verified as there. By default
    /// through `load_stamped`; a loader that reads files streams them
    /// instead, so that hashing a large file needs no buffer its size (a
    /// YAML trim without a cache hashes 52 MB on c01, and each fresh buffer
    /// was pages the kernel zeroes).
    fn sha1_stamped(&self, path: &str, stamp: &Stamp) -> (Option<[u8; 20]>, bool) {
        let l = self.load_stamped(path, stamp);
        let digest = match &l.content {
            FileContent::Bytes(b) => {
                use sha1::Digest;
                Some(sha1::Sha1::digest(b).into())
            }
            _ => None,
        };
        (digest, l.verified)
    }
}

/// A loader over an in-memory map, for tests and generated repositories.
#[derive(Default, Clone)]
pub struct MemoryLoader {
    pub files: Arc<DashMap<String, (Vec<u8>, FileMode)>>,
}

impl Loader for MemoryLoader {
    fn load(&self, path: &str) -> (FileContent, FileMode) {
        match self.files.get(path) {
            Some(e) => (FileContent::Bytes(e.0.clone().into()), e.1),
            None => (FileContent::Missing, FileMode::Regular),
        }
    }
}

#[salsa::db]
pub trait Db: salsa::Database {
    /// The input for `path`, created (and stamped through the loader) on first use.
    fn file(&self, path: &str) -> File;
    /// The loader contents are read through.
    fn loader(&self) -> &dyn Loader;
    /// The persistent cache of leaf results, if the edges installed one.
    fn leaf_cache(&self) -> Option<&dyn crate::cache::LeafCache>;
    /// Records that a leaf of `blob` was computed from bytes the loader
    /// could not vouch for (the file changed while it was read): results
    /// derived from it are then not kept in the persistent cache.
    fn note_unverified(&self, blob: [u8; 20]);
    /// Whether [`Db::note_unverified`] was called for `blob`.
    fn is_unverified(&self, blob: &[u8; 20]) -> bool;
    /// Records that `composition` is being analysed; whether it had been
    /// before in this process (a re-run after an edit, as in `watch`: the
    /// persistent cache is then neither read nor written for it).
    fn analysed_before(&self, composition: File) -> bool;
}

/// Which queries ran: salsa's `WillExecute` events, for tests that prove reuse.
pub type ExecutionLog = Arc<Mutex<Vec<String>>>;

#[salsa::db]
#[derive(Clone)]
pub struct Database {
    storage: salsa::Storage<Self>,
    /// By path; FxHash, since a warm run looks up every input path (the
    /// paths come from the checkout, no adversary picks them).
    files: Arc<DashMap<String, File, rustc_hash::FxBuildHasher>>,
    loader: Arc<dyn Loader>,
    cache: Option<Arc<dyn crate::cache::LeafCache>>,
    unverified: Arc<dashmap::DashSet<[u8; 20]>>,
    analysed: Arc<dashmap::DashSet<File>>,
    /// The keys of `files`, sorted: [`Database::loaded_under`] answers a
    /// `watch` event with a range instead of a walk of the whole map.
    /// Built on the first such question (`None` until then), so that a
    /// one-shot run does not pay for it.
    loaded: Arc<Mutex<Option<std::collections::BTreeSet<String>>>>,
}

impl Database {
    /// Whether `composition` has been analysed in this process (without
    /// recording it, unlike [`Db::analysed_before`]): the priming leaves
    /// those to salsa's memos.
    pub fn analysed(&self, composition: File) -> bool {
        self.analysed.contains(&composition)
    }

    pub fn new(loader: Arc<dyn Loader>) -> Self {
        Database {
            storage: salsa::Storage::new(None),
            files: Arc::default(),
            loader,
            cache: None,
            unverified: Arc::default(),
            analysed: Arc::default(),
            loaded: Arc::default(),
        }
    }

    /// Installs a persistent cache of leaf results (keyed by content, so it
    /// never changes an answer).
    pub fn set_leaf_cache(&mut self, cache: Option<Arc<dyn crate::cache::LeafCache>>) {
        self.cache = cache;
    }

    /// A database that records the name of every query it executes.
    pub fn with_log(loader: Arc<dyn Loader>) -> (Self, ExecutionLog) {
        let log: ExecutionLog = Arc::default();
        let sink = log.clone();
        let storage = salsa::Storage::new(Some(Box::new(move |event: salsa::Event| {
            if let salsa::EventKind::WillExecute { database_key } = event.kind
                && let Ok(mut l) = sink.lock()
            {
                l.push(format!("{database_key:?}"));
            }
        })));
        (
            Database {
                storage,
                files: Arc::default(),
                loader,
                cache: None,
                unverified: Arc::default(),
                analysed: Arc::default(),
                loaded: Arc::default(),
            },
            log,
        )
    }

    /// Re-stamps `path` through the loader if a query ever read it. Returns
    /// whether anything changed.
    pub fn reload(&mut self, path: &str) -> bool {
        let Some(file) = self.files.get(path).map(|f| *f) else {
            return false;
        };
        let (stamp, mode) = self.loader.stamp(path);
        let mut changed = false;
        if *file.stamp(self) != stamp {
            file.set_stamp(self).to(stamp);
            changed = true;
        }
        if file.mode(self) != mode {
            file.set_mode(self).to(mode);
            changed = true;
        }
        changed
    }

    /// Keeps the sorted index of loaded paths from now on, so that the
    /// first [`Database::loaded_under`] does not build it (`watch` asks on
    /// every event, and its first answer should not pay for that).
    pub fn track_loaded(&self) {
        if let Ok(mut guard) = self.loaded.lock() {
            self.index_loaded(&mut guard);
        }
    }

    /// The index, built from the map if it is not kept yet. `file` inserts
    /// into the map before it takes the index's lock, so a path is either
    /// in the walk or inserted after it.
    fn index_loaded<'g>(
        &self,
        guard: &'g mut Option<std::collections::BTreeSet<String>>,
    ) -> &'g std::collections::BTreeSet<String> {
        guard.get_or_insert_with(|| self.files.iter().map(|e| e.key().clone()).collect())
    }

    /// The loaded paths at or below `path` (a file or a directory).
    pub fn loaded_under(&self, path: &str) -> Vec<String> {
        if let Ok(mut guard) = self.loaded.lock() {
            let loaded = self.index_loaded(&mut guard);
            let below = format!("{path}/");
            let exact = loaded.get(path).cloned();
            return exact
                .into_iter()
                .chain(
                    loaded
                        .range::<str, _>((
                            std::ops::Bound::Included(below.as_str()),
                            std::ops::Bound::Unbounded,
                        ))
                        .take_while(|k| k.starts_with(&below))
                        .cloned(),
                )
                .collect();
        }
        // A panic poisoned the index: walk the map (every `watch` event
        // asks this, so filtered before cloning).
        self.files
            .iter()
            .filter(|e| {
                e.key()
                    .strip_prefix(path)
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
            })
            .map(|e| e.key().clone())
            .collect()
    }

    /// Paths a query has read so far (the ones a watcher must refresh).
    pub fn loaded_paths(&self) -> Vec<String> {
        self.files.iter().map(|e| e.key().clone()).collect()
    }

    pub fn loader_arc(&self) -> &Arc<dyn Loader> {
        &self.loader
    }

    /// Creates the inputs of a workspace.
    pub fn workspace(
        &mut self,
        paths: Vec<String>,
        changes: Vec<String>,
        unknown: Option<String>,
        pipeline: &str,
        python_roots: Vec<String>,
        lazy_imports: bool,
    ) -> Workspace {
        // HIGH, with the Python modules (see `durability_of`): the
        // analyses read the file set, and files are added or removed far
        // less often than a Dockerfile or a manifest is edited.
        let files = FileSet::builder(Arc::new(paths), None)
            .durability(Durability::HIGH)
            .new(self);
        let changes = ChangeSet::new(self, Arc::new(changes), unknown);
        let options = Options::builder(pipeline.to_string(), python_roots, lazy_imports)
            .durability(Durability::HIGH)
            .new(self);
        Workspace::builder(files, changes, options)
            .durability(Durability::HIGH)
            .new(self)
    }
}

#[salsa::db]
impl salsa::Database for Database {}

#[salsa::db]
impl Db for Database {
    fn file(&self, path: &str) -> File {
        if let Some(f) = self.files.get(path) {
            return *f;
        }
        let (stamp, mode) = self.loader.stamp(path);
        let mut created = false;
        let file = *self.files.entry(path.to_string()).or_insert_with(|| {
            created = true;
            File::builder(path.to_string(), stamp, mode)
                .durability(durability_of(path))
                .new(self)
        });
        // After the map's shard lock is released (`loaded_under` walks the
        // map under this lock).
        if created
            && let Ok(mut loaded) = self.loaded.lock()
            && let Some(set) = loaded.as_mut()
        {
            set.insert(path.to_string());
        }
        file
    }

    fn loader(&self) -> &dyn Loader {
        &*self.loader
    }

    fn leaf_cache(&self) -> Option<&dyn crate::cache::LeafCache> {
        self.cache.as_deref()
    }

    fn note_unverified(&self, blob: [u8; 20]) {
        self.unverified.insert(blob);
    }

    fn is_unverified(&self, blob: &[u8; 20]) -> bool {
        self.unverified.contains(blob)
    }

    fn analysed_before(&self, composition: File) -> bool {
        !self.analysed.insert(composition)
    }
}

#[cfg(test)]
mod tests {
    use super::{Database, Db, MemoryLoader, Unreadable};

    #[test]
    fn loaded_under_is_the_path_and_what_lies_below_it() {
        let db = Database::new(std::sync::Arc::new(MemoryLoader::default()));
        for p in ["a", "a/b", "a/b/c.py", "a/bc", "a/b.rs", "a-b/x", "b"] {
            db.file(p);
        }
        let under = |p: &str| {
            let mut v = db.loaded_under(p);
            v.sort();
            v
        };
        assert_eq!(under("a/b"), ["a/b", "a/b/c.py"]);
        assert_eq!(under("a"), ["a", "a/b", "a/b.rs", "a/b/c.py", "a/bc"]);
        assert_eq!(under("a/b/c.py"), ["a/b/c.py"]);
        assert!(under("c").is_empty());
        assert!(under("a/b/c").is_empty());
        // The index is built on the first question; later files join it.
        db.file("a/b/new.rs");
        assert_eq!(under("a/b"), ["a/b", "a/b/c.py", "a/b/new.rs"]);
        let mut all = db.loaded_paths();
        all.sort();
        assert_eq!(all.len(), 8);
    }

    #[test]
    fn an_io_error_keeps_its_message_and_gets_the_hint_of_its_kind() {
        // Root reads mode-000 files, so the end-to-end test of a denied
        // read is ignored as root; the mapping is checked here.
        let denied = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        let u = Unreadable::of_io(&denied);
        assert_eq!(u, Unreadable::Denied(denied.to_string()));
        assert_eq!(u.to_string(), denied.to_string());
        assert!(u.input_hint().contains("readable"));
        let other = std::io::Error::from(std::io::ErrorKind::NotFound);
        assert!(Unreadable::of_io(&other).input_hint().contains("symlink"));
        assert_eq!(
            Unreadable::TooLarge { limit: 8 }.to_string(),
            "is larger than 8 bytes"
        );
    }
}
