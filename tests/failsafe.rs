//! Fail safe without holes (SPEC §10, issue 14): whatever pipetrim cannot
//! read or understand keeps the steps it may feed, and says so; a
//! `--python-root` that names no modules is a usage error.
//!
//! Every test copies `testdata/failsafe` (a small tree in Materialize's
//! layout, see its README), makes the one edit of its case, and names in
//! the change set a file that is *not* the edited one: the case's step must
//! be kept with an error that names the file and line, or pipetrim must
//! exit 2 with a message. Self-contained (its own helpers), so that it can
//! move into a single test binary as it is.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use pipetrim::session::SessionOptions;
use pipetrim::watch::WatchEngine;
use serde_json::Value as Json;

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/failsafe");

/// The change of the issue: a service module the compositions import.
const TESTDRIVE_PY: &str = "misc/python/materialize/mzcompose/services/testdrive.py";

// ------------------------------------------------------------------ helpers

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read fixture") {
        let e = e.expect("fixture entry");
        let dst = to.join(e.file_name());
        if e.file_type().expect("file type").is_dir() {
            copy_dir(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), &dst).expect("copy");
        }
    }
}

/// A copy of the fixture in a temp dir (`repo/`, with a `home/` for git).
struct Tree {
    tmp: tempfile::TempDir,
    repo: PathBuf,
}

impl Tree {
    fn new() -> Self {
        let tmp = tempfile::tempdir().expect("temp dir");
        let repo = tmp.path().join("repo");
        copy_dir(Path::new(FIXTURE), &repo);
        std::fs::create_dir_all(tmp.path().join("home")).expect("home");
        Tree { tmp, repo }
    }

    fn home(&self) -> PathBuf {
        self.tmp.path().join("home")
    }

    fn write(&self, path: &str, text: &str) {
        let p = self.repo.join(path);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, text).expect("write");
    }

    fn read(&self, path: &str) -> String {
        std::fs::read_to_string(self.repo.join(path)).expect("read")
    }

    fn append(&self, path: &str, text: &str) {
        let old = self.read(path);
        self.write(path, &format!("{old}{text}"));
    }

    fn edit(&self, path: &str, from: &str, to: &str) {
        let old = self.read(path);
        assert!(old.contains(from), "{path} has no {from:?}");
        self.write(path, &old.replacen(from, to, 1));
    }

    /// The 1-based line of the last line of `path`.
    fn last_line(&self, path: &str) -> usize {
        self.read(path).lines().count()
    }

    fn git(&self, args: &[&str]) {
        let out = Command::new("git")
            .args(args)
            .current_dir(&self.repo)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.home())
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_NAME", "Test")
            .env("GIT_AUTHOR_EMAIL", "test@example.com")
            .env("GIT_COMMITTER_NAME", "Test")
            .env("GIT_COMMITTER_EMAIL", "test@example.com")
            .env("GIT_AUTHOR_DATE", "2024-01-01T00:00:00Z")
            .env("GIT_COMMITTER_DATE", "2024-01-01T00:00:00Z")
            .output()
            .expect("git runs");
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The tree as it is now, committed on `main`.
    fn commit_on_main(&self) {
        self.git(&["init", "-q", "-b", "main"]);
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "-m", "base"]);
    }

    /// `pipetrim ARGS --repo <tree>` in a clean, Buildkite-like environment.
    fn run(&self, args: &[&str]) -> Out {
        let out = Command::new(env!("CARGO_BIN_EXE_pipetrim"))
            .args(args)
            .arg("--repo")
            .arg(&self.repo)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.home())
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("BUILDKITE_BRANCH", "feature")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .output()
            .expect("pipetrim runs");
        Out {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Writes the change list and returns `--changed-files FILE`.
    fn changed(&self, paths: &[&str]) -> String {
        let list = self.tmp.path().join("changed.txt");
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

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    fn json(&self) -> Json {
        assert_eq!(self.code, 0, "exit code; stderr:\n{}", self.stderr);
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}\n{}", self.stdout, self.stderr))
    }

    /// Exit 2, nothing on stdout, and `needles` on stderr.
    fn usage_error(&self, needles: &[&str]) {
        assert_eq!(self.code, 2, "exit code; stderr:\n{}", self.stderr);
        assert!(
            self.stdout.is_empty(),
            "no output on error: {}",
            self.stdout
        );
        for n in needles {
            assert!(self.stderr.contains(n), "want {n:?} in:\n{}", self.stderr);
        }
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
    // --strict refuses to decide on a tree it cannot read.
    let r = t.run(&["trim", "--strict", "--changed-files", &list]);
    r.usage_error(&[&format!("`{comp}`:{line}:")]);
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
    let mut engine = WatchEngine::open(&t.repo, &SessionOptions::default(), Some("main".into()))
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
    r.usage_error(&[&format!("`{mzbuild}`:6:"), "matching"]);
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
    std::fs::write(t.repo.join(name), "{}\n").expect("write");
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

// ------------------------------------------------------------ --python-root

#[test]
fn python_root_spellings_are_normalised() {
    let t = Tree::new();
    let want = t.plan(&[TESTDRIVE_PY], &[]);
    let abs = t.repo.join("misc/python");
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
            r.usage_error(&[&format!("--python-root `{root}`"), why]);
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
        r.usage_error(&[&format!("`{tpl}`:")]);
    }
}
