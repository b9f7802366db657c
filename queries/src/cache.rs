//! Leaf results kept across runs, keyed by content.
//!
//! A leaf query (one file's parse, hash, …) is a pure function of the file's
//! bytes, and a [`Stamp`](crate::db::Stamp) names those bytes by their git
//! blob id. So its result can be stored under (kind, schema, blob id) and
//! reused by any later process that sees the same blob, without reading the
//! file. The store itself lives in the edges (it does I/O); this crate sees
//! it only through [`LeafCache`], installed on the database.
//!
//! Never trusted: an entry that does not decode is a miss; a failed read is a
//! miss; results are stored only under a stamp the loader verified against
//! the bytes actually parsed.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::db::{Db, File, FileContent, file_content};
use crate::diag::Diagnostic;

/// The encodings' version: part of every key. Bump it whenever a cached
/// type (or what a leaf computes) changes; `tests::encodings_are_pinned`
/// fails until you do.
pub const SCHEMA: u16 = 2;

/// What a cache entry holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Kind {
    /// `python::module_summary` of a file that is not a composition
    /// (without its calls).
    ModuleSummary = 1,
    /// `images::mzbuild_config` (successful parses only).
    Mzbuild = 2,
    /// `cargo::manifest` (successful parses only).
    Manifest = 3,
    /// `cargo::workspace_manifest` (successful parses only).
    WorkspaceManifest = 4,
    /// `images::dockerfile_deps`.
    Dockerfile = 5,
    /// `fingerprint::content_sha1`.
    ContentSha1 = 6,
    /// `python::analysis::composition_analysis` (keyed by a digest, see there).
    CompositionAnalysis = 7,
    /// `fingerprint::self_hash` (keyed by a digest, see there).
    SelfHash = 8,
    /// `pipeline::template` (keyed by a digest of its text, see there).
    Template = 9,
    /// `cargo::manifest`'s errors (keyed by the blob and the path, which
    /// the error names; see [`leaf_result`]).
    ManifestError = 10,
    /// `python::module_summary` of a composition file (`mzcompose.py`),
    /// with its calls.
    CompositionSummary = 11,
}

/// A persistent map from keys to bytes. Implementations must be safe to
/// call from several threads; `get` returns `None` on any failure.
pub trait LeafCache: Send + Sync {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>>;
    /// Records an entry (the store may write it later, or never).
    fn put(&self, key: Vec<u8>, value: Vec<u8>);
    /// An entry `get` returned could not be used (it did not decode, or a
    /// file it depends on has changed since): the caller computes the
    /// result again, so the store counts a miss, not a hit.
    fn refused(&self) {}
}

/// The entry under `key`, decoded and checked by `usable`; an entry found
/// but not usable is reported ([`LeafCache::refused`]), so that the stats
/// count what was computed again.
pub(crate) fn lookup<T: DeserializeOwned, U>(
    cache: &dyn LeafCache,
    key: &[u8],
    usable: impl FnOnce(T) -> Option<U>,
) -> Option<U> {
    let bytes = cache.get(key)?;
    let found = decode::<T>(&bytes).and_then(usable);
    if found.is_none() {
        cache.refused();
    }
    found
}

/// The entry under `key`, decoded ([`lookup`] with nothing more to check).
pub(crate) fn stored<T: DeserializeOwned>(cache: &dyn LeafCache, key: &[u8]) -> Option<T> {
    lookup(cache, key, Some)
}

/// The key of `kind` for a blob: kind, schema, blob id.
pub fn key(kind: Kind, blob: &[u8; 20]) -> Vec<u8> {
    let mut k = Vec::with_capacity(23);
    k.push(kind as u8);
    k.extend_from_slice(&SCHEMA.to_le_bytes());
    k.extend_from_slice(blob);
    k
}

/// A change detector over source texts (FNV-1a; not adversarial): mixed
/// into the key of a derived result, so that one computed by other code is
/// never reused, even if nobody bumped [`SCHEMA`].
pub fn code_digest(sources: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for s in sources {
        for b in s.bytes().chain([0xff]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// Feeds `s` to a key digest, length first, so that consecutive strings
/// cannot run into each other.
pub fn hash_str(h: &mut sha1::Sha1, s: &str) {
    use sha1::Digest;
    h.update((s.len() as u64).to_le_bytes());
    h.update(s.as_bytes());
}

/// `file`'s blob id if results derived from its content may be stored
/// under it: it has one, and no leaf read bytes of it that the loader could
/// not vouch for ([`Db::note_unverified`]).
pub fn vouched_blob(db: &dyn Db, file: File) -> Option<[u8; 20]> {
    let blob = *file.stamp(db).blob()?;
    (!db.is_unverified(&blob)).then_some(blob)
}

/// Encodes a value for the cache.
pub fn encode<T: Serialize>(value: &T) -> Option<Vec<u8>> {
    postcard::to_allocvec(value).ok()
}

/// Decodes a cached value; `None` unless the bytes are exactly one value.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Option<T> {
    match postcard::take_from_bytes::<T>(bytes) {
        Ok((v, [])) => Some(v),
        _ => None,
    }
}

/// The result of a leaf over `file`'s content: from the cache when the
/// file's stamp names a blob and an entry decodes; otherwise computed from
/// the content (read now) and stored when `store` accepts it and the loader
/// verified the content against the stamp.
pub(crate) fn leaf<T, R>(
    db: &dyn Db,
    kind: Kind,
    file: File,
    compute: impl FnOnce(&FileContent) -> T,
    store: impl FnOnce(&T) -> Option<R>,
    restore: impl FnOnce(R) -> T,
) -> T
where
    R: Serialize + DeserializeOwned,
{
    leaf_with(
        db,
        kind,
        file,
        |blob| compute_leaf(db, file, blob, Read::Memoized, compute),
        |v| store(v).and_then(|r| encode(&r)),
        restore,
    )
}

/// A cache entry: its key and its encoded value.
pub type Entry = (Vec<u8>, Vec<u8>);

/// The entry [`leaf`] stores for a file whose bytes are `bytes` and whose
/// leaf computed `value`: for a result computed outside the database from
/// bytes read ahead (`pipeline::entries_ahead`), under the key the leaf
/// looks up (`kind`, the bytes' blob id) and in the form it restores.
pub(crate) fn leaf_entry<T, R: Serialize>(
    kind: Kind,
    bytes: &[u8],
    value: &T,
    store: impl FnOnce(&T) -> Option<R>,
) -> Option<Entry> {
    let encoded = encode(&store(value)?)?;
    Some((key(kind, &crate::db::blob_id(bytes)), encoded))
}

/// How a leaf reads its file's content on a miss.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Read {
    /// Through the memoized [`file_content`], which other queries share.
    Memoized,
    /// Read for this computation and dropped after it
    /// ([`crate::db::read_content`]): for a leaf that is all anyone needs
    /// of the file (its SHA-1).
    Once,
}

/// [`leaf`] for a value stored as it is, from content read for it alone
/// ([`Read::Once`]): encoded from the value itself, not from a copy.
pub(crate) fn leaf_read_once<T>(
    db: &dyn Db,
    kind: Kind,
    file: File,
    compute: impl FnOnce(&FileContent) -> T,
) -> T
where
    T: Serialize + DeserializeOwned,
{
    leaf_with(
        db,
        kind,
        file,
        |blob| compute_leaf(db, file, blob, Read::Once, compute),
        encode,
        |v| v,
    )
}

/// The SHA-1 of `file`'s content as a leaf ([`Kind::ContentSha1`]): the
/// loader streams the file ([`crate::db::content_digest`]), so neither a
/// buffer of its size nor a memo of its bytes is made.
pub(crate) fn digest_leaf(db: &dyn Db, file: File) -> Option<[u8; 20]> {
    leaf_with(
        db,
        Kind::ContentSha1,
        file,
        |blob| {
            let (digest, verified) = crate::db::content_digest(db, file);
            (digest, vouch(db, blob, verified))
        },
        encode,
        Some,
    )
}

/// A leaf with the computation on a miss given as `produce`, which
/// returns the value and the blob it is vouched for (if any), and `store`
/// the encoding kept (if any) of what `restore` reads back.
fn leaf_with<T, R>(
    db: &dyn Db,
    kind: Kind,
    file: File,
    produce: impl FnOnce(Option<[u8; 20]>) -> (T, Option<[u8; 20]>),
    store: impl FnOnce(&T) -> Option<Vec<u8>>,
    restore: impl FnOnce(R) -> T,
) -> T
where
    R: DeserializeOwned,
{
    let blob = file.stamp(db).blob().copied();
    let cache = db.leaf_cache();
    if let (Some(cache), Some(blob)) = (cache, blob.as_ref())
        && let Some(v) = stored::<R>(cache, &key(kind, blob))
    {
        return restore(v);
    }
    let (value, vouched) = produce(blob);
    if let (Some(cache), Some(blob)) = (cache, vouched)
        && let Some(bytes) = store(&value)
    {
        cache.put(key(kind, &blob), bytes);
    }
    value
}

/// A leaf computed from `file`'s content (read as `read` says), and the
/// blob id to store it under: `blob` when the loader vouched that the bytes
/// are that blob, else `None` (and the blob is noted unverified, so that
/// nothing derived from it is stored either).
fn compute_leaf<T>(
    db: &dyn Db,
    file: File,
    blob: Option<[u8; 20]>,
    read: Read,
    compute: impl FnOnce(&FileContent) -> T,
) -> (T, Option<[u8; 20]>) {
    let owned;
    let loaded = match read {
        Read::Memoized => file_content(db, file),
        Read::Once => {
            owned = crate::db::read_content(db, file);
            &owned
        }
    };
    let value = compute(&loaded.content);
    (value, vouch(db, blob, loaded.verified))
}

/// The blob a result read from the file may be stored under: the stamp's,
/// if the loader verified the content against it (else it is noted).
fn vouch(db: &dyn Db, blob: Option<[u8; 20]>, verified: bool) -> Option<[u8; 20]> {
    if !verified && let Some(blob) = blob {
        db.note_unverified(blob);
    }
    blob.filter(|_| verified)
}

/// [`leaf`] for a result that is an error naming its file when it fails:
/// a success is kept under the blob, as [`leaf`] keeps it; an error under
/// the blob and the path (`error_kind`), so that a file that fails the
/// same way on every run (a member glob matching a workspace manifest, an
/// empty `Cargo.toml`) is not read and parsed again on every warm run.
pub(crate) fn leaf_result<T>(
    db: &dyn Db,
    kind: Kind,
    error_kind: Kind,
    file: File,
    compute: impl FnOnce(&FileContent) -> Result<T, Diagnostic>,
) -> Result<T, Diagnostic>
where
    T: Serialize + DeserializeOwned,
{
    let blob = file.stamp(db).blob().copied();
    let cache = db.leaf_cache();
    let error_key = |blob: &[u8; 20]| {
        use sha1::Digest;
        let mut h = sha1::Sha1::new();
        h.update(blob);
        hash_str(&mut h, file.path(db));
        key(error_kind, &h.finalize().into())
    };
    if let (Some(cache), Some(blob)) = (cache, blob.as_ref()) {
        if let Some(v) = stored::<T>(cache, &key(kind, blob)) {
            return Ok(v);
        }
        if let Some(e) = stored::<Diagnostic>(cache, &error_key(blob)) {
            return Err(e);
        }
    }
    let (value, vouched) = compute_leaf(db, file, blob, Read::Memoized, compute);
    if let (Some(cache), Some(blob)) = (cache, vouched) {
        let entry = match &value {
            Ok(v) => encode(v).map(|bytes| (key(kind, &blob), bytes)),
            Err(e) => encode(e).map(|bytes| (error_key(&blob), bytes)),
        };
        if let Some((k, bytes)) = entry {
            cache.put(k, bytes);
        }
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bytes every cached kind encodes to, for fixed inputs. If this
    /// fails, a cached type or what a leaf computes changed: bump
    /// [`SCHEMA`] (old entries then miss instead of misdecoding) and update
    /// the digest.
    #[test]
    fn encodings_are_pinned() {
        use sha1::{Digest, Sha1};
        let summary = crate::python::summarize(
            "import os\nfrom .a import b as c\nclass S(Base):\n    def __init__(self, mzbuild='x'):\n        config = {'mzbuild': mzbuild}\nX = f(1, k='v')\n",
        );
        let manifest = crate::cargo::Manifest {
            name: "a".into(),
            dependencies: ["b".to_string()].into(),
            build_dependencies: Default::default(),
            dev_dependencies: ["c".to_string()].into(),
            bins: vec!["d".into()],
            examples: vec![],
            autobins: true,
            autoexamples: false,
        };
        let ws = crate::cargo::WorkspaceManifest {
            members: vec!["src/a".into()],
            exclude: vec!["misc/*".into()],
            rust_version: Some("1.95".into()),
        };
        let mut h = Sha1::new();
        for bytes in [
            encode(&summary),
            encode(&manifest),
            encode(&ws),
            encode(&vec!["base".to_string()]),
            encode(&[7u8; 20]),
            crate::images::cached_sample(),
            crate::pipeline::cached_sample(),
            encode(
                &Diagnostic::in_file("a/Cargo.toml", "missing `[package]` table")
                    .at_line(Some(3))
                    .hint("h"),
            ),
        ] {
            let bytes = bytes.unwrap_or_default();
            h.update((bytes.len() as u64).to_le_bytes());
            h.update(&bytes);
        }
        let digest: [u8; 20] = h.finalize().into();
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            (SCHEMA, hex.as_str()),
            (2, "49ac3f8c09aaba4ad1af9fbc738c8c8f5ccfaef5")
        );
    }

    #[test]
    fn decode_refuses_trailing_bytes_and_garbage() {
        let bytes = encode(&vec!["a".to_string()]).unwrap_or_default();
        assert_eq!(decode::<Vec<String>>(&bytes), Some(vec!["a".to_string()]));
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(decode::<Vec<String>>(&longer), None);
        assert_eq!(decode::<Vec<String>>(&[0xff, 0xff, 0xff]), None);
        assert_eq!(decode::<Vec<String>>(&bytes[..bytes.len() - 1]), None);
    }
}
