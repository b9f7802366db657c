//! Sets `PIPETRIM_VERSION` for `--version`: the crate version, plus the
//! `git describe` of the checkout when it is one (`0.1.0 (v0.1.0-3-gabc1234)`).
//!
//! Without git, or outside a checkout of pipetrim itself (a `cargo install`
//! from a tarball has no `.git`; one unpacked inside another repository must
//! not describe that one), it is the crate version alone.
//!
//! A new describe means recompiling the crate, so:
//! - only builds of the release profile (and those inheriting it) ask git:
//!   the dev profile, which tests and the edit-compile loop use, says the
//!   crate version, and a commit does not rebuild the crate there;
//! - the script reruns only when HEAD, the branch it points to, the packed
//!   refs or the tags move, never on a work-tree edit: that is why the
//!   describe has no `-dirty` mark (it would be stale, or would rebuild
//!   after every edit).

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let pkg = std::env::var("CARGO_PKG_VERSION").unwrap_or_default();
    let dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=PIPETRIM_BUILD_DESCRIBE");
    // An explicit describe (a packager's), or none: `PIPETRIM_BUILD_DESCRIBE=`.
    let release = std::env::var("PROFILE").is_ok_and(|p| p == "release");
    let describe = match std::env::var("PIPETRIM_BUILD_DESCRIBE") {
        Ok(d) => Some(d).filter(|d| !d.is_empty()),
        Err(_) if release && dir.join(".git").exists() => git_describe(&dir),
        Err(_) => None,
    };
    let version = match describe {
        Some(d) => format!("{pkg} ({d})"),
        None => pkg,
    };
    println!("cargo:rustc-env=PIPETRIM_VERSION={version}");
    no_pie();
}

/// On request (`PIPETRIM_BUILD_NO_PIE=1`, Linux/glibc), links the binary
/// at a fixed address: the dynamic loader then has no relocations to apply
/// (25,000, ~0.25 ms of every start; ~0.08 ms of a warm `trim` once the
/// rest was fast, BENCHMARKS round 12). Not the default: pipetrim parses
/// what pull requests put in the repository on CI agents, and a binary at a
/// fixed address gives up address-space randomisation of its own code
/// (Round 10). The code stays position-independent; only the link of the
/// binary changes (tests and benches are linked as usual).
fn no_pie() {
    println!("cargo:rerun-if-env-changed=PIPETRIM_BUILD_NO_PIE");
    let var = |k: &str| std::env::var(k).unwrap_or_default();
    if var("CARGO_CFG_TARGET_OS") == "linux"
        && var("CARGO_CFG_TARGET_ENV") == "gnu"
        && !var("PIPETRIM_BUILD_NO_PIE").is_empty()
    {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
}

/// `git describe --tags --always`, and the files whose change moves it.
fn git_describe(dir: &Path) -> Option<String> {
    let git = |args: &[&str]| -> Option<String> {
        let out = Command::new("git")
            .args(args)
            .current_dir(dir)
            .output()
            .ok()?;
        let s = String::from_utf8(out.stdout).ok()?;
        out.status.success().then(|| s.trim().to_string())
    };
    let describe = git(&["describe", "--tags", "--always", "--abbrev=10"])?;
    // `.git` may be a file (a worktree): ask git where HEAD and the refs are.
    let abs = |p: String| {
        let p = PathBuf::from(p);
        if p.is_absolute() { p } else { dir.join(p) }
    };
    let git_dir = abs(git(&["rev-parse", "--git-dir"])?);
    let common = abs(git(&["rev-parse", "--git-common-dir"])?);
    let mut watch = vec![git_dir.join("HEAD"), common.join("packed-refs")];
    watch.push(common.join("refs/tags"));
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watch.push(common.join(branch));
    }
    // A path that does not exist would rerun the script on every build.
    for p in watch.iter().filter(|p| p.exists()) {
        println!("cargo:rerun-if-changed={}", p.display());
    }
    Some(describe)
}
