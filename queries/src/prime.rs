//! Parallel cache priming: computes the expensive, independent leaves of the
//! graph (per-composition Python analysis, per-file hashes) on all cores
//! before the serial top-level query asks for them. Salsa memoizes the
//! results, so the answer is the same as without priming; only faster.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use rayon::prelude::*;
use rustc_hash::FxHashSet;

use crate::cargo::manifest;
use crate::db::{Database, Db, File, FileSet, Options, Workspace};
use crate::fingerprint::content_sha1;
use crate::images::{compositions, dockerfile_deps, is_mzbuild_path, mzbuild_config};
use crate::pipeline::template;
use crate::python::analysis::stored_analysis;
use crate::python::imports::ranked_imports;
use crate::python::{composition_images, composition_imports};

/// Analyses, in parallel, the compositions the pipeline's steps use, and
/// parses the manifests (Cargo.toml, mzbuild.yml, Dockerfile) the model reads.
pub fn prime_plan(db: &Database, ws: Workspace) {
    // Each side gets its own database handle: a handle is Send, not Sync.
    let (a, b) = (db.clone(), db.clone());
    let (used, ()) = rayon::join(
        move || prime_compositions(&a, ws),
        move || prime_manifests(&b, ws),
    );
    let (files, options) = (ws.files(db), ws.options(db));
    used.par_iter().for_each_with(db.clone(), |db, &file| {
        let _ = composition_imports(db, files, options, file);
        let _ = composition_images(db, files, options, file);
    });
}

/// The compositions the pipeline's steps use, once the modules of those the
/// persistent cache cannot answer for are parsed.
///
/// Those compositions share most of their modules: analysed side by side,
/// one thread would wait on the module the other is parsing. So their
/// modules are parsed first, all at once.
fn prime_compositions(db: &Database, ws: Workspace) -> Vec<File> {
    let (files, options) = (ws.files(db), ws.options(db));
    let used = used_compositions(db, ws).clone();
    let unstored = unstored_compositions(db, ws, &used);
    prime_imports(db, files, options, &unstored);
    used
}

/// The composition files the pipeline's steps use, sorted. Memoized: the
/// edges ask for it (how many, then whether any needs parsing) before the
/// priming does.
#[salsa::tracked(returns(ref))]
fn used_compositions(db: &dyn Db, ws: Workspace) -> Vec<File> {
    let (files, options) = (ws.files(db), ws.options(db));
    let Ok(tpl) = template(db, options) else {
        return Vec::new();
    };
    let Ok(comps) = compositions(db, files) else {
        return Vec::new();
    };
    let mut used: Vec<String> = tpl
        .steps
        .iter()
        .flat_map(|s| s.compositions.iter())
        .filter_map(|c| comps.get(c).map(|d| format!("{d}/mzcompose.py")))
        .collect();
    used.sort();
    used.dedup();
    used.iter().map(|p| db.file(p)).collect()
}

/// Those of `used` neither analysed in this process nor answered for by
/// the persistent cache (looked up in parallel).
fn unstored_compositions(db: &Database, ws: Workspace, used: &[File]) -> Vec<File> {
    let (files, options) = (ws.files(db), ws.options(db));
    used.par_iter()
        .map_with(db.clone(), |db, &file| {
            needs_analysis(db, files, options, file).then_some(file)
        })
        .flatten()
        .collect()
}

/// Neither analysed in this process nor answered for by the cache.
fn needs_analysis(db: &Database, files: FileSet, options: Options, file: File) -> bool {
    !db.analysed(file) && stored_analysis(db, files, options, file).is_none()
}

/// How many compositions the pipeline's steps use: what a warm priming's
/// work grows with (one stored analysis restored for each).
pub fn used_composition_count(db: &Database, ws: Workspace) -> usize {
    used_compositions(db, ws).len()
}

/// Whether priming the plan has Python to parse: some composition the
/// steps use is not answered for by the persistent cache. When none is,
/// the priming only looks results up (a warm run). The lookups are
/// memoized: [`prime_plan`] does not repeat them.
pub fn plan_needs_parsing(db: &Database, ws: Workspace) -> bool {
    !unstored_compositions(db, ws, used_compositions(db, ws)).is_empty()
}

/// [`plan_needs_parsing`] on this thread alone, one composition after the
/// other until one needs parsing: what a caller asks before it decides how
/// many threads to start (rayon is not used).
pub fn plan_needs_parsing_here(db: &Database, ws: Workspace) -> bool {
    let (files, options) = (ws.files(db), ws.options(db));
    used_compositions(db, ws)
        .iter()
        .any(|&file| needs_analysis(db, files, options, file))
}

/// Resolves, in parallel, the direct imports (so parses the modules) of
/// every file the import closures from `starts` reach, following the edges
/// [`crate::python::imports::import_closure`] follows. Each module is
/// visited once, as a task of its own as soon as an importer finds it, so
/// neither thread waits for a level of the graph to finish.
fn prime_imports(db: &Database, files: FileSet, options: Options, starts: &[File]) {
    let lazy = options.lazy_imports(db);
    let seen: Mutex<FxHashSet<File>> = Mutex::new(starts.iter().copied().collect());
    fn visit<'s>(
        scope: &rayon::Scope<'s>,
        db: Database,
        file: File,
        seen: &'s Mutex<FxHashSet<File>>,
        (files, options, lazy): (FileSet, Options, bool),
    ) {
        let direct = ranked_imports(&db, files, options, file);
        let next: Vec<File> = direct
            .edges
            .iter()
            .filter(|e| e.followed(lazy))
            .map(|e| db.file(&e.target))
            .collect();
        let mut seen_now = seen.lock().unwrap_or_else(|e| e.into_inner());
        for f in next {
            if seen_now.insert(f) {
                let db = db.clone();
                scope.spawn(move |s| visit(s, db, f, seen, (files, options, lazy)));
            }
        }
    }
    // A handle per task: a handle is Send, not Sync.
    let tasks: Vec<(Database, File)> = starts.iter().map(|&f| (db.clone(), f)).collect();
    let seen = &seen;
    rayon::scope(move |scope| {
        for (db, f) in tasks {
            scope.spawn(move |s| visit(s, db, f, seen, (files, options, lazy)));
        }
    });
}

/// Hashes the given files in parallel (for cold fingerprints), calling
/// `progress` with the number done after each file (the edges draw a bar).
pub fn prime_hashes(db: &Database, paths: &[String], progress: &(dyn Fn(usize) + Sync)) {
    let done = std::sync::atomic::AtomicUsize::new(0);
    paths.par_iter().for_each_with(db.clone(), |db, path| {
        let _ = content_sha1(db, db.file(path));
        progress(done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1);
    });
}

/// Parses every crate manifest and image definition in parallel.
fn prime_manifests(db: &Database, ws: Workspace) {
    manifest_paths(db, ws)
        .par_iter()
        .for_each_with(db.clone(), |db, path| prime_manifest(db, path));
}

/// [`prime_manifests`] on this thread alone, in order (rayon is not used),
/// until `stop` is set: for a thread that would otherwise wait while the
/// template is parsed (they need only the file set). What it has not done
/// when the priming starts is left to the priming, which has every core.
pub fn prime_manifests_here(db: &Database, ws: Workspace, stop: &AtomicBool) {
    for path in manifest_paths(db, ws) {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        prime_manifest(db, path);
    }
}

/// The crate manifests and image definitions of the file set.
fn manifest_paths(db: &Database, ws: Workspace) -> Vec<&String> {
    ws.files(db)
        .paths(db)
        .iter()
        .filter(|p| p.ends_with("/Cargo.toml") || is_mzbuild_path(p))
        .collect()
}

/// Parses one crate manifest, or one image's definition and its Dockerfile.
fn prime_manifest(db: &Database, path: &str) {
    if path.ends_with("/Cargo.toml") {
        let _ = manifest(db, db.file(path));
    } else {
        let _ = mzbuild_config(db, db.file(path));
        let dockerfile = format!("{}/Dockerfile", crate::paths::parent(path));
        let _ = dockerfile_deps(db, db.file(&dockerfile));
    }
}

/// Computes every image's own hash for one variant in parallel (the part of
/// a cold fingerprint run that is per image and independent).
pub fn prime_self_hashes(
    db: &Database,
    files: crate::db::FileSet,
    variant: crate::fingerprint::Variant<'_>,
    images: &[String],
) {
    images.par_iter().for_each_with(db.clone(), |db, name| {
        let key = crate::inputs::ImageName::new(db, name.clone());
        let _ = crate::fingerprint::self_hash(db, files, variant, key);
    });
}

/// Stamps the files of every distinct input spec of `images`, spec by spec
/// in parallel (the part of a warm fingerprint run that touches the work
/// tree: an `lstat` per file).
pub fn prime_spec_identities(db: &Database, files: crate::db::FileSet, images: &[String]) {
    let specs = crate::fingerprint::distinct_specs(db, files, images);
    specs.par_iter().for_each_with(db.clone(), |db, spec| {
        crate::fingerprint::prime_spec_identity(db, files, spec.clone());
    });
}

/// The images among `images` whose own hash for the variant is not in the
/// persistent cache (looked up in parallel): only their inputs need hashing.
pub fn unstored_self_hashes(
    db: &Database,
    files: crate::db::FileSet,
    variant: crate::fingerprint::Variant<'_>,
    images: &[String],
) -> Vec<String> {
    images
        .par_iter()
        .map_with(db.clone(), |db, name| {
            let key = crate::inputs::ImageName::new(db, name.clone());
            crate::fingerprint::stored_self_hash(db, files, variant, key)
                .is_none()
                .then(|| name.clone())
        })
        .flatten()
        .collect()
}

/// Expands every image's own input files in parallel; returns their union.
pub fn prime_image_files(
    db: &Database,
    files: crate::db::FileSet,
    images: &[String],
) -> Vec<String> {
    let lists: Vec<std::sync::Arc<[u32]>> = images
        .par_iter()
        .map_with(db.clone(), |db, name| {
            let key = crate::inputs::ImageName::new(db, name.clone());
            crate::inputs::image_own_files(db, files, key)
                .as_ref()
                .map(std::sync::Arc::clone)
                .unwrap_or_else(|_| std::sync::Arc::new([]))
        })
        .collect();
    let mut all: Vec<u32> = lists.iter().flat_map(|l| l.iter().copied()).collect();
    all.sort_unstable();
    all.dedup();
    crate::inputs::paths_at(db, files, &all).cloned().collect()
}
