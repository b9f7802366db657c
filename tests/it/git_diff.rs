//! The change set equals `git diff --name-only BASE...HEAD` (plus both sides
//! of renames), including a directory replaced by a file, a file replaced by
//! a directory and a symlink replaced by a directory.

use std::path::Path;
use std::process::Command;

use pipetrim::git::{Changes, changes_against};

fn git(dir: &Path, args: &[&str]) -> String {
    let home = dir.join(".home");
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("HOME", &home)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@t")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@t")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

fn write(dir: &Path, path: &str, text: &str) {
    let p = dir.join(path);
    std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
    std::fs::write(p, text).expect("write");
}

#[test]
fn change_set_equals_git_diff_including_type_changes() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("repo");
    std::fs::create_dir_all(dir.join(".home")).expect("mkdir");
    git(&dir, &["init", "-q", "-b", "main"]);
    write(&dir, ".gitignore", ".home/\n");
    write(&dir, "a/x", "1");
    write(&dir, "a/y", "2");
    write(&dir, "b", "3");
    write(&dir, "keep/same", "4");
    write(&dir, "mv/old", "5");
    std::os::unix::fs::symlink("b", dir.join("l")).expect("symlink");
    git(&dir, &["add", "-A"]);
    git(&dir, &["commit", "-qm", "base"]);
    git(&dir, &["checkout", "-q", "-b", "feature"]);
    std::fs::remove_dir_all(dir.join("a")).expect("rm a");
    std::fs::remove_file(dir.join("b")).expect("rm b");
    std::fs::remove_file(dir.join("l")).expect("rm l");
    write(&dir, "a", "now a file");
    write(&dir, "b/z", "now a dir");
    write(&dir, "l/q", "link became a dir");
    git(&dir, &["mv", "mv/old", "mv/new"]);
    git(&dir, &["add", "-A"]);
    git(&dir, &["commit", "-qm", "feature"]);
    let expected: Vec<String> = git(
        &dir,
        &["diff", "--name-only", "--no-renames", "main...HEAD"],
    )
    .lines()
    .map(str::to_string)
    .collect();
    match changes_against(&dir, Some("main")) {
        Changes::Known { paths, .. } => assert_eq!(paths, expected),
        Changes::Unknown(why) => panic!("change set unknown: {why}"),
    }
    assert!(expected.contains(&"mv/old".to_string()) && expected.contains(&"mv/new".to_string()));
}
