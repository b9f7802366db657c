//! The change set equals `git diff --name-only BASE...HEAD` (plus both sides
//! of renames), including a directory replaced by a file, a file replaced by
//! a directory and a symlink replaced by a directory.

use std::path::Path;

use pipetrim::repo::git::{Changes, changes_against};

use crate::common::{self, write};

fn git(dir: &Path, args: &[&str]) -> String {
    common::git(dir, &dir.join(".home"), args)
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
