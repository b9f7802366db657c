//! A crate manifest that fails to parse is kept in the persistent cache
//! too, under its blob and its path: a warm run does not read it again, and
//! the same bytes at another path give an error naming that path.

use std::sync::Arc;

use pipetrim_queries::cargo::manifest;
use pipetrim_queries::db::{ExecutionLog, MemoryLoader};
use pipetrim_queries::{Db, Diagnostic, FileMode};

use crate::common::{MemoryCache, count, logged_database};

fn manifest_of(
    files: &[(&str, &str)],
    path: &str,
    cache: &Arc<MemoryCache>,
) -> (Result<String, Diagnostic>, ExecutionLog) {
    let loader = MemoryLoader::default();
    for (p, text) in files {
        loader
            .files
            .insert(p.to_string(), (text.as_bytes().to_vec(), FileMode::Regular));
    }
    let (db, log) = logged_database(loader, Some(cache));
    let m = manifest(&db, db.file(path)).clone().map(|m| m.name);
    (m, log)
}

#[test]
fn a_failing_manifest_is_cached_under_its_path() {
    let workspace = "[workspace]\nmembers = [\"x\"]\n";
    let cache = Arc::new(MemoryCache::default());
    let files = [("a/Cargo.toml", workspace), ("b/Cargo.toml", workspace)];

    let (cold, log) = manifest_of(&files, "a/Cargo.toml", &cache);
    let err = cold.clone().expect_err("a workspace manifest is no crate");
    assert_eq!(err.file.as_deref(), Some("a/Cargo.toml"));
    assert_eq!(count(&log.lock().unwrap(), "file_content"), 1);

    // Warm: the same error, and the file is not read.
    let (warm, log) = manifest_of(&files, "a/Cargo.toml", &cache);
    assert_eq!(warm, cold);
    let log = log.lock().unwrap().clone();
    assert_eq!(count(&log, "file_content"), 0, "{log:?}");

    // The same bytes at another path: an error naming that path.
    let (other, _) = manifest_of(&files, "b/Cargo.toml", &cache);
    let other = other.expect_err("still no crate");
    assert_eq!(other.file.as_deref(), Some("b/Cargo.toml"));

    // A success is still shared by the blob, whatever the path.
    let good = "[package]\nname = \"c\"\nversion = \"0.1.0\"\n";
    let files = [("c/Cargo.toml", good), ("d/Cargo.toml", good)];
    let (c, _) = manifest_of(&files, "c/Cargo.toml", &cache);
    assert_eq!(c, Ok("c".to_string()));
    let (d, log) = manifest_of(&files, "d/Cargo.toml", &cache);
    assert_eq!(d, Ok("c".to_string()));
    assert_eq!(count(&log.lock().unwrap(), "file_content"), 0);
}
