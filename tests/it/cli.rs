//! Terminal conventions (issue 16): completions, man pages, `--version`,
//! colour by `NO_COLOR`/`CLICOLOR_FORCE`, and errors shown with their
//! source line.

use std::process::Command;

use crate::common::{self, Fixture, Run};

fn bin(args: &[&str]) -> Run {
    let mut cmd = common::hermetic(env!("CARGO_BIN_EXE_pipetrim"), &common::home());
    cmd.args(args);
    Run::of(cmd, None)
}

#[test]
fn completions_for_each_shell_name_the_commands_and_flags() {
    for shell in ["bash", "zsh", "fish"] {
        let r = bin(&["completions", shell]);
        r.ok();
        for word in [
            "trim",
            "explain",
            "annotate-cmd",
            "report-markdown",
            "completions",
        ] {
            assert!(r.stdout.contains(word), "{shell}: no {word}");
        }
    }
    // The bash script is valid bash.
    let r = bin(&["completions", "bash"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let script = dir.path().join("pipetrim.bash");
    std::fs::write(&script, &r.stdout).expect("write");
    let status = Command::new("bash")
        .arg("-n")
        .arg(&script)
        .status()
        .expect("run bash");
    assert!(status.success());
    assert_eq!(bin(&["completions", "tcsh"]).code, 2);
}

#[test]
fn man_pages_are_generated_per_command() {
    let r = bin(&["man"]);
    r.ok();
    assert!(r.stdout.contains(".TH pipetrim 1"), "{}", r.stdout);
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("man1");
    let r = bin(&["man", out.to_str().expect("utf-8")]);
    r.ok();
    let trim = std::fs::read_to_string(out.join("pipetrim-trim.1")).expect("trim page");
    assert!(trim.contains("annotate"), "{trim}");
    assert!(out.join("pipetrim.1").exists());
    assert!(r.stdout.contains("pipetrim-trim.1"), "{}", r.stdout);
}

#[test]
fn version_names_the_crate_version() {
    let r = bin(&["--version"]);
    r.ok();
    let want = format!("pipetrim {}", env!("CARGO_PKG_VERSION"));
    assert!(r.stdout.starts_with(&want), "{}", r.stdout);
}

/// A tree whose `cluster/util.py` does not parse, and `trim --strict`.
fn strict_on_broken_python(env: &[(&str, &str)]) -> Run {
    trim_on_broken_python(env, &["--strict"])
}

/// A tree whose `cluster/util.py` does not parse, and `trim FLAGS`.
fn trim_on_broken_python(env: &[(&str, &str)], flags: &[&str]) -> Run {
    let f = Fixture::copy_of(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/testdata/failsafe"
    )));
    f.append("misc/python/materialize/cluster/util.py", "def broken(:\n");
    let mut args = vec!["trim", "--changed-files", "-"];
    args.extend_from_slice(flags);
    let mut cmd = common::pipetrim(&f.repo, &f.home, &args);
    cmd.envs(env.iter().copied());
    Run::of(
        cmd,
        Some("misc/python/materialize/mzcompose/services/testdrive.py\n"),
    )
}

#[test]
fn an_error_is_shown_with_its_source_line() {
    let r = strict_on_broken_python(&[]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    insta::assert_snapshot!("error_with_source", r.stderr);
    assert!(r.stderr.contains("| def broken(:\n"), "{}", r.stderr);
}

#[test]
fn colour_follows_no_color_and_clicolor_force() {
    let esc = |r: &Run| r.stderr.contains('\u{1b}');
    // Not a terminal: plain.
    assert!(!esc(&strict_on_broken_python(&[])));
    assert!(esc(&strict_on_broken_python(&[("CLICOLOR_FORCE", "1")])));
    assert!(!esc(&strict_on_broken_python(&[
        ("CLICOLOR_FORCE", "1"),
        ("NO_COLOR", "1")
    ])));
}

/// The ✓/✗ report is written styled where colour is on and plain where
/// it is off, in one pass: the two say the same, warnings included.
#[test]
fn the_coloured_report_is_the_plain_report_with_styles() {
    let plain = trim_on_broken_python(&[], &[]);
    let coloured = trim_on_broken_python(&[("CLICOLOR_FORCE", "1")], &[]);
    assert_eq!((plain.code, coloured.code), (0, 0), "{}", plain.stderr);
    for want in ["✓ ", "✗ ", "    globs: ", "warning: ", "kept fail-safe:"] {
        assert!(plain.stderr.contains(want), "{want}: {}", plain.stderr);
    }
    assert!(!plain.stderr.contains('\u{1b}'), "{}", plain.stderr);
    assert!(
        coloured.stderr.contains("\u{1b}[32m✓\u{1b}[0m "),
        "{}",
        coloured.stderr
    );
    assert_eq!(
        anstream::adapter::strip_str(&coloured.stderr).to_string(),
        plain.stderr
    );
}

/// The binary is position-independent (address-space randomisation of its
/// own code: it parses what pull requests put in the repository) unless
/// the build asked for a fixed address with `PIPETRIM_BUILD_NO_PIE`
/// (Linux/glibc, build.rs).
#[test]
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn the_binary_is_position_independent_unless_asked_otherwise() {
    let elf = std::fs::read(env!("CARGO_BIN_EXE_pipetrim")).unwrap();
    assert_eq!(&elf[..4], b"\x7fELF");
    // e_type: 2 is a fixed-address executable, 3 a position-independent one.
    let e_type = u16::from_le_bytes([elf[16], elf[17]]);
    let fixed = option_env!("PIPETRIM_BUILD_NO_PIE").is_some_and(|v| !v.is_empty());
    assert_eq!(e_type, if fixed { 2 } else { 3 });
}
