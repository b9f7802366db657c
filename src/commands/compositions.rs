//! `pipetrim compositions`: each composition's Python import closure and
//! images, with the notes where a fail-safe rule fired.

use pipetrim_queries::images::{compositions, image_graph, used_images};
use pipetrim_queries::python::composition_imports;
use pipetrim_queries::{Db, Diagnostic};
use serde_json::json;

use super::{print_out, session};
use crate::cli::Global;
use crate::error::Error;

pub fn run(g: &Global) -> Result<i32, Error> {
    let s = session(g)?;
    let db = &s.db;
    let files = s.ws.files(db);
    let options = s.ws.options(db);
    let comps = compositions(db, files).clone()?;
    let graph = image_graph(db, files).clone()?;
    let mut out = Vec::new();
    let mut text = String::new();
    for (name, dir) in &comps {
        let file = db.file(&format!("{dir}/mzcompose.py"));
        let imports = composition_imports(db, files, options, file);
        let used = used_images(db, files, options, dir, &graph);
        let images = used.names;
        let mut unsure: Vec<Diagnostic> = imports.unsure.clone();
        unsure.extend(imports.unresolved.iter().map(|u| u.diagnostic.clone()));
        if let Some(why) = used.every_image
            && !unsure.contains(&why)
        {
            unsure.push(why);
        }
        text.push_str(&format!(
            "{name} ({dir}): {} imports, images: {}\n",
            imports.files.len(),
            images.iter().cloned().collect::<Vec<_>>().join(", ")
        ));
        for u in &unsure {
            text.push_str(&format!("    unsure: {u}\n"));
        }
        out.push(json!({
            "name": name, "path": dir, "imports": imports.files, "images": images,
            "unsure": unsure.iter().map(|u| json!({"file": u.file, "line": u.line, "reason": u.message})).collect::<Vec<_>>(),
        }));
    }
    print_out(g, &json!(out), &text)
}
