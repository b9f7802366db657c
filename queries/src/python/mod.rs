//! Python analysis (SPEC §4.1, §4.2): per-file summaries from a real Python
//! parser, import resolution and closure, and the images a composition uses.
//!
//! Layering: [`summary`] is the only code that sees a syntax tree;
//! [`imports`] and [`images`] read summaries, so an edit re-parses one file.

pub mod images;
pub mod imports;
pub mod summary;

pub use images::{CompositionImages, ImageSource, composition_images};
pub use imports::{
    DirectImports, Edge, ImportClosure, ModuleIndex, Via, composition_imports, direct_imports,
    module_index,
};
pub use summary::{ModuleSummary, module_summary, summarize};

#[cfg(test)]
mod tests;
