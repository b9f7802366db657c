//! Module index, per-module import resolution and the import closure of a
//! composition (SPEC §4.2).
//!
//! [`direct_imports`] resolves one file's imports to files and is its own
//! query: editing a module re-runs its summary and its direct imports, and
//! only closures that read them re-run.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use rustc_hash::FxHashSet;

use crate::db::{Db, File, FileSet, Options};
use crate::diag::Diagnostic;
use crate::paths;

use super::summary::{Import, ModuleSummary, ScopeKind, line_of_rank, module_shape};

/// Dotted module names ↔ files, over the first-party roots.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct ModuleIndex {
    pub by_name: BTreeMap<String, String>,
    pub by_path: BTreeMap<String, String>,
    /// Directories without `__init__.py` that hold modules: namespace
    /// packages (`materialize.mzcompose.services` is one), importable but
    /// with no file of their own.
    pub namespaces: BTreeSet<String>,
}

impl ModuleIndex {
    pub fn path(&self, module: &str) -> Option<&str> {
        self.by_name.get(module).map(String::as_str)
    }

    pub fn module(&self, path: &str) -> Option<&str> {
        self.by_path.get(path).map(String::as_str)
    }
}

/// `root/a/b.py` → `a.b`, `root/a/__init__.py` → `a`.
fn module_name(rel: &str) -> Option<String> {
    let stem = rel.strip_suffix(".py")?;
    let stem = stem.strip_suffix("/__init__").unwrap_or(stem);
    if stem.is_empty() || stem == "__init__" {
        return None;
    }
    let parts: Vec<&str> = stem.split('/').collect();
    // Only names Python can import (no dashes, dots or leading digits).
    let valid = parts.iter().all(|p| {
        !p.is_empty()
            && !p.starts_with(|c: char| c.is_ascii_digit())
            && p.chars().all(|c| c.is_alphanumeric() || c == '_')
    });
    valid.then(|| parts.join("."))
}

/// The importable modules under the first-party roots (first root wins).
#[salsa::tracked(returns(ref))]
pub fn module_index(db: &dyn Db, files: FileSet, options: Options) -> ModuleIndex {
    let mut index = ModuleIndex::default();
    for root in options.python_roots(db) {
        let root = root.trim_end_matches('/');
        for path in files.under(db, root) {
            let Some(rel) = paths::relative(path, root) else {
                continue;
            };
            if let Some(name) = module_name(rel)
                && !index.by_name.contains_key(&name)
            {
                index.by_name.insert(name.clone(), path.clone());
                index.by_path.insert(path.clone(), name);
            }
        }
    }
    let mut namespaces = BTreeSet::new();
    for name in index.by_name.keys() {
        let mut parts: Vec<&str> = name.split('.').collect();
        while parts.len() > 1 {
            parts.pop();
            let parent = parts.join(".");
            if !index.by_name.contains_key(&parent) {
                namespaces.insert(parent);
            }
        }
    }
    index.namespaces = namespaces;
    index
}

/// One resolved import: `importer` line `line` loads `target`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Edge {
    pub target: String,
    pub line: usize,
    /// Inside a function body (followed only with `lazy_imports`).
    pub in_function: bool,
    /// Inside `if TYPE_CHECKING:` (never followed).
    pub type_checking: bool,
}

impl Edge {
    /// Whether the closure follows this import: never one under
    /// `TYPE_CHECKING`, one in a function body only with `--lazy-imports`.
    /// (The priming walks the same edges, `prime::prime_imports`.)
    pub fn followed(&self, lazy: bool) -> bool {
        !self.type_checking && (lazy || !self.in_function)
    }
}

/// An absolute import that finds nothing under the Python roots although
/// the repository holds a package of that name elsewhere: the roots are
/// probably wrong (`--python-root ci`), and what the import loads is
/// unknown. Treated fail safe (SPEC §10), like a file that does not parse.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Unresolved {
    pub diagnostic: Diagnostic,
    /// The package directories of that name (sorted).
    pub packages: Vec<String>,
    pub in_function: bool,
    pub type_checking: bool,
}

/// Package directories (those with `__init__.py`) by their name, over the
/// whole checkout: where an import that the roots do not resolve may point.
#[salsa::tracked(returns(ref))]
pub fn package_dirs(db: &dyn Db, files: FileSet) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for p in files.paths(db).iter() {
        if let Some(dir) = p.strip_suffix("/__init__.py") {
            out.entry(paths::file_name(dir).to_string())
                .or_default()
                .push(dir.to_string());
        }
    }
    out
}

/// A file's imports, resolved to first-party files.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct DirectImports {
    pub edges: Vec<Edge>,
    /// Absolute imports of a package that exists, but not under the roots.
    pub unresolved: Vec<Unresolved>,
    /// Set when the file cannot be parsed (or read): its imports are
    /// unknown, and every composition whose closure reaches it depends on
    /// every first-party module (see [`ImportClosure::unsure`]).
    pub unsure: Vec<Diagnostic>,
}

/// How the modules of one file's imports are looked up: the index, plus,
/// for a file outside the roots (a composition), its own directory — the
/// reference puts the composition's directory on `sys.path`.
pub(crate) struct Lookup<'a> {
    pub index: &'a ModuleIndex,
    pub files: FileSet,
    pub own_dir: Option<String>,
}

impl Lookup<'_> {
    pub fn new<'a>(db: &'a dyn Db, files: FileSet, options: Options, importer: &str) -> Lookup<'a> {
        let index = module_index(db, files, options);
        let own_dir = index
            .module(importer)
            .is_none()
            .then(|| paths::parent(importer).to_string());
        Lookup {
            index,
            files,
            own_dir,
        }
    }

    /// The file of module `name`, if it is first-party.
    pub fn find(&self, db: &dyn Db, name: &str) -> Option<String> {
        if let Some(p) = self.index.path(name) {
            return Some(p.to_string());
        }
        let dir = self.own_dir.as_deref()?;
        let first = name.split('.').next()?;
        if self.index.path(first).is_some() {
            return None;
        }
        let rel = name.replace('.', "/");
        // Only below the importer's directory (a name with a leading `/`
        // would otherwise reach the top of the checkout): the analysis of
        // a composition then sees only the file set below the Python
        // roots and its own directory, which its cache key covers.
        [format!("{rel}.py"), format!("{rel}/__init__.py")]
            .into_iter()
            .map(|r| paths::join(dir, &r))
            .filter(|p| paths::is_under(p, dir))
            .find(|p| self.files.contains(db, p))
    }

    /// The absolute module an import names (relative ones resolved against
    /// the importer's package), or `None` if it cannot be resolved.
    pub fn absolute(&self, importer: &str, level: u32, module: &str) -> Option<String> {
        if level == 0 {
            return Some(module.to_string());
        }
        let me = self.index.module(importer)?;
        let mut package: Vec<&str> = me.split('.').collect();
        if !importer.ends_with("/__init__.py") {
            package.pop();
        }
        for _ in 1..level {
            package.pop()?;
        }
        if !module.is_empty() {
            package.push(module);
        }
        (!package.is_empty()).then(|| package.join("."))
    }

    /// The files loading `name` loads: every parent package's `__init__.py`
    /// and the module itself (as far as they are first-party).
    pub fn chain(&self, db: &dyn Db, name: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut prefix = String::new();
        for part in name.split('.') {
            if !prefix.is_empty() {
                prefix.push('.');
            }
            prefix.push_str(part);
            match self.find(db, &prefix) {
                Some(p) => out.push(p),
                None if self.index.namespaces.contains(&prefix) => {}
                None => break,
            }
        }
        out
    }
}

/// The files one import statement loads.
fn import_targets(db: &dyn Db, lookup: &Lookup, importer: &str, imp: &Import) -> Vec<String> {
    let Some(module) = lookup.absolute(importer, imp.level, &imp.module) else {
        return Vec::new();
    };
    let mut out = lookup.chain(db, &module);
    if let Some(names) = &imp.names {
        for n in names.iter().filter(|n| n.name != "*") {
            // `from pkg import name` imports `pkg.name` when it is a module.
            if let Some(p) = lookup.find(db, &format!("{module}.{}", n.name)) {
                out.push(p);
            }
        }
    }
    out
}

/// For an absolute import whose top-level package the roots do not hold
/// (stdlib and third-party imports, as a rule), the package directories of
/// that name elsewhere in the checkout, if there are any.
fn misplaced_package<'i>(
    db: &dyn Db,
    packages: &BTreeMap<String, Vec<String>>,
    lookup: &Lookup,
    imp: &'i Import,
) -> Option<(&'i str, Vec<String>)> {
    if imp.level != 0 {
        return None;
    }
    let first = imp.module.split('.').next().filter(|f| !f.is_empty())?;
    // Cheapest test first: almost no import names a package of the checkout.
    let dirs = packages.get(first)?;
    if lookup.find(db, first).is_some() || lookup.index.namespaces.contains(first) {
        return None;
    }
    Some((first, dirs.clone()))
}

/// The modules of a package directory: its `*.py` files and its
/// subpackages' `__init__.py`.
fn package_modules(db: &dyn Db, files: FileSet, dir: &str) -> Vec<String> {
    files
        .under(db, dir)
        .iter()
        .filter(|p| p.ends_with(".py"))
        .filter(|p| {
            paths::relative(p, dir).is_some_and(|rest| {
                !rest.contains('/')
                    || rest.matches('/').count() == 1 && rest.ends_with("/__init__.py")
            })
        })
        .cloned()
        .collect()
}

/// The module's own functions that run while it loads: those called at
/// load time (`X = f()`), and, transitively, the module's functions they call.
fn functions_run_at_load(summary: &ModuleSummary) -> BTreeSet<usize> {
    let by_name = |name: &str| {
        summary
            .scopes
            .iter()
            .position(|s| s.kind == ScopeKind::Function && s.name == name)
    };
    let mut run = BTreeSet::new();
    let mut queue: Vec<usize> = summary
        .load_calls
        .iter()
        .filter_map(|c| by_name(c))
        .collect();
    while let Some(i) = queue.pop() {
        if run.insert(i)
            && let Some(s) = summary.scopes.get(i)
        {
            queue.extend(s.called.iter().filter_map(|c| by_name(c)));
        }
    }
    run
}

/// Resolves one file's imports (all of them, each flagged load-time or
/// not), with the file's real line numbers.
#[salsa::tracked(returns(ref))]
pub fn direct_imports(db: &dyn Db, files: FileSet, options: Options, file: File) -> DirectImports {
    let mut out = ranked_imports(db, files, options, file).clone();
    for e in &mut out.edges {
        e.line = line_of_rank(db, file, e.line);
    }
    unrank_notes(db, &mut out.unsure, &mut out.unresolved);
    out
}

/// The lines of import notes (unparseable files, packages outside the
/// roots), from ranks of their files' [`super::summary::module_shape`] to
/// real lines.
pub(crate) fn unrank_notes(db: &dyn Db, unsure: &mut [Diagnostic], unresolved: &mut [Unresolved]) {
    let diagnostics = unsure
        .iter_mut()
        .chain(unresolved.iter_mut().map(|u| &mut u.diagnostic));
    for d in diagnostics {
        unrank_diagnostic(db, d);
    }
}

/// A diagnostic's line, if it has one, from a rank of its file's
/// [`super::summary::module_shape`] to the real line.
pub(crate) fn unrank_diagnostic(db: &dyn Db, d: &mut Diagnostic) {
    if let (Some(path), Some(line)) = (&d.file, d.line) {
        d.line = Some(line_of_rank(db, db.file(path), line));
    }
}

/// [`direct_imports`] with each line as its rank in the file's shape
/// ([`super::summary::module_shape`]): what the closure follows, unchanged
/// by an edit that only moves lines.
#[salsa::tracked(returns(ref))]
pub fn ranked_imports(db: &dyn Db, files: FileSet, options: Options, file: File) -> DirectImports {
    let path = file.path(db).as_str();
    let summary = module_shape(db, file);
    let lookup = Lookup::new(db, files, options, path);
    let mut out = DirectImports::default();
    let dir = paths::parent(path);
    if let Some(err) = &summary.parse_error {
        // Fail safe (SPEC §10): its imports are unknown, so every module
        // under the first-party roots counts as imported. The closure carries
        // the note; the plan gives it its reach.
        out.unsure
            .push(super::unparseable(path, err, options.python_roots(db)));
        return out;
    }
    let run_at_load = functions_run_at_load(summary);
    let packages = package_dirs(db, files);
    for imp in &summary.imports {
        // A function called at load time runs its imports at load time.
        let in_function = imp.in_function && !imp.owner.is_some_and(|o| run_at_load.contains(&o));
        for target in import_targets(db, &lookup, path, imp) {
            out.edges.push(Edge {
                target,
                line: imp.line,
                in_function,
                type_checking: imp.type_checking,
            });
        }
        if let Some((name, dirs)) = misplaced_package(db, packages, &lookup, imp) {
            // About the roots, not this file: one diagnostic per package
            // name, equal wherever it is imported (the plan reports it once).
            let roots = options.python_roots(db).join("`, `");
            let shown = dirs.join("`, `");
            let u = Unresolved {
                diagnostic: Diagnostic::new(format!(
                    "imports of `{name}` find nothing under the Python roots (`{roots}`), but \
                     the checkout has a package of that name: `{shown}`"
                ))
                .hint(
                    "is --python-root right? Meanwhile every file of that package and every \
                     image count as inputs of the compositions that import it",
                ),
                packages: dirs,
                in_function,
                type_checking: imp.type_checking,
            };
            if !out.unresolved.contains(&u) {
                out.unresolved.push(u);
            }
        }
    }
    for d in &summary.dynamic_imports {
        // The module is computed at run time: every module of the package.
        for target in package_modules(db, files, dir) {
            if target != path {
                out.edges.push(Edge {
                    target,
                    line: d.line,
                    in_function: d.in_function,
                    type_checking: d.type_checking,
                });
            }
        }
    }
    out.edges.sort();
    out.edges.dedup();
    out
}

/// Why a file is in a closure: the first import that reached it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Via {
    pub importer: String,
    pub line: usize,
    /// The import is inside a function (reached only with `lazy_imports`).
    pub function_level: bool,
}

/// The first-party files a composition loads (SPEC §4.2).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct ImportClosure {
    /// Sorted; as `bin/ci-python-imports` lists them (submodules of a
    /// top-level package only: not `materialize/__init__.py`, not the
    /// composition).
    pub files: Vec<String>,
    /// Files of the closure (the composition included) that cannot be
    /// parsed. Each one's imports are unknown, so the composition depends on
    /// every first-party module under the Python roots (SPEC §10): the plan
    /// keeps its steps when any `*.py` under a root changes.
    pub unsure: Vec<Diagnostic>,
    /// Followed imports of packages that exist outside the roots (see
    /// [`Unresolved`]): the plan keeps the composition's steps when a file
    /// of such a package, or of any image, changes.
    pub unresolved: Vec<Unresolved>,
    /// For every file reached (listed or not), the edge that first reached it.
    pub via: BTreeMap<String, Via>,
}

/// One module of an import chain (see [`ImportClosure::import_chain`]).
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub struct ImportHop {
    pub file: String,
    /// The line of this file's import statement that loads the previous
    /// hop's file (`None` for the first hop: the imported file itself).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// That import is inside a function body (followed with `--lazy-imports`).
    pub function_level: bool,
}

impl ImportClosure {
    /// How the composition loads `file`: `file`, the module that imports
    /// it, …, up to the composition file. The closure is breadth first and
    /// [`Self::via`] keeps the first edge that reached each file, so this is
    /// a shortest chain. `None` when the composition does not load `file`.
    pub fn import_chain(&self, file: &str) -> Option<Vec<ImportHop>> {
        let mut chain = vec![ImportHop {
            file: file.to_string(),
            line: None,
            function_level: false,
        }];
        let mut cur = file;
        while let Some(via) = self.via.get(cur) {
            // The via edges form a tree rooted at the composition; the bound
            // only guards against a malformed map.
            if chain.len() > self.via.len() {
                return None;
            }
            chain.push(ImportHop {
                file: via.importer.clone(),
                line: Some(via.line),
                function_level: via.function_level,
            });
            cur = &via.importer;
        }
        (chain.len() > 1).then_some(chain)
    }
}

/// The first-party files a composition loads (SPEC §4.2): the closure of
/// [`direct_imports`] from the composition file, from the persistent cache
/// when nothing it read changed (see [`super::analysis`]).
pub fn composition_imports(
    db: &dyn Db,
    files: FileSet,
    options: Options,
    composition: File,
) -> &ImportClosure {
    &super::analysis::composition_analysis(db, files, options, composition).imports
}

/// Breadth-first closure of [`direct_imports`] from the composition file
/// (memoized as part of [`super::analysis::composition_analysis`]).
pub fn import_closure(
    db: &dyn Db,
    files: FileSet,
    options: Options,
    composition: File,
) -> ImportClosure {
    let lazy = options.lazy_imports(db);
    let index = module_index(db, files, options);
    let start: &str = composition.path(db);
    let mut out = ImportClosure::default();
    // Borrowed from the memoized imports: a path is copied only when it
    // is new (each of ~90,000 edges on c01 was cloned to be looked up).
    let mut seen: FxHashSet<&str> = FxHashSet::from_iter([start]);
    let mut queue = VecDeque::from([(start, composition)]);
    while let Some((path, file)) = queue.pop_front() {
        let direct = ranked_imports(db, files, options, file);
        out.unsure.extend(direct.unsure.iter().cloned());
        for u in &direct.unresolved {
            let followed = !u.type_checking && (lazy || !u.in_function);
            if followed && !out.unresolved.contains(u) {
                out.unresolved.push(u.clone());
            }
        }
        for e in &direct.edges {
            if !e.followed(lazy) {
                continue;
            }
            if seen.insert(&e.target) {
                out.via.insert(
                    e.target.clone(),
                    Via {
                        importer: path.to_string(),
                        line: e.line,
                        function_level: e.in_function,
                    },
                );
                queue.push_back((&e.target, db.file(&e.target)));
            }
        }
    }
    let mut files: Vec<String> = seen
        .into_iter()
        .filter(|p| index.module(p).is_some_and(|m| m.contains('.')))
        .map(str::to_string)
        .collect();
    files.sort_unstable();
    out.files = files;
    out
}
