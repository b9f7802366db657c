//! The pre-2026-02 `bin/ci-builder` tag format (an `echo "$files"` trailer of
//! rust-version, rust-date, arch and flavor, and a pathspec list that may
//! include `.bazelversion`): a runnable script of that shape computes the
//! expected tag, and pipetrim must print the same.

use std::path::Path;

use crate::common;

const SCRIPT: &str = r#"#!/usr/bin/env bash
set -euo pipefail
NIGHTLY_RUST_DATE=2025-06-01
arch_gcc() { uname -m; }
arch_go() { case "$1" in x86_64) echo amd64 ;; aarch64) echo arm64 ;; esac; }
cmd=$1 && shift
flavor=$1 && shift
rust_date=
case "$flavor" in
    min)
        rust_version=$(sed -n 's/rust-version = "\(.*\)"/\1/p' Cargo.toml)
        ;;
    stable)
        rust_version=$(sed -n 's/rust-version = "\(.*\)"/\1/p' Cargo.toml)
        ;;
    nightly)
        rust_version=nightly
        rust_date=/$NIGHTLY_RUST_DATE
        ;;
    *)
        printf "unknown CI builder flavor %q\n" "$flavor"
        exit 1
        ;;
esac
arch_gcc=${MZ_DEV_CI_BUILDER_ARCH:-$(arch_gcc)}
arch_go=$(arch_go "$arch_gcc")
shasum=sha1sum
files=$(cat \
        <(git diff --name-only -z 4b825dc642cb6eb9a060e54bf8d69288fbee4904 ci/builder .bazelversion) \
        <(git ls-files --others --exclude-standard -z ci/builder) \
    | LC_ALL=C sort -z \
    | xargs -0 "$shasum")
files+="
rust-version:$rust_version
rust-date:$rust_date
arch:$arch_gcc
flavor:$flavor
"
tag=$(echo "$files" | python3 -c '
import base64
import hashlib
import sys

input = sys.stdin.buffer.read()
hash = base64.b32encode(hashlib.sha1(input).digest())
print(hash.decode())
')
echo "$tag"
"#;

/// Runs `cmd` in `dir`, hermetically below `dir/.home`; its trimmed stdout.
fn sh(dir: &Path, cmd: &str, args: &[&str], envs: &[(&str, &str)]) -> String {
    let mut c = common::hermetic(cmd, &dir.join(".home"));
    c.args(args).current_dir(dir).envs(envs.iter().copied());
    String::from_utf8(common::stdout_of(c))
        .expect("utf-8")
        .trim()
        .to_string()
}

#[test]
fn legacy_tag_format_matches_the_script() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let write = |p: &str, t: &str| {
        let f = dir.join(p);
        std::fs::create_dir_all(f.parent().expect("parent")).expect("mkdir");
        std::fs::write(f, t).expect("write");
    };
    write(".home/.keep", "");
    write(".gitignore", ".home/\n");
    write("bin/ci-builder", SCRIPT);
    write("ci/builder/Dockerfile", "FROM debian\n");
    write("ci/builder/b/c.txt", "c\n");
    write("ci/builder/a-b.txt", "ab\n");
    write(".bazelversion", "7.0.0\n");
    write(
        "Cargo.toml",
        "[workspace.package]\nrust-version = \"1.88.0\"\n",
    );
    sh(dir, "git", &["init", "-q"], &[]);
    sh(dir, "git", &["add", "-A"], &[]);
    sh(dir, "git", &["commit", "-qm", "x"], &[]);
    // An untracked file under ci/builder counts too.
    write("ci/builder/untracked.txt", "u\n");
    for flavor in ["stable", "nightly", "min"] {
        for arch in ["x86_64", "aarch64"] {
            let want = sh(
                dir,
                "bash",
                &["bin/ci-builder", "tag", flavor],
                &[("MZ_DEV_CI_BUILDER_ARCH", arch)],
            );
            let got = sh(
                dir,
                env!("CARGO_BIN_EXE_pipetrim"),
                &["builder-tag", flavor, "--arch", arch, "--repo", "."],
                &[],
            );
            assert_eq!(got, want, "{flavor}/{arch}");
        }
    }
}
