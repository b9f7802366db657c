//! The decisions of `trim`: the ✓/✗ report (SPEC §6) as the reference
//! prints it, and the JSON plan (`trim --format json`, a stable shape that
//! README documents).

use anstyle::{AnsiColor, Effects, Style};
use pipetrim_queries::Diagnostic;
use pipetrim_queries::plan::{Plan, Reason};
use serde_json::{Value, json};

use crate::output::diagnostic::{self, Severity};

const GREEN: Style = AnsiColor::Green.on_default();
const RED: Style = AnsiColor::Red.on_default();
const DIM: Style = Style::new().effects(Effects::DIMMED);

/// The report with ANSI styles: write it through an `anstream` writer,
/// which strips them where colour is off (`NO_COLOR`, not a terminal) and
/// keeps them under `CLICOLOR_FORCE`. `source` gives the source line of a
/// diagnostic, shown under its warning.
pub fn text_report(plan: &Plan, source: &dyn Fn(&Diagnostic) -> Option<String>) -> String {
    let (green, red, dim) = (GREEN.render(), RED.render(), DIM.render());
    let reset = anstyle::Reset.render();
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
        // Kept because something it may read could not be: say which
        // (the warning below says what the file can reach).
        for r in &d.reasons {
            if let Reason::FailSafe { diagnostic: e } = r {
                let at = match (&e.file, e.line) {
                    (Some(f), Some(l)) => format!("{f}:{l}"),
                    (Some(f), None) => f.clone(),
                    (None, _) => "the plan".to_string(),
                };
                out.push_str(&format!(
                    "{dim}    fail safe:{reset} {at}: {} (see the warning below)\n",
                    e.message
                ));
            }
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
        let src = source(e);
        out.push_str(&diagnostic::render(e, Severity::Warning, src.as_deref()));
        out.push('\n');
        let kept: Vec<&str> = plan.kept_fail_safe_by(e).map(|d| d.id.as_str()).collect();
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
