//! `--from-index`: the answers are those of the git index, whatever the
//! work tree holds, and a run on a dirty work tree never leaves the cache
//! with an entry that changes a later work-tree answer.

use std::path::Path;

use proptest::prelude::*;

use crate::cache::{answers_opts, apply, cfg};
use crate::common::{self, Fixture};

/// A copy of the fixture's repository whose work tree is its index:
/// unstaged edits undone, deleted files back, untracked files gone.
fn index_as_work_tree(f: &Fixture, to: &Path) {
    common::copy_dir(&f.repo, to);
    f.git_in(to, &["checkout-index", "--all", "--force"]);
    f.git_in(to, &["clean", "-fdq"]);
}

/// Stages part of the work tree (by `pick`): all of it, one directory, or
/// nothing.
fn stage(f: &Fixture, pick: u8) {
    match pick % 3 {
        0 => {
            f.git(&["add", "-A"]);
        }
        1 => {
            let _ = common::git(&f.repo, &f.home, &["add", "-A", "--", "src", "test"]);
        }
        _ => {}
    }
}

proptest! {
    #![proptest_config(cfg())]

    /// Random edits, some staged: the answers `--from-index` gives on the
    /// dirty work tree (with and without the cache) equal the ordinary
    /// answers of a checkout of that index; and the ordinary answers on the
    /// dirty work tree are the same with the cache the index runs filled.
    #[test]
    fn answers_from_the_index_are_those_of_the_index(
        steps in proptest::collection::vec(
            (proptest::collection::vec((any::<u8>(), any::<u8>()), 1..4), any::<u8>()),
            1..5,
        )
    ) {
        let f = Fixture::git_repo();
        f.write(".gitignore", "");
        let dir = f.tmp.path().join("cache");
        let cache = pipetrim::cache::shared(&dir);
        for (n, (edits, pick)) in steps.into_iter().enumerate() {
            for (kind, arg) in edits {
                apply(&f, kind, arg);
            }
            stage(&f, pick);
            let from_index = answers_opts(&f.repo, Some(&dir), false, true);
            cache.flush();
            let again = answers_opts(&f.repo, Some(&dir), false, true);
            let uncached = answers_opts(&f.repo, None, false, true);
            prop_assert_eq!(&from_index, &uncached);
            prop_assert_eq!(&again, &uncached);

            let clean = f.tmp.path().join(format!("clean{n}"));
            index_as_work_tree(&f, &clean);
            let want = answers_opts(&clean, None, false, false);
            prop_assert_eq!(&from_index, &want);

            // The work tree's own answers, with the cache filled above.
            let work_tree = answers_opts(&f.repo, Some(&dir), false, false);
            cache.flush();
            prop_assert_eq!(work_tree, answers_opts(&f.repo, None, false, false));
        }
    }
}

/// The fixture with a committed change on `feature`.
fn changed() -> Fixture {
    let f = Fixture::git_repo();
    f.append("src/testdrive/src/main.rs", "// changed\n");
    f.commit("change");
    f
}

/// The stdout of `pipetrim ARGS EXTRA` on the fixture (with `env`); the
/// test fails if the run does.
fn stdout_ok(f: &Fixture, args: &[&str], extra: &[&str], env: &[(&str, &str)]) -> String {
    let all: Vec<&str> = args.iter().chain(extra).copied().collect();
    let o = f.pipetrim(&all, env);
    assert!(o.status.success(), "{o:?}");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

const FINGERPRINT: [&str; 5] = ["fingerprint", "--arch", "x86_64", "--format", "json"];

/// On a clean checkout (a CI agent's), the pipeline is byte for byte that
/// of the ordinary run, by the flag or the variable, and so is the report
/// but for its first line, which says where the files came from.
#[test]
fn a_clean_checkout_gives_the_same_pipeline() {
    let f = changed();
    let cache = f.tmp.path().join("cache");
    let cache = cache.to_str().unwrap();
    let normal = f.pipetrim(&["trim", "--base", "main", "--cache-dir", cache], &[]);
    assert!(normal.status.success(), "{normal:?}");
    for (args, env) in [
        (&["--from-index"][..], &[][..]),
        (&[][..], &[("PIPETRIM_FROM_INDEX", "1")][..]),
    ] {
        let mut all = vec!["trim", "--base", "main", "--cache-dir", cache];
        all.extend_from_slice(args);
        let o = f.pipetrim(&all, env);
        assert!(o.status.success(), "{o:?}");
        assert_eq!(
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&normal.stdout)
        );
        let want = String::from_utf8_lossy(&normal.stderr);
        let (first, rest) = want.split_once('\n').expect("a report");
        assert!(
            first.starts_with("--- trimmed against merge base "),
            "{first}"
        );
        assert_eq!(
            String::from_utf8_lossy(&o.stderr),
            format!("{first}, with the files of the git index (--from-index)\n{rest}")
        );
    }
    // A false value leaves the mode off: the untracked file below counts.
    f.write("src/testdrive/ci/new.txt", "x\n");
    let fp = |env: &[(&str, &str)]| stdout_ok(&f, &FINGERPRINT, &[], env);
    assert_ne!(
        fp(&[("PIPETRIM_FROM_INDEX", "0")]),
        fp(&[("PIPETRIM_FROM_INDEX", "1")])
    );
}

/// From the index, a warm run works on one thread and a cold one (Python
/// to parse, contents to hash) on every core (`pipetrim::pool`): the
/// answers are the same whichever ran, and the same as without the cache,
/// also after an edit that leaves the cache partly warm.
#[test]
fn warm_and_cold_runs_from_the_index_answer_alike() {
    let f = changed();
    let cache = f.tmp.path().join("cache");
    let cache = cache.to_str().unwrap();
    let commands: [&[&str]; 3] = [
        &["trim", "--from-index", "--base", "main", "--format", "json"],
        // `--exists-cmd`: the YAML trim asks it about every image spec.
        &[
            "trim",
            "--from-index",
            "--base",
            "main",
            "--exists-cmd",
            "true",
        ],
        &[
            "fingerprint",
            "--from-index",
            "--arch",
            "aarch64",
            "--format",
            "json",
        ],
    ];
    let check = |label: &str| {
        for args in commands {
            let uncached = stdout_ok(&f, args, &["--no-cache"], &[]);
            let cold_or_warm = stdout_ok(&f, args, &["--cache-dir", cache], &[]);
            let warm = stdout_ok(&f, args, &["--cache-dir", cache], &[]);
            assert_eq!(cold_or_warm, uncached, "{label}: {args:?}");
            assert_eq!(warm, uncached, "{label}: {args:?}");
        }
    };
    check("empty cache, then warm");
    // A module one composition imports, edited and staged: that
    // composition is parsed again, the others come from the cache.
    f.append(
        "misc/python/materialize/mzcompose/services/postgres.py",
        "\nimport materialize.mzcompose.services.server\n",
    );
    f.git(&["add", "-A"]);
    check("one module edited");
}

/// What the work tree holds beyond the index is not seen: an unstaged
/// edit, an untracked file, a deleted file. Each changes the ordinary
/// fingerprints; none changes those from the index.
#[test]
fn unstaged_edits_and_untracked_files_are_not_seen() {
    let f = changed();
    let fp = |extra: &[&str]| {
        let extra: Vec<&str> = ["--no-cache"].iter().chain(extra).copied().collect();
        stdout_ok(&f, &FINGERPRINT, &extra, &[])
    };
    let clean = fp(&[]);
    type Edit = fn(&Fixture);
    let edits: [(&str, Edit); 4] = [
        ("an unstaged edit", |f| {
            f.append("src/testdrive/src/main.rs", "// more\n")
        }),
        ("an untracked file", |f| {
            f.write("src/testdrive/src/extra.rs", "\n")
        }),
        ("a deleted file", |f| {
            std::fs::remove_file(f.path("src/testdrive/src/main.rs")).unwrap();
        }),
        ("an edited image definition", |f| {
            f.append("src/testdrive/ci/mzbuild.yml", "publish: false\n");
        }),
    ];
    for (what, edit) in edits {
        edit(&f);
        assert_ne!(fp(&[]), clean, "{what}: the work tree changed the answer");
        assert_eq!(fp(&["--from-index"]), clean, "{what}");
        f.git(&["checkout", "--", "."]);
        let _ = common::git(&f.repo, &f.home, &["clean", "-fdq"]);
    }
    // Staged, it counts.
    f.append("src/testdrive/src/main.rs", "// staged\n");
    f.git(&["add", "src/testdrive/src/main.rs"]);
    assert_ne!(fp(&["--from-index"]), clean);
}

/// `--uncommitted` with `--from-index` counts what is staged, not the
/// unstaged edit of another file.
#[test]
fn uncommitted_from_the_index_is_what_is_staged() {
    let f = Fixture::git_repo();
    f.append("src/testdrive/src/main.rs", "// staged\n");
    f.git(&["add", "src/testdrive/src/main.rs"]);
    f.append("misc/images/prod-base/Dockerfile", "# unstaged\n");
    let changed = |extra: &[&str]| -> Vec<String> {
        let args = [
            "trim",
            "--base",
            "main",
            "--format",
            "json",
            "--uncommitted",
        ];
        let v: serde_json::Value = serde_json::from_str(&stdout_ok(&f, &args, extra, &[])).unwrap();
        let mut all: Vec<String> = v["steps"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|s| s["changed_inputs"].as_array().cloned().unwrap_or_default())
            .filter_map(|p| p.as_str().map(str::to_string))
            .collect();
        all.sort();
        all.dedup();
        all
    };
    let both = changed(&[]);
    assert!(
        both.contains(&"misc/images/prod-base/Dockerfile".to_string()),
        "{both:?}"
    );
    assert!(
        both.contains(&"src/testdrive/src/main.rs".to_string()),
        "{both:?}"
    );
    assert_eq!(
        changed(&["--from-index"]),
        vec!["src/testdrive/src/main.rs"]
    );
}

/// Where the mode cannot apply, the run stops with a usage error that
/// says why: `watch` follows the work tree, and a plain directory has no
/// index.
#[test]
fn the_mode_refuses_watch_and_plain_directories() {
    let f = Fixture::git_repo();
    let o = f.pipetrim(&["watch", "--from-index"], &[]);
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("--from-index"), "{err}");

    let p = Fixture::plain();
    let o = p.pipetrim(&["images", "--from-index"], &[]);
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("needs a git checkout"), "{err}");
}

/// With nothing cached, `trim` parses the template and the root manifest
/// from the work tree before the session exists, and offers what it made
/// to the run's lookups. An unstaged edit of both must not reach a run
/// from the index: its pipeline is the one without a cache.
#[test]
fn a_template_read_ahead_from_a_dirty_work_tree_is_not_used() {
    let f = changed();
    let trim = |extra: &[&str]| {
        let mut all = vec!["trim", "--base", "main", "--from-index"];
        all.extend_from_slice(extra);
        stdout_ok(&f, &all, &[], &[])
    };
    let clean = trim(&["--no-cache"]);
    let template = std::fs::read_to_string(f.path("ci/test/pipeline.template.yml")).unwrap();
    assert!(template.contains("label: Build x86_64\n"));
    std::fs::write(
        f.path("ci/test/pipeline.template.yml"),
        template.replace("label: Build x86_64\n", "label: Unstaged ($RUST_VERSION)\n"),
    )
    .unwrap();
    let root = std::fs::read_to_string(f.path("Cargo.toml")).unwrap();
    std::fs::write(
        f.path("Cargo.toml"),
        root.replace("rust-version = \"1.95.0\"", "rust-version = \"9.99.0\""),
    )
    .unwrap();
    let dirty = stdout_ok(&f, &["trim", "--base", "main", "--no-cache"], &[], &[]);
    assert!(dirty.contains("Unstaged (9.99.0)"), "{dirty}");
    assert!(!dirty.contains("1.95.0"), "{dirty}");
    for run in 0..2 {
        let dir = f.tmp.path().join(format!("cache-{run}"));
        let dir = dir.to_str().unwrap();
        // The first run has nothing cached (and reads ahead); the second
        // finds what the first stored.
        assert_eq!(trim(&["--cache-dir", dir]), clean, "empty cache");
        assert_eq!(trim(&["--cache-dir", dir]), clean, "warm cache");
    }
}
