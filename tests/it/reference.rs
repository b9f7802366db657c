//! The finished pipeline on a real Materialize commit equals, key for key,
//! the one the reference generated (`../shared/reference/c01.json.gz`,
//! `final_pipeline`). Skipped, saying so, where the checkout or the
//! reference data is absent (CI machines have neither).

use std::path::Path;
use std::process::Command;

use crate::common;

#[test]
fn finished_pipelines_equal_the_reference() {
    for case in ["c01", "c05", "c13"] {
        check(case);
    }
}

fn check(case: &str) {
    let wt = Path::new("/tmp/pipetrim-ref").join(case);
    let data =
        Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../shared/reference/{case}.json.gz"));
    if !wt.join("ci/test/pipeline.template.yml").exists() || !data.exists() {
        eprintln!(
            "skipped: no Materialize checkout at {} or no {}",
            wt.display(),
            data.display()
        );
        return;
    }
    let mut gzip = Command::new("gzip");
    gzip.arg("-dc").arg(&data);
    let reference: serde_json::Value =
        serde_json::from_slice(&common::stdout_of(gzip)).expect("reference json");
    let base = reference["base"].as_str().expect("base");
    let mut cmd = common::pipetrim(&wt, &common::home(), &["trim", "--base", base]);
    cmd.env("CI", "true");
    let ours: serde_json::Value = serde_yaml_ng::from_slice(&common::stdout_of(cmd)).expect("yaml");
    assert!(
        ours == reference["final_pipeline"],
        "{case}: the finished pipeline differs from the reference"
    );
}
