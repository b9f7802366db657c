//! Fuzz-style property tests on stable (issue 11): every parser survives
//! random bytes and mutations of valid input without panicking, and a
//! mutated fixture repository never trims a step it cannot reason about.
//!
//! Deterministic: a fixed seed and no failure persistence. A longer run:
//! `PIPETRIM_FUZZ_CASES=100000 cargo test --release --test it fuzz::`.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use pipetrim::ci::finish::FinishOptions;
use pipetrim_queries::db::MemoryLoader;
use pipetrim_queries::pathspec::PathspecSet;
use pipetrim_queries::plan::plan;
use pipetrim_queries::{Database, Db, FileMode};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};

use crate::common;

fn cfg() -> Config {
    let cases = std::env::var("PIPETRIM_FUZZ_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(256);
    Config {
        cases,
        rng_seed: RngSeed::Fixed(0x5eed_0011),
        failure_persistence: None,
        ..Config::default()
    }
}

/// A file of the example.
fn example(p: &str) -> Vec<u8> {
    std::fs::read(Path::new(common::EXAMPLE).join(p)).unwrap()
}

#[derive(Debug, Clone)]
enum Edit {
    DeleteLine(usize),
    DuplicateLine(usize),
    BreakIndent(usize),
    SwapBytes(usize, usize),
    Insert(usize, u8),
    Truncate(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        any::<usize>().prop_map(Edit::DeleteLine),
        any::<usize>().prop_map(Edit::DuplicateLine),
        any::<usize>().prop_map(Edit::BreakIndent),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Edit::SwapBytes(a, b)),
        (
            any::<usize>(),
            prop::sample::select(b"[]{}:-\"' \t\n#&*!|>%@`\\\xff".to_vec())
        )
            .prop_map(|(a, b)| Edit::Insert(a, b)),
        any::<usize>().prop_map(Edit::Truncate),
    ]
}

fn apply(text: &[u8], edits: &[Edit]) -> Vec<u8> {
    let mut t = text.to_vec();
    for e in edits {
        let mut lines: Vec<Vec<u8>> = t.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect();
        let n = lines.len().max(1);
        match *e {
            Edit::DeleteLine(i) => {
                if !lines.is_empty() {
                    lines.remove(i % n);
                }
            }
            Edit::DuplicateLine(i) => {
                if !lines.is_empty() {
                    let l = lines[i % n].clone();
                    lines.insert(i % n, l);
                }
            }
            Edit::BreakIndent(i) => {
                if !lines.is_empty() {
                    let l = &mut lines[i % n];
                    if l.first() == Some(&b' ') {
                        l.remove(0);
                    } else {
                        l.insert(0, b' ');
                    }
                }
            }
            Edit::SwapBytes(a, b) => {
                if !t.is_empty() {
                    let len = t.len();
                    t.swap(a % len, b % len);
                }
                continue;
            }
            Edit::Insert(a, b) => {
                let at = a % (t.len() + 1);
                t.insert(at, b);
                continue;
            }
            Edit::Truncate(a) => {
                t.truncate(a % (t.len() + 1));
                continue;
            }
        }
        t = lines.join(&b'\n');
    }
    t
}

fn db_with(files: &[(&str, Vec<u8>)]) -> Database {
    let loader = MemoryLoader::default();
    for (p, b) in files {
        loader
            .files
            .insert(p.to_string(), (b.clone(), FileMode::Regular));
    }
    Database::new(Arc::new(loader))
}

/// Input for a parser: random bytes, or a mutation of a valid file.
fn input(valid: &'static str) -> impl Strategy<Value = Vec<u8>> {
    let base = example(valid);
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..512),
        prop::collection::vec(edit(), 1..6).prop_map(move |e| apply(&base, &e)),
    ]
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

proptest! {
    #![proptest_config(cfg())]

    #[test]
    fn mzbuild_config_never_panics(b in input("misc/images/assets/mzbuild.yml")) {
        let db = db_with(&[("x/mzbuild.yml", b)]);
        let _ = pipetrim_queries::images::mzbuild_config(&db, db.file("x/mzbuild.yml"));
    }

    #[test]
    fn parse_mzfrom_never_panics(b in input("src/server/ci/Dockerfile")) {
        let _ = pipetrim_queries::images::parse_mzfrom(&b);
    }

    #[test]
    fn cargo_manifests_never_panic(m in input("src/server/Cargo.toml"), w in input("Cargo.toml")) {
        let db = db_with(&[("a/Cargo.toml", m), ("Cargo.toml", w)]);
        let _ = pipetrim_queries::cargo::manifest(&db, db.file("a/Cargo.toml"));
        let _ = pipetrim_queries::cargo::workspace_manifest(&db, db.file("Cargo.toml"));
    }

    #[test]
    fn parse_template_never_panics(b in input("ci/test/pipeline.template.yml")) {
        let _ = pipetrim_queries::pipeline::parse_template("t.yml", &text(&b));
    }

    #[test]
    fn python_summarize_never_panics(b in input("test/td/mzcompose.py")) {
        let _ = pipetrim_queries::python::summarize(&text(&b));
    }

    #[test]
    fn pathspecs_never_panic(
        specs in prop::collection::vec("[a-z/*?\\[\\]!:()^\\\\.{},-]{0,12}", 0..4),
        paths in prop::collection::vec("[a-z/.*\\[\\]\n\u{ff}-]{0,16}", 0..8),
    ) {
        if let Ok(set) = PathspecSet::new(&specs) {
            for p in &paths {
                let _ = set.matches(p);
            }
        }
        for s in &specs {
            let _ = pipetrim_queries::pathspec::Pathspec::parse(s);
        }
    }

    #[test]
    fn finish_env_never_panics(
        vals in prop::collection::vec(prop::option::of("[ -~]{0,12}|[0-9,-]{0,8}"), 8),
    ) {
        let keys = ["BUILDKITE_BRANCH", "BUILDKITE_TAG", "CI_PRIORITY", "CI_SANITIZER",
            "CI_COVERAGE_ENABLED", "BUILDKITE_PULL_REQUEST", "CI_TEST_IDS", "BUILDKITE_BUILD_NUMBER"];
        let env: Vec<(String, Option<String>)> =
            keys.iter().map(|k| k.to_string()).zip(vals).collect();
        let var = |k: &str| env.iter().find(|(n, _)| n == k).and_then(|(_, v)| v.clone());
        let _ = FinishOptions::from_env("test", var);
        let _ = pipetrim_queries::specs::env_is_truthy(var("CI_COVERAGE_ENABLED").as_deref());
    }
}

// ---------------------------------------------------------------------------
// Mutations of the fixture repository.

const CHANGES: [&str; 4] = [
    "src/base/src/lib.rs",
    "misc/python/materialize/mzcompose/services/server.py",
    "misc/assets/a.json",
    "doc/index.md",
];

/// Files that describe the model (what a mutation breaks).
const TARGETS: [&str; 9] = [
    "ci/test/pipeline.template.yml",
    "misc/images/assets/mzbuild.yml",
    "src/server/ci/mzbuild.yml",
    "src/server/ci/Dockerfile",
    "src/server/Cargo.toml",
    "Cargo.toml",
    "test/td/mzcompose.py",
    "misc/python/materialize/mzcompose/services/testdrive.py",
    "src/storage/mzcompose.py",
];

fn example_files() -> Vec<(String, Vec<u8>)> {
    let root = Path::new(common::EXAMPLE);
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(root).unwrap().to_str().unwrap().to_string();
                out.push((rel, std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

type Outcome = Result<(BTreeSet<String>, bool, bool), String>;

/// (kept ids, has step errors, glue changed), or the whole-plan error.
fn outcome(db: &Database, ws: pipetrim_queries::Workspace) -> Outcome {
    match plan(db, ws) {
        Ok(p) => Ok((
            p.steps
                .iter()
                .filter(|d| d.kept)
                .map(|d| d.id.clone())
                .collect(),
            !p.errors.is_empty(),
            p.glue_changed,
        )),
        Err(e) => Err(e.to_string()),
    }
}

fn session(files: &[(String, Vec<u8>)]) -> (Database, pipetrim_queries::Workspace, MemoryLoader) {
    let loader = MemoryLoader::default();
    for (p, b) in files {
        loader
            .files
            .insert(p.clone(), (b.clone(), FileMode::Regular));
    }
    let mut db = Database::new(Arc::new(loader.clone()));
    let ws = db.workspace(
        files.iter().map(|f| f.0.clone()).collect(),
        CHANGES.iter().map(|c| c.to_string()).collect(),
        None,
        "test",
        vec!["misc/python".into()],
        false,
    );
    (db, ws, loader)
}

/// Whether the mutated file still parses as what it is.
fn still_parses(path: &str, bytes: &[u8]) -> bool {
    let db = db_with(&[(path, bytes.to_vec())]);
    let f = db.file(path);
    if path.ends_with("mzbuild.yml") {
        pipetrim_queries::images::mzbuild_config(&db, f).is_ok()
    } else if path == "Cargo.toml" {
        pipetrim_queries::cargo::workspace_manifest(&db, f).is_ok()
    } else if path.ends_with("Cargo.toml") {
        pipetrim_queries::cargo::manifest(&db, f).is_ok()
    } else if path.ends_with(".py") {
        std::str::from_utf8(bytes)
            .is_ok_and(|t| pipetrim_queries::python::summarize(t).parse_error.is_none())
    } else if path.ends_with(".yml") {
        std::str::from_utf8(bytes)
            .is_ok_and(|t| pipetrim_queries::pipeline::parse_template(path, t).is_ok())
    } else {
        true // Dockerfiles: any bytes are a Dockerfile
    }
}

proptest! {
    #![proptest_config(cfg())]

    /// A mutated model file: no panic; the incremental engine (edit applied
    /// to a warm database) agrees with a fresh one; and when the mutation
    /// breaks the file, every step the intact repository keeps is still
    /// kept (fail safe) or the whole plan is an error. A mutation that still
    /// parses is a different, valid repository, whose plan may legitimately
    /// differ (a deleted `inputs:` line, a deleted import), so only the
    /// first two properties are asserted for it.
    #[test]
    fn mutated_fixture_fails_safe(target in prop::sample::select(TARGETS.to_vec()), edits in prop::collection::vec(edit(), 1..4)) {
        let files = example_files();
        let (mut warm, ws, loader) = session(&files);
        let intact = outcome(&warm, ws);
        let (kept_intact, _, _) = intact.clone().expect("the example plans");

        let original = files.iter().find(|f| f.0 == target).unwrap().1.clone();
        let mutated = apply(&original, &edits);
        loader.files.insert(target.to_string(), (mutated.clone(), FileMode::Regular));
        warm.reload(target);
        let incremental = outcome(&warm, ws);

        let mut broken_files = files.clone();
        broken_files.iter_mut().find(|f| f.0 == target).unwrap().1 = mutated.clone();
        let (fresh_db, fresh_ws, _) = session(&broken_files);
        let fresh = outcome(&fresh_db, fresh_ws);
        prop_assert_eq!(&incremental, &fresh);

        if !still_parses(target, &mutated)
            && let Ok((kept, _, _)) = &fresh
        {
            let dropped: Vec<_> = kept_intact.difference(kept).collect();
            prop_assert!(dropped.is_empty(), "{target} broken by {edits:?}: dropped {dropped:?}");
        }
    }
}
