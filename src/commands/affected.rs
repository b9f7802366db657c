//! `pipetrim affected PATH…`: which steps a change to these paths would
//! keep, each with its chains of evidence. No git needed.

use serde_json::json;

use super::{planned, print_out};
use crate::cli::Global;
use crate::error::Error;
use crate::output::explain::{Evidence, explain_json, explain_text};

pub fn run(g: &Global, paths: &[String]) -> Result<i32, Error> {
    let paths: Vec<String> = paths
        .iter()
        .map(|p| p.trim_start_matches("./").to_string())
        .collect();
    let (s, p) = planned(g, paths, None)?;
    let ev = Evidence::of(&s);
    let kept: Vec<_> = p.kept().collect();
    let mut text = String::new();
    for d in &kept {
        text.push_str(&explain_text(d, &ev));
    }
    if kept.is_empty() {
        text.push_str("no step would run for these paths\n");
    }
    let json = json!({
        "steps": kept.iter().map(|d| explain_json(d, &ev)).collect::<Vec<_>>(),
        "errors": p.errors,
    });
    print_out(g, &json, &text)
}
