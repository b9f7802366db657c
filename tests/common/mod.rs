//! Fixture repositories for the hardening tests: a copy of the bundled
//! example in a temp dir, optionally a git repository with fixed identity.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/example");

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), &dst).unwrap();
        }
    }
}

/// A temp directory with `home/` and `repo/` (a copy of the example).
pub struct Fixture {
    pub tmp: tempfile::TempDir,
    pub home: PathBuf,
    pub repo: PathBuf,
}

impl Fixture {
    pub fn plain() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let home = tmp.path().join("home");
        let repo = tmp.path().join("repo");
        std::fs::create_dir_all(&home).unwrap();
        copy_dir(Path::new(EXAMPLE), &repo);
        Fixture { tmp, home, repo }
    }

    /// The example committed on `main`.
    pub fn git() -> Self {
        let f = Self::plain();
        f.run_git(&["init", "-q", "-b", "main"]);
        f.commit("base");
        f
    }

    pub fn run_git(&self, args: &[&str]) -> String {
        let out = Command::new("git")
            .args(args)
            .current_dir(&self.repo)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &self.home)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_NAME", "Test")
            .env("GIT_AUTHOR_EMAIL", "test@example.com")
            .env("GIT_COMMITTER_NAME", "Test")
            .env("GIT_COMMITTER_EMAIL", "test@example.com")
            .env("GIT_AUTHOR_DATE", "2024-01-01T00:00:00Z")
            .env("GIT_COMMITTER_DATE", "2024-01-01T00:00:00Z")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    pub fn commit(&self, msg: &str) {
        self.run_git(&["add", "-A"]);
        self.run_git(&["commit", "-q", "--allow-empty", "-m", msg]);
    }

    pub fn path(&self, p: &str) -> PathBuf {
        self.repo.join(p)
    }

    pub fn write(&self, p: &str, text: impl AsRef<[u8]>) {
        let p = self.path(p);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    pub fn read(&self, p: &str) -> String {
        std::fs::read_to_string(self.path(p)).unwrap()
    }

    pub fn edit(&self, p: &str, from: &str, to: &str) {
        let text = self.read(p);
        assert!(text.contains(from), "{p} does not contain {from:?}");
        self.write(p, text.replacen(from, to, 1));
    }

    pub fn append(&self, p: &str, text: &str) {
        let t = self.read(p);
        self.write(p, t + text);
    }

    /// Runs `pipetrim ARGS --repo REPO` with a clean environment.
    pub fn pipetrim(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        self.pipetrim_in(&self.repo, args, env)
    }

    pub fn pipetrim_in(&self, dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_pipetrim"));
        cmd.env(
            "PIPETRIM_CACHE_DIR",
            std::env::temp_dir().join("pipetrim-test-cache"),
        );
        cmd.args(args)
            .arg("--repo")
            .arg(dir)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &self.home)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("BUILDKITE_BRANCH", "feature")
            .stdin(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        run_with_timeout(cmd, std::time::Duration::from_secs(60))
    }
}

/// Runs `cmd`, killing it (and failing) after `limit`.
pub fn run_with_timeout(mut cmd: Command, limit: std::time::Duration) -> Output {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let id = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            let _ = Command::new("kill").arg("-9").arg(id.to_string()).status();
            panic!("{cmd:?} did not finish within {limit:?}");
        }
    }
}

/// Runs `f` on a thread, failing the test if it takes longer than `limit`.
pub fn within<T: Send + 'static>(
    limit: std::time::Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .stack_size(8 << 20)
        .spawn(move || {
            let _ = tx.send(f());
        })
        .unwrap();
    rx.recv_timeout(limit)
        .unwrap_or_else(|_| panic!("did not finish within {limit:?} (hang or panic)"))
}
