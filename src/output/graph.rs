//! The step → composition → image → crate graph, for Graphviz, Mermaid or
//! tools (`pipetrim graph`).

use std::collections::{BTreeMap, BTreeSet};

use pipetrim_queries::cargo::cargo_workspace;
use pipetrim_queries::images::{PreImage, compositions, image_graph, used_images};
use pipetrim_queries::pipeline::template;
use pipetrim_queries::plan::{changed_images, plan};
use serde_json::json;

use crate::error::Error;
use crate::repo::session::Session;

#[derive(Debug, Default)]
pub struct Graph {
    /// Node id (`kind:name`) → changed?
    pub nodes: BTreeMap<String, bool>,
    /// (from, to, label)
    pub edges: BTreeSet<(String, String, String)>,
}

impl Graph {
    fn node(&mut self, id: String) -> String {
        self.nodes.entry(id.clone()).or_insert(false);
        id
    }

    fn edge(&mut self, from: &str, to: &str, label: &str) {
        self.edges
            .insert((from.to_string(), to.to_string(), label.to_string()));
    }

    /// The part of the graph reachable from `start`.
    pub fn restrict(self, start: &str) -> Graph {
        let mut keep = BTreeSet::from([start.to_string()]);
        let mut stack = vec![start.to_string()];
        while let Some(n) = stack.pop() {
            for (f, t, _) in &self.edges {
                if *f == n && keep.insert(t.clone()) {
                    stack.push(t.clone());
                }
            }
        }
        Graph {
            nodes: self
                .nodes
                .into_iter()
                .filter(|(n, _)| keep.contains(n))
                .collect(),
            edges: self
                .edges
                .into_iter()
                .filter(|(f, t, _)| keep.contains(f) && keep.contains(t))
                .collect(),
        }
    }
}

/// Builds the graph; with a change set in the session, marks changed nodes.
pub fn build(s: &Session) -> Result<Graph, Error> {
    let db = &s.db;
    let files = s.ws.files(db);
    let options = s.ws.options(db);
    let tpl = template(db, options).clone()?;
    let comps = compositions(db, files).clone()?;
    let images = image_graph(db, files).clone()?;
    let mut g = Graph::default();
    for step in tpl.steps.iter().filter(|s| s.kind.is_trimmable()) {
        let sid = g.node(format!("step:{}", step.id));
        for d in &step.depends_on {
            let did = g.node(format!("step:{d}"));
            g.edge(&sid, &did, "depends on");
        }
        for i in &step.inputs {
            let gid = g.node(format!("glob:{i}"));
            g.edge(&sid, &gid, "input");
        }
        for c in &step.compositions {
            let cid = g.node(format!("composition:{c}"));
            g.edge(&sid, &cid, "mzcompose");
            if let Some(dir) = comps.get(c) {
                for n in used_images(db, files, options, dir, &images).names {
                    let iid = g.node(format!("image:{n}"));
                    g.edge(&cid, &iid, "uses");
                }
            }
        }
        if step.cloudtest {
            for n in ["environmentd", "clusterd"] {
                let iid = g.node(format!("image:{n}"));
                g.edge(&sid, &iid, "cloudtest");
            }
        }
    }
    let ws = cargo_workspace(db, files).clone().ok();
    for img in images.images.values() {
        let iid = g.node(format!("image:{}", img.name));
        for d in &img.depends_on {
            let did = g.node(format!("image:{d}"));
            g.edge(&iid, &did, "MZFROM");
        }
        let Some(ws) = &ws else { continue };
        for pre in &img.pre_images {
            if let PreImage::CargoBuild { bins, examples } = pre {
                for b in bins {
                    if let Ok(c) = ws.crate_for_bin(b) {
                        let cid = g.node(format!("crate:{}", c.name));
                        g.edge(&iid, &cid, &format!("bin {b}"));
                    }
                }
                for e in examples {
                    if let Ok(c) = ws.crate_for_example(e) {
                        let cid = g.node(format!("crate:{}", c.name));
                        g.edge(&iid, &cid, &format!("example {e}"));
                    }
                }
            }
        }
    }
    if let Some(ws) = &ws {
        // Path dependencies of the crates already in the graph, transitively.
        let mut stack: Vec<String> = g
            .nodes
            .keys()
            .filter_map(|n| n.strip_prefix("crate:").map(str::to_string))
            .collect();
        let mut seen: BTreeSet<String> = stack.iter().cloned().collect();
        while let Some(c) = stack.pop() {
            let Some(krate) = ws.get(&c) else { continue };
            for d in krate.dependencies.iter().chain(&krate.build_dependencies) {
                let did = g.node(format!("crate:{d}"));
                g.edge(&format!("crate:{c}"), &did, "path dep");
                if seen.insert(d.clone()) {
                    stack.push(d.clone());
                }
            }
        }
        // Changed crates: a changed path below the crate's directory.
        let changes = s.ws.changes(db).paths(db);
        for c in ws.all() {
            let id = format!("crate:{}", c.name);
            if let Some(flag) = g.nodes.get_mut(&id) {
                *flag = changes
                    .iter()
                    .any(|p| pipetrim_queries::paths::is_under(p, &c.dir));
            }
        }
    }
    if let Ok(hits) = changed_images(db, s.ws) {
        for name in hits.hits.keys().chain(hits.broken.keys()) {
            if let Some(flag) = g.nodes.get_mut(&format!("image:{name}")) {
                *flag = true;
            }
        }
    }
    if let Ok(p) = plan(db, s.ws) {
        for d in &p.steps {
            if let Some(flag) = g.nodes.get_mut(&format!("step:{}", d.id)) {
                *flag = d.kept_on_its_own();
            }
        }
    }
    Ok(g)
}

fn quote(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

pub fn to_dot(g: &Graph) -> String {
    let mut out = String::from(
        "digraph pipetrim {\n  rankdir=LR;\n  node [shape=box, fontname=\"monospace\"];\n",
    );
    for (n, changed) in &g.nodes {
        let style = if *changed {
            ", style=filled, fillcolor=\"#ffd7d7\""
        } else {
            ""
        };
        out.push_str(&format!(
            "  \"{}\" [label=\"{}\"{style}];\n",
            quote(n),
            quote(n)
        ));
    }
    for (f, t, l) in &g.edges {
        out.push_str(&format!(
            "  \"{}\" -> \"{}\" [label=\"{}\"];\n",
            quote(f),
            quote(t),
            quote(l)
        ));
    }
    out.push_str("}\n");
    out
}

pub fn to_mermaid(g: &Graph) -> String {
    let ids: BTreeMap<&String, String> = g
        .nodes
        .keys()
        .enumerate()
        .map(|(i, n)| (n, format!("n{i}")))
        .collect();
    let mut out = String::from("flowchart LR\n");
    for (n, changed) in &g.nodes {
        out.push_str(&format!("  {}[\"{}\"]\n", ids[n], n.replace('"', "#quot;")));
        if *changed {
            out.push_str(&format!("  class {} changed\n", ids[n]));
        }
    }
    for (f, t, l) in &g.edges {
        if let (Some(a), Some(b)) = (ids.get(f), ids.get(t)) {
            out.push_str(&format!("  {a} -->|{}| {b}\n", l.replace('|', "/")));
        }
    }
    out.push_str("  classDef changed fill:#ffd7d7\n");
    out
}

pub fn to_json(g: &Graph) -> serde_json::Value {
    json!({
        "nodes": g.nodes.iter().map(|(n, c)| {
            let (kind, name) = n.split_once(':').unwrap_or(("", n));
            json!({"id": n, "kind": kind, "name": name, "changed": c})
        }).collect::<Vec<_>>(),
        "edges": g.edges.iter().map(|(f, t, l)| json!({"from": f, "to": t, "label": l})).collect::<Vec<_>>(),
    })
}
