//! The pipeline template (SPEC §4): `ci/<pipeline>/pipeline.template.yml`,
//! `$RUST_VERSION` substituted, and its steps.

use std::sync::{Arc, OnceLock};

use serde_yaml_ng::Value;

use crate::cache::{Kind, SCHEMA, encode, key, stored};

use crate::cargo::{WorkspaceManifest, workspace_manifest};
use crate::db::{Db, Options};
use crate::diag::Diagnostic;
use crate::yaml;

/// What kind of step a template entry is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StepKind {
    Command,
    Wait,
    Block,
    Input,
    Trigger,
    Group,
}

impl StepKind {
    /// Steps the trim decides about (the reference skips only wait and group).
    pub fn is_trimmable(self) -> bool {
        !matches!(self, StepKind::Wait | StepKind::Group)
    }
}

/// One step of the template, as the trim sees it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Step {
    /// `id` (falling back to `key`); empty for wait steps.
    pub id: String,
    pub label: Option<String>,
    pub kind: StepKind,
    /// The enclosing group's `key`/`label`, for inner steps.
    pub group: Option<String>,
    /// Position in the flattened step order (what `CI_TEST_IDS` counts).
    pub index: usize,
    pub inputs: Vec<String>,
    pub depends_on: Vec<String>,
    pub compositions: Vec<String>,
    pub cloudtest: bool,
    pub ci_glue_exempt: bool,
    /// 1-based line of the step in the template, for messages.
    pub line: Option<usize>,
}

/// The parsed template: the raw YAML (to finish and print) and its steps.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Template {
    pub path: String,
    pub value: Value,
    pub steps: Vec<Step>,
}

impl Template {
    pub fn step(&self, id: &str) -> Option<&Step> {
        self.steps
            .iter()
            .find(|s| s.id == id && s.kind.is_trimmable())
    }
}

pub fn template_path(pipeline: &str) -> String {
    format!("ci/{pipeline}/pipeline.template.yml")
}

/// Loads and parses the template of the configured pipeline.
#[salsa::tracked(returns(ref))]
pub fn template(db: &dyn Db, options: Options) -> Result<Arc<Template>, Diagnostic> {
    let path = template_path(options.pipeline(db));
    let file = db.file(&path);
    let raw = file.text(db).map_err(|e| {
        // Absent: probably another pipeline was meant. Present but not
        // readable (a partial clone lacks the blob, permissions): say so.
        let hint = match file.content(db) {
            crate::FileContent::Missing => "pass --pipeline NAME for ci/NAME/pipeline.template.yml",
            _ => {
                "the file exists but cannot be read; in a partial clone, fetch the \
                 missing objects (`git fetch --refetch`) or clone without `--filter`"
            }
        };
        Diagnostic::in_file(&path, format!("pipeline template {e}")).hint(hint)
    })?;
    let text = substituted(raw, || {
        workspace_manifest(db, db.file("Cargo.toml")).clone()
    })?;
    // Parsing is most of a warm run's template cost; the entry is keyed
    // by the text itself, so it needs no stamp to be trusted.
    let cache = db.leaf_cache();
    let key = cache.map(|_| template_key(&path, &text));
    if let (Some(cache), Some(key)) = (cache, &key)
        && let Some((value, steps)) = stored::<(StoredYaml, Vec<Step>)>(cache, key)
    {
        return Ok(Arc::new(Template {
            path,
            value: value.restore(),
            steps,
        }));
    }
    let tpl = parse_template(&path, &text)?;
    if let (Some(cache), Some(key)) = (cache, key)
        && let Some(bytes) = stored_form(&tpl)
    {
        cache.put(key, bytes);
    }
    Ok(Arc::new(tpl))
}

/// The template's text: `raw` with `$RUST_VERSION` replaced by the root
/// manifest's `rust-version` (asked for only when it is used).
fn substituted(
    raw: &str,
    root: impl FnOnce() -> Result<WorkspaceManifest, Diagnostic>,
) -> Result<String, Diagnostic> {
    if !raw.contains("$RUST_VERSION") {
        return Ok(raw.to_string());
    }
    let Some(v) = root()?.rust_version else {
        return Err(Diagnostic::in_file(
            "Cargo.toml",
            "the template uses $RUST_VERSION but `[workspace.package] rust-version` is not set",
        ));
    };
    Ok(raw.replace("$RUST_VERSION", &v))
}

/// What the persistent cache keeps of a parsed template.
fn stored_form(tpl: &Template) -> Option<Vec<u8>> {
    encode(&(StoredYaml::new(&tpl.value)?, &tpl.steps))
}

/// The entries [`template`] and the root manifest's leaf would store, made
/// from files read ahead, outside the database: by `trim` on a thread
/// that has nothing else to do before the session exists, on a run with
/// nothing cached. Each entry is keyed by what it was made from (the
/// template's text after substitution, the manifest's blob id), so one
/// made from bytes the run does not use is never looked up; one that is
/// looked up is what the query would have computed. Nothing for a file
/// that does not parse (the query says why).
pub fn entries_ahead(
    pipeline: &str,
    template_bytes: &[u8],
    root_manifest: Option<&[u8]>,
) -> Vec<crate::cache::Entry> {
    let mut out = Vec::new();
    let root = root_manifest.map(|bytes| {
        let (manifest, entry) = crate::cargo::root_manifest_ahead(bytes);
        out.extend(entry);
        manifest
    });
    let path = template_path(pipeline);
    let Ok(raw) = std::str::from_utf8(template_bytes) else {
        return out;
    };
    let no_root = || Diagnostic::in_file("Cargo.toml", "not read ahead");
    let Ok(text) = substituted(raw, || root.ok_or_else(no_root)?) else {
        return out;
    };
    if let Ok(tpl) = parse_template(&path, &text)
        && let Some(v) = stored_form(&tpl)
    {
        out.push((template_key(&path, &text), v));
    }
    out
}

/// The cache key of a parsed template: the parser's code and version, the
/// path (messages and the result name it) and the text after substitution.
fn template_key(path: &str, text: &str) -> Vec<u8> {
    use sha1::{Digest, Sha1};
    static CODE: OnceLock<u64> = OnceLock::new();
    let code = *CODE.get_or_init(|| {
        crate::cache::code_digest(&[
            include_str!("pipeline.rs"),
            include_str!("yaml.rs"),
            include_str!("cache.rs"),
            include_str!("diag.rs"),
            env!("CARGO_PKG_VERSION"),
        ])
    });
    let mut h = Sha1::new();
    h.update(code.to_le_bytes());
    h.update(SCHEMA.to_le_bytes());
    for s in [path, text] {
        crate::cache::hash_str(&mut h, s);
    }
    key(Kind::Template, &h.finalize().into())
}

/// The cached encoding of a fixed template, for the schema pin.
#[cfg(test)]
pub(crate) fn cached_sample() -> Option<Vec<u8>> {
    let t = parse_template(
        "ci/test/pipeline.template.yml",
        "steps:\n  - id: a\n    inputs: [x]\n    n: -1\n    f: 0.5\n  - wait\n",
    )
    .ok()?;
    encode(&(StoredYaml::new(&t.value)?, &t.steps))
}

/// A YAML value in a form postcard can decode (it cannot decode
/// `serde_yaml_ng::Value`, which needs a self-describing format). Keys keep
/// their order; tagged values are not stored.
#[derive(serde::Serialize, serde::Deserialize)]
enum StoredYaml {
    Null,
    Bool(bool),
    U64(u64),
    I64(i64),
    F64(f64),
    Str(String),
    Seq(Vec<StoredYaml>),
    Map(Vec<(StoredYaml, StoredYaml)>),
}

impl StoredYaml {
    fn new(v: &Value) -> Option<StoredYaml> {
        Some(match v {
            Value::Null => StoredYaml::Null,
            Value::Bool(b) => StoredYaml::Bool(*b),
            Value::Number(n) => {
                if let Some(u) = n.as_u64() {
                    StoredYaml::U64(u)
                } else if let Some(i) = n.as_i64() {
                    StoredYaml::I64(i)
                } else {
                    StoredYaml::F64(n.as_f64()?)
                }
            }
            Value::String(s) => StoredYaml::Str(s.clone()),
            Value::Sequence(s) => {
                StoredYaml::Seq(s.iter().map(StoredYaml::new).collect::<Option<_>>()?)
            }
            Value::Mapping(m) => StoredYaml::Map(
                m.iter()
                    .map(|(k, v)| Some((StoredYaml::new(k)?, StoredYaml::new(v)?)))
                    .collect::<Option<_>>()?,
            ),
            Value::Tagged(_) => return None,
        })
    }

    fn restore(self) -> Value {
        match self {
            StoredYaml::Null => Value::Null,
            StoredYaml::Bool(b) => Value::Bool(b),
            StoredYaml::U64(u) => Value::Number(u.into()),
            StoredYaml::I64(i) => Value::Number(i.into()),
            StoredYaml::F64(f) => Value::Number(f.into()),
            StoredYaml::Str(s) => Value::String(s),
            StoredYaml::Seq(s) => Value::Sequence(s.into_iter().map(StoredYaml::restore).collect()),
            StoredYaml::Map(m) => Value::Mapping(
                m.into_iter()
                    .map(|(k, v)| (k.restore(), v.restore()))
                    .collect(),
            ),
        }
    }
}

pub fn parse_template(path: &str, text: &str) -> Result<Template, Diagnostic> {
    let value = yaml::parse(path, text)?;
    let Some(top) = yaml::get(&value, "steps").and_then(Value::as_sequence) else {
        return Err(
            Diagnostic::in_file(path, "the template has no `steps` list")
                .hint("a Buildkite pipeline needs a top-level `steps:` list"),
        );
    };
    let mut steps = Vec::new();
    // (byte offset, newlines before it) of the last step found in the text.
    let mut cursor = (0usize, 0usize);
    for item in top {
        let step = parse_step(path, text, item, None, steps.len(), &mut cursor)?;
        let group_name = step.group_name.clone();
        let inner = step.inner.clone();
        steps.push(step.step);
        if let Some(inner) = inner {
            for i in &inner {
                let s = parse_step(path, text, i, group_name.clone(), steps.len(), &mut cursor)?;
                if s.inner.is_some() {
                    return Err(
                        Diagnostic::in_file(path, "groups cannot be nested").at_line(s.step.line)
                    );
                }
                steps.push(s.step);
            }
        }
    }
    Ok(Template {
        path: path.to_string(),
        value,
        steps,
    })
}

struct Parsed {
    step: Step,
    group_name: Option<String>,
    inner: Option<Vec<Value>>,
}

fn parse_step(
    path: &str,
    text: &str,
    item: &Value,
    group: Option<String>,
    index: usize,
    cursor: &mut (usize, usize),
) -> Result<Parsed, Diagnostic> {
    let blank = |kind, line| Step {
        id: String::new(),
        label: None,
        kind,
        group: group.clone(),
        index,
        inputs: Vec::new(),
        depends_on: Vec::new(),
        compositions: Vec::new(),
        cloudtest: false,
        ci_glue_exempt: false,
        line,
    };
    let map = match item {
        Value::String(s) => {
            let kind = match s.as_str() {
                "wait" | "waiter" => StepKind::Wait,
                "block" => StepKind::Block,
                "input" => StepKind::Input,
                _ => {
                    return Err(
                        Diagnostic::in_file(path, format!("unknown step `{s}`")).near(text, s)
                    );
                }
            };
            return Ok(Parsed {
                step: blank(kind, None),
                group_name: None,
                inner: None,
            });
        }
        Value::Mapping(m) => m,
        _ => {
            return Err(Diagnostic::in_file(path, "a step must be a mapping")
                .hint("each entry of `steps` is a mapping such as `- id: x`"));
        }
    };
    let str_of = |k: &str| map.get(k).and_then(yaml::scalar_string);
    let id = str_of("id").or_else(|| str_of("key")).unwrap_or_default();
    // Locate the step in the text for messages: the first `id: X` after the previous one.
    let line = if id.is_empty() {
        None
    } else {
        let needle = format!("id: {id}");
        text.get(cursor.0..)
            .and_then(|rest| rest.find(&needle))
            .map(|at| {
                // Count newlines only between the previous step and this one.
                let end = cursor.0 + at;
                cursor.1 += text.as_bytes()[cursor.0..end]
                    .iter()
                    .filter(|&&b| b == b'\n')
                    .count();
                cursor.0 = end;
                cursor.1 + 1
            })
    };
    let kind = if map.contains_key("wait") {
        StepKind::Wait
    } else if map.contains_key("group") {
        StepKind::Group
    } else if map.contains_key("block") {
        StepKind::Block
    } else if map.contains_key("input") || map.contains_key("prompt") {
        StepKind::Input
    } else if map.contains_key("trigger") {
        StepKind::Trigger
    } else {
        StepKind::Command
    };
    let mut step = blank(kind, line);
    step.id = id.clone();
    step.label = str_of("label");
    let err = |msg: String| {
        Diagnostic::in_file(path, msg)
            .at_line(line)
            .hint("fix the step in the pipeline template")
    };
    if kind == StepKind::Group {
        let name = str_of("key")
            .or_else(|| str_of("id"))
            .or_else(|| str_of("group"))
            .or_else(|| str_of("label"));
        step.id = name.clone().unwrap_or_default();
        let inner = match map.get("steps") {
            Some(Value::Sequence(s)) => s.clone(),
            None | Some(Value::Null) => Vec::new(),
            Some(_) => return Err(err(format!("group `{}`: `steps` must be a list", step.id))),
        };
        return Ok(Parsed {
            step,
            group_name: name,
            inner: Some(inner),
        });
    }
    if kind == StepKind::Wait {
        return Ok(Parsed {
            step,
            group_name: None,
            inner: None,
        });
    }
    if id.is_empty() {
        return Err(Diagnostic::in_file(
            path,
            format!(
                "step {} has no `id`",
                step.label
                    .as_deref()
                    .map_or("(unlabelled)".into(), |l| format!("`{l}`"))
            ),
        )
        .hint("every trimmable step needs an `id`"));
    }
    match map.get("inputs") {
        None | Some(Value::Null) => {}
        Some(v) => {
            step.inputs = yaml::string_or_list(v)
                .ok_or_else(|| err(format!("step `{id}`: `inputs` must be a list of strings")))?
        }
    }
    match map.get("depends_on") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => step.depends_on = vec![s.clone()],
        Some(Value::Sequence(items)) => {
            for i in items {
                match i {
                    Value::String(s) => step.depends_on.push(s.clone()),
                    Value::Mapping(m) => match m.get("step").and_then(Value::as_str) {
                        Some(s) => step.depends_on.push(s.to_string()),
                        None => {
                            return Err(err(format!(
                                "step `{id}`: a `depends_on` entry has no `step`"
                            )));
                        }
                    },
                    _ => {
                        return Err(err(format!(
                            "step `{id}`: `depends_on` entries must be step ids"
                        )));
                    }
                }
            }
        }
        Some(_) => {
            return Err(err(format!(
                "step `{id}`: unexpected non-str non-list for depends_on"
            )));
        }
    }
    step.ci_glue_exempt = matches!(map.get("ci_glue_exempt"), Some(Value::Bool(true)));
    if let Some(plugins) = map.get("plugins") {
        let Some(plugins) = plugins.as_sequence() else {
            return Err(err(format!("step `{id}`: `plugins` must be a list")));
        };
        for p in plugins {
            let entries: Vec<(&Value, &Value)> = match p {
                Value::Mapping(m) => m.iter().collect(),
                _ => continue,
            };
            for (name, config) in entries {
                match name.as_str() {
                    Some("./ci/plugins/mzcompose") => {
                        match yaml::get(config, "composition").and_then(yaml::scalar_string) {
                            Some(c) => step.compositions.push(c),
                            None => {
                                return Err(err(format!(
                                    "step `{id}`: the mzcompose plugin has no `composition`"
                                )));
                            }
                        }
                    }
                    Some("./ci/plugins/cloudtest") => step.cloudtest = true,
                    _ => {}
                }
            }
        }
    }
    Ok(Parsed {
        step,
        group_name: None,
        inner: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_templates_restore_exactly() {
        let text = "steps:\n  - id: a\n    label: A\n    inputs: [x, 'y']\n    priority: -3\n    timeout_in_minutes: 30\n    ratio: 1.5\n    skip: false\n    env: {K: ~, 1: two}\n  - wait\n  - group: G\n    key: g\n    steps:\n      - id: b\n        depends_on: a\n";
        let t = parse_template("ci/test/pipeline.template.yml", text).unwrap();
        let stored = StoredYaml::new(&t.value).unwrap();
        let bytes = encode(&(stored, &t.steps)).unwrap();
        let (value, steps) = crate::cache::decode::<(StoredYaml, Vec<Step>)>(&bytes).unwrap();
        assert_eq!(value.restore(), t.value);
        assert_eq!(steps, t.steps);
        // Tagged values are not stored (not restored exactly, and rare).
        let tagged = yaml::parse("t.yml", "a: !x 1\n").unwrap();
        assert!(StoredYaml::new(&tagged).is_none());
    }

    #[test]
    fn flattens_groups_and_reads_plugins() {
        let t = parse_template(
            "t.yml",
            r#"
steps:
  - id: build
    command: x
    inputs: ["*"]
  - wait: ~
  - group: Tests
    key: tests
    steps:
      - id: td
        depends_on: build
        plugins:
          - ./ci/plugins/mzcompose:
              composition: testdrive
      - id: ct
        depends_on: [build, {step: td}]
        plugins:
          - ./ci/plugins/cloudtest: {}
  - trigger: deploy
    id: deploy
"#,
        )
        .unwrap();
        let ids: Vec<(&str, StepKind, Option<&str>)> = t
            .steps
            .iter()
            .map(|s| (s.id.as_str(), s.kind, s.group.as_deref()))
            .collect();
        assert_eq!(
            ids,
            vec![
                ("build", StepKind::Command, None),
                ("", StepKind::Wait, None),
                ("tests", StepKind::Group, None),
                ("td", StepKind::Command, Some("tests")),
                ("ct", StepKind::Command, Some("tests")),
                ("deploy", StepKind::Trigger, None),
            ]
        );
        let td = t.step("td").unwrap();
        assert_eq!(td.compositions, vec!["testdrive"]);
        assert_eq!(td.depends_on, vec!["build"]);
        assert_eq!(td.line, Some(10));
        assert!(t.step("ct").unwrap().cloudtest);
        assert_eq!(t.step("ct").unwrap().depends_on, vec!["build", "td"]);
    }

    #[test]
    fn bad_depends_on_is_an_error_naming_the_step() {
        let e = parse_template("t.yml", "steps:\n  - id: a\n    depends_on: 3\n").unwrap_err();
        assert!(e.message.contains("step `a`"), "{e}");
        assert_eq!(e.line, Some(2));
    }
}
