use std::sync::Arc;

use super::*;
use crate::inputs::{Input, InputSpec};
use crate::pipeline::StepKind;

fn step(id: &str, depends_on: &[&str]) -> StepDecision {
    StepDecision {
        id: id.into(),
        index: 0,
        group: None,
        kind: StepKind::Command,
        changed: false,
        fail_safe: false,
        kept: false,
        depends_on: depends_on.iter().map(|s| s.to_string()).collect(),
        globs: Vec::new().into(),
        images: Vec::new().into(),
        changed_inputs: Vec::new(),
        reasons: Vec::new(),
        ci_glue_exempt: false,
        has_inputs: true,
    }
}

fn glob(glob: &str, path: &str) -> Reason {
    Reason::Glob {
        glob: glob.into(),
        origin: GlobOrigin::Explicit,
        path: path.into(),
    }
}

fn import(path: &str) -> Reason {
    Reason::Glob {
        glob: path.into(),
        origin: GlobOrigin::Import {
            composition: "c".into(),
        },
        path: path.into(),
    }
}

fn krate(image: &str, chain: &[&str], dir: &str, path: &str) -> Reason {
    Reason::Image {
        image: image.into(),
        used: image.into(),
        used_by: "composition `c`".into(),
        path: path.into(),
        input: Arc::new(Input {
            spec: InputSpec::Dir {
                dir: dir.into(),
                except: Vec::new().into(),
            },
            origin: Origin::Crate {
                target: "bin `b`".into(),
                chain: chain
                    .iter()
                    .map(|s| std::sync::Arc::<str>::from(*s))
                    .collect(),
            },
        }),
    }
}

/// Marks `d` kept on its own by `reasons` (their paths are its changed inputs).
fn hit(mut d: StepDecision, reasons: Vec<Reason>) -> StepDecision {
    d.changed = true;
    d.kept = true;
    for r in &reasons {
        let path: &str = match r {
            Reason::Glob { path, .. } => path,
            Reason::Image { path, .. } => path,
            _ => continue,
        };
        if !d.changed_inputs.iter().any(|p| p == path) {
            d.changed_inputs.push(path.to_string());
        }
    }
    d.reasons = reasons;
    d
}

fn depended(mut d: StepDecision, by: &[&str]) -> StepDecision {
    d.kept = true;
    for b in by {
        d.reasons.push(Reason::DependedOn {
            step: b.to_string(),
        });
    }
    d
}

fn plan(steps: Vec<StepDecision>, glue: bool) -> Plan {
    Plan {
        steps: steps.into_iter().map(Arc::new).collect(),
        glue_changed: glue,
        changes_unknown: None,
        errors: Vec::new(),
    }
}

fn paths(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn reasons_map_to_kinds_and_triggers() {
    let cases = [
        (
            glob("src", "src/a.rs"),
            ReasonKind::Glob,
            TriggerKind::Glob,
            "src",
        ),
        (
            Reason::Glob {
                glob: "test/c".into(),
                origin: GlobOrigin::CompositionDir {
                    composition: "c".into(),
                },
                path: "test/c/x".into(),
            },
            ReasonKind::Glob,
            TriggerKind::Composition,
            "test/c",
        ),
        (
            import("misc/python/m.py"),
            ReasonKind::Import,
            TriggerKind::Module,
            "misc/python/m.py",
        ),
        (
            krate("img", &["mz-a", "mz-b"], "src/b", "src/b/lib.rs"),
            ReasonKind::Image,
            TriggerKind::Crate,
            "mz-b",
        ),
        (
            Reason::DependedOn { step: "s".into() },
            ReasonKind::DependsOn,
            TriggerKind::Step,
            "s",
        ),
        (
            Reason::FailSafe {
                diagnostic: Diagnostic::in_file("x.py", "does not parse"),
            },
            ReasonKind::FailSafe,
            TriggerKind::FailSafe,
            "x.py",
        ),
    ];
    for (r, kind, tkind, input) in cases {
        assert_eq!(ReasonKind::of(&r), kind, "{r:?}");
        let t = Trigger::of(&r);
        assert_eq!((t.kind, t.input.as_str()), (tkind, input), "{r:?}");
    }
    let cargo = Reason::Image {
        image: "img".into(),
        used: "img".into(),
        used_by: "".into(),
        path: "Cargo.lock".into(),
        input: Arc::new(Input {
            spec: InputSpec::File {
                path: "Cargo.lock".into(),
            },
            origin: Origin::CargoShared,
        }),
    };
    assert_eq!(
        Trigger::of(&cargo),
        Trigger {
            kind: TriggerKind::Cargo,
            input: "Cargo.lock".into()
        }
    );
}

#[test]
fn counts_kinds_once_per_commit_and_ranks_triggers() {
    let mut b = StatsBuilder::new();
    // Commit 1: two Rust files of one crate keep `test` (one trigger,
    // counted once) and `build` depends on... nothing; `test` depends on
    // `build`.
    b.add(
        "c1",
        "c0",
        &paths(&["src/b/lib.rs", "src/b/x.rs"]),
        &plan(
            vec![
                depended(step("build", &[]), &["test"]),
                hit(
                    step("test", &["build"]),
                    vec![
                        krate("img", &["mz-a", "mz-b"], "src/b", "src/b/lib.rs"),
                        krate("img", &["mz-a", "mz-b"], "src/b", "src/b/x.rs"),
                        glob("src", "src/b/lib.rs"),
                    ],
                ),
                step("docs", &[]),
            ],
            false,
        ),
    );
    // Commit 2: a Python module keeps `test`; a doc keeps `docs`.
    b.add(
        "c2",
        "c1",
        &paths(&["misc/python/m.py", "doc/a.md"]),
        &plan(
            vec![
                depended(step("build", &[]), &["test"]),
                hit(step("test", &["build"]), vec![import("misc/python/m.py")]),
                hit(step("docs", &[]), vec![glob("doc", "doc/a.md")]),
            ],
            false,
        ),
    );
    // Commit 3: glue changed, nothing kept (a dry run).
    b.add(
        "c3",
        "c2",
        &paths(&["ci/x"]),
        &plan(
            vec![
                step("build", &[]),
                step("test", &["build"]),
                step("docs", &[]),
            ],
            true,
        ),
    );
    let s = b.finish(2, 10, None);
    let test = s.steps.iter().find(|x| x.id == "test").unwrap();
    assert_eq!((test.kept, test.of, test.on_its_own), (2, 3, 2));
    assert_eq!(
        test.by_reason,
        ByReason {
            glob: 1,
            image: 1,
            import: 1,
            depends_on: 0,
            fail_safe: 0
        }
    );
    let top: Vec<(TriggerKind, &str, usize)> = test
        .top_triggers
        .iter()
        .map(|t| (t.kind, t.input.as_str(), t.count))
        .collect();
    // All three once; ties by kind (glob < module < crate), cut at 2.
    assert_eq!(
        top,
        vec![
            (TriggerKind::Glob, "src", 1),
            (TriggerKind::Module, "misc/python/m.py", 1)
        ]
    );
    let build = s.steps.iter().find(|x| x.id == "build").unwrap();
    assert_eq!((build.kept, build.on_its_own), (2, 0));
    assert_eq!(build.by_reason.depends_on, 2);
    assert_eq!(build.top_triggers[0].input, "test");
    assert_eq!(build.top_triggers[0].count, 2);
    // Most often kept first.
    let order: Vec<&str> = s.steps.iter().map(|x| x.id.as_str()).collect();
    assert_eq!(order, ["build", "test", "docs"]);
    assert_eq!(s.commits[0].kept, ["build", "test"]);
    assert!(s.commits[2].dry_run && s.commits[2].kept.is_empty());
    assert_eq!(s.totals.dry_runs, 1);
    assert_eq!((s.totals.kept, s.totals.step_runs), (5, 9));
}

#[test]
fn hot_inputs_cost_what_the_path_alone_keeps() {
    let mut b = StatsBuilder::new();
    b.add(
        "c1",
        "c0",
        &paths(&["src/b/lib.rs", "doc/a.md", "README.md"]),
        &plan(
            vec![
                depended(step("build", &[]), &["test"]),
                hit(step("test", &["build"]), vec![glob("src", "src/b/lib.rs")]),
                hit(step("docs", &[]), vec![glob("doc", "doc/a.md")]),
            ],
            false,
        ),
    );
    b.add(
        "c2",
        "c1",
        &paths(&["src/b/lib.rs", "src/c/main.rs"]),
        &plan(
            vec![
                depended(step("build", &[]), &["test"]),
                hit(
                    step("test", &["build"]),
                    vec![glob("src", "src/b/lib.rs"), glob("src", "src/c/main.rs")],
                ),
                step("docs", &[]),
            ],
            false,
        ),
    );
    let s = b.finish(5, 100, None);
    let get = |p: &str| s.hot_inputs.iter().find(|h| h.path == p);
    // src/b/lib.rs keeps test and, through depends_on, build: 2 each time.
    let lib = get("src/b/lib.rs").unwrap();
    assert_eq!((lib.commits, lib.steps_kept_total), (2, 4));
    assert_eq!(lib.steps_kept_mean, 2.0);
    // The doc keeps only docs; README keeps nothing.
    assert_eq!(get("doc/a.md").unwrap().steps_kept_mean, 1.0);
    assert_eq!(get("README.md").unwrap().steps_kept_mean, 0.0);
    // src/ had two files changed (in c2): listed; src/b/ and doc/ had one
    // file only, which says the same as the file: left out.
    assert_eq!(get("src/").unwrap().commits, 2);
    assert!(get("src/b/").is_none() && get("doc/").is_none());
    // Most expensive first.
    assert_eq!(s.hot_inputs[0].steps_kept_mean, 2.0);
    assert_eq!(s.hot_inputs.last().unwrap().path, "README.md");
}

#[test]
fn minutes_from_durations() {
    let mut b = StatsBuilder::new();
    b.add(
        "c1",
        "c0",
        &paths(&["doc/a.md"]),
        &plan(
            vec![
                hit(step("docs", &[]), vec![glob("doc", "doc/a.md")]),
                step("test", &[]),
                step("lint", &[]),
            ],
            false,
        ),
    );
    b.add(
        "c2",
        "c1",
        &paths(&["ci/x"]),
        &plan(
            vec![step("docs", &[]), step("test", &[]), step("lint", &[])],
            true,
        ),
    );
    let d = BTreeMap::from([("docs".to_string(), 2.0), ("test".to_string(), 30.0)]);
    let s = b.finish(5, 10, Some(&d));
    let test = s.steps.iter().find(|x| x.id == "test").unwrap();
    assert_eq!(
        test.minutes,
        Some(Minutes {
            median: 30.0,
            run: 0.0,
            saved: 60.0
        })
    );
    let t = s.totals.minutes.unwrap();
    assert_eq!((t.full, t.run, t.saved), (64.0, 2.0, 62.0));
    // c2 is a dry run: its 2 + 30 minutes are not saved in fact.
    assert_eq!(t.saved_in_dry_runs, 32.0);
    assert_eq!(t.steps_without_duration, ["lint"]);
    assert!(
        s.steps
            .iter()
            .find(|x| x.id == "lint")
            .unwrap()
            .minutes
            .is_none()
    );
}

#[test]
fn skipped_commits_are_reported_not_counted() {
    let mut b = StatsBuilder::new();
    b.skip("c1", "c0", "cannot read the tree of c1");
    assert_eq!(b.len(), 1);
    let s = b.finish(5, 10, None);
    assert_eq!(s.totals.skipped, 1);
    assert_eq!(s.totals.commits, 0);
    assert_eq!(s.totals.kept_mean, 0.0);
    assert!(s.steps.is_empty());
}
