//! Image inputs (SPEC §3), kept symbolic — directories with exceptions,
//! single files, globs — so that "did this change?" is a prefix test on the
//! few changed paths, and file lists are expanded only for fingerprints and
//! reports.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::cargo::{CargoWorkspace, cargo_workspace};
use crate::db::{Db, FileSet};
use crate::diag::Diagnostic;
use crate::images::{Image, ImageGraph, PreImage, image_graph};
use crate::paths;
use crate::pathspec::PathspecSet;

/// A set of input files, described rather than listed.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum InputSpec {
    /// Every file below `dir` except those at or below any of `except`.
    Dir {
        dir: Arc<str>,
        except: Arc<[String]>,
    },
    /// One file.
    File { path: Arc<str> },
    /// Files below `dir` whose path relative to `dir` matches the git
    /// pathspec `pattern` (a copy pre-image's `matching`).
    Glob { dir: Arc<str>, pattern: Arc<str> },
}

impl InputSpec {
    /// Whether a (changed, possibly deleted) path belongs to this input.
    pub fn matches(&self, path: &str) -> bool {
        match self {
            InputSpec::Dir { dir, except } => {
                paths::is_under(path, dir)
                    && !except.iter().any(|e| path == e || paths::is_under(path, e))
            }
            InputSpec::File { path: p } => **p == *path,
            InputSpec::Glob { dir, pattern } => paths::relative(path, dir).is_some_and(|rel| {
                // `own_inputs` refuses a pattern that does not compile, so
                // the fallback (everything below `dir`) is only a last guard.
                PathspecSet::new([&**pattern])
                    .map(|s| s.matches(rel))
                    .unwrap_or(true)
            }),
        }
    }

    /// The visible files this input stands for, as positions in the file
    /// set (`files.paths`), appended to `out` in order.
    pub fn expand_positions(&self, db: &dyn Db, files: FileSet, out: &mut Vec<u32>) {
        let all = files.paths(db);
        match self {
            InputSpec::Dir { dir, .. } | InputSpec::Glob { dir, .. } => {
                let range = paths::under_range(all, dir);
                let start = range.start;
                out.extend(
                    (start..)
                        .zip(&all[range])
                        .filter(|(_, p)| self.matches(p))
                        .filter_map(|(i, _)| u32::try_from(i).ok()),
                );
            }
            InputSpec::File { path } => {
                if let Ok(i) = all.binary_search_by(|p| p.as_str().cmp(path))
                    && let Ok(i) = u32::try_from(i)
                {
                    out.push(i);
                }
            }
        }
    }

    pub fn describe(&self) -> String {
        match self {
            InputSpec::Dir { dir, except } if except.is_empty() => format!("{dir}/**"),
            InputSpec::Dir { dir, except } => format!("{dir}/** except {}", except.join(", ")),
            InputSpec::File { path } => path.to_string(),
            InputSpec::Glob { dir, pattern } => format!("{dir}/{pattern}"),
        }
    }
}

/// Why an input belongs to an image: the evidence `explain` prints.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Origin {
    /// The image's context directory.
    Context,
    /// Shared inputs of every cargo-build pre-image.
    CargoShared,
    /// A crate built for a bin or example of a cargo-build pre-image;
    /// `chain` runs from the crate owning the target to this crate.
    Crate {
        target: Arc<str>,
        chain: Arc<[Arc<str>]>,
    },
    /// A copy pre-image's source.
    Copy,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Input {
    pub spec: InputSpec,
    pub origin: Origin,
}

/// An image's own (non-transitive) inputs, or why they are unknown.
pub type ImageInputs = Result<Vec<Input>, Diagnostic>;

/// The inputs of every image.
#[salsa::tracked(returns(ref))]
pub fn image_inputs(
    db: &dyn Db,
    files: FileSet,
) -> Result<Arc<BTreeMap<String, ImageInputs>>, Diagnostic> {
    let graph = image_graph(db, files).clone()?;
    let needs_cargo = graph.images.values().any(|i| {
        i.pre_images
            .iter()
            .any(|p| matches!(p, PreImage::CargoBuild { .. }))
    });
    let ws = if needs_cargo {
        Some(cargo_workspace(db, files).clone())
    } else {
        None
    };
    let specs = match &ws {
        Some(Ok(w)) => crate_specs(w),
        _ => BTreeMap::new(),
    };
    let mut chains = Chains::default();
    let mut out = BTreeMap::new();
    for img in graph.images.values() {
        out.insert(
            img.name.clone(),
            own_inputs(db, files, &graph, img, ws.as_ref(), &specs, &mut chains),
        );
    }
    Ok(Arc::new(out))
}

fn own_inputs(
    db: &dyn Db,
    files: FileSet,
    graph: &ImageGraph,
    img: &Image,
    ws: Option<&Result<Arc<CargoWorkspace>, Diagnostic>>,
    specs: &BTreeMap<String, InputSpec>,
    chains: &mut Chains,
) -> ImageInputs {
    // Nested image contexts belong to the nested image only (the reference
    // partitions files by the longest matching context directory).
    let nested: Vec<String> = graph
        .images
        .values()
        .filter(|o| paths::is_under(&o.dir, &img.dir))
        .map(|o| o.dir.clone())
        .collect();
    let mut inputs = vec![Input {
        spec: InputSpec::Dir {
            dir: img.dir.as_str().into(),
            except: nested.into(),
        },
        origin: Origin::Context,
    }];
    if files.under(db, &img.dir).is_empty() {
        return Err(Diagnostic::in_file(
            format!("{}/mzbuild.yml", img.dir),
            format!("image `{}` has no visible files", img.name),
        )
        .hint("is its directory ignored by .gitignore?"));
    }
    let mut shared_added = false;
    for pre in &img.pre_images {
        match pre {
            PreImage::Copy {
                source, matching, ..
            } => {
                // The reference hands `matching` to git as a pathspec (cwd
                // `source`): one that does not compile is this image's error,
                // never a silent "matches everything" or "nothing".
                if let Err(e) = PathspecSet::new([matching.as_str()]) {
                    let mzbuild = format!("{}/mzbuild.yml", img.dir);
                    let line = db.file(&mzbuild).text(db).ok().and_then(|t| {
                        crate::images::line_of_entry(t, "matching", matching)
                            .or_else(|| crate::diag::line_of(t, "matching"))
                    });
                    return Err(Diagnostic::in_file(
                        mzbuild,
                        format!("copy pre-image `matching`: {e}"),
                    )
                    .at_line(line)
                    .hint(
                        "write `matching` as a git pathspec relative to `source`, e.g. `*.json`",
                    ));
                }
                inputs.push(Input {
                    spec: InputSpec::Glob {
                        dir: paths::join("", source).into(),
                        pattern: matching.as_str().into(),
                    },
                    origin: Origin::Copy,
                });
            }
            PreImage::CargoBuild { bins, examples } => {
                let ws = match ws {
                    Some(Ok(ws)) => ws,
                    Some(Err(e)) => return Err(e.clone()),
                    None => return Err(Diagnostic::new("internal: cargo workspace not loaded")),
                };
                if !shared_added {
                    shared_added = true;
                    for spec in cargo_shared_inputs(db, files) {
                        inputs.push(Input {
                            spec,
                            origin: Origin::CargoShared,
                        });
                    }
                }
                let mzbuild = format!("{}/mzbuild.yml", img.dir);
                let targets = bins
                    .iter()
                    .map(|b| (b, false))
                    .chain(examples.iter().map(|e| (e, true)));
                for (target, is_example) in targets {
                    let owner = if is_example {
                        ws.crate_for_example(target)
                    } else {
                        ws.crate_for_bin(target)
                    }
                    .map_err(|mut e| {
                        let key = if is_example { "example" } else { "bin" };
                        e.line = db
                            .file(&mzbuild)
                            .text(db)
                            .ok()
                            .and_then(|t| crate::images::line_of_entry(t, key, target));
                        e.file = Some(mzbuild.clone());
                        e
                    })?;
                    let label: Arc<str> =
                        format!("{} `{target}`", if is_example { "example" } else { "bin" }).into();
                    let reached = chains.of(ws, &owner.name, is_example)?;
                    inputs.reserve(reached.len());
                    for (krate, chain) in reached.iter() {
                        let Some(spec) = specs.get(&**krate) else {
                            continue;
                        };
                        inputs.push(Input {
                            spec: spec.clone(),
                            origin: Origin::Crate {
                                target: label.clone(),
                                chain: chain.clone(),
                            },
                        });
                    }
                }
            }
        }
    }
    Ok(inputs)
}

/// The dependency chains of each (crate, for an example) a cargo pre-image
/// builds, computed once per `image_inputs` run: many images build bins of
/// the same crates, and the chains are shared rather than copied. Crate
/// names are shared too (`names`): at scale 10 the chains hold millions of
/// names, and a copy of each was most of `image_inputs`.
#[derive(Default)]
struct Chains {
    by_root: rustc_hash::FxHashMap<(String, bool), Arc<Reached>>,
    names: rustc_hash::FxHashMap<String, Arc<str>>,
}

/// The crates a root reaches, by name, each with its chain.
type Reached = Vec<(Arc<str>, Arc<[Arc<str>]>)>;

impl Chains {
    fn of(
        &mut self,
        ws: &CargoWorkspace,
        root: &str,
        dev: bool,
    ) -> Result<Arc<Reached>, Diagnostic> {
        let key = (root.to_string(), dev);
        if let Some(r) = self.by_root.get(&key) {
            return Ok(r.clone());
        }
        let reached = Arc::new(dependency_chains(ws, root, dev, &mut self.names)?);
        self.by_root.insert(key, reached.clone());
        Ok(reached)
    }
}

/// Every crate reachable from `root` by path dependencies (and, with
/// `dev`, the root's dev-dependencies), sorted by name, each with the
/// shortest chain of crate names that reaches it (breadth first, in
/// dependency order).
fn dependency_chains(
    ws: &CargoWorkspace,
    root: &str,
    dev: bool,
    names: &mut rustc_hash::FxHashMap<String, Arc<str>>,
) -> Result<Reached, Diagnostic> {
    let Some(root_crate) = ws.get(root) else {
        return Err(Diagnostic::new(format!(
            "crate `{root}` is not in the workspace"
        )));
    };
    // Breadth first: each crate's parent in the tree of shortest chains.
    let mut order: Vec<(&str, Option<usize>)> = vec![(root_crate.name.as_str(), None)];
    let mut seen: rustc_hash::FxHashSet<&str> = rustc_hash::FxHashSet::default();
    seen.insert(root);
    let mut at = 0;
    while let Some(&(n, _)) = order.get(at) {
        let Some(c) = ws.get(n) else {
            // A path dependency outside the workspace: the walk that
            // names the culprit reports it.
            ws.transitive_path_dependencies(root_crate, dev)?;
            return Err(Diagnostic::new(format!(
                "crate `{n}` is not in the workspace"
            )));
        };
        let dev_deps = (dev && at == 0).then_some(&c.dev_dependencies);
        for d in c
            .dependencies
            .iter()
            .chain(&c.build_dependencies)
            .chain(dev_deps.into_iter().flatten())
        {
            if seen.insert(d.as_str()) {
                order.push((d.as_str(), Some(at)));
            }
        }
        at += 1;
    }
    let mut name = |n: &str| -> Arc<str> {
        if let Some(a) = names.get(n) {
            return a.clone();
        }
        let a: Arc<str> = n.into();
        names.insert(n.to_string(), a.clone());
        a
    };
    let mut out: Reached = Vec::with_capacity(order.len());
    let mut chain: Vec<Arc<str>> = Vec::new();
    for (i, &(n, _)) in order.iter().enumerate() {
        chain.clear();
        let mut j = Some(i);
        while let Some(k) = j {
            chain.push(name(order[k].0));
            j = order[k].1;
        }
        chain.reverse();
        out.push((name(n), chain.as_slice().into()));
    }
    out.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// Every crate's inputs: its directory except `mzcompose`, `mzcompose.py`
/// and nested crates (which the reference assigns to the nested crate
/// only). Built once per workspace: nested directories follow their parent
/// in sorted order, so this is linear in the number of crates.
fn crate_specs(ws: &CargoWorkspace) -> BTreeMap<String, InputSpec> {
    let dirs: BTreeSet<&str> = ws.all().map(|c| c.dir.as_str()).collect();
    let dirs: Vec<&str> = dirs.into_iter().collect();
    let mut by_dir: BTreeMap<&str, InputSpec> = BTreeMap::new();
    for (i, dir) in dirs.iter().enumerate() {
        let mut except = vec![format!("{dir}/mzcompose"), format!("{dir}/mzcompose.py")];
        for other in &dirs[i + 1..] {
            if paths::is_under(other, dir) {
                except.push(other.to_string());
            } else if !other.starts_with(dir) {
                break;
            }
        }
        by_dir.insert(
            dir,
            InputSpec::Dir {
                dir: (*dir).into(),
                except: except.into(),
            },
        );
    }
    ws.all()
        .filter_map(|c| {
            by_dir
                .get(c.dir.as_str())
                .map(|s| (c.name.clone(), s.clone()))
        })
        .collect()
}

/// `ci/builder/`, `Cargo.toml`, `Cargo.lock` and `.cargo/config` if it exists.
pub fn cargo_shared_inputs(db: &dyn Db, files: FileSet) -> Vec<InputSpec> {
    let mut out = vec![
        InputSpec::Dir {
            dir: "ci/builder".into(),
            except: Arc::new([]),
        },
        InputSpec::File {
            path: "Cargo.toml".into(),
        },
        InputSpec::File {
            path: "Cargo.lock".into(),
        },
    ];
    if files.contains(db, ".cargo/config") {
        out.push(InputSpec::File {
            path: ".cargo/config".into(),
        });
    }
    out
}

/// Every image input filed by the directory it covers (directory and glob
/// inputs) or the one path it names: (image, input) positions, the image by
/// its place in [`image_inputs`]' order.
pub type InputIndex = paths::DirIndex<(u32, u32)>;

/// The [`InputIndex`] of every image's inputs.
#[salsa::tracked(returns(ref))]
pub fn input_index(db: &dyn Db, files: FileSet) -> Result<Arc<InputIndex>, Diagnostic> {
    let all = image_inputs(db, files).clone()?;
    let mut index = InputIndex::default();
    for (img, inputs) in (0u32..).zip(all.values()) {
        let Ok(inputs) = inputs else { continue };
        for (pos, input) in (0u32..).zip(inputs) {
            match &input.spec {
                InputSpec::Dir { dir, .. } | InputSpec::Glob { dir, .. } => {
                    index.insert(dir, (img, pos));
                }
                InputSpec::File { path } => index.insert(path, (img, pos)),
            }
        }
    }
    Ok(Arc::new(index))
}

/// An image name as a salsa key, for per-image queries.
#[salsa::interned(debug)]
pub struct ImageName<'db> {
    #[returns(ref)]
    pub name: String,
}

/// One image's own input files, sorted and deduplicated, as positions in
/// the file set (`files.paths`, which is sorted, so position order is path
/// order): memoized per image, so reports and the pre-hashing of a
/// fingerprint run expand each image once. Positions, not paths: at scale 10 the images' lists add up
/// to 2 million entries, which as strings were most of a cold run's memory.
#[salsa::tracked(returns(ref))]
pub fn image_own_files<'db>(
    db: &'db dyn Db,
    files: FileSet,
    name: ImageName<'db>,
) -> Result<Arc<[u32]>, Diagnostic> {
    let all = image_inputs(db, files).clone()?;
    let name = name.name(db);
    let Some(inputs) = all.get(name) else {
        return Err(Diagnostic::new(format!("unknown image `{name}`")));
    };
    let inputs = inputs.as_ref().map_err(Clone::clone)?;
    // A sort of the concatenation: cheaper than a tree set when the inputs
    // are thousands of files in a few sorted runs.
    let mut out: Vec<u32> = Vec::new();
    for i in inputs {
        i.spec.expand_positions(db, files, &mut out);
    }
    out.sort_unstable();
    out.dedup();
    Ok(out.into())
}

/// An image's input files, sorted and deduplicated; with `transitive`, also
/// those of every image it depends on.
pub fn image_files(
    db: &dyn Db,
    files: FileSet,
    name: &str,
    transitive: bool,
) -> Result<Vec<String>, Diagnostic> {
    let graph = image_graph(db, files).clone()?;
    let names = if transitive {
        graph.closure(name)
    } else {
        BTreeSet::from([name.to_string()])
    };
    let mut positions: Vec<u32> = Vec::new();
    for n in &names {
        let key = ImageName::new(db, n.clone());
        positions.extend(
            image_own_files(db, files, key)
                .as_ref()
                .map_err(Clone::clone)?
                .iter(),
        );
    }
    positions.sort_unstable();
    positions.dedup();
    Ok(paths_at(db, files, &positions).cloned().collect())
}

/// The paths at `positions` of the file set.
pub fn paths_at<'a>(
    db: &'a dyn Db,
    files: FileSet,
    positions: &'a [u32],
) -> impl Iterator<Item = &'a String> {
    let all = files.paths(db);
    positions.iter().filter_map(|&i| all.get(i as usize))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::cargo::Crate;

    fn krate(name: &str, deps: &[&str], build: &[&str], dev: &[&str]) -> (String, Crate) {
        let set = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
        let c = Crate {
            name: name.into(),
            dir: format!("src/{name}"),
            dependencies: set(deps),
            build_dependencies: set(build),
            dev_dependencies: set(dev),
            bins: Vec::new(),
            examples: Vec::new(),
        };
        (name.into(), c)
    }

    fn chains(ws: &CargoWorkspace, root: &str, dev: bool) -> Result<Vec<(String, String)>, String> {
        let mut names = rustc_hash::FxHashMap::default();
        dependency_chains(ws, root, dev, &mut names)
            .map(|r| {
                r.iter()
                    .map(|(k, c)| (k.to_string(), c.join(">")))
                    .collect()
            })
            .map_err(|d| d.to_string())
    }

    #[test]
    fn chains_are_shortest_sorted_and_take_dev_dependencies_at_the_root_only() {
        let ws = CargoWorkspace {
            members: [
                krate("app", &["mid", "util"], &["gen"], &["testkit"]),
                krate("mid", &["util"], &[], &["never"]),
                krate("util", &[], &[], &[]),
                krate("gen", &["deep"], &[], &[]),
                krate("deep", &[], &[], &[]),
                krate("testkit", &["deep"], &[], &[]),
                krate("never", &[], &[], &[]),
            ]
            .into_iter()
            .collect(),
            ..CargoWorkspace::default()
        };
        let expect = |v: &[(&str, &str)]| -> Vec<(String, String)> {
            v.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect()
        };
        assert_eq!(
            chains(&ws, "app", false),
            Ok(expect(&[
                ("app", "app"),
                ("deep", "app>gen>deep"),
                ("gen", "app>gen"),
                ("mid", "app>mid"),
                ("util", "app>util"),
            ]))
        );
        // An example also builds the root's dev-dependencies (not those of
        // the crates below it).
        let with_dev = chains(&ws, "app", true).unwrap_or_default();
        assert!(with_dev.contains(&("testkit".into(), "app>testkit".into())));
        assert!(with_dev.iter().all(|(k, _)| k != "never"));
    }

    #[test]
    fn a_path_dependency_outside_the_workspace_is_an_error_naming_its_manifest() {
        let ws = CargoWorkspace {
            members: [krate("app", &["ghost"], &[], &[])].into_iter().collect(),
            ..CargoWorkspace::default()
        };
        let e = chains(&ws, "app", false).unwrap_err();
        assert!(e.contains("src/app/Cargo.toml"), "{e}");
        assert!(e.contains("`ghost`"), "{e}");
    }
}
