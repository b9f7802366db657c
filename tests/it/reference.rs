//! The finished pipeline on a real Materialize commit equals, key for key,
//! the one the reference generated (`cNN.json.gz`, `final_pipeline`).
//!
//! Needs checkouts of the three commits, so it is ignored by default and
//! never passes silently. `PIPETRIM_REF_DIR` is the directory holding the
//! work trees `c01`, `c05`, `c13` (the reference check makes them under
//! `$TMPDIR/pipetrim-ref`); `PIPETRIM_REF_DATA` the directory of
//! `cNN.json.gz` (default: `../shared/reference` beside this crate). See
//! README "Tests on real commits" for the command.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common;

#[test]
#[ignore = "needs PIPETRIM_REF_DIR: a directory with Materialize work trees c01, c05, c13 (see README)"]
fn finished_pipelines_equal_the_reference() {
    for case in ["c01", "c05", "c13"] {
        check(case);
    }
}

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

#[test]
#[ignore = "needs PIPETRIM_REF_DIR: a directory with Materialize work trees c01, c05, c13 (see README)"]
fn annotations_name_every_step_with_its_reason() {
    for case in ["c01", "c05", "c13"] {
        check_annotation(case);
    }
}

/// The annotation's table has one row per step of the plan, with the
/// plan's decision and a reason (a chain from a changed path for a step
/// kept on its own account).
fn check_annotation(case: &str) {
    let (wt, reference) = checkout(case);
    let base = reference["base"].as_str().expect("base");
    let dir = tempfile::tempdir().expect("tempdir");
    let md_path = dir.path().join("annotation.md");
    let md_arg = md_path.to_str().expect("utf-8 temp path");
    let mut cmd = common::pipetrim(
        &wt,
        &common::home(),
        &[
            "trim",
            "--base",
            base,
            "--format",
            "json",
            "--report-markdown",
            md_arg,
        ],
    );
    cmd.env("CI", "true");
    let plan: serde_json::Value = serde_json::from_slice(&common::stdout_of(cmd)).expect("json");
    let md = std::fs::read_to_string(&md_path).expect("the markdown");
    let rows: std::collections::BTreeMap<String, (String, String)> = md
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            let cells: Vec<&str> = l.trim_matches('|').split(" | ").collect();
            let id = cells[0].trim().trim_matches('`').to_string();
            (id, (cells[1].to_string(), cells[2].trim().to_string()))
        })
        .collect();
    let steps = plan["steps"].as_array().expect("steps");
    assert_eq!(rows.len(), steps.len(), "{case}: rows\n{md}");
    let dry_run = plan["dry_run"] == true;
    for s in steps {
        let id = s["id"].as_str().expect("id");
        let (decision, why) = rows
            .get(id)
            .unwrap_or_else(|| panic!("{case}: no row for `{id}`"));
        if s["kept"] == true {
            assert!(decision.starts_with("✓ kept"), "{case}: {id}: {decision}");
            assert!(!why.is_empty(), "{case}: {id} kept without a reason");
            if s["changed"] == true && !decision.contains("fail-safe") {
                let changed = s["changed_inputs"].as_array().expect("changed inputs");
                assert!(
                    changed
                        .iter()
                        .filter_map(|p| p.as_str())
                        .any(|p| why.starts_with(&format!("`{p}` → "))),
                    "{case}: {id}: the reason names no changed path: {why}"
                );
                assert!(why.contains(&format!("step `{id}`")), "{case}: {id}: {why}");
            }
        } else {
            let want = if dry_run {
                "✗ would trim"
            } else {
                "✗ trimmed"
            };
            assert_eq!(decision, want, "{case}: {id}");
            assert!(why.contains("input"), "{case}: {id}: {why}");
        }
    }
    let kept = steps.iter().filter(|s| s["kept"] == true).count();
    let head = md.lines().next().unwrap_or_default();
    assert!(
        head.contains(&format!("keep {kept} of {}", steps.len()))
            || head.contains(&format!("kept {kept} of {}", steps.len())),
        "{case}: {head}"
    );
}

/// The work tree of `case` (checked to be at the reference's head) and the
/// reference's data.
fn checkout(case: &str) -> (PathBuf, serde_json::Value) {
    let wt = dir_from_env("PIPETRIM_REF_DIR", None).join(case);
    let data = dir_from_env(
        "PIPETRIM_REF_DATA",
        Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/reference")),
    )
    .join(format!("{case}.json.gz"));
    assert!(
        wt.join("ci/test/pipeline.template.yml").is_file(),
        "no Materialize checkout at {}",
        wt.display()
    );
    assert!(data.is_file(), "no reference data {}", data.display());
    let mut gzip = Command::new("gzip");
    gzip.arg("-dc").arg(&data);
    let reference: serde_json::Value =
        serde_json::from_slice(&common::stdout_of(gzip)).expect("reference json");
    let mut rev = Command::new("git");
    rev.arg("-C").arg(&wt).args(["rev-parse", "HEAD"]);
    let head = String::from_utf8_lossy(&common::stdout_of(rev)).into_owned();
    let want = reference["head"].as_str().expect("head");
    assert!(
        head.trim() == want,
        "{case}: {} is at {}, the reference at {want}",
        wt.display(),
        head.trim()
    );
    (wt, reference)
}

fn check(case: &str) {
    let (wt, reference) = checkout(case);
    let base = reference["base"].as_str().expect("base");
    let mut cmd = common::pipetrim(&wt, &common::home(), &["trim", "--base", base]);
    cmd.env("CI", "true");
    let ours: serde_json::Value = serde_yaml_ng::from_slice(&common::stdout_of(cmd)).expect("yaml");
    assert!(
        ours == reference["final_pipeline"],
        "{case}: the finished pipeline differs from the reference"
    );
}
