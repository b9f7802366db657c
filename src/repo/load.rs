//! Loading a checkout into the engine's inputs: the visible files (SPEC §1)
//! and a loader that reads file contents from disk on demand.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use pipetrim_queries::{FileContent, FileMode, Loaded, Loader, Stamp, Unreadable};

use crate::error::Error;

/// Reads files below a root directory. With the git index, a file whose
/// work-tree stat matches its index entry is stamped with the entry's blob
/// id without being read (as `git status` decides a file is unchanged);
/// any other file is read and hashed.
pub struct DiskLoader {
    root: PathBuf,
    index: RwLock<Option<Arc<gix::index::File>>>,
}

impl DiskLoader {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        DiskLoader {
            root: root.into(),
            index: RwLock::new(None),
        }
    }

    /// A loader that takes blob ids from `index` where the work tree agrees.
    pub fn with_index(root: impl Into<PathBuf>, index: Option<Arc<gix::index::File>>) -> Self {
        DiskLoader {
            root: root.into(),
            index: RwLock::new(index),
        }
    }

    /// The directory the loader reads below.
    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    /// Replaces the index blob ids are taken from (after `.git/index` changed).
    pub fn set_index(&self, index: Option<Arc<gix::index::File>>) {
        *self.index.write().unwrap_or_else(|e| e.into_inner()) = index;
    }

    fn index(&self) -> Option<Arc<gix::index::File>> {
        self.index.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The blob id the index holds for `path`, if the regular file with
    /// metadata `meta` is known to still have it: stage 0, same stat, not
    /// racily clean (modified in the second the index was written).
    /// Symlinks never qualify: the index holds the link text, the loader
    /// returns the target's bytes.
    pub(crate) fn index_blob(&self, path: &str, meta: &std::fs::Metadata) -> Option<[u8; 20]> {
        let index = self.index()?;
        let entry =
            index.entry_by_path_and_stage(path.into(), gix::index::entry::Stage::Unconflicted)?;
        if !matches!(
            entry.mode,
            gix::index::entry::Mode::FILE | gix::index::entry::Mode::FILE_EXECUTABLE
        ) {
            return None;
        }
        let options = gix::index::entry::stat::Options::default();
        let stat = index_stat(meta)?;
        if !entry.stat.matches(&stat, options) || entry.stat.is_racy(index.timestamp(), options) {
            return None;
        }
        let id: [u8; 20] = entry.id.as_slice().try_into().ok()?;
        Some(id)
    }
}

/// A regular file's stat as the git index records it (32-bit fields
/// truncated, as git does), from one `lstat`.
fn index_stat(meta: &std::fs::Metadata) -> Option<gix::index::entry::Stat> {
    use std::os::unix::fs::MetadataExt;
    if !meta.file_type().is_file() {
        return None;
    }
    let time = |s: i64, ns: i64| gix::index::entry::stat::Time {
        secs: u32::try_from(s).unwrap_or(0),
        nsecs: u32::try_from(ns).unwrap_or(0),
    };
    Some(gix::index::entry::Stat {
        mtime: time(meta.mtime(), meta.mtime_nsec()),
        ctime: time(meta.ctime(), meta.ctime_nsec()),
        dev: meta.dev() as u32,
        ino: meta.ino() as u32,
        uid: meta.uid(),
        gid: meta.gid(),
        size: meta.size() as u32,
    })
}

/// Files larger than this are not read into memory (so never parsed nor
/// hashed): they are `Unreadable`, which keeps steps fail safe and makes a
/// fingerprint that needs one an error naming the file.
pub const MAX_PARSE_BYTES: u64 = 64 * 1024 * 1024;

fn mode_of(meta: &std::fs::Metadata) -> FileMode {
    if meta.file_type().is_symlink() {
        FileMode::Symlink
    } else if meta.permissions().mode() & 0o100 != 0 {
        FileMode::Executable
    } else {
        FileMode::Regular
    }
}

impl Loader for DiskLoader {
    fn load(&self, path: &str) -> (FileContent, FileMode) {
        let full = self.root.join(path);
        let meta = match std::fs::symlink_metadata(&full) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && is_lossy(&full) => {
                return (
                    FileContent::Unreadable(Unreadable::NotUtf8Name),
                    FileMode::Regular,
                );
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return (FileContent::Missing, FileMode::Regular);
            }
            Err(e) => {
                return (
                    FileContent::Unreadable(Unreadable::of_io(&e)),
                    FileMode::Regular,
                );
            }
        };
        let mode = mode_of(&meta);
        (read_checked(&full).0, mode)
    }

    fn stamp(&self, path: &str) -> (Stamp, FileMode) {
        let full = self.root.join(path);
        let meta = match std::fs::symlink_metadata(&full) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && is_lossy(&full) => {
                return (
                    Stamp::Unreadable(Unreadable::NotUtf8Name),
                    FileMode::Regular,
                );
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return (Stamp::Missing, FileMode::Regular);
            }
            Err(e) => return (Stamp::Unreadable(Unreadable::of_io(&e)), FileMode::Regular),
        };
        let mode = mode_of(&meta);
        if meta.file_type().is_file()
            && meta.len() <= MAX_PARSE_BYTES
            && let Some(id) = self.index_blob(path, &meta)
        {
            return (Stamp::Blob(id), mode);
        }
        (Stamp::of(&read_checked(&full).0), mode)
    }

    fn load_stamped(&self, path: &str, stamp: &Stamp) -> Loaded {
        let full = self.root.join(path);
        let (content, after) = read_checked(&full);
        let verified = match (&content, stamp) {
            (FileContent::Bytes(b), Stamp::Blob(id)) => {
                self.holds_blob(path, after.as_ref(), *id, || {
                    Some(pipetrim_queries::db::blob_id(b))
                })
            }
            _ => false,
        };
        Loaded { content, verified }
    }

    fn sha1_stamped(&self, path: &str, stamp: &Stamp) -> (Option<[u8; 20]>, bool) {
        let Stamp::Blob(id) = stamp else {
            // Not a stamp these bytes could be verified against.
            let d = digest_checked(&self.root.join(path), |_| false);
            return (d.digests.ok().map(|(sha, _)| sha), false);
        };
        let (digest, verified) = self.digest_verified(path, *id);
        (digest.ok(), verified)
    }
}

impl DiskLoader {
    /// Whether the bytes just read from `path` are blob `id`: unchanged since
    /// stamped (the stat taken after the read, `after`, still matches the
    /// index entry of `id`), else by their blob id (`blob`, computed only
    /// then). The one rule every read that vouches for a stamp applies.
    pub(crate) fn holds_blob(
        &self,
        path: &str,
        after: Option<&std::fs::Metadata>,
        id: [u8; 20],
        blob: impl FnOnce() -> Option<[u8; 20]>,
    ) -> bool {
        after.and_then(|m| self.index_blob(path, m)) == Some(id) || blob() == Some(id)
    }

    /// The SHA-1 of `path`'s bytes (`Err`: the content, when it is not
    /// bytes), and whether they are blob `id`: the stat after the read
    /// matches the index entry of `id`, else their blob id is `id` (hashed
    /// beside the digest only when the stat before the read did not match:
    /// a file changed during the read is then unverified, never wrong).
    pub(crate) fn digest_verified(
        &self,
        path: &str,
        id: [u8; 20],
    ) -> (Result<[u8; 20], FileContent>, bool) {
        let d = digest_checked(&self.root.join(path), |before| {
            self.index_blob(path, before) != Some(id)
        });
        match d.digests {
            Ok((sha, blob)) => (
                Ok(sha),
                self.holds_blob(path, d.after.as_ref(), id, || blob),
            ),
            Err(content) => (Err(content), false),
        }
    }
}

/// Whether `full` carries U+FFFD, as a name listed lossily does. (A real
/// name with U+FFFD exists, so it never reaches the not-found arm.)
fn is_lossy(full: &Path) -> bool {
    full.to_str().is_some_and(|s| s.contains('\u{FFFD}'))
}

/// Reads `full` (following symlinks) within the size bound; with the
/// file's metadata taken after the read (regular files only).
pub(crate) fn read_checked(full: &Path) -> (FileContent, Option<std::fs::Metadata>) {
    let opened = match open_checked(full) {
        Ok(opened) => opened,
        Err(content) => return (content, None),
    };
    let len = usize::try_from(opened.before.len()).unwrap_or(0);
    match read_sized(&opened.file, len) {
        // The stat that ended the read is the one after it, when the
        // descriptor is the path's own file.
        Ok((bytes, Some(after))) if opened.direct => (FileContent::Bytes(bytes), Some(after)),
        Ok((bytes, _)) => (FileContent::Bytes(bytes), opened.after(full)),
        Err(e) => (FileContent::Unreadable(Unreadable::of_io(&e)), None),
    }
}

/// [`read_checked`] for a file its index entry says is `len` bytes long:
/// opened without following a symlink or waiting on a FIFO, read, then
/// stat'ed once. When that stat shows a regular file of exactly the bytes
/// read, they are its content (the stat is the one after the read);
/// anything else (a symlink, a directory, another length, an error) is
/// read again the careful way, which says what it is. A stat before the
/// read was one system call per file more. A FIFO or device node at the
/// path is so read (without waiting) before it is recognised, where the
/// careful path only opens one; git tracks neither.
pub(crate) fn read_expecting(full: &Path, len: u64) -> (FileContent, Option<std::fs::Metadata>) {
    if len <= MAX_PARSE_BYTES
        && let Ok(expected) = usize::try_from(len)
        && let Ok(file) = open_direct(full)
        && let Ok((bytes, Some(after))) = read_sized(&file, expected)
        && after.is_file()
    {
        return (FileContent::Bytes(bytes), Some(after));
    }
    read_checked(full)
}

/// The bytes of `f`, expected to be `len` long: read straight into the
/// shared buffer the content is kept in (a `Vec` turned into an `Arc`
/// was copied, 3 % of an empty-cache run). A file that changed size since
/// its stat is read whole all the same.
///
/// Once `len` bytes are in, the file's stat says whether that is all of
/// it (a read to find the end was one system call per file more): the
/// stat is returned then, taken after every read. When it is not all, or
/// the file ended early, the end is found by reading and no stat is taken.
fn read_sized(
    mut f: &std::fs::File,
    len: usize,
) -> std::io::Result<(Arc<[u8]>, Option<std::fs::Metadata>)> {
    use std::io::Read;
    // Allocated once, at its final size (`RepeatN` has an exact length).
    let mut buf: Arc<[u8]> = std::iter::repeat_n(0u8, len).collect();
    let Some(slots) = Arc::get_mut(&mut buf) else {
        return Err(std::io::Error::other("a fresh buffer is shared"));
    };
    let mut filled = 0;
    while filled < len {
        match f.read(&mut slots[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    if filled == len
        && let Ok(after) = f.metadata()
        && after.len() == len as u64
    {
        return Ok((buf, Some(after)));
    }
    // The end, found by a read that returns nothing (`read_to_end` would
    // first stat the file and seek for a size hint).
    let mut probe = [0u8; 512];
    let mut rest = Vec::new();
    loop {
        match f.read(&mut probe) {
            Ok(0) => break,
            Ok(n) => {
                rest.extend_from_slice(&probe[..n]);
                f.read_to_end(&mut rest)?;
                break;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    if filled == len && rest.is_empty() {
        return Ok((buf, None));
    }
    // Shrunk or grown while read: what was read, as it was.
    let mut all = slots[..filled].to_vec();
    all.extend_from_slice(&rest);
    Ok((all.into(), None))
}

/// What [`read_checked`] reads, hashed instead of kept: the SHA-1 of the
/// bytes and, when `want_blob` says so of the metadata taken before the
/// read, their git blob id (`Err`: the content, when it is not bytes), with
/// the metadata after the read. The file goes through a buffer this thread
/// keeps, so a large file costs no allocation of its size.
pub(crate) fn digest_checked(
    full: &Path,
    want_blob: impl FnOnce(&std::fs::Metadata) -> bool,
) -> Digested {
    use sha1::Digest;
    thread_local! {
        static BUF: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0; 128 << 10]);
    }
    let opened = match open_checked(full) {
        Ok(opened) => opened,
        Err(content) => {
            return Digested {
                digests: Err(content),
                after: None,
            };
        }
    };
    let (mut f, before) = (&opened.file, &opened.before);
    let mut content = sha1::Sha1::new();
    let mut blob = want_blob(before).then(|| pipetrim_queries::db::blob_hasher(before.len()));
    let mut total: u64 = 0;
    let read = BUF.with(|buf| {
        let mut buf = buf.borrow_mut();
        loop {
            match std::io::Read::read(&mut f, &mut buf) {
                Ok(0) => return Ok(()),
                Ok(n) => {
                    let chunk = &buf[..n];
                    content.update(chunk);
                    if let Some(h) = &mut blob {
                        h.update(chunk);
                    }
                    total += n as u64;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    });
    if let Err(e) = read {
        return Digested {
            digests: Err(FileContent::Unreadable(Unreadable::of_io(&e))),
            after: None,
        };
    }
    // The blob's header names the length stat gave before the read: bytes
    // of another length are not that blob.
    let blob = blob
        .filter(|_| total == before.len())
        .map(|h| h.finalize().into());
    Digested {
        digests: Ok((content.finalize().into(), blob)),
        after: opened.after(full),
    }
}

/// See [`digest_checked`].
pub(crate) struct Digested {
    pub digests: Result<([u8; 20], Option<[u8; 20]>), FileContent>,
    pub after: Option<std::fs::Metadata>,
}

/// A file opened for reading by [`open_checked`].
struct Opened {
    file: std::fs::File,
    /// Its metadata before the read.
    before: std::fs::Metadata,
    /// Opened without following a symlink: the path named the file itself.
    direct: bool,
}

impl Opened {
    /// The metadata of the file just read, if `full` is a regular file (a
    /// symlink's target has its own stat).
    fn after(&self, full: &Path) -> Option<std::fs::Metadata> {
        if self.direct {
            // What was read is the path's own file, whatever the path
            // names now: its stat says whether it is still the index's.
            return self.file.metadata().ok();
        }
        std::fs::symlink_metadata(full)
            .ok()
            .filter(|m| m.file_type().is_file())
            .and_then(|_| self.file.metadata().ok())
    }
}

/// `full` opened for reading with one path lookup: not through a symlink
/// at its end (that fails), and without waiting for a FIFO's writer.
fn open_direct(full: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(full)
}

/// `full` opened for reading (symlinks followed), with its metadata, if it
/// is a regular file within the size bound; else the content that says why
/// not.
///
/// One path lookup for a regular file: opened without following a symlink
/// and without waiting on a FIFO, then checked through the descriptor
/// (three lookups by path were 6 % of an empty-cache run). Anything else
/// (a symlink, a directory, a FIFO, an error, a file too large) takes the
/// careful path, which says what it is. A FIFO or a device node at the path
/// is so opened (without waiting) and closed at once, where the careful
/// path never opened one; git tracks neither, so only a hand-made node in
/// the work tree meets this.
fn open_checked(full: &Path) -> Result<Opened, FileContent> {
    if let Ok(file) = open_direct(full)
        && let Ok(before) = file.metadata()
        && before.is_file()
        && before.len() <= MAX_PARSE_BYTES
    {
        return Ok(Opened {
            file,
            before,
            direct: true,
        });
    }
    let target = match std::fs::metadata(full) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && is_lossy(full) => {
            return Err(FileContent::Unreadable(Unreadable::NotUtf8Name));
        }
        // A dangling symlink exists but cannot be read.
        Err(e)
            if e.kind() == std::io::ErrorKind::NotFound
                && std::fs::symlink_metadata(full).is_err() =>
        {
            return Err(FileContent::Missing);
        }
        Err(e) => return Err(FileContent::Unreadable(Unreadable::of_io(&e))),
    };
    if target.is_dir() {
        return Err(FileContent::Unreadable(Unreadable::Directory));
    }
    // A FIFO would block the read until a writer comes (forever, in CI);
    // a device or socket is not content either.
    if !target.is_file() {
        return Err(FileContent::Unreadable(Unreadable::NotRegular));
    }
    if target.len() > MAX_PARSE_BYTES {
        return Err(FileContent::Unreadable(Unreadable::TooLarge {
            limit: MAX_PARSE_BYTES,
        }));
    }
    match std::fs::File::open(full) {
        Ok(file) => Ok(Opened {
            file,
            before: target,
            direct: false,
        }),
        Err(e) => Err(FileContent::Unreadable(Unreadable::of_io(&e))),
    }
}

/// The visible files of `root`: tracked files present in the work tree plus
/// untracked files that are not ignored; for a plain directory, every file
/// not ignored by `.gitignore`. Sorted, repo-relative, `/`-separated.
///
/// One parallel, ignore-aware walk finds every non-ignored file; tracked
/// files it did not see (inside ignored directories) are checked with
/// `lstat`, so a tracked file counts exactly when it is present.
pub fn visible_files(root: &Path) -> Result<Vec<String>, Error> {
    Ok(scan(root)?.0)
}

/// The visible files of `root` and its git index (`None` for a plain
/// directory), read once for both the file list and the loader's stamps.
pub fn scan(root: &Path) -> Result<(Vec<String>, Option<Arc<gix::index::File>>), Error> {
    scan_cached(root, None)
}

/// [`scan`], keeping the directory listings in `cache` across runs (see
/// [`DirSnapshot`]).
pub fn scan_cached(
    root: &Path,
    cache: Option<&crate::cache::DiskCache>,
) -> Result<(Vec<String>, Option<Arc<gix::index::File>>), Error> {
    let Ok(repo) = crate::repo::git::open(root) else {
        return Ok((walk_plain(root), None));
    };
    crate::timeline::mark("git open");
    let index = read_repo_index(&repo)?;
    crate::timeline::mark("index");
    let key = cache.map(|_| dir_snapshot_key(root));
    let prev = match (cache, &key) {
        (Some(c), Some(k)) => pipetrim_queries::cache::LeafCache::get(c, k)
            .and_then(|b| pipetrim_queries::cache::decode::<DirSnapshot>(&b)),
        _ => None,
    };
    crate::timeline::mark("dir snapshot");
    let (files, snapshot) = scan_with_index(root, &repo, &index, prev.as_ref());
    crate::timeline::mark("scan");
    if let (Some(c), Some(k), Some(snap)) = (cache, key, snapshot)
        && let Some(bytes) = pipetrim_queries::cache::encode(&snap)
    {
        pipetrim_queries::cache::LeafCache::put(c, k, bytes);
    }
    Ok((files, Some(Arc::new(index))))
}

/// What a directory entry is, as far as visibility goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Dir,
    /// Files, symlinks (not followed), anything else that is not a directory.
    File,
}

/// The entries of a directory, sorted (`None` when it cannot be read).
fn list_dir(dir: &Path) -> Option<Vec<(String, Kind)>> {
    let rd = std::fs::read_dir(dir).ok()?;
    let mut out = Vec::new();
    for e in rd.flatten() {
        // A name that is not UTF-8 is listed lossily (U+FFFD) as a file,
        // never entered: the loader reads it as unreadable, so what needs
        // its content (a fingerprint) fails naming it instead of leaving it
        // out silently.
        let (name, utf8) = match e.file_name().into_string() {
            Ok(n) => (n, true),
            Err(n) => (n.to_string_lossy().into_owned(), false),
        };
        if name == ".git" {
            continue;
        }
        let kind = match e.file_type() {
            Ok(t) if t.is_dir() && utf8 => Kind::Dir,
            Ok(_) => Kind::File,
            Err(_) => continue,
        };
        out.push((name, kind));
    }
    out.sort_unstable();
    Some(out)
}

/// The listings of a checkout's tracked directories from the last run,
/// each with the directory's stat when it was listed: git's untracked
/// cache, kept in the persistent cache. Adding, removing or renaming an
/// entry changes a directory's mtime and ctime, so a directory whose stat
/// is unchanged still has the listed entries and need not be read again.
/// A listing taken less than [`RACY_NANOS`] after the directory changed is
/// not trusted later (a later change may land in the same clock tick and
/// leave the stat as it was).
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct DirSnapshot {
    /// Sorted by path.
    dirs: Vec<DirState>,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct DirState {
    path: String,
    stat: DirStat,
    /// Entry names joined by NUL, and their kinds (b'd' or b'f').
    names: String,
    kinds: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct DirStat {
    mtime: (i64, i64),
    ctime: (i64, i64),
    ino: u64,
    dev: u64,
    /// Changed too recently to be trusted by a later run.
    racy: bool,
}

/// How recent a directory change must be for its listing not to be trusted
/// by a later run: more than a clock tick of the kernel's coarse file-time
/// clock (1-10 ms) where timestamps have sub-second parts, and more than
/// their granularity (up to 2 s) where they do not.
const RACY_NANOS: i128 = 100_000_000;
const RACY_NANOS_COARSE: i128 = 3_000_000_000;

impl DirStat {
    fn of(meta: &std::fs::Metadata, now: i128) -> Option<Self> {
        use std::os::unix::fs::MetadataExt;
        if !meta.is_dir() {
            return None;
        }
        let nanos = |s: i64, ns: i64| i128::from(s) * 1_000_000_000 + i128::from(ns);
        let changed =
            nanos(meta.mtime(), meta.mtime_nsec()).max(nanos(meta.ctime(), meta.ctime_nsec()));
        let margin = if meta.mtime_nsec() == 0 && meta.ctime_nsec() == 0 {
            RACY_NANOS_COARSE
        } else {
            RACY_NANOS
        };
        Some(DirStat {
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
            ino: meta.ino(),
            dev: meta.dev(),
            racy: changed + margin >= now,
        })
    }

    fn same(&self, other: &DirStat) -> bool {
        !self.racy
            && self.mtime == other.mtime
            && self.ctime == other.ctime
            && self.ino == other.ino
            && self.dev == other.dev
    }
}

impl DirState {
    /// The listed entries, in the stored order (sorted when [`Self::valid`]).
    fn entries(&self) -> impl Iterator<Item = (&str, Kind)> {
        let names = (!self.names.is_empty())
            .then(|| self.names.split('\0'))
            .into_iter()
            .flatten();
        names.zip(self.kinds.iter().map(|k| match k {
            b'd' => Kind::Dir,
            _ => Kind::File,
        }))
    }

    /// Whether the state is well formed: a kind per name, each `d` or `f`,
    /// names sorted. (Checked without collecting: a warm scan checks
    /// ~1,500 of them.)
    fn valid(&self) -> bool {
        let names = if self.names.is_empty() {
            0
        } else {
            self.names.split('\0').count()
        };
        names == self.kinds.len()
            && self.kinds.iter().all(|k| matches!(k, b'd' | b'f'))
            && self
                .entries()
                .zip(self.entries().skip(1))
                .all(|(a, b)| a <= b)
    }

    fn new(path: &str, stat: DirStat, entries: &[(String, Kind)]) -> Self {
        let names: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
        DirState {
            path: path.to_string(),
            stat,
            names: names.join("\0"),
            kinds: entries
                .iter()
                .map(|(_, k)| if *k == Kind::Dir { b'd' } else { b'f' })
                .collect(),
        }
    }
}

/// The cache key of the directory snapshot of the checkout at `root`.
fn dir_snapshot_key(root: &Path) -> Vec<u8> {
    use sha1::Digest;
    let canonical = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    let mut key = b"dirs/v1/".to_vec();
    key.extend_from_slice(&sha1::Sha1::digest(
        canonical.as_os_str().as_encoded_bytes(),
    ));
    key
}

/// The visible files of a git checkout, guided by its index (what `git
/// status` does, without hashing): every directory that holds tracked files
/// is listed (in parallel, or taken from `prev` when its stat is unchanged),
/// which tells which tracked files are present and which entries are
/// untracked; only untracked entries are checked against the ignore rules,
/// and only untracked directories that are not ignored are walked further.
/// Tracked files count even inside ignored directories; untracked ones
/// there never do (git's rule). Returns the new snapshot when it differs.
fn scan_with_index(
    root: &Path,
    repo: &gix::Repository,
    index: &gix::index::File,
    prev: Option<&DirSnapshot>,
) -> (Vec<String>, Option<DirSnapshot>) {
    use rayon::prelude::*;
    use std::collections::{HashMap, HashSet};

    // Tracked file names by directory ("" is the root), and every directory
    // on the way (also those holding only subdirectories).
    // Index order is path order, so a directory's files come sorted, and
    // consecutive entries mostly share a directory.
    let mut slot: HashMap<&str, usize> = HashMap::new();
    // Each name with its entry's position in the index, so the present
    // files come out in index order (path order) without a sort.
    let mut tracked: Vec<(&str, Vec<(&str, usize)>)> = vec![("", Vec::new())];
    slot.insert("", 0);
    let mut last: (&str, usize) = ("", 0);
    for (pos, entry) in index.entries().iter().enumerate() {
        let Ok(path) = std::str::from_utf8(entry.path(index)) else {
            continue;
        };
        let (dir, name) = match path.rfind('/') {
            Some(i) => (&path[..i], &path[i + 1..]),
            None => ("", path),
        };
        let i = if dir == last.0 {
            last.1
        } else if let Some(&i) = slot.get(dir) {
            i
        } else {
            let i = tracked.len();
            tracked.push((dir, Vec::new()));
            slot.insert(dir, i);
            let mut d = dir;
            while let Some(j) = d.rfind('/') {
                d = &d[..j];
                if slot.contains_key(d) {
                    break;
                }
                slot.insert(d, tracked.len());
                tracked.push((d, Vec::new()));
            }
            i
        };
        last = (dir, i);
        tracked[i].1.push((name, pos));
    }
    tracked.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let dirs: Vec<&str> = tracked.iter().map(|(d, _)| *d).collect();
    let prev: HashMap<&str, &DirState> = prev
        .map(|p| p.dirs.iter().map(|d| (d.path.as_str(), d)).collect())
        .unwrap_or_default();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i128::try_from(d.as_nanos()).unwrap_or(i128::MAX));
    // Per directory: its listing, from the last run or read now.
    enum Listed<'p> {
        Unreadable,
        Cached(&'p DirState, bool),
        Read(DirState),
    }
    let listed: Vec<Listed> = dirs
        .par_iter()
        .map(|d| {
            let full = root.join(d);
            let Some(stat) = std::fs::metadata(&full)
                .ok()
                .and_then(|m| DirStat::of(&m, now))
            else {
                return Listed::Unreadable;
            };
            if let Some(p) = prev.get(d)
                && p.stat.same(&stat)
                && p.valid()
            {
                return Listed::Cached(p, stat.racy);
            }
            match list_dir(&full) {
                Some(entries) => Listed::Read(DirState::new(d, stat, &entries)),
                None => Listed::Unreadable,
            }
        })
        .collect();
    crate::timeline::mark("dir stats");
    let tracked_dirs: HashSet<&str> = dirs.iter().copied().collect();

    let join = |dir: &str, name: &str| -> String {
        if dir.is_empty() {
            name.to_string()
        } else {
            let mut p = String::with_capacity(dir.len() + 1 + name.len());
            p.push_str(dir);
            p.push('/');
            p.push_str(name);
            p
        }
    };
    let mut present = vec![false; index.entries().len()];
    let mut mark = |pos: usize| {
        if let Some(p) = present.get_mut(pos) {
            *p = true;
        }
    };
    // Untracked visible files (and tracked names that are now directories).
    let mut out: Vec<String> = Vec::new();
    let mut untracked: Vec<(String, Kind)> = Vec::new();
    for ((dir, names), listing) in tracked.iter().zip(&listed) {
        let state = match listing {
            Listed::Unreadable => None,
            Listed::Cached(state, _) => Some(*state),
            Listed::Read(state) => Some(state),
        };
        let Some(state) = state else {
            // Not a readable directory (deleted, or a file now): a tracked
            // file below counts if the path still resolves (a symlinked
            // directory), as `lstat` sees it.
            for &(n, pos) in names {
                if std::fs::symlink_metadata(root.join(join(dir, n))).is_ok() {
                    mark(pos);
                }
            }
            continue;
        };
        let sorted_names;
        let names: &[(&str, usize)] = if names.is_sorted() {
            names
        } else {
            let mut v = names.clone();
            v.sort_unstable();
            sorted_names = v;
            &sorted_names
        };
        // Both sorted: a merge join.
        let mut t = names.iter().peekable();
        for (name, kind) in state.entries() {
            while t.next_if(|n| n.0 < name).is_some() {}
            if let Some(&(_, pos)) = t.next_if(|n| n.0 == name) {
                mark(pos);
                // A tracked name that is now a directory: its contents are
                // untracked (the name counts too, as it exists).
                if kind != Kind::Dir {
                    continue;
                }
            }
            let path = join(dir, name);
            if kind == Kind::Dir && tracked_dirs.contains(path.as_str()) {
                continue;
            }
            untracked.push((path, kind));
        }
    }
    if !untracked.is_empty() {
        let mut ignore = Ignore::new(repo, index);
        let mut stack: Vec<(String, Kind)> = untracked;
        while let Some((path, kind)) = stack.pop() {
            if ignore.excluded(&path, kind == Kind::Dir) {
                continue;
            }
            match kind {
                Kind::File => out.push(path),
                Kind::Dir => {
                    for (name, kind) in list_dir(&root.join(&path)).unwrap_or_default() {
                        stack.push((join(&path, &name), kind));
                    }
                }
            }
        }
    }
    // The tracked files in index order, which is path order, merged with
    // the (few) others.
    out.sort_unstable();
    let mut others = out.into_iter().peekable();
    let mut out: Vec<String> = Vec::with_capacity(index.entries().len() + others.len());
    for (entry, _) in index.entries().iter().zip(&present).filter(|(_, p)| **p) {
        let Ok(path) = std::str::from_utf8(entry.path(index)) else {
            continue;
        };
        while let Some(o) = others.next_if(|o| o.as_str() < path) {
            out.push(o);
        }
        out.push(path.to_string());
    }
    out.extend(others);
    // An index out of path order (not written by git) still gives a sorted list.
    if !out.is_sorted() {
        out.sort();
    }
    out.dedup();
    let changed = prev.len() != dirs.len()
        || listed.iter().any(|l| match l {
            Listed::Cached(p, racy) => p.stat.racy != *racy,
            _ => true,
        });
    let snapshot = changed.then(|| DirSnapshot {
        dirs: listed
            .into_iter()
            .filter_map(|l| match l {
                Listed::Unreadable => None,
                Listed::Cached(p, racy) => {
                    let mut s = p.clone();
                    s.stat.racy = racy;
                    Some(s)
                }
                Listed::Read(s) => Some(s),
            })
            .collect(),
    });
    (out, snapshot)
}

/// git's ignore rules (`.gitignore` files, `.git/info/exclude`,
/// `core.excludesFile`), with the exclusion of a directory inherited by
/// everything below it. A path whose rules cannot be read counts as not
/// ignored (visible: the safe side).
struct Ignore<'a> {
    stack: Option<gix::AttributeStack<'a>>,
    dirs: std::collections::HashMap<String, bool>,
}

impl<'a> Ignore<'a> {
    fn new(repo: &'a gix::Repository, index: &gix::index::File) -> Self {
        let stack = repo
            .excludes(
                index,
                None,
                gix::worktree::stack::state::ignore::Source::WorktreeThenIdMappingIfNotSkipped,
            )
            .ok();
        Ignore {
            stack,
            dirs: std::collections::HashMap::new(),
        }
    }

    fn matches(&mut self, path: &str, is_dir: bool) -> bool {
        let Some(stack) = self.stack.as_mut() else {
            return false;
        };
        let mode = if is_dir {
            gix::index::entry::Mode::DIR
        } else {
            gix::index::entry::Mode::FILE
        };
        stack
            .at_path(Path::new(path), Some(mode))
            .is_ok_and(|p| p.is_excluded())
    }

    /// Whether `path` or a directory above it is ignored.
    fn excluded(&mut self, path: &str, is_dir: bool) -> bool {
        if let Some(i) = path.rfind('/')
            && self.dir_excluded(&path[..i])
        {
            return true;
        }
        self.matches(path, is_dir)
    }

    fn dir_excluded(&mut self, dir: &str) -> bool {
        if let Some(&x) = self.dirs.get(dir) {
            return x;
        }
        let x = match dir.rfind('/') {
            Some(i) if self.dir_excluded(&dir[..i]) => true,
            _ => self.matches(dir, true),
        };
        self.dirs.insert(dir.to_string(), x);
        x
    }
}

/// The index of the repository at `root`, or `None` for a plain directory.
pub fn read_index(root: &Path) -> Result<Option<gix::index::File>, Error> {
    let Ok(repo) = crate::repo::git::open(root) else {
        return Ok(None);
    };
    read_repo_index(&repo).map(Some)
}

pub(crate) fn read_repo_index(repo: &gix::Repository) -> Result<gix::index::File, Error> {
    // Read the index without verifying its trailing checksum: git just
    // wrote it, and hashing the whole file is most of the cost.
    gix::index::File::at_or_default(
        repo.index_path(),
        repo.object_hash(),
        true,
        Default::default(),
    )
    .map_err(|e| Error::Git(format!("cannot read the index: {e}")))
}

/// The visible files of a plain directory: every file not ignored by a
/// `.gitignore`, sorted.
fn walk_plain(root: &Path) -> Vec<String> {
    let mut v: Vec<String> = walk(root).into_iter().collect();
    v.sort_unstable();
    v
}

/// Every non-ignored file below `root` (files and symlinks), in parallel.
pub fn walk(root: &Path) -> std::collections::HashSet<String> {
    let found = std::sync::Mutex::new(std::collections::HashSet::new());
    let mut walk = ignore::WalkBuilder::new(root);
    walk.hidden(false)
        .parents(false)
        .git_ignore(true)
        .git_exclude(true)
        .git_global(true)
        .require_git(false)
        .ignore(false)
        .threads(std::thread::available_parallelism().map_or(2, |n| n.get().min(8)))
        .filter_entry(|e| e.file_name() != ".git");
    walk.build_parallel().run(|| {
        let found = &found;
        Box::new(move |entry| {
            use ignore::WalkState;
            let Ok(entry) = entry else {
                // Unreadable directories: nothing inside can be an input we know of.
                return WalkState::Continue;
            };
            // Anything that is not a directory, as the index-guided walk
            // lists it: a FIFO or socket where an input belongs is then
            // an unreadable input (fail safe), not a missing one.
            let is_file = entry.file_type().is_some_and(|t| !t.is_dir());
            if is_file
                && let Ok(rel) = entry.path().strip_prefix(root)
                // Lossily when not UTF-8: then unreadable (see `list_dir`).
                && let rel = rel.to_string_lossy()
                && !rel.is_empty()
                && let Ok(mut f) = found.lock()
            {
                f.insert(rel.replace(std::path::MAIN_SEPARATOR, "/"));
            }
            WalkState::Continue
        })
    });
    found.into_inner().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::git::test_git as git;
    use sha1::Digest;

    fn sha1_of(b: &[u8]) -> [u8; 20] {
        sha1::Sha1::digest(b).into()
    }

    /// Writes into `d` a file larger than a read buffer (`big`, returned),
    /// an empty one, a symlink to `big`, a dangling symlink, a directory and
    /// a FIFO: every kind of path a read must answer for.
    fn odd_files(d: &Path) -> Vec<u8> {
        let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(d.join("big"), &big).unwrap();
        std::fs::write(d.join("empty"), b"").unwrap();
        std::os::unix::fs::symlink("big", d.join("link")).unwrap();
        std::os::unix::fs::symlink("nowhere", d.join("dangling")).unwrap();
        std::fs::create_dir(d.join("dir")).unwrap();
        let fifo = std::process::Command::new("mkfifo")
            .arg(d.join("fifo"))
            .status()
            .expect("mkfifo runs");
        assert!(fifo.success());
        big
    }

    /// The streamed digest is the digest of what `read_checked` reads, the
    /// blob id only when asked for, and every file that is not bytes gives
    /// the content `read_checked` gives, without blocking on a FIFO.
    #[test]
    fn the_streamed_digest_is_the_digest_of_the_bytes_read() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let d = tmp.path();
        odd_files(d);
        for name in ["big", "empty", "link"] {
            let full = d.join(name);
            let (content, after) = read_checked(&full);
            let FileContent::Bytes(bytes) = content else {
                panic!("{name}: {content:?}");
            };
            let streamed = digest_checked(&full, |_| true);
            let (sha, blob) = streamed.digests.expect(name);
            assert_eq!(sha, sha1_of(&bytes), "{name}");
            assert_eq!(blob, Some(pipetrim_queries::db::blob_id(&bytes)), "{name}");
            assert_eq!(streamed.after.is_some(), after.is_some(), "{name}");
            let (_, blob) = digest_checked(&full, |_| false).digests.expect(name);
            assert_eq!(blob, None, "{name}");
        }
        for name in ["missing", "dangling", "dir", "fifo"] {
            let full = d.join(name);
            let (content, _) = read_checked(&full);
            let streamed = digest_checked(&full, |_| true);
            assert_eq!(streamed.digests.err(), Some(content), "{name}");
            assert!(streamed.after.is_none(), "{name}");
        }
    }

    /// Reading a file at the length its index entry gives is reading it
    /// the careful way, whatever is at the path: the same content and the
    /// same stat (for a regular file named directly, of any length), and
    /// for anything else the same answer, without blocking on a FIFO.
    #[test]
    fn a_file_read_at_its_expected_length_is_read_as_carefully() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let d = tmp.path();
        let big = odd_files(d);
        let names = ["big", "empty", "link", "missing", "dangling", "dir", "fifo"];
        for name in names {
            let full = d.join(name);
            let (careful, careful_after) = read_checked(&full);
            for len in [0, 1, 1000, big.len() as u64, big.len() as u64 + 1] {
                let (content, after) = read_expecting(&full, len);
                assert_eq!(content, careful, "{name} at {len}");
                assert_eq!(
                    after.map(|m| (m.len(), m.is_file())),
                    careful_after.as_ref().map(|m| (m.len(), m.is_file())),
                    "{name} at {len}"
                );
            }
        }
        let (content, after) = read_expecting(&d.join("big"), big.len() as u64);
        assert_eq!(content, FileContent::Bytes(big.as_slice().into()));
        assert_eq!(after.map(|m| m.len()), Some(big.len() as u64));
        assert!(read_checked(&d.join("link")).1.is_none());
    }

    /// A file is read whole whatever size its stat said (it may change in
    /// between), and its stat after the read is given for a file named
    /// directly, not through a symlink (the link's target has its own).
    #[test]
    fn a_file_is_read_whole_and_stat_only_when_named_directly() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let d = tmp.path();
        let text = b"a file of thirty-one bytes here";
        std::fs::write(d.join("f"), text).unwrap();
        std::os::unix::fs::symlink("f", d.join("link")).unwrap();
        for len in [0, 5, text.len(), text.len() + 100] {
            let f = std::fs::File::open(d.join("f")).unwrap();
            let (read, stat) = read_sized(&f, len).expect("reads");
            assert_eq!(&read[..], &text[..], "expected length {len}");
            // A stat only where it ended the read: the expected length was right.
            assert_eq!(stat.is_some(), len == text.len(), "expected length {len}");
        }
        let (content, after) = read_checked(&d.join("f"));
        assert_eq!(content, FileContent::Bytes(text.as_slice().into()));
        assert_eq!(after.map(|m| m.len()), Some(text.len() as u64));
        let (content, after) = read_checked(&d.join("link"));
        assert_eq!(content, FileContent::Bytes(text.as_slice().into()));
        assert!(after.is_none());
    }

    /// `sha1_stamped` verifies exactly when `load_stamped` does: a file as
    /// committed (by its stat), one touched since (by its blob id), one
    /// edited since (not verified, the digest of the new bytes), and a
    /// stamp that is not a blob.
    #[test]
    fn the_streamed_digest_is_verified_as_the_loaded_content_is() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let d = tmp.path();
        git(d, &["init", "-q"]);
        for name in ["same", "touched", "edited"] {
            std::fs::write(d.join(name), format!("{name}\n")).unwrap();
        }
        git(d, &["add", "."]);
        git(d, &["commit", "-qm", "c"]);
        let (_, index) = scan(d).expect("scans");
        let loader = DiskLoader::with_index(d, index);
        let ids: Vec<_> = ["same", "touched", "edited"]
            .iter()
            .map(|n| loader.stamp(n).0)
            .collect();
        // A second later the stat no longer matches the index's.
        std::thread::sleep(std::time::Duration::from_millis(1100));
        std::fs::write(d.join("touched"), "touched\n").unwrap();
        std::fs::write(d.join("edited"), "edited again\n").unwrap();
        for (name, stamp) in ["same", "touched", "edited"].iter().zip(&ids) {
            let loaded = loader.load_stamped(name, stamp);
            let FileContent::Bytes(bytes) = &loaded.content else {
                panic!("{name}");
            };
            let (sha, verified) = loader.sha1_stamped(name, stamp);
            assert_eq!(sha, Some(sha1_of(bytes)), "{name}");
            assert_eq!(verified, loaded.verified, "{name}");
            assert_eq!(verified, *name != "edited", "{name}");
        }
        let (sha, verified) = loader.sha1_stamped("same", &Stamp::Missing);
        assert_eq!(sha, Some(sha1_of(b"same\n")));
        assert!(!verified);
    }
}
