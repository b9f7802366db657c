//! `--python-root` values, normalised and checked before use (SPEC §10).
//!
//! A root that names nothing would leave the module index silently empty:
//! every first-party import would then look third-party, and steps would be
//! trimmed although their compositions import the changed module. So a
//! root is refused (exit 2, naming it) unless it is a directory of the
//! repository that holds Python modules at its top level.

use std::path::{Component, Path};

use crate::error::Error;

/// The first-party roots for `--repo repo` and the given `--python-root`
/// values: the default (`misc/python`, unchecked: a repository without
/// Python is fine) when none is given; otherwise each value normalised to a
/// repo-relative, `/`-separated path (`./x`, `x/`, `x//y`, an absolute path
/// inside the repository; `.` is the repository root, `""`), deduplicated,
/// and checked on disk.
///
/// When `repo` is a bare git directory (`soak` replays history from one),
/// there is no work tree to check: the values are only normalised.
pub fn python_roots(
    repo: &Path,
    given: &[String],
    default: &[String],
) -> Result<Vec<String>, Error> {
    if given.is_empty() {
        return Ok(default.to_vec());
    }
    let check_disk = !is_bare_git_dir(repo);
    let mut out: Vec<String> = Vec::new();
    for value in given {
        let root = normalise(repo, value)?;
        if check_disk {
            check(repo, value, &root)?;
        }
        if !out.contains(&root) {
            out.push(root);
        }
    }
    Ok(out)
}

fn usage(value: &str, what: impl std::fmt::Display) -> Error {
    Error::Usage(format!(
        "--python-root `{value}`: {what} (hint: give the directory that holds the first-party \
         packages, relative to --repo, e.g. `misc/python`)"
    ))
}

/// `value` as a repo-relative path without `.`, `..`, empty components or a
/// trailing `/`.
fn normalise(repo: &Path, value: &str) -> Result<String, Error> {
    if value.is_empty() {
        return Err(usage(value, "is empty"));
    }
    let path = Path::new(value);
    let rel = if path.is_absolute() {
        let abs = path
            .canonicalize()
            .map_err(|e| usage(value, format!("cannot be resolved: {e}")))?;
        let top = repo
            .canonicalize()
            .map_err(|e| usage(value, format!("the repository cannot be resolved: {e}")))?;
        abs.strip_prefix(&top)
            .map_err(|_| {
                usage(
                    value,
                    format!("is outside the repository `{}`", top.display()),
                )
            })?
            .to_path_buf()
    } else {
        path.to_path_buf()
    };
    let mut parts: Vec<&str> = Vec::new();
    for c in rel.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if parts.pop().is_none() {
                    return Err(usage(value, "is outside the repository"));
                }
            }
            Component::Normal(s) => match s.to_str() {
                Some(s) => parts.push(s),
                None => return Err(usage(value, "is not valid UTF-8")),
            },
            Component::RootDir | Component::Prefix(_) => {
                return Err(usage(value, "is outside the repository"));
            }
        }
    }
    Ok(parts.join("/"))
}

/// The root must be a directory holding a Python module at its top level
/// (a `*.py` file, or a package: a directory with `__init__.py`), and must
/// not itself be a package (then its parent is the root).
fn check(repo: &Path, value: &str, root: &str) -> Result<(), Error> {
    let dir = repo.join(root);
    let shown = if root.is_empty() { "." } else { root };
    let meta = std::fs::metadata(&dir).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => {
            usage(value, format!("`{shown}` does not exist in the repository"))
        }
        _ => usage(value, format!("`{shown}` cannot be read: {e}")),
    })?;
    if !meta.is_dir() {
        return Err(usage(value, format!("`{shown}` is not a directory")));
    }
    if dir.join("__init__.py").is_file() {
        let parent = match root.rsplit_once('/') {
            Some((p, _)) => p,
            None => ".",
        };
        return Err(usage(
            value,
            format!(
                "`{shown}` is a package (it has `__init__.py`), not the directory that holds \
                 packages; its parent `{parent}` is"
            ),
        ));
    }
    let entries = std::fs::read_dir(&dir)
        .map_err(|e| usage(value, format!("`{shown}` cannot be read: {e}")))?;
    let holds_module = entries.flatten().any(|e| {
        let path = e.path();
        if path.is_dir() {
            path.join("__init__.py").is_file()
        } else {
            path.extension().is_some_and(|x| x == "py")
        }
    });
    if !holds_module {
        return Err(usage(
            value,
            format!(
                "`{shown}` holds no Python module (no `*.py` file and no package with \
                 `__init__.py` directly in it)"
            ),
        ));
    }
    Ok(())
}

/// A git directory without a work tree (`HEAD`, `objects/`, `refs/`).
fn is_bare_git_dir(repo: &Path) -> bool {
    repo.join("HEAD").is_file() && repo.join("objects").is_dir() && repo.join("refs").is_dir()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> tempfile::TempDir {
        let t = tempfile::tempdir().expect("temp dir");
        for (p, body) in [
            ("misc/python/materialize/__init__.py", ""),
            ("misc/python/materialize/ui.py", ""),
            ("tools/run.py", ""),
            ("doc/index.md", ""),
        ] {
            let path = t.path().join(p);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(path, body).expect("write");
        }
        t
    }

    fn roots(repo: &Path, given: &[&str]) -> Result<Vec<String>, String> {
        let given: Vec<String> = given.iter().map(|s| s.to_string()).collect();
        python_roots(repo, &given, &["misc/python".to_string()]).map_err(|e| e.to_string())
    }

    #[test]
    fn spellings_of_one_root_are_normalised() {
        let t = tree();
        let abs = t.path().join("misc/python");
        for v in [
            "misc/python",
            "./misc/python",
            "misc/python/",
            "misc//python",
            "misc/./python/",
            "misc/x/../python",
            abs.to_str().expect("utf-8 temp path"),
        ] {
            assert_eq!(
                roots(t.path(), &[v]),
                Ok(vec!["misc/python".to_string()]),
                "{v}"
            );
        }
        assert_eq!(
            roots(t.path(), &["./misc/python", "misc/python/"]),
            Ok(vec!["misc/python".to_string()])
        );
        assert_eq!(roots(t.path(), &[]), Ok(vec!["misc/python".to_string()]));
        assert_eq!(roots(t.path(), &["tools"]), Ok(vec!["tools".to_string()]));
    }

    #[test]
    fn roots_that_name_no_modules_are_usage_errors() {
        let t = tree();
        let outside = tempfile::tempdir().expect("temp dir");
        for (v, needle) in [
            ("nope", "`nope` does not exist"),
            ("./nope/", "`nope` does not exist"),
            ("doc", "holds no Python module"),
            ("misc", "holds no Python module"),
            (".", "holds no Python module"),
            ("doc/index.md", "is not a directory"),
            ("misc/python/materialize", "is a package"),
            ("..", "outside the repository"),
            ("../x", "outside the repository"),
            ("", "is empty"),
        ] {
            let e = roots(t.path(), &[v]).expect_err(v);
            assert!(e.contains(needle), "{v}: {e}");
            assert!(e.contains(&format!("--python-root `{v}`")), "{v}: {e}");
        }
        let v = outside.path().to_str().expect("utf-8 temp path");
        let e = roots(t.path(), &[v]).expect_err("outside");
        assert!(e.contains("outside the repository"), "{e}");
    }
}
