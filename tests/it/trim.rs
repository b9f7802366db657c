//! `pipetrim trim` end to end (issue 4): temp git repositories made from the
//! bundled example, the JSON plan, the finished YAML and the report.

use std::collections::BTreeSet;

use serde_json::Value as Json;
use serde_yaml_ng::Value as Yaml;

use crate::common::{Fixture, run_trim};

const TEMPLATE: &str = "ci/test/pipeline.template.yml";

/// Every trimmable step of the example, in order.
const ALL: [&str; 7] = [
    "build-x86_64",
    "lint-rust",
    "assets-check",
    "smoke",
    "testdrive",
    "storage",
    "docs",
];

/// `trim --base main --format json` plus `args`.
fn plan_json(f: &Fixture, args: &[&str], env: &[(&str, &str)]) -> Json {
    let mut a = vec!["--base", "main", "--format", "json"];
    a.extend_from_slice(args);
    f.trim(&a, env).json()
}

/// `trim --base main` (YAML on stdout) plus `args`.
fn pipeline_yaml(f: &Fixture, args: &[&str], env: &[(&str, &str)]) -> (Yaml, String) {
    let mut a = vec!["--base", "main"];
    a.extend_from_slice(args);
    let r = f.trim(&a, env);
    (r.yaml(), r.stderr)
}

fn steps(j: &Json) -> &Vec<Json> {
    j["steps"].as_array().expect("steps")
}

fn step<'a>(j: &'a Json, id: &str) -> &'a Json {
    steps(j)
        .iter()
        .find(|s| s["id"] == id)
        .unwrap_or_else(|| panic!("no step {id} in {j:#}"))
}

fn kept(j: &Json) -> BTreeSet<String> {
    steps(j)
        .iter()
        .filter(|s| s["kept"] == true)
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect()
}

fn set(ids: &[&str]) -> BTreeSet<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

fn all() -> BTreeSet<String> {
    set(&ALL)
}

fn reason_kinds(s: &Json) -> BTreeSet<String> {
    s["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["kind"].as_str().unwrap().to_string())
        .collect()
}

/// The YAML's steps, flattened: (id or "", is_group/wait marker, mapping).
fn yaml_steps(y: &Yaml) -> Vec<&serde_yaml_ng::Mapping> {
    let mut out = Vec::new();
    for s in y["steps"].as_sequence().expect("steps") {
        let m = s.as_mapping().expect("mapping step");
        out.push(m);
        if let Some(inner) = m.get("steps").and_then(Yaml::as_sequence) {
            for i in inner {
                out.push(i.as_mapping().expect("mapping inner step"));
            }
        }
    }
    out
}

fn yaml_ids(y: &Yaml) -> Vec<String> {
    yaml_steps(y)
        .iter()
        .filter_map(|m| m.get("id").and_then(Yaml::as_str).map(str::to_string))
        .collect()
}

fn yaml_step<'a>(y: &'a Yaml, id: &str) -> &'a serde_yaml_ng::Mapping {
    yaml_steps(y)
        .into_iter()
        .find(|m| m.get("id").and_then(Yaml::as_str) == Some(id))
        .unwrap_or_else(|| panic!("no step {id} in the YAML"))
}

fn yaml_top_kinds(y: &Yaml) -> Vec<String> {
    y["steps"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|s| {
            let m = s.as_mapping().unwrap();
            if m.contains_key("wait") {
                "wait".into()
            } else if let Some(g) = m.get("group") {
                format!("group:{}", g.as_str().unwrap())
            } else {
                m.get("id").and_then(Yaml::as_str).unwrap().to_string()
            }
        })
        .collect()
}

/// Every step of the finished YAML is well formed for upload.
fn assert_finished(y: &Yaml) {
    for m in yaml_steps(y) {
        for k in ["inputs", "coverage", "sanitizer", "ci_glue_exempt"] {
            assert!(!m.contains_key(k), "key {k} left in {m:?}");
        }
        let is_command = !["wait", "group", "block", "input", "prompt", "trigger"]
            .iter()
            .any(|k| m.contains_key(*k))
            && m.get("async") != Some(&Yaml::Bool(true));
        if is_command {
            assert!(
                m.get("timeout_in_minutes").and_then(Yaml::as_i64).is_some(),
                "no timeout_in_minutes in {m:?}"
            );
        }
    }
}

// ---------------------------------------------------------------------------
// What a change keeps

#[test]
fn crate_change_keeps_exactly_the_steps_whose_images_build_it() {
    // testdrive's image builds the `testdrive` bin of src/testdrive; server's does not.
    let f = Fixture::git_repo();
    f.append("src/testdrive/src/main.rs", "// changed\n");
    f.commit("td");
    let j = plan_json(&f, &[], &[]);
    assert_eq!(j["trimmed"], true);
    assert_eq!(j["dry_run"], false);
    assert_eq!(kept(&j), set(&["build-x86_64", "lint-rust", "testdrive"]));
    let td = step(&j, "testdrive");
    assert_eq!(td["changed"], true);
    assert_eq!(
        td["changed_inputs"],
        serde_json::json!(["src/testdrive/src/main.rs"])
    );
    assert!(reason_kinds(td).contains("image"), "{td:#}");
    assert_eq!(step(&j, "smoke")["kept"], false);
    assert_eq!(step(&j, "storage")["kept"], false);

    // A path dependency of the server crate (through mz-storage's
    // build-dependencies) reaches every step using the server image.
    let f = Fixture::git_repo();
    f.append("src/build-helper/src/lib.rs", "// changed\n");
    f.commit("bh");
    let j = plan_json(&f, &[], &[]);
    assert_eq!(
        kept(&j),
        set(&["build-x86_64", "lint-rust", "smoke", "testdrive", "storage"])
    );

    // A crate no image builds: only the explicit globs.
    let f = Fixture::git_repo();
    f.append("src/tool/src/tool_b.rs", "// changed\n");
    f.commit("tool");
    let j = plan_json(&f, &[], &[]);
    assert_eq!(kept(&j), set(&["build-x86_64", "lint-rust"]));

    // A base image: every image-using step.
    let f = Fixture::git_repo();
    f.append("misc/images/ubuntu-base/Dockerfile", "RUN true\n");
    f.commit("ubuntu");
    let j = plan_json(&f, &[], &[]);
    assert_eq!(
        kept(&j),
        set(&["build-x86_64", "smoke", "testdrive", "storage"])
    );
    // Cargo.lock is a shared input of every cargo-build pre-image.
    let f = Fixture::git_repo();
    f.append("Cargo.lock", "\n");
    f.commit("lock");
    let j = plan_json(&f, &[], &[]);
    assert_eq!(
        kept(&j),
        set(&["build-x86_64", "lint-rust", "smoke", "testdrive", "storage"])
    );
}

#[test]
fn python_module_change_keeps_the_compositions_importing_it() {
    let f = Fixture::git_repo();
    f.append(
        "misc/python/materialize/mzcompose/services/postgres.py",
        "# changed\n",
    );
    f.commit("pg");
    let j = plan_json(&f, &[], &[]);
    assert_eq!(kept(&j), set(&["build-x86_64", "smoke"]));
    let smoke = step(&j, "smoke");
    assert!(reason_kinds(smoke).contains("glob"), "{smoke:#}");
    // build-x86_64 is kept both for its `*` and because smoke depends on it.
    let build = step(&j, "build-x86_64");
    assert!(reason_kinds(build).contains("depended-on"), "{build:#}");

    let f = Fixture::git_repo();
    f.append(
        "misc/python/materialize/mzcompose/services/server.py",
        "# changed\n",
    );
    f.commit("server.py");
    let j = plan_json(&f, &[], &[]);
    assert_eq!(
        kept(&j),
        set(&["build-x86_64", "smoke", "testdrive", "storage"])
    );
}

#[test]
fn irrelevant_change_trims() {
    // `materialize/__init__.py` (module `materialize`) is not in any import
    // closure (SPEC §4.2), and no step lists it: only `*` matches.
    let f = Fixture::git_repo();
    f.edit(
        "misc/python/materialize/__init__.py",
        "The materialize package.",
        "The Materialize package: docstring only.",
    );
    f.write("NOTES.txt", "a new file nobody reads\n");
    f.commit("docstring");
    let j = plan_json(&f, &[], &[]);
    assert_eq!(j["trimmed"], true);
    assert_eq!(kept(&j), set(&["build-x86_64"]));
    let (y, _) = pipeline_yaml(&f, &[], &[]);
    assert_eq!(yaml_top_kinds(&y), vec!["build-x86_64", "wait"]);
    assert_finished(&y);
}

#[test]
fn depends_on_chains_are_kept() {
    let f = Fixture::git_with(|f| {
        // build-x86_64 no longer matches everything; docs needs docs-build
        // which needs build-x86_64.
        f.edit(TEMPLATE, "inputs: [\"*\"]", "inputs: [Cargo.lock]");
        f.edit(
            TEMPLATE,
            "    ci_glue_exempt: true\n    depends_on: []\n",
            "    ci_glue_exempt: true\n    depends_on: [docs-build]\n",
        );
        let t = f.read(TEMPLATE);
        f.write(
            TEMPLATE,
            format!(
                "{t}\n  - id: docs-build\n    label: Docs build\n    command: bin/docs-build\n    inputs: [misc/nothing]\n    depends_on: build-x86_64\n    timeout_in_minutes: 10\n"
            ),
        );
    });
    f.append("doc/index.md", "more\n");
    f.commit("doc");
    let j = plan_json(&f, &[], &[]);
    assert!(j["errors"].as_array().unwrap().is_empty(), "{j:#}");
    assert_eq!(kept(&j), set(&["docs", "docs-build", "build-x86_64"]));
    assert_eq!(step(&j, "docs")["changed"], true);
    for id in ["docs-build", "build-x86_64"] {
        let s = step(&j, id);
        assert_eq!(s["changed"], false, "{s:#}");
        assert!(reason_kinds(s).contains("depended-on"), "{s:#}");
    }
    let (y, _) = pipeline_yaml(&f, &[], &[]);
    assert_eq!(
        yaml_top_kinds(&y),
        vec!["build-x86_64", "wait", "docs", "docs-build"]
    );
}

#[test]
fn groups_are_emptied_dropped_or_kept_partly_and_waits_stay() {
    // Every inner step trimmed: the group is gone.
    let f = Fixture::git_repo();
    f.append("doc/index.md", "more\n");
    f.commit("doc");
    let (y, _) = pipeline_yaml(&f, &[], &[]);
    assert_eq!(yaml_top_kinds(&y), vec!["build-x86_64", "wait", "docs"]);
    assert_finished(&y);

    // One inner step kept: the group holds just it.
    let f = Fixture::git_repo();
    f.append(
        "misc/python/materialize/mzcompose/services/postgres.py",
        "# changed\n",
    );
    f.commit("pg");
    let (y, _) = pipeline_yaml(&f, &[], &[]);
    assert_eq!(
        yaml_top_kinds(&y),
        vec!["build-x86_64", "wait", "group:Integration tests"]
    );
    assert_eq!(yaml_ids(&y), vec!["build-x86_64", "smoke"]);
    assert_finished(&y);
}

// ---------------------------------------------------------------------------
// When not to trim

#[test]
fn ci_glue_change_is_a_dry_run() {
    for glue in ["bin/ci-builder", "ci/builder/Dockerfile"] {
        let f = Fixture::git_repo();
        f.append(glue, "# changed\n");
        f.commit("glue");
        let j = plan_json(&f, &[], &[]);
        assert_eq!(j["dry_run"], true, "{glue}");
        assert_eq!(j["trimmed"], false, "{glue}");
        assert!(j["reason"].as_str().unwrap().contains("dry run"), "{j:#}");
        // Decisions still reported: ci/builder is a cargo shared input, bin is nothing's.
        let k = kept(&j);
        assert!(k.contains("build-x86_64"));
        assert!(!k.contains("docs"), "{glue}: {k:?}");
        let (y, stderr) = pipeline_yaml(&f, &[], &[]);
        assert!(stderr.contains("✗ docs"), "{stderr}");
        assert_eq!(yaml_ids(&y), ALL.to_vec(), "{glue}: nothing removed");
        // docs is ci_glue_exempt and its inputs did not change.
        let docs = yaml_step(&y, "docs");
        assert_eq!(
            docs.get("skip"),
            Some(&Yaml::String("No changes in inputs".into()))
        );
        for id in ["assets-check", "smoke", "build-x86_64"] {
            assert!(!yaml_step(&y, id).contains_key("skip"), "{id}");
        }
        assert_finished(&y);
    }

    // A glue change together with a change to the exempt step's inputs: it runs.
    let f = Fixture::git_repo();
    f.append("ci/builder/Dockerfile", "# changed\n");
    f.append("doc/index.md", "more\n");
    f.commit("glue+doc");
    let (y, _) = pipeline_yaml(&f, &[], &[]);
    assert!(!yaml_step(&y, "docs").contains_key("skip"));

    // The template itself is CI glue.
    let f = Fixture::git_repo();
    f.edit(TEMPLATE, "label: Docs", "label: Documentation");
    f.commit("template");
    let j = plan_json(&f, &[], &[]);
    assert_eq!(j["dry_run"], true);
}

#[test]
fn coverage_sanitizer_main_and_tags_never_trim() {
    let f = Fixture::git_repo();
    f.append("doc/index.md", "more\n");
    f.commit("doc");
    type Case<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str)>);
    let cases: Vec<Case> = vec![
        (vec!["--coverage"], vec![]),
        (vec!["--sanitizer", "address"], vec![]),
        (vec![], vec![("CI_SANITIZER", "address")]),
        (vec![], vec![("BUILDKITE_BRANCH", "main")]),
        (vec!["--branch", "main"], vec![]),
        (vec![], vec![("BUILDKITE_TAG", "v1")]),
        (vec!["--tag", "v1"], vec![]),
    ];
    for (args, env) in cases {
        let j = plan_json(&f, &args, &env);
        assert_eq!(j["trimmed"], false, "{args:?} {env:?}");
        assert_eq!(j["dry_run"], false, "{args:?} {env:?}");
        assert!(
            j["reason"].as_str().unwrap().starts_with("not trimmed"),
            "{j:#}"
        );
        let (y, _) = pipeline_yaml(&f, &args, &env);
        assert_eq!(yaml_ids(&y), ALL.to_vec(), "{args:?} {env:?}");
        assert_finished(&y);
    }
    // Coverage triples timeouts; a sanitizer multiplies them by ten.
    let (y, _) = pipeline_yaml(&f, &["--coverage"], &[]);
    assert_eq!(yaml_step(&y, "docs")["timeout_in_minutes"], Yaml::from(30));
    let (y, _) = pipeline_yaml(&f, &[], &[("CI_SANITIZER", "address")]);
    assert_eq!(yaml_step(&y, "docs")["timeout_in_minutes"], Yaml::from(100));
    // The baseline does trim.
    let j = plan_json(&f, &[], &[]);
    assert_eq!(j["trimmed"], true);
}

// ---------------------------------------------------------------------------
// The change set

#[test]
fn deletions_count() {
    // Deleting an explicit input.
    let f = Fixture::git_repo();
    std::fs::remove_file(f.path("misc/assets/a.json")).unwrap();
    f.commit("rm asset");
    let j = plan_json(&f, &[], &[]);
    assert_eq!(kept(&j), set(&["build-x86_64", "assets-check"]));

    // Deleting an image input (a file of a crate the server image builds).
    let f = Fixture::git_with(|f| f.write("src/server/src/extra.rs", "// extra\n"));
    std::fs::remove_file(f.path("src/server/src/extra.rs")).unwrap();
    f.commit("rm extra");
    let j = plan_json(&f, &[], &[]);
    assert_eq!(
        kept(&j),
        set(&["build-x86_64", "lint-rust", "smoke", "testdrive", "storage"])
    );
    assert_eq!(
        step(&j, "smoke")["changed_inputs"],
        serde_json::json!(["src/server/src/extra.rs"])
    );
}

#[test]
fn renames_count_both_sides() {
    // Away from an input: the old path counts.
    let f = Fixture::git_repo();
    std::fs::create_dir_all(f.path("notes")).unwrap();
    f.git(&["mv", "doc/index.md", "notes/index.md"]);
    f.commit("mv away");
    let j = plan_json(&f, &[], &[]);
    assert_eq!(kept(&j), set(&["build-x86_64", "docs"]));
    assert_eq!(
        step(&j, "docs")["changed_inputs"],
        serde_json::json!(["doc/index.md"])
    );

    // Into an input: the new path counts.
    let f = Fixture::git_with(|f| f.write("notes/assets.json", "{\"renamed\": true}\n"));
    f.git(&["mv", "notes/assets.json", "misc/assets/b.json"]);
    f.commit("mv in");
    let j = plan_json(&f, &[], &[]);
    assert_eq!(kept(&j), set(&["build-x86_64", "assets-check"]));
    assert_eq!(
        step(&j, "assets-check")["changed_inputs"],
        serde_json::json!(["misc/assets/b.json"])
    );
}

#[test]
fn changed_files_from_stdin_on_a_plain_directory() {
    let f = Fixture::plain();
    let r = run_trim(
        &f.repo,
        &f.home,
        &["--changed-files", "-", "--format", "json"],
        &[],
        Some("./doc/index.md\n\nmisc/assets/a.json\n"),
    );
    let j = r.json();
    assert_eq!(j["trimmed"], true);
    assert_eq!(kept(&j), set(&["build-x86_64", "assets-check", "docs"]));

    // And from a file.
    let list = f.home.join("changed.txt");
    std::fs::write(&list, "src/testdrive/src/main.rs\n").unwrap();
    let r = run_trim(
        &f.repo,
        &f.home,
        &[
            "--changed-files",
            list.to_str().unwrap(),
            "--format",
            "json",
        ],
        &[],
        None,
    );
    assert_eq!(
        kept(&r.json()),
        set(&["build-x86_64", "lint-rust", "testdrive"])
    );
}

#[test]
fn explicit_pathspecs_follow_git() {
    // `misc/assets/*.json`: `*` crosses `/`; README.md is not JSON.
    // `doc`: a directory prefix. `**/*.rs`: needs a directory in front.
    let f = Fixture::plain();
    let cases: [(&str, &[&str]); 5] = [
        ("misc/assets/README.md", &["build-x86_64"]),
        (
            "misc/assets/deep/er/x.json",
            &["build-x86_64", "assets-check"],
        ),
        ("doc/sub/page.md", &["build-x86_64", "docs"]),
        ("docs.md", &["build-x86_64"]),
        ("root.rs", &["build-x86_64"]),
    ];
    for (path, want) in cases {
        let r = run_trim(
            &f.repo,
            &f.home,
            &["--changed-files", "-", "--format", "json"],
            &[],
            Some(path),
        );
        assert_eq!(kept(&r.json()), set(want), "{path}");
    }
}

// ---------------------------------------------------------------------------
// Test selection

#[test]
fn ci_test_ids_select_by_flattened_index_and_disable_trimming() {
    let f = Fixture::git_repo();
    f.append("doc/index.md", "more\n");
    f.commit("doc");
    // Flattened order: 0 build-x86_64, 1 wait, 2 lint-rust, 3 assets-check,
    // 4 group, 5 smoke, 6 testdrive, 7 storage, 8 docs.
    let env = [("CI_TEST_IDS", "3,6")];
    let j = plan_json(&f, &[], &env);
    assert_eq!(j["trimmed"], false);
    let (y, _) = pipeline_yaml(&f, &[], &env);
    assert_eq!(yaml_ids(&y), ALL.to_vec());
    let skipped: Vec<String> = yaml_steps(&y)
        .iter()
        .filter(|m| m.get("skip") == Some(&Yaml::Bool(true)))
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect();
    // build-x86_64 is a build step: never skipped by a selection.
    assert_eq!(skipped, vec!["lint-rust", "smoke", "storage", "docs"]);
    assert_finished(&y);
}

#[test]
fn ci_test_selection_selects_by_id_and_still_trims() {
    let f = Fixture::git_repo();
    f.append("doc/index.md", "more\n");
    f.append("misc/assets/a.json", "\n");
    f.commit("doc+assets");
    let env = [("CI_TEST_SELECTION", "docs")];
    let j = plan_json(&f, &[], &env);
    assert_eq!(j["trimmed"], true);
    let (y, _) = pipeline_yaml(&f, &[], &env);
    assert_eq!(yaml_ids(&y), vec!["build-x86_64", "assets-check", "docs"]);
    assert_eq!(
        yaml_step(&y, "assets-check").get("skip"),
        Some(&Yaml::Bool(true))
    );
    assert!(!yaml_step(&y, "docs").contains_key("skip"));
    assert!(!yaml_step(&y, "build-x86_64").contains_key("skip"));
}

// ---------------------------------------------------------------------------
// Fail safe

/// The example's template plus a step named by `key` and a step without inputs.
fn with_keyed_and_lonely(f: &Fixture) {
    let t = f.read(TEMPLATE);
    f.write(
        TEMPLATE,
        format!(
            "{t}\n  - key: keyed\n    label: Keyed\n    command: \"true\"\n    inputs: [doc]\n    depends_on: []\n    timeout_in_minutes: 5\n\n  - id: lonely\n    label: No inputs\n    command: \"true\"\n    depends_on: []\n    timeout_in_minutes: 5\n"
        ),
    );
}

#[test]
fn steps_named_by_key_are_kept_in_the_yaml() {
    let f = Fixture::git_with(with_keyed_and_lonely);
    f.append("doc/index.md", "more\n");
    f.commit("doc");
    let j = plan_json(&f, &[], &[]);
    assert_eq!(kept(&j), set(&["build-x86_64", "docs", "keyed"]));
    let (y, stderr) = pipeline_yaml(&f, &[], &[]);
    assert!(stderr.contains("✓ keyed"), "{stderr}");
    let keys: Vec<&str> = yaml_steps(&y)
        .iter()
        .filter_map(|m| m.get("key").and_then(Yaml::as_str))
        .collect();
    assert_eq!(keys, vec!["keyed"]);
    assert_eq!(yaml_ids(&y), vec!["build-x86_64", "docs"]);
}

#[test]
fn unknown_base_ref_keeps_everything_and_strict_fails() {
    let f = Fixture::git_with(with_keyed_and_lonely);
    f.append("doc/index.md", "more\n");
    f.commit("doc");
    let r = f.trim(&["--base", "no-such-ref", "--format", "json"], &[]);
    let j = r.json();
    assert!(r.stderr.contains("warning"), "{}", r.stderr);
    assert!(r.stderr.contains("no-such-ref"), "{}", r.stderr);
    assert_eq!(j["trimmed"], false);
    assert!(j["reason"].as_str().unwrap().contains("unknown"), "{j:#}");
    let mut everything = all();
    everything.extend(["keyed".to_string(), "lonely".to_string()]);
    // Even `lonely`, which has no inputs, is kept: nothing can be decided.
    assert_eq!(kept(&j), everything);
    let r = f.trim(&["--base", "no-such-ref"], &[]);
    let mut ids = ALL.to_vec();
    ids.push("lonely");
    assert_eq!(yaml_ids(&r.yaml()), ids);

    let r = f.trim(&["--base", "no-such-ref", "--strict"], &[]);
    assert_ne!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.is_empty(), "{}", r.stdout);
}

#[test]
fn shallow_clone_without_the_merge_base_fails_safe() {
    let f = Fixture::git_repo();
    f.append("doc/index.md", "more\n");
    f.commit("doc");
    // main moves on after feature branched: the merge base is neither tip.
    f.git(&["checkout", "-q", "main"]);
    f.append("misc/assets/a.json", "\n");
    f.commit("main moves");
    f.git(&["checkout", "-q", "feature"]);
    let clone = f.home.join("clone");
    let url = format!("file://{}", f.repo.display());
    f.git_in(
        &f.home,
        &[
            "clone",
            "-q",
            "--depth",
            "1",
            "--no-single-branch",
            "--branch",
            "feature",
            &url,
            clone.to_str().unwrap(),
        ],
    );
    let r = run_trim(&clone, &f.home, &["--format", "json"], &[], None);
    let j = r.json();
    assert!(r.stderr.contains("shallow"), "{}", r.stderr);
    assert_eq!(j["trimmed"], false);
    assert_eq!(kept(&j), all());
    let r = run_trim(&clone, &f.home, &["--strict"], &[], None);
    assert_ne!(r.code, 0);

    // The full repository answers.
    let j = plan_json(&f, &[], &[]);
    assert_eq!(kept(&j), set(&["build-x86_64", "docs"]));
}

#[test]
fn missing_composition_keeps_the_step_with_an_error() {
    let f = Fixture::git_with(|f| f.edit(TEMPLATE, "composition: storage", "composition: nope"));
    f.append("doc/index.md", "more\n");
    f.commit("doc");
    let j = plan_json(&f, &[], &[]);
    assert_eq!(j["trimmed"], true);
    assert_eq!(kept(&j), set(&["build-x86_64", "docs", "storage"]));
    let storage = step(&j, "storage");
    assert!(reason_kinds(storage).contains("fail-safe"), "{storage:#}");
    let errors = j["errors"].to_string();
    assert!(
        errors.contains("storage") && errors.contains("nope"),
        "{errors}"
    );
    let r = f.trim(&["--base", "main"], &[]);
    assert!(r.stderr.contains("nope"), "{}", r.stderr);
    let r = f.trim(&["--base", "main", "--strict"], &[]);
    assert_eq!(r.code, 2, "{}", r.stderr);
}

#[test]
fn malformed_mzbuild_keeps_image_steps_and_decides_the_others() {
    let f = Fixture::git_with(|f| f.write("misc/images/prod-base/mzbuild.yml", "name: [oops\n"));
    f.append("doc/index.md", "more\n");
    f.commit("doc");
    let j = plan_json(&f, &[], &[]);
    assert!(!j["errors"].as_array().unwrap().is_empty(), "{j:#}");
    assert_eq!(
        kept(&j),
        set(&["build-x86_64", "docs", "smoke", "testdrive", "storage"])
    );
    for id in ["smoke", "testdrive", "storage"] {
        assert!(reason_kinds(step(&j, id)).contains("fail-safe"), "{id}");
    }
    assert_eq!(step(&j, "lint-rust")["kept"], false);
    assert_eq!(step(&j, "assets-check")["kept"], false);
    let r = f.trim(&["--base", "main", "--strict"], &[]);
    assert_eq!(r.code, 2);
}

#[test]
fn image_with_unknown_bin_keeps_its_steps() {
    // The testdrive image's inputs cannot be computed: steps using it are
    // kept fail safe even though nothing they use visibly changed.
    let f = Fixture::git_with(|f| {
        f.edit(
            "src/testdrive/ci/mzbuild.yml",
            "bin: [testdrive]",
            "bin: [no-such-bin]",
        )
    });
    f.append("doc/index.md", "more\n");
    f.commit("doc");
    let j = plan_json(&f, &[], &[]);
    assert_eq!(kept(&j), set(&["build-x86_64", "docs", "testdrive"]));
    let td = step(&j, "testdrive");
    assert!(reason_kinds(td).contains("fail-safe"), "{td:#}");
    assert!(j["errors"].to_string().contains("no-such-bin"), "{j:#}");
}

// ---------------------------------------------------------------------------
// The finished YAML

#[test]
fn finished_yaml_is_uploadable() {
    let f = Fixture::git_repo();
    f.append("src/server/src/main.rs", "// changed\n");
    f.commit("server");
    let (y, _) = pipeline_yaml(&f, &[], &[]);
    assert_eq!(
        yaml_ids(&y),
        vec!["build-x86_64", "lint-rust", "smoke", "testdrive", "storage"]
    );
    assert_finished(&y);
    // --output writes the same YAML.
    let out = f.home.join("pipeline.yml");
    let r = f.trim(&["--base", "main", "--output", out.to_str().unwrap()], &[]);
    r.ok();
    assert!(r.stdout.is_empty());
    let written: Yaml = serde_yaml_ng::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(written, y);
}

// ---------------------------------------------------------------------------
// Snapshots of the report and the YAML for one representative change

#[test]
fn snapshot_report_and_yaml() {
    let f = Fixture::plain();
    let r = run_trim(
        &f.repo,
        &f.home,
        &["--changed-files", "-"],
        &[],
        Some("src/testdrive/src/main.rs\nmisc/python/materialize/mzcompose/services/postgres.py\n"),
    );
    r.ok();
    insta::assert_snapshot!("trim_report", r.stderr);
    insta::assert_snapshot!("trim_yaml", r.stdout);
}

// ---------------------------------------------------------------------------
// Properties of the plan (in process)

mod properties {
    use std::collections::{BTreeMap, BTreeSet};

    use pipetrim::repo::session::{Session, SessionOptions};
    use pipetrim_queries::pathspec::PathspecSet;
    use pipetrim_queries::pipeline::template;
    use pipetrim_queries::plan::plan;
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};

    use super::{Fixture, TEMPLATE};

    /// Extra steps with exclude and glob magic and a longer depends_on chain.
    const EXTRA: &str = r#"
  - id: rust-no-tool
    label: Rust without the tool crate
    command: "true"
    inputs: ["src", ":!src/tool", ":(exclude)**/*.md"]
    depends_on: lint-rust
    timeout_in_minutes: 5

  - id: glob-py
    label: Python files
    command: "true"
    inputs: [":(glob)misc/python/**/*.py"]
    depends_on: [rust-no-tool, smoke]
    timeout_in_minutes: 5

  - id: no-inputs
    label: Never changed
    command: "true"
    depends_on: glob-py
    timeout_in_minutes: 5
"#;

    fn change_set(files: Vec<String>) -> impl Strategy<Value = Vec<String>> {
        let existing = prop::sample::select(files);
        let dir = prop::sample::select(vec![
            "",
            "doc",
            "misc/assets",
            "misc/assets/sub",
            "src/server/src",
            "src/tool/src",
            "src/base",
            "test/smoke",
            "misc/python/materialize",
            "misc/python/materialize/mzcompose/services",
            "misc/images/ubuntu-base",
            "ci/builder",
            "bin",
            "other",
        ]);
        let ext = prop::sample::select(vec!["", ".rs", ".py", ".json", ".md", ".toml"]);
        let new = (dir, "[a-z]{1,4}", ext).prop_map(|(d, n, e)| {
            if d.is_empty() {
                format!("{n}{e}")
            } else {
                format!("{d}/{n}{e}")
            }
        });
        prop::collection::vec(prop_oneof![existing, new], 0..5)
    }

    type Kept = BTreeMap<String, (bool, Vec<String>)>;

    fn open(f: &Fixture) -> Session {
        Session::open(&f.repo, &SessionOptions::default()).unwrap()
    }

    #[test]
    fn kept_covers_explicit_matches_is_closed_and_incremental_equals_scratch() {
        let f = Fixture::plain();
        let t = f.read(TEMPLATE);
        f.write(TEMPLATE, format!("{t}{EXTRA}"));
        let files = open(&f).files().to_vec();
        let mut runner = TestRunner::new(Config {
            cases: 32,
            failure_persistence: None,
            ..Config::default()
        });
        runner
            .run(&(change_set(files.clone()), change_set(files)), |(a, b)| {
                let mut s = open(&f);
                s.set_changes(a, None);
                let _ = plan(&s.db, s.ws).clone().unwrap();
                s.set_changes(b.clone(), None);
                let incremental = plan(&s.db, s.ws).clone().unwrap();

                let mut fresh = open(&f);
                fresh.set_changes(b.clone(), None);
                let scratch = plan(&fresh.db, fresh.ws).clone().unwrap();
                prop_assert_eq!(&*incremental, &*scratch);

                let p = scratch;
                prop_assert!(p.errors.is_empty(), "{:?}", p.errors);
                let decided: Kept = p
                    .steps
                    .iter()
                    .map(|d| (d.id.clone(), (d.kept, d.depends_on.clone())))
                    .collect();
                // ⊇ the steps whose explicit inputs match a changed path.
                let tpl = template(&fresh.db, fresh.ws.options(&fresh.db))
                    .clone()
                    .unwrap();
                for step in tpl.steps.iter().filter(|s| s.kind.is_trimmable()) {
                    let specs = PathspecSet::new(&step.inputs).unwrap();
                    if specs.is_empty() {
                        continue;
                    }
                    if let Some(path) = b.iter().find(|p| specs.matches(p)) {
                        prop_assert!(
                            decided[&step.id].0,
                            "{} matches {path} but is trimmed",
                            step.id
                        );
                    }
                }
                // Closed under depends_on.
                for (id, (kept, deps)) in &decided {
                    if *kept {
                        for dep in deps {
                            prop_assert!(
                                decided[dep].0,
                                "{id} is kept, its dependency {dep} is not"
                            );
                        }
                    }
                }
                // A step without inputs is kept only as a dependency.
                let kept: BTreeSet<&String> = decided
                    .iter()
                    .filter(|(_, v)| v.0)
                    .map(|(k, _)| k)
                    .collect();
                prop_assert!(!kept.contains(&"no-inputs".to_string()));
                Ok(())
            })
            .unwrap();
    }
}
