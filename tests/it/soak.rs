//! `pipetrim soak` over a generated history (issue 11): every commit's
//! incremental plan equals the from-scratch plan, and nothing panics.

use pipetrim::repo::session::SessionOptions;
use pipetrim::soak::soak;

use crate::common::Fixture;

type Edit = Box<dyn Fn(&Fixture)>;

/// The example with ~20 commits of history touching every kind of input,
/// including broken-then-fixed manifests, templates and Python.
fn history() -> Fixture {
    let f = Fixture::on_main();
    let steps: Vec<(&str, Edit)> = vec![
        (
            "rust",
            Box::new(|f| f.append("src/base/src/lib.rs", "\npub fn more() {}\n")),
        ),
        (
            "python",
            Box::new(|f| {
                f.append(
                    "misc/python/materialize/mzcompose/services/postgres.py",
                    "\nX = 1\n",
                )
            }),
        ),
        (
            "dockerfile",
            Box::new(|f| f.append("src/server/ci/Dockerfile", "ENV A=1\n")),
        ),
        (
            "template",
            Box::new(|f| {
                f.edit(
                    "ci/test/pipeline.template.yml",
                    "timeout_in_minutes: 10\n",
                    "timeout_in_minutes: 11\n",
                )
            }),
        ),
        (
            "break mzbuild.yml",
            Box::new(|f| {
                f.write(
                    "misc/images/assets/mzbuild.yml",
                    "name: [assets\npre-image: {\n",
                )
            }),
        ),
        (
            "fix mzbuild.yml",
            Box::new(|f| {
                f.write(
                "misc/images/assets/mzbuild.yml",
                "name: assets\npre-image:\n  - type: copy\n    source: misc/assets\n    destination: assets\n    matching: \"*.json\"\n",
            )
            }),
        ),
        (
            "new crate",
            Box::new(|f| {
                f.write("src/newcrate/Cargo.toml", "[package]\nname = \"mz-newcrate\"\nversion = \"0.1.0\"\n\n[dependencies]\nmz-base = { path = \"../base\" }\n");
                f.write("src/newcrate/src/lib.rs", "pub fn f() {}\n");
                f.edit(
                    "Cargo.toml",
                    "\"src/testdrive\",\n",
                    "\"src/testdrive\",\n    \"src/newcrate\",\n",
                );
            }),
        ),
        (
            "smoke imports",
            Box::new(|f| {
                f.edit(
                "test/smoke/mzcompose.py",
                "from materialize.mzcompose.services.server import Server\n",
                "from materialize.mzcompose.services.server import Server\nfrom materialize.mzcompose.services.testdrive import Testdrive\n",
            )
            }),
        ),
        (
            "delete asset",
            Box::new(|f| std::fs::remove_file(f.path("misc/assets/a.json")).unwrap()),
        ),
        (
            "add asset",
            Box::new(|f| f.write("misc/assets/b.json", "{}\n")),
        ),
        (
            "rename doc",
            Box::new(|f| std::fs::rename(f.path("doc/index.md"), f.path("doc/main.md")).unwrap()),
        ),
        (
            "glue",
            Box::new(|f| f.append("bin/ci-builder", "\n# more\n")),
        ),
        ("lock", Box::new(|f| f.append("Cargo.lock", "\n"))),
        (
            "symlink",
            Box::new(|f| {
                std::os::unix::fs::symlink("b.json", f.path("misc/assets/link.json")).unwrap()
            }),
        ),
        (
            "exec bit",
            Box::new(|f| {
                use std::os::unix::fs::PermissionsExt;
                let p = f.path("src/tool/src/bin/tool-a.rs");
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
            }),
        ),
        (
            "break python",
            Box::new(|f| {
                f.append(
                    "misc/python/materialize/mzcompose/services/server.py",
                    "\ndef broken(:\n",
                )
            }),
        ),
        (
            "fix python",
            Box::new(|f| {
                f.edit(
                    "misc/python/materialize/mzcompose/services/server.py",
                    "\ndef broken(:\n",
                    "\ndef fixed():\n    pass\n",
                )
            }),
        ),
        (
            "break template",
            Box::new(|f| f.append("ci/test/pipeline.template.yml", "  - id: [oops\n")),
        ),
        (
            "fix template",
            Box::new(|f| f.edit("ci/test/pipeline.template.yml", "  - id: [oops\n", "")),
        ),
        (
            "break Cargo.toml",
            Box::new(|f| f.append("src/storage/Cargo.toml", "\n[dependencies\n")),
        ),
        (
            "fix Cargo.toml",
            Box::new(|f| f.edit("src/storage/Cargo.toml", "\n[dependencies\n", "\n")),
        ),
    ];
    for (msg, step) in steps {
        step(&f);
        f.commit(msg);
    }
    f
}

#[test]
fn soak_generated_history() {
    let f = history();
    let git_dir = f.repo.join(".git");
    let report = soak(
        &git_dir,
        "HEAD",
        21,
        &SessionOptions::default(),
        |_, _, _| {},
    )
    .unwrap();
    assert_eq!(report.commits, 21, "{}", report.summary());
    assert!(report.ok(), "{}", report.summary());
    // The broken commits were evaluated and failed safe or errored.
    assert!(
        report.plan_errors + report.step_errors >= 3,
        "{}",
        report.summary()
    );
    assert!(report.dry_runs >= 1, "{}", report.summary());
    assert!(report.peak_rss_kib > 0);

    // The command: same walk, exit 0, and the summary on stdout.
    let out = f.pipetrim(&["soak", "--commits", "21"], &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("panics: 0"), "{stdout}");
    assert!(stdout.contains("differences: 0"), "{stdout}");
}

#[test]
fn soak_history_shorter_than_asked() {
    let f = Fixture::on_main();
    f.append("src/base/src/lib.rs", "\n");
    f.commit("one");
    let report = soak(
        &f.repo,
        "HEAD",
        50,
        &SessionOptions::default(),
        |_, _, _| {},
    )
    .unwrap();
    assert_eq!(report.commits, 1);
    assert!(report.ok(), "{}", report.summary());
}

#[test]
fn soak_bad_revision_is_a_usage_error() {
    let f = Fixture::on_main();
    let out = f.pipetrim(&["soak", "--commits", "3", "--from", "no-such-ref"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no-such-ref"));
}
