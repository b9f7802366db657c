//! Python analysis (SPEC §4.1, §4.2): per-file summaries from a real Python
//! parser, import resolution and closure, and the images a composition uses.
//!
//! Layering: [`summary`] is the only code that sees a syntax tree;
//! [`imports`] and [`images`] read summaries, so an edit re-parses one file.

pub mod analysis;
pub mod images;
pub mod imports;
pub mod summary;

pub use analysis::{CompositionAnalysis, composition_analysis};
pub use images::{CompositionImages, ImageSource, composition_images};
pub use imports::{
    DirectImports, Edge, ImportClosure, ImportHop, ModuleIndex, Unresolved, Via,
    composition_imports, direct_imports, module_index, package_dirs,
};
pub use summary::{ModuleSummary, ParseFailure, module_summary, summarize};

use crate::diag::Diagnostic;

/// The fail-safe note for a Python file that cannot be parsed (or read):
/// its imports are unknown, so every first-party module under `roots`
/// counts as an input of every composition that reaches it, and a
/// composition that does not parse, or looks up a name in the file, uses
/// every image (SPEC §10). One wording for the import closure and the
/// image analysis, so the plan reports the file once.
pub fn unparseable(path: &str, err: &ParseFailure, roots: &[String]) -> Diagnostic {
    let roots = if roots.is_empty() {
        "the Python roots".to_string()
    } else {
        roots
            .iter()
            .map(|r| match r.as_str() {
                "" => "`.`".to_string(),
                r => format!("`{r}`"),
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    Diagnostic::in_file(path, format!("cannot be parsed: {}", err.message))
        .at_line(err.line)
        .hint(format!(
            "its imports are unknown: every Python module under {roots} counts as an input of \
             the compositions that reach it, and a composition that is this file or uses a \
             name from it is taken to use every image; fix the file"
        ))
}

#[cfg(test)]
mod tests;
