//! `pipetrim graph`: the step → composition → image → crate graph as dot,
//! mermaid or JSON, changed nodes marked when a change set is given.

use super::{changes, print_out, session};
use crate::cli::{ChangeArgs, Format, Global};
use crate::error::Error;
use crate::output::graph;

pub fn run(g: &Global, step: Option<&str>, a: &ChangeArgs) -> Result<i32, Error> {
    let mut s = session(g)?;
    if a.base.is_some() || a.changed_files.is_some() || a.uncommitted {
        let changes = changes(g, &s.root, a)?;
        s.set_changes(changes.paths, changes.unknown);
    }
    let mut view = graph::build(&s)?;
    if let Some(step) = step {
        let id = format!("step:{step}");
        if !view.nodes.contains_key(&id) {
            return Err(Error::Usage(format!("no step `{step}` in the pipeline")));
        }
        view = view.restrict(&id);
    }
    let text = match g.format {
        Format::Mermaid => graph::to_mermaid(&view),
        _ => graph::to_dot(&view),
    };
    print_out(g, &graph::to_json(&view), &text)
}
