//! mzbuild images (SPEC §2): `mzbuild.yml` files, Dockerfile `MZFROM` lines,
//! and the image graph.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_yaml_ng::Value;

use crate::db::{Db, File, FileSet, Options, content_text};
use crate::diag::{Diagnostic, line_of};
use crate::paths;
use crate::python::analysis::composition_inputs;
use crate::yaml;

/// A pre-image action of an image.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum PreImage {
    CargoBuild {
        bins: Vec<String>,
        examples: Vec<String>,
    },
    Copy {
        source: String,
        destination: String,
        matching: String,
    },
}

/// The parsed `mzbuild.yml` of one image.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MzbuildConfig {
    pub name: String,
    pub publish: bool,
    pub mainline: bool,
    pub description: Option<String>,
    pub pre_images: Vec<PreImage>,
}

/// One image of the repository.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Image {
    pub name: String,
    /// The context directory (where `mzbuild.yml` lives).
    pub dir: String,
    pub publish: bool,
    pub mainline: bool,
    /// Image names from `MZFROM` lines, in Dockerfile order (repeats kept, as the reference lists them).
    pub depends_on: Vec<String>,
    pub pre_images: Vec<PreImage>,
}

/// All images, by name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct ImageGraph {
    pub images: BTreeMap<String, Image>,
}

impl ImageGraph {
    pub fn get(&self, name: &str) -> Option<&Image> {
        self.images.get(name)
    }

    /// `name` and every image it depends on, transitively, sorted.
    pub fn closure(&self, name: &str) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        let mut stack = vec![name.to_string()];
        while let Some(n) = stack.pop() {
            if !out.insert(n.clone()) {
                continue;
            }
            if let Some(img) = self.images.get(&n) {
                stack.extend(img.depends_on.iter().cloned());
            }
        }
        out
    }

    /// `roots` and everything they depend on, dependencies first, in the
    /// reference's resolution order: roots as given, each image's
    /// dependencies by name, depth first. A cycle (which [`image_graph`]
    /// refuses) is cut where it is met.
    pub fn dependency_order<'a>(&self, roots: impl IntoIterator<Item = &'a str>) -> Vec<String> {
        depth_first(&self.images, roots).order
    }
}

/// A depth-first walk of the `MZFROM` edges.
struct DepthFirst {
    /// Every image visited, dependencies before dependents.
    order: Vec<String>,
    /// The first cycle met, as the path from its first image back to it.
    cycle: Option<Vec<String>>,
}

/// The one depth-first walk of the image graph that the dependency order,
/// the cycle check and the fingerprints share: roots in the order given,
/// each image's dependencies sorted by name, as the reference visits them
/// (so its build order, its cycle message and its hashes come out the same).
fn depth_first<'a>(
    images: &BTreeMap<String, Image>,
    roots: impl IntoIterator<Item = &'a str>,
) -> DepthFirst {
    fn visit(
        images: &BTreeMap<String, Image>,
        name: &str,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
        walk: &mut DepthFirst,
    ) {
        if done.contains(name) {
            return;
        }
        if path.iter().any(|p| p == name) {
            if walk.cycle.is_none() {
                let mut cycle = path.clone();
                cycle.push(name.to_string());
                walk.cycle = Some(cycle);
            }
            return;
        }
        path.push(name.to_string());
        if let Some(img) = images.get(name) {
            let mut deps: Vec<&String> = img.depends_on.iter().collect();
            deps.sort();
            for d in deps {
                visit(images, d, path, done, walk);
            }
        }
        path.pop();
        done.insert(name.to_string());
        walk.order.push(name.to_string());
    }
    let mut walk = DepthFirst {
        order: Vec::new(),
        cycle: None,
    };
    let mut done = BTreeSet::new();
    for name in roots {
        visit(images, name, &mut Vec::new(), &mut done, &mut walk);
    }
    walk
}

/// How a parsed `mzbuild.yml` is kept in the persistent cache (the
/// internally tagged [`PreImage`] of the JSON output cannot be read back by
/// a binary format).
#[derive(serde::Serialize, serde::Deserialize)]
struct CachedMzbuild {
    name: String,
    publish: bool,
    mainline: bool,
    description: Option<String>,
    pre_images: Vec<CachedPreImage>,
}

#[derive(serde::Serialize, serde::Deserialize)]
enum CachedPreImage {
    CargoBuild {
        bins: Vec<String>,
        examples: Vec<String>,
    },
    Copy {
        source: String,
        destination: String,
        matching: String,
    },
}

impl CachedMzbuild {
    fn of(c: &MzbuildConfig) -> Self {
        CachedMzbuild {
            name: c.name.clone(),
            publish: c.publish,
            mainline: c.mainline,
            description: c.description.clone(),
            pre_images: c
                .pre_images
                .iter()
                .map(|p| match p.clone() {
                    PreImage::CargoBuild { bins, examples } => {
                        CachedPreImage::CargoBuild { bins, examples }
                    }
                    PreImage::Copy {
                        source,
                        destination,
                        matching,
                    } => CachedPreImage::Copy {
                        source,
                        destination,
                        matching,
                    },
                })
                .collect(),
        }
    }

    fn restore(self) -> MzbuildConfig {
        MzbuildConfig {
            name: self.name,
            publish: self.publish,
            mainline: self.mainline,
            description: self.description,
            pre_images: self
                .pre_images
                .into_iter()
                .map(|p| match p {
                    CachedPreImage::CargoBuild { bins, examples } => {
                        PreImage::CargoBuild { bins, examples }
                    }
                    CachedPreImage::Copy {
                        source,
                        destination,
                        matching,
                    } => PreImage::Copy {
                        source,
                        destination,
                        matching,
                    },
                })
                .collect(),
        }
    }
}

/// The cached encoding of a fixed `mzbuild.yml`, for the schema pin.
#[cfg(test)]
pub(crate) fn cached_sample() -> Option<Vec<u8>> {
    let c = parse_mzbuild(
        "a/mzbuild.yml",
        "name: x\npre-image:\n  - type: cargo-build\n    bin: [a]\n  - type: copy\n    source: s\n    destination: d\n",
    )
    .ok()?;
    crate::cache::encode(&CachedMzbuild::of(&c))
}

/// Parses one `mzbuild.yml`. A successful parse is kept in the persistent
/// cache (errors name the path, so they are recomputed).
#[salsa::tracked(returns(ref))]
pub fn mzbuild_config(db: &dyn Db, file: File) -> Result<MzbuildConfig, Diagnostic> {
    let path = file.path(db);
    crate::cache::leaf(
        db,
        crate::cache::Kind::Mzbuild,
        file,
        |content| {
            let text = content_text(content).map_err(|e| Diagnostic::in_file(path, e))?;
            parse_mzbuild(path, text)
        },
        |r| r.as_ref().ok().map(CachedMzbuild::of),
        |c| Ok(c.restore()),
    )
}

fn parse_mzbuild(path: &str, text: &str) -> Result<MzbuildConfig, Diagnostic> {
    let doc = yaml::parse(path, text)?;
    let err = |msg: String, needle: &str| Diagnostic::in_file(path, msg).near(text, needle);
    if !doc.is_mapping() {
        return Err(Diagnostic::in_file(path, "mzbuild.yml must be a mapping")
            .hint("start the file with `name: <image-name>`"));
    }
    let name = match yaml::get(&doc, "name") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(_) => return Err(err("`name` must be a non-empty string".into(), "name")),
        None => {
            return Err(Diagnostic::in_file(path, "missing `name`")
                .hint("every mzbuild.yml needs `name: <image-name>`"));
        }
    };
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
    {
        return Err(err(
            format!(
                "mzbuild image name `{name}` contains invalid character {bad:?}; only alphanumerics and hyphens allowed"
            ),
            "name",
        ));
    }
    let bool_key = |key: &str| -> Result<bool, Diagnostic> {
        match yaml::get(&doc, key) {
            None | Some(Value::Null) => Ok(true),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(err(format!("`{key}` must be true or false"), key)),
        }
    };
    let publish = bool_key("publish")?;
    let mainline = bool_key("mainline")?;
    let description = yaml::get(&doc, "description").and_then(yaml::scalar_string);
    let mut pre_images = Vec::new();
    match yaml::get(&doc, "pre-image") {
        None | Some(Value::Null) => {}
        Some(Value::Sequence(items)) => {
            for item in items {
                pre_images.push(parse_pre_image(path, text, item)?);
            }
        }
        Some(_) => return Err(err("`pre-image` must be a list".into(), "pre-image")),
    }
    Ok(MzbuildConfig {
        name,
        publish,
        mainline,
        description,
        pre_images,
    })
}

fn parse_pre_image(path: &str, text: &str, item: &Value) -> Result<PreImage, Diagnostic> {
    let err = |msg: String, needle: &str| Diagnostic::in_file(path, msg).near(text, needle);
    let typ = yaml::get(item, "type").and_then(Value::as_str);
    match typ {
        Some("cargo-build") => {
            let list = |key: &str| -> Result<Vec<String>, Diagnostic> {
                match yaml::get(item, key) {
                    None => Ok(Vec::new()),
                    Some(v) => yaml::string_or_list(v).ok_or_else(|| {
                        err(
                            format!("`{key}` must be a string or a list of strings"),
                            key,
                        )
                    }),
                }
            };
            let bins = list("bin")?;
            let examples = list("example")?;
            if bins.is_empty() && examples.is_empty() {
                return Err(err(
                    "cargo-build pre-image is missing a pre-build target".into(),
                    "cargo-build",
                )
                .hint("name at least one `bin` or `example`"));
            }
            Ok(PreImage::CargoBuild { bins, examples })
        }
        Some("copy") => {
            let req = |key: &str| -> Result<String, Diagnostic> {
                match yaml::get(item, key).and_then(yaml::scalar_string) {
                    Some(s) => Ok(s),
                    None => Err(err(format!("copy pre-image is missing `{key}`"), "copy")
                        .hint(format!("add `{key}: <path>` to the copy pre-image"))),
                }
            };
            let source = req("source")?;
            let destination = req("destination")?;
            let matching = yaml::get(item, "matching")
                .and_then(yaml::scalar_string)
                .unwrap_or_else(|| "*".to_string());
            Ok(PreImage::Copy {
                source,
                destination,
                matching,
            })
        }
        other => {
            let line = other
                .and_then(|t| line_of_entry(text, "type", t))
                .or_else(|| line_of(text, "pre-image"));
            Err(Diagnostic::in_file(
                path,
                format!(
                    "unknown pre-image type {}",
                    other.map_or("(none)".to_string(), |t| format!("`{t}`"))
                ),
            )
            .at_line(line)
            .hint("use `type: cargo-build` or `type: copy`"))
        }
    }
}

/// 1-based line of the first YAML entry `key: ... value ...` at or after the
/// first `key:` line of `text` (`- key: value`, flow lists and block list
/// items under the key count), matching `value` as a whole word. For pointing
/// diagnostics at a value; `None` when no such line is found.
pub fn line_of_entry(text: &str, key: &str, value: &str) -> Option<usize> {
    let is_word = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.';
    let has_word = |line: &str| {
        line.match_indices(value).any(|(i, _)| {
            let b = line.as_bytes();
            (i == 0 || !is_word(b[i - 1])) && b.get(i + value.len()).is_none_or(|&c| !is_word(c))
        })
    };
    let mut in_key = false;
    for (n, line) in text.lines().enumerate() {
        let t = line.trim_start().trim_start_matches("- ").trim_start();
        if let Some(rest) = t
            .strip_prefix(key)
            .and_then(|r| r.trim_start().strip_prefix(':'))
        {
            in_key = true;
            if has_word(rest) {
                return Some(n + 1);
            }
            continue;
        }
        // A block list item under the key.
        if in_key && line.trim_start().starts_with('-') && !t.contains(':') && has_word(t) {
            return Some(n + 1);
        }
        if t.contains(':') {
            in_key = false;
        }
    }
    None
}

/// The image names of a Dockerfile's `MZFROM` lines (bytes, per line).
/// Kept in the persistent cache.
#[salsa::tracked(returns(ref))]
pub fn dockerfile_deps(db: &dyn Db, file: File) -> Result<Vec<String>, Diagnostic> {
    let path = file.path(db);
    crate::cache::leaf(
        db,
        crate::cache::Kind::Dockerfile,
        file,
        |content| match content {
            crate::FileContent::Bytes(b) => Ok(parse_mzfrom(b)),
            crate::FileContent::Missing => {
                Err(Diagnostic::in_file(path, "Dockerfile does not exist")
                    .hint("every mzbuild image needs a Dockerfile beside its mzbuild.yml"))
            }
            crate::FileContent::Unreadable(why) => {
                Err(Diagnostic::in_file(path, format!("cannot be read: {why}")))
            }
        },
        |r| r.as_ref().ok().cloned(),
        Ok,
    )
}

/// `^MZFROM\s*(\S+)` on each line, as the reference matches it.
pub fn parse_mzfrom(bytes: &[u8]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in bytes.split(|&b| b == b'\n') {
        let Some(rest) = line.strip_prefix(b"MZFROM") else {
            continue;
        };
        let rest = match rest.iter().position(|b| !b.is_ascii_whitespace()) {
            Some(i) => &rest[i..],
            None => continue,
        };
        let end = rest
            .iter()
            .position(|b| b.is_ascii_whitespace())
            .unwrap_or(rest.len());
        out.push(String::from_utf8_lossy(&rest[..end]).into_owned());
    }
    out
}

/// Whether `path` is an image definition (SPEC §2): `**/mzbuild.yml` outside `misc/python/`.
pub fn is_mzbuild_path(path: &str) -> bool {
    path.ends_with("/mzbuild.yml") && !path.starts_with("misc/python/")
}

/// Whether `path` is a composition: `**/mzcompose.py` outside `misc/python/`.
pub fn is_composition_path(path: &str) -> bool {
    path.ends_with("/mzcompose.py") && !path.starts_with("misc/python/")
}

/// Every image of the repository, validated (unknown dependencies, cycles).
#[salsa::tracked(returns(ref))]
pub fn image_graph(db: &dyn Db, files: FileSet) -> Result<Arc<ImageGraph>, Diagnostic> {
    let mut images: BTreeMap<String, Image> = BTreeMap::new();
    let mut where_defined: BTreeMap<String, String> = BTreeMap::new();
    for path in files.paths(db).iter().filter(|p| is_mzbuild_path(p)) {
        let config = mzbuild_config(db, db.file(path)).clone()?;
        let dir = paths::parent(path).to_string();
        if let Some(first) = where_defined.get(&config.name) {
            return Err(Diagnostic::in_file(
                path,
                format!("image `{}` exists twice (also in `{first}`)", config.name),
            )
            .hint("image names must be unique across the repository"));
        }
        let dockerfile = format!("{dir}/Dockerfile");
        let depends_on = dockerfile_deps(db, db.file(&dockerfile)).clone()?;
        where_defined.insert(config.name.clone(), path.clone());
        images.insert(
            config.name.clone(),
            Image {
                name: config.name,
                dir,
                publish: config.publish,
                mainline: config.mainline,
                depends_on,
                pre_images: config.pre_images,
            },
        );
    }
    for img in images.values() {
        for d in &img.depends_on {
            if !images.contains_key(d) {
                let dockerfile = format!("{}/Dockerfile", img.dir);
                let line = dockerfile_line(db, &dockerfile, d);
                return Err(Diagnostic::in_file(
                    dockerfile,
                    format!("image {} depends on non-existent image {d}", img.name),
                )
                .at_line(line)
                .hint("fix the MZFROM line or add the image"));
            }
        }
    }
    check_cycles(&images)?;
    Ok(Arc::new(ImageGraph { images }))
}

fn dockerfile_line(db: &dyn Db, path: &str, dep: &str) -> Option<usize> {
    let file = db.file(path);
    let text = String::from_utf8_lossy(file.content(db).bytes()?).into_owned();
    line_of(&text, &format!("MZFROM {dep}")).or_else(|| line_of(&text, dep))
}

/// Visits images in name order, dependencies in name order, as the reference
/// does, so a cycle is reported along the same path.
fn check_cycles(images: &BTreeMap<String, Image>) -> Result<(), Diagnostic> {
    let Some(cycle) = depth_first(images, images.keys().map(String::as_str)).cycle else {
        return Ok(());
    };
    let first = cycle
        .last()
        .and_then(|name| images.get(name))
        .map(|i| format!("{}/Dockerfile", i.dir));
    Err(Diagnostic {
        file: first,
        line: None,
        message: format!("circular dependency in mzbuild: {}", cycle.join(" -> ")),
        hint: Some("remove one of the MZFROM lines of the cycle".into()),
    })
}

/// Compositions by name → directory (SPEC §2).
#[salsa::tracked(returns(ref))]
pub fn compositions(db: &dyn Db, files: FileSet) -> Result<BTreeMap<String, String>, Diagnostic> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for path in files.paths(db).iter().filter(|p| is_composition_path(p)) {
        let dir = paths::parent(path);
        let name = paths::file_name(dir).to_string();
        if let Some(first) = out.get(&name) {
            return Err(Diagnostic::in_file(
                path,
                format!("composition `{name}` exists twice (also in `{first}/mzcompose.py`)"),
            )
            .hint("composition names (the directory holding mzcompose.py) must be unique"));
        }
        out.insert(name, dir.to_string());
    }
    Ok(out)
}

/// The images of the repository a composition uses (SPEC §4.1).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct UsedImages {
    /// Sorted; every image of the repository when `every_image` is set.
    pub names: BTreeSet<String>,
    /// Why the composition's images could not be determined statically.
    pub every_image: Option<Diagnostic>,
}

/// The images the composition in `dir` uses: the names its Python can
/// assign that are images of the repository (others are ignored, as the
/// reference ignores them), or every image when a value cannot be
/// determined (fail safe). Step inputs, the graph and `compositions` all
/// ask this, so they agree.
pub fn used_images(
    db: &dyn Db,
    files: FileSet,
    options: Options,
    dir: &str,
    graph: &ImageGraph,
) -> UsedImages {
    let file = db.file(&format!("{dir}/mzcompose.py"));
    let imgs = composition_inputs(db, files, options, file);
    // An import the roots cannot resolve (wrong `--python-root`) may load
    // any service class: every image, as for a value that cannot be read.
    let every_image = imgs
        .every_image()
        .cloned()
        .or_else(|| imgs.unresolved().first().map(|u| u.diagnostic.clone()));
    if let Some(why) = every_image {
        return UsedImages {
            names: graph.images.keys().cloned().collect(),
            every_image: Some(why),
        };
    }
    UsedImages {
        names: imgs
            .image_names()
            .iter()
            .filter(|n| graph.images.contains_key(*n))
            .cloned()
            .collect(),
        every_image: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(edges: &[(&str, &[&str])]) -> ImageGraph {
        let images = edges
            .iter()
            .map(|(name, deps)| {
                let img = Image {
                    name: name.to_string(),
                    dir: format!("images/{name}"),
                    publish: true,
                    mainline: true,
                    depends_on: deps.iter().map(|d| d.to_string()).collect(),
                    pre_images: Vec::new(),
                };
                (name.to_string(), img)
            })
            .collect();
        ImageGraph { images }
    }

    #[test]
    fn dependency_order_is_the_references_depth_first_order() {
        // Dependencies by name (not Dockerfile order), each once, before
        // their dependents; roots in the order given.
        let g = graph(&[
            ("app", &["zlib", "base", "zlib"]),
            ("base", &[]),
            ("tool", &["base"]),
            ("zlib", &["base"]),
        ]);
        assert_eq!(
            g.dependency_order(["tool", "app"]),
            ["base", "tool", "zlib", "app"]
        );
        assert_eq!(g.dependency_order(["zlib"]), ["base", "zlib"]);
    }

    #[test]
    fn a_cycle_is_reported_along_the_references_path() {
        let g = graph(&[("a", &["b"]), ("b", &["c"]), ("c", &["a"]), ("d", &[])]);
        let e = check_cycles(&g.images).unwrap_err();
        assert_eq!(
            e.message,
            "circular dependency in mzbuild: a -> b -> c -> a"
        );
        assert_eq!(e.file.as_deref(), Some("images/a/Dockerfile"));
        // The order cuts the cycle instead of looping.
        assert_eq!(g.dependency_order(["a"]), ["c", "b", "a"]);
        assert!(check_cycles(&graph(&[("x", &["y"]), ("y", &[])]).images).is_ok());
    }

    #[test]
    fn mzfrom_matches_line_starts_only() {
        let df = b"FROM x\nMZFROM  base\n  MZFROM no\nMZFROMtight extra\n# MZFROM c\nMZFROM base\n";
        assert_eq!(
            parse_mzfrom(df),
            vec!["base".to_string(), "tight".to_string(), "base".to_string()]
        );
    }

    #[test]
    fn mzbuild_errors_name_the_problem() {
        let e = parse_mzbuild("a/mzbuild.yml", "name: bad_name\n").unwrap_err();
        assert!(e.message.contains("invalid character"), "{e}");
        assert_eq!(e.line, Some(1));
        let e =
            parse_mzbuild("a/mzbuild.yml", "name: x\npre-image:\n  - type: nope\n").unwrap_err();
        assert!(e.message.contains("unknown pre-image type `nope`"), "{e}");
        assert_eq!(e.line, Some(3));
        let e = parse_mzbuild(
            "a/mzbuild.yml",
            "name: x\npre-image:\n  - type: copy\n    source: a\n",
        )
        .unwrap_err();
        assert!(e.message.contains("missing `destination`"), "{e}");
        let e = parse_mzbuild(
            "a/mzbuild.yml",
            "name: x\npre-image:\n  - type: cargo-build\n",
        )
        .unwrap_err();
        assert!(e.message.contains("pre-build target"), "{e}");
        let e = parse_mzbuild("a/mzbuild.yml", "name: [x\n").unwrap_err();
        assert!(e.message.contains("malformed YAML"), "{e}");
        assert!(e.line.is_some());
    }

    #[test]
    fn line_of_entry_finds_values_of_a_key() {
        let t = "name: a\npre-image:\n  - type: cargo-build\n    bin: [a, b]\n    example:\n      - a\n      - td\n";
        assert_eq!(line_of_entry(t, "bin", "b"), Some(4));
        assert_eq!(line_of_entry(t, "bin", "a"), Some(4));
        assert_eq!(line_of_entry(t, "example", "td"), Some(7));
        assert_eq!(line_of_entry(t, "example", "a"), Some(6));
        assert_eq!(line_of_entry(t, "type", "cargo-build"), Some(3));
        assert_eq!(line_of_entry(t, "bin", "c"), None);
        assert_eq!(line_of_entry("bin: abc\n", "bin", "ab"), None);
    }

    #[test]
    fn mzbuild_parses_both_pre_image_kinds() {
        let c = parse_mzbuild(
            "a/mzbuild.yml",
            "name: x\npublish: false\npre-image:\n  - type: cargo-build\n    bin: [a, b]\n    example: e\n  - type: copy\n    source: s\n    destination: d\n",
        )
        .unwrap();
        assert!(!c.publish);
        assert_eq!(
            c.pre_images,
            vec![
                PreImage::CargoBuild {
                    bins: vec!["a".into(), "b".into()],
                    examples: vec!["e".into()]
                },
                PreImage::Copy {
                    source: "s".into(),
                    destination: "d".into(),
                    matching: "*".into()
                },
            ]
        );
    }
}
