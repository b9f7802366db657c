//! Parallel cache priming: computes the expensive, independent leaves of the
//! graph (per-composition Python analysis, per-file hashes) on all cores
//! before the serial top-level query asks for them. Salsa memoizes the
//! results, so the answer is the same as without priming; only faster.

use rayon::prelude::*;

use crate::cargo::manifest;
use crate::db::{Database, Db, Workspace};
use crate::fingerprint::content_sha1;
use crate::images::{compositions, dockerfile_deps, is_mzbuild_path, mzbuild_config};
use crate::pipeline::template;
use crate::python::{composition_images, composition_imports};

/// Analyses, in parallel, the compositions the pipeline's steps use, and
/// parses the manifests (Cargo.toml, mzbuild.yml, Dockerfile) the model reads.
pub fn prime_plan(db: &Database, ws: Workspace) {
    let files = ws.files(db);
    let options = ws.options(db);
    // Each side gets its own database handle: a handle is Send, not Sync.
    let (a, b) = (db.clone(), db.clone());
    let (tpl, ()) = rayon::join(
        move || template(&a, options).clone(),
        move || prime_manifests(&b, ws),
    );
    let Ok(tpl) = tpl else {
        return;
    };
    let Ok(comps) = compositions(db, files) else {
        return;
    };
    let mut used: Vec<String> = tpl
        .steps
        .iter()
        .flat_map(|s| s.compositions.iter())
        .filter_map(|c| comps.get(c).map(|d| format!("{d}/mzcompose.py")))
        .collect();
    used.sort();
    used.dedup();
    used.par_iter().for_each_with(db.clone(), |db, path| {
        let file = db.file(path);
        let _ = composition_imports(db, files, options, file);
        let _ = composition_images(db, files, options, file);
    });
}

/// Hashes the given files in parallel (for cold fingerprints).
pub fn prime_hashes(db: &Database, paths: &[String]) {
    paths.par_iter().for_each_with(db.clone(), |db, path| {
        let _ = content_sha1(db, db.file(path));
    });
}

/// Parses every crate manifest and image definition in parallel.
fn prime_manifests(db: &Database, ws: Workspace) {
    let files = ws.files(db);
    let paths: Vec<&String> = files
        .paths(db)
        .iter()
        .filter(|p| p.ends_with("/Cargo.toml") || is_mzbuild_path(p))
        .collect();
    paths.par_iter().for_each_with(db.clone(), |db, path| {
        if path.ends_with("/Cargo.toml") {
            let _ = manifest(db, db.file(path));
        } else {
            let _ = mzbuild_config(db, db.file(path));
            let dockerfile = format!("{}/Dockerfile", crate::paths::parent(path));
            let _ = dockerfile_deps(db, db.file(&dockerfile));
        }
    });
}
