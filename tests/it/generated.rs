//! End to end: generate a scale-1 monorepo, run the real binary on it, and
//! compare its decisions with the generator's ground truth.

use std::collections::BTreeSet;
use std::path::Path;

use pipetrim_gen::{DEFAULT_SEED, generate};
use serde_json::Value;

use crate::common::{self, Run};

fn run(repo: &Path, args: &[&str]) -> Value {
    Run::of(common::pipetrim(repo, &common::home(), args), None).json()
}

fn names(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .expect("a list")
        .iter()
        .map(|x| x["name"].as_str().expect("name").to_string())
        .collect()
}

#[test]
fn scale_1_fixture_trims_as_designed() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("repo");
    let s = generate(&dir, 1, DEFAULT_SEED).expect("generate");

    // The designed shape.
    assert_eq!(s.files, 10_000);
    assert_eq!(s.crates, 120);
    assert_eq!(s.images, 45);
    assert_eq!(s.compositions, 100);
    assert!(
        (600..=750).contains(&s.python_modules),
        "{}",
        s.python_modules
    );
    assert!((140..=170).contains(&s.steps), "{}", s.steps);
    assert_eq!(s.changed.len(), 3);

    let images = run(&dir, &["images", "--format", "json"]);
    assert_eq!(names(&images).len(), s.images);
    // The changed leaf crate's file is an input of exactly the images the
    // generator says (through the cargo pre-image and MZFROM chains).
    let hit: BTreeSet<String> = images
        .as_array()
        .expect("list")
        .iter()
        .filter(|i| {
            i["inputs_transitive"]
                .as_array()
                .expect("inputs")
                .iter()
                .any(|p| p.as_str() == Some(s.changed_rust_file.as_str()))
        })
        .map(|i| i["name"].as_str().expect("name").to_string())
        .collect();
    assert_eq!(hit, s.images_hit);
    assert!(!hit.is_empty() && hit.len() < s.images / 2, "{hit:?}");

    let crates = run(&dir, &["crates", "--format", "json"]);
    let members = crates
        .as_array()
        .expect("list")
        .iter()
        .filter(|c| c["member"] == Value::Bool(true))
        .count();
    assert_eq!(members, s.crates);

    let comps = run(&dir, &["compositions", "--format", "json"]);
    assert_eq!(names(&comps).len(), s.compositions);
    // The Python analysis is optional at this layer (it may be a stand-in):
    // when it reports images, they must cover the designed ones (§4.1).
    let python_works = comps
        .as_array()
        .expect("list")
        .iter()
        .any(|c| !c["images"].as_array().is_none_or(|a| a.is_empty()));
    assert!(
        python_works,
        "the Python analysis found no composition images"
    );
    {
        for c in comps.as_array().expect("list") {
            let name = c["name"].as_str().expect("name");
            let got: BTreeSet<String> = c["images"]
                .as_array()
                .expect("images")
                .iter()
                .filter_map(|i| i.as_str().map(String::from))
                .collect();
            let want = &s.composition_images[name];
            assert!(
                got.is_superset(want),
                "{name}: {got:?} lacks some of {want:?}"
            );
        }
    }

    let trim = run(&dir, &["trim", "--base", "main", "--format", "json"]);
    assert_eq!(trim["trimmed"], Value::Bool(true), "{}", trim["reason"]);
    assert_eq!(trim["dry_run"], Value::Bool(false));
    assert!(
        trim["errors"].as_array().is_some_and(|e| e.is_empty()),
        "{}",
        trim["errors"]
    );
    let steps = trim["steps"].as_array().expect("steps");
    assert_eq!(steps.len(), s.steps);
    let kept: BTreeSet<String> = steps
        .iter()
        .filter(|d| d["kept"] == Value::Bool(true))
        .map(|d| d["id"].as_str().expect("id").to_string())
        .collect();
    let mut must: BTreeSet<String> = s.steps_kept_by_inputs.clone();
    {
        assert!(!s.steps_kept_by_images.is_empty());
        assert!(!s.steps_kept_by_imports.is_empty());
        must.extend(s.steps_kept_by_images.iter().cloned());
        must.extend(s.steps_kept_by_imports.iter().cloned());
    }
    let missing: Vec<&String> = must.difference(&kept).collect();
    assert!(missing.is_empty(), "steps wrongly trimmed: {missing:?}");
    // And it trims: most steps no change reaches are dropped.
    let trimmed_untouched = s
        .steps_untouched
        .iter()
        .filter(|id| !kept.contains(*id))
        .count();
    assert!(
        s.steps_untouched.len() > s.steps / 2
            && trimmed_untouched * 10 >= s.steps_untouched.len() * 9,
        "trimmed {trimmed_untouched} of {} untouched steps",
        s.steps_untouched.len()
    );
}
