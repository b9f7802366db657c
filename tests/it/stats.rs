//! `pipetrim stats` (issue 17): per-step counts and triggers against the
//! generator's ground truth, the Markdown report, the plot, a partial
//! clone, an interrupted walk, and (ignored: it needs the Materialize
//! history) the kept sets against `trim --changed-files` on real commits.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use pipetrim::repo::session::SessionOptions;
use pipetrim_gen::{DEFAULT_SEED, HistoryTruth, generate_history};
use serde_json::Value;

use crate::common::{self, Fixture, Run};

fn stats_json(gitdir: &Path, args: &[&str]) -> Value {
    let mut all = vec!["stats", "--format", "json"];
    all.extend_from_slice(args);
    Run::of(common::pipetrim(gitdir, &common::home(), &all), None).json()
}

fn strs(v: &Value) -> Vec<String> {
    v.as_array()
        .expect("a list")
        .iter()
        .map(|x| x.as_str().expect("a string").to_string())
        .collect()
}

/// Per step: kept count, counts by kind of reason, counts by trigger.
type Counts = (
    usize,
    BTreeMap<String, usize>,
    BTreeMap<(String, String), usize>,
);

fn truth_counts(t: &HistoryTruth) -> BTreeMap<String, Counts> {
    let mut out: BTreeMap<String, Counts> = t
        .steps
        .iter()
        .map(|s| (s.clone(), Counts::default()))
        .collect();
    for c in &t.commits {
        for (id, k) in &c.kept {
            let e = out.get_mut(id).expect("a step of the pipeline");
            e.0 += 1;
            for kind in &k.kinds {
                *e.1.entry(kind.clone()).or_default() += 1;
            }
            for trig in &k.triggers {
                *e.2.entry(trig.clone()).or_default() += 1;
            }
        }
    }
    out
}

fn reported_counts(steps: &Value) -> BTreeMap<String, Counts> {
    let mut out = BTreeMap::new();
    for s in steps.as_array().expect("steps") {
        let by: BTreeMap<String, usize> = s["by_reason"]
            .as_object()
            .expect("by_reason")
            .iter()
            .filter(|(_, n)| n.as_u64() != Some(0))
            .map(|(k, n)| (k.clone(), n.as_u64().expect("a count") as usize))
            .collect();
        let trig: BTreeMap<(String, String), usize> = s["top_triggers"]
            .as_array()
            .expect("top_triggers")
            .iter()
            .map(|t| {
                (
                    (
                        t["kind"].as_str().expect("kind").to_string(),
                        t["input"].as_str().expect("input").to_string(),
                    ),
                    t["count"].as_u64().expect("count") as usize,
                )
            })
            .collect();
        let kept = s["kept"].as_u64().expect("kept") as usize;
        out.insert(s["id"].as_str().expect("id").to_string(), (kept, by, trig));
    }
    out
}

#[test]
fn stats_equal_the_generated_ground_truth() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("repo");
    let n = 14;
    let truth = generate_history(&dir, DEFAULT_SEED, n).expect("generate");
    // Every kind of edit and reason comes up.
    let kinds: BTreeSet<&String> = truth
        .commits
        .iter()
        .flat_map(|c| c.kept.values().flat_map(|k| &k.kinds))
        .collect();
    assert_eq!(kinds.len(), 4, "{kinds:?}");
    assert!(truth.commits.iter().any(|c| c.dry_run));

    let git_dir = dir.join(".git");
    let v = stats_json(
        &git_dir,
        &[
            "--commits",
            &n.to_string(),
            "--top",
            "1000",
            "--hot",
            "100000",
        ],
    );
    assert_eq!(v["interrupted"], Value::Bool(false));
    assert!(v["skipped"].as_array().expect("skipped").is_empty());
    assert!(
        v["errors"].as_array().expect("errors").is_empty(),
        "{}",
        v["errors"]
    );

    // Per commit: the kept set and the dry run, against the first parent.
    let commits = v["commits"].as_array().expect("commits");
    assert_eq!(commits.len(), n);
    for (c, t) in commits.iter().zip(&truth.commits) {
        assert_eq!(c["commit"], t.commit.as_str());
        assert_eq!(c["base"], t.parent.as_str());
        assert_eq!(c["dry_run"], t.dry_run, "{}", t.message);
        let kept: BTreeSet<String> = strs(&c["kept"]).into_iter().collect();
        let want: BTreeSet<String> = t.kept.keys().cloned().collect();
        assert_eq!(kept, want, "{}: {:?}", t.message, t.changed);
    }

    // Per step: kept, by kind of reason, and every trigger with its count.
    let want = truth_counts(&truth);
    let got = reported_counts(&v["steps"]);
    assert_eq!(got.len(), truth.steps.len());
    for (id, w) in &want {
        assert_eq!(got.get(id), Some(w), "step {id}");
    }
    for s in v["steps"].as_array().expect("steps") {
        assert_eq!(s["of"], n);
        // Top triggers come most frequent first.
        let counts: Vec<u64> = s["top_triggers"]
            .as_array()
            .expect("triggers")
            .iter()
            .map(|t| t["count"].as_u64().expect("count"))
            .collect();
        assert!(
            counts.is_sorted_by(|a, b| a >= b),
            "{}: {counts:?}",
            s["id"]
        );
    }
    // Composition steps' top triggers name crates, modules, their directories.
    let top_kinds: BTreeSet<&str> = v["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter_map(|s| s["top_triggers"][0]["kind"].as_str())
        .collect();
    for k in ["glob", "composition", "crate", "module"] {
        assert!(top_kinds.contains(k), "{top_kinds:?}");
    }

    // Hot inputs: a path changed alone costs what its commits keep.
    let mut alone: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    let mut with_others: BTreeSet<&str> = BTreeSet::new();
    for c in &truth.commits {
        for p in &c.changed {
            if c.changed.len() == 1 {
                alone.entry(p).or_default().push(c.kept.len());
            } else {
                with_others.insert(p);
            }
        }
    }
    let hot: BTreeMap<&str, f64> = v["hot_inputs"]
        .as_array()
        .expect("hot_inputs")
        .iter()
        .map(|h| {
            (
                h["path"].as_str().expect("path"),
                h["steps_kept_mean"].as_f64().expect("mean"),
            )
        })
        .collect();
    let mut checked = 0;
    for (p, ks) in alone.iter().filter(|(p, _)| !with_others.contains(**p)) {
        let mean = ks.iter().sum::<usize>() as f64 / ks.len() as f64;
        assert_eq!(hot.get(p), Some(&mean), "{p}");
        checked += 1;
    }
    assert!(checked >= 5, "{checked}");
}

/// The example with a few commits: a crate, a Python module, a doc page,
/// the CI glue.
fn small_history() -> Fixture {
    let f = Fixture::on_main();
    f.append("src/base/src/lib.rs", "\npub fn more() {}\n");
    f.commit("rust");
    f.append(
        "misc/python/materialize/mzcompose/services/postgres.py",
        "\nX = 1\n",
    );
    f.commit("python");
    f.append("doc/index.md", "\nMore.\n");
    f.commit("doc");
    f.append("bin/ci-builder", "\n# more\n");
    f.commit("glue");
    f
}

#[test]
fn markdown_report_and_plot() {
    let f = small_history();
    f.write(
        "durations.csv",
        "step,median minutes\nbuild-x86_64,20\ntestdrive,12.5\nsmoke,3\n",
    );
    let svg = f.tmp.path().join("keep.svg");
    let svg_arg = svg.to_string_lossy().to_string();
    let durations = f.path("durations.csv").to_string_lossy().to_string();
    let out = f.pipetrim(
        &[
            "stats",
            "--commits",
            "4",
            "--format",
            "markdown",
            "--durations",
            &durations,
            "--svg",
            &svg_arg,
        ],
        &[],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    insta::assert_snapshot!("stats_markdown", stdout);

    // The plot: valid XML, one kept and one trimmed bar per step.
    let text = std::fs::read_to_string(&svg).expect("the plot was written");
    let doc = roxmltree::Document::parse(&text).expect("valid XML");
    let fills = |fill: &str| {
        doc.descendants()
            .filter(|n| n.has_tag_name("rect") && n.attribute("fill") == Some(fill))
            .count()
    };
    use pipetrim::output::stats::{SVG_KEPT_FILL, SVG_TRIMMED_FILL};
    let steps = 7;
    assert_eq!(
        fills(SVG_KEPT_FILL),
        steps + 1,
        "one per step and the legend"
    );
    assert_eq!(fills(SVG_TRIMMED_FILL), steps + 1);
    // The step ids label the bars.
    for id in ["build-x86_64", "testdrive", "docs"] {
        assert!(
            doc.descendants()
                .any(|n| n.has_tag_name("text") && n.text().is_some_and(|t| t.trim() == id)),
            "{id}"
        );
    }
    // Readable by others, as any file the user writes.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&svg).expect("plot").permissions().mode();
    assert_eq!(mode & 0o777, 0o644, "{mode:o}");
    // Nothing but the plot was left beside it (written atomically).
    let left: Vec<_> = std::fs::read_dir(f.tmp.path())
        .expect("tmp")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with(".pipetrim-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn text_report_names_the_top_triggers() {
    let f = small_history();
    let out = f.pipetrim(&["stats", "--commits", "4"], &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0));
    // The Python commit keeps the compositions importing postgres.py.
    assert!(
        stdout.contains("module misc/python/materialize/mzcompose/services/postgres.py (1)"),
        "{stdout}"
    );
    assert!(stdout.contains("glob * (4)"), "{stdout}");
    assert!(stdout.contains("1 dry run(s)"), "{stdout}");
}

#[test]
fn unreadable_objects_are_reported_not_guessed() {
    let f = small_history();
    // A partial clone: the blob of the Python module at HEAD~2 is missing.
    let blob = f.git(&[
        "rev-parse",
        "HEAD~2:misc/python/materialize/mzcompose/services/postgres.py",
    ]);
    let blob = blob.trim();
    std::fs::remove_file(f.path(&format!(".git/objects/{}/{}", &blob[..2], &blob[2..])))
        .expect("a loose object");
    // And the last commit's tree is gone: it has no change set.
    let tree = f.git(&["rev-parse", "HEAD^{tree}"]);
    let tree = tree.trim();
    std::fs::remove_file(f.path(&format!(".git/objects/{}/{}", &tree[..2], &tree[2..])))
        .expect("a loose object");

    // Without the persistent cache: a warm cache knows the blob's leaf
    // results by its id and would never need to read it.
    let v = stats_json(&f.repo, &["--commits", "4", "--no-cache"]);
    let skipped: Vec<String> = v["skipped"]
        .as_array()
        .expect("skipped")
        .iter()
        .map(|s| s["error"].as_str().expect("error").to_string())
        .collect();
    assert_eq!(skipped.len(), 1, "{skipped:?}");
    assert!(skipped[0].contains("tree"), "{skipped:?}");
    assert_eq!(v["commits"].as_array().expect("commits").len(), 3);
    assert_eq!(
        strs(&v["unreadable"]),
        ["misc/python/materialize/mzcompose/services/postgres.py"]
    );
    // The Python commit: the module could not be read, so the steps whose
    // compositions import it are kept fail safe, with a diagnostic.
    let py = &v["commits"][1];
    assert!(py["errors"].as_u64().expect("errors") > 0, "{py}");
    let fail_safe: usize = v["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| s["by_reason"]["fail_safe"].as_u64().expect("count") as usize)
        .sum();
    assert!(fail_safe > 0, "{}", v["steps"]);
    assert!(
        v["errors"]
            .as_array()
            .expect("errors")
            .iter()
            .any(|e| e["file"] == "misc/python/materialize/mzcompose/services/postgres.py"),
        "{}",
        v["errors"]
    );
}

/// A template whose blob a partial clone lacks: the commit is skipped with
/// a hint about the clone, not "pass --pipeline" (the template is there).
#[test]
fn a_template_missing_from_a_partial_clone_says_so() {
    let f = small_history();
    let blob = f.git(&["rev-parse", "HEAD:ci/test/pipeline.template.yml"]);
    let blob = blob.trim();
    // Every commit of the history has this template: remove its object.
    std::fs::remove_file(f.path(&format!(".git/objects/{}/{}", &blob[..2], &blob[2..])))
        .expect("a loose object");
    let v = stats_json(&f.repo, &["--commits", "1", "--no-cache"]);
    let skipped = v["skipped"].as_array().expect("skipped");
    assert_eq!(skipped.len(), 1, "{v:#}");
    let error = skipped[0]["error"].as_str().expect("error");
    assert!(error.contains("partial clone"), "{error}");
    assert!(!error.contains("--pipeline"), "{error}");
}

#[test]
fn an_interrupted_walk_reports_what_was_done() {
    let f = small_history();
    let stop = AtomicBool::new(false);
    let walk = pipetrim::stats::walk(
        &f.repo,
        "HEAD",
        4,
        &SessionOptions::default(),
        &stop,
        |done, _, _| {
            if done == 2 {
                stop.store(true, Ordering::SeqCst);
            }
        },
    )
    .expect("walk");
    assert!(walk.interrupted);
    assert_eq!(walk.builder.len(), 2);
    let s = walk.builder.finish(3, 10, None);
    assert_eq!(s.commits.len(), 2);
}

#[test]
fn stats_usage_errors() {
    let f = small_history();
    let out = f.pipetrim(&["stats", "--from", "no-such-ref"], &[]);
    assert_eq!(out.status.code(), Some(2));
    f.write("d.json", "{\"build-x86_64\": \"soon\"}");
    let d = f.path("d.json").to_string_lossy().to_string();
    let out = f.pipetrim(&["stats", "--durations", &d], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("soon"));
    let out = f.pipetrim(&["stats", "--svg", "/no/such/dir/x.svg"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/no/such/dir"));
}

/// On real history, each commit's kept set and dry run equal what `trim
/// --changed-files` decides on a checkout of that commit, given the same
/// change set (`git diff --no-renames --name-only PARENT COMMIT`).
///
/// Needs the Materialize history: `PIPETRIM_MIRROR=<git dir>` (for example
/// a bare clone of sjwiesman/materialize), optionally `PIPETRIM_STATS_FROM`
/// (default b6e9b7be14) and `PIPETRIM_STATS_COMMITS` (default 30). A
/// shared clone is made in a temp dir; the mirror is only read.
#[test]
#[ignore = "needs the Materialize history: PIPETRIM_MIRROR=<git dir>"]
fn stats_equal_trim_on_real_history() {
    let Some(mirror) = std::env::var_os("PIPETRIM_MIRROR") else {
        panic!("set PIPETRIM_MIRROR to a git dir of the Materialize history");
    };
    let from = std::env::var("PIPETRIM_STATS_FROM").unwrap_or_else(|_| "b6e9b7be14".into());
    let n: usize = std::env::var("PIPETRIM_STATS_COMMITS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let mirror = Path::new(&mirror);
    let v = stats_json(mirror, &["--commits", &n.to_string(), "--from", &from]);
    let tmp = tempfile::tempdir().expect("tempdir");
    let home = common::home();
    let wt = tmp.path().join("wt");
    let mirror_s = mirror.to_string_lossy().to_string();
    let wt_s = wt.to_string_lossy().to_string();
    common::git(
        tmp.path(),
        &home,
        &["clone", "-q", "--shared", "--no-checkout", &mirror_s, &wt_s],
    );
    let mut compared = 0;
    for c in v["commits"].as_array().expect("commits") {
        let (commit, base) = (
            c["commit"].as_str().expect("commit"),
            c["base"].as_str().expect("base"),
        );
        common::git(
            &wt,
            &home,
            &["checkout", "-q", "--force", "--detach", commit],
        );
        common::git(&wt, &home, &["clean", "-qfdx"]);
        let changed = common::git(
            &wt,
            &home,
            &["diff", "--no-renames", "--name-only", base, commit],
        );
        let list = tmp.path().join("changed");
        std::fs::write(&list, &changed).expect("write the change set");
        let list = list.to_string_lossy().to_string();
        let trim = common::run_trim(
            &wt,
            &home,
            &["--changed-files", &list, "--format", "json"],
            &[],
            None,
        )
        .json();
        let kept: BTreeSet<String> = trim["steps"]
            .as_array()
            .expect("steps")
            .iter()
            .filter(|s| s["kept"] == Value::Bool(true))
            .map(|s| s["id"].as_str().expect("id").to_string())
            .collect();
        let ours: BTreeSet<String> = strs(&c["kept"]).into_iter().collect();
        assert_eq!(ours, kept, "{commit}: stats vs trim --changed-files");
        assert_eq!(c["dry_run"], trim["dry_run"], "{commit}");
        compared += 1;
    }
    assert!(
        v["skipped"].as_array().expect("skipped").is_empty(),
        "{}",
        v["skipped"]
    );
    assert_eq!(compared, n);
    eprintln!("{compared} commits: kept sets and dry runs equal");
}
