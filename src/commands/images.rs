//! `pipetrim images`: the mzbuild images with their dependencies and inputs.

use pipetrim_queries::images::image_graph;
use pipetrim_queries::inputs::image_files;
use serde_json::json;

use super::{print_out, session};
use crate::cli::Global;
use crate::error::Error;

pub fn run(g: &Global) -> Result<i32, Error> {
    let s = session(g)?;
    let db = &s.db;
    let files = s.ws.files(db);
    let graph = image_graph(db, files).clone()?;
    let mut out = Vec::new();
    let mut text = String::new();
    for img in graph.images.values() {
        let inputs = image_files(db, files, &img.name, false)?;
        let trans = image_files(db, files, &img.name, true)?;
        let mut deps = img.depends_on.clone();
        deps.sort();
        text.push_str(&format!(
            "{} ({}){}: {} inputs, {} transitive\n",
            img.name,
            img.dir,
            if deps.is_empty() {
                String::new()
            } else {
                format!(" <- {}", deps.join(", "))
            },
            inputs.len(),
            trans.len()
        ));
        out.push(json!({
            "name": img.name, "path": img.dir, "publish": img.publish, "mainline": img.mainline,
            "depends_on": deps, "pre_images": img.pre_images, "inputs": inputs, "inputs_transitive": trans,
        }));
    }
    print_out(g, &json!(out), &text)
}
