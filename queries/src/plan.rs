//! Step inputs (SPEC §4), the change test (§5) and the trim plan (§6).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::db::{Db, Workspace};
use crate::diag::Diagnostic;
use crate::images::{compositions, image_graph, used_images};
use crate::inputs::{Input, image_inputs};
use crate::pathspec::{Pathspec, PathspecSet, any_changed};
use crate::pipeline::{StepKind, template};
use crate::python::composition_imports;

/// Where a step's glob came from.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum GlobOrigin {
    /// The step's own `inputs` list.
    Explicit,
    /// The directory of composition `composition`.
    CompositionDir { composition: String },
    /// A module that composition `composition` imports.
    Import { composition: String },
}

/// Everything a step depends on, before looking at the change set.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct StepInputs {
    /// Pathspecs: explicit inputs, composition directories, imported files
    /// (what the reference's report prints as `globs:`), with their origins.
    pub globs: Vec<(String, GlobOrigin)>,
    /// The globs compiled once (aligned with `globs`; `None` if malformed,
    /// which the step's error already reports).
    pub compiled: Vec<Option<Pathspec>>,
    /// Images the step uses directly (compositions' images, cloudtest's).
    pub images: BTreeSet<String>,
    /// Those images and everything they depend on.
    pub image_closure: BTreeSet<String>,
    /// For each image of the closure, the directly used image that reaches it.
    pub closure_via: BTreeMap<String, String>,
    /// Where an image came from: composition or plugin, for `explain`.
    pub image_origins: BTreeMap<String, String>,
    /// Fail-safe notes: things that could not be determined exactly.
    pub unsure: Vec<Diagnostic>,
    /// Set when the composition's images could not be determined: every image counts.
    pub every_image: bool,
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
    let mut out = Vec::with_capacity(tpl.steps.len());
    for step in &tpl.steps {
        if !step.kind.is_trimmable() {
            out.push(Ok(StepInputs::default()));
            continue;
        }
        let mut si = StepInputs::default();
        let mut result: Result<(), Diagnostic> = Ok(());
        for i in &step.inputs {
            si.globs.push((i.clone(), GlobOrigin::Explicit));
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
            si.globs.push((
                dir.clone(),
                GlobOrigin::CompositionDir {
                    composition: name.clone(),
                },
            ));
            let file = db.file(&format!("{dir}/mzcompose.py"));
            let closure = composition_imports(db, ws.files(db), ws.options(db), file);
            for f in &closure.files {
                si.globs.push((
                    f.clone(),
                    GlobOrigin::Import {
                        composition: name.clone(),
                    },
                ));
            }
            si.unsure.extend(closure.unsure.iter().cloned());
            match graph {
                Ok(graph) => {
                    let used = used_images(db, ws.files(db), ws.options(db), dir, graph);
                    let origin = match &used.every_image {
                        Some(why) => {
                            si.every_image = true;
                            si.unsure.push(why.clone());
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
                }
                Err(e) => result = Err(e.clone()),
            }
        }
        si.compiled = si
            .globs
            .iter()
            .map(|(g, _)| Pathspec::parse(g).ok())
            .collect();
        out.push(result.map(|()| si));
    }
    Ok(Arc::new(out))
}

/// Changed paths that hit each image's own inputs, by image name; and the
/// images whose inputs could not be computed (a step using them is kept).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct ImageHits {
    pub hits: BTreeMap<String, Vec<(String, Input)>>,
    pub broken: BTreeMap<String, Diagnostic>,
}

/// For each image, the changed paths that hit its own inputs.
#[salsa::tracked(returns(ref))]
pub fn changed_images(db: &dyn Db, ws: Workspace) -> Result<Arc<ImageHits>, Diagnostic> {
    let all = image_inputs(db, ws.files(db)).clone()?;
    let changes = ws.changes(db).paths(db);
    let mut out = ImageHits::default();
    for (name, inputs) in all.iter() {
        let inputs = match inputs {
            Ok(i) => i,
            Err(e) => {
                out.broken.insert(name.clone(), e.clone());
                continue;
            }
        };
        for p in changes.iter() {
            if let Some(i) = inputs.iter().find(|i| i.spec.matches(p)) {
                out.hits
                    .entry(name.clone())
                    .or_default()
                    .push((p.clone(), i.clone()));
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
    Image {
        image: String,
        used: String,
        used_by: String,
        path: String,
        input: Input,
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
    pub globs: Vec<String>,
    pub images: Vec<String>,
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
    pub steps: Vec<StepDecision>,
    /// A change to the CI glue (`bin`, `ci`, ...): the trim is a dry run.
    pub glue_changed: bool,
    pub changes_unknown: Option<String>,
    /// Errors that kept steps fail-safe.
    pub errors: Vec<Diagnostic>,
}

/// The CI glue pathspecs: a change here makes the trim a dry run.
pub const CI_GLUE: [&str; 3] = [
    "bin",
    "ci",
    "misc/python/materialize/cli/ci_annotate_errors.py",
];

/// The trim plan for the workspace's change set.
#[salsa::tracked(returns(ref))]
pub fn plan(db: &dyn Db, ws: Workspace) -> Result<Arc<Plan>, Diagnostic> {
    let tpl = template(db, ws.options(db)).clone()?;
    let inputs = step_inputs(db, ws).clone()?;
    let changes = ws.changes(db).paths(db);
    let unknown = ws.changes(db).unknown(db).clone();
    let changed_imgs = changed_images(db, ws);
    let glue = any_changed(&CI_GLUE, changes);
    let mut errors = Vec::new();
    let mut decisions: Vec<StepDecision> = Vec::new();
    for (step, si) in tpl.steps.iter().zip(inputs.iter()) {
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
            globs: Vec::new(),
            images: Vec::new(),
            changed_inputs: Vec::new(),
            reasons: Vec::new(),
            ci_glue_exempt: step.ci_glue_exempt,
            has_inputs: false,
        };
        match si {
            Err(e) => {
                errors.push(e.clone());
                d.fail_safe = true;
                d.has_inputs = true;
                d.reasons.push(Reason::FailSafe {
                    diagnostic: e.clone(),
                });
            }
            Ok(si) => {
                d.globs = si.globs.iter().map(|g| g.0.clone()).collect();
                d.images = si.images.iter().cloned().collect();
                d.has_inputs = !si.globs.is_empty() || !si.images.is_empty();
                if let Some(why) = &unknown {
                    // Nothing can be decided: every step is kept (SPEC §10),
                    // even one without inputs.
                    d.fail_safe = true;
                    d.reasons.push(Reason::ChangesUnknown { why: why.clone() });
                } else if d.has_inputs {
                    match_step(step, si, changes, changed_imgs, &mut d, &mut errors);
                }
            }
        }
        decisions.push(d);
    }
    // needed = changed steps and, transitively, what they depend on.
    let index: BTreeMap<String, usize> = decisions
        .iter()
        .enumerate()
        .map(|(i, d)| (d.id.clone(), i))
        .collect();
    let mut stack: Vec<(usize, Option<String>)> = decisions
        .iter()
        .enumerate()
        .filter(|(_, d)| d.kept_on_its_own())
        .map(|(i, _)| (i, None))
        .collect();
    let mut kept = vec![false; decisions.len()];
    while let Some((i, by)) = stack.pop() {
        if let Some(by) = by {
            let reason = Reason::DependedOn { step: by };
            if !decisions[i].reasons.contains(&reason) {
                decisions[i].reasons.push(reason);
            }
        }
        if kept[i] {
            continue;
        }
        kept[i] = true;
        for dep in decisions[i].depends_on.clone() {
            match index.get(dep.as_str()) {
                Some(&j) => stack.push((j, Some(decisions[i].id.clone()))),
                None => errors.push(
                    Diagnostic::in_file(
                        &tpl.path,
                        format!(
                            "step `{}` depends on `{dep}`, which does not exist",
                            decisions[i].id
                        ),
                    )
                    .hint("fix `depends_on` in the pipeline template"),
                ),
            }
        }
    }
    for (d, k) in decisions.iter_mut().zip(kept) {
        d.kept = k;
    }
    Ok(Arc::new(Plan {
        steps: decisions,
        glue_changed: glue,
        changes_unknown: unknown,
        errors,
    }))
}

fn match_step(
    step: &crate::pipeline::Step,
    si: &StepInputs,
    changes: &[String],
    changed_imgs: &Result<Arc<ImageHits>, Diagnostic>,
    d: &mut StepDecision,
    errors: &mut Vec<Diagnostic>,
) {
    // Exclude pathspecs of the step's inputs apply to every input, as they do
    // in the reference's single `git diff -- <inputs>` call.
    let excludes: Vec<Pathspec> = step
        .inputs
        .iter()
        .filter_map(|s| Pathspec::parse(s).ok())
        .filter(Pathspec::is_exclude)
        .collect();
    let excluded = |p: &str| excludes.iter().any(|e| e.matches(p));
    let mut hit = BTreeSet::new();
    for ((glob, origin), spec) in si.globs.iter().zip(&si.compiled) {
        let Some(spec) = spec else {
            continue;
        };
        if spec.is_exclude() {
            continue;
        }
        for p in changes {
            if spec.matches(p) && !excluded(p) {
                hit.insert(p.clone());
                d.reasons.push(Reason::Glob {
                    glob: glob.clone(),
                    origin: origin.clone(),
                    path: p.clone(),
                });
            }
        }
    }
    if !si.image_closure.is_empty() {
        match changed_imgs {
            Ok(ci) => {
                for img in &si.image_closure {
                    if let Some(e) = ci.broken.get(img) {
                        if !errors.contains(e) {
                            errors.push(e.clone());
                        }
                        d.reasons.push(Reason::FailSafe {
                            diagnostic: e.clone(),
                        });
                        d.fail_safe = true;
                    }
                    for (p, input) in ci.hits.get(img).map(|v| v.as_slice()).unwrap_or(&[]) {
                        if excluded(p) {
                            continue;
                        }
                        hit.insert(p.clone());
                        let used = si
                            .closure_via
                            .get(img)
                            .cloned()
                            .unwrap_or_else(|| img.clone());
                        d.reasons.push(Reason::Image {
                            image: img.clone(),
                            used: used.clone(),
                            used_by: si.image_origins.get(&used).cloned().unwrap_or_default(),
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
    d.changed_inputs = hit.into_iter().collect();
    d.changed |= !d.changed_inputs.is_empty();
}
