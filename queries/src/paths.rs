//! Path helpers over sorted, repo-relative, `/`-separated path lists.

/// The paths of a sorted list that lie below `dir` (`""` means all).
pub fn under<'a>(sorted: &'a [String], dir: &str) -> &'a [String] {
    &sorted[under_range(sorted, dir)]
}

/// Where [`under`]'s paths are in `sorted`.
pub fn under_range(sorted: &[String], dir: &str) -> std::ops::Range<usize> {
    let dir = dir.trim_end_matches('/');
    if dir.is_empty() || dir == "." {
        return 0..sorted.len();
    }
    // In byte order, every string that starts with `dir/` sorts at or after
    // `dir/` and they form one contiguous run.
    let prefix = format!("{dir}/");
    let start = sorted.partition_point(|p| p.as_str() < prefix.as_str());
    let n = sorted[start..].partition_point(|p| p.starts_with(&prefix));
    start..start + n
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

/// Entries filed by a directory or path they cover, for finding which of
/// many pathspec-like entries a given path can match: an entry filed under
/// `d` can only match `d` itself or paths below it, so the candidates for
/// a path are those filed under it, under one of its ancestors or under
/// the root (`""`). A superset: the caller checks each. Keys are
/// normalised as [`relative`] reads a directory (trailing `/` dropped,
/// `.` is the root).
#[derive(Debug, PartialEq, Eq)]
pub struct DirIndex<T> {
    by_dir: rustc_hash::FxHashMap<String, Vec<T>>,
}

impl<T> Default for DirIndex<T> {
    fn default() -> Self {
        DirIndex {
            by_dir: Default::default(),
        }
    }
}

impl<T> DirIndex<T> {
    /// Files `entry` under `dir`.
    pub fn insert(&mut self, dir: &str, entry: T) {
        let d = dir.trim_end_matches('/');
        let d = if d == "." { "" } else { d };
        self.by_dir.entry(d.to_string()).or_default().push(entry);
    }

    /// The entries that may match `path`.
    pub fn candidates<'a>(&'a self, path: &'a str) -> impl Iterator<Item = &'a T> + 'a {
        std::iter::once("")
            .chain(path.match_indices('/').map(move |(i, _)| &path[..i]))
            .chain(std::iter::once(path))
            .filter_map(|d| self.by_dir.get(d))
            .flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dir_index_offers_entries_at_and_above_a_path() {
        let mut ix = DirIndex::default();
        for (dir, e) in [
            ("", 0),
            ("a", 1),
            ("a/b/", 2),
            ("a/b/c", 3),
            ("ab", 4),
            (".", 5),
        ] {
            ix.insert(dir, e);
        }
        let got = |p: &str| {
            let mut v: Vec<i32> = ix.candidates(p).copied().collect();
            v.sort();
            v
        };
        assert_eq!(got("a/b/c"), [0, 1, 2, 3, 5]);
        assert_eq!(got("a/bc"), [0, 1, 5]);
        assert_eq!(got("ab/x"), [0, 4, 5]);
        assert_eq!(got("x"), [0, 5]);
    }

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
