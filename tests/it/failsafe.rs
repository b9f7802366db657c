//! Fail safe without holes (SPEC §10, issue 14): whatever pipetrim cannot
//! read or understand keeps the steps it may feed, and says so; a
//! `--python-root` that names no modules is a usage error.
//!
//! Every test copies `testdata/failsafe` (a small tree in Materialize's
//! layout, see its README), makes the one edit of its case, and names in
//! the change set a file that is *not* the edited one: the case's step must
//! be kept with an error that names the file and line, or pipetrim must
//! exit 2 with a message.

use std::collections::BTreeSet;
use std::path::Path;

use pipetrim::repo::session::SessionOptions;
use pipetrim::watch::WatchEngine;
use serde_json::Value as Json;

use crate::common::{self, Fixture, Run};

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/failsafe");

/// The change of the issue: a service module the compositions import.
const TESTDRIVE_PY: &str = "misc/python/materialize/mzcompose/services/testdrive.py";

// ------------------------------------------------------------------ helpers

/// A copy of the fixture in a temp dir (`repo/`, with a `home/` for git).
struct Tree(Fixture);

impl Tree {
    fn new() -> Self {
        Tree(Fixture::copy_of(Path::new(FIXTURE)))
    }

    fn write(&self, path: &str, text: &str) {
        self.0.write(path, text);
    }

    fn append(&self, path: &str, text: &str) {
        self.0.append(path, text);
    }

    fn edit(&self, path: &str, from: &str, to: &str) {
        self.0.edit(path, from, to);
    }

    /// The 1-based line of the last line of `path`.
    fn last_line(&self, path: &str) -> usize {
        self.0.read(path).lines().count()
    }

    fn git(&self, args: &[&str]) {
        self.0.git(args);
    }

    /// The tree as it is now, committed on `main`.
    fn commit_on_main(&self) {
        self.git(&["init", "-q", "-b", "main"]);
        self.0.commit("base");
    }

    /// `pipetrim ARGS --repo <tree>` in a clean, Buildkite-like environment.
    fn run(&self, args: &[&str]) -> Run {
        let mut cmd = common::pipetrim(&self.0.repo, &self.0.home, args);
        cmd.env("NO_COLOR", "1");
        Run::of(cmd, None)
    }

    /// Writes the change list and returns `--changed-files FILE`.
    fn changed(&self, paths: &[&str]) -> String {
        let list = self.0.tmp.path().join("changed.txt");
        std::fs::write(&list, paths.join("\n")).expect("write list");
        list.to_str().expect("utf-8 temp path").to_string()
    }

    /// `trim --format json` for a change to `paths` (plus `args`).
    fn plan(&self, paths: &[&str], args: &[&str]) -> Json {
        let list = self.changed(paths);
        let mut a = vec!["trim", "--format", "json", "--changed-files", &list];
        a.extend_from_slice(args);
        self.run(&a).json()
    }
}

/// Exit 2, nothing on stdout, and `needles` on stderr.
fn usage_error(r: &Run, needles: &[&str]) {
    assert_eq!(r.code, 2, "exit code; stderr:\n{}", r.stderr);
    assert!(r.stdout.is_empty(), "no output on error: {}", r.stdout);
    for n in needles {
        assert!(r.stderr.contains(n), "want {n:?} in:\n{}", r.stderr);
    }
}

fn kept(j: &Json) -> BTreeSet<String> {
    j["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter(|s| s["kept"] == true)
        .filter_map(|s| s["id"].as_str().map(str::to_string))
        .collect()
}

fn set(ids: &[&str]) -> BTreeSet<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

fn step<'a>(j: &'a Json, id: &str) -> &'a Json {
    j["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .find(|s| s["id"] == id)
        .unwrap_or_else(|| panic!("no step {id} in {j:#}"))
}

/// The diagnostics of a step's fail-safe reasons.
fn fail_safe_reasons(s: &Json) -> Vec<&Json> {
    s["reasons"]
        .as_array()
        .expect("reasons")
        .iter()
        .filter(|r| r["kind"] == "fail-safe")
        .map(|r| &r["diagnostic"])
        .collect()
}

/// The plan's error about `file` (at `line`, when given).
fn error_about<'a>(j: &'a Json, file: &str, line: Option<usize>) -> &'a Json {
    j["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .find(|e| e["file"] == file && line.is_none_or(|l| e["line"] == l))
        .unwrap_or_else(|| panic!("no error about {file}:{line:?} in {:#}", j["errors"]))
}

// ------------------------------------------------------------------ intact

/// The baseline every case departs from: nothing to report, and the
/// issue's change keeps exactly the two compositions that import the module.
#[test]
fn intact_fixture_has_no_error_and_trims_exactly() {
    let t = Tree::new();
    let j = t.plan(&[TESTDRIVE_PY], &[]);
    assert_eq!(j["errors"], serde_json::json!([]), "{j:#}");
    assert_eq!(j["trimmed"], true);
    assert_eq!(kept(&j), set(&["testdrive", "cluster"]));
    let j = t.plan(&["misc/images/deep/Dockerfile"], &[]);
    assert_eq!(kept(&j), set(&["deep"]));
    let j = t.plan(&["doc/index.md"], &[]);
    assert_eq!(kept(&j), set(&["docs"]));
}

// ------------------------------------------------- Python that does not parse

#[test]
fn composition_that_does_not_parse_keeps_its_step_with_an_error() {
    let t = Tree::new();
    let comp = "test/testdrive/mzcompose.py";
    t.append(comp, "def broken(:\n");
    let line = t.last_line(comp);

    let j = t.plan(&[TESTDRIVE_PY], &[]);
    assert_eq!(j["trimmed"], true);
    assert_eq!(kept(&j), set(&["testdrive", "cluster"]));
    let e = error_about(&j, comp, Some(line));
    assert!(
        e["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("cannot be parsed")),
        "{e:#}"
    );
    assert!(
        e["hint"]
            .as_str()
            .is_some_and(|h| h.contains("`misc/python`")),
        "{e:#}"
    );
    let td = step(&j, "testdrive");
    assert_eq!(fail_safe_reasons(td), vec![e], "{td:#}");
    assert!(
        td["changed_inputs"]
            .as_array()
            .is_some_and(|c| c.iter().any(|p| p == TESTDRIVE_PY)),
        "{td:#}"
    );

    // Its images are unknown too: a change to any image keeps it.
    let j = t.plan(&["misc/images/deep/Dockerfile"], &[]);
    assert_eq!(kept(&j), set(&["testdrive", "deep"]));
    assert_eq!(fail_safe_reasons(step(&j, "testdrive")).len(), 1);

    // A change it cannot reach trims it, and the error is still reported.
    let j = t.plan(&["doc/index.md"], &[]);
    assert_eq!(kept(&j), set(&["docs"]));
    error_about(&j, comp, Some(line));

    // The ✓/✗ report names the file, the line and the step it kept.
    let list = t.changed(&[TESTDRIVE_PY]);
    let r = t.run(&["trim", "--changed-files", &list]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let warning = format!("warning: `{comp}`:{line}: cannot be parsed");
    assert!(r.stderr.contains(&warning), "{}", r.stderr);
    assert!(
        r.stderr.contains("    kept fail-safe: testdrive\n"),
        "{}",
        r.stderr
    );
    // And the step's own block says why it is kept.
    let block = r.stderr.split("✓ testdrive\n").nth(1).unwrap_or_default();
    let fail_safe = format!("    fail safe: {comp}:{line}: cannot be parsed");
    assert!(
        block
            .split("\n✓ ")
            .next()
            .unwrap_or_default()
            .contains(&fail_safe),
        "{}",
        r.stderr
    );
    // --strict refuses to decide on a tree it cannot read.
    let r = t.run(&["trim", "--strict", "--changed-files", &list]);
    usage_error(&r, &[&format!("`{comp}`:{line}:")]);
}

#[test]
fn module_that_does_not_parse_keeps_the_compositions_reaching_it() {
    let t = Tree::new();
    // `test/cluster` reaches testdrive.py only through this module, in
    // another directory: its imports are lost when it does not parse.
    let module = "misc/python/materialize/cluster/util.py";
    t.append(module, "def broken(:\n");
    let line = t.last_line(module);

    let j = t.plan(&[TESTDRIVE_PY], &[]);
    assert_eq!(kept(&j), set(&["testdrive", "cluster"]));
    let e = error_about(&j, module, Some(line));
    let cluster = step(&j, "cluster");
    assert!(fail_safe_reasons(cluster).contains(&e), "{cluster:#}");

    // Any module under the root may be imported by it now.
    let j = t.plan(&["misc/python/materialize/mzcompose/services/deep.py"], &[]);
    assert_eq!(kept(&j), set(&["cluster", "deep"]));
    // Not a file outside the root that no image holds.
    let j = t.plan(&["doc/index.md"], &[]);
    assert_eq!(kept(&j), set(&["docs"]));
    error_about(&j, module, Some(line));
}

/// A FIFO where a module should be: reading it would block until a writer
/// came (forever, in CI). It is unreadable, like a module that does not
/// parse: the compositions that reach it are kept, and the run ends.
#[test]
fn fifo_module_is_unreadable_not_a_hang() {
    fifo_module_case(false);
    fifo_module_case(true);
}

/// In a plain directory, or in a git checkout (the index-guided walk).
fn fifo_module_case(git: bool) {
    let t = Tree::new();
    if git {
        t.commit_on_main();
    }
    let module = "misc/python/materialize/cluster/util.py";
    let full = t.0.path(module);
    std::fs::remove_file(&full).expect("remove module");
    let made = std::process::Command::new("mkfifo")
        .arg(&full)
        .status()
        .expect("run mkfifo");
    assert!(made.success(), "mkfifo {}", full.display());

    let list = t.changed(&[TESTDRIVE_PY]);
    let mut cmd = common::pipetrim(
        &t.0.repo,
        &t.0.home,
        &["trim", "--format", "json", "--changed-files", &list],
    );
    cmd.env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("spawn pipetrim");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while child.try_wait().expect("wait").is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("pipetrim blocked on the FIFO {module} (git: {git})");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("output");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let j: Json = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(kept(&j), set(&["testdrive", "cluster"]), "git: {git}");
    let e = error_about(&j, module, None);
    assert!(
        e["message"]
            .as_str()
            .is_some_and(|m| m.contains("not a regular file")),
        "{e:#}"
    );
    assert!(fail_safe_reasons(step(&j, "cluster")).contains(&e), "{j:#}");
}

#[test]
fn explain_and_compositions_say_why() {
    let t = Tree::new();
    let comp = "test/testdrive/mzcompose.py";
    t.append(comp, "def broken(:\n");
    let line = t.last_line(comp);
    let list = t.changed(&[TESTDRIVE_PY]);
    let r = t.run(&["explain", "testdrive", "--changed-files", &list]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("step `testdrive` is KEPT"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains(&format!(
            "kept fail-safe: `{comp}`:{line}: cannot be parsed"
        )),
        "{}",
        r.stdout
    );
    let r = t.run(&[
        "explain",
        "testdrive",
        "--changed-files",
        &list,
        "--format",
        "json",
    ]);
    let j = r.json();
    assert!(
        j["evidence"]
            .as_array()
            .is_some_and(|ev| ev
                .iter()
                .any(|e| e["reason"]["kind"] == "fail-safe"
                    && e["reason"]["diagnostic"]["file"] == comp)),
        "{j:#}"
    );
    let r = t.run(&["compositions"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout
            .contains(&format!("unsure: `{comp}`:{line}: cannot be parsed")),
        "{}",
        r.stdout
    );
}

#[test]
fn watch_reports_the_file_that_does_not_parse_and_keeps_the_step() {
    let t = Tree::new();
    let comp = "test/testdrive/mzcompose.py";
    t.append(comp, "def broken(:\n");
    let line = t.last_line(comp);
    // The broken file is committed: only the service module is changed.
    t.commit_on_main();
    t.append(TESTDRIVE_PY, "# edited\n");
    let mut engine = WatchEngine::open(&t.0.repo, &SessionOptions::default(), Some("main".into()))
        .expect("watch engine");
    let ev = engine.evaluate();
    assert_eq!(ev.changed_files, Vec::<String>::new());
    assert!(
        ev.needed.iter().any(|s| s == "testdrive"),
        "{:?}",
        ev.needed
    );
    let error = ev.error.unwrap_or_default();
    assert!(error.contains(&format!("`{comp}`:{line}:")), "{error}");
}

// ------------------------------------------------------ a lookup that gives up

#[test]
fn image_lookup_past_the_depth_bound_uses_every_image() {
    let t = Tree::new();
    // `Deep` becomes an alias of an alias … of `DeepBase`, 40 deep: more
    // than the lookup follows. It must give up loudly.
    let module = "misc/python/materialize/mzcompose/services/deep.py";
    let mut chain = String::from("Deep0 = DeepBase\n");
    for i in 1..40 {
        chain.push_str(&format!("Deep{i} = Deep{}\n", i - 1));
    }
    chain.push_str("Deep = Deep39\n");
    t.edit(module, "Deep = DeepBase\n", &chain);

    let j = t.plan(&["misc/images/deep/Dockerfile"], &[]);
    assert_eq!(kept(&j), set(&["deep"]));
    let deep = step(&j, "deep");
    let reasons = fail_safe_reasons(deep);
    assert_eq!(reasons.len(), 1, "{deep:#}");
    assert!(
        reasons[0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("gave up looking up")),
        "{deep:#}"
    );
    assert_eq!(reasons[0], error_about(&j, module, None));
    // Every image counts for it now.
    let j = t.plan(&["src/materialized/ci/Dockerfile"], &[]);
    assert!(kept(&j).contains("deep"), "{j:#}");
}

// ------------------------------------------------- globs that do not compile

#[test]
fn copy_matching_that_does_not_compile_is_the_images_error() {
    let t = Tree::new();
    let mzbuild = "misc/images/assets/mzbuild.yml";
    t.edit(
        mzbuild,
        "matching: \"*.json\"",
        "matching: \":(bad)*.json\"",
    );

    // A change under the copied directory keeps the step, and says why.
    let j = t.plan(&["misc/assets/README.md"], &[]);
    assert!(kept(&j).contains("assets"), "{j:#}");
    let e = error_about(&j, mzbuild, Some(6));
    assert!(
        e["message"]
            .as_str()
            .is_some_and(|m| m.contains("matching") && m.contains(":(bad)")),
        "{e:#}"
    );
    assert!(fail_safe_reasons(step(&j, "assets")).contains(&e));
    // `images` cannot list inputs it cannot compute.
    let r = t.run(&["images", "--format", "json"]);
    usage_error(&r, &[&format!("`{mzbuild}`:6:"), "matching"]);
}

#[test]
fn composition_directory_that_is_not_a_pathspec_is_matched_literally() {
    for dir in [":(odd", ":odd"] {
        let t = Tree::new();
        t.write(
            &format!("{dir}/mzcompose.py"),
            "from materialize.mzcompose.composition import Composition\n",
        );
        t.write(&format!("{dir}/data.txt"), "data\n");
        t.edit(
            "ci/test/pipeline.template.yml",
            "composition: assets",
            &format!("composition: \"{dir}\""),
        );
        let changed = format!("{dir}/data.txt");
        let j = t.plan(&[&changed], &[]);
        assert_eq!(kept(&j), set(&["assets"]), "{dir}: {j:#}");
        let e = error_about(&j, &format!("{dir}/mzcompose.py"), None);
        assert!(
            e["message"]
                .as_str()
                .is_some_and(|m| m.contains("not a usable git pathspec")),
            "{e:#}"
        );
        assert_eq!(fail_safe_reasons(step(&j, "assets")), vec![e]);
        let j = t.plan(&["doc/index.md"], &[]);
        assert_eq!(kept(&j), set(&["docs"]), "{dir}: {j:#}");
    }
}

// ---------------------------------------------- a path that cannot be decoded

#[test]
fn non_utf8_uncommitted_path_is_kept_and_reported() {
    use std::os::unix::ffi::OsStrExt;
    let t = Tree::new();
    t.commit_on_main();
    // An untracked file under the copied assets, named with a byte that is
    // not UTF-8.
    let name = std::ffi::OsStr::from_bytes(b"misc/assets/b\xff.json");
    std::fs::write(t.0.repo.join(name), "{}\n").expect("write");
    let r = t.run(&[
        "trim",
        "--base",
        "main",
        "--uncommitted",
        "--format",
        "json",
    ]);
    let j = r.json();
    assert_eq!(kept(&j), set(&["assets"]), "{j:#}");
    let lossy = "misc/assets/b\u{FFFD}.json";
    assert_eq!(
        step(&j, "assets")["changed_inputs"],
        serde_json::json!([lossy])
    );
    let e = error_about(&j, lossy, None);
    assert!(
        e["message"]
            .as_str()
            .is_some_and(|m| m.contains("not valid UTF-8")),
        "{e:#}"
    );
}

/// A file whose name is not UTF-8 inside an image's context: the image's
/// fingerprint cannot cover it, so it is an error naming the file (lossily)
/// rather than a fingerprint that leaves it out. Untracked in a plain tree,
/// and tracked in a checkout (the history replay reads its blob).
#[test]
fn non_utf8_name_in_an_image_context_is_a_fingerprint_error() {
    use std::os::unix::ffi::OsStrExt;
    for git in [false, true] {
        let t = Tree::new();
        let name = std::ffi::OsStr::from_bytes(b"misc/images/deep/b\xff.txt");
        std::fs::write(t.0.repo.join(name), "data\n").expect("write");
        if git {
            t.commit_on_main();
        }
        let r = t.run(&["fingerprint", "--image", "deep", "--format", "json"]);
        assert_ne!(r.code, 0, "git: {git}; stdout:\n{}", r.stdout);
        assert!(
            r.stderr.contains("misc/images/deep/b\u{FFFD}.txt") && r.stderr.contains("not UTF-8"),
            "git: {git}; stderr:\n{}",
            r.stderr
        );
        // Other images are unaffected.
        t.run(&["fingerprint", "--image", "assets", "--format", "json"])
            .ok();
    }
}

// ------------------------------------------------------------ --python-root

#[test]
fn python_root_spellings_are_normalised() {
    let t = Tree::new();
    let want = t.plan(&[TESTDRIVE_PY], &[]);
    let abs = t.0.repo.join("misc/python");
    let abs = abs.to_str().expect("utf-8 temp path");
    for root in ["./misc/python", "misc/python/", "misc//python", abs] {
        let j = t.plan(&[TESTDRIVE_PY], &["--python-root", root]);
        assert_eq!(j["steps"], want["steps"], "--python-root {root}");
        assert_eq!(j["errors"], serde_json::json!([]), "--python-root {root}");
    }
}

#[test]
fn python_root_that_names_no_modules_is_a_usage_error() {
    let t = Tree::new();
    let list = t.changed(&[TESTDRIVE_PY]);
    for (root, why) in [
        ("nope", "`nope` does not exist"),
        ("./nope/", "`nope` does not exist"),
        ("doc", "holds no Python module"),
        ("misc", "holds no Python module"),
        (".", "holds no Python module"),
        ("misc/python/materialize", "is a package"),
        ("../elsewhere", "outside the repository"),
    ] {
        for cmd in ["trim", "explain", "compositions"] {
            let mut args = vec![cmd];
            if cmd == "explain" {
                args.push("testdrive");
            }
            if cmd != "compositions" {
                args.extend(["--changed-files", &list]);
            }
            args.extend(["--python-root", root]);
            let r = t.run(&args);
            usage_error(&r, &[&format!("--python-root `{root}`"), why]);
        }
    }
}

#[test]
fn python_root_that_misses_the_imported_package_keeps_the_steps() {
    // `test/deep` holds a module (`mzcompose.py`), so it is a valid root,
    // but not the one that holds `materialize`: the compositions' imports
    // find nothing, and must not read as third-party.
    let t = Tree::new();
    let j = t.plan(&[TESTDRIVE_PY], &["--python-root", "test/deep"]);
    assert_eq!(kept(&j), set(&["testdrive", "cluster", "deep", "assets"]));
    let errors = j["errors"].as_array().expect("errors");
    assert_eq!(errors.len(), 1, "{j:#}");
    let message = errors[0]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("imports of `materialize` find nothing")
            && message.contains("`misc/python/materialize`"),
        "{message}"
    );
    for id in ["testdrive", "cluster", "deep", "assets"] {
        assert_eq!(fail_safe_reasons(step(&j, id)), vec![&errors[0]], "{id}");
    }
    // Every image counts for them too.
    let j = t.plan(
        &["src/materialized/ci/Dockerfile"],
        &["--python-root", "test/deep"],
    );
    assert_eq!(kept(&j), set(&["testdrive", "cluster", "deep", "assets"]));
    // A change no composition can reach still trims them, with the error.
    let j = t.plan(&["doc/index.md"], &["--python-root", "test/deep"]);
    assert_eq!(kept(&j), set(&["docs"]));
    assert_eq!(j["errors"].as_array().map(Vec::len), Some(1));
}

#[test]
fn python_root_at_the_top_with_short_and_multibyte_names_does_not_panic() {
    let t = Tree::new();
    // `.` is a root once it holds a module; the module index then cuts
    // paths like `a` and `é` relative to it (this panicked).
    t.write("setup.py", "import materialize\n");
    t.write("a", "one byte\n");
    t.write("é", "two bytes\n");
    t.write("é.py", "x = 1\n");
    let j = t.plan(
        &["é.py"],
        &["--python-root", ".", "--python-root", "misc/python"],
    );
    assert_eq!(j["errors"], serde_json::json!([]), "{j:#}");
    let r = t.run(&["compositions", "--python-root", "."]);
    assert_eq!(r.code, 0, "{}", r.stderr);
}

// ---------------------------------------------------------- broken template

#[test]
fn broken_template_exits_2_with_file_and_line_in_every_mode() {
    let t = Tree::new();
    let tpl = "ci/test/pipeline.template.yml";
    t.append(tpl, "  - id: [oops\n");
    let list = t.changed(&[TESTDRIVE_PY]);
    for extra in [&[][..], &["--strict"][..], &["--format", "json"][..]] {
        let mut args = vec!["trim", "--changed-files", &list];
        args.extend_from_slice(extra);
        let r = t.run(&args);
        usage_error(&r, &[&format!("`{tpl}`:")]);
    }
}
