//! The images a composition uses, derived statically (SPEC §4.1).
//!
//! The reference executes the composition and reads `"mzbuild"` from each
//! service's config. pipetrim never runs repository code: it follows the
//! names the composition references to class and function definitions and
//! collects every value those can store under `"mzbuild"`. The result must be
//! a superset of the reference's; anything it cannot determine makes the
//! composition use every image.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};

use rustc_hash::{FxHashMap, FxHashSet};

use crate::db::{Db, File, FileSet, Options};
use crate::diag::Diagnostic;

use super::imports::Lookup;
use super::summary::{
    Arg, ArgKey, ArgValue, ModuleSummary, ParamDefault, ScopeKind, Value, module_shape,
};

/// Where an image name came from, for `explain`.
#[derive(
    Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct ImageSource {
    pub file: String,
    pub line: usize,
    /// The class or function holding the value (`None`: module level).
    pub scope: Option<String>,
}

/// The candidate images of a composition.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct CompositionImages {
    /// Candidate image names, sorted; the caller drops names that are not
    /// images of the repository (as the reference does).
    pub names: Vec<String>,
    /// Set when some value could not be determined: the composition uses
    /// every image (fail safe); says where.
    pub every_image: Option<Diagnostic>,
    /// For each name, the places that contribute it.
    pub via: BTreeMap<String, Vec<ImageSource>>,
}

/// A definition: a module-level class or function of a file.
type ScopeId = (File, usize);

/// What a name is bound to: a definition, or a module.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    Scope(File, usize),
    Module(File),
}

/// Arguments some call passes to a definition; `forward` is the subclass
/// whose `super().__init__` passed them (its parameters may be forwarded).
struct ArgSource {
    args: Vec<Arg>,
    forward: Option<ScopeId>,
}

/// One file's bindings, indexed by name, with its imports resolved once
/// (module names and files): a name lookup then touches only the
/// definitions, aliases and imports that can bind the name, instead of
/// resolving every import of the file again.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct NameBindings {
    /// Sorted by name; indices in source order.
    names: Vec<(String, Named)>,
    /// `from m import *` imports (indices into the summary's imports).
    stars: Vec<usize>,
    /// Aligned with the summary's imports.
    imports: Vec<BoundImport>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
struct Named {
    scopes: Vec<usize>,
    aliases: Vec<usize>,
    /// Imports that bind the name (not star imports).
    imports: Vec<usize>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
struct BoundImport {
    /// The absolute module (`None`: a relative import that cannot be resolved).
    module: Option<String>,
    /// The module's file.
    module_path: Option<String>,
    /// `import a.b` / `import a.b as c`: the name bound and the file it denotes.
    plain: Option<(String, Option<String>)>,
    /// `from m import n`: the file of submodule `m.n` (aligned with the names).
    submodules: Vec<Option<String>>,
}

impl NameBindings {
    fn named(&self, name: &str) -> Option<&Named> {
        self.names
            .binary_search_by(|(n, _)| n.as_str().cmp(name))
            .ok()
            .map(|i| &self.names[i].1)
    }
}

/// The bindings of `file`, its imports resolved as [`Lookup`] resolves them.
#[salsa::tracked(returns(ref))]
pub fn name_bindings(db: &dyn Db, files: FileSet, options: Options, file: File) -> NameBindings {
    let summary = module_shape(db, file);
    let path = file.path(db).as_str();
    let lookup = Lookup::new(db, files, options, path);
    let mut names: BTreeMap<String, Named> = BTreeMap::new();
    for (i, s) in summary.scopes.iter().enumerate() {
        names.entry(s.name.clone()).or_default().scopes.push(i);
    }
    for (i, a) in summary.aliases.iter().enumerate() {
        names.entry(a.name.clone()).or_default().aliases.push(i);
    }
    let mut stars = Vec::new();
    let mut imports = Vec::with_capacity(summary.imports.len());
    for (i, imp) in summary.imports.iter().enumerate() {
        let module = lookup.absolute(path, imp.level, &imp.module);
        let mut b = BoundImport::default();
        if let Some(module) = &module {
            match &imp.names {
                None => {
                    // `import a.b as c` binds `c` to `a.b`; `import a.b` binds `a`.
                    let (bound, target) = match &imp.asname {
                        Some(a) => (a.clone(), module.clone()),
                        None => {
                            let first = module.split('.').next().unwrap_or_default();
                            (first.to_string(), first.to_string())
                        }
                    };
                    let e = names.entry(bound.clone()).or_default();
                    if e.imports.last() != Some(&i) {
                        e.imports.push(i);
                    }
                    b.plain = Some((bound, lookup.find(db, &target)));
                }
                Some(list) => {
                    b.module_path = lookup.find(db, module);
                    for n in list {
                        if n.name == "*" {
                            if stars.last() != Some(&i) {
                                stars.push(i);
                            }
                            b.submodules.push(None);
                            continue;
                        }
                        let e = names.entry(n.bound().to_string()).or_default();
                        if e.imports.last() != Some(&i) {
                            e.imports.push(i);
                        }
                        b.submodules
                            .push(lookup.find(db, &format!("{module}.{}", n.name)));
                    }
                }
            }
        }
        b.module = module;
        imports.push(b);
    }
    NameBindings {
        names: names.into_iter().collect(),
        stars,
        imports,
    }
}

struct Analysis<'db> {
    db: &'db dyn Db,
    files: FileSet,
    options: Options,
    every_image: Option<Diagnostic>,
    /// The lookups under way (file, owner, name): a lookup that comes back
    /// to one of them is a cycle (`from a import *` in `b` and back), which
    /// adds nothing the outer lookup does not already find.
    active: FxHashSet<(File, Option<usize>, &'db str)>,
    /// Every file whose summary the analysis read, in the order first read:
    /// what its result depends on besides the file set.
    read: FxHashSet<File>,
    read_order: Vec<File>,
    /// Each file's shape and bindings once fetched: a lookup asks for them
    /// again and again, and a query fetch (dependency recorded, memo found)
    /// costs more than a local map. The analysis depends on them from the
    /// first fetch on, so nothing is lost.
    shapes: FxHashMap<File, &'db ModuleSummary>,
    bindings: FxHashMap<File, &'db NameBindings>,
}

/// How many imports, aliases and attributes a lookup follows before it gives
/// up; giving up makes the composition use every image (fail safe).
const MAX_DEPTH: usize = 32;

impl<'db> Analysis<'db> {
    fn summary(&mut self, file: File) -> &'db ModuleSummary {
        self.note_read(file);
        let db = self.db;
        self.shapes
            .entry(file)
            .or_insert_with(|| module_shape(db, file))
    }

    fn bindings(&mut self, file: File) -> &'db NameBindings {
        let (db, files, options) = (self.db, self.files, self.options);
        self.bindings
            .entry(file)
            .or_insert_with(|| name_bindings(db, files, options, file))
    }

    fn note_read(&mut self, file: File) {
        if self.read.insert(file) {
            self.read_order.push(file);
        }
    }

    fn unknown(&mut self, diag: Diagnostic) {
        if self.every_image.is_none() {
            self.every_image = Some(diag);
        }
    }

    /// What `name` is bound to in `file` (module level, plus the imports of
    /// definition `owner`).
    fn lookup_name(
        &mut self,
        file: File,
        owner: Option<usize>,
        name: &'db str,
        depth: usize,
    ) -> Vec<Target> {
        if depth > MAX_DEPTH {
            // A lookup that gives up must not read as "nothing there".
            let path = file.path(self.db).clone();
            self.unknown(
                Diagnostic::in_file(
                    &path,
                    format!(
                        "gave up looking up `{name}`: more than {MAX_DEPTH} nested imports, \
                         aliases or attributes"
                    ),
                )
                .hint("the composition is taken to use every image"),
            );
            return Vec::new();
        }
        let key = (file, owner, name);
        if !self.active.insert(key) {
            return Vec::new();
        }
        let out = self.lookup_name_inner(file, owner, name, depth);
        self.active.remove(&key);
        out
    }

    fn lookup_name_inner(
        &mut self,
        file: File,
        owner: Option<usize>,
        name: &'db str,
        depth: usize,
    ) -> Vec<Target> {
        let mut out = Vec::new();
        let db = self.db;
        let summary = self.summary(file);
        if let Some(err) = &summary.parse_error {
            // The import closure's note for this file, word for word: the
            // plan reports one unparseable file once, with every step it
            // kept fail-safe (its imports and its names are both unknown).
            let path = file.path(db).as_str();
            self.unknown(super::unparseable(path, err, self.options.python_roots(db)));
            return out;
        }
        let bindings = self.bindings(file);
        let named = bindings.named(name);
        if let Some(n) = named {
            for &i in &n.scopes {
                out.push(Target::Scope(file, i));
            }
            for &i in &n.aliases {
                if let Some(a) = summary.aliases.get(i) {
                    out.extend(self.resolve(file, None, &a.target, depth + 1));
                }
            }
        }
        // The imports that can bind `name`, in source order: those naming
        // it and every star import.
        let named_imports: &[usize] = named.map_or(&[], |n| &n.imports);
        let (mut x, mut y) = (
            named_imports.iter().peekable(),
            bindings.stars.iter().peekable(),
        );
        loop {
            let i = match (x.peek(), y.peek()) {
                (Some(&&a), Some(&&b)) if a == b => {
                    x.next();
                    y.next();
                    a
                }
                (Some(&&a), Some(&&b)) if a < b => {
                    x.next();
                    a
                }
                (_, Some(&&b)) => {
                    y.next();
                    b
                }
                (Some(&&a), None) => {
                    x.next();
                    a
                }
                (None, None) => break,
            };
            let (Some(imp), Some(bound)) = (summary.imports.get(i), bindings.imports.get(i)) else {
                continue;
            };
            if imp.owner.is_some() && imp.owner != owner {
                continue;
            }
            if bound.module.is_none() {
                continue;
            }
            match &imp.names {
                None => {
                    if let Some((b, Some(p))) = &bound.plain
                        && b == name
                    {
                        out.push(Target::Module(db.file(p)));
                    }
                }
                Some(names) => {
                    for (k, n) in names.iter().enumerate() {
                        let star = n.name == "*";
                        if !star && n.bound() != name {
                            continue;
                        }
                        let wanted: &'db str = if star { name } else { n.name.as_str() };
                        // A namespace package has no file, only submodules.
                        let found = match &bound.module_path {
                            Some(mpath) => {
                                self.lookup_name(db.file(mpath), None, wanted, depth + 1)
                            }
                            None => Vec::new(),
                        };
                        if found.is_empty()
                            && !star
                            && let Some(Some(sub)) = bound.submodules.get(k)
                        {
                            out.push(Target::Module(db.file(sub)));
                        }
                        out.extend(found);
                    }
                }
            }
        }
        dedup(&mut out);
        out
    }

    /// What a dotted reference `a.b.C` in `file` denotes.
    fn resolve(
        &mut self,
        file: File,
        owner: Option<usize>,
        dotted: &'db str,
        depth: usize,
    ) -> Vec<Target> {
        let mut parts = dotted.split('.');
        let Some(first) = parts.next() else {
            return Vec::new();
        };
        let mut current = self.lookup_name(file, owner, first, depth);
        for attr in parts {
            let mut next = Vec::new();
            for t in current {
                match t {
                    // `Class.attr`: still the class.
                    Target::Scope(..) => next.push(t),
                    Target::Module(m) => {
                        let found = self.lookup_name(m, None, attr, depth + 1);
                        if found.is_empty() {
                            let path = m.path(self.db).clone();
                            let lookup = Lookup::new(self.db, self.files, self.options, &path);
                            if let Some(name) = lookup.index.module(&path)
                                && let Some(sub) = lookup.find(self.db, &format!("{name}.{attr}"))
                            {
                                next.push(Target::Module(self.db.file(&sub)));
                            }
                        }
                        next.extend(found);
                    }
                }
            }
            dedup(&mut next);
            current = next;
        }
        current
    }
}

/// Removes repeated targets, keeping the first of each (deterministic order).
fn dedup(v: &mut Vec<Target>) {
    if v.len() <= 16 {
        let mut i = 0;
        while i < v.len() {
            if v[..i].contains(&v[i]) {
                v.remove(i);
            } else {
                i += 1;
            }
        }
        return;
    }
    let mut seen = FxHashSet::default();
    v.retain(|t| seen.insert(*t));
}

/// The images of a composition (SPEC §4.1), from the persistent cache when
/// nothing it read changed (see [`super::analysis`]).
pub fn composition_images(
    db: &dyn Db,
    files: FileSet,
    options: Options,
    composition: File,
) -> &CompositionImages {
    &super::analysis::composition_analysis(db, files, options, composition).images
}

/// [`CompositionImages`] and the files whose summaries the analysis read.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct ImageAnalysis {
    pub images: CompositionImages,
    pub read: Vec<File>,
}

/// The images of a composition (SPEC §4.1), computed (memoized as part of
/// [`super::analysis::composition_analysis`]).
pub fn image_analysis(
    db: &dyn Db,
    files: FileSet,
    options: Options,
    composition: File,
) -> ImageAnalysis {
    let mut a = Analysis {
        db,
        files,
        options,
        every_image: None,
        active: FxHashSet::default(),
        read: FxHashSet::default(),
        read_order: Vec::new(),
        shapes: FxHashMap::default(),
        bindings: FxHashMap::default(),
    };
    let images = analyse_images(&mut a, composition);
    ImageAnalysis {
        images,
        read: a.read_order,
    }
}

fn analyse_images(a: &mut Analysis<'_>, composition: File) -> CompositionImages {
    let db = a.db;
    let options = a.options;
    let summary = a.summary(composition);
    let comp_path = composition.path(db).clone();
    if let Some(err) = &summary.parse_error {
        // The same note as the import closure's: the plan reports it once.
        return CompositionImages {
            every_image: Some(super::unparseable(
                &comp_path,
                err,
                options.python_roots(db),
            )),
            ..CompositionImages::default()
        };
    }

    // Phase 1: every definition the composition reaches. Its own definitions
    // all count; a function reaches what its body references; a class
    // reaches its bases.
    let mut reached: HashSet<ScopeId> = HashSet::new();
    let mut order: Vec<ScopeId> = Vec::new();
    let mut queue: VecDeque<ScopeId> = VecDeque::new();
    let mut args_for: HashMap<ScopeId, Vec<ArgSource>> = HashMap::new();
    let push = |id: ScopeId, reached: &mut HashSet<ScopeId>, queue: &mut VecDeque<ScopeId>| {
        if reached.insert(id) {
            queue.push_back(id);
        }
    };
    for i in 0..summary.scopes.len() {
        push((composition, i), &mut reached, &mut queue);
    }
    for r in &summary.refs {
        for t in a.resolve(composition, None, r, 0) {
            if let Target::Scope(f, i) = t {
                push((f, i), &mut reached, &mut queue);
            }
        }
    }
    while let Some((file, idx)) = queue.pop_front() {
        order.push((file, idx));
        let s = a.summary(file);
        let Some(scope) = s.scopes.get(idx) else {
            continue;
        };
        let follow_refs = scope.kind == ScopeKind::Function || file == composition;
        if follow_refs {
            for r in &scope.refs {
                for t in a.resolve(file, Some(idx), r, 0) {
                    if let Target::Scope(f, i) = t {
                        push((f, i), &mut reached, &mut queue);
                    }
                }
            }
        }
        if scope.kind == ScopeKind::Class {
            for b in &scope.bases {
                for t in a.resolve(file, None, b, 0) {
                    if let Target::Scope(f, i) = t {
                        for call in &scope.super_init_calls {
                            args_for.entry((f, i)).or_default().push(ArgSource {
                                args: call.clone(),
                                forward: Some((file, idx)),
                            });
                        }
                        push((f, i), &mut reached, &mut queue);
                    }
                }
            }
        }
    }

    // Phase 2: the arguments the composition passes to those definitions.
    for call in &summary.calls {
        for t in a.resolve(composition, call.owner, &call.callee, 0) {
            if let Target::Scope(f, i) = t {
                args_for.entry((f, i)).or_default().push(ArgSource {
                    args: call.args.clone(),
                    forward: None,
                });
            }
        }
    }

    // Every file whose definitions the values below may read (already
    // read through lookups; noted here so the dependency list of the
    // analysis does not rest on that).
    for &(f, _) in reached.iter().chain(args_for.keys()) {
        a.note_read(f);
    }

    // Phase 3: the values.
    let mut via: BTreeMap<String, BTreeSet<ImageSource>> = BTreeMap::new();
    for v in &summary.mzbuild {
        let src = ImageSource {
            file: comp_path.clone(),
            line: v.line,
            scope: None,
        };
        match &v.value {
            Value::Literal(s) => {
                via.entry(s.clone()).or_default().insert(src);
            }
            Value::Local { literals, .. } => {
                for s in literals {
                    via.entry(s.clone()).or_default().insert(src.clone());
                }
            }
            Value::Param { .. } | Value::Unknown(_) => a.unknown(
                Diagnostic::in_file(
                    &comp_path,
                    "an `\"mzbuild\"` value cannot be determined statically",
                )
                .at_line(Some(v.line))
                .hint("the composition is taken to use every image"),
            ),
        }
    }
    for &(file, idx) in &order {
        let s = a.summary(file);
        let Some(scope) = s.scopes.get(idx) else {
            continue;
        };
        let path = file.path(db);
        for v in &scope.mzbuild {
            let src = ImageSource {
                file: path.clone(),
                line: v.line,
                scope: Some(scope.name.clone()),
            };
            let mut names = BTreeSet::new();
            let fail = |why: String| {
                Diagnostic::in_file(path, format!("`{}`: {why}", scope.name))
                    .at_line(Some(v.line))
                    .hint("the composition is taken to use every image")
            };
            match &v.value {
                Value::Literal(s) => {
                    names.insert(s.clone());
                }
                Value::Local { literals, .. } => names.extend(literals.iter().cloned()),
                Value::Param {
                    name,
                    init,
                    literals,
                } => {
                    names.extend(literals.iter().cloned());
                    if !*init {
                        a.unknown(fail(format!(
                            "`\"mzbuild\"` is parameter `{name}` of an inner function"
                        )));
                    } else if let Err(why) =
                        param_values(db, &args_for, (file, idx), name, &mut names, 0)
                    {
                        a.unknown(fail(why));
                    }
                }
                Value::Unknown(why) => a.unknown(fail(why.clone())),
            }
            for n in names {
                via.entry(n).or_default().insert(src.clone());
            }
        }
    }
    CompositionImages {
        names: via.keys().cloned().collect(),
        every_image: a.every_image.clone(),
        via: via
            .into_iter()
            .map(|(k, v)| (k, v.into_iter().collect()))
            .collect(),
    }
}

/// The literal values parameter `name` of definition `id` can take: its
/// default plus the literal arguments callers pass for it.
fn param_values(
    db: &dyn Db,
    args_for: &HashMap<ScopeId, Vec<ArgSource>>,
    id: ScopeId,
    name: &str,
    out: &mut BTreeSet<String>,
    depth: usize,
) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Err(format!("parameter `{name}` is forwarded too deeply"));
    }
    let summary = module_shape(db, id.0);
    let Some(param) = summary
        .scopes
        .get(id.1)
        .and_then(|s| s.params.iter().find(|p| p.name == name))
    else {
        return Err(format!("`{name}` is not a parameter of the constructor"));
    };
    match &param.default {
        ParamDefault::Absent => {}
        ParamDefault::Literal(s) => {
            out.insert(s.clone());
        }
        ParamDefault::Other => {
            return Err(format!(
                "the default of parameter `{name}` is not a literal"
            ));
        }
    }
    for src in args_for.get(&id).into_iter().flatten() {
        let given = src.args.iter().find(|a| match &a.key {
            ArgKey::Keyword(k) => k == name,
            ArgKey::Positional(i) => Some(*i) == param.position,
            ArgKey::Star => false,
        });
        match given.map(|a| &a.value) {
            Some(ArgValue::Str(s)) => {
                out.insert(s.clone());
            }
            Some(ArgValue::None) => {}
            Some(ArgValue::Name(n)) if src.forward.is_some() => {
                let Some(sub) = src.forward else { continue };
                param_values(db, args_for, sub, n, out, depth + 1)?;
            }
            Some(_) => {
                return Err(format!(
                    "an argument for parameter `{name}` is not a literal"
                ));
            }
            None => {
                if src.args.iter().any(|a| a.key == ArgKey::Star) {
                    return Err(format!(
                        "a call passes `*args`/`**kwargs` that may set parameter `{name}`"
                    ));
                }
            }
        }
    }
    Ok(())
}
