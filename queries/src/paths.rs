//! Path helpers over sorted, repo-relative, `/`-separated path lists.

/// The paths of a sorted list that lie below `dir` (`""` means all).
pub fn under<'a>(sorted: &'a [String], dir: &str) -> &'a [String] {
    let dir = dir.trim_end_matches('/');
    if dir.is_empty() || dir == "." {
        return sorted;
    }
    // In byte order, every string that starts with `dir/` sorts at or after
    // `dir/` and they form one contiguous run.
    let prefix = format!("{dir}/");
    let start = sorted.partition_point(|p| p.as_str() < prefix.as_str());
    let n = sorted[start..].partition_point(|p| p.starts_with(&prefix));
    &sorted[start..start + n]
}

/// `path` relative to directory `dir`: what follows `dir/`, or the whole
/// path when `dir` is the root (`""` or `"."`); `None` when `path` is not
/// strictly below `dir`.
///
/// The one place where a path is cut relative to a directory: it compares
/// and strips whole prefixes, never slices at a byte offset, so it cannot
/// panic, whatever the names (one byte long, multibyte, or `dir` itself).
pub fn relative<'a>(path: &'a str, dir: &str) -> Option<&'a str> {
    let dir = dir.trim_end_matches('/');
    if dir.is_empty() || dir == "." {
        return Some(path);
    }
    path.strip_prefix(dir)?
        .strip_prefix('/')
        .filter(|rest| !rest.is_empty())
}

/// Whether `path` lies strictly below directory `dir` (`""`: the root).
pub fn is_under(path: &str, dir: &str) -> bool {
    relative(path, dir).is_some()
}

/// `a/b/c` → `a/b`; a top-level path → `""`.
pub fn parent(path: &str) -> &str {
    path.rfind('/').map_or("", |i| &path[..i])
}

/// The last component of a path.
pub fn file_name(path: &str) -> &str {
    path.rfind('/').map_or(path, |i| &path[i + 1..])
}

/// Joins a directory and a relative path, normalising `.` and `..` lexically.
pub fn join(dir: &str, rel: &str) -> String {
    let mut parts: Vec<&str> = if rel.starts_with('/') {
        Vec::new()
    } else {
        dir.split('/')
            .filter(|s| !s.is_empty() && *s != ".")
            .collect()
    };
    for seg in rel.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    parts.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(xs: &[&str]) -> Vec<String> {
        let mut v: Vec<String> = xs.iter().map(|s| s.to_string()).collect();
        v.sort();
        v
    }

    #[test]
    fn under_is_the_contiguous_run_below_a_directory() {
        let all = v(&["a", "a-b/x", "a.txt", "a/b", "a/c/d", "ab/x", "b/a/x"]);
        assert_eq!(under(&all, "a"), &v(&["a/b", "a/c/d"])[..]);
        assert_eq!(under(&all, "a/c"), &v(&["a/c/d"])[..]);
        assert_eq!(under(&all, "b"), &v(&["b/a/x"])[..]);
        assert!(under(&all, "c").is_empty());
        assert_eq!(under(&all, "").len(), all.len());
    }

    #[test]
    fn relative_cuts_whole_components_and_never_panics() {
        assert_eq!(relative("misc/python/a.py", "misc/python"), Some("a.py"));
        assert_eq!(relative("misc/python/a.py", "misc/python/"), Some("a.py"));
        assert_eq!(relative("misc/pythonic/a.py", "misc/python"), None);
        assert_eq!(relative("misc/python", "misc/python"), None);
        assert_eq!(relative("misc/python/", "misc/python"), None);
        assert_eq!(relative("x", "misc/python"), None);
        // The root: the whole path, also for one-byte and multibyte names
        // (the slice `&path[root.len() + 1..]` panicked on both with `.`).
        for root in ["", ".", "./"] {
            assert_eq!(relative("a", root), Some("a"));
            assert_eq!(relative("é", root), Some("é"));
            assert_eq!(relative("ü/x.py", root), Some("ü/x.py"));
        }
        assert_eq!(relative("dé/x", "dé"), Some("x"));
        assert_eq!(relative("d", "dé"), None);
        assert!(is_under("a/b", "a"));
        assert!(!is_under("ab", "a"));
        assert!(is_under("a", ""));
    }

    #[test]
    fn join_normalises() {
        assert_eq!(join("src/a", "../b"), "src/b");
        assert_eq!(join("", "./x/y"), "x/y");
        assert_eq!(join("a/b", "c/./d"), "a/b/c/d");
    }
}
