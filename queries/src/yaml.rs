//! Small helpers for reading YAML values with errors that name the file.

use serde_yaml_ng::Value;

use crate::diag::Diagnostic;

/// Parses YAML text, turning a syntax error into a diagnostic with its line.
pub fn parse(path: &str, text: &str) -> Result<Value, Diagnostic> {
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
