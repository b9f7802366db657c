//! The ✓/✗ decision report (SPEC §6), as the reference prints it.

use pipetrim_queries::plan::{Plan, Reason};

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
