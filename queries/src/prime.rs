//! Parallel cache priming: computes the expensive, independent leaves of the
//! graph (per-composition Python analysis, per-file hashes) on all cores
//! before the serial top-level query asks for them. Salsa memoizes the
//! results, so the answer is the same as without priming; only faster.

use rayon::prelude::*;

use crate::db::{Database, Db, Workspace};
use crate::fingerprint::content_sha1;
use crate::images::compositions;
use crate::pipeline::template;
use crate::python::{composition_images, composition_imports};

/// Analyses, in parallel, the compositions the pipeline's steps use.
pub fn prime_plan(db: &Database, ws: Workspace) {
    let files = ws.files(db);
    let options = ws.options(db);
    let Ok(tpl) = template(db, options) else {
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
