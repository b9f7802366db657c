//! Helpers shared by the integration tests: a disk loader, file listings,
//! and the query log (the real loader lives in the `pipetrim` crate).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use pipetrim_queries::{Database, FileContent, FileMode, Loader};

/// Reads files below a root directory.
pub struct DiskLoader {
    pub root: PathBuf,
}

impl Loader for DiskLoader {
    fn load(&self, path: &str) -> (FileContent, FileMode) {
        let full = self.root.join(path);
        match std::fs::read(&full) {
            Ok(bytes) => (FileContent::Bytes(bytes.into()), FileMode::Regular),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                (FileContent::Missing, FileMode::Regular)
            }
            Err(e) => (
                FileContent::Unreadable(pipetrim_queries::db::Unreadable::of_io(&e)),
                FileMode::Regular,
            ),
        }
    }
}

/// Every file below `root`, repo-relative, sorted (a plain directory walk).
pub fn walk(root: &Path) -> Vec<String> {
    fn go(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                go(root, &p, out);
            } else if let Ok(rel) = p.strip_prefix(root) {
                out.push(rel.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    let mut out = Vec::new();
    go(root, root, &mut out);
    out.sort();
    out
}

/// A database over a directory, with the workspace inputs for `paths`.
pub fn database(
    root: &Path,
    paths: Vec<String>,
    lazy: bool,
) -> (Database, pipetrim_queries::Workspace) {
    let mut db = Database::new(Arc::new(DiskLoader {
        root: root.to_path_buf(),
    }));
    let ws = db.workspace(
        paths,
        Vec::new(),
        None,
        "test",
        vec!["misc/python".to_string()],
        lazy,
    );
    (db, ws)
}

/// Compositions: every `**/mzcompose.py` outside `misc/python/`.
pub fn compositions(paths: &[String]) -> Vec<String> {
    paths
        .iter()
        .filter(|p| p.ends_with("/mzcompose.py") && !p.starts_with("misc/python/"))
        .cloned()
        .collect()
}

/// How many times `query` ran, in a log of `Database::with_log`
/// (entries read `query(Id(..))`).
pub fn count(log: &[String], query: &str) -> usize {
    log.iter()
        .filter(|l| l.starts_with(&format!("{query}(")))
        .count()
}

/// The bundled example repository (`testdata/example`), in memory, and its
/// paths (sorted).
pub fn example_loader() -> (pipetrim_queries::db::MemoryLoader, Vec<String>) {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>, loader: &MemoryLoader) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(root, &p, out, loader);
            } else {
                let rel = p.strip_prefix(root).unwrap().to_str().unwrap().to_string();
                loader
                    .files
                    .insert(rel.clone(), (std::fs::read(&p).unwrap(), FileMode::Regular));
                out.push(rel);
            }
        }
    }
    use pipetrim_queries::db::MemoryLoader;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/example");
    let loader = MemoryLoader::default();
    let mut paths = Vec::new();
    walk(&root, &root, &mut paths, &loader);
    paths.sort();
    (loader, paths)
}

/// The example's workspace: its change is `src/testdrive/src/main.rs`.
pub fn example_workspace(db: &mut Database, paths: Vec<String>) -> pipetrim_queries::Workspace {
    db.workspace(
        paths,
        vec!["src/testdrive/src/main.rs".into()],
        None,
        "test",
        vec!["misc/python".into()],
        false,
    )
}

/// A persistent cache in memory, shared by the databases of one test; it
/// counts the entries found but refused (see [`MemoryCache::refused`]).
#[derive(Default)]
pub struct MemoryCache(
    std::sync::Mutex<std::collections::HashMap<Vec<u8>, Vec<u8>>>,
    std::sync::atomic::AtomicUsize,
);

impl MemoryCache {
    /// How many entries found were not usable (the engine computed again).
    pub fn refused(&self) -> usize {
        self.1.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl pipetrim_queries::cache::LeafCache for MemoryCache {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.0.lock().unwrap().get(key).cloned()
    }
    fn put(&self, key: Vec<u8>, value: Vec<u8>) {
        self.0.lock().unwrap().insert(key, value);
    }
    fn refused(&self) {
        self.1.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// A database over `loader` that logs the queries it executes (see
/// [`count`]), with `cache` as its persistent cache.
pub fn logged_database(
    loader: pipetrim_queries::db::MemoryLoader,
    cache: Option<&Arc<MemoryCache>>,
) -> (Database, pipetrim_queries::db::ExecutionLog) {
    let (mut db, log) = Database::with_log(Arc::new(loader));
    if let Some(c) = cache {
        db.set_leaf_cache(Some(
            c.clone() as Arc<dyn pipetrim_queries::cache::LeafCache>
        ));
    }
    (db, log)
}

/// [`logged_database`] over the example's files, with its workspace.
pub fn logged_example(
    loader: &pipetrim_queries::db::MemoryLoader,
    paths: &[String],
    cache: Option<&Arc<MemoryCache>>,
) -> (
    Database,
    pipetrim_queries::Workspace,
    pipetrim_queries::db::ExecutionLog,
) {
    let (mut db, log) = logged_database(loader.clone(), cache);
    let ws = example_workspace(&mut db, paths.to_vec());
    (db, ws, log)
}
