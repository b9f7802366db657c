//! `pipetrim bootstrap` through the binary: missing ci-builder images give the
//! bootstrap pipeline; when all exist, pipetrim runs the trim itself.

use std::path::Path;

use crate::common::{copy_dir, run};

/// The example repository with the builder fixture's `bin/ci-builder` and
/// `ci/builder/`.
fn repo() -> tempfile::TempDir {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
    let dir = tempfile::tempdir().expect("tempdir");
    copy_dir(&root.join("example"), dir.path());
    std::fs::remove_dir_all(dir.path().join("ci/builder")).expect("rm builder");
    std::fs::create_dir_all(dir.path().join("ci/builder")).expect("mkdir");
    copy_dir(
        &root.join("builder/ci/builder"),
        &dir.path().join("ci/builder"),
    );
    std::fs::copy(
        root.join("builder/bin/ci-builder"),
        dir.path().join("bin/ci-builder"),
    )
    .expect("copy script");
    dir
}

#[test]
fn missing_images_give_the_bootstrap_pipeline() {
    let dir = repo();
    let (code, out, err) = run(dir.path(), &["bootstrap", "--exists-cmd", "false"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_yaml_ng::Value = serde_yaml_ng::from_str(&out).expect("yaml");
    let steps = v["steps"].as_sequence().expect("steps");
    let labels: Vec<&str> = steps.iter().filter_map(|s| s["label"].as_str()).collect();
    assert!(labels.contains(&"bootstrap stable x86_64"), "{labels:?}");
    assert!(labels.contains(&"bootstrap min aarch64"), "{labels:?}");
    assert!(
        steps
            .iter()
            .any(|s| s.as_str() == Some("wait") || s.get("wait").is_some()),
        "{out}"
    );
}

/// `pipetrim BEFORE bootstrap --exists-cmd true -- --changed-files LIST
/// AFTER` in `dir`, every image present: bootstrap runs the trim.
fn bootstrap_trim(dir: &Path, list: &str, before: &[&str], after: &[&str]) -> (String, String) {
    let mut args: Vec<&str> = before.to_vec();
    args.extend([
        "bootstrap",
        "--exists-cmd",
        "true",
        "--",
        "--changed-files",
        list,
    ]);
    args.extend_from_slice(after);
    let (code, out, err) = run(dir, &args);
    assert_eq!(code, 0, "{err}");
    (out, err)
}

#[test]
fn all_images_present_runs_the_trim() {
    let dir = repo();
    let list = dir.path().join("changed.txt");
    std::fs::write(&list, "src/testdrive/src/main.rs\n").expect("write");
    let list = list.to_str().expect("utf-8");
    let (out, err) = bootstrap_trim(dir.path(), list, &[], &[]);
    assert!(
        err.contains("✓ testdrive") && err.contains("✗ smoke"),
        "{err}"
    );
    let v: serde_yaml_ng::Value = serde_yaml_ng::from_str(&out).expect("yaml");
    assert!(v["steps"].as_sequence().is_some_and(|s| !s.is_empty()));
    let (code, out, err) = run(
        dir.path(),
        &["bootstrap", "--exists-cmd", "true", "--print"],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("ci.mkpipeline test"), "{out}");
}

/// The global flags reach the trim bootstrap runs: with `--from-index`
/// before `bootstrap`, an untracked file in an image's context is not seen
/// (the build steps' hashes are those of the clean checkout), exactly as
/// with the flag given to the trim after `--`.
#[test]
fn global_flags_reach_the_generator() {
    let dir = repo();
    let home = tempfile::tempdir().expect("home");
    let home = home.path();
    crate::common::git(dir.path(), home, &["init", "-q", "-b", "main"]);
    crate::common::git(dir.path(), home, &["add", "-A"]);
    crate::common::git(dir.path(), home, &["commit", "-q", "-m", "base"]);
    let list = dir.path().join(".git/changed.txt");
    std::fs::write(&list, "src/testdrive/src/main.rs\n").expect("write");
    let list = list.to_str().expect("utf-8");
    let trim = |before: &[&str], after: &[&str]| bootstrap_trim(dir.path(), list, before, after).0;
    let clean = trim(&[], &[]);
    std::fs::write(dir.path().join("src/testdrive/ci/extra.txt"), "x\n").expect("write");
    let dirty = trim(&[], &[]);
    assert_ne!(dirty, clean, "the untracked file changes the build hashes");
    assert_eq!(trim(&["--from-index"], &[]), clean);
    assert_eq!(trim(&[], &["--from-index"]), clean);
}
