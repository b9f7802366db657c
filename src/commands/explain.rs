//! `pipetrim explain STEP`: why a step is kept or trimmed, as chains of
//! evidence from a changed file to the step.

use super::{changes, planned, print_out};
use crate::cli::{ChangeArgs, Global};
use crate::error::Error;
use crate::output::explain::{Evidence, explain_json, explain_text};

pub fn run(g: &Global, step: &str, a: &ChangeArgs) -> Result<i32, Error> {
    let changes = changes(g, &g.repo, a)?;
    let (s, p) = planned(g, changes.paths, changes.unknown)?;
    let ev = Evidence::of(&s);
    let Some(d) = p.steps.iter().find(|d| d.id == step) else {
        let known: Vec<&str> = p.steps.iter().map(|d| d.id.as_str()).collect();
        return Err(Error::Usage(format!(
            "no step `{step}` in the pipeline (hint: one of {})",
            known
                .iter()
                .take(12)
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    };
    let text = explain_text(d, &ev);
    print_out(g, &explain_json(d, &ev), &text)
}
