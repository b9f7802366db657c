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

fn check(case: &str) {
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
    let base = reference["base"].as_str().expect("base");
    let mut cmd = common::pipetrim(&wt, &common::home(), &["trim", "--base", base]);
    cmd.env("CI", "true");
    let ours: serde_json::Value = serde_yaml_ng::from_slice(&common::stdout_of(cmd)).expect("yaml");
    assert!(
        ours == reference["final_pipeline"],
        "{case}: the finished pipeline differs from the reference"
    );
}
