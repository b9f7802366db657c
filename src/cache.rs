//! The persistent cache of leaf results: one redb file per format version
//! in the cache directory (`--cache-dir`, `PIPETRIM_CACHE_DIR`, else the
//! platform cache directory).
//!
//! Why redb (measured, see ARCHITECTURE.md): reads are a B-tree lookup in
//! the process, about 3× faster than SQLite and 15× faster than a
//! directory of files for the ~1,000 lookups of a warm run; writes are
//! transactional and crash safe. Its whole-file lock lets readers share the
//! file and gives a writer sole use, so a run reads under a read-only handle
//! and writes its new entries at the end, briefly, under a writable one,
//! retrying while another process holds the file.
//!
//! Nothing here may fail a run: every error is a miss, a warning on stderr
//! (once per kind of trouble), and at worst a run without the cache. A file
//! that is not a cache of this format (garbage, truncated, another version)
//! is deleted and rebuilt; an entry whose checksum fails is a miss.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use pipetrim_queries::cache::LeafCache;
use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};

/// The file's format: bump when the table layout or value framing changes
/// (the encodings of the values have their own version in every key).
const FORMAT: u32 = 1;
const ENTRIES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("entries");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const MAGIC: &[u8] = b"pipetrim leaf cache";

/// Above this many stored bytes (keys and values), the least recently used
/// entries are evicted down to half of it.
pub const DEFAULT_MAX_BYTES: u64 = 256 << 20;
/// How long a run waits for another process to release the file.
const LOCK_WAIT: Duration = Duration::from_secs(2);

/// The default cache directory: `$PIPETRIM_CACHE_DIR`, else the platform's
/// cache directory (`$XDG_CACHE_HOME` or `~/.cache` on Linux) + `pipetrim`.
pub fn default_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("PIPETRIM_CACHE_DIR").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(d));
    }
    dirs::cache_dir().map(|d| d.join("pipetrim"))
}

/// Whether `dir` holds no cache file of this format: a run there has
/// nothing to look up (every leaf is computed).
pub fn holds_nothing(dir: &Path) -> bool {
    !dir.join(file_name()).exists()
}

fn file_name() -> String {
    format!("leaves-v{FORMAT}.redb")
}

/// The caches this process opened, by directory: one instance per file, so
/// [`flush_all`] writes each once at the end of the run.
static OPEN: Mutex<Vec<std::sync::Arc<DiskCache>>> = Mutex::new(Vec::new());

/// The process's cache in `dir` (opened once).
pub fn shared(dir: &Path) -> std::sync::Arc<DiskCache> {
    let mut open = OPEN.lock().unwrap_or_else(|e| e.into_inner());
    let path = dir.join(file_name());
    if let Some(c) = open.iter().find(|c| c.path == path) {
        return c.clone();
    }
    let c = std::sync::Arc::new(DiskCache::new(dir));
    open.push(c.clone());
    c
}

/// The write [`flush_early`] started, finished by [`flush_all`].
static EARLY: Mutex<Option<std::sync::Arc<EarlyWrite>>> = Mutex::new(None);

/// A first cache file to write off the main thread: whoever takes `caches`
/// first (the thread it was handed to, or [`flush_all`] if that has not
/// started it yet) writes them and then marks it `done`.
#[derive(Default)]
struct EarlyWrite {
    caches: Mutex<Option<Vec<std::sync::Arc<DiskCache>>>>,
    done: Mutex<bool>,
    ended: std::sync::Condvar,
}

impl EarlyWrite {
    /// Writes the caches unless another thread took them; a panic (caught
    /// here: a pool's worker must not unwind) only loses their entries.
    fn run(&self) {
        let Some(caches) = self.caches.lock().unwrap_or_else(|e| e.into_inner()).take() else {
            return;
        };
        let _ = catch_unwind(AssertUnwindSafe(|| {
            for c in caches {
                c.flush_fresh();
            }
        }));
        *self.done.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.ended.notify_all();
    }

    /// Runs the write here if nobody has started it, else waits for its end.
    fn finish(&self) {
        self.run();
        let mut done = self.done.lock().unwrap_or_else(|e| e.into_inner());
        while !*done {
            done = self.ended.wait(done).unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// Starts writing what the caches hold so far when no cache file exists
/// yet (a first run on an agent, where the write is a whole new file): the
/// write then overlaps the rest of the run instead of following it.
/// Entries added later, and everything when a file exists (a short merge),
/// are written by [`flush_all`].
///
/// The write goes to the global pool when it has a second thread: that
/// worker is idle once the priming ends, and its heap holds the memory the
/// parse trees it made were freed to. A thread of its own started on fresh
/// memory, which the kernel clears (2 MiB huge pages): on c01 that was
/// 10 of the write's 13 ms, beside the plan on the other core.
pub fn flush_early() {
    let open: Vec<_> = OPEN.lock().unwrap_or_else(|e| e.into_inner()).clone();
    if open.iter().all(|c| c.path.exists()) {
        return;
    }
    let task = std::sync::Arc::new(EarlyWrite {
        caches: Mutex::new(Some(open)),
        ..EarlyWrite::default()
    });
    let earlier = EARLY
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .replace(task.clone());
    if let Some(t) = earlier {
        t.finish();
    }
    if rayon::current_num_threads() > 1 {
        rayon::spawn(move || task.run());
    } else {
        // A pool of this thread alone: a thread of its own (if none can
        // start, [`flush_all`] writes it).
        let _ = std::thread::Builder::new()
            .name("cache-write".into())
            .spawn(move || task.run());
    }
}

/// Writes what every cache of this process has pending (after the write
/// [`flush_early`] started, if any, has ended); returns the stats.
pub fn flush_all() -> Stats {
    let early = EARLY.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let Some(t) = early {
        t.finish();
    }
    let open: Vec<_> = OPEN.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let mut total = Stats::default();
    for c in open {
        c.flush();
        let s = c.stats();
        total.hits += s.hits;
        total.misses += s.misses;
        total.written += s.written;
        total.evicted += s.evicted;
    }
    total
}

/// Days since the epoch: the recency an entry is stamped with.
fn today() -> u32 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| u32::try_from(d.as_secs() / 86_400).unwrap_or(u32::MAX))
        .unwrap_or(0)
}

/// An entry on disk: CRC-32 of the payload, the day it was last used, the payload.
fn frame(day: u32, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(payload.len() + 8);
    v.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    v.extend_from_slice(&day.to_le_bytes());
    v.extend_from_slice(payload);
    v
}

/// The day and payload of a framed entry, if its checksum holds.
fn unframe(v: &[u8]) -> Option<(u32, &[u8])> {
    let crc = u32::from_le_bytes(v.get(0..4)?.try_into().ok()?);
    let day = u32::from_le_bytes(v.get(4..8)?.try_into().ok()?);
    let payload = v.get(8..)?;
    (crc32fast::hash(payload) == crc).then_some((day, payload))
}

struct Reader {
    // Field order: the table and transaction go before the database.
    table: redb::ReadOnlyTable<&'static [u8], &'static [u8]>,
    _tx: redb::ReadTransaction,
    _db: redb::ReadOnlyDatabase,
}

/// What happened, for tests and `PIPETRIM_TIMINGS`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    pub hits: usize,
    pub misses: usize,
    pub written: usize,
    pub evicted: usize,
}

/// The cache of one run: reads through a read-only handle opened on first
/// use; new entries are kept in memory until [`DiskCache::flush`].
pub struct DiskCache {
    path: PathBuf,
    max_bytes: u64,
    day: u32,
    /// Read-locked by every lookup, so that the threads priming a plan
    /// look up side by side (a redb read handle is `Sync`); write-locked
    /// only to open it, close it for a flush, or give it up.
    reader: RwLock<ReaderState>,
    pending: Mutex<Vec<(Vec<u8>, Vec<u8>)>>,
    /// Entries made ahead of the queries that look them up (payloads, not
    /// framed), set once: see [`DiskCache::put_ahead`].
    ahead: std::sync::OnceLock<Vec<(Vec<u8>, Vec<u8>)>>,
    stats: Mutex<Stats>,
    warned: Mutex<Vec<&'static str>>,
}

enum ReaderState {
    NotOpened,
    Open(Box<Reader>),
    /// No usable file (missing, busy, broken): every read is a miss.
    Unavailable,
}

impl DiskCache {
    /// The cache in `dir` (created on the first write). Opening never fails.
    pub fn new(dir: &Path) -> Self {
        DiskCache {
            path: dir.join(file_name()),
            max_bytes: DEFAULT_MAX_BYTES,
            day: today(),
            reader: RwLock::new(ReaderState::NotOpened),
            pending: Mutex::default(),
            ahead: std::sync::OnceLock::new(),
            stats: Mutex::default(),
            warned: Mutex::default(),
        }
    }

    /// Evict down to half of `max_bytes` when the file grows above it.
    pub fn with_max_bytes(mut self, max_bytes: u64) -> Self {
        self.max_bytes = max_bytes;
        self
    }

    /// Entries computed ahead by a thread with nothing else to do (`trim`
    /// with nothing cached: the template and the root manifest, read before
    /// the session exists): lookups find them as if they were stored, and
    /// they are written with the rest. Content-addressed keys make them safe
    /// to offer: a query asks for an entry only under the key of what it
    /// read. Only the first call counts.
    pub fn put_ahead(&self, entries: Vec<(Vec<u8>, Vec<u8>)>) {
        let framed: Vec<_> = entries
            .iter()
            .map(|(k, v)| (k.clone(), frame(self.day, v)))
            .collect();
        if self.ahead.set(entries).is_ok() {
            self.pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend(framed);
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn stats(&self) -> Stats {
        *self.stats.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One line on stderr per kind of trouble.
    fn warn(&self, kind: &'static str, message: String) {
        let mut w = self.warned.lock().unwrap_or_else(|e| e.into_inner());
        if !w.contains(&kind) {
            w.push(kind);
            eprintln!("warning: cache: {message}");
        }
    }

    fn open_reader(&self) -> ReaderState {
        if !self.path.exists() {
            return ReaderState::Unavailable;
        }
        let started = Instant::now();
        loop {
            let attempt = catch_unwind(AssertUnwindSafe(|| -> Result<Reader, redb::Error> {
                let db = redb::Builder::new()
                    .set_cache_size(16 << 20)
                    .open_read_only(&self.path)?;
                let tx = db.begin_read()?;
                check_meta(&tx)?;
                let table = tx.open_table(ENTRIES)?;
                Ok(Reader {
                    table,
                    _tx: tx,
                    _db: db,
                })
            }));
            match attempt {
                Ok(Ok(r)) => return ReaderState::Open(Box::new(r)),
                Ok(Err(redb::Error::DatabaseAlreadyOpen)) if started.elapsed() < LOCK_WAIT => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Ok(Err(redb::Error::DatabaseAlreadyOpen)) => {
                    self.warn(
                        "busy",
                        format!(
                            "`{}` stayed locked by another process; running without it",
                            self.path.display()
                        ),
                    );
                    return ReaderState::Unavailable;
                }
                // Needs repair (a writer was killed): the writer repairs it.
                Ok(Err(redb::Error::RepairAborted)) => return ReaderState::Unavailable,
                Ok(Err(e)) => {
                    self.warn(
                        "broken",
                        format!(
                            "`{}` is not a usable cache ({e}); it is ignored and rebuilt",
                            self.path.display()
                        ),
                    );
                    return ReaderState::Unavailable;
                }
                Err(_) => {
                    self.warn(
                        "broken",
                        format!(
                            "reading `{}` failed; it is ignored and rebuilt",
                            self.path.display()
                        ),
                    );
                    return ReaderState::Unavailable;
                }
            }
        }
    }

    /// Writes the pending entries (and evicts if the file grew too big) in
    /// one transaction. Closes the read handle first: the writer needs sole
    /// use of the file. Returns the number of entries written.
    pub fn flush(&self) -> usize {
        let pending = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()));
        *self.reader.write().unwrap_or_else(|e| e.into_inner()) = ReaderState::NotOpened;
        if pending.is_empty() {
            return 0;
        }
        if let Err((parent, e)) = self.prepare_dir() {
            self.warn(
                "write",
                format!(
                    "cannot create `{}` ({e}); results are not kept",
                    parent.display()
                ),
            );
            return 0;
        }
        let started = Instant::now();
        // No file yet (the first run on an agent): build it in memory and
        // put it in place whole. Anything unusual (the file appeared
        // meanwhile, an I/O error) goes the ordinary way below, which merges
        // into the other process's file or says what went wrong.
        if let Some(written) = self.try_fresh(&pending) {
            return written;
        }
        let mut rebuilt = false;
        loop {
            let attempt = catch_unwind(AssertUnwindSafe(|| self.write(&pending)));
            match attempt {
                Ok(Ok((written, evicted))) => {
                    let mut s = self.stats.lock().unwrap_or_else(|e| e.into_inner());
                    s.written += written;
                    s.evicted += evicted;
                    return written;
                }
                Ok(Err(redb::Error::DatabaseAlreadyOpen)) if started.elapsed() < LOCK_WAIT => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Ok(Err(redb::Error::DatabaseAlreadyOpen)) => {
                    self.warn(
                        "busy-write",
                        format!(
                            "`{}` stayed locked by another process; results are not kept",
                            self.path.display()
                        ),
                    );
                    return 0;
                }
                Ok(Err(redb::Error::Io(e))) if !rebuilt_worth(&e) => {
                    self.warn(
                        "write",
                        format!(
                            "cannot write `{}` ({e}); results are not kept",
                            self.path.display()
                        ),
                    );
                    return 0;
                }
                other if !rebuilt => {
                    // Not a cache of this format, or damaged: start afresh.
                    let why = match other {
                        Ok(Err(e)) => e.to_string(),
                        _ => "the store panicked".to_string(),
                    };
                    self.warn(
                        "broken",
                        format!(
                            "`{}` is not a usable cache ({why}); it is ignored and rebuilt",
                            self.path.display()
                        ),
                    );
                    rebuilt = true;
                    if let Err(e) = std::fs::remove_file(&self.path)
                        && e.kind() != std::io::ErrorKind::NotFound
                    {
                        self.warn(
                            "write",
                            format!(
                                "cannot remove `{}` ({e}); results are not kept",
                                self.path.display()
                            ),
                        );
                        return 0;
                    }
                }
                _ => {
                    self.warn(
                        "write",
                        format!(
                            "cannot rebuild `{}`; results are not kept",
                            self.path.display()
                        ),
                    );
                    return 0;
                }
            }
        }
    }

    /// [`flush_early`]'s part: writes the pending entries as a new file if
    /// there is none yet. Whatever it does not write (a file exists, or
    /// the new file could not be put in place) stays pending, in order,
    /// for [`DiskCache::flush`], which also says what went wrong.
    fn flush_fresh(&self) {
        if self.path.exists() {
            return;
        }
        let pending = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()));
        if pending.is_empty() {
            return;
        }
        if self.prepare_dir().is_ok() && self.try_fresh(&pending).is_some() {
            return;
        }
        let mut left = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let later = std::mem::replace(&mut *left, pending);
        left.extend(later);
    }

    /// Creates the cache directory before a write, and removes what killed
    /// writers left in it; the directory and the error when it cannot be made.
    fn prepare_dir(&self) -> Result<(), (&Path, std::io::Error)> {
        let Some(parent) = self.path.parent() else {
            return Ok(());
        };
        std::fs::create_dir_all(parent).map_err(|e| (parent, e))?;
        remove_stale_temporaries(parent, STALE_TEMPORARY);
        Ok(())
    }

    /// [`DiskCache::write_fresh`] when no file exists, counted in the
    /// stats; `None` when it did not put a file in place.
    fn try_fresh(&self, pending: &[(Vec<u8>, Vec<u8>)]) -> Option<usize> {
        if self.path.exists() {
            return None;
        }
        let Ok(Ok(Some((written, evicted)))) =
            catch_unwind(AssertUnwindSafe(|| self.write_fresh(pending)))
        else {
            return None;
        };
        let mut s = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        s.written += written;
        s.evicted += evicted;
        Some(written)
    }

    fn write(&self, pending: &[(Vec<u8>, Vec<u8>)]) -> Result<(usize, usize), redb::Error> {
        let mut db = redb::Builder::new()
            .set_cache_size(16 << 20)
            .create(&self.path)?;
        self.insert(&mut db, pending)
    }

    /// Writes a new cache file from scratch: the database is built in
    /// memory, then written with one `write` to a temporary file that is
    /// renamed into place only if no file is there yet. A first run on an
    /// agent so pays for neither redb's page-by-page writes nor a sync at
    /// each growth of the file (half of its flush on c01), and no reader
    /// ever sees a partial file. Not synced: a crash before the kernel
    /// writes it back can leave a truncated or empty file, which the next
    /// run finds unusable and rebuilds (a file that does not open, and an
    /// entry that fails its checksum, are never trusted); the sync was
    /// 1.5–15 ms at the end of every first run. `None`: another process
    /// created the file meanwhile (the caller merges into it).
    fn write_fresh(
        &self,
        pending: &[(Vec<u8>, Vec<u8>)],
    ) -> Result<Option<(usize, usize)>, redb::Error> {
        use std::io::Write;
        use std::os::unix::fs::PermissionsExt;
        let dir = self.path.parent().unwrap_or(Path::new("."));
        // The file takes about what its entries do, plus redb's pages.
        let size: usize = pending.iter().map(|(k, v)| k.len() + v.len()).sum();
        let image = MemFile::with_capacity(size + size / 4 + (64 << 10));
        let shared = image.0.clone();
        let mut db = redb::Builder::new()
            .set_cache_size(16 << 20)
            .create_with_backend(image)?;
        let done = self.insert(&mut db, pending)?;
        drop(db);
        let bytes =
            std::mem::take(&mut *shared.lock().unwrap_or_else(|e| e.into_inner())).into_bytes();
        let mut tmp = tempfile::Builder::new()
            .prefix(TEMPORARY.0)
            .suffix(TEMPORARY.1)
            .permissions(std::fs::Permissions::from_mode(0o644))
            .tempfile_in(dir)?;
        tmp.write_all(&bytes)?;
        match tmp.persist_noclobber(&self.path) {
            Ok(_) => Ok(Some(done)),
            Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => Ok(None),
            Err(e) => Err(e.error.into()),
        }
    }

    /// Inserts `pending` in one transaction (marking a new file with the
    /// format), then evicts if the file grew past the bound.
    fn insert(
        &self,
        db: &mut redb::Database,
        pending: &[(Vec<u8>, Vec<u8>)],
    ) -> Result<(usize, usize), redb::Error> {
        let tx = db.begin_write()?;
        {
            let mut meta = tx.open_table(META)?;
            let fresh = meta.get("magic")?.is_none();
            if fresh {
                if tx.open_table(ENTRIES)?.len()? > 0 {
                    return Err(redb::Error::Corrupted(
                        "entries without a format marker".into(),
                    ));
                }
                meta.insert("magic", MAGIC)?;
                meta.insert("format", FORMAT.to_le_bytes().as_slice())?;
            }
        }
        check_meta_write(&tx)?;
        let mut written = 0;
        {
            let mut t = tx.open_table(ENTRIES)?;
            for (k, v) in pending {
                t.insert(k.as_slice(), v.as_slice())?;
                written += 1;
            }
        }
        let in_use = tx.stats()?.stored_bytes();
        tx.commit()?;
        let evicted = if in_use > self.max_bytes {
            self.evict(db)?
        } else {
            0
        };
        Ok((written, evicted))
    }

    /// Deletes the least recently used entries until the values left take
    /// at most half of the size bound, then compacts the file.
    fn evict(&self, db: &mut redb::Database) -> Result<usize, redb::Error> {
        let mut entries: Vec<(u32, Vec<u8>, u64)> = Vec::new();
        {
            let tx = db.begin_read()?;
            let t = tx.open_table(ENTRIES)?;
            for item in t.iter()? {
                let (k, v) = item?;
                let day = unframe(v.value()).map_or(0, |(d, _)| d);
                entries.push((
                    day,
                    k.value().to_vec(),
                    (k.value().len() + v.value().len()) as u64,
                ));
            }
        }
        // Newest first; keep entries while they fit in half the bound.
        entries.sort_by_key(|e| std::cmp::Reverse(e.0));
        let budget = self.max_bytes / 2;
        let mut used = 0u64;
        let mut doomed = Vec::new();
        for (_, k, size) in entries {
            used += size;
            if used > budget {
                doomed.push(k);
            }
        }
        let tx = db.begin_write()?;
        {
            let mut t = tx.open_table(ENTRIES)?;
            for k in &doomed {
                t.remove(k.as_slice())?;
            }
        }
        tx.commit()?;
        let _ = db.compact();
        Ok(doomed.len())
    }
}

/// The prefix and suffix of [`DiskCache::write_fresh`]'s temporary files.
const TEMPORARY: (&str, &str) = (".leaves-", ".tmp");

/// How old a temporary file of [`DiskCache::write_fresh`] must be to count
/// as left behind (its process was killed between the write and the
/// rename): far longer than any write takes.
const STALE_TEMPORARY: Duration = Duration::from_secs(15 * 60);

/// Removes the temporary files of killed writers from `dir` (best effort:
/// nothing reads them, they only take space).
fn remove_stale_temporaries(dir: &Path, older_than: Duration) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        if !(name.starts_with(TEMPORARY.0) && name.ends_with(TEMPORARY.1)) {
            continue;
        }
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > older_than);
        if old {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// A database file held in memory ([`DiskCache::write_fresh`]); the bytes
/// stay reachable through the shared handle after redb drops its backend.
#[derive(Debug, Default)]
struct MemFile(std::sync::Arc<Mutex<Image>>);

/// The file's bytes: `len` long, of which only the first `bytes.len()` are
/// held; the rest reads as zeros. redb doubles the file as it allocates
/// (to 2.2 MB for c01's 1.3 MB), and filling that with zeros touched fresh
/// memory the kernel had to clear: half of the first run's write.
#[derive(Debug, Default)]
struct Image {
    bytes: Vec<u8>,
    len: usize,
}

impl Image {
    /// The whole file, its zero tail filled in.
    fn into_bytes(mut self) -> Vec<u8> {
        self.bytes.resize(self.len, 0);
        self.bytes
    }
}

impl MemFile {
    /// An empty file whose bytes are expected to reach about `capacity`.
    fn with_capacity(capacity: usize) -> Self {
        let image = Image {
            bytes: Vec::with_capacity(capacity),
            len: 0,
        };
        Self(std::sync::Arc::new(Mutex::new(image)))
    }

    fn image(&self) -> std::sync::MutexGuard<'_, Image> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The byte range `len` bytes from `offset`, or the error redb expects
/// for a range past the end of a `total`-byte file.
fn span(offset: u64, len: usize, total: usize) -> Result<std::ops::Range<usize>, std::io::Error> {
    usize::try_from(offset)
        .ok()
        .and_then(|start| Some(start..start.checked_add(len)?))
        .filter(|r| r.end <= total)
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "out of range"))
}

impl redb::StorageBackend for MemFile {
    fn len(&self) -> Result<u64, std::io::Error> {
        Ok(self.image().len as u64)
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), std::io::Error> {
        let image = self.image();
        let range = span(offset, out.len(), image.len)?;
        let held = range.start.min(image.bytes.len())..range.end.min(image.bytes.len());
        let (from_bytes, zeros) = out.split_at_mut(held.len());
        from_bytes.copy_from_slice(&image.bytes[held]);
        zeros.fill(0);
        Ok(())
    }

    fn set_len(&self, len: u64) -> Result<(), std::io::Error> {
        let len = usize::try_from(len)
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "too large"))?;
        let mut image = self.image();
        image.bytes.truncate(len);
        image.len = len;
        Ok(())
    }

    fn sync_data(&self) -> Result<(), std::io::Error> {
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), std::io::Error> {
        let mut image = self.image();
        let range = span(offset, data.len(), image.len)?;
        if image.bytes.len() < range.end {
            image.bytes.resize(range.end, 0);
        }
        image.bytes[range].copy_from_slice(data);
        Ok(())
    }
}

/// Whether an I/O error could come from a damaged file (rather than from
/// permissions or a full disk, which rebuilding does not cure).
fn rebuilt_worth(e: &std::io::Error) -> bool {
    !matches!(
        e.kind(),
        std::io::ErrorKind::PermissionDenied
            | std::io::ErrorKind::ReadOnlyFilesystem
            | std::io::ErrorKind::StorageFull
            | std::io::ErrorKind::QuotaExceeded
    )
}

fn check_meta(tx: &redb::ReadTransaction) -> Result<(), redb::Error> {
    let meta = tx.open_table(META)?;
    let magic = meta.get("magic")?;
    let format = meta.get("format")?;
    if magic.as_ref().map(|m| m.value()) != Some(MAGIC)
        || format.as_ref().map(|f| f.value()) != Some(FORMAT.to_le_bytes().as_slice())
    {
        return Err(redb::Error::Corrupted(
            "not a pipetrim cache of this format".into(),
        ));
    }
    Ok(())
}

fn check_meta_write(tx: &redb::WriteTransaction) -> Result<(), redb::Error> {
    let meta = tx.open_table(META)?;
    let magic = meta.get("magic")?;
    let format = meta.get("format")?;
    if magic.as_ref().map(|m| m.value()) != Some(MAGIC)
        || format.as_ref().map(|f| f.value()) != Some(FORMAT.to_le_bytes().as_slice())
    {
        return Err(redb::Error::Corrupted(
            "not a pipetrim cache of this format".into(),
        ));
    }
    Ok(())
}

impl LeafCache for DiskCache {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        if let Some(ahead) = self.ahead.get()
            && let Some((_, v)) = ahead.iter().find(|(k, _)| k == key)
        {
            return Some(v.clone());
        }
        let read = || self.reader.read().unwrap_or_else(|e| e.into_inner());
        if matches!(*read(), ReaderState::NotOpened) {
            let mut state = self.reader.write().unwrap_or_else(|e| e.into_inner());
            if matches!(*state, ReaderState::NotOpened) {
                *state = self.open_reader();
            }
        }
        let got = match &*read() {
            ReaderState::Open(r) => catch_unwind(AssertUnwindSafe(|| {
                r.table.get(key).ok().flatten().map(|v| v.value().to_vec())
            })),
            _ => Ok(None),
        };
        let found = got.unwrap_or_else(|_| {
            *self.reader.write().unwrap_or_else(|e| e.into_inner()) = ReaderState::Unavailable;
            None
        });
        let payload = found.and_then(|v| match unframe(&v) {
            Some((day, p)) => {
                // Used today for the first time: stamp it (at most once a day).
                if day != self.day {
                    self.pending
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push((key.to_vec(), frame(self.day, p)));
                }
                Some(p.to_vec())
            }
            None => {
                self.warn(
                    "entry",
                    format!(
                        "an entry of `{}` fails its checksum; it is recomputed",
                        self.path.display()
                    ),
                );
                None
            }
        });
        let mut s = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        if payload.is_some() {
            s.hits += 1;
        } else {
            s.misses += 1;
        }
        payload
    }

    fn refused(&self) {
        let mut s = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        s.hits = s.hits.saturating_sub(1);
        s.misses += 1;
    }

    fn put(&self, key: Vec<u8>, value: Vec<u8>) {
        let framed = frame(self.day, &value);
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((key, framed));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_detect_damage() {
        let f = frame(7, b"hello");
        assert_eq!(unframe(&f), Some((7, &b"hello"[..])));
        let mut bad = f.clone();
        bad[9] ^= 1;
        assert_eq!(unframe(&bad), None);
        assert_eq!(unframe(&f[..5]), None);
    }

    #[test]
    fn an_early_write_makes_the_file_and_the_end_adds_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let c = DiskCache::new(dir.path());
        assert_eq!(c.get(b"a"), None);
        c.put(b"a".to_vec(), b"1".to_vec());
        c.flush_fresh();
        assert!(c.path().exists(), "the first entries make the file");
        assert_eq!(c.stats().written, 1);
        // The rest of the run reads the cache as it found it (no file).
        assert_eq!(c.get(b"a"), None);
        c.put(b"b".to_vec(), b"2".to_vec());
        // With a file in place, the early write leaves everything to the end.
        c.flush_fresh();
        assert_eq!(c.stats().written, 1);
        assert_eq!(c.flush(), 1);
        assert_holds(dir.path(), &[(b"a", b"1"), (b"b", b"2")]);
    }

    /// The in-memory file holds only what was written: the rest of its
    /// length reads as zeros, a shrink drops bytes, and a range past the
    /// end is the error redb expects.
    #[test]
    fn a_memory_file_reads_zeros_where_nothing_was_written() {
        use redb::StorageBackend;
        let f = MemFile::default();
        f.set_len(100).unwrap();
        f.write(10, b"abc").unwrap();
        assert_eq!(f.len().unwrap(), 100);
        let mut out = [9u8; 20];
        f.read(0, &mut out).unwrap();
        let mut want = [0u8; 20];
        want[10..13].copy_from_slice(b"abc");
        assert_eq!(out, want);
        let mut tail = [9u8; 10];
        f.read(90, &mut tail).unwrap();
        assert_eq!(tail, [0u8; 10]);
        assert!(f.read(95, &mut tail).is_err());
        assert!(f.write(99, b"xy").is_err());
        f.set_len(11).unwrap();
        f.set_len(50).unwrap();
        let mut three = [9u8; 3];
        f.read(10, &mut three).unwrap();
        assert_eq!(&three, b"a\0\0");
        let bytes = std::mem::take(&mut *f.image()).into_bytes();
        assert_eq!(bytes.len(), 50);
        assert_eq!(&bytes[10..12], b"a\0");
    }

    /// An early write no thread has started is done by the end of the run,
    /// once; waiting for it again returns at once.
    #[test]
    fn an_early_write_nobody_started_is_done_at_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let c = std::sync::Arc::new(DiskCache::new(dir.path()));
        c.put(b"k".to_vec(), b"v".to_vec());
        let task = EarlyWrite {
            caches: Mutex::new(Some(vec![c.clone()])),
            ..EarlyWrite::default()
        };
        task.finish();
        assert!(c.path().exists());
        task.finish();
        task.run();
        assert_eq!(c.stats().written, 1);
        assert_holds(dir.path(), &[(b"k", b"v")]);
    }

    /// A new process reading `dir` finds each key with its value.
    fn assert_holds(dir: &Path, entries: &[(&[u8], &[u8])]) {
        let again = DiskCache::new(dir);
        for (k, v) in entries {
            assert_eq!(again.get(k).as_deref(), Some(*v), "{k:?}");
        }
    }

    #[test]
    fn the_early_write_and_the_last_flush_keep_every_entry() {
        let dir = tempfile::tempdir().unwrap();
        let c = shared(dir.path());
        c.put(b"before".to_vec(), b"1".to_vec());
        flush_early();
        // Once the early write has put the file in place, a new entry can
        // only be written by the last flush.
        let started = Instant::now();
        while !c.path().exists() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "no early write"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        c.put(b"after".to_vec(), b"2".to_vec());
        flush_all();
        assert_holds(dir.path(), &[(b"before", b"1"), (b"after", b"2")]);
    }

    #[test]
    fn what_the_early_write_cannot_put_in_place_stays_pending_in_order() {
        let dir = tempfile::tempdir().unwrap();
        // The cache directory cannot be created: a file is in the way.
        let blocked = dir.path().join("blocked");
        std::fs::write(&blocked, b"").unwrap();
        let c = DiskCache::new(&blocked.join("cache"));
        c.put(b"k".to_vec(), b"old".to_vec());
        c.flush_fresh();
        c.put(b"k".to_vec(), b"new".to_vec());
        let pending = c.pending.lock().unwrap().clone();
        let values: Vec<_> = pending.iter().map(|(_, v)| unframe(v).unwrap().1).collect();
        assert_eq!(values, [&b"old"[..], &b"new"[..]]);
        // The end says so, and the run goes on.
        assert_eq!(c.flush(), 0);
        assert!(c.warned.lock().unwrap().contains(&"write"));
        // Where the directory can be made, the later value wins.
        let ok = DiskCache::new(&dir.path().join("ok"));
        ok.put(b"k".to_vec(), b"old".to_vec());
        ok.put(b"k".to_vec(), b"new".to_vec());
        ok.flush_fresh();
        assert_eq!(
            DiskCache::new(&dir.path().join("ok")).get(b"k"),
            Some(b"new".to_vec())
        );
    }

    /// Lookups from several threads share the read handle (the first one
    /// opens it): every entry is found, and every lookup is counted.
    #[test]
    fn threads_look_up_side_by_side() {
        let dir = tempfile::tempdir().unwrap();
        let c = DiskCache::new(dir.path());
        for i in 0..50u8 {
            c.put(vec![i], vec![i; 64]);
        }
        assert_eq!(c.flush(), 50);
        let c = DiskCache::new(dir.path());
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for i in 0..50u8 {
                        assert_eq!(c.get(&[i]), Some(vec![i; 64]));
                    }
                });
            }
        });
        assert_eq!((c.stats().hits, c.stats().misses), (200, 0));
    }

    #[test]
    fn entries_survive_a_flush_and_a_new_process() {
        let dir = tempfile::tempdir().unwrap();
        let c = DiskCache::new(dir.path());
        assert_eq!(c.get(b"k"), None);
        c.put(b"k".to_vec(), b"v".to_vec());
        assert_eq!(c.flush(), 1);
        let c2 = DiskCache::new(dir.path());
        assert_eq!(c2.get(b"k"), Some(b"v".to_vec()));
        assert_eq!(c2.get(b"other"), None);
        assert_eq!(
            c2.stats(),
            Stats {
                hits: 1,
                misses: 1,
                ..Stats::default()
            }
        );
        // An entry found but not usable (the engine computes it again) is
        // a miss in the stats, not a hit.
        assert_eq!(c2.get(b"k"), Some(b"v".to_vec()));
        c2.refused();
        assert_eq!((c2.stats().hits, c2.stats().misses), (1, 2));
    }

    /// The first flush builds the file whole; a process that also found no
    /// file, and flushes after it, merges into that file rather than
    /// replacing it, and no temporary file is left behind.
    #[test]
    fn a_new_file_is_put_in_place_whole_and_never_clobbered() {
        let dir = tempfile::tempdir().unwrap();
        let first = DiskCache::new(dir.path());
        let second = DiskCache::new(dir.path());
        assert_eq!(first.get(b"a"), None);
        assert_eq!(second.get(b"b"), None);
        first.put(b"a".to_vec(), b"1".to_vec());
        second.put(b"b".to_vec(), b"2".to_vec());
        assert_eq!(second.flush(), 1);
        assert!(second.path().exists());
        // `first` also saw no file; the file now there is not replaced.
        let pending = first.pending.lock().unwrap().clone();
        assert_eq!(first.write_fresh(&pending).unwrap(), None);
        assert_eq!(first.flush(), 1);
        assert_eq!(names_in(dir.path()), ["leaves-v1.redb"]);
        let reader = DiskCache::new(dir.path());
        assert_eq!(reader.get(b"a"), Some(b"1".to_vec()));
        assert_eq!(reader.get(b"b"), Some(b"2".to_vec()));
        drop(reader);
        // The file built in memory is an ordinary redb file with the format
        // marker: redb opens it and the marker checks out.
        let db = redb::Database::open(second.path()).unwrap();
        check_meta_write(&db.begin_write().unwrap()).unwrap();
    }

    /// A temporary file a killed writer left is removed by a later flush
    /// once it is old; a young one (another writer's, in progress) and
    /// other files are left alone.
    #[test]
    fn temporaries_of_killed_writers_are_removed_when_old() {
        let dir = tempfile::tempdir().unwrap();
        for name in [".leaves-old.tmp", "other.tmp", ".leaves-young.tmp"] {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        let hour_ago = SystemTime::now() - Duration::from_secs(3600);
        for name in [".leaves-old.tmp", "other.tmp"] {
            std::fs::File::options()
                .write(true)
                .open(dir.path().join(name))
                .unwrap()
                .set_modified(hour_ago)
                .unwrap();
        }
        let c = DiskCache::new(dir.path());
        c.put(b"k".to_vec(), b"v".to_vec());
        assert_eq!(c.flush(), 1);
        assert_eq!(
            names_in(dir.path()),
            [".leaves-young.tmp", "leaves-v1.redb", "other.tmp"]
        );
    }

    #[test]
    fn eviction_keeps_the_newest_entries() {
        let dir = tempfile::tempdir().unwrap();
        let c = DiskCache::new(dir.path());
        for i in 0..200u32 {
            c.pending
                .lock()
                .unwrap()
                .push((format!("old{i}").into_bytes(), frame(1, &vec![0u8; 4096])));
        }
        c.flush();
        let size = in_use(c.path());
        // New entries push the file over a bound just above its size: the
        // old ones go, the new ones (half the bound) stay.
        let c = DiskCache::new(dir.path()).with_max_bytes(size + (64 << 10));
        for i in 0..60u32 {
            c.put(format!("new{i}").into_bytes(), vec![1u8; 4096]);
        }
        c.flush();
        assert!(c.stats().evicted >= 100, "{:?}", c.stats());
        let c2 = DiskCache::new(dir.path());
        for i in 0..60u32 {
            assert!(c2.get(format!("new{i}").as_bytes()).is_some());
        }
        let old_left = (0..200u32)
            .filter(|i| c2.get(format!("old{i}").as_bytes()).is_some())
            .count();
        assert!(old_left <= 100, "{old_left} old entries left");
        drop(c2);
        assert!(in_use(c.path()) < size);
    }

    /// The names in `dir`, sorted.
    fn names_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    fn in_use(path: &Path) -> u64 {
        let db = redb::Database::create(path).unwrap();
        let tx = db.begin_write().unwrap();
        tx.stats().unwrap().stored_bytes()
    }
}
