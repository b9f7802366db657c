//! The finished pipeline on a real Materialize commit equals, key for key,
//! the one the reference generated (`../shared/reference/c01.json.gz`,
//! `final_pipeline`). Skipped, saying so, where the checkout or the
//! reference data is absent (CI machines have neither).

use std::path::Path;
use std::process::Command;

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
    let json = Command::new("gzip")
        .arg("-dc")
        .arg(&data)
        .output()
        .expect("gzip");
    let reference: serde_json::Value =
        serde_json::from_slice(&json.stdout).expect("reference json");
    let out = Command::new(env!("CARGO_BIN_EXE_pipetrim"))
        .env(
            "PIPETRIM_CACHE_DIR",
            std::env::temp_dir().join("pipetrim-test-cache"),
        )
        .args(["trim", "--base"])
        .arg(reference["base"].as_str().expect("base"))
        .arg("--repo")
        .arg(&wt)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("CI", "true")
        .env("BUILDKITE_BRANCH", "feature")
        .output()
        .expect("run pipetrim");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ours: serde_json::Value = serde_yaml_ng::from_slice(&out.stdout).expect("yaml");
    assert!(
        ours == reference["final_pipeline"],
        "{case}: the finished pipeline differs from the reference"
    );
}
