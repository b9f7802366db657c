//! How decisions are shown: the ✓/✗ report and the JSON plan, diagnostics
//! with their source line, chains of
//! evidence, the step → composition → image → crate graph, the progress
//! line while hashing, and the Markdown of the Buildkite
//! annotation.

pub mod diagnostic;
pub mod explain;
pub mod graph;
pub mod markdown;
pub mod progress;
pub mod report;
pub mod stats;
