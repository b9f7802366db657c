//! Evidence for decisions: the chain from a changed file to a kept step.

use std::sync::Arc;

use pipetrim_queries::Db;
use pipetrim_queries::images::{ImageGraph, compositions, image_graph};
use pipetrim_queries::inputs::Origin;
use pipetrim_queries::plan::{GlobOrigin, Reason, StepDecision};
use pipetrim_queries::python::{ImportHop, composition_imports};
use serde_json::{Value, json};

use crate::repo::session::Session;

/// One link of a chain of evidence.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Link {
    /// `file`, `crate`, `bin`, `image`, `composition`, `step`, `glob`.
    pub kind: &'static str,
    pub name: String,
    /// How this link relates to the previous one.
    pub edge: String,
    /// On a `composition` link reached by an import: how the composition
    /// loads the changed module, from the module up to the composition file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub imports: Option<Vec<ImportHop>>,
}

fn link(kind: &'static str, name: impl Into<String>, edge: impl Into<String>) -> Link {
    Link {
        kind,
        name: name.into(),
        edge: edge.into(),
        imports: None,
    }
}

/// What chains are drawn from besides a decision's reasons: the image
/// graph (MZFROM paths) and the session (import chains). Both optional:
/// without them a chain is shorter, never wrong.
#[derive(Default)]
pub struct Evidence<'a> {
    pub graph: Option<Arc<ImageGraph>>,
    session: Option<&'a Session>,
}

impl<'a> Evidence<'a> {
    pub fn of(s: &'a Session) -> Self {
        Evidence {
            graph: image_graph(&s.db, s.ws.files(&s.db)).clone().ok(),
            session: Some(s),
        }
    }

    /// How composition `composition` loads `file` (a shortest chain).
    pub fn import_chain(&self, composition: &str, file: &str) -> Option<Vec<ImportHop>> {
        let s = self.session?;
        let db = &s.db;
        let files = s.ws.files(db);
        let dir = compositions(db, files).as_ref().ok()?.get(composition)?;
        let comp = db.file(&format!("{dir}/mzcompose.py"));
        composition_imports(db, files, s.ws.options(db), comp).import_chain(file)
    }

    /// [`chain`], with the import chain on a composition reached by an import.
    pub fn chain(&self, reason: &Reason, step: &str) -> Vec<Link> {
        let mut links = chain(reason, step, self.graph.as_deref());
        if let Reason::Glob {
            origin: GlobOrigin::Import { composition },
            glob,
            ..
        } = reason
            && let Some(l) = links.iter_mut().find(|l| l.kind == "composition")
        {
            l.imports = self.import_chain(composition, glob);
        }
        links
    }
}

/// The path of image names from `from` down to `to` along MZFROM edges.
pub fn mzfrom_path(graph: &ImageGraph, from: &str, to: &str) -> Option<Vec<String>> {
    let mut prev: std::collections::BTreeMap<String, String> = Default::default();
    let mut queue = std::collections::VecDeque::from([from.to_string()]);
    let mut seen = std::collections::BTreeSet::from([from.to_string()]);
    while let Some(n) = queue.pop_front() {
        if n == to {
            let mut path = vec![n.clone()];
            let mut cur = n;
            while let Some(p) = prev.get(&cur) {
                path.push(p.clone());
                cur = p.clone();
            }
            path.reverse();
            return Some(path);
        }
        let mut deps = graph
            .get(&n)
            .map(|i| i.depends_on.clone())
            .unwrap_or_default();
        deps.sort();
        for d in deps {
            if seen.insert(d.clone()) {
                prev.insert(d.clone(), n.clone());
                queue.push_back(d);
            }
        }
    }
    None
}

/// The chain of evidence for one reason, from the changed file to the step.
pub fn chain(reason: &Reason, step: &str, graph: Option<&ImageGraph>) -> Vec<Link> {
    match reason {
        Reason::Glob { glob, origin, path } => {
            let mut v = vec![link("file", path, "changed")];
            match origin {
                GlobOrigin::Explicit => v.push(link("glob", glob, "matches input glob")),
                GlobOrigin::CompositionDir { composition } => v.push(link(
                    "composition",
                    &**composition,
                    format!("lies in the directory `{glob}` of composition"),
                )),
                GlobOrigin::Import { composition } => v.push(link(
                    "composition",
                    &**composition,
                    "is imported (transitively) by composition",
                )),
            }
            v.push(link("step", step, "which is an input of step"));
            v
        }
        Reason::Image {
            image,
            used,
            used_by,
            path,
            input,
        } => {
            let (image, used, path): (&str, &str, &str) = (image, used, path);
            let mut v = vec![link("file", path, "changed")];
            match &input.origin {
                Origin::Context => {
                    v.push(link("image", image, "is in the context directory of image"))
                }
                Origin::CargoShared => {
                    v.push(link("image", image, "is a shared cargo input of image"))
                }
                Origin::Copy => v.push(link("image", image, "is copied by a pre-image of image")),
                Origin::Crate { target, chain } => {
                    let mut crates = chain.to_vec();
                    crates.reverse();
                    for (i, c) in crates.iter().enumerate() {
                        let edge = if i == 0 {
                            "belongs to crate"
                        } else {
                            "a path dependency of crate"
                        };
                        v.push(link("crate", &**c, edge));
                    }
                    let (kind, name) = target.split_once(' ').unwrap_or(("bin", &**target));
                    let name = name.trim_matches('`');
                    v.push(link(
                        if kind == "example" { "example" } else { "bin" },
                        name,
                        format!("built into {kind}"),
                    ));
                    v.push(link(
                        "image",
                        image,
                        "by the cargo-build pre-image of image",
                    ));
                }
            }
            if image != used {
                let path = graph
                    .and_then(|g| mzfrom_path(g, used, image))
                    .unwrap_or_else(|| vec![used.to_string(), image.to_string()]);
                // path runs used → … → image; walk it backwards.
                for n in path.iter().rev().skip(1) {
                    v.push(link("image", n, "MZFROM of image"));
                }
            }
            v.push(link(
                "step",
                step,
                format!("used through {used_by} by step"),
            ));
            v
        }
        Reason::DependedOn { step: by } => vec![
            link("step", by, "the kept step"),
            link("step", step, "depends on step"),
        ],
        Reason::FailSafe { diagnostic } => {
            vec![link("step", step, format!("kept fail-safe: {diagnostic}"))]
        }
        Reason::ChangesUnknown { why } => vec![link(
            "step",
            step,
            format!("kept: the change set is unknown ({why})"),
        )],
    }
}

pub fn render_chain(chain: &[Link]) -> String {
    let mut out = String::new();
    for (i, l) in chain.iter().enumerate() {
        match (i, l.kind) {
            (0, "file") => out.push_str(&format!("`{}` {}", l.name, l.edge)),
            (0, _) if l.edge.starts_with("kept") => {
                out.push_str(&format!("step `{}` {}", l.name, l.edge))
            }
            (0, _) => out.push_str(&format!("{} `{}`", l.edge, l.name)),
            _ => out.push_str(&format!(" → {} `{}`", l.edge, l.name)),
        }
        if let Some(hops) = &l.imports {
            out.push_str(&format!(" ({})", render_imports(hops)));
        }
    }
    out
}

/// `kafka.py ← misc/python/…/services/__init__.py:3 ← test/x/mzcompose.py:12`:
/// the imported module by its file name (the chain already names its
/// path), then each importer with the line of its import statement.
pub fn render_imports(hops: &[ImportHop]) -> String {
    hops.iter()
        .enumerate()
        .map(|(i, h)| {
            let name = if i == 0 {
                pipetrim_queries::paths::file_name(&h.file)
            } else {
                h.file.as_str()
            };
            let line = h.line.map(|l| format!(":{l}")).unwrap_or_default();
            let lazy = if h.function_level {
                " (in a function)"
            } else {
                ""
            };
            format!("{name}{line}{lazy}")
        })
        .collect::<Vec<_>>()
        .join(" ← ")
}

/// One line for a chain: the changed path, each link as `kind name`, the
/// step last (`src/x.rs` → crate `a` → bin `b` → image `c` → step `d`);
/// the annotation's table uses it.
pub fn render_chain_short(chain: &[Link]) -> String {
    let Some(first) = chain.first() else {
        return String::new();
    };
    match first.kind {
        "file" => {}
        "step" if chain.len() == 2 => return format!("needed by kept step `{}`", first.name),
        _ => return first.edge.clone(),
    }
    let mut parts = vec![format!("`{}`", first.name)];
    for l in &chain[1..] {
        let mut p = format!("{} `{}`", l.kind, l.name);
        if let Some(hops) = &l.imports {
            p.push_str(&format!(" ({})", render_imports(hops)));
        }
        parts.push(p);
    }
    parts.join(" → ")
}

/// The shortest chains (one per distinct first file), at most `max`.
pub fn best_chains(d: &StepDecision, ev: &Evidence, max: usize) -> Vec<Vec<Link>> {
    // Direct evidence first (a changed input), then shortest.
    let mut chains: Vec<(bool, Vec<Link>)> = d
        .reasons
        .iter()
        .map(|r| (matches!(r, Reason::DependedOn { .. }), ev.chain(r, &d.id)))
        .collect();
    chains.sort_by_key(|(dep, c)| (*dep, c.len()));
    let mut chains: Vec<Vec<Link>> = chains.into_iter().map(|(_, c)| c).collect();
    let mut seen = std::collections::BTreeSet::new();
    chains.retain(|c| seen.insert(c.first().map(|l| l.name.clone()).unwrap_or_default()));
    chains.truncate(max);
    chains
}

/// Text explanation of one decision.
pub fn explain_text(d: &StepDecision, ev: &Evidence) -> String {
    let mut out = String::new();
    if d.kept {
        out.push_str(&format!("step `{}` is KEPT\n", d.id));
        for c in best_chains(d, ev, 5) {
            out.push_str(&format!("  {}\n", render_chain(&c)));
        }
        let more = d.reasons.len().saturating_sub(5);
        if more > 0 {
            out.push_str(&format!(
                "  … and {more} more reasons (use --format json for all)\n"
            ));
        }
    } else {
        out.push_str(&format!(
            "step `{}` is TRIMMED: none of its inputs changed\n",
            d.id
        ));
        if !d.has_inputs {
            out.push_str("  it has no inputs, so no change can keep it\n");
        }
        if !d.globs.is_empty() {
            out.push_str(&format!("  globs checked: {}\n", d.globs.join(" ")));
        }
        if !d.images.is_empty() {
            out.push_str(&format!(
                "  images checked (with their MZFROM images and pre-image crates): {}\n",
                d.images.join(" ")
            ));
        }
    }
    out
}

pub fn explain_json(d: &StepDecision, ev: &Evidence) -> Value {
    let chains: Vec<Value> = d
        .reasons
        .iter()
        .map(|r| json!({"reason": r, "chain": ev.chain(r, &d.id)}))
        .collect();
    json!({
        "id": d.id, "kept": d.kept, "changed": d.kept_on_its_own(), "depends_on": d.depends_on,
        "globs": d.globs, "images": d.images, "changed_inputs": d.changed_inputs, "evidence": chains,
    })
}
