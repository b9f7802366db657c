//! `watch --format json` prints a line for every evaluation (issue 16),
//! also one that changes nothing, so a tool can tell that each edit was
//! processed; but not for its own output redirected into the tree.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::common::{self, Fixture};

/// Kills the watcher when the test ends, passed or not.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn watch(f: &Fixture) -> std::process::Command {
    common::pipetrim(
        &f.repo,
        &f.home,
        &["watch", "--format", "json", "--base", "main"],
    )
}

/// The next JSON line, within a generous timeout.
fn next(rx: &mpsc::Receiver<String>, what: &str) -> serde_json::Value {
    let line = rx
        .recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|_| panic!("no line for {what}"));
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON: {line:?}: {e}"))
}

const MAIN_RS: &str = "src/testdrive/src/main.rs";

#[test]
fn every_evaluation_is_a_line() {
    let f = Fixture::git_repo();
    let mut child = Child(
        watch(&f)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn"),
    );
    let stdout = child.0.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let first = next(&rx, "the first answer");
    assert_eq!(first["seq"], 0);

    f.write(MAIN_RS, "fn main() { println!(\"1\"); }\n");
    let mut v = next(&rx, "the edit");
    // An editor may write in two steps: wait for the answer naming it.
    while v["added"].as_array().is_none_or(|a| a.is_empty()) {
        v = next(&rx, "the edit's answer");
    }
    let seq = v["seq"].as_u64().expect("seq");
    // The same file edited again: nothing moves, and the line still comes.
    f.write(MAIN_RS, "fn main() { println!(\"2\"); }\n");
    let v = next(&rx, "an edit that moves nothing");
    assert_eq!(v["seq"].as_u64(), Some(seq + 1), "{v}");
    assert_eq!(v["added"], serde_json::json!([]), "{v}");
    assert_eq!(v["removed"], serde_json::json!([]), "{v}");
    assert_eq!(v["changed_files"], serde_json::json!([MAIN_RS]), "{v}");
    for k in ["needed", "latency_ms"] {
        assert!(v.get(k).is_some(), "no `{k}` in {v}");
    }
}

#[test]
fn output_redirected_into_the_tree_does_not_feed_back() {
    let f = Fixture::git_repo();
    let out_path = f.path("watch.jsonl");
    let out = std::fs::File::create(&out_path).expect("create");
    let _child = Child(
        watch(&f)
            .stdout(Stdio::from(out))
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn"),
    );
    let lines = || {
        std::fs::read_to_string(&out_path)
            .map(|s| s.lines().count())
            .unwrap_or(0)
    };
    let wait_until = |pred: &dyn Fn(usize) -> bool| {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !pred(lines()) {
            assert!(Instant::now() < deadline, "stuck at {} lines", lines());
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    wait_until(&|n| n >= 1);
    f.write(MAIN_RS, "fn main() { println!(\"1\"); }\n");
    wait_until(&|n| n >= 2);
    // Each line is a write into the watched tree; once settled, no more.
    std::thread::sleep(Duration::from_millis(1500));
    let settled = lines();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(lines(), settled, "the output feeds back");
    assert!(settled < 6, "{settled} lines for one edit");
}
