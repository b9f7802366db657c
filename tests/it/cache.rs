//! The persistent cache never changes an answer: with, without, damaged,
//! shared by concurrent runs, or unwritable, the answers are the same.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Output;

use pipetrim::repo::git::{Changes, changes_against, uncommitted, uncommitted_parts};
use pipetrim::repo::load::{scan, scan_cached};
use pipetrim::repo::session::{Session, SessionOptions};
use pipetrim_queries::Db;
use pipetrim_queries::fingerprint::{Variant, base32, fingerprints};
use pipetrim_queries::images::compositions;
use pipetrim_queries::plan::plan;
use pipetrim_queries::python::{composition_images, composition_imports};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};

use crate::common::{self, Fixture};

pub(crate) fn cfg() -> Config {
    let cases = std::env::var("PIPETRIM_FUZZ_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .map_or(6, |c: u32| c.min(64));
    Config {
        cases,
        rng_seed: RngSeed::Fixed(0xcace_0015),
        failure_persistence: None,
        ..Config::default()
    }
}

/// Everything a session answers that the cache could touch: the visible
/// files, the plan, and the fingerprints of one variant.
fn answers(root: &Path, cache_dir: Option<&Path>) -> String {
    answers_with(root, cache_dir, false)
}

/// [`answers`], with or without `--lazy-imports`, plus every composition's
/// import closure and images (the analysis the cache keeps whole).
fn answers_with(root: &Path, cache_dir: Option<&Path>, lazy_imports: bool) -> String {
    answers_opts(root, cache_dir, lazy_imports, false)
}

/// [`answers_with`], of the work tree or (`from_index`) of the git index,
/// whose uncommitted changes are the staged ones only.
pub(crate) fn answers_opts(
    root: &Path,
    cache_dir: Option<&Path>,
    lazy_imports: bool,
    from_index: bool,
) -> String {
    let opts = SessionOptions {
        cache_dir: cache_dir.map(Path::to_path_buf),
        lazy_imports,
        from_index,
        ..SessionOptions::default()
    };
    let mut s = Session::open(root, &opts).expect("session");
    let mut changed = match changes_against(root, Some("main")) {
        Changes::Known { paths, .. } => paths,
        Changes::Unknown(why) => panic!("change set: {why}"),
    };
    if from_index {
        changed.extend(uncommitted_parts(root).expect("uncommitted").staged);
    } else {
        changed.extend(uncommitted(root).expect("uncommitted"));
    }
    s.set_changes(changed, None);
    let db = &s.db;
    let files = s.ws.files(db);
    // Two variants: the cached own hashes are keyed by the variant too.
    let fps = [("x86_64", "OPTIMIZED", false), ("aarch64", "RELEASE", true)]
        .map(|(arch, profile, coverage)| {
            let variant = Variant::new(
                db,
                arch.to_string(),
                profile.to_string(),
                coverage,
                "none".to_string(),
            );
            match fingerprints(db, files, variant) {
                Ok(f) => f
                    .iter()
                    .map(|(n, d)| format!("{n}={}", base32(d)))
                    .collect::<Vec<_>>()
                    .join(","),
                Err(e) => format!("error: {e}"),
            }
        })
        .join("\n");
    let options = s.ws.options(db);
    let mut analyses = String::new();
    if let Ok(comps) = compositions(db, files) {
        for dir in comps.values() {
            let file = db.file(&format!("{dir}/mzcompose.py"));
            analyses.push_str(&format!(
                "{dir}: {:?} {:?}\n",
                composition_imports(db, files, options, file),
                composition_images(db, files, options, file)
            ));
        }
    }
    format!(
        "files: {:?}\nplan: {:?}\nfingerprints: {fps}\nanalyses: {analyses}",
        s.files(),
        plan(db, s.ws)
    )
}

/// An edit of the fixture (indexes into a fixed palette).
pub(crate) fn apply(f: &Fixture, kind: u8, arg: u8) {
    let toggle = |p: &str, line: &str| {
        let t = f.read(p);
        if t.contains(line) {
            f.write(p, t.replacen(line, "", 1));
        } else {
            f.write(p, t + line);
        }
    };
    match kind % 19 {
        // An import the composition did not have.
        0 => toggle(
            "test/td/mzcompose.py",
            "from materialize.mzcompose.services.postgres import Postgres\n",
        ),
        // The image a service names.
        1 => {
            let p = "misc/python/materialize/mzcompose/services/testdrive.py";
            let t = f.read(p);
            let t = if t.contains("= \"testdrive\"") {
                t.replacen("= \"testdrive\"", "= \"server\"", 1)
            } else {
                t.replacen("= \"server\"", "= \"testdrive\"", 1)
            };
            f.write(p, t);
        }
        // A module that does not parse.
        2 => toggle(
            "misc/python/materialize/mzcompose/services/server.py",
            "def (:\n",
        ),
        // A path dependency.
        3 => {
            let p = "src/testdrive/Cargo.toml";
            let dep = "mz-storage = { path = \"../storage\" }\n";
            let t = f.read(p);
            let t = if t.contains(&format!("\n{dep}\n[dev")) {
                t.replacen(dep, "", 1)
            } else {
                t.replacen(
                    "[dev-dependencies]",
                    &format!("{dep}\n[dev-dependencies]"),
                    1,
                )
            };
            f.write(p, t);
        }
        // An image dependency.
        4 => toggle("misc/images/prod-base/Dockerfile", "MZFROM assets\n"),
        5 => f.append("src/base/src/lib.rs", &format!("// edit {arg}\n")),
        6 => toggle("misc/images/assets/mzbuild.yml", "publish: false\n"),
        // Files created and deleted.
        7 => {
            let p = format!("src/base/src/new{}.rs", arg % 3);
            if f.path(&p).exists() {
                std::fs::remove_file(f.path(&p)).unwrap();
            } else {
                f.write(&p, format!("// {arg}\n"));
            }
        }
        // An untracked directory, ignored or not.
        8 => {
            f.write(&format!("misc/assets/gen{arg}/x.json"), "{}\n");
            if arg.is_multiple_of(2) {
                f.append(".gitignore", &format!("gen{arg}/\n"));
            }
        }
        9 => f.commit(&format!("step {arg}")),
        10 => f.append("ci/test/pipeline.template.yml", &format!("# {arg}\n")),
        // A module in the composition's own directory, created and
        // deleted (parsing or not); the composition may star-import it.
        12 => {
            let p = "test/td/helpers.py";
            if f.path(p).exists() {
                std::fs::remove_file(f.path(p)).unwrap();
            } else if arg.is_multiple_of(3) {
                f.write(p, "def (:\n");
            } else {
                f.write(
                    p,
                    "import yaml\nfrom materialize.mzcompose.services.postgres import *\n",
                );
            }
        }
        13 => toggle(
            "test/td/mzcompose.py",
            "from helpers import *\nEXTRA = [Postgres()]\n",
        ),
        // A module under the roots, created and deleted (with a relative
        // import), and an import of it, at load time or in a function.
        14 => {
            let p = "misc/python/materialize/mzcompose/services/extra.py";
            if f.path(p).exists() {
                std::fs::remove_file(f.path(p)).unwrap();
            } else {
                f.write(
                    p,
                    format!("from .postgres import Postgres\nimport yaml\nX{arg} = 1\n"),
                );
            }
        }
        15 => {
            if arg.is_multiple_of(2) {
                toggle(
                    "test/td/mzcompose.py",
                    "from materialize.mzcompose.services.extra import *\n",
                );
            } else {
                toggle(
                    "test/td/mzcompose.py",
                    "def lazy():\n    from materialize.mzcompose.services import extra\n",
                );
            }
        }
        // A package outside the roots named like an import (`yaml`): the
        // wrong-root fail safe, wherever the package is.
        16 => {
            let p = ["ci/yaml/__init__.py", "test/td/yaml/__init__.py"][usize::from(arg % 2)];
            if f.path(p).exists() {
                std::fs::remove_file(f.path(p)).unwrap();
            } else {
                f.write(p, "\n");
            }
        }
        // A package in the composition's directory.
        17 => {
            let p = "test/td/pkg/__init__.py";
            if f.path(p).exists() {
                std::fs::remove_file(f.path(p)).unwrap();
                toggle("test/td/mzcompose.py", "from pkg import *\n");
            } else {
                f.write(
                    p,
                    "from materialize.mzcompose.services.server import Server\n",
                );
                toggle("test/td/mzcompose.py", "from pkg import *\n");
            }
        }
        // An image input made executable or not (its mode is hashed).
        18 => {
            use std::os::unix::fs::PermissionsExt;
            let p = f.path("src/base/src/lib.rs");
            let mode = std::fs::metadata(&p).unwrap().permissions().mode();
            set_mode(&p, if mode & 0o100 == 0 { 0o755 } else { 0o644 });
        }
        // Back to the committed content.
        _ => {
            let _ = common::git(&f.repo, &f.home, &["checkout", "--", "."]);
        }
    }
}

proptest! {
    #![proptest_config(cfg())]

    /// Random edit sequences: after each edit, the answers with the cache
    /// (written by the previous steps, read back from disk) equal those of
    /// a run without it, and the cached file set equals git's.
    #[test]
    fn answers_are_identical_with_and_without_the_cache(
        steps in proptest::collection::vec(
            proptest::collection::vec((any::<u8>(), any::<u8>()), 1..4),
            1..6,
        )
    ) {
        let f = Fixture::git_repo();
        f.write(".gitignore", "");
        let dir = f.tmp.path().join("cache");
        let cache = pipetrim::cache::shared(&dir);
        for edits in steps {
            for (kind, arg) in edits {
                apply(&f, kind, arg);
            }
            // Older than the racy window, so unchanged directories are
            // taken from the cached listings.
            std::thread::sleep(std::time::Duration::from_millis(120));
            let with = answers(&f.repo, Some(&dir));
            cache.flush();
            let again = answers(&f.repo, Some(&dir));
            cache.flush();
            let without = answers(&f.repo, None);
            prop_assert_eq!(&with, &without);
            prop_assert_eq!(&again, &without);
            let (cached_files, _) = scan_cached(&f.repo, Some(&cache)).unwrap();
            let (files, _) = scan(&f.repo).unwrap();
            prop_assert_eq!(&cached_files, &files);
            prop_assert_eq!(files, git_visible(&f));
        }
        prop_assert!(cache.stats().hits > 0, "{:?}", cache.stats());
    }
}

/// Files added and removed where a composition's analysis can see them
/// (its own directory, the Python roots, packages anywhere), in an order
/// where each addition or removal follows a run that stored the analysis:
/// the answers with the cache, eager and lazy, equal those without it.
#[test]
fn the_analysis_cache_sees_added_and_removed_files() {
    let f = Fixture::git_repo();
    f.write(".gitignore", "");
    let dir = f.tmp.path().join("cache");
    let cache = pipetrim::cache::shared(&dir);
    let script: &[(u8, u8)] = &[
        (13, 0), // star-import `helpers`, which does not exist yet
        (12, 1), // create it
        (12, 0), // delete it
        (12, 3), // create it, not parsing
        (12, 0), // delete it
        (15, 0), // import `extra` under the roots, which does not exist yet
        (14, 1), // create it
        (16, 0), // a `yaml` package outside the roots
        (16, 1), // and one in the composition's directory
        (16, 0),
        (16, 1),
        (14, 1), // delete `extra`
        (15, 0), // no import of it at load time
        (15, 1), // import it in a function (followed with `--lazy-imports`)
        (14, 2), // create it again
        (17, 0), // a package of the composition's directory, star-imported
        (17, 0),
        (2, 0), // a module that does not parse
        (2, 0),
        (9, 0), // commit
        (11, 0),
    ];
    for &(kind, arg) in script {
        apply(&f, kind, arg);
        std::thread::sleep(std::time::Duration::from_millis(120));
        for lazy in [false, true] {
            let with = answers_with(&f.repo, Some(&dir), lazy);
            cache.flush();
            let again = answers_with(&f.repo, Some(&dir), lazy);
            cache.flush();
            let without = answers_with(&f.repo, None, lazy);
            assert_eq!(with, without, "step ({kind}, {arg}), lazy {lazy}");
            assert_eq!(again, without, "step ({kind}, {arg}), lazy {lazy}");
        }
    }
    assert!(cache.stats().hits > 0, "{:?}", cache.stats());
}

/// A composition's summary keeps its calls (the arguments it passes to
/// services) and another module's does not: the same bytes in both roles
/// are two cache entries, so a composition never restores the summary
/// stored for a module with its content.
#[test]
fn a_composition_and_a_module_with_the_same_bytes_are_cached_apart() {
    let f = Fixture::git_repo();
    f.write(".gitignore", "");
    let dir = f.tmp.path().join("cache");
    let cache = pipetrim::cache::shared(&dir);
    let twin = "from materialize.mzcompose.services.server import Server\n\
                SERVICES = [Server(image=\"assets\")]\n";
    // First the module, imported by a composition, summarized and stored.
    f.write("misc/python/materialize/twin.py", twin);
    let td = f.read("test/td/mzcompose.py");
    f.write(
        "test/td/mzcompose.py",
        format!("import materialize.twin\n{td}"),
    );
    std::thread::sleep(std::time::Duration::from_millis(120));
    assert_eq!(answers(&f.repo, Some(&dir)), answers(&f.repo, None));
    cache.flush();
    // Then a composition with the same bytes: its image "assets" comes
    // from its call's argument.
    f.write("test/twin/mzcompose.py", twin);
    std::thread::sleep(std::time::Duration::from_millis(120));
    let without = answers(&f.repo, None);
    assert!(
        without.contains("test/twin") && without.contains("\"assets\""),
        "{without}"
    );
    assert_eq!(answers(&f.repo, Some(&dir)), without);
    cache.flush();
    assert_eq!(answers(&f.repo, Some(&dir)), without);
    assert!(cache.stats().hits > 0, "{:?}", cache.stats());
}

/// What git says is visible (SPEC §1).
fn git_visible(f: &Fixture) -> Vec<String> {
    let tracked = f.git(&["ls-files", "-z"]);
    let others = f.git(&["ls-files", "-z", "--others", "--exclude-standard"]);
    let mut out: BTreeSet<String> = BTreeSet::new();
    for p in tracked.split('\0').filter(|p| !p.is_empty()) {
        if std::fs::symlink_metadata(f.path(p)).is_ok() {
            out.insert(p.to_string());
        }
    }
    out.extend(
        others
            .split('\0')
            .filter(|p| !p.is_empty())
            .map(str::to_string),
    );
    out.into_iter().collect()
}

/// `trim --format json` and `fingerprint` through the binary with the given
/// cache flags: (stdout of both, stderr of both, exit codes).
fn binary(f: &Fixture, cache: &[&str]) -> (String, String, Vec<i32>) {
    let mut stdout = String::new();
    let mut stderr = String::new();
    let mut codes = Vec::new();
    for args in [
        &["trim", "--base", "main", "--format", "json"][..],
        &["fingerprint", "--arch", "x86_64", "--format", "json"][..],
    ] {
        let mut all: Vec<&str> = args.to_vec();
        all.extend_from_slice(cache);
        let o: Output = f.pipetrim(&all, &[("PIPETRIM_TIMINGS", "1")]);
        stdout.push_str(&String::from_utf8_lossy(&o.stdout));
        stderr.push_str(&String::from_utf8_lossy(&o.stderr));
        codes.push(o.status.code().unwrap_or(-1));
    }
    (stdout, stderr, codes)
}

fn warnings(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.starts_with("warning: cache:"))
        .collect()
}

/// Hits reported by `PIPETRIM_TIMINGS` over the runs.
fn hits(stderr: &str) -> usize {
    counted(stderr, 0)
}

/// A fixture with a change on `feature`, and its answers without a cache.
fn changed_fixture() -> (Fixture, (String, Vec<i32>)) {
    let f = Fixture::git_repo();
    f.append("src/testdrive/src/main.rs", "// changed\n");
    f.commit("change");
    let (out, _, codes) = binary(&f, &["--no-cache"]);
    assert_eq!(codes, vec![0, 0]);
    (f, (out, codes))
}

#[test]
fn a_damaged_or_foreign_cache_is_ignored_and_rebuilt() {
    let (f, want) = changed_fixture();
    let dir = f.tmp.path().join("cache");
    let dir_s = dir.to_str().unwrap().to_string();
    let flags = ["--cache-dir", dir_s.as_str()];
    let file = dir.join("leaves-v1.redb");
    type Damage = fn(&Path);
    let damages: Vec<(&str, Damage)> = vec![
        ("truncated to half", |p| {
            let len = std::fs::metadata(p).unwrap().len();
            let file = std::fs::OpenOptions::new().write(true).open(p).unwrap();
            file.set_len(len / 2).unwrap();
        }),
        ("truncated to a few bytes", |p| {
            let file = std::fs::OpenOptions::new().write(true).open(p).unwrap();
            file.set_len(7).unwrap();
        }),
        ("empty", |p| std::fs::write(p, b"").unwrap()),
        ("garbage", |p| {
            let len = std::fs::metadata(p).unwrap().len() as usize;
            let junk: Vec<u8> = (0..len).map(|i| (i * 7919 % 251) as u8).collect();
            std::fs::write(p, junk).unwrap();
        }),
        ("another program's file", |p| {
            let mut v = b"SQLite format 3\0".to_vec();
            v.resize(8192, 0);
            std::fs::write(p, v).unwrap();
        }),
        ("a redb file of another format", |p| {
            std::fs::remove_file(p).unwrap();
            let db = redb::Database::create(p).unwrap();
            let tx = db.begin_write().unwrap();
            {
                let def: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("meta");
                let mut t = tx.open_table(def).unwrap();
                t.insert("magic", b"someone else".as_slice()).unwrap();
                let def: redb::TableDefinition<&[u8], &[u8]> =
                    redb::TableDefinition::new("entries");
                let mut t = tx.open_table(def).unwrap();
                t.insert(b"k".as_slice(), b"v".as_slice()).unwrap();
            }
            tx.commit().unwrap();
        }),
    ];
    for (what, damage) in damages {
        let _ = std::fs::remove_dir_all(&dir);
        let (out, err, codes) = binary(&f, &flags);
        assert_eq!((&out, &codes), (&want.0, &want.1), "cold: {err}");
        assert!(warnings(&err).is_empty(), "{err}");
        damage(&file);
        let (out, err, codes) = binary(&f, &flags);
        assert_eq!((&out, &codes), (&want.0, &want.1), "{what}: {err}");
        let w = warnings(&err);
        assert!(
            w.len() == 1 && w[0].contains("ignored and rebuilt"),
            "{what}: one line says so: {err}"
        );
        // Rebuilt: the next runs use it again.
        let (out, err, codes) = binary(&f, &flags);
        assert_eq!((&out, &codes), (&want.0, &want.1), "{what}, after: {err}");
        assert!(warnings(&err).is_empty(), "{what}, after: {err}");
        assert!(hits(&err) > 0, "{what}: the rebuilt cache is used: {err}");
    }
}

/// Damage inside the file (a byte flipped here and there, as a bad disk
/// would): whatever redb or the entry checksums make of it, the answers
/// do not change.
#[test]
fn flipped_bytes_never_change_an_answer() {
    let (f, want) = changed_fixture();
    let dir = f.tmp.path().join("cache");
    let dir_s = dir.to_str().unwrap().to_string();
    let flags = ["--cache-dir", dir_s.as_str()];
    let file = dir.join("leaves-v1.redb");
    for round in 0..6u64 {
        let _ = std::fs::remove_dir_all(&dir);
        binary(&f, &flags);
        let mut bytes = std::fs::read(&file).unwrap();
        let len = bytes.len() as u64;
        for k in 0..8u64 {
            let at = ((round * 7 + k) * 0x9e37_79b9 % len) as usize;
            bytes[at] ^= 0x5a;
        }
        std::fs::write(&file, &bytes).unwrap();
        let (out, err, codes) = binary(&f, &flags);
        assert_eq!((&out, &codes), (&want.0, &want.1), "round {round}: {err}");
    }
}

#[test]
fn concurrent_runs_share_the_cache_safely() {
    let (f, want) = changed_fixture();
    let dir = f.tmp.path().join("cache");
    let dir_s = dir.to_str().unwrap().to_string();
    for round in 0..3 {
        let runs: Vec<_> = (0..3)
            .map(|_| {
                let mut cmd = common::pipetrim(
                    &f.repo,
                    &f.home,
                    &[
                        "trim",
                        "--base",
                        "main",
                        "--format",
                        "json",
                        "--cache-dir",
                        &dir_s,
                    ],
                );
                cmd.stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped());
                cmd.spawn().unwrap()
            })
            .collect();
        for child in runs {
            let o = child.wait_with_output().unwrap();
            let out = String::from_utf8_lossy(&o.stdout);
            let err = String::from_utf8_lossy(&o.stderr);
            assert_eq!(o.status.code(), Some(0), "round {round}: {err}");
            assert!(want.0.starts_with(out.as_ref()), "round {round}: {err}");
            assert!(
                warnings(&err).iter().all(|w| !w.contains("rebuilt")),
                "round {round}: {err}"
            );
        }
    }
    let (out, err, _) = binary(&f, &["--cache-dir", &dir_s]);
    assert_eq!(out, want.0);
    assert!(hits(&err) > 0, "{err}");
}

/// The `PIPETRIM_TIMINGS` count at `field` (0 hits, 1 misses, 2 written).
fn counted(stderr: &str, field: usize) -> usize {
    stderr
        .lines()
        .filter_map(|l| l.strip_prefix("timings: cache "))
        .filter_map(|l| {
            l.split(", ")
                .nth(field)?
                .split(' ')
                .next()?
                .parse::<usize>()
                .ok()
        })
        .sum()
}

/// A first run writes its new cache file while it finishes (the JSON plan
/// after the priming, the YAML after the fingerprints): the file it leaves
/// holds everything, so a second run computes nothing and answers the same.
#[test]
fn a_first_run_keeps_everything_it_computed() {
    let (f, _) = changed_fixture();
    f.settle();
    for format in ["json", "text"] {
        let dir = f.tmp.path().join(format!("cache-{format}"));
        let args = [
            "trim",
            "--base",
            "main",
            "--format",
            format,
            "--cache-dir",
            dir.to_str().unwrap(),
        ];
        let run = || f.pipetrim(&args, &[("PIPETRIM_TIMINGS", "1")]);
        let first = run();
        let first_err = String::from_utf8_lossy(&first.stderr);
        assert_eq!(first.status.code(), Some(0), "{first_err}");
        assert!(counted(&first_err, 2) > 0, "{first_err}");
        let second = run();
        let second_err = String::from_utf8_lossy(&second.stderr);
        assert_eq!(second.stdout, first.stdout, "{format}");
        let both = format!("{format}, first run:\n{first_err}\nsecond run:\n{second_err}");
        assert_eq!(
            counted(&second_err, 1),
            0,
            "nothing to compute again: {both}"
        );
        assert_eq!(counted(&second_err, 2), 0, "nothing new to keep: {both}");
        assert!(hits(&second_err) > 0, "{both}");
    }
}

#[test]
fn an_unwritable_cache_directory_does_not_fail_the_run() {
    let (f, want) = changed_fixture();
    // A path that cannot be a directory: a file is in the way.
    let blocked = f.tmp.path().join("not-a-dir");
    std::fs::write(&blocked, "x").unwrap();
    let target = blocked.join("cache");
    let (out, err, codes) = binary(&f, &["--cache-dir", target.to_str().unwrap()]);
    assert_eq!((&out, &codes), (&want.0, &want.1), "{err}");
    assert!(!warnings(&err).is_empty(), "says it runs uncached: {err}");

    // A read-only directory, empty and populated. (Root writes anyway:
    // then the answers must still be the same.)
    let ro = f.tmp.path().join("ro");
    std::fs::create_dir_all(&ro).unwrap();
    binary(&f, &["--cache-dir", ro.to_str().unwrap()]);
    let empty = f.tmp.path().join("ro-empty");
    std::fs::create_dir_all(&empty).unwrap();
    for d in [&ro, &empty] {
        set_mode(d, 0o555);
        let (out, err, codes) = binary(&f, &["--cache-dir", d.to_str().unwrap()]);
        set_mode(d, 0o755);
        assert_eq!((&out, &codes), (&want.0, &want.1), "{err}");
    }
}

#[test]
fn no_cache_writes_nothing() {
    let (f, _) = changed_fixture();
    let dir = f.tmp.path().join("never");
    let o = f.pipetrim(
        &["trim", "--base", "main", "--no-cache"],
        &[("PIPETRIM_CACHE_DIR", dir.to_str().unwrap())],
    );
    assert_eq!(o.status.code(), Some(0));
    assert!(!dir.exists());
}

fn set_mode(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// `PIPETRIM_TIMINGS` prints a timeline of the trim phases, in order and
/// with times that never go back; without it, nothing.
#[test]
fn timings_print_the_phases_of_a_trim_in_order() {
    let (f, _) = changed_fixture();
    let cache = f.path("cache-dir");
    let dir = cache.to_string_lossy().to_string();
    let (_, stderr, codes) = binary(&f, &["--cache-dir", &dir]);
    assert_eq!(codes, vec![0, 0]);
    let line = stderr
        .lines()
        .find_map(|l| l.strip_prefix("timeline (ms since start): "))
        .unwrap_or_else(|| panic!("no timeline in:\n{stderr}"));
    // Each mark is `name ms (memory MiB)`; the memory where the system
    // says it (Linux always does).
    let marks: Vec<(&str, f64)> = line
        .split(" · ")
        .filter_map(|m| {
            let (m, memory) = match m.rsplit_once(" (") {
                Some((m, mib)) => (m, mib.strip_suffix(" MiB)")?.parse::<f64>().ok()),
                None => (m, None),
            };
            if cfg!(target_os = "linux") && !memory.is_some_and(|mib| mib > 0.0) {
                return None;
            }
            let (name, ms) = m.rsplit_once(' ')?;
            Some((name, ms.parse().ok()?))
        })
        // The change-set thread's marks fall anywhere among the others.
        .filter(|(name, _)| !name.ends_with("(thread)"))
        .collect();
    let names: Vec<&str> = marks.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        names,
        [
            "args",
            "git open",
            "index",
            "dir snapshot",
            "dir stats",
            "scan",
            "session",
            "template",
            "prime",
            "plan",
            "finish",
            "report",
            "output",
            "flush"
        ],
        "{line}"
    );
    assert!(marks.windows(2).all(|w| w[0].1 <= w[1].1), "{line}");
    // The YAML run (what CI uploads) also fingerprints the images of both
    // arches, before finishing: a phase of its own.
    let yaml = f.pipetrim(
        &["trim", "--base", "main", "--cache-dir", &dir],
        &[("PIPETRIM_TIMINGS", "1")],
    );
    let stderr = String::from_utf8_lossy(&yaml.stderr);
    assert!(
        stderr.contains(" · plan ") && stderr.contains(" · fingerprints ") && {
            let at = |m: &str| stderr.find(m).unwrap_or(usize::MAX);
            at(" · plan ") < at(" · fingerprints ") && at(" · fingerprints ") < at(" · finish ")
        },
        "{stderr}"
    );
    let quiet = f.pipetrim(&["trim", "--base", "main", "--format", "json"], &[]);
    assert!(!String::from_utf8_lossy(&quiet.stderr).contains("timeline"));
}
