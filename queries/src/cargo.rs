//! The Cargo workspace (SPEC §2): members, excludes, path dependencies,
//! bins and examples.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::db::{Db, File, FileContent, FileSet, content_text};
use crate::diag::Diagnostic;
use crate::paths;

/// What one crate's `Cargo.toml` says.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Manifest {
    pub name: String,
    pub dependencies: BTreeSet<String>,
    pub build_dependencies: BTreeSet<String>,
    pub dev_dependencies: BTreeSet<String>,
    pub bins: Vec<String>,
    pub examples: Vec<String>,
    pub autobins: bool,
    pub autoexamples: bool,
}

/// A crate of the workspace, with auto-discovered targets.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Crate {
    pub name: String,
    pub dir: String,
    pub bins: Vec<String>,
    pub examples: Vec<String>,
    pub dependencies: BTreeSet<String>,
    pub build_dependencies: BTreeSet<String>,
    pub dev_dependencies: BTreeSet<String>,
}

/// The root manifest's workspace and its crates.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct CargoWorkspace {
    /// Members by name (where bins and examples are looked up).
    pub members: BTreeMap<String, Crate>,
    /// Crates found through `exclude` entries ending in `*`.
    pub excluded: BTreeMap<String, Crate>,
    pub rust_version: Option<String>,
}

impl CargoWorkspace {
    pub fn get(&self, name: &str) -> Option<&Crate> {
        self.members.get(name).or_else(|| self.excluded.get(name))
    }

    pub fn all(&self) -> impl Iterator<Item = &Crate> {
        self.members.values().chain(self.excluded.values())
    }

    /// The member crate that has bin `bin`; an error when none or several do.
    pub fn crate_for_bin(&self, bin: &str) -> Result<&Crate, Diagnostic> {
        self.crate_for(bin, "bin", |c| &c.bins)
    }

    pub fn crate_for_example(&self, example: &str) -> Result<&Crate, Diagnostic> {
        self.crate_for(example, "example", |c| &c.examples)
    }

    fn crate_for(
        &self,
        target: &str,
        kind: &str,
        targets: impl Fn(&Crate) -> &Vec<String>,
    ) -> Result<&Crate, Diagnostic> {
        // Every occurrence counts, as in the reference: a target listed twice
        // in one crate is as ambiguous as one in two crates.
        let found: Vec<&Crate> = self
            .members
            .values()
            .flat_map(|c| targets(c).iter().filter(|t| *t == target).map(move |_| c))
            .collect();
        match found.as_slice() {
            [one] => Ok(one),
            [] => Err(Diagnostic::new(format!(
                "{kind} {target} does not exist in cargo workspace"
            ))
            .hint(format!(
                "check the `{kind}` of the cargo-build pre-image against the crates' targets"
            ))),
            many => Err(Diagnostic::new(format!(
                "{kind} {target} appears more than once in cargo workspace (crates {})",
                many.iter()
                    .map(|c| format!("`{}`", c.name))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
            .hint(format!("rename one of the {kind}s"))),
        }
    }

    /// The crate and, recursively, its path `dependencies` and
    /// `build-dependencies`; with `dev`, also the root's dev-dependencies.
    pub fn transitive_path_dependencies(
        &self,
        root: &Crate,
        dev: bool,
    ) -> Result<BTreeSet<String>, Diagnostic> {
        let mut seen = BTreeSet::new();
        let mut stack: Vec<(&str, &str)> = vec![(root.name.as_str(), "")];
        if dev {
            stack.extend(
                root.dev_dependencies
                    .iter()
                    .map(|d| (d.as_str(), root.name.as_str())),
            );
        }
        while let Some((name, from)) = stack.pop() {
            if seen.contains(name) {
                continue;
            }
            let Some(c) = self.get(name) else {
                let file = self
                    .get(from)
                    .map(|c| manifest_path(&c.dir))
                    .unwrap_or_else(|| "Cargo.toml".into());
                return Err(Diagnostic::in_file(
                    file,
                    format!(
                        "path dependency `{name}` of crate `{from}` is not a crate of the workspace"
                    ),
                )
                .hint("add the crate to `[workspace] members` of the root Cargo.toml"));
            };
            seen.insert(name.to_string());
            for d in c.dependencies.iter().chain(&c.build_dependencies) {
                stack.push((d.as_str(), c.name.as_str()));
            }
        }
        Ok(seen)
    }
}

fn manifest_path(dir: &str) -> String {
    if dir.is_empty() {
        "Cargo.toml".into()
    } else {
        format!("{dir}/Cargo.toml")
    }
}

fn toml_error(path: &str, text: &str, e: toml::de::Error) -> Diagnostic {
    toml_error_at(path, text, e.span().map(|s| s.start), e.message())
}

fn toml_error_at(path: &str, text: &str, at: Option<usize>, message: &str) -> Diagnostic {
    let line = at.map(|at| {
        text[..at.min(text.len())]
            .bytes()
            .filter(|&b| b == b'\n')
            .count()
            + 1
    });
    Diagnostic::in_file(path, format!("malformed TOML: {message}"))
        .at_line(line)
        .hint("fix the TOML syntax")
}

/// A crate manifest parsed without building its values: the strings stay
/// borrowed from the text, and only the few keys read are looked at (a
/// `toml::Table` of every manifest was two fifths of their cost). Refuses
/// what the `toml::Table` parse refuses: the syntax, and an integer that
/// does not fit in 64 bits.
fn parse_detable<'a>(
    path: &str,
    content: &'a FileContent,
) -> Result<(DeTable<'a>, &'a str), Diagnostic> {
    let text = content_text(content).map_err(|e| Diagnostic::in_file(path, e))?;
    let table = DeTable::parse(text)
        .map_err(|e| toml_error(path, text, e))?
        .into_inner();
    if let Some(at) = table.values().find_map(oversized_integer) {
        return Err(toml_error_at(
            path,
            text,
            Some(at),
            "integer number does not fit in 64 bits",
        ));
    }
    Ok((table, text))
}

/// The value under `key` of a parsed table.
fn get<'t, 'i>(t: &'t DeTable<'i>, key: &str) -> Option<&'t DeValue<'i>> {
    t.get(key).map(Spanned::get_ref)
}

/// Where the first integer in `v` that is not an `i64` starts.
fn oversized_integer(v: &Spanned<DeValue<'_>>) -> Option<usize> {
    match v.get_ref() {
        DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix())
            .is_err()
            .then(|| v.span().start),
        DeValue::Array(items) => items.iter().find_map(oversized_integer),
        DeValue::Table(t) => t.values().find_map(oversized_integer),
        _ => None,
    }
}

fn parse_toml<'a>(
    path: &str,
    content: &'a FileContent,
) -> Result<(toml::Table, &'a str), Diagnostic> {
    let text = content_text(content).map_err(|e| Diagnostic::in_file(path, e))?;
    let table = text
        .parse::<toml::Table>()
        .map_err(|e| toml_error(path, text, e))?;
    Ok((table, text))
}

/// Parses one crate manifest. Kept in the persistent cache: a success under
/// its blob, an error (which names the path) under its blob and path.
#[salsa::tracked(returns(ref))]
pub fn manifest(db: &dyn Db, file: File) -> Result<Manifest, Diagnostic> {
    let path = file.path(db);
    crate::cache::leaf_result(
        db,
        crate::cache::Kind::Manifest,
        crate::cache::Kind::ManifestError,
        file,
        |content| parse_manifest(path, content),
    )
}

fn parse_manifest(path: &str, content: &FileContent) -> Result<Manifest, Diagnostic> {
    let (t, text) = parse_detable(path, content)?;
    let err =
        |msg: &str, needle: &str| Diagnostic::in_file(path, msg.to_string()).near(text, needle);
    let Some(package) = get(&t, "package").and_then(|p| p.as_table()) else {
        return Err(Diagnostic::in_file(path, "missing `[package]` table")
            .hint("a workspace member's Cargo.toml needs `[package]` with a `name`"));
    };
    let Some(name) = get(package, "name").and_then(|n| n.as_str()) else {
        return Err(err(
            "`package.name` is missing or not a string",
            "[package]",
        ));
    };
    let deps = |key: &str| -> Result<BTreeSet<String>, Diagnostic> {
        let mut out = BTreeSet::new();
        match get(&t, key) {
            None => {}
            Some(DeValue::Table(entries)) => {
                for (entry, spec) in entries {
                    if let Some(spec) = spec.get_ref().as_table()
                        && spec.contains_key("path")
                    {
                        let dep = match get(spec, "package") {
                            Some(DeValue::String(p)) => p.to_string(),
                            _ => entry.get_ref().to_string(),
                        };
                        out.insert(dep);
                    }
                }
            }
            Some(_) => return Err(err(&format!("`[{key}]` must be a table"), key)),
        }
        Ok(out)
    };
    let targets = |key: &str| -> Result<Vec<String>, Diagnostic> {
        match get(&t, key) {
            None => Ok(Vec::new()),
            Some(DeValue::Array(items)) => items
                .iter()
                .map(|i| {
                    i.get_ref()
                        .get("name")
                        .and_then(|n| n.get_ref().as_str())
                        .map(str::to_string)
                        .ok_or_else(|| {
                            err(
                                &format!("a `[[{key}]]` entry has no `name`"),
                                &format!("[[{key}]]"),
                            )
                        })
                })
                .collect(),
            Some(_) => Err(err(&format!("`{key}` must be an array of tables"), key)),
        }
    };
    let flag = |key: &str| get(package, key).and_then(|v| v.as_bool()).unwrap_or(true);
    Ok(Manifest {
        name: name.to_string(),
        dependencies: deps("dependencies")?,
        build_dependencies: deps("build-dependencies")?,
        dev_dependencies: deps("dev-dependencies")?,
        bins: targets("bin")?,
        examples: targets("example")?,
        autobins: flag("autobins"),
        autoexamples: flag("autoexamples"),
    })
}

/// The root manifest's `[workspace]` keys we need.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct WorkspaceManifest {
    pub members: Vec<String>,
    pub exclude: Vec<String>,
    pub rust_version: Option<String>,
}

/// Kept in the persistent cache when it parses.
#[salsa::tracked(returns(ref))]
pub fn workspace_manifest(db: &dyn Db, file: File) -> Result<WorkspaceManifest, Diagnostic> {
    let path = file.path(db);
    crate::cache::leaf(
        db,
        crate::cache::Kind::WorkspaceManifest,
        file,
        |content| parse_workspace_manifest(path, content),
        stored_root,
        Ok,
    )
}

/// What the cache keeps of a root manifest: a successful parse.
fn stored_root(r: &Result<WorkspaceManifest, Diagnostic>) -> Option<WorkspaceManifest> {
    r.as_ref().ok().cloned()
}

/// The root `Cargo.toml`'s bytes as [`workspace_manifest`] parses them, and
/// the cache entry its leaf would store for them (none for a failure).
pub(crate) fn root_manifest_ahead(
    bytes: &[u8],
) -> (
    Result<WorkspaceManifest, Diagnostic>,
    Option<crate::cache::Entry>,
) {
    let parsed = parse_workspace_manifest("Cargo.toml", &FileContent::Bytes(bytes.into()));
    let entry = crate::cache::leaf_entry(
        crate::cache::Kind::WorkspaceManifest,
        bytes,
        &parsed,
        stored_root,
    );
    (parsed, entry)
}

fn parse_workspace_manifest(
    path: &str,
    content: &FileContent,
) -> Result<WorkspaceManifest, Diagnostic> {
    // The root manifest of a large workspace is the largest one, and it is
    // read before the priming starts: the borrowed parse, as for members.
    let (t, _) = parse_detable(path, content)?;
    let Some(ws) = get(&t, "workspace").and_then(DeValue::as_table) else {
        return Err(Diagnostic::in_file(path, "missing `[workspace]` table")
            .hint("the root Cargo.toml must define the workspace"));
    };
    let list = |key: &str| -> Result<Vec<String>, Diagnostic> {
        match get(ws, key) {
            None => Ok(Vec::new()),
            Some(DeValue::Array(items)) => items
                .iter()
                .map(|i| {
                    i.get_ref().as_str().map(str::to_string).ok_or_else(|| {
                        Diagnostic::in_file(path, format!("`workspace.{key}` must hold strings"))
                    })
                })
                .collect(),
            Some(_) => Err(Diagnostic::in_file(
                path,
                format!("`workspace.{key}` must be an array"),
            )),
        }
    };
    let rust_version = match get(ws, "package").and_then(|p| p.get("rust-version")) {
        None => None,
        Some(v) => match v.get_ref() {
            DeValue::String(s) => Some(s.to_string()),
            // Not a string (cargo would refuse it): rendered as TOML, as
            // the value of a full parse renders it.
            _ => parse_toml(path, content)?
                .0
                .get("workspace")
                .and_then(|w| w.get("package"))
                .and_then(|p| p.get("rust-version"))
                .map(toml::Value::to_string),
        },
    };
    Ok(WorkspaceManifest {
        members: list("members")?,
        exclude: list("exclude")?,
        rust_version,
    })
}

/// The whole workspace: members and `*`-expanded excludes with their targets.
#[salsa::tracked(returns(ref))]
pub fn cargo_workspace(db: &dyn Db, files: FileSet) -> Result<Arc<CargoWorkspace>, Diagnostic> {
    let root = workspace_manifest(db, db.file("Cargo.toml")).clone()?;
    let mut ws = CargoWorkspace {
        rust_version: root.rust_version.clone(),
        ..Default::default()
    };
    for member in &root.members {
        let dir = paths::join("", member);
        let c = load_crate(db, files, &dir)?;
        ws.members.insert(c.name.clone(), c);
    }
    for entry in &root.exclude {
        let Some(prefix) = entry.strip_suffix('*') else {
            continue;
        };
        let base = paths::join("", prefix);
        // Direct subdirectories of `base` that hold a Cargo.toml.
        let mut dirs = BTreeSet::new();
        for p in files.under(db, &base) {
            let Some(rest) = paths::relative(p, &base) else {
                continue;
            };
            if let Some(sub) = rest.strip_suffix("/Cargo.toml")
                && !sub.contains('/')
            {
                dirs.insert(paths::join(&base, sub));
            }
        }
        for dir in dirs {
            let c = load_crate(db, files, &dir)?;
            ws.excluded.insert(c.name.clone(), c);
        }
    }
    Ok(Arc::new(ws))
}

fn load_crate(db: &dyn Db, files: FileSet, dir: &str) -> Result<Crate, Diagnostic> {
    // Borrowed: a crate directory holds hundreds of files, looked at thrice.
    fn rel<'p>(p: &'p str, dir: &str) -> &'p str {
        paths::relative(p, dir).unwrap_or_default()
    }
    let path = manifest_path(dir);
    let file = db.file(&path);
    // The stamp says whether it exists without reading it (a warm run
    // takes the manifest from the cache).
    if matches!(file.stamp(db), crate::Stamp::Missing) {
        return Err(
            Diagnostic::in_file(&path, "workspace member has no Cargo.toml")
                .hint("fix `[workspace] members` in the root Cargo.toml"),
        );
    }
    let m = manifest(db, file).clone()?;
    let mut bins = m.bins.clone();
    let mut examples = m.examples.clone();
    let under = files.under(db, dir);
    if m.autobins {
        if under.iter().any(|p| rel(p, dir) == "src/main.rs") {
            bins.push(m.name.clone());
        }
        discover(under.iter().map(|p| rel(p, dir)), "src/bin/", &mut bins);
    }
    if m.autoexamples {
        discover(
            under.iter().map(|p| rel(p, dir)),
            "examples/",
            &mut examples,
        );
    }
    Ok(Crate {
        name: m.name.clone(),
        dir: dir.to_string(),
        bins,
        examples,
        dependencies: m.dependencies.clone(),
        build_dependencies: m.build_dependencies.clone(),
        dev_dependencies: m.dev_dependencies.clone(),
    })
}

/// `<dir>*.rs` stems and `<dir>*/main.rs` directory names.
fn discover<'a>(rels: impl Iterator<Item = &'a str>, dir: &str, out: &mut Vec<String>) {
    for r in rels {
        let Some(rest) = r.strip_prefix(dir) else {
            continue;
        };
        if let Some(stem) = rest.strip_suffix(".rs")
            && !stem.contains('/')
        {
            out.push(stem.to_string());
        } else if let Some(d) = rest.strip_suffix("/main.rs")
            && !d.contains('/')
        {
            out.push(d.to_string());
        }
    }
}
