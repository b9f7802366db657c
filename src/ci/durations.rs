//! Median step durations (`stats --durations FILE`), as users export them
//! from Buildkite's API: step id → median minutes.
//!
//! Accepted shapes (the first non-blank character decides JSON or CSV):
//! - JSON object: `{"step-id": 12.5, …}`;
//! - JSON array: `[{"id": "step-id", "minutes": 12.5}, …]` (`key` for
//!   `id`, `median_minutes` for `minutes` are accepted too);
//! - CSV: `step-id,12.5` per line; an optional header line (its second
//!   column is not a number), blank lines and `#` comments are skipped,
//!   and a field may be double-quoted.

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::Error;

/// Reads and checks a durations file.
pub fn read(path: &Path) -> Result<BTreeMap<String, f64>, Error> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Usage(format!("--durations `{}`: {e}", path.display())))?;
    parse(&text).map_err(|e| Error::Usage(format!("--durations `{}`: {e}", path.display())))
}

/// Parses JSON or CSV (see the module doc); the error names the line or
/// entry and what is expected.
pub fn parse(text: &str) -> Result<BTreeMap<String, f64>, String> {
    match text.trim_start().chars().next() {
        Some('{' | '[') => parse_json(text),
        _ => parse_csv(text),
    }
}

fn check(id: &str, minutes: f64, at: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err(format!("{at}: empty step id"));
    }
    if !minutes.is_finite() || minutes < 0.0 {
        return Err(format!(
            "{at}: `{minutes}` minutes for `{id}` (hint: a number ≥ 0)"
        ));
    }
    Ok(())
}

fn insert(
    out: &mut BTreeMap<String, f64>,
    id: String,
    minutes: f64,
    at: &str,
) -> Result<(), String> {
    check(&id, minutes, at)?;
    if out.insert(id.clone(), minutes).is_some() {
        return Err(format!("{at}: step `{id}` is given twice"));
    }
    Ok(())
}

fn parse_json(text: &str) -> Result<BTreeMap<String, f64>, String> {
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
    let mut out = BTreeMap::new();
    match v {
        serde_json::Value::Object(m) => {
            for (id, m) in m {
                let at = format!("entry `{id}`");
                let minutes = m
                    .as_f64()
                    .ok_or_else(|| format!("{at}: `{m}` is not a number of minutes"))?;
                insert(&mut out, id, minutes, &at)?;
            }
        }
        serde_json::Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let at = format!("entry {}", i + 1);
                let field = |keys: &[&str]| keys.iter().find_map(|k| item.get(*k));
                let id = field(&["id", "key"])
                    .and_then(|v| v.as_str())
                    .ok_or_else(|| format!("{at}: no string `id`"))?;
                let minutes = field(&["minutes", "median_minutes"])
                    .and_then(|v| v.as_f64())
                    .ok_or_else(|| format!("{at}: no number `minutes`"))?;
                insert(&mut out, id.to_string(), minutes, &at)?;
            }
        }
        _ => {
            return Err(
                "expected an object of step id → minutes, or a list of {\"id\", \"minutes\"}"
                    .into(),
            );
        }
    }
    Ok(out)
}

fn unquote(s: &str) -> &str {
    let s = s.trim();
    s.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(s)
}

fn parse_csv(text: &str) -> Result<BTreeMap<String, f64>, String> {
    let mut out = BTreeMap::new();
    let mut first = true;
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let at = format!("line {}", n + 1);
        let header = std::mem::replace(&mut first, false);
        let (id, minutes) = line
            .split_once(',')
            .ok_or_else(|| format!("{at}: expected `step-id,minutes`"))?;
        let minutes = unquote(minutes);
        let minutes = match minutes.parse::<f64>() {
            Ok(m) => m,
            Err(_) if header => continue,
            Err(_) => return Err(format!("{at}: `{minutes}` is not a number of minutes")),
        };
        insert(&mut out, unquote(id).to_string(), minutes, &at)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_object_array_and_csv_agree() {
        let want = BTreeMap::from([("build".to_string(), 20.0), ("test".to_string(), 3.5)]);
        assert_eq!(parse(r#"{"build": 20, "test": 3.5}"#).unwrap(), want);
        assert_eq!(
            parse(r#"[{"id": "build", "minutes": 20}, {"key": "test", "median_minutes": 3.5}]"#)
                .unwrap(),
            want
        );
        assert_eq!(
            parse("step,median minutes\n# from the API\nbuild,20\n\n\"test\", 3.5\n").unwrap(),
            want
        );
        assert_eq!(parse("build,20\ntest,3.5").unwrap(), want);
    }

    #[test]
    fn errors_name_the_place() {
        let e = parse("build,20\ntest,soon\n").unwrap_err();
        assert!(e.contains("line 2") && e.contains("soon"), "{e}");
        let e = parse("build,20\nbuild,3\n").unwrap_err();
        assert!(e.contains("twice"), "{e}");
        let e = parse(r#"{"build": -1}"#).unwrap_err();
        assert!(e.contains("`build`") && e.contains("-1"), "{e}");
        let e = parse(r#"[{"id": "build"}]"#).unwrap_err();
        assert!(e.contains("entry 1") && e.contains("minutes"), "{e}");
        assert!(parse("{").unwrap_err().contains("JSON"));
        assert!(parse("just words").unwrap_err().contains("line 1"));
    }
}
