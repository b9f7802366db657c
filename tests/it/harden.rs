//! Hardening at the edges (issue 11): pipetrim executes nothing from the
//! repository and writes nothing into it; odd file-system entries (paths
//! with newlines or non-UTF-8 bytes, a 100 MB file, a symlink to a
//! directory, a file replaced by a directory) each get a defined outcome.

use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use serde_json::Value as Json;

use crate::common::Fixture;

/// Every entry below `root` (`.git` included): path → (kind, mode, bytes).
fn snapshot(root: &Path) -> BTreeMap<Vec<u8>, (String, u32, Vec<u8>)> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            let rel = p
                .strip_prefix(root)
                .unwrap()
                .as_os_str()
                .as_bytes()
                .to_vec();
            let meta = std::fs::symlink_metadata(&p).unwrap();
            let mode = meta.permissions().mode();
            if meta.file_type().is_symlink() {
                let t = std::fs::read_link(&p).unwrap();
                out.insert(
                    rel,
                    ("link".into(), mode, t.as_os_str().as_bytes().to_vec()),
                );
            } else if meta.is_dir() {
                out.insert(rel, ("dir".into(), mode, Vec::new()));
                stack.push(p);
            } else {
                out.insert(rel, ("file".into(), mode, std::fs::read(&p).unwrap()));
            }
        }
    }
    out
}

#[test]
fn never_executes_or_writes_repository_code() {
    let f = Fixture::plain();
    let marker_dir = f.tmp.path().join("markers");
    std::fs::create_dir_all(&marker_dir).unwrap();
    let m = marker_dir.display().to_string();
    let payload = |name: &str| {
        format!(
            "open(\"{m}/{name}-open\", \"w\").write(\"x\")\n\
             __import__(\"os\").system(\"touch {m}/{name}-system\")\n\
             import subprocess; subprocess.run([\"touch\", \"{m}/{name}-subprocess\"])\n\
             exec(\"open('{m}/{name}-exec', 'w')\")\n"
        )
    };
    for p in [
        "test/smoke/mzcompose.py",
        "test/td/mzcompose.py",
        "src/storage/mzcompose.py",
        "misc/python/materialize/__init__.py",
        "misc/python/materialize/mzcompose/__init__.py",
        "misc/python/materialize/mzcompose/services/server.py",
    ] {
        let text = f.read(p);
        f.write(p, payload(&p.replace('/', "_")) + &text);
    }
    // A build script and a Dockerfile RUN: not ours to run either.
    f.write(
        "src/base/build.rs",
        format!("fn main() {{ std::fs::write(\"{m}/build-rs\", \"\").unwrap(); }}\n"),
    );
    f.append(
        "misc/images/ubuntu-base/Dockerfile",
        &format!("RUN touch {m}/docker-run\n"),
    );
    f.git(&["init", "-q", "-b", "main"]);
    f.commit("base");
    f.git(&["checkout", "-q", "-b", "feature"]);
    f.append("test/smoke/mzcompose.py", "\n# changed\n");
    f.append("src/base/src/lib.rs", "\n// changed\n");
    f.commit("change");

    let before = snapshot(&f.repo);
    let out_file = f.tmp.path().join("pipeline.yml");
    let out_arg = out_file.display().to_string();
    let runs: Vec<Vec<&str>> = vec![
        vec!["trim", "--base", "main"],
        vec!["trim", "--base", "main", "--format", "json"],
        vec!["trim", "--base", "main", "--output", &out_arg],
        vec!["images"],
        vec!["images", "--format", "json"],
        vec!["crates"],
        vec!["compositions"],
        vec!["compositions", "--lazy-imports"],
        vec!["explain", "smoke", "--base", "main"],
        vec!["affected", "test/smoke/mzcompose.py"],
        vec!["graph", "--base", "main"],
        vec!["graph", "--format", "json"],
        vec!["fingerprint"],
        vec!["fingerprint", "--format", "json"],
        vec!["soak", "--commits", "1"],
    ];
    for args in &runs {
        let out = f.pipetrim(args, &[]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let markers: Vec<_> = std::fs::read_dir(&marker_dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(markers.is_empty(), "repository code ran: {markers:?}");
    let after = snapshot(&f.repo);
    let changed: Vec<String> = before
        .keys()
        .chain(after.keys())
        .filter(|k| before.get(*k) != after.get(*k))
        .map(|k| String::from_utf8_lossy(k).into_owned())
        .collect();
    assert!(changed.is_empty(), "the repository changed: {changed:?}");
    assert!(out_file.exists(), "--output was written");
}

fn trim_json(f: &Fixture) -> Json {
    let out = f.pipetrim(&["trim", "--base", "main", "--format", "json"], &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn kept(plan: &Json) -> Vec<String> {
    plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["kept"] == true)
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect()
}

/// The example on `main`, `edit` committed on branch `feature`.
fn changed(edit: impl FnOnce(&Fixture)) -> Fixture {
    let f = Fixture::on_main();
    f.git(&["checkout", "-q", "-b", "feature"]);
    edit(&f);
    f.commit("change");
    f
}

#[test]
fn a_change_to_a_non_utf8_path_is_not_dropped() {
    let f = changed(|f| {
        let name = std::ffi::OsStr::from_bytes(b"misc/assets/bad\xff.json");
        std::fs::write(f.repo.join(name), "{}").unwrap();
    });
    let plan = trim_json(&f);
    let k = kept(&plan);
    // `*` and `misc/assets/*.json` match whatever the name's bytes are.
    assert!(k.contains(&"build-x86_64".to_string()), "{k:?}");
    assert!(k.contains(&"assets-check".to_string()), "{k:?}");
    // The other commands cope too.
    for args in [&["images"][..], &["graph", "--base", "main"]] {
        let out = f.pipetrim(args, &[]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // A fingerprint cannot cover a file it cannot name: the image that
    // holds it fails, naming it.
    let out = f.pipetrim(&["fingerprint"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("misc/assets/bad\u{FFFD}.json") && err.contains("rename"),
        "{err}"
    );
}

#[test]
fn a_path_with_a_newline_is_an_ordinary_path() {
    let f = changed(|f| f.write("misc/assets/new\nline.json", "{}"));
    let plan = trim_json(&f);
    assert!(kept(&plan).contains(&"assets-check".to_string()));
    let out = f.pipetrim(&["explain", "assets-check", "--base", "main"], &[]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("new\nline.json"));
    let out = f.pipetrim(&["fingerprint", "--format", "json"], &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_100_mb_image_input_trims_and_fails_fingerprint_clearly() {
    let f = changed(|f| {
        let file = std::fs::File::create(f.path("misc/assets/big.json")).unwrap();
        file.set_len(100_000_000).unwrap();
    });
    let plan = trim_json(&f);
    assert!(kept(&plan).contains(&"assets-check".to_string()));
    let out = f.pipetrim(&["fingerprint"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("misc/assets/big.json") && err.contains("larger than"),
        "{err}"
    );
    assert!(!err.contains("symlink"), "misleading hint: {err}");
}

#[test]
fn a_symlink_to_a_directory_as_an_image_input() {
    let f = changed(|f| {
        std::os::unix::fs::symlink("../images", f.path("misc/assets/dir.json")).unwrap()
    });
    let plan = trim_json(&f);
    assert!(kept(&plan).contains(&"assets-check".to_string()));
    let out = f.pipetrim(&["fingerprint", "--image", "assets"], &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("misc/assets/dir.json") && err.contains("directory"),
        "{err}"
    );
}

#[test]
fn a_manifest_replaced_by_a_directory() {
    for (path, step) in [
        ("misc/images/assets/mzbuild.yml", "build-x86_64"),
        ("test/smoke/mzcompose.py", "smoke"),
        ("src/storage/Cargo.toml", "storage"),
        ("ci/test/pipeline.template.yml", ""),
    ] {
        let f = changed(|f| {
            std::fs::remove_file(f.path(path)).unwrap();
            f.write(&format!("{path}/inner"), "x");
        });
        let out = f.pipetrim(&["trim", "--base", "main", "--format", "json"], &[]);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        match out.status.code() {
            Some(0) => {
                let plan: Json = serde_json::from_slice(&out.stdout).unwrap();
                assert!(kept(&plan).contains(&step.to_string()), "{path}: {err}");
            }
            Some(2) => assert!(err.contains(path), "{path}: {err}"),
            c => panic!("{path}: exit {c:?}: {err}"),
        }
        assert!(!err.contains("panicked"), "{path}: {err}");
    }
}

#[test]
fn changed_files_lists_of_random_bytes() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, RngSeed, TestRunner};
    let f = Fixture::on_main();
    let list = f.tmp.path().join("changed.txt");
    let list_arg = list.display().to_string();
    let mut runner = TestRunner::new(Config {
        cases: 24,
        rng_seed: RngSeed::Fixed(11),
        failure_persistence: None,
        ..Config::default()
    });
    let strat = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..256),
        prop::collection::vec("[ -~\t\r]{0,30}|\\./[a-z/]{0,10}|[a-z/\\*\\[]{0,12}", 0..12)
            .prop_map(|l| l.join("\n").into_bytes()),
    ];
    runner
        .run(&strat, |bytes| {
            std::fs::write(&list, &bytes).unwrap();
            let out = f.pipetrim(
                &["trim", "--changed-files", &list_arg, "--format", "json"],
                &[],
            );
            let err = String::from_utf8_lossy(&out.stderr);
            prop_assert!(matches!(out.status.code(), Some(0 | 2)), "{err}");
            prop_assert!(!err.contains("panicked"), "{err}");
            if std::str::from_utf8(&bytes).is_err() {
                prop_assert_eq!(out.status.code(), Some(2), "{}", err);
                prop_assert!(err.contains("changed.txt"), "{}", err);
            }
            Ok(())
        })
        .unwrap();
}
