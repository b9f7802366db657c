//! The Buildkite environment and the flags that override it (SPEC §6).

use crate::finish::{FinishOptions, env_is_truthy};

/// When and how to trim, from the environment and flags.
#[derive(Debug, Clone)]
pub struct TrimContext {
    pub finish: FinishOptions,
    pub test_ids: Option<String>,
    pub test_selection: Option<String>,
}

impl TrimContext {
    /// Why the pipeline is not trimmed, or `None` when it is.
    pub fn no_trim_reason(&self) -> Option<String> {
        let f = &self.finish;
        if f.pipeline_name != "test" {
            return Some(format!(
                "pipeline `{}` is never trimmed (only `test` is)",
                f.pipeline_name
            ));
        }
        if self.test_ids.is_some() {
            return Some("CI_TEST_IDS is set".into());
        }
        if f.coverage || f.sanitizer.as_deref().is_some_and(|s| s != "none") {
            return Some("coverage/sanitizer build".into());
        }
        if f.branch == "main" || f.tag.as_deref().is_some_and(|t| !t.is_empty()) {
            return Some("on main branch or tag".into());
        }
        None
    }
}

pub fn truthy(var: &str) -> bool {
    env_is_truthy(std::env::var(var).ok().as_deref())
}
