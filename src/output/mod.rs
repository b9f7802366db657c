//! How decisions are shown: the ✓/✗ report and the JSON plan, chains of
//! evidence, the step → composition → image → crate graph, and the
//! progress line while hashing.

pub mod explain;
pub mod graph;
pub mod progress;
pub mod report;
pub mod stats;
