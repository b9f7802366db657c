//! Compares the static import closures and images with the reference's
//! answers on real Materialize checkouts.
//!
//! Ignored by default (it needs the checkouts) and never passes silently:
//! `PIPETRIM_REF_DIR` is the directory holding the work trees `c01`, `c05`,
//! `c13` (the reference check makes them under `$TMPDIR/pipetrim-ref`);
//! `PIPETRIM_REF_DATA` the directory of `cNN.json.gz` (default:
//! `../shared/reference` beside the workspace). See README "Tests on real
//! commits" for the command.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use pipetrim_queries::Db;
use pipetrim_queries::python::{composition_images, composition_imports};

use crate::common;

/// A directory named by an environment variable (or the default), which
/// must exist: the test was asked for, so a missing input is a failure.
fn dir_from_env(var: &str, default: Option<PathBuf>) -> PathBuf {
    let dir = std::env::var_os(var)
        .map(PathBuf::from)
        .or(default)
        .unwrap_or_else(|| panic!("set {var} (see README: tests on real commits)"));
    assert!(
        dir.is_dir(),
        "{var}: `{}` is not a directory",
        dir.display()
    );
    dir
}

fn checkouts() -> PathBuf {
    dir_from_env("PIPETRIM_REF_DIR", None)
}

fn reference_data() -> PathBuf {
    dir_from_env(
        "PIPETRIM_REF_DATA",
        Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/reference")),
    )
}

fn git_lines(root: &Path, args: &[&str]) -> Vec<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(args)
        .output()
        .expect("git runs");
    assert!(out.status.success(), "git {args:?} failed");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// The visible files: tracked and present, plus untracked non-ignored.
fn visible_files(root: &Path) -> Vec<String> {
    let mut paths: Vec<String> = git_lines(root, &["ls-files"])
        .into_iter()
        .filter(|p| root.join(p).is_file())
        .collect();
    paths.extend(git_lines(
        root,
        &["ls-files", "--others", "--exclude-standard"],
    ));
    paths.sort();
    paths.dedup();
    paths
}

fn reference(commit: &str) -> serde_json::Value {
    let out = Command::new("gzip")
        .arg("-dc")
        .arg(reference_data().join(format!("{commit}.json.gz")))
        .output()
        .expect("gzip runs");
    assert!(out.status.success(), "gzip -dc {commit}.json.gz failed");
    serde_json::from_slice(&out.stdout).expect("reference JSON")
}

/// Names of the repository's images (SPEC §2).
fn repo_images(root: &Path, paths: &[String]) -> BTreeSet<String> {
    paths
        .iter()
        .filter(|p| {
            (p.ends_with("/mzbuild.yml") || *p == "mzbuild.yml") && !p.starts_with("misc/python/")
        })
        .filter_map(|p| {
            let text = std::fs::read_to_string(root.join(p)).ok()?;
            let y: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).ok()?;
            y.get("name")?.as_str().map(str::to_string)
        })
        .collect()
}

fn strings(v: &serde_json::Value) -> BTreeSet<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_string))
        .collect()
}

#[derive(Default, Debug)]
struct Tally {
    compositions: usize,
    ref_imports: usize,
    missing_imports: usize,
    extra_imports: usize,
    ref_images: usize,
    missing_images: usize,
    extra_images: usize,
    every_image: usize,
}

#[test]
#[ignore = "needs PIPETRIM_REF_DIR: a directory with Materialize work trees c01, c05, c13 (see README)"]
fn real_checkouts_match_the_reference() {
    let checkouts = checkouts();
    let mut failures = Vec::new();
    println!(
        "{:<5} {:<6} {:>5} {:>8} {:>8} {:>6} {:>7} {:>8} {:>6} {:>6}",
        "case",
        "set",
        "comps",
        "ref-imp",
        "missing",
        "extra",
        "ref-img",
        "missing",
        "extra",
        "every"
    );
    for commit in ["c01", "c05", "c13"] {
        let root = checkouts.join(commit);
        assert!(
            root.join("ci/test/pipeline.template.yml").is_file(),
            "no Materialize checkout at {}",
            root.display()
        );
        let paths = visible_files(&root);
        let images = repo_images(&root, &paths);
        let reference = reference(commit);
        let (db, ws) = common::database(&root, paths.clone(), false);

        let started = Instant::now();
        for c in common::compositions(&paths) {
            let _ = composition_imports(&db, ws.files(&db), ws.options(&db), db.file(&c));
        }
        let cold = started.elapsed();
        let started = Instant::now();
        for c in common::compositions(&paths) {
            let _ = composition_images(&db, ws.files(&db), ws.options(&db), db.file(&c));
        }
        let cold_images = started.elapsed();

        let mut used = Tally::default();
        let mut all = Tally::default();
        for comp in reference["compositions"].as_array().into_iter().flatten() {
            let Some(dir) = comp["path"].as_str() else {
                continue;
            };
            if !comp["imports_error"].is_null() {
                println!("{commit} {dir}: the reference could not list its imports, skipped");
                continue;
            }
            let file = db.file(&format!("{dir}/mzcompose.py"));
            let closure = composition_imports(&db, ws.files(&db), ws.options(&db), file);
            let imgs = composition_images(&db, ws.files(&db), ws.options(&db), file);
            let ref_imports = strings(&comp["imports"]);
            let mine: BTreeSet<String> = closure.files.iter().cloned().collect();
            let ref_images = strings(&comp["images"]);
            let mine_images: BTreeSet<String> = if imgs.every_image.is_some() {
                images.clone()
            } else {
                imgs.names
                    .iter()
                    .filter(|n| images.contains(*n))
                    .cloned()
                    .collect()
            };
            let missing_i: Vec<_> = ref_imports.difference(&mine).collect();
            let extra_i: Vec<_> = mine.difference(&ref_imports).collect();
            let missing_m: Vec<_> = ref_images.difference(&mine_images).collect();
            let extra_m: Vec<_> = mine_images.difference(&ref_images).collect();
            let is_used = comp["used_by_test_pipeline"].as_bool() == Some(true);
            for t in [Some(&mut all), is_used.then_some(&mut used)]
                .into_iter()
                .flatten()
            {
                t.compositions += 1;
                t.ref_imports += ref_imports.len();
                t.missing_imports += missing_i.len();
                t.extra_imports += extra_i.len();
                t.ref_images += ref_images.len();
                t.missing_images += missing_m.len();
                t.extra_images += extra_m.len();
                t.every_image += usize::from(imgs.every_image.is_some());
            }
            if !missing_i.is_empty()
                || !extra_i.is_empty()
                || !missing_m.is_empty()
                || !extra_m.is_empty()
                || imgs.every_image.is_some()
            {
                let head = |v: &Vec<&String>| -> String {
                    let shown: Vec<&str> = v.iter().take(4).map(|s| s.as_str()).collect();
                    format!(
                        "{} {shown:?}{}",
                        v.len(),
                        if v.len() > 4 { " …" } else { "" }
                    )
                };
                println!(
                    "{commit} {dir}{}: imports missing {} extra {}; images missing {missing_m:?} extra {extra_m:?}{}",
                    if is_used { " (test pipeline)" } else { "" },
                    head(&missing_i),
                    head(&extra_i),
                    imgs.every_image
                        .as_ref()
                        .map(|d| format!("; every image: {d}"))
                        .unwrap_or_default()
                );
            }
        }
        // --lazy-imports: how much the closures of the used compositions grow
        // (SPEC §4.2 quotes about +96 %, 1,258 files at a real commit).
        let (lazy_db, lazy_ws) = common::database(&root, paths.clone(), true);
        let (mut eager_total, mut lazy_total) = (0usize, 0usize);
        for comp in reference["compositions"].as_array().into_iter().flatten() {
            if comp["used_by_test_pipeline"].as_bool() != Some(true) {
                continue;
            }
            let Some(dir) = comp["path"].as_str() else {
                continue;
            };
            let path = format!("{dir}/mzcompose.py");
            eager_total += composition_imports(&db, ws.files(&db), ws.options(&db), db.file(&path))
                .files
                .len();
            lazy_total += composition_imports(
                &lazy_db,
                lazy_ws.files(&lazy_db),
                lazy_ws.options(&lazy_db),
                lazy_db.file(&path),
            )
            .files
            .len();
        }
        println!(
            "{commit}: --lazy-imports closures of the used compositions: {eager_total} → {lazy_total} files (informational)"
        );
        for (set, t) in [("used", &used), ("all", &all)] {
            println!(
                "{commit:<5} {set:<6} {:>5} {:>8} {:>8} {:>6} {:>7} {:>8} {:>6} {:>6}",
                t.compositions,
                t.ref_imports,
                t.missing_imports,
                t.extra_imports,
                t.ref_images,
                t.missing_images,
                t.extra_images,
                t.every_image
            );
        }
        println!(
            "{commit}: cold import closure of {} compositions: {cold:?}; then their images: {cold_images:?} (timing only, not asserted)",
            common::compositions(&paths).len()
        );
        if used.missing_imports > 0 || used.missing_images > 0 {
            failures.push(format!("{commit}: missing imports/images: {used:?}"));
        }
        if used.extra_imports * 20 >= used.ref_imports.max(1) {
            failures.push(format!("{commit}: extra imports ≥ 5%: {used:?}"));
        }
        if used.extra_images * 20 >= used.ref_images.max(1) {
            failures.push(format!("{commit}: extra images ≥ 5%: {used:?}"));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
