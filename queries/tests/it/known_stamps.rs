//! `FileSet::known`: stamps the edges know in advance (the git index's,
//! with `--from-index`). The spec identities that key the stored own
//! hashes read them instead of each file's stamp, so they must give the
//! same keys, and a known stamp must be what is read.

use std::sync::Arc;

use pipetrim_queries::db::{ExecutionLog, KnownStamps, MemoryLoader, blob_id};
use pipetrim_queries::fingerprint::{Variant, fingerprints};
use pipetrim_queries::{Database, FileMode, Workspace};
use salsa::Setter;

use crate::common::{MemoryCache, count, example_loader, logged_example};

fn database(
    loader: &MemoryLoader,
    paths: &[String],
    cache: &Arc<MemoryCache>,
    known: Option<KnownStamps>,
) -> (Database, Workspace, ExecutionLog) {
    let (mut db, ws, log) = logged_example(loader, paths, Some(cache));
    ws.files(&db).set_known(&mut db).to(known);
    (db, ws, log)
}

/// Every image's fingerprint for x86_64, as base32 text.
fn all_fingerprints(db: &Database, ws: Workspace) -> Vec<(String, String)> {
    let v = Variant::new(
        db,
        "x86_64".to_string(),
        "OPTIMIZED".to_string(),
        false,
        "none".to_string(),
    );
    let fps = fingerprints(db, ws.files(db), v).clone().unwrap();
    fps.iter()
        .map(|(n, d)| (n.clone(), pipetrim_queries::fingerprint::base32(d)))
        .collect()
}

#[test]
fn known_stamps_key_the_stored_own_hashes_as_the_files_own_stamps_do() {
    let (loader, paths) = example_loader();
    let cache = Arc::new(MemoryCache::default());
    let (db, ws, _) = database(&loader, &paths, &cache, None);
    let first = all_fingerprints(&db, ws);
    assert!(!first.is_empty());

    // The same stamps, known in advance: every own hash comes from the
    // cache (same keys), no file's entries are read.
    let known: Vec<Option<([u8; 20], FileMode)>> = paths
        .iter()
        .map(|p| loader.files.get(p).map(|e| (blob_id(&e.0), e.1)))
        .collect();
    let (db, ws, log) = database(&loader, &paths, &cache, Some(known.clone().into()));
    assert_eq!(all_fingerprints(&db, ws), first);
    let warm = log.lock().unwrap().clone();
    assert_eq!(count(&warm, "spec_entries"), 0, "{warm:?}");
    assert!(count(&warm, "stored_self_hash_entry") > 0, "{warm:?}");

    // A known stamp is what the key reads: another blob id for one input
    // of an image misses its stored own hash, which is then computed from
    // the bytes (the same answer, since the bytes did not change).
    let lib = paths
        .iter()
        .position(|p| p == "src/base/src/lib.rs")
        .expect("the example has src/base");
    let mut other = known;
    other[lib] = Some(([7; 20], FileMode::Regular));
    let (db, ws, log) = database(&loader, &paths, &cache, Some(other.into()));
    assert_eq!(all_fingerprints(&db, ws), first);
    let after = log.lock().unwrap().clone();
    assert!(count(&after, "spec_entries") > 0, "{after:?}");
}
