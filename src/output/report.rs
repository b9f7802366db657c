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

/// Appends the report to `out`, with ANSI styles when `styled` (colour on:
/// a terminal, or `CLICOLOR_FORCE`), else plain: written in one pass, not
/// styled then stripped (on c01 it is ~110 KB, on every trim). `source`
/// gives the source line of a diagnostic, shown under its warning.
pub fn text_report(
    out: &mut String,
    plan: &Plan,
    source: &dyn Fn(&Diagnostic) -> Option<String>,
    styled: bool,
) {
    use std::fmt::Write;
    let pick = |s: Style| if styled { s } else { Style::new() };
    let (green, red, dim) = (pick(GREEN), pick(RED), pick(DIM));
    let (g, r, d0) = (green.render(), red.render(), dim.render());
    let (g1, r1, d1) = (green.render_reset(), red.render_reset(), dim.render_reset());
    // Items separated by spaces, as the reference prints lists.
    let join = |out: &mut String, items: &mut dyn Iterator<Item = &str>| {
        for (i, s) in items.enumerate() {
            if i > 0 {
                out.push(' ');
            }
            out.push_str(s);
        }
    };
    // `write!` into a String cannot fail: its results are dropped.
    for d in &plan.steps {
        if d.kept {
            let _ = writeln!(out, "{g}✓{g1} {}", d.id);
        } else {
            let _ = writeln!(out, "{r}✗{r1} {}", d.id);
        }
        if !d.depends_on.is_empty() {
            let _ = write!(out, "{d0}    wait:{d1} ");
            join(out, &mut d.depends_on.iter().map(String::as_str));
            out.push('\n');
        }
        if !d.globs.is_empty() {
            let _ = write!(out, "{d0}    globs:{d1} ");
            join(out, &mut d.globs.iter().map(|g| &**g));
            out.push('\n');
        }
        if !d.images.is_empty() {
            let _ = write!(out, "{d0}    images:{d1} ");
            join(out, &mut d.images.iter().map(String::as_str));
            out.push('\n');
        }
        // Kept because something it may read could not be: say which
        // (the warning below says what the file can reach).
        for reason in &d.reasons {
            if let Reason::FailSafe { diagnostic: e } = reason {
                let _ = write!(out, "{d0}    fail safe:{d1} ");
                match (&e.file, e.line) {
                    (Some(f), Some(l)) => {
                        let _ = write!(out, "{f}:{l}");
                    }
                    (Some(f), None) => out.push_str(f),
                    (None, _) => out.push_str("the plan"),
                }
                let _ = writeln!(out, ": {} (see the warning below)", e.message);
            }
        }
        if d.kept && !d.changed_inputs.is_empty() {
            let _ = write!(out, "{d0}    changed:{d1} ");
            join(
                out,
                &mut d.changed_inputs.iter().take(3).map(String::as_str),
            );
            let more = d.changed_inputs.len().saturating_sub(3);
            if more > 0 {
                let _ = write!(out, " (+{more})");
            }
            out.push('\n');
        }
    }
    for e in &plan.errors {
        let src = source(e);
        let rendered = diagnostic::render(e, Severity::Warning, src.as_deref());
        if styled {
            out.push_str(&rendered);
        } else {
            let _ = write!(out, "{}", anstream::adapter::strip_str(&rendered));
        }
        out.push('\n');
        let kept: Vec<&str> = plan.kept_fail_safe_by(e).map(|d| d.id.as_str()).collect();
        if kept.is_empty() {
            let _ = writeln!(out, "{d0}    kept fail-safe: none{d1}");
        } else {
            let _ = write!(out, "{d0}    kept fail-safe:{d1} ");
            join(out, &mut kept.iter().copied());
            out.push('\n');
        }
    }
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
