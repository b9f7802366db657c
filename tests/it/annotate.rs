//! The Buildkite annotation (issue 16): the Markdown of a trimmed run, a
//! dry run and a fail-safe run (snapshots), and `--annotate` through a
//! command that captures what `buildkite-agent annotate` would read.
//!
//! Runs use `testdata/failsafe`, where a change to
//! `services/testdrive.py` keeps `testdrive` and, through an import chain,
//! `cluster`.

use std::path::Path;

use crate::common::{self, Fixture, Run};

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/failsafe");
const TESTDRIVE_PY: &str = "misc/python/materialize/mzcompose/services/testdrive.py";

fn tree() -> Fixture {
    Fixture::copy_of(Path::new(FIXTURE))
}

/// `trim --changed-files -` (the paths on stdin) with `args`.
fn trim(f: &Fixture, changed: &[&str], args: &[&str]) -> Run {
    let mut cmd = common::pipetrim(&f.repo, &f.home, &["trim", "--changed-files", "-"]);
    cmd.args(args);
    Run::of(cmd, Some(&changed.join("\n")))
}

/// The `--report-markdown` of a trim of `changed`.
fn markdown(f: &Fixture, changed: &[&str]) -> String {
    let out = f.tmp.path().join("report.md");
    let out = out.to_str().expect("utf-8 temp path");
    trim(f, changed, &["--report-markdown", out]).ok();
    std::fs::read_to_string(out).expect("the report was written")
}

/// The step ids of the table rows with their decision.
fn rows(md: &str) -> Vec<(String, String)> {
    md.lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            let cells: Vec<&str> = l.split(" | ").collect();
            (
                cells[0]
                    .trim_start_matches("| ")
                    .trim_matches('`')
                    .to_string(),
                cells[1].to_string(),
            )
        })
        .collect()
}

#[test]
fn markdown_of_a_trimmed_run() {
    let f = tree();
    let md = markdown(&f, &[TESTDRIVE_PY]);
    insta::assert_snapshot!("markdown_trimmed", md);
    assert!(md.starts_with("### pipetrim: kept 2 of 5 steps, trimmed 3\n"));
    // Every step has a row; kept ones first.
    let r = rows(&md);
    let ids: Vec<&str> = r.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids, ["testdrive", "cluster", "docs", "deep", "assets"]);
    // The import chain that keeps `cluster` is named.
    assert!(
        md.contains("testdrive.py ← misc/python/materialize/cluster/util.py:"),
        "{md}"
    );
}

#[test]
fn markdown_of_a_dry_run() {
    let f = tree();
    let md = markdown(&f, &[TESTDRIVE_PY, "ci/test/pipeline.template.yml"]);
    insta::assert_snapshot!("markdown_dry_run", md);
    assert!(md.starts_with("### pipetrim (dry run): would keep"), "{md}");
    assert!(rows(&md).iter().any(|(_, d)| d == "✗ would trim"), "{md}");
}

#[test]
fn markdown_of_a_fail_safe_run_puts_the_error_first() {
    let f = tree();
    let module = "misc/python/materialize/cluster/util.py";
    f.append(module, "def broken(:\n");
    let md = markdown(&f, &[TESTDRIVE_PY]);
    insta::assert_snapshot!("markdown_fail_safe", md);
    let warn = md.find("Needs a look").expect("a warnings section");
    let table = md.find("| step |").expect("a table");
    assert!(warn < table, "{md}");
    assert_eq!(
        rows(&md)[0],
        ("cluster".into(), "✓ kept (fail-safe)".into())
    );
}

#[test]
fn annotate_cmd_reads_the_markdown_on_stdin() {
    let f = tree();
    let dir = f.tmp.path();
    let (body, args, style) = (dir.join("body"), dir.join("args"), dir.join("style"));
    let cmd = format!(
        "cat > '{}'; echo \"$@\" > '{}'; echo \"$PIPETRIM_ANNOTATION_STYLE\" > '{}'",
        body.display(),
        args.display(),
        style.display()
    );
    let report = dir.join("report.md");
    let r = trim(
        &f,
        &[TESTDRIVE_PY],
        &[
            "--annotate",
            "--annotate-cmd",
            &cmd,
            "--report-markdown",
            report.to_str().expect("utf-8"),
        ],
    );
    r.ok();
    assert!(!r.stderr.contains("warning: no annotation"), "{}", r.stderr);
    let read = |p: &Path| std::fs::read_to_string(p).expect("written by the command");
    assert_eq!(read(&body), read(&report));
    assert_eq!(read(&args), "--style info --context pipetrim\n");
    assert_eq!(read(&style), "info\n");
    // The pipeline still goes to stdout.
    assert!(r.stdout.contains("steps:"), "{}", r.stdout);

    // A fail-safe keep makes it a warning.
    f.append("misc/python/materialize/cluster/util.py", "def broken(:\n");
    trim(&f, &[TESTDRIVE_PY], &["--annotate", "--annotate-cmd", &cmd]).ok();
    assert_eq!(read(&args), "--style warning --context pipetrim\n");
}

#[test]
fn a_failing_or_missing_annotate_command_only_warns() {
    let f = tree();
    let r = trim(
        &f,
        &[TESTDRIVE_PY],
        &["--annotate", "--annotate-cmd", "exit 3"],
    );
    r.ok();
    assert!(
        r.stderr
            .contains("warning: no annotation on the build page"),
        "{}",
        r.stderr
    );
    assert!(r.stdout.contains("steps:"));
    // The tests' PATH has no buildkite-agent.
    let r = trim(&f, &[TESTDRIVE_PY], &["--annotate"]);
    r.ok();
    assert!(
        r.stderr.contains("cannot run `buildkite-agent annotate`"),
        "{}",
        r.stderr
    );
    // --annotate-cmd alone is a usage error (it would do nothing).
    let r = trim(&f, &[TESTDRIVE_PY], &["--annotate-cmd", "cat"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
}

/// A fake `buildkite-agent` first on PATH: `script` is its body.
fn fake_agent(f: &Fixture, script: &str) -> std::ffi::OsString {
    use std::os::unix::fs::PermissionsExt;
    let bin = f.tmp.path().join("bin");
    std::fs::create_dir_all(&bin).expect("bin dir");
    let agent = bin.join("buildkite-agent");
    std::fs::write(&agent, format!("#!/bin/sh\n{script}\n")).expect("agent script");
    std::fs::set_permissions(&agent, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let mut path = bin.into_os_string();
    path.push(":");
    path.push(std::env::var_os("PATH").unwrap_or_default());
    path
}

/// `--upload` pipes the finished pipeline to `buildkite-agent pipeline
/// upload` and prints nothing; an agent that fails, even one that exits
/// without reading the pipeline, fails the trim with its status.
#[test]
fn upload_pipes_the_pipeline_to_the_agent_and_its_failure_is_ours() {
    let f = tree();
    let dir = f.tmp.path();
    let (got, args) = (dir.join("uploaded.yml"), dir.join("args"));
    let path = fake_agent(
        &f,
        &format!(
            "cat > '{}'; echo \"$@\" > '{}'",
            got.display(),
            args.display()
        ),
    );
    let out = dir.join("pipeline.yml");
    let upload = |extra: &[&str], path: &std::ffi::OsString| {
        let mut cmd = common::pipetrim(&f.repo, &f.home, &["trim", "--changed-files", "-"]);
        cmd.args(["--upload", "--output", out.to_str().expect("utf-8")])
            .args(extra)
            .env("PATH", path);
        Run::of(cmd, Some(TESTDRIVE_PY))
    };
    let r = upload(&["--dry-run"], &path);
    r.ok();
    assert_eq!(r.stdout, "", "--upload prints no pipeline");
    let read = |p: &Path| std::fs::read_to_string(p).expect("written");
    assert_eq!(read(&got), read(&out), "the agent read the whole pipeline");
    assert!(read(&got).contains("steps:"));
    assert_eq!(read(&args), "pipeline upload --dry-run\n");

    // An agent that exits 7 without reading: the trim fails, naming it.
    let path = fake_agent(&f, "exit 7");
    let r = upload(&[], &path);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("buildkite-agent pipeline upload failed: exit status: 7"),
        "{}",
        r.stderr
    );
}
