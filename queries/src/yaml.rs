//! Small helpers for reading YAML values with errors that name the file.

use serde_yaml_ng::Value;

use crate::diag::Diagnostic;

/// Flow collections (`[`, `{`) nested deeper than this are refused before
/// parsing. serde_yaml_ng refuses anything deeper than 128 levels anyway, but
/// only after its scanner has read the whole document, and that scanner
/// takes time quadratic in the flow depth (100,000 `[` took 30 s). The count
/// here ignores quoting, so it overestimates; the limit leaves room for that.
pub const MAX_FLOW_DEPTH: usize = 1000;

/// The deepest nesting of `[`/`{` (quotes and comments not excluded), or
/// the 1-based line where it first exceeds `limit`.
fn flow_depth(text: &str, limit: usize) -> Result<usize, usize> {
    let (mut depth, mut max, mut line) = (0usize, 0usize, 1usize);
    for b in text.bytes() {
        match b {
            b'[' | b'{' => {
                depth += 1;
                max = max.max(depth);
                if depth > limit {
                    return Err(line);
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            b'\n' => line += 1,
            _ => {}
        }
    }
    Ok(max)
}

/// Parses YAML text, turning a syntax error into a diagnostic with its line.
/// Alias bombs are refused by serde_yaml_ng's repetition limit, deep flow
/// nesting by [`MAX_FLOW_DEPTH`].
pub fn parse(path: &str, text: &str) -> Result<Value, Diagnostic> {
    if let Err(line) = flow_depth(text, MAX_FLOW_DEPTH) {
        return Err(Diagnostic::in_file(
            path,
            format!("malformed YAML: brackets nested deeper than {MAX_FLOW_DEPTH} levels"),
        )
        .at_line(Some(line))
        .hint("fix the YAML syntax"));
    }
    serde_yaml_ng::from_str::<Value>(text).map_err(|e| {
        let line = e.location().map(|l| l.line());
        Diagnostic::in_file(path, format!("malformed YAML: {e}"))
            .at_line(line)
            .hint("fix the YAML syntax")
    })
}

/// A string or a list of strings (as `bin:` and `depends_on:` take them).
pub fn string_or_list(v: &Value) -> Option<Vec<String>> {
    match v {
        Value::String(s) => Some(vec![s.clone()]),
        Value::Sequence(items) => items.iter().map(scalar_string).collect(),
        Value::Null => Some(Vec::new()),
        _ => None,
    }
}

/// A scalar rendered as Python's `str()` would render it from YAML.
pub fn scalar_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(if *b { "True" } else { "False" }.to_string()),
        _ => None,
    }
}

pub fn get<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.as_mapping().and_then(|m| m.get(key))
}
