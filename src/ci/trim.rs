//! What the plan does to the pipeline (SPEC §6): trimmed to the needed
//! steps, a dry run when the CI glue changed (only unchanged
//! `ci_glue_exempt` steps are skipped), or left whole, and the one-line
//! reason the report starts with.

use std::collections::HashSet;

use pipetrim_queries::pathspec::any_changed;
use pipetrim_queries::plan::Plan;
use serde_yaml_ng::Value;

use crate::ci::finish;
use crate::error::Error;

/// Whether and how the pipeline is trimmed, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Steps the plan does not keep are removed.
    pub trimmed: bool,
    /// The CI glue changed: decisions are reported, nothing is removed.
    pub dry_run: bool,
    /// `trimmed against …`, `dry run: …` or `not trimmed: …`.
    pub reason: String,
}

/// Decides from the environment's verdict (`no_trim`, see
/// [`crate::ci::env::TrimContext::no_trim_reason`]), the plan, whether the
/// change set is known, and what it was taken against.
pub fn decide(
    no_trim: Option<&str>,
    plan: &Plan,
    unknown: Option<&str>,
    against: &str,
) -> Decision {
    let dry_run = no_trim.is_none() && plan.glue_changed;
    let trimmed = no_trim.is_none() && !dry_run && unknown.is_none();
    let reason = match (no_trim, dry_run) {
        (Some(r), _) => format!("not trimmed: {r}"),
        (None, _) if unknown.is_some() => format!(
            "not trimmed: the change set is unknown: {}",
            unknown.unwrap_or_default()
        ),
        (None, true) => {
            "dry run: CI glue changed (bin, ci, ...); decisions reported, nothing removed".into()
        }
        (None, false) => format!("trimmed against {against}"),
    };
    Decision {
        trimmed,
        dry_run,
        reason,
    }
}

/// Applies `decision` to the pipeline: keeps the steps `plan` keeps, or in
/// a dry run skips the unchanged glue-exempt steps (`changes` is the change
/// set their `inputs` are matched against).
pub fn apply(
    pipeline: &mut Value,
    plan: &Plan,
    decision: &Decision,
    changes: &[String],
) -> Result<(), Error> {
    if decision.trimmed {
        let needed: HashSet<String> = plan.kept().map(|d| d.id.clone()).collect();
        finish::restrict_to(pipeline, &needed).map_err(|e| Error::Usage(e.to_string()))?;
    } else if decision.dry_run {
        let changed = |inputs: &[String]| any_changed(inputs, changes);
        finish::skip_unchanged_glue_exempt(pipeline, &changed)
            .map_err(|e| Error::Usage(e.to_string()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(glue_changed: bool) -> Plan {
        Plan {
            steps: Vec::new(),
            glue_changed,
            changes_unknown: None,
            errors: Vec::new(),
        }
    }

    #[test]
    fn decide_in_the_references_order() {
        let p = plan(false);
        let glue = plan(true);
        let d = decide(None, &p, None, "main");
        assert!(d.trimmed && !d.dry_run);
        assert_eq!(d.reason, "trimmed against main");
        let d = decide(None, &glue, None, "main");
        assert!(!d.trimmed && d.dry_run);
        assert!(d.reason.starts_with("dry run: CI glue changed"));
        // The environment's reason wins over everything, also the glue.
        let d = decide(Some("CI_TEST_IDS is set"), &glue, None, "main");
        assert!(!d.trimmed && !d.dry_run);
        assert_eq!(d.reason, "not trimmed: CI_TEST_IDS is set");
        let d = decide(None, &p, Some("shallow clone"), "main");
        assert!(!d.trimmed && !d.dry_run);
        assert_eq!(
            d.reason,
            "not trimmed: the change set is unknown: shallow clone"
        );
    }
}
