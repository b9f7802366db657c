//! The decisions of `trim`: the ✓/✗ report (SPEC §6) as the reference
//! prints it, and the JSON plan (`trim --format json`, a stable shape that
//! README documents).

use pipetrim_queries::plan::{Plan, Reason};
use serde_json::{Value, json};

pub fn text_report(plan: &Plan, color: bool) -> String {
    let (green, red, dim, reset) = if color {
        ("\x1b[32m", "\x1b[31m", "\x1b[2m", "\x1b[0m")
    } else {
        ("", "", "", "")
    };
    let mut out = String::new();
    for d in &plan.steps {
        if d.kept {
            out.push_str(&format!("{green}✓{reset} {}\n", d.id));
        } else {
            out.push_str(&format!("{red}✗{reset} {}\n", d.id));
        }
        if !d.depends_on.is_empty() {
            out.push_str(&format!(
                "{dim}    wait:{reset} {}\n",
                d.depends_on.join(" ")
            ));
        }
        if !d.globs.is_empty() {
            out.push_str(&format!("{dim}    globs:{reset} {}\n", d.globs.join(" ")));
        }
        if !d.images.is_empty() {
            out.push_str(&format!("{dim}    images:{reset} {}\n", d.images.join(" ")));
        }
        if d.kept && !d.changed_inputs.is_empty() {
            let shown: Vec<&String> = d.changed_inputs.iter().take(3).collect();
            let more = d.changed_inputs.len().saturating_sub(3);
            out.push_str(&format!(
                "{dim}    changed:{reset} {}{}\n",
                shown
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(" "),
                if more > 0 {
                    format!(" (+{more})")
                } else {
                    String::new()
                }
            ));
        }
    }
    for e in &plan.errors {
        out.push_str(&format!("warning: {e}\n"));
        let kept: Vec<&str> = plan
            .steps
            .iter()
            .filter(|d| {
                d.reasons
                    .iter()
                    .any(|r| matches!(r, Reason::FailSafe { diagnostic } if diagnostic == e))
            })
            .map(|d| d.id.as_str())
            .collect();
        if kept.is_empty() {
            out.push_str(&format!("{dim}    kept fail-safe: none{reset}\n"));
        } else {
            out.push_str(&format!(
                "{dim}    kept fail-safe:{reset} {}\n",
                kept.join(" ")
            ));
        }
    }
    out
}

/// `trim --format json`: whether the pipeline was trimmed or dry-run, why,
/// and every decision.
pub fn trim_json(plan: &Plan, trimmed: bool, dry_run: bool, reason: &str) -> Value {
    let steps: Vec<Value> = plan
        .steps
        .iter()
        .map(|d| {
            json!({
                "id": d.id, "kept": d.kept, "changed": d.kept_on_its_own(),
                "depends_on": d.depends_on, "globs": d.globs, "images": d.images,
                "changed_inputs": d.changed_inputs, "reasons": d.reasons,
            })
        })
        .collect();
    json!({
        "trimmed": trimmed, "dry_run": dry_run, "reason": reason,
        "errors": plan.errors,
        "steps": steps,
    })
}
