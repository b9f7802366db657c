//! `pipetrim stats` as text, Markdown (for a Buildkite annotation or a
//! README), JSON, and the keep-rate plot (SVG, drawn by plotters).

use std::fmt::Write as _;

use pipetrim_queries::stats::{ReasonKind, Stats, StepStats, TriggerCount};

/// What the report is about, beside the numbers.
#[derive(Debug, Clone)]
pub struct Meta {
    pub pipeline: String,
    /// The revision the walk ended at, as given.
    pub from: String,
    pub requested: usize,
    /// Stopped early (Ctrl-C).
    pub interrupted: bool,
    /// Blobs that could not be read (partial clone).
    pub unreadable: Vec<String>,
    /// The first parent of the first commit walked, and the last commit.
    pub span: Option<(String, String)>,
}

fn short(id: &str) -> &str {
    id.get(..10).unwrap_or(id)
}

fn pct(r: f64) -> String {
    format!("{:.0}%", r * 100.0)
}

fn mins(m: f64) -> String {
    if m >= 100.0 {
        format!("{m:.0}")
    } else {
        format!("{m:.1}")
    }
}

/// The lines every format starts with: what was walked and the totals.
fn headline(s: &Stats, m: &Meta) -> Vec<String> {
    let t = &s.totals;
    let mut out = Vec::new();
    let walked = t.commits + t.skipped;
    let span = match &m.span {
        Some((a, b)) => format!(" {}..{}", short(a), short(b)),
        None => String::new(),
    };
    out.push(format!(
        "{walked} commits{span} (first parents ending at {}), pipeline {}",
        m.from, m.pipeline
    ));
    if m.interrupted {
        out.push(format!(
            "interrupted: {walked} of the {} commits asked for were evaluated",
            m.requested
        ));
    } else if walked < m.requested {
        out.push(format!(
            "the history has only {walked} of the {} commits asked for",
            m.requested
        ));
    }
    out.push(format!(
        "plans: {} ({} dry run(s): CI glue changed, decisions counted as planned; {} with diagnostics); skipped: {}",
        t.commits, t.dry_runs, t.with_errors, t.skipped
    ));
    if t.step_runs > 0 {
        out.push(format!(
            "kept {} of {} step decisions ({}), {:.1} steps per commit on average",
            t.kept,
            t.step_runs,
            pct(t.kept as f64 / t.step_runs as f64),
            t.kept_mean
        ));
    }
    if let Some(mm) = &t.minutes {
        out.push(format!(
            "step-minutes: {} of {} run, {} saved ({} of them in dry runs, which run every step)",
            mins(mm.run),
            mins(mm.full),
            mins(mm.saved),
            mins(mm.saved_in_dry_runs)
        ));
        if !mm.steps_without_duration.is_empty() {
            out.push(format!(
                "no duration for {} step(s), not in the minutes: {}",
                mm.steps_without_duration.len(),
                mm.steps_without_duration.join(", ")
            ));
        }
    }
    if !m.unreadable.is_empty() {
        out.push(format!(
            "warning: {} file(s) could not be read from git objects (a partial clone?): the steps they may feed are kept fail safe, a commit without a readable template is skipped: {}",
            m.unreadable.len(),
            preview(&m.unreadable, 5)
        ));
    }
    out
}

fn preview(items: &[String], n: usize) -> String {
    let mut s = items.iter().take(n).cloned().collect::<Vec<_>>().join(", ");
    if items.len() > n {
        let _ = write!(s, ", … ({} more)", items.len() - n);
    }
    s
}

fn trigger(t: &TriggerCount) -> String {
    format!("{} {} ({})", t.kind.name(), t.input, t.count)
}

const KIND_HEADS: [&str; 5] = ["glob", "image", "import", "dep", "fail"];

/// The plain-text report.
pub fn text(s: &Stats, m: &Meta) -> String {
    let mut out = String::new();
    for l in headline(s, m) {
        let _ = writeln!(out, "{l}");
    }
    for k in &s.skipped {
        let _ = writeln!(out, "skipped {}: {}", short(&k.commit), k.error);
    }
    if !s.steps.is_empty() {
        let minutes = s.totals.minutes.is_some();
        let w = s.steps.iter().map(|x| x.id.len()).max().unwrap_or(4).max(4);
        let kw = s
            .steps
            .iter()
            .map(|x| format!("{}/{}", x.kept, x.of).len())
            .max()
            .unwrap_or(4)
            .max(4);
        let _ = writeln!(
            out,
            "\nsteps, most often kept first (a kept step counts under each kind of reason it has)"
        );
        let mut head = format!("  {:<w$}  {:>kw$}  {:>4}", "step", "kept", "rate");
        for k in KIND_HEADS {
            let _ = write!(head, "  {k:>5}");
        }
        if minutes {
            let _ = write!(head, "  {:>6}  {:>7}  {:>7}", "median", "run min", "saved");
        }
        head.push_str("  top triggers");
        let _ = writeln!(out, "{head}");
        for x in &s.steps {
            let mut line = format!(
                "  {:<w$}  {:>kw$}  {:>4}",
                x.id,
                format!("{}/{}", x.kept, x.of),
                pct(x.rate)
            );
            for k in ReasonKind::ALL {
                let _ = write!(line, "  {:>5}", x.by_reason.get(k));
            }
            if minutes {
                match &x.minutes {
                    Some(mm) => {
                        let _ = write!(
                            line,
                            "  {:>6}  {:>7}  {:>7}",
                            mins(mm.median),
                            mins(mm.run),
                            mins(mm.saved)
                        );
                    }
                    None => {
                        let _ = write!(line, "  {:>6}  {:>7}  {:>7}", "-", "-", "-");
                    }
                }
            }
            let triggers: Vec<String> = x.top_triggers.iter().map(trigger).collect();
            let _ = write!(line, "  {}", triggers.join(", "));
            let _ = writeln!(out, "{}", line.trim_end());
        }
    }
    if !s.hot_inputs.is_empty() {
        let _ = writeln!(
            out,
            "\nhot inputs: steps a change to the path alone keeps (with what they depend on), mean over the commits that changed it"
        );
        let _ = writeln!(out, "  {:>6}  {:>7}  path", "steps", "commits");
        for h in &s.hot_inputs {
            let _ = writeln!(
                out,
                "  {:>6.1}  {:>7}  {}",
                h.steps_kept_mean, h.commits, h.path
            );
        }
    }
    if !s.errors.is_empty() {
        let _ = writeln!(out, "\ndiagnostics (plans that had them)");
        for e in &s.errors {
            let _ = writeln!(out, "  {}  ({} commits)", e.diagnostic, e.commits);
        }
    }
    out
}

/// A table cell holding code: backticks, and `|` escaped.
fn code(s: &str) -> String {
    let s = s.replace('|', "\\|");
    if s.contains('`') {
        format!("`` {s} ``")
    } else {
        format!("`{s}`")
    }
}

fn md_trigger(t: &TriggerCount) -> String {
    format!("{} {} ×{}", t.kind.name(), code(&t.input), t.count)
}

fn md_step_row(x: &StepStats, minutes: bool) -> String {
    let mut row = format!(
        "| {} | {}/{} | {} |",
        code(&x.id),
        x.kept,
        x.of,
        pct(x.rate)
    );
    for k in ReasonKind::ALL {
        let _ = write!(row, " {} |", x.by_reason.get(k));
    }
    if minutes {
        match &x.minutes {
            Some(mm) => {
                let _ = write!(
                    row,
                    " {} | {} | {} |",
                    mins(mm.median),
                    mins(mm.run),
                    mins(mm.saved)
                );
            }
            None => row.push_str(" – | – | – |"),
        }
    }
    let triggers: Vec<String> = x.top_triggers.iter().map(md_trigger).collect();
    let _ = write!(row, " {} |", triggers.join("<br>"));
    row
}

/// The Markdown report (CommonMark with GitHub tables).
pub fn markdown(s: &Stats, m: &Meta) -> String {
    let mut out = String::from("## pipetrim stats\n\n");
    for l in headline(s, m) {
        let _ = writeln!(out, "- {l}");
    }
    if !s.skipped.is_empty() {
        out.push_str("\n### Skipped commits\n\n");
        for k in &s.skipped {
            let _ = writeln!(out, "- {}: {}", code(short(&k.commit)), k.error);
        }
    }
    if !s.steps.is_empty() {
        let minutes = s.totals.minutes.is_some();
        out.push_str(
            "\n### Steps\n\nMost often kept first. A kept step counts under each kind of reason it has \
             (glob: an input or the composition's directory; image: an image's or crate's files; \
             import: a Python module the composition imports; depends on: a kept step needs it; \
             fail safe: something could not be read).\n\n",
        );
        out.push_str("| step | kept | rate | glob | image | import | depends on | fail safe |");
        if minutes {
            out.push_str(" median min | min run | min saved |");
        }
        out.push_str(" top triggers |\n|---|--:|--:|--:|--:|--:|--:|--:|");
        if minutes {
            out.push_str("--:|--:|--:|");
        }
        out.push_str("---|\n");
        for x in &s.steps {
            let _ = writeln!(out, "{}", md_step_row(x, minutes));
        }
    }
    if !s.hot_inputs.is_empty() {
        out.push_str(
            "\n### Hot inputs\n\nSteps a change to the path alone keeps (with the steps they depend on), \
             mean over the commits that changed it.\n\n| path | commits | steps kept (mean) |\n|---|--:|--:|\n",
        );
        for h in &s.hot_inputs {
            let _ = writeln!(
                out,
                "| {} | {} | {:.1} |",
                code(&h.path),
                h.commits,
                h.steps_kept_mean
            );
        }
    }
    if !s.errors.is_empty() {
        out.push_str("\n<details><summary>Diagnostics</summary>\n\n");
        for e in &s.errors {
            let _ = writeln!(out, "- {} ({} commits)", e.diagnostic, e.commits);
        }
        out.push_str("\n</details>\n");
    }
    out
}

/// The JSON report: [`Stats`] with what it is about.
pub fn json(s: &Stats, m: &Meta) -> serde_json::Value {
    let mut v = serde_json::to_value(s).unwrap_or_default();
    if let Some(o) = v.as_object_mut() {
        o.insert("pipeline".into(), m.pipeline.clone().into());
        o.insert("from".into(), m.from.clone().into());
        o.insert("requested".into(), m.requested.into());
        o.insert("interrupted".into(), m.interrupted.into());
        o.insert("unreadable".into(), m.unreadable.clone().into());
    }
    v
}

/// Colors of the plot: kept (runs) and trimmed (saved).
const KEPT: plotters::style::RGBColor = plotters::style::RGBColor(0xd9, 0x5f, 0x02);
const TRIMMED: plotters::style::RGBColor = plotters::style::RGBColor(0x1b, 0x9e, 0x77);

/// The plot: one horizontal bar per step, sorted by keep rate (highest at
/// the top), its kept share and its trimmed share.
pub fn svg(s: &Stats, m: &Meta) -> Result<String, String> {
    use plotters::prelude::*;

    let steps = &s.steps;
    let n = steps.len().max(1);
    let longest = steps.iter().map(|x| x.id.len()).max().unwrap_or(4);
    let label_area = (longest as u32 * 7 + 16).clamp(60, 400);
    let width = 720 + label_area;
    let height = 110 + 16 * n as u32;
    let title = format!(
        "Keep rate per step: {} commits, pipeline {}",
        s.totals.commits, m.pipeline
    );
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        // The legend gets its own strip below the chart, so it hides no bar.
        let (plot, legend) = root.split_vertically(height - 28);
        let mut chart = ChartBuilder::on(&plot)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(label_area)
            .build_cartesian_2d(0f64..100f64, (0..n).into_segmented())
            .map_err(|e| e.to_string())?;
        // Row 0 is the bottom: the most often kept step (first) goes on top.
        let label = |v: &SegmentValue<usize>| match v {
            SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => steps
                .get(n.wrapping_sub(1).wrapping_sub(*i))
                .map(|x| x.id.clone())
                .unwrap_or_default(),
            SegmentValue::Last => String::new(),
        };
        chart
            .configure_mesh()
            .disable_y_mesh()
            .light_line_style(TRANSPARENT)
            .y_labels(n)
            .y_label_formatter(&label)
            .x_labels(11)
            .x_label_formatter(&|x| format!("{x:.0}%"))
            .x_desc("share of commits")
            .draw()
            .map_err(|e| e.to_string())?;
        let row = |i: usize| n - 1 - i;
        let bar = |i: usize, from: f64, to: f64, color: RGBColor| {
            let mut r = Rectangle::new(
                [
                    (from, SegmentValue::Exact(row(i))),
                    (to, SegmentValue::Exact(row(i) + 1)),
                ],
                color.filled(),
            );
            r.set_margin(2, 2, 0, 0);
            r
        };
        chart
            .draw_series(
                steps
                    .iter()
                    .enumerate()
                    .map(|(i, x)| bar(i, 0.0, x.rate * 100.0, KEPT)),
            )
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(
                steps
                    .iter()
                    .enumerate()
                    .map(|(i, x)| bar(i, x.rate * 100.0, 100.0, TRIMMED)),
            )
            .map_err(|e| e.to_string())?;
        let x0 = label_area as i32 + 12;
        for (k, (name, color)) in [("kept (runs)", KEPT), ("trimmed", TRIMMED)]
            .into_iter()
            .enumerate()
        {
            let x = x0 + 140 * k as i32;
            legend
                .draw(&Rectangle::new([(x, 6), (x + 12, 18)], color.filled()))
                .map_err(|e| e.to_string())?;
            legend
                .draw(&Text::new(name, (x + 18, 6), ("sans-serif", 13)))
                .map_err(|e| e.to_string())?;
        }
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(buf)
}

/// The fill of the kept and trimmed bars as the SVG writes them (tests).
pub const SVG_KEPT_FILL: &str = "#D95F02";
pub const SVG_TRIMMED_FILL: &str = "#1B9E77";
