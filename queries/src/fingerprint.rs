//! Image fingerprints (SPEC §8), bit for bit as the reference computes them.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use sha1::{Digest, Sha1};

use crate::cache::{Kind, SCHEMA, encode, key, stored};
use crate::db::{Db, File, FileContent, FileSet};
use crate::diag::Diagnostic;
use crate::images::{PreImage, image_graph};
use crate::inputs::{ImageName, InputSpec, image_inputs};

/// The build variant a fingerprint is for.
#[salsa::interned(debug)]
pub struct Variant<'db> {
    /// `x86_64` or `aarch64`.
    #[returns(ref)]
    pub arch: String,
    /// `RELEASE`, `OPTIMIZED` or `DEV`.
    #[returns(ref)]
    pub profile: String,
    #[returns(copy)]
    pub coverage: bool,
    /// `none` or the sanitizer's name.
    #[returns(ref)]
    pub sanitizer: String,
}

pub type Digest20 = [u8; 20];

/// The SHA-1 of a file's content (symlinks followed), memoized per file so
/// an edit re-hashes only the edited file, and kept in the persistent cache
/// under the blob id (which hashes a header too, so it is not this digest).
///
/// The bytes are read for the digest alone and not kept (a YAML trim
/// without a cache hashes every image input: 54 of c01's 67 MB heap peak).
#[salsa::tracked(returns(copy))]
pub fn content_sha1(db: &dyn Db, file: File) -> Option<Digest20> {
    crate::cache::digest_leaf(db, file)
}

/// The reference's `extra` for a cargo pre-image: the sorted *characters* of
/// the flags that apply, joined with `,`.
pub fn cargo_extra(profile: &str, coverage: bool, sanitizer: &str) -> String {
    let mut chars: Vec<char> = Vec::new();
    match profile {
        "RELEASE" => chars.extend("release".chars()),
        "OPTIMIZED" => chars.extend("optimized".chars()),
        _ => {}
    }
    if coverage {
        chars.extend("coverage".chars());
    }
    if sanitizer != "none" {
        chars.extend(sanitizer.chars());
    }
    chars.sort_unstable();
    chars
        .iter()
        .map(char::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// The full fingerprint of every image for one variant.
#[salsa::tracked(returns(ref))]
pub fn fingerprints<'db>(
    db: &'db dyn Db,
    files: FileSet,
    variant: Variant<'db>,
) -> Result<Arc<BTreeMap<String, Digest20>>, Diagnostic> {
    let graph = image_graph(db, files).clone()?;
    fingerprints_of(db, files, variant, graph.images.keys().map(String::as_str)).map(Arc::new)
}

/// The full fingerprints of `roots` and the images they depend on (and of
/// no other image: a file that cannot be read elsewhere is no error here).
/// The own hashes are memoized per image ([`self_hash`]).
pub fn fingerprints_of<'a>(
    db: &dyn Db,
    files: FileSet,
    variant: Variant<'_>,
    roots: impl IntoIterator<Item = &'a str>,
) -> Result<BTreeMap<String, Digest20>, Diagnostic> {
    let graph = image_graph(db, files).clone()?;
    // Dependencies first, so each one's full fingerprint is known when a
    // dependent hashes it.
    let order = graph.dependency_order(roots);
    let mut full: BTreeMap<String, Digest20> = BTreeMap::new();
    for name in order {
        let key = ImageName::new(db, name.clone());
        let own = *self_hash(db, files, variant, key)
            .as_ref()
            .map_err(Clone::clone)?;
        let mut h = Sha1::new();
        h.update(own);
        let mut deps: Vec<&String> = graph
            .get(&name)
            .map(|i| i.depends_on.iter().collect())
            .unwrap_or_default();
        deps.sort();
        deps.dedup();
        for d in deps {
            h.update(d.as_bytes());
            h.update(full.get(d).copied().unwrap_or_default());
            h.update(b"\0");
        }
        full.insert(name, h.finalize().into());
    }
    Ok(full)
}

/// A digest of the code that computes an own hash: a hash computed by
/// other code is never reused, even if nobody bumped [`SCHEMA`].
fn code_digest() -> u64 {
    static DIGEST: OnceLock<u64> = OnceLock::new();
    *DIGEST.get_or_init(|| {
        // inputs.rs: the key names an image's input specs, and how specs
        // expand to the files the own hash reads is defined there.
        let sources = [
            include_str!("fingerprint.rs"),
            include_str!("inputs.rs"),
            include_str!("db.rs"),
            include_str!("cache.rs"),
        ];
        crate::cache::code_digest(&sources)
    })
}

/// An image input spec as a salsa key: the specs of crates are shared by
/// every cargo image that builds them.
#[salsa::interned(debug)]
struct SpecKey<'db> {
    #[returns(ref)]
    spec: InputSpec,
}

/// What the files of one input spec are: each file's path, mode and blob
/// id, in order (the blob id names the bytes, so it determines the content
/// digest). Memoized per spec, so a crate's files are stamped and hashed
/// once, not once per image that builds the crate (at scale 10, 2 million
/// image-file pairs against 60,000 crate files). `None` when a file has no
/// blob id (missing or unreadable: that is an error, never stored).
#[salsa::tracked(returns(copy))]
fn spec_identity<'db>(db: &'db dyn Db, files: FileSet, key: SpecKey<'db>) -> Option<Digest20> {
    let all = files.paths(db);
    let known = files.known(db).as_ref();
    let positions = spec_positions(db, files, key);
    let mut h = Sha1::new();
    for &i in &positions {
        let Some(path) = all.get(i as usize) else {
            continue;
        };
        // The stamp the edges already know (no `File` to create), else
        // the file's own.
        let (blob, mode) = match known.and_then(|k| k.get(i as usize).copied().flatten()) {
            Some(stamp) => stamp,
            None => {
                let file = db.file(path);
                (*file.stamp(db).blob()?, file.mode(db))
            }
        };
        h.update(mode.git_mode().to_le_bytes());
        crate::cache::hash_str(&mut h, path);
        h.update(blob);
    }
    Some(h.finalize().into())
}

/// The files of one input spec, as positions in the file set, in order.
fn spec_positions(db: &dyn Db, files: FileSet, key: SpecKey<'_>) -> Vec<u32> {
    let mut positions = Vec::new();
    key.spec(db).expand_positions(db, files, &mut positions);
    positions
}

/// One file of an own hash: its position in the file set, git mode and
/// content SHA-1.
type OwnEntry = (u32, u32, Digest20);

/// The own-hash entries of one input spec's files, in position (= path)
/// order, and whether every file's bytes were vouched to be its blob (only
/// then may a hash built on them be stored); `Err` with the position of the
/// first file that cannot be hashed. Per spec, so an own hash depends on
/// its image's ~600 specs and not on every file: at scale 10 the per-file
/// dependencies of 450 own hashes (2 million) were most of a cold run's
/// memory.
#[salsa::tracked(returns(ref))]
fn spec_entries<'db>(
    db: &'db dyn Db,
    files: FileSet,
    key: SpecKey<'db>,
) -> Result<(Arc<[OwnEntry]>, bool), u32> {
    let all = files.paths(db);
    let positions = spec_positions(db, files, key);
    let mut out = Vec::with_capacity(positions.len());
    let mut vouched = true;
    for pos in positions {
        let Some(path) = all.get(pos as usize) else {
            return Err(pos);
        };
        let file = db.file(path);
        let Some(digest) = content_sha1(db, file) else {
            return Err(pos);
        };
        vouched &= crate::cache::vouched_blob(db, file).is_some();
        out.push((pos, file.mode(db).git_mode(), digest));
    }
    Ok((out.into(), vouched))
}

/// An image's distinct input specs, in spec order: what its own input files
/// are the union of (the cache key, the own hash and the priming all go
/// spec by spec, so it is memoized).
#[salsa::tracked(returns(ref))]
fn image_specs<'db>(
    db: &'db dyn Db,
    files: FileSet,
    key: ImageName<'db>,
) -> Result<Vec<SpecKey<'db>>, Diagnostic> {
    let name = key.name(db).as_str();
    let all = image_inputs(db, files).clone()?;
    let Some(inputs) = all.get(name) else {
        return Err(Diagnostic::new(format!("unknown image `{name}`")));
    };
    let inputs = inputs.as_ref().map_err(Clone::clone)?;
    let specs: std::collections::BTreeSet<&InputSpec> = inputs.iter().map(|i| &i.spec).collect();
    Ok(specs
        .into_iter()
        .map(|spec| SpecKey::new(db, spec.clone()))
        .collect())
}

/// The distinct input specs of `images` (for priming their identities in
/// parallel: a crate's spec is shared by every image that builds it, so
/// going image by image leaves a thread waiting on a spec the other one
/// stamps).
pub fn distinct_specs(db: &dyn Db, files: FileSet, images: &[String]) -> Vec<InputSpec> {
    let mut seen = rustc_hash::FxHashSet::default();
    let mut out = Vec::new();
    for name in images {
        if let Ok(specs) = image_specs(db, files, ImageName::new(db, name.clone())) {
            for &spec in specs {
                if seen.insert(spec) {
                    out.push(spec.spec(db).clone());
                }
            }
        }
    }
    out
}

/// Computes one spec's identity (see [`distinct_specs`]).
pub fn prime_spec_identity(db: &dyn Db, files: FileSet, spec: InputSpec) {
    let _ = spec_identity(db, files, SpecKey::new(db, spec));
}

/// What an image's own input files are, for the persistent cache: the
/// identities of its distinct input specs, in spec order. The union of
/// the specs' files is the image's input list, so this determines the own
/// hash's inputs (two spellings of one union only cost a miss). It does
/// not depend on the variant: the two arches of a YAML `trim` share it.
#[salsa::tracked(returns(copy))]
fn own_inputs_identity<'db>(
    db: &'db dyn Db,
    files: FileSet,
    key: ImageName<'db>,
) -> Option<Digest20> {
    let specs = image_specs(db, files, key).as_ref().ok()?;
    let mut h = Sha1::new();
    h.update((specs.len() as u64).to_le_bytes());
    for &spec in specs {
        h.update(spec_identity(db, files, spec)?);
    }
    Some(h.finalize().into())
}

/// The persistent-cache key of an own hash: everything [`self_hash`]
/// hashes, with the inputs' identity ([`own_inputs_identity`]) in place of
/// their content digests.
fn self_hash_key(
    db: &dyn Db,
    variant: Variant<'_>,
    inputs: &Digest20,
    pre_images: &[PreImage],
) -> Vec<u8> {
    let mut h = Sha1::new();
    h.update(code_digest().to_le_bytes());
    h.update(SCHEMA.to_le_bytes());
    h.update(inputs);
    h.update((pre_images.len() as u64).to_le_bytes());
    for pre in pre_images {
        h.update([u8::from(matches!(pre, PreImage::CargoBuild { .. }))]);
    }
    crate::cache::hash_str(&mut h, variant.arch(db));
    crate::cache::hash_str(&mut h, variant.profile(db));
    h.update([u8::from(variant.coverage(db))]);
    crate::cache::hash_str(&mut h, variant.sanitizer(db));
    key(Kind::SelfHash, &h.finalize().into())
}

/// An image's own-hash key in the persistent cache (none without a cache
/// or when an input has no blob id) and the hash stored under it, if any.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
struct StoredSelfHash {
    key: Option<Vec<u8>>,
    hash: Option<Digest20>,
}

/// Looks an own hash up: a warm run then needs each input's blob id (its
/// stamp, usually from the index) but not its content digest, one lookup
/// per image instead of one per input file. The key is kept for
/// [`self_hash`] to store under on a miss.
#[salsa::tracked(returns(ref))]
fn stored_self_hash_entry<'db>(
    db: &'db dyn Db,
    files: FileSet,
    variant: Variant<'db>,
    key: ImageName<'db>,
) -> StoredSelfHash {
    let Some(cache) = db.leaf_cache() else {
        return StoredSelfHash::default();
    };
    let Some(k) = image_graph(db, files)
        .as_ref()
        .ok()
        .and_then(|graph| graph.get(key.name(db)))
        .zip(own_inputs_identity(db, files, key))
        .map(|(img, inputs)| self_hash_key(db, variant, &inputs, &img.pre_images))
    else {
        return StoredSelfHash::default();
    };
    let hash = stored::<Digest20>(cache, &k);
    StoredSelfHash { key: Some(k), hash }
}

/// An image's own hash as the persistent cache holds it under its current
/// key, if it does.
pub fn stored_self_hash<'db>(
    db: &'db dyn Db,
    files: FileSet,
    variant: Variant<'db>,
    key: ImageName<'db>,
) -> Option<Digest20> {
    stored_self_hash_entry(db, files, variant, key).hash
}

/// An image's own hash (its inputs, pre-image extras and the variant):
/// memoized per image, so an edit re-hashes only the images that include
/// the edited file; kept in the persistent cache when every input's
/// digest came from bytes the loader vouched were its blob.
#[salsa::tracked(returns(ref))]
pub fn self_hash<'db>(
    db: &'db dyn Db,
    files: FileSet,
    variant: Variant<'db>,
    key: ImageName<'db>,
) -> Result<Digest20, Diagnostic> {
    let stored = stored_self_hash_entry(db, files, variant, key);
    if let Some(d) = stored.hash {
        return Ok(d);
    }
    let name = key.name(db).as_str();
    let graph = image_graph(db, files).clone()?;
    let Some(img) = graph.get(name) else {
        return Err(Diagnostic::new(format!("unknown image `{name}`")));
    };
    let (entries, vouched) = own_entries(db, files, key)?;
    let digest = own_hash(db, files, img, &entries, variant);
    if let (Some(cache), Some(k)) = (db.leaf_cache(), &stored.key)
        && vouched
        && let Some(bytes) = encode(&digest)
    {
        cache.put(k.clone(), bytes);
    }
    Ok(digest)
}

/// An image's own-hash entries: the union of its specs' entries, by
/// position (each file once), and whether all were vouched. A file that
/// cannot be hashed is the image's error (the first one in path order).
fn own_entries<'db>(
    db: &'db dyn Db,
    files: FileSet,
    key: ImageName<'db>,
) -> Result<(Vec<OwnEntry>, bool), Diagnostic> {
    let mut entries: Vec<OwnEntry> = Vec::new();
    let mut vouched = true;
    let mut failed: Option<u32> = None;
    for &spec in image_specs(db, files, key).as_ref().map_err(Clone::clone)? {
        match spec_entries(db, files, spec) {
            Ok((e, v)) => {
                entries.extend(e.iter().copied());
                vouched &= *v;
            }
            Err(pos) => failed = Some(failed.map_or(*pos, |f| f.min(*pos))),
        }
    }
    if let Some(pos) = failed {
        let path = files.paths(db).get(pos as usize).map_or("", String::as_str);
        let (why, hint) = match db.file(path).content(db) {
            FileContent::Unreadable(w) => (w.to_string(), w.input_hint()),
            _ => (
                "does not exist".to_string(),
                "a dangling symlink? fix or remove the file",
            ),
        };
        return Err(Diagnostic::in_file(
            path,
            format!("input of image `{}` cannot be hashed: {why}", key.name(db)),
        )
        .hint(hint));
    }
    entries.sort_unstable_by_key(|e| e.0);
    entries.dedup_by_key(|e| e.0);
    Ok((entries, vouched))
}

/// What [`self_hash`] computes, from the inputs' entries.
fn own_hash(
    db: &dyn Db,
    files: FileSet,
    img: &crate::images::Image,
    entries: &[OwnEntry],
    variant: Variant<'_>,
) -> Digest20 {
    let all = files.paths(db);
    let mut h = Sha1::new();
    for &(pos, mode, digest) in entries {
        let path = all.get(pos as usize).map_or("", String::as_str);
        h.update(((mode & 0xffff) as u16).to_be_bytes());
        h.update(path.as_bytes());
        h.update(digest);
        h.update(b"\0");
    }
    for pre in &img.pre_images {
        if let PreImage::CargoBuild { .. } = pre {
            h.update(
                cargo_extra(
                    variant.profile(db),
                    variant.coverage(db),
                    variant.sanitizer(db),
                )
                .as_bytes(),
            );
        }
        h.update(b"\0");
    }
    h.update(format!("profile=Profile.{}", variant.profile(db)).as_bytes());
    h.update(format!("arch={}", variant.arch(db)).as_bytes());
    h.update(
        format!(
            "coverage={}",
            if variant.coverage(db) {
                "True"
            } else {
                "False"
            }
        )
        .as_bytes(),
    );
    h.update(format!("sanitizer={}", variant.sanitizer(db)).as_bytes());
    h.update(b"mirror=ghcr");
    h.finalize().into()
}

/// RFC 4648 base32, as the reference renders fingerprints.
pub fn base32(d: &Digest20) -> String {
    data_encoding::BASE32.encode(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cargo_extra_sorts_characters() {
        assert_eq!(cargo_extra("OPTIMIZED", false, "none"), "d,e,i,i,m,o,p,t,z");
        assert_eq!(cargo_extra("DEV", false, "none"), "");
        assert_eq!(cargo_extra("DEV", true, "none"), "a,c,e,e,g,o,r,v");
    }
}
