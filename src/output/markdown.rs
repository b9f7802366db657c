//! The trim decisions as Markdown (CommonMark with GitHub tables), for a
//! Buildkite annotation on the build page and for `--report-markdown`.
//!
//! A summary first and the detail on demand: the headline (kept N of M,
//! trimmed K, dry run or not, the base), then what needs a look (errors
//! and fail-safe keeps), one table row per step with its one-line reason,
//! and every chain of evidence inside `<details>`.

use std::borrow::Cow;

use pipetrim_queries::plan::{Plan, Reason, StepDecision};

use crate::output::explain::{Evidence, render_chain, render_chain_short};

/// What the report is about besides the plan.
#[derive(Debug, Clone)]
pub struct Summary<'a> {
    pub plan: &'a Plan,
    /// The pipeline was trimmed (else it runs whole, or as a dry run).
    pub trimmed: bool,
    /// The CI glue changed: decisions reported, nothing removed.
    pub dry_run: bool,
    /// The decision's one-line reason (`trimmed against …`, `dry run: …`).
    pub reason: &'a str,
    /// What the change set was taken against (`merge base … of HEAD and …`).
    pub against: &'a str,
    pub pipeline: &'a str,
}

/// The annotation style: `warning` when something needs a look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Info,
    Warning,
}

impl Style {
    pub fn as_str(self) -> &'static str {
        match self {
            Style::Info => "info",
            Style::Warning => "warning",
        }
    }
}

/// `warning` when the plan has errors or keeps a step fail-safe (an
/// unknown change set included), else `info`.
pub fn style(plan: &Plan) -> Style {
    if !plan.errors.is_empty() || plan.changes_unknown.is_some() || needs_look(plan) {
        Style::Warning
    } else {
        Style::Info
    }
}

fn needs_look(plan: &Plan) -> bool {
    plan.steps.iter().any(|d| d.fail_safe)
}

/// The whole report.
pub fn trim_markdown(s: &Summary, ev: &Evidence) -> String {
    let plan = s.plan;
    let total = plan.steps.len();
    let kept = plan.kept().count();
    let trimmed = total - kept;
    let mut out = String::new();
    let pipeline = code(s.pipeline);
    if s.trimmed {
        out.push_str(&format!(
            "### pipetrim: kept {kept} of {total} steps, trimmed {trimmed}\n\n\
             Pipeline {pipeline}, change set: {}.\n",
            text(s.against)
        ));
    } else if s.dry_run {
        out.push_str(&format!(
            "### pipetrim (dry run): would keep {kept} of {total} steps, trim {trimmed}\n\n\
             Pipeline {pipeline}, change set: {}. {}\n",
            text(s.against),
            text(&sentence(s.reason))
        ));
    } else {
        out.push_str(&format!(
            "### pipetrim: every step runs; the change alone would keep {kept} of {total}, trim {trimmed}\n\n\
             Pipeline {pipeline}, change set: {}. {}\n",
            text(s.against),
            text(&sentence(s.reason))
        ));
    }
    warnings(&mut out, plan);
    table(&mut out, s, ev);
    details(&mut out, plan, ev);
    out
}

/// `dry run: CI glue changed` → `Dry run: CI glue changed.`
fn sentence(reason: &str) -> String {
    let mut c = reason.chars();
    let mut s: String = match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    };
    if !s.ends_with('.') {
        s.push('.');
    }
    s
}

/// Errors and fail-safe keeps, before anything else.
fn warnings(out: &mut String, plan: &Plan) {
    if plan.errors.is_empty() && plan.changes_unknown.is_none() {
        return;
    }
    out.push_str("\n#### ⚠️ Needs a look\n\n");
    if let Some(why) = &plan.changes_unknown {
        out.push_str(&format!(
            "- The change set is unknown, every step is kept: {}\n",
            text(why)
        ));
    }
    for e in &plan.errors {
        let kept: Vec<String> = plan.kept_fail_safe_by(e).map(|d| code(&d.id)).collect();
        let kept = if kept.is_empty() {
            "none (this change does not reach it)".to_string()
        } else {
            kept.join(", ")
        };
        out.push_str(&format!(
            "- {}\n  kept fail-safe: {kept}\n",
            text(&e.to_string())
        ));
    }
}

/// Where a step goes in the table: fail-safe keeps first, then kept
/// steps, then trimmed ones; each group in pipeline order.
fn rank(d: &StepDecision) -> u8 {
    match (d.kept, d.fail_safe) {
        (true, true) => 0,
        (true, false) => 1,
        (false, _) => 2,
    }
}

fn table(out: &mut String, s: &Summary, ev: &Evidence) {
    let mut steps: Vec<&StepDecision> = s.plan.steps.iter().map(|d| &**d).collect();
    steps.sort_by_key(|d| rank(d));
    out.push_str("\n| step | decision | why |\n| --- | --- | --- |\n");
    for d in steps {
        let decision = match (d.kept, d.fail_safe) {
            (true, true) => "✓ kept (fail-safe)",
            (true, false) => "✓ kept",
            (false, _) if s.trimmed => "✗ trimmed",
            (false, _) => "✗ would trim",
        };
        out.push_str(&format!(
            "| {} | {decision} | {} |\n",
            cell(&code(&d.id)),
            cell(&why(d, ev))
        ));
    }
}

/// The one-line reason of a step's row.
fn why(d: &StepDecision, ev: &Evidence) -> String {
    if !d.kept {
        return if d.has_inputs {
            "no input changed".into()
        } else {
            "no inputs: no change can keep it".into()
        };
    }
    // A fail-safe keep says why first (without the hint: the warnings
    // above have it).
    let fail_safe = d.reasons.iter().find_map(|r| match r {
        Reason::FailSafe { diagnostic } => {
            let mut d = diagnostic.clone();
            d.hint = None;
            Some(format!("kept fail-safe: {d}"))
        }
        Reason::ChangesUnknown { .. } => Some("kept: the change set is unknown".into()),
        _ => None,
    });
    let first = match fail_safe {
        Some(f) => f,
        None => crate::output::explain::best_chains(d, ev, 1)
            .first()
            .map(|c| render_chain_short(c))
            .unwrap_or_default(),
    };
    match d.reasons.len().saturating_sub(1) {
        0 => first,
        more => format!("{first} (+{more} more)"),
    }
}

/// Every reason of every kept step, folded away.
fn details(out: &mut String, plan: &Plan, ev: &Evidence) {
    let kept: Vec<&StepDecision> = plan.kept().collect();
    if kept.is_empty() {
        return;
    }
    out.push_str("\n<details>\n<summary>Evidence: every reason each step is kept</summary>\n\n");
    for d in kept {
        out.push_str(&format!("**{}**\n\n", code(&d.id)));
        let mut seen = std::collections::BTreeSet::new();
        for r in &d.reasons {
            let line = render_chain(&ev.chain(r, &d.id));
            if seen.insert(line.clone()) {
                out.push_str(&format!("- {}\n", text(&line)));
            }
        }
        out.push('\n');
    }
    out.push_str("</details>\n");
}

/// `s` as a code span, with a fence longer than any backtick run inside.
fn code(s: &str) -> String {
    let longest = s.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest + 1);
    let pad = if s.starts_with('`') || s.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{s}{pad}{fence}")
}

/// Text that may hold code spans (`` `path` ``, as diagnostics and chains
/// write them): outside the spans, `<`, `>` and `&` are escaped so that
/// nothing reads as HTML; inside, they are literal already.
fn text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for (i, part) in s.split('`').enumerate() {
        if i > 0 {
            out.push('`');
        }
        if i % 2 == 1 {
            out.push_str(part);
        } else {
            for c in part.chars() {
                match c {
                    '<' => out.push_str("&lt;"),
                    '>' => out.push_str("&gt;"),
                    '&' => out.push_str("&amp;"),
                    c => out.push(c),
                }
            }
        }
    }
    // An odd number of backticks leaves the last one open: CommonMark
    // shows it as a literal backtick, which is what it is.
    out
}

/// A table cell: one line, `|` escaped (GitHub tables take `\|` inside
/// code spans too).
fn cell(s: &str) -> String {
    text(s).replace('|', "\\|").replace(['\n', '\r'], " ")
}

/// `md` cut to at most `limit` bytes at a line boundary, with a closing
/// `</details>` if the cut falls inside the block and a line saying that
/// it was cut (the full report is in the job's log).
pub fn truncate(md: &str, limit: usize) -> Cow<'_, str> {
    if md.len() <= limit {
        return Cow::Borrowed(md);
    }
    let notice = format!(
        "\n_Truncated: the report is {} bytes, more than an annotation may hold ({limit}); \
         the full ✓/✗ report is in the job's log._\n",
        md.len()
    );
    let close = "\n</details>\n";
    let budget = limit.saturating_sub(notice.len() + close.len());
    let mut cut = 0;
    for (i, _) in md.match_indices('\n') {
        if i + 1 > budget {
            break;
        }
        cut = i + 1;
    }
    let head = &md[..cut];
    let open = head.matches("<details>").count() > head.matches("</details>").count();
    let mut out = head.to_string();
    if open {
        out.push_str(close);
    }
    out.push_str(&notice);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_spans_survive_backticks() {
        assert_eq!(code("a"), "`a`");
        assert_eq!(code("a`b"), "``a`b``");
        assert_eq!(code("`a"), "`` `a ``");
    }

    #[test]
    fn text_escapes_html_outside_code_spans_only() {
        assert_eq!(text("a <b> `<c>` & d"), "a &lt;b&gt; `<c>` &amp; d");
        assert_eq!(cell("x | `y|z`\nw"), "x \\| `y\\|z` w");
    }

    #[test]
    fn truncate_cuts_at_a_line_and_closes_details() {
        let mut md = String::from("### head\n\n<details>\n<summary>s</summary>\n\n");
        for i in 0..1000 {
            md.push_str(&format!("- line {i}\n"));
        }
        md.push_str("</details>\n");
        assert_eq!(truncate(&md, md.len()), md);
        let t = truncate(&md, 2000);
        assert!(t.len() <= 2000, "{}", t.len());
        assert!(t.starts_with("### head\n"));
        assert!(t.contains("- line 10\n"));
        assert!(!t.contains("- line 999"));
        assert_eq!(t.matches("</details>").count(), 1);
        assert!(t.trim_end().ends_with("job's log._"), "{t}");
        // Every line kept is whole.
        let body = t.split("\n</details>").next().unwrap_or_default();
        assert!(
            body.lines()
                .all(|l| !l.starts_with("- line") || l.len() > 7)
        );
    }

    #[test]
    fn truncate_outside_details_adds_no_closing_tag() {
        let md = "a\n".repeat(1000);
        let t = truncate(&md, 500);
        assert!(t.len() <= 500);
        assert!(!t.contains("</details>"));
    }

    #[test]
    fn sentence_capitalises_and_ends_with_a_period() {
        assert_eq!(sentence("dry run: x"), "Dry run: x.");
        assert_eq!(sentence("done."), "Done.");
    }
}
