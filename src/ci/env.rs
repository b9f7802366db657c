//! The Buildkite environment and the flags that override it (SPEC §6):
//! the finishing options, whether the pipeline is trimmed at all, and test
//! selection by `CI_TEST_IDS` / `CI_TEST_SELECTION`.

use std::collections::BTreeSet;

use serde_yaml_ng::Value;

use crate::ci::finish::{self, FinishOptions};
use crate::error::Error;

/// `trim` flags that override the environment; `None`/`false` leaves the
/// environment's value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    pub coverage: bool,
    /// `none` means no sanitizer.
    pub sanitizer: Option<String>,
    pub priority: Option<i64>,
    pub branch: Option<String>,
    /// Empty means no tag.
    pub tag: Option<String>,
}

/// When and how to trim, from the environment and flags.
#[derive(Debug, Clone)]
pub struct TrimContext {
    pub finish: FinishOptions,
    pub test_ids: Option<String>,
    pub test_selection: Option<String>,
}

impl TrimContext {
    /// Reads the reference's variables through `var` (for example
    /// `|k| std::env::var(k).ok()`), then applies the flags.
    pub fn from_env(
        pipeline: &str,
        flags: &Overrides,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, Error> {
        let mut f =
            FinishOptions::from_env(pipeline, &var).map_err(|e| Error::Usage(e.to_string()))?;
        if flags.coverage {
            f.coverage = true;
        }
        if let Some(s) = &flags.sanitizer {
            f.sanitizer = Some(s.clone()).filter(|s| s != "none");
        }
        if let Some(p) = flags.priority {
            f.priority = p;
        }
        if let Some(b) = &flags.branch {
            f.branch = b.clone();
        }
        if let Some(t) = &flags.tag {
            f.tag = Some(t.clone()).filter(|t| !t.is_empty());
        }
        Ok(TrimContext {
            finish: f,
            test_ids: var("CI_TEST_IDS").filter(|s| !s.is_empty()),
            test_selection: var("CI_TEST_SELECTION").filter(|s| !s.is_empty()),
        })
    }

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

    /// Skips the steps `CI_TEST_IDS` (indices in the flattened step order)
    /// or else `CI_TEST_SELECTION` (ids) leave out. Runs on the untrimmed
    /// pipeline, since the indices count its steps.
    pub fn select_tests(&self, pipeline: &mut Value) -> Result<(), Error> {
        if let Some(ids) = &self.test_ids {
            let set: BTreeSet<usize> = ids
                .split(',')
                .map(|i| {
                    i.trim().parse::<usize>().map_err(|_| {
                        Error::Usage(format!("CI_TEST_IDS: `{i}` is not a step index"))
                    })
                })
                .collect::<Result<_, _>>()?;
            finish::select_tests_by_id(pipeline, &set).map_err(|e| Error::Usage(e.to_string()))
        } else if let Some(sel) = &self.test_selection {
            let set: BTreeSet<String> = sel.split(',').map(|s| s.trim().to_string()).collect();
            finish::select_tests_by_name(pipeline, &set).map_err(|e| Error::Usage(e.to_string()))
        } else {
            Ok(())
        }
    }
}
