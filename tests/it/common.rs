//! What the integration tests share: the bundled example, fixture
//! repositories in temp dirs, and hermetic runs of git and of the binary.
//!
//! Hermetic means: nothing of the caller's environment but `PATH`, `HOME`
//! (and git's XDG configuration) below a directory the test owns, no system
//! git configuration, and a fixed git identity and date, so a test sees
//! neither the developer's configuration nor CI's variables.

use std::ffi::OsStr;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The bundled example repository (a copy of Materialize's layout).
pub const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/example");

pub fn example() -> PathBuf {
    PathBuf::from(EXAMPLE)
}

/// An empty home directory for runs that need none of their own.
pub fn home() -> PathBuf {
    let home = Path::new(env!("CARGO_TARGET_TMPDIR")).join("it-home");
    std::fs::create_dir_all(&home).expect("create the shared test home");
    home
}

/// Copies the tree `from` into `to` (created if missing).
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

/// Writes `root/path`, creating its directories.
pub fn write(root: &Path, path: &str, content: impl AsRef<[u8]>) {
    let p = root.join(path);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, content).unwrap();
}

/// `program` with a hermetic environment (see the module doc) below `home`.
pub fn hermetic(program: impl AsRef<OsStr>, home: &Path) -> Command {
    let mut cmd = Command::new(program);
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "Test")
        .env("GIT_AUTHOR_EMAIL", "test@example.com")
        .env("GIT_COMMITTER_NAME", "Test")
        .env("GIT_COMMITTER_EMAIL", "test@example.com")
        .env("GIT_AUTHOR_DATE", "2024-01-01T00:00:00Z")
        .env("GIT_COMMITTER_DATE", "2024-01-01T00:00:00Z")
        // One persistent cache for every run of the suite (runs in parallel
        // share it, as CI jobs on one agent do), never the user's.
        .env("PIPETRIM_CACHE_DIR", test_cache_dir());
    cmd
}

/// The persistent cache the binary's runs share, below the test target dir.
pub fn test_cache_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("it-cache")
}

/// Runs `cmd` and returns its stdout; fails the test if it fails.
pub fn stdout_of(mut cmd: Command) -> Vec<u8> {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Runs git in `dir`, hermetically below `home`; fails the test if git fails.
pub fn git_bytes(dir: &Path, home: &Path, args: &[&str]) -> Vec<u8> {
    let mut cmd = hermetic("git", home);
    cmd.args(args).current_dir(dir);
    stdout_of(cmd)
}

/// [`git_bytes`] as text.
pub fn git(dir: &Path, home: &Path, args: &[&str]) -> String {
    String::from_utf8_lossy(&git_bytes(dir, home, args)).into_owned()
}

/// The binary under test on `repo`, hermetic below `home`, on a feature
/// branch as Buildkite would name it, with no stdin.
pub fn pipetrim(repo: &Path, home: &Path, args: &[&str]) -> Command {
    let mut cmd = hermetic(env!("CARGO_BIN_EXE_pipetrim"), home);
    cmd.arg("--repo")
        .arg(repo)
        .args(args)
        .env("BUILDKITE_BRANCH", "feature")
        .stdin(Stdio::null());
    cmd
}

/// Runs the binary on `repo` with the shared home: (exit code, stdout, stderr).
pub fn run(repo: &Path, args: &[&str]) -> (i32, String, String) {
    let r = Run::of(pipetrim(repo, &home(), args), None);
    (r.code, r.stdout, r.stderr)
}

/// What a run printed, and how it exited.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Runs `cmd`, feeding `stdin` when given.
    pub fn of(mut cmd: Command, stdin: Option<&str>) -> Run {
        if stdin.is_some() {
            cmd.stdin(Stdio::piped());
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        if let Some(text) = stdin {
            let written = child
                .stdin
                .take()
                .expect("stdin was piped")
                .write_all(text.as_bytes());
            // A run that exits before reading stdin (a usage error) closes
            // the pipe: that is its answer, not the test's failure.
            if let Err(e) = written
                && e.kind() != std::io::ErrorKind::BrokenPipe
            {
                panic!("writing the child's stdin: {e}");
            }
        }
        let Output {
            status,
            stdout,
            stderr,
        } = child.wait_with_output().unwrap();
        Run {
            code: status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        }
    }

    pub fn ok(&self) -> &Self {
        assert_eq!(self.code, 0, "exit code; stderr:\n{}", self.stderr);
        self
    }

    pub fn json(&self) -> serde_json::Value {
        self.ok();
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}\n{}", self.stdout, self.stderr))
    }

    pub fn yaml(&self) -> serde_yaml_ng::Value {
        self.ok();
        serde_yaml_ng::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not YAML ({e}):\n{}", self.stdout))
    }
}

/// A temp directory with `home/` and `repo/` (a copy of the example).
pub struct Fixture {
    pub tmp: tempfile::TempDir,
    pub home: PathBuf,
    pub repo: PathBuf,
}

impl Fixture {
    /// A plain copy of the example (no git).
    pub fn plain() -> Self {
        Self::copy_of(Path::new(EXAMPLE))
    }

    /// A plain copy of the tree `src` (no git).
    pub fn copy_of(src: &Path) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let home = tmp.path().join("home");
        let repo = tmp.path().join("repo");
        std::fs::create_dir_all(&home).unwrap();
        copy_dir(src, &repo);
        Fixture { tmp, home, repo }
    }

    /// The example committed on `main`.
    pub fn on_main() -> Self {
        let f = Self::plain();
        f.git(&["init", "-q", "-b", "main"]);
        f.commit("base");
        f
    }

    /// The example committed on `main` (after `setup`), and branch `feature`
    /// checked out.
    pub fn git_with(setup: impl FnOnce(&Fixture)) -> Self {
        let f = Self::plain();
        setup(&f);
        f.git(&["init", "-q", "-b", "main"]);
        f.commit("base");
        f.git(&["checkout", "-q", "-b", "feature"]);
        f
    }

    pub fn git_repo() -> Self {
        Self::git_with(|_| {})
    }

    pub fn git(&self, args: &[&str]) -> String {
        self.git_in(&self.repo, args)
    }

    pub fn git_in(&self, dir: &Path, args: &[&str]) -> String {
        git(dir, &self.home, args)
    }

    pub fn commit(&self, msg: &str) {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "--allow-empty", "-m", msg]);
    }

    pub fn path(&self, p: &str) -> PathBuf {
        self.repo.join(p)
    }

    /// Makes the fixture look like a CI checkout, whatever the clock did
    /// while it was made: every work-tree file older than the index (mtimes
    /// ten seconds back, then the index refreshed; a file written in the
    /// second the index was written is racily clean, and a run cannot take
    /// its blob id from the index), and every directory last changed more
    /// than the racy window of directory listings ago (100 ms: a listing
    /// taken sooner is not kept, so a later run would keep it).
    pub fn settle(&self) {
        fn backdate(dir: &Path, when: std::time::SystemTime) {
            for e in std::fs::read_dir(dir).unwrap() {
                let e = e.unwrap();
                let t = e.file_type().unwrap();
                if t.is_dir() && e.file_name() != ".git" {
                    backdate(&e.path(), when);
                } else if t.is_file() {
                    let f = std::fs::File::options().write(true).open(e.path()).unwrap();
                    f.set_modified(when).unwrap();
                }
            }
        }
        let when = std::time::SystemTime::now() - std::time::Duration::from_secs(10);
        backdate(&self.repo, when);
        self.git(&["update-index", "-q", "--refresh"]);
        // The window counts from a directory's ctime, which cannot be set
        // back: wait it out.
        std::thread::sleep(std::time::Duration::from_millis(150));
    }

    pub fn write(&self, p: &str, text: impl AsRef<[u8]>) {
        write(&self.repo, p, text);
    }

    pub fn read(&self, p: &str) -> String {
        std::fs::read_to_string(self.path(p)).unwrap()
    }

    /// Replaces `from` by `to` in file `p` (which must contain it).
    pub fn edit(&self, p: &str, from: &str, to: &str) {
        let text = self.read(p);
        assert!(text.contains(from), "{p} does not contain {from:?}");
        self.write(p, text.replacen(from, to, 1));
    }

    pub fn append(&self, p: &str, text: &str) {
        let t = self.read(p);
        self.write(p, t + text);
    }

    /// Runs `pipetrim ARGS` on the fixture, failing after a minute.
    pub fn pipetrim(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = pipetrim(&self.repo, &self.home, args);
        cmd.envs(env.iter().copied());
        run_with_timeout(cmd, std::time::Duration::from_secs(60))
    }

    /// Runs `pipetrim trim ARGS` on the fixture.
    pub fn trim(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        run_trim(&self.repo, &self.home, args, env, None)
    }
}

/// Runs `pipetrim trim ARGS` on `dir`, feeding `stdin` when given.
pub fn run_trim(
    dir: &Path,
    home: &Path,
    args: &[&str],
    env: &[(&str, &str)],
    stdin: Option<&str>,
) -> Run {
    let mut cmd = pipetrim(dir, home, &["trim"]);
    cmd.args(args).envs(env.iter().copied());
    Run::of(cmd, stdin)
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
