//! The decisions of `trim`: the ✓/✗ report (SPEC §6) as the reference
//! prints it, and the JSON plan (`trim --format json`, a stable shape that
//! README documents).

use pipetrim_queries::pipeline::Template;
use pipetrim_queries::plan::Plan;
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
        out.push_str(&format!("warning: kept fail-safe: {e}\n"));
    }
    out
}

/// `trim --format json`: whether the pipeline was trimmed or dry-run, why,
/// and every decision. Without a plan (it could not be computed) every
/// trimmable step of the template is listed as kept.
pub fn trim_json(
    plan: Option<&Plan>,
    template: &Template,
    trimmed: bool,
    dry_run: bool,
    reason: &str,
) -> Value {
    let steps: Vec<Value> = match plan {
        Some(p) => p
            .steps
            .iter()
            .map(|d| {
                json!({
                    "id": d.id, "kept": d.kept, "changed": d.kept_on_its_own(),
                    "depends_on": d.depends_on, "globs": d.globs, "images": d.images,
                    "changed_inputs": d.changed_inputs, "reasons": d.reasons,
                })
            })
            .collect(),
        None => template
            .steps
            .iter()
            .filter(|s| s.kind.is_trimmable())
            .map(|s| json!({"id": s.id, "kept": true, "changed": true}))
            .collect(),
    };
    json!({
        "trimmed": trimmed, "dry_run": dry_run, "reason": reason,
        "errors": plan.map(|p| p.errors.clone()).unwrap_or_default(),
        "steps": steps,
    })
}
