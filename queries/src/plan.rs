//! Step inputs (SPEC §4), the change test (§5) and the trim plan (§6).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::db::{Db, Workspace};
use crate::diag::Diagnostic;
use crate::images::{compositions, image_graph, used_images};
use crate::inputs::{Input, image_inputs};
use crate::pathspec::{Pathspec, PathspecSet, any_changed};
use crate::pipeline::{StepKind, template};
use crate::python::analysis::composition_inputs;
use rustc_hash::FxHashMap;

/// Where a step's glob came from.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum GlobOrigin {
    /// The step's own `inputs` list.
    Explicit,
    /// The directory of composition `composition`.
    CompositionDir { composition: Arc<str> },
    /// A module that composition `composition` imports.
    Import { composition: Arc<str> },
}

/// Everything a step depends on, before looking at the change set.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct StepInputs {
    /// Pathspecs: explicit inputs, composition directories, imported files
    /// (what the reference's report prints as `globs:`), with their origins.
    /// Shared, not copied: a composition step has a glob per module its
    /// composition imports, and the plan's decisions list them again.
    pub globs: Vec<(Arc<str>, GlobOrigin)>,
    /// The globs compiled once (aligned with `globs`; `None` if malformed,
    /// which the step's error already reports).
    /// Shared between the steps that name the same glob (an imported
    /// module is in most composition steps' closures).
    pub compiled: Vec<Option<Arc<Pathspec>>>,
    /// Images the step uses directly (compositions' images, cloudtest's).
    pub images: BTreeSet<String>,
    /// Those images and everything they depend on.
    pub image_closure: BTreeSet<String>,
    /// The closure's images in its order, each with what a reason through
    /// it names, shared by every plan's reasons (see [`ClosureImage`]).
    pub closure: Vec<ClosureImage>,
    /// For each image of the closure, the directly used image that reaches it.
    pub closure_via: BTreeMap<String, String>,
    /// Where an image came from: composition or plugin, for `explain`.
    pub image_origins: BTreeMap<String, String>,
    /// What could add inputs to the step but could not be read or
    /// understood, each with what it may reach (SPEC §10).
    pub fail_safe: Vec<FailSafe>,
    /// Set when the composition's images could not be determined: every image counts.
    pub every_image: bool,
    /// The glob texts and the image names as the plan reports them, built
    /// once here and shared by every plan (a re-plan after an edit clones
    /// no list).
    pub glob_list: Arc<[Arc<str>]>,
    pub image_list: Arc<[String]>,
}

/// One image of a step's closure as the plan uses it: the image's position
/// in the image graph's (sorted) names (`u32::MAX` for a name the graph
/// lacks), so its hits are found by index, not by name; and the names a
/// [`Reason::Image`] through it carries, built once with the step's inputs.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClosureImage {
    pub id: u32,
    pub image: Arc<str>,
    /// The directly used image that reaches it.
    pub used: Arc<str>,
    /// Where `used` came from (composition or plugin).
    pub used_by: Arc<str>,
}

/// Something that could add inputs to a step but could not be read or
/// understood (a Python file that does not parse, a lookup that gave up, a
/// path that is not a valid pathspec). The step is kept whenever the change
/// set touches anything it may reach, with [`Reason::FailSafe`]; the
/// diagnostic is always in the plan's `errors`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FailSafe {
    pub diagnostic: Diagnostic,
    /// Python modules (`*.py`) below these directories (`""`: anywhere)
    /// may be inputs: the first-party roots, for a file whose imports are
    /// unknown.
    pub python_roots: Vec<String>,
    /// These paths and everything below them, compared literally (a
    /// composition directory or imported file that is not a valid pathspec).
    pub literal: Vec<String>,
    /// Every image may be used (they are then among the step's images): a
    /// change to any image input keeps the step with this reason too.
    pub every_image: bool,
}

impl FailSafe {
    /// A note that reaches nothing yet (set the reach fields).
    pub fn new(diagnostic: Diagnostic) -> Self {
        FailSafe {
            diagnostic,
            python_roots: Vec::new(),
            literal: Vec::new(),
            every_image: false,
        }
    }

    /// Whether a changed path may be an input through this note (the
    /// image part is decided with the image hits).
    pub fn reaches(&self, path: &str) -> bool {
        (path.ends_with(".py")
            && self
                .python_roots
                .iter()
                .any(|r| r.is_empty() || crate::paths::is_under(path, r)))
            || self
                .literal
                .iter()
                .any(|l| path == l || crate::paths::is_under(path, l))
    }
}

impl StepInputs {
    /// Adds a fail-safe note, merged with an equal diagnostic already there
    /// (the import closure and the image analysis report a composition that
    /// does not parse with the same diagnostic).
    fn add_fail_safe(&mut self, f: FailSafe) {
        match self
            .fail_safe
            .iter_mut()
            .find(|g| g.diagnostic == f.diagnostic)
        {
            Some(g) => {
                g.every_image |= f.every_image;
                for r in f.python_roots {
                    if !g.python_roots.contains(&r) {
                        g.python_roots.push(r);
                    }
                }
                for l in f.literal {
                    if !g.literal.contains(&l) {
                        g.literal.push(l);
                    }
                }
            }
            None => self.fail_safe.push(f),
        }
    }
}

/// Every step's include globs filed by [`Pathspec::index_dir`]: (step
/// position in `Template::steps`, glob position). A re-plan after an edit
/// then tries the few globs a changed path can match instead of every glob
/// of every step (at scale 10, ~1,500 steps with dozens of imported files
/// each).
pub type GlobIndex = crate::paths::DirIndex<(u32, u32)>;

#[salsa::tracked(returns(ref))]
pub fn glob_index(db: &dyn Db, ws: Workspace) -> Result<Arc<GlobIndex>, Diagnostic> {
    let inputs = step_inputs(db, ws).clone()?;
    let mut index = GlobIndex::default();
    for (step, si) in (0u32..).zip(inputs.iter()) {
        let Ok(si) = si else { continue };
        for (glob, spec) in (0u32..).zip(&si.compiled) {
            if let Some(spec) = spec
                && !spec.is_exclude()
            {
                index.insert(spec.index_dir(), (step, glob));
            }
        }
    }
    Ok(Arc::new(index))
}

/// The inputs of every step of the template (indexed like `Template::steps`).
/// A step whose inputs cannot be computed carries the error.
#[salsa::tracked(returns(ref))]
pub fn step_inputs(
    db: &dyn Db,
    ws: Workspace,
) -> Result<Arc<Vec<Result<StepInputs, Diagnostic>>>, Diagnostic> {
    let tpl = template(db, ws.options(db)).clone()?;
    let comps = compositions(db, ws.files(db));
    let graph = image_graph(db, ws.files(db));
    let mut image_ids: Option<BTreeMap<&str, u32>> = None;
    let mut parsed = FxHashMap::default();
    // One string per glob for every step that lists it (most composition
    // steps list the same framework modules, many steps the same inputs).
    let mut shared: rustc_hash::FxHashSet<Arc<str>> = Default::default();
    let mut share = |p: &str| -> Arc<str> {
        if let Some(s) = shared.get(p) {
            return s.clone();
        }
        let s: Arc<str> = p.into();
        shared.insert(s.clone());
        s
    };
    let mut out = Vec::with_capacity(tpl.steps.len());
    for step in &tpl.steps {
        if !step.kind.is_trimmable() {
            out.push(Ok(StepInputs::default()));
            continue;
        }
        let mut si = StepInputs::default();
        let mut result: Result<(), Diagnostic> = Ok(());
        for i in &step.inputs {
            si.globs.push((share(i), GlobOrigin::Explicit));
        }
        if let Err(e) = PathspecSet::new(&step.inputs) {
            result = Err(
                Diagnostic::in_file(&tpl.path, format!("step `{}`: {e}", step.id))
                    .at_line(step.line),
            );
        }
        for name in &step.compositions {
            let comps = match comps {
                Ok(c) => c,
                Err(e) => {
                    result = Err(e.clone());
                    break;
                }
            };
            let Some(dir) = comps.get(name) else {
                result = Err(Diagnostic::in_file(
                    &tpl.path,
                    format!(
                        "step `{}` uses composition `{name}`, which does not exist",
                        step.id
                    ),
                )
                .at_line(step.line)
                .hint("no mzcompose.py lives in a directory of that name"));
                break;
            };
            let composition: Arc<str> = name.as_str().into();
            si.globs.push((
                share(dir),
                GlobOrigin::CompositionDir {
                    composition: composition.clone(),
                },
            ));
            let file = db.file(&format!("{dir}/mzcompose.py"));
            let closure = composition_inputs(db, ws.files(db), ws.options(db), file);
            for f in closure.files() {
                si.globs.push((
                    share(f),
                    GlobOrigin::Import {
                        composition: composition.clone(),
                    },
                ));
            }
            let roots = ws.options(db).python_roots(db);
            for d in closure.unsure() {
                si.add_fail_safe(FailSafe {
                    python_roots: roots.clone(),
                    ..FailSafe::new(d.clone())
                });
            }
            for u in closure.unresolved() {
                si.add_fail_safe(FailSafe {
                    python_roots: roots.clone(),
                    literal: u.packages.clone(),
                    every_image: true,
                    ..FailSafe::new(u.diagnostic.clone())
                });
            }
            match graph {
                Ok(graph) => {
                    let used = used_images(db, ws.files(db), ws.options(db), dir, graph);
                    let origin = match &used.every_image {
                        Some(why) => {
                            si.every_image = true;
                            si.add_fail_safe(FailSafe {
                                every_image: true,
                                ..FailSafe::new(why.clone())
                            });
                            format!("composition `{name}` (every image: fail safe)")
                        }
                        None => format!("composition `{name}`"),
                    };
                    for n in used.names {
                        si.image_origins
                            .entry(n.clone())
                            .or_insert_with(|| origin.clone());
                        si.images.insert(n);
                    }
                }
                Err(e) => {
                    result = Err(e.clone());
                    break;
                }
            }
        }
        if step.cloudtest {
            for n in ["environmentd", "clusterd"] {
                si.images.insert(n.to_string());
                si.image_origins
                    .entry(n.to_string())
                    .or_insert_with(|| "the cloudtest plugin".into());
            }
        }
        if result.is_ok() && !si.images.is_empty() {
            match graph {
                Ok(graph) => {
                    let ids = image_ids.get_or_insert_with(|| image_ids_of(graph));
                    for n in &si.images {
                        if !graph.images.contains_key(n) {
                            result = Err(Diagnostic::in_file(
                                &tpl.path,
                                format!(
                                    "step `{}` needs image `{n}`, which does not exist",
                                    step.id
                                ),
                            )
                            .at_line(step.line));
                            break;
                        }
                        for c in graph.closure(n) {
                            si.closure_via.entry(c.clone()).or_insert_with(|| n.clone());
                            si.image_closure.insert(c);
                        }
                    }
                    si.closure = si
                        .image_closure
                        .iter()
                        .map(|c| {
                            let used = si.closure_via.get(c).unwrap_or(c);
                            ClosureImage {
                                id: ids.get(c.as_str()).copied().unwrap_or(u32::MAX),
                                image: c.as_str().into(),
                                used: used.as_str().into(),
                                used_by: si
                                    .image_origins
                                    .get(used)
                                    .map_or("", String::as_str)
                                    .into(),
                            }
                        })
                        .collect();
                }
                Err(e) => result = Err(e.clone()),
            }
        }
        si.compiled = compile_globs(&si.globs, &mut si.fail_safe, &mut parsed);
        si.glob_list = si.globs.iter().map(|g| g.0.clone()).collect();
        si.image_list = si.images.iter().cloned().collect();
        out.push(result.map(|()| si));
    }
    Ok(Arc::new(out))
}

/// Each image's position among the graph's (sorted) names: the ids of
/// [`ClosureImage::id`].
fn image_ids_of(graph: &crate::images::ImageGraph) -> BTreeMap<&str, u32> {
    (0u32..)
        .zip(graph.images.keys())
        .map(|(i, n)| (n.as_str(), i))
        .collect()
}

/// A glob's text parsed, with whether the spec matches the text itself;
/// or why it does not parse.
type ParsedGlob = Result<(Arc<Pathspec>, bool), String>;

/// The step's globs compiled once. The explicit ones were validated with
/// the step (a bad one is the step's error). The others are paths pipetrim
/// found (composition directories, imported files): one that is not a
/// valid pathspec, or that git would read as something other than the path
/// itself (a leading `:` is pathspec magic), is matched literally instead,
/// with a fail-safe note, never dropped.
///
/// `parsed` holds the specs parsed so far for other steps (a warm run
/// parsed each imported module's path once per step that imports it).
fn compile_globs(
    globs: &[(Arc<str>, GlobOrigin)],
    fail_safe: &mut Vec<FailSafe>,
    parsed: &mut FxHashMap<Arc<str>, ParsedGlob>,
) -> Vec<Option<Arc<Pathspec>>> {
    globs
        .iter()
        .map(|(g, origin)| {
            // Parsed once per text, with whether the spec matches the text
            // itself (what a found path must do to be compared as a glob).
            let spec = parsed
                .entry(g.clone())
                .or_insert_with(|| {
                    Pathspec::parse(g)
                        .map(|p| {
                            let literal = p.matches(g);
                            (Arc::new(p), literal)
                        })
                        .map_err(|e| e.to_string())
                })
                .clone();
            if *origin == GlobOrigin::Explicit {
                return spec.ok().map(|(p, _)| p);
            }
            let why = match spec {
                Ok((p, true)) => return Some(p),
                Ok(_) => "git reads it as pathspec magic, not as the path".to_string(),
                Err(e) => e,
            };
            let (file, what) = match origin {
                GlobOrigin::CompositionDir { composition } => (
                    format!("{g}/mzcompose.py"),
                    format!("the directory of composition `{composition}`"),
                ),
                GlobOrigin::Import { composition } => (
                    g.to_string(),
                    format!("a module composition `{composition}` imports"),
                ),
                GlobOrigin::Explicit => (g.to_string(), "an input".to_string()),
            };
            let diagnostic = Diagnostic::in_file(
                file,
                format!("`{g}`, {what}, is not a usable git pathspec: {why}"),
            )
            .hint("it is matched literally; rename it so that git can name it (no leading `:`)");
            let f = FailSafe {
                literal: vec![g.to_string()],
                ..FailSafe::new(diagnostic)
            };
            if !fail_safe.contains(&f) {
                fail_safe.push(f);
            }
            None
        })
        .collect()
}

/// A changed path and the image's first input it matches.
pub type ImageHit = (Arc<str>, Arc<Input>);

/// Changed paths that hit each image's own inputs, by image name; and the
/// images whose inputs could not be computed (a step using them is kept).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct ImageHits {
    pub hits: BTreeMap<String, Vec<ImageHit>>,
    pub broken: BTreeMap<String, Diagnostic>,
}

/// For each image, the changed paths that hit its own inputs: for each
/// changed path and image, the first of the image's inputs that matches it.
/// Only the inputs [`input_index`] files under the path's directories or
/// the path itself are tried, not every input of every image (at scale 10,
/// 450 images with hundreds of inputs each, on every `watch` update).
#[salsa::tracked(returns(ref))]
pub fn changed_images(db: &dyn Db, ws: Workspace) -> Result<Arc<ImageHits>, Diagnostic> {
    let files = ws.files(db);
    let all = image_inputs(db, files).clone()?;
    let index = crate::inputs::input_index(db, files).clone()?;
    let changes = ws.changes(db).paths(db);
    // Each changed path shared by its hits and by the reasons built on them.
    let shared: Vec<Arc<str>> = changes.iter().map(|p| Arc::from(p.as_str())).collect();
    let mut out = ImageHits::default();
    let mut ok: Vec<(&String, &[crate::inputs::Input])> = Vec::with_capacity(all.len());
    for (name, inputs) in all.iter() {
        match inputs {
            Ok(i) => ok.push((name, i)),
            Err(e) => {
                out.broken.insert(name.clone(), e.clone());
                ok.push((name, &[]));
            }
        }
    }
    // (image, first matching input) for one path.
    let mut first: BTreeMap<u32, u32> = BTreeMap::new();
    for (p, shared) in changes.iter().zip(&shared) {
        first.clear();
        for &(img, pos) in index.candidates(p) {
            let Some(input) = ok.get(img as usize).and_then(|(_, i)| i.get(pos as usize)) else {
                continue;
            };
            if input.spec.matches(p) {
                let e = first.entry(img).or_insert(pos);
                *e = (*e).min(pos);
            }
        }
        for (&img, &pos) in &first {
            let Some((name, inputs)) = ok.get(img as usize) else {
                continue;
            };
            if let Some(input) = inputs.get(pos as usize) {
                out.hits
                    .entry((*name).clone())
                    .or_default()
                    .push((shared.clone(), Arc::new(input.clone())));
            }
        }
    }
    Ok(Arc::new(out))
}

/// Why a step is kept.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Reason {
    /// A changed path matched one of the step's globs.
    Glob {
        glob: String,
        origin: GlobOrigin,
        path: String,
    },
    /// A changed path is an input of `image` (which the step uses through `used`).
    /// The fields are shared with the step's inputs and the image hits:
    /// a Rust edit at scale 10 gives ~5,000 such reasons on each update.
    Image {
        image: Arc<str>,
        used: Arc<str>,
        used_by: Arc<str>,
        path: Arc<str>,
        input: Arc<Input>,
    },
    /// Another kept step depends on this one.
    DependedOn { step: String },
    /// The step's inputs could not be computed; kept to be safe.
    FailSafe { diagnostic: Diagnostic },
    /// The change set is unknown; every step is kept.
    ChangesUnknown { why: String },
}

/// The decision for one trimmable step.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub struct StepDecision {
    pub id: String,
    pub index: usize,
    pub group: Option<String>,
    pub kind: StepKind,
    /// A changed path matched one of the step's inputs.
    pub changed: bool,
    /// Kept without evidence of a change: its inputs could not be computed,
    /// or the change set is unknown (SPEC §10).
    pub fail_safe: bool,
    /// [`Self::kept_on_its_own`], or needed by a step that is.
    pub kept: bool,
    pub depends_on: Vec<String>,
    pub globs: Arc<[Arc<str>]>,
    pub images: Arc<[String]>,
    pub changed_inputs: Vec<String>,
    pub reasons: Vec<Reason>,
    pub ci_glue_exempt: bool,
    pub has_inputs: bool,
}

impl StepDecision {
    /// Changed or kept fail safe: kept whatever depends on it. What the
    /// JSON output calls `changed`, and the graph marks.
    pub fn kept_on_its_own(&self) -> bool {
        self.changed || self.fail_safe
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Plan {
    /// Shared with [`step_bases`] for every step the change set does not
    /// reach.
    pub steps: Vec<Arc<StepDecision>>,
    /// A change to the CI glue (`bin`, `ci`, ...): the trim is a dry run.
    pub glue_changed: bool,
    pub changes_unknown: Option<String>,
    /// Errors that kept steps fail-safe, and every fail-safe note of the
    /// steps' inputs (also those this change set does not reach), and
    /// changed paths that were not valid UTF-8.
    pub errors: Vec<Diagnostic>,
}

impl Plan {
    /// The steps the plan keeps, in template order: the one definition
    /// every consumer (trim, watch, soak, stats, the outputs) reads.
    pub fn kept(&self) -> impl Iterator<Item = &StepDecision> {
        self.steps.iter().map(|d| &**d).filter(|d| d.kept)
    }

    /// The steps `error` keeps fail safe (none when this change set does
    /// not reach what it concerns): what the report and annotation list
    /// under each error.
    pub fn kept_fail_safe_by<'a>(
        &'a self,
        error: &'a Diagnostic,
    ) -> impl Iterator<Item = &'a StepDecision> {
        self.steps.iter().map(|d| &**d).filter(move |d| {
            d.reasons
                .iter()
                .any(|r| matches!(r, Reason::FailSafe { diagnostic } if diagnostic == error))
        })
    }
}

/// The CI glue pathspecs: a change here makes the trim a dry run.
pub const CI_GLUE: [&str; 3] = [
    "bin",
    "ci",
    "misc/python/materialize/cli/ci_annotate_errors.py",
];

/// Every trimmable step's decision before looking at the change set (what
/// it is when no changed path reaches it), in template order, with the
/// step's position in `Template::steps` and the decisions' positions by
/// id. Independent of the change set: a re-plan shares these decisions for
/// every step the change does not reach instead of building 1,540 of them
/// (at scale 10) after each `watch` edit.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct StepBases {
    pub decisions: Vec<Arc<StepDecision>>,
    /// `Template::steps` position of each decision.
    pub template_pos: Vec<u32>,
    /// Decision position by step id (the last step of an id, as `depends_on`
    /// resolves it).
    pub by_id: BTreeMap<String, usize>,
}

#[salsa::tracked(returns(ref))]
pub fn step_bases(db: &dyn Db, ws: Workspace) -> Result<Arc<StepBases>, Diagnostic> {
    let tpl = template(db, ws.options(db)).clone()?;
    let inputs = step_inputs(db, ws).clone()?;
    let mut out = StepBases::default();
    for ((pos, step), si) in (0u32..).zip(tpl.steps.iter()).zip(inputs.iter()) {
        if !step.kind.is_trimmable() {
            continue;
        }
        let mut d = StepDecision {
            id: step.id.clone(),
            index: step.index,
            group: step.group.clone(),
            kind: step.kind,
            changed: false,
            fail_safe: false,
            kept: false,
            depends_on: step.depends_on.clone(),
            globs: Arc::default(),
            images: Arc::default(),
            changed_inputs: Vec::new(),
            reasons: Vec::new(),
            ci_glue_exempt: step.ci_glue_exempt,
            has_inputs: false,
        };
        match si {
            Err(e) => {
                d.fail_safe = true;
                d.has_inputs = true;
                d.reasons.push(Reason::FailSafe {
                    diagnostic: e.clone(),
                });
            }
            Ok(si) => {
                d.globs = si.glob_list.clone();
                d.images = si.image_list.clone();
                d.has_inputs = !si.globs.is_empty() || !si.images.is_empty();
            }
        }
        out.by_id.insert(d.id.clone(), out.decisions.len());
        out.decisions.push(Arc::new(d));
        out.template_pos.push(pos);
    }
    Ok(Arc::new(out))
}

/// The trim plan for the workspace's change set.
#[salsa::tracked(returns(ref))]
pub fn plan(db: &dyn Db, ws: Workspace) -> Result<Arc<Plan>, Diagnostic> {
    let tpl = template(db, ws.options(db)).clone()?;
    let inputs = step_inputs(db, ws).clone()?;
    let bases = step_bases(db, ws).clone()?;
    let changes = ws.changes(db).paths(db);
    let unknown = ws.changes(db).unknown(db).clone();
    let changed_imgs = changed_images(db, ws);
    // (glob, changed path) pairs that match, by step, in glob then change
    // order (the order of the reasons).
    let mut glob_hits: BTreeMap<u32, Vec<(u32, u32)>> = BTreeMap::new();
    let index = glob_index(db, ws).clone()?;
    for (c, p) in (0u32..).zip(changes.iter()) {
        for &(step, glob) in index.candidates(p) {
            let spec = inputs
                .get(step as usize)
                .and_then(|si| si.as_ref().ok())
                .and_then(|si| si.compiled.get(glob as usize))
                .and_then(Option::as_ref);
            if spec.is_some_and(|s| s.matches(p)) {
                glob_hits.entry(step).or_default().push((glob, c));
            }
        }
    }
    // Each (step, glob) is filed once, under one directory, so a path
    // meets it at most once: sorting restores glob-then-change order.
    for hits in glob_hits.values_mut() {
        hits.sort_unstable();
    }
    let by_id = ImagesById::new(image_graph(db, ws.files(db)), changed_imgs);
    let glue = any_changed(&CI_GLUE, changes);
    let mut errors = undecodable_paths(changes);
    let mut decisions: Vec<Arc<StepDecision>> = Vec::with_capacity(bases.decisions.len());
    for (base, &pos) in bases.decisions.iter().zip(&bases.template_pos) {
        let (Some(step), Some(si)) = (tpl.steps.get(pos as usize), inputs.get(pos as usize)) else {
            decisions.push(base.clone());
            continue;
        };
        match si {
            Err(e) => {
                errors.push(e.clone());
                decisions.push(base.clone());
            }
            Ok(si) => {
                // Whatever could not be read is reported, whether or not
                // this change set reaches it: never a silent answer.
                for f in &si.fail_safe {
                    if !errors.contains(&f.diagnostic) {
                        errors.push(f.diagnostic.clone());
                    }
                }
                if let Some(why) = &unknown {
                    // Nothing can be decided: every step is kept (SPEC §10),
                    // even one without inputs.
                    let mut d = StepDecision::clone(base);
                    d.fail_safe = true;
                    d.reasons.push(Reason::ChangesUnknown { why: why.clone() });
                    decisions.push(Arc::new(d));
                    continue;
                }
                let hits = glob_hits.get(&pos).map_or(&[][..], Vec::as_slice);
                // A step no changed path reaches keeps its base decision:
                // no glob hit, no image of its closure hit or broken, and
                // nothing it could not read (whose reach `match_step` tests).
                let reached = base.has_inputs
                    && (!hits.is_empty() || !si.fail_safe.is_empty() || by_id.touches(&si.closure));
                if !reached {
                    decisions.push(base.clone());
                    continue;
                }
                let mut d = StepDecision::clone(base);
                match_step(step, si, hits, changes, &by_id, &mut d, &mut errors);
                decisions.push(Arc::new(d));
            }
        }
    }
    // needed = changed steps and, transitively, what they depend on.
    let mut stack: Vec<(usize, Option<usize>)> = decisions
        .iter()
        .enumerate()
        .filter(|(_, d)| d.kept_on_its_own())
        .map(|(i, _)| (i, None))
        .collect();
    let mut kept = vec![false; decisions.len()];
    while let Some((i, by)) = stack.pop() {
        if let Some(by) = by {
            let reason = Reason::DependedOn {
                step: bases.decisions[by].id.clone(),
            };
            if !decisions[i].reasons.contains(&reason) {
                Arc::make_mut(&mut decisions[i]).reasons.push(reason);
            }
        }
        if kept[i] {
            continue;
        }
        kept[i] = true;
        for dep in &bases.decisions[i].depends_on {
            match bases.by_id.get(dep.as_str()) {
                Some(&j) => stack.push((j, Some(i))),
                None => errors.push(
                    Diagnostic::in_file(
                        &tpl.path,
                        format!(
                            "step `{}` depends on `{dep}`, which does not exist",
                            bases.decisions[i].id
                        ),
                    )
                    .hint("fix `depends_on` in the pipeline template"),
                ),
            }
        }
    }
    for (d, k) in decisions.iter_mut().zip(kept) {
        if k {
            Arc::make_mut(d).kept = true;
        }
    }
    Ok(Arc::new(Plan {
        steps: decisions,
        glue_changed: glue,
        changes_unknown: unknown,
        errors,
    }))
}

/// The image hits of a change set by image position in the graph (the ids
/// of [`ClosureImage::id`]): a step's images are looked up by
/// index, not by name, and a step none of whose images is touched is
/// passed over at once.
/// An image's hits and its error.
type Touched<'a> = (&'a [ImageHit], Option<&'a Diagnostic>);

struct ImagesById<'a> {
    hits: Result<&'a ImageHits, &'a Diagnostic>,
    /// By id: the image's hits and its error (`None`: not touched).
    touched: Vec<Option<Touched<'a>>>,
}

impl<'a> ImagesById<'a> {
    fn new(
        graph: &'a Result<Arc<crate::images::ImageGraph>, Diagnostic>,
        hits: &'a Result<Arc<ImageHits>, Diagnostic>,
    ) -> Self {
        let hits = hits.as_ref().map(|h| &**h);
        let mut touched = Vec::new();
        if let (Ok(graph), Ok(h)) = (graph, hits) {
            touched = graph
                .images
                .keys()
                .map(|n| {
                    let hit = h.hits.get(n).map(Vec::as_slice);
                    let broken = h.broken.get(n);
                    (hit.is_some() || broken.is_some()).then(|| (hit.unwrap_or(&[]), broken))
                })
                .collect();
        }
        ImagesById { hits, touched }
    }

    /// Whether any image of a step's closure has hits or an error, or the
    /// image hits are unknown (a step with images is then kept fail safe).
    fn touches(&self, closure: &[ClosureImage]) -> bool {
        if closure.is_empty() {
            return false;
        }
        let Ok(h) = self.hits else { return true };
        if h.hits.is_empty() && h.broken.is_empty() {
            return false;
        }
        closure
            .iter()
            .any(|c| self.touched.get(c.id as usize).is_none_or(Option::is_some))
    }

    /// An image's hits and error, by id (by name if the id is unknown).
    fn get(&self, id: u32, name: &str) -> Touched<'a> {
        match self.touched.get(id as usize) {
            Some(t) => t.unwrap_or((&[], None)),
            None => match self.hits {
                Ok(h) => (
                    h.hits.get(name).map_or(&[][..], Vec::as_slice),
                    h.broken.get(name),
                ),
                Err(_) => (&[], None),
            },
        }
    }
}

/// Changed paths whose names were not valid UTF-8 (the edges keep them,
/// decoded lossily: U+FFFD stands for the invalid bytes). They are matched
/// as decoded, which selects the same directories, and reported.
fn undecodable_paths(changes: &[String]) -> Vec<Diagnostic> {
    changes
        .iter()
        .filter(|p| p.contains('\u{FFFD}'))
        .map(|p| {
            Diagnostic::in_file(
                p.clone(),
                "changed path is not valid UTF-8: matched with U+FFFD in place of the invalid bytes",
            )
            .hint("its directories match as usual; rename the file so that a pathspec can name it exactly")
        })
        .collect()
}

/// Decides one step: `glob_hits` are its (glob, changed path) positions
/// that match, from [`glob_index`].
fn match_step(
    step: &crate::pipeline::Step,
    si: &StepInputs,
    glob_hits: &[(u32, u32)],
    changes: &[String],
    images: &ImagesById,
    d: &mut StepDecision,
    errors: &mut Vec<Diagnostic>,
) {
    // Exclude pathspecs of the step's inputs apply to every input, as they do
    // in the reference's single `git diff -- <inputs>` call: the step's own
    // `inputs`, compiled with its inputs (the explicit globs come first).
    let excludes = || {
        si.globs
            .iter()
            .zip(&si.compiled)
            .take(step.inputs.len())
            .filter(|((_, origin), _)| *origin == GlobOrigin::Explicit)
            .filter_map(|(_, spec)| spec.as_ref())
            .filter(|s| s.is_exclude())
    };
    let excluded = |p: &str| excludes().any(|e| e.matches(p));
    let mut hit: BTreeSet<&str> = BTreeSet::new();
    for &(g, c) in glob_hits {
        let (Some((glob, origin)), Some(p)) = (si.globs.get(g as usize), changes.get(c as usize))
        else {
            continue;
        };
        if !excluded(p) {
            hit.insert(p);
            d.reasons.push(Reason::Glob {
                glob: glob.to_string(),
                origin: origin.clone(),
                path: p.clone(),
            });
        }
    }
    if !si.image_closure.is_empty() {
        match images.hits {
            Ok(_) => {
                for c in &si.closure {
                    let (hits, broken) = images.get(c.id, &c.image);
                    if let Some(e) = broken {
                        if !errors.contains(e) {
                            errors.push(e.clone());
                        }
                        d.reasons.push(Reason::FailSafe {
                            diagnostic: e.clone(),
                        });
                        d.fail_safe = true;
                    }
                    for (p, input) in hits {
                        if excluded(p) {
                            continue;
                        }
                        hit.insert(p);
                        d.reasons.push(Reason::Image {
                            image: c.image.clone(),
                            used: c.used.clone(),
                            used_by: c.used_by.clone(),
                            path: p.clone(),
                            input: input.clone(),
                        });
                    }
                }
            }
            Err(e) => {
                errors.push(e.clone());
                d.reasons.push(Reason::FailSafe {
                    diagnostic: e.clone(),
                });
                d.fail_safe = true;
            }
        }
    }
    d.changed |= !hit.is_empty();
    // What could not be read keeps the step when the change set touches
    // anything it may reach (SPEC §10); the paths it reached are listed
    // with the changed inputs.
    let image_hit = d.reasons.iter().any(|r| matches!(r, Reason::Image { .. }));
    for f in &si.fail_safe {
        let reached: Vec<&String> = changes
            .iter()
            .filter(|p| f.reaches(p) && !excluded(p))
            .collect();
        if reached.is_empty() && !(f.every_image && image_hit) {
            continue;
        }
        hit.extend(reached.into_iter().map(String::as_str));
        d.fail_safe = true;
        let reason = Reason::FailSafe {
            diagnostic: f.diagnostic.clone(),
        };
        if !d.reasons.contains(&reason) {
            d.reasons.push(reason);
        }
    }
    d.changed_inputs = hit.into_iter().map(str::to_string).collect();
}
