//! `pipetrim crates`: the crates of the Cargo workspace.

use std::collections::BTreeSet;

use pipetrim_queries::cargo::cargo_workspace;
use serde_json::json;

use super::{print_out, session};
use crate::cli::Global;
use crate::error::Error;

pub fn run(g: &Global) -> Result<i32, Error> {
    let s = session(g)?;
    let db = &s.db;
    let ws = cargo_workspace(db, s.ws.files(db)).clone()?;
    let mut out = Vec::new();
    let mut text = String::new();
    for c in ws.all() {
        let deps: BTreeSet<&String> = c
            .dependencies
            .iter()
            .chain(&c.build_dependencies)
            .chain(&c.dev_dependencies)
            .collect();
        text.push_str(&format!(
            "{} ({}) bins: [{}] examples: [{}]\n",
            c.name,
            c.dir,
            c.bins.join(", "),
            c.examples.join(", ")
        ));
        out.push(json!({
            "name": c.name, "path": c.dir, "bins": c.bins, "examples": c.examples,
            "path_dependencies": deps, "dependencies": c.dependencies,
            "build_dependencies": c.build_dependencies, "dev_dependencies": c.dev_dependencies,
            "member": ws.members.contains_key(&c.name),
        }));
    }
    print_out(g, &json!(out), &text)
}
