//! Finishing a pipeline for `buildkite-agent pipeline upload` (SPEC §6, §7).
//!
//! Re-implements, on a [`serde_yaml_ng::Value`], the deterministic parts of the
//! reference's `ci/mkpipeline.py`:
//!
//! * §6, before the §7 chain: test selection by `CI_TEST_IDS`
//!   ([`select_tests_by_id`]) or `CI_TEST_SELECTION` ([`select_tests_by_name`]),
//!   the restriction of the pipeline to the needed steps ([`restrict_to`]) and,
//!   in a dry run, the skipping of unchanged `ci_glue_exempt` steps
//!   ([`skip_unchanged_glue_exempt`]);
//! * §7, [`finish`]: the reference's chain, in its order: truncate `skip`,
//!   sanitizer skip, timeouts/agents/coverage, priorities, the switch away from
//!   stuck Hetzner queues (static part only, see below), manual retry, automatic
//!   retries, default agent queue, `CI_UNPARALLELIZE`, ` %N` labels, the
//!   `depends_on` check, LTO, build trimming, the cargo-test build dependency,
//!   the nightly deploy dependency, dropping build dependencies on PRs, and
//!   removal of the Materialize-specific keys (with the timeout check).
//!
//! Out of scope (SPEC §7: they need a network service of the reference):
//! * the Buildkite API query of `switch_jobs_to_aws` (which Hetzner queues have
//!   jobs waiting > 20 minutes). Its *static* part is implemented: the reference
//!   always treats the four `hetzner-aarch64-*` queues as stuck (all Hetzner
//!   queues with `CI_FORCE_SWITCH_TO_AWS`), and moves their steps to x86-64
//!   (see [`FinishOptions::stuck_queues`] for how a caller supplies the query's
//!   answer or says it has none);
//! * `add_version_to_preflight_tests` (looks up the previous published release);
//!   the `*-preflight-check-rollback` steps are left as the template has them;
//! * GitHub commit statuses (`post_ci_trigger_status`);
//! * whether images exist in a registry and the hash of the image specs: they
//!   are inputs ([`BuildHashes`], [`FinishOptions::cargo_test_images_exist`]).
//!
//! Mutations are order-dependent exactly as in the reference (for example the
//! +1/+2 queue priority is computed before the queue switch, and the default
//! queue is set after it), so [`finish`] must run its passes in this order.
//! On error the pipeline is left partially finished; discard it.

use std::collections::{BTreeSet, HashSet};

use pipetrim_queries::specs::env_is_truthy;
use serde_yaml_ng::{Mapping, Number, Value};

/// The agent queue of steps that name none.
pub const DEFAULT_AGENT: &str = "hetzner-aarch64-4cpu-8gb";

/// The sanitizers the reference knows (`materialize.rustc_flags.Sanitizer`),
/// besides `none`.
pub const SANITIZERS: &[&str] = &["address", "hwaddress", "cfi", "thread", "leak", "undefined"];

/// Steps that test selection never skips (matched against `id`, else `command`).
const SELECTION_EXEMPT: &[&str] = &[
    "coverage-pr-analyze",
    "analyze",
    "build-x86_64",
    "build-aarch64",
    "build-x86_64-lto",
    "build-aarch64-lto",
    "devel-docker-tags",
];

/// Queues the reference always treats as stuck (Hetzner's aarch64 availability).
const ALWAYS_STUCK: &[&str] = &[
    "hetzner-aarch64-16cpu-32gb",
    "hetzner-aarch64-8cpu-16gb",
    "hetzner-aarch64-4cpu-8gb",
    "hetzner-aarch64-2cpu-4gb",
];

/// Queues treated as stuck under `CI_FORCE_SWITCH_TO_AWS`.
const FORCE_STUCK: &[&str] = &[
    "hetzner-x86-64-16cpu-32gb",
    "hetzner-x86-64-12cpu-24gb",
    "hetzner-x86-64-8cpu-16gb",
    "hetzner-x86-64-4cpu-8gb",
    "hetzner-x86-64-2cpu-4gb",
    "hetzner-aarch64-16cpu-32gb",
    "hetzner-aarch64-8cpu-16gb",
    "hetzner-aarch64-4cpu-8gb",
    "hetzner-aarch64-2cpu-4gb",
    "hetzner-x86-64-dedi-48cpu-192gb",
    "hetzner-x86-64-dedi-32cpu-128gb",
    "hetzner-x86-64-dedi-16cpu-64gb",
    "hetzner-x86-64-dedi-8cpu-32gb",
    "hetzner-x86-64-dedi-4cpu-16gb",
    "hetzner-x86-64-dedi-2cpu-8gb",
];

/// For one architecture: the hash of the specs of the images a build would
/// produce, and whether all of them already exist in the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchHash {
    /// Hex SHA-1, see [`pipetrim_queries::specs::build_hash`].
    pub hash: String,
    pub all_exist: bool,
}

/// What `trim_builds` and `remove_dependencies_on_prs` need to know about the
/// images of each architecture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildHashes {
    pub x86_64: ArchHash,
    pub aarch64: ArchHash,
}

/// Everything [`finish`] needs besides the pipeline.
#[derive(Debug, Clone, PartialEq)]
pub struct FinishOptions {
    /// `test`, `nightly`, `release-qualification`, …
    pub pipeline_name: String,
    /// `CI_SANITIZER` / `--sanitizer`; `None` (or `Some("none")`) = no sanitizer.
    pub sanitizer: Option<String>,
    /// `--coverage`.
    pub coverage: bool,
    /// See [`compute_lto`].
    pub lto: bool,
    /// The base priority (`CI_PRIORITY` / `--priority`).
    pub priority: i64,
    /// `BUILDKITE_BRANCH`.
    pub branch: String,
    /// `BUILDKITE_TAG`; `None` or `Some("")` = not a tag build.
    pub tag: Option<String>,
    /// `BUILDKITE_BUILD_AUTHOR == "Dependabot"`.
    pub dependabot_author: bool,
    /// `BUILDKITE_PULL_REQUEST` is truthy.
    pub pull_request: bool,
    /// `CI_RELEASE_LTO_BUILD` is truthy.
    pub release_lto_build: bool,
    /// `CI_SYSTEM_PARAMETERS == "random"`.
    pub system_parameters_random: bool,
    /// `CI_UNPARALLELIZE` is truthy.
    pub unparallelize: bool,
    /// `CI_FORCE_SWITCH_TO_AWS` is truthy: every Hetzner queue counts as stuck.
    pub force_switch_to_aws: bool,
    /// The answer of the Buildkite query for stuck Hetzner queues (only names
    /// starting with `hetzner-` count). `Some(empty)` = the query found none
    /// (what the reference's c01 run saw), and the always-stuck aarch64 queues
    /// are still switched; `None` = no answer, and like the reference when its
    /// query fails, no queue is switched (unless `force_switch_to_aws`).
    pub stuck_queues: Option<BTreeSet<String>>,
    /// Image hashes per arch; `None` leaves the build steps untouched and keeps
    /// every build dependency on PRs.
    pub build_hashes: Option<BuildHashes>,
    /// Whether every image the `cargo-test` composition uses exists (non-PR
    /// `test` and `nightly` builds). `None` = unknown, treated as "not all
    /// exist": `cargo-test`/`miri-test` then wait for the build (fail safe).
    pub cargo_test_images_exist: Option<bool>,
}

impl FinishOptions {
    /// Options with no sanitizer, coverage, LTO, tag, PR or special
    /// environment, on branch `branch`, and an empty stuck-queue answer.
    pub fn new(pipeline_name: &str, branch: &str) -> Self {
        FinishOptions {
            pipeline_name: pipeline_name.to_owned(),
            sanitizer: None,
            coverage: false,
            lto: false,
            priority: 0,
            branch: branch.to_owned(),
            tag: None,
            dependabot_author: false,
            pull_request: false,
            release_lto_build: false,
            system_parameters_random: false,
            unparallelize: false,
            force_switch_to_aws: false,
            stuck_queues: Some(BTreeSet::new()),
            build_hashes: None,
            cargo_test_images_exist: None,
        }
    }

    /// Reads the reference's environment variables through `var` (for example
    /// `|k| std::env::var(k).ok()`). `lto` is left false: compute it with
    /// [`compute_lto`] once the pipeline is loaded. Image-related fields are
    /// left unknown.
    pub fn from_env(
        pipeline_name: &str,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, FinishError> {
        let mut o = FinishOptions::new(pipeline_name, &var("BUILDKITE_BRANCH").unwrap_or_default());
        o.sanitizer = var("CI_SANITIZER").filter(|s| s != "none");
        if let Some(p) = var("CI_PRIORITY") {
            o.priority = p
                .trim()
                .parse()
                .map_err(|_| FinishError::BadPriority(p.clone()))?;
        }
        o.tag = var("BUILDKITE_TAG").filter(|t| !t.is_empty());
        o.dependabot_author = var("BUILDKITE_BUILD_AUTHOR").as_deref() == Some("Dependabot");
        o.pull_request = env_is_truthy(var("BUILDKITE_PULL_REQUEST").as_deref());
        o.release_lto_build = env_is_truthy(var("CI_RELEASE_LTO_BUILD").as_deref());
        o.system_parameters_random = var("CI_SYSTEM_PARAMETERS").as_deref() == Some("random");
        o.unparallelize = env_is_truthy(var("CI_UNPARALLELIZE").as_deref());
        o.force_switch_to_aws = env_is_truthy(var("CI_FORCE_SWITCH_TO_AWS").as_deref());
        o.validate()?;
        Ok(o)
    }

    fn validate(&self) -> Result<(), FinishError> {
        if let Some(s) = self.sanitizer()
            && !SANITIZERS.contains(&s)
        {
            return Err(FinishError::UnknownSanitizer(s.to_owned()));
        }
        Ok(())
    }

    fn sanitizer(&self) -> Option<&str> {
        self.sanitizer.as_deref().filter(|s| *s != "none")
    }

    fn tag(&self) -> Option<&str> {
        self.tag.as_deref().filter(|t| !t.is_empty())
    }
}

/// A pipeline the finishing passes cannot work on.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FinishError {
    #[error(
        "the pipeline is not a mapping (hint: the template's top level must be a mapping with a `steps` list)"
    )]
    PipelineNotMapping,
    #[error(
        "the pipeline has no `steps` list (hint: add `steps:` with a list of steps to the template)"
    )]
    MissingSteps,
    #[error(
        "pipeline `{field}` must be {expected}, found {found} (hint: fix the template's top-level `{field}`)"
    )]
    PipelineField {
        field: &'static str,
        expected: &'static str,
        found: String,
    },
    #[error(
        "step {position} is not a mapping but {found} (hint: write it as a mapping, e.g. `- wait: ~` instead of `- wait`)"
    )]
    StepNotMapping { position: String, found: String },
    #[error(
        "step {step}: `{field}` must be {expected}, found {found} (hint: fix `{field}` of this step in the template)"
    )]
    WrongType {
        step: String,
        field: &'static str,
        expected: &'static str,
        found: String,
    },
    #[error("step {step}: `{field}` overflows (hint: use a smaller value)")]
    OutOfRange { step: String, field: &'static str },
    #[error(
        "step {step} has no explicit `depends_on`, which every step of the `{pipeline}` pipeline needs (hint: add `depends_on: []` if it depends on nothing)"
    )]
    MissingDependsOn { step: String, pipeline: String },
    #[error(
        "step {step} has no `timeout_in_minutes`{why} (hint: add `timeout_in_minutes: N` to the step)"
    )]
    MissingTimeout { step: String, why: &'static str },
    #[error(
        "step {step} has `parallelism` > 1 but no `label` to append ` %N` to (hint: add a `label`)"
    )]
    MissingLabel { step: String },
    #[error(
        "step `deploy` does not directly follow a `wait` step, which tag builds need to skip (hint: put `- wait: ~` right before it)"
    )]
    DeployNotAfterWait,
    #[error(
        "unknown sanitizer `{0}` (hint: one of none, address, hwaddress, cfi, thread, leak, undefined)"
    )]
    UnknownSanitizer(String),
    #[error("CI_PRIORITY `{0}` is not an integer (hint: unset it or give a number such as `-10`)")]
    BadPriority(String),
}

type Result<T, E = FinishError> = std::result::Result<T, E>;

// ---------------------------------------------------------------------------
// Value helpers
// ---------------------------------------------------------------------------

/// Python truthiness of a YAML value.
fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Sequence(s) => !s.is_empty(),
        Value::Mapping(m) => !m.is_empty(),
        Value::Tagged(t) => truthy(&t.value),
    }
}

fn kind(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!("the string {s:?}"),
        Value::Sequence(_) => "a list".into(),
        Value::Mapping(_) => "a mapping".into(),
        Value::Tagged(t) => format!("a value tagged {}", t.tag),
    }
}

fn key(k: &str) -> Value {
    Value::String(k.to_owned())
}

fn has(m: &Mapping, k: &str) -> bool {
    m.contains_key(k)
}

fn str_field<'a>(m: &'a Mapping, k: &str) -> Option<&'a str> {
    m.get(k).and_then(Value::as_str)
}

fn is_true(m: &Mapping, k: &str) -> bool {
    m.get(k).is_some_and(truthy)
}

/// How a step is named in messages: its id, else its label, else its position
/// in the flattened step order.
fn describe(m: &Mapping, n: usize) -> String {
    if let Some(id) = str_field(m, "id") {
        format!("`{id}`")
    } else if let Some(label) = str_field(m, "label") {
        format!("labelled {label:?}")
    } else {
        format!("#{n}")
    }
}

/// A YAML number as Python would compute with it (bools are rejected).
#[derive(Clone, Copy)]
enum Num {
    I(i64),
    F(f64),
}

fn as_num(v: &Value) -> Option<Num> {
    match v {
        Value::Number(n) => n.as_i64().map(Num::I).or_else(|| n.as_f64().map(Num::F)),
        _ => None,
    }
}

fn num_value(n: Num) -> Value {
    match n {
        Num::I(i) => Value::Number(Number::from(i)),
        Num::F(f) => Value::Number(Number::from(f)),
    }
}

fn num_op(
    a: Num,
    b: Num,
    int: fn(i64, i64) -> Option<i64>,
    float: fn(f64, f64) -> f64,
) -> Option<Num> {
    match (a, b) {
        (Num::I(x), Num::I(y)) => int(x, y).map(Num::I),
        (Num::I(x), Num::F(y)) => Some(Num::F(float(x as f64, y))),
        (Num::F(x), Num::I(y)) => Some(Num::F(float(x, y as f64))),
        (Num::F(x), Num::F(y)) => Some(Num::F(float(x, y))),
    }
}

fn num_mul(a: Num, b: Num) -> Option<Num> {
    num_op(a, b, i64::checked_mul, |x, y| x * y)
}

fn num_add(a: Num, b: Num) -> Option<Num> {
    num_op(a, b, i64::checked_add, |x, y| x + y)
}

fn num_gt_one(n: Num) -> bool {
    match n {
        Num::I(i) => i > 1,
        Num::F(f) => f > 1.0,
    }
}

/// `step[field] *= factor` for a numeric field (absent fields are left alone).
fn multiply_field(step: &mut Mapping, n: usize, field: &'static str, factor: Num) -> Result<()> {
    let who = describe(step, n);
    let Some(v) = step.get_mut(field) else {
        return Ok(());
    };
    let cur = as_num(v).ok_or_else(|| FinishError::WrongType {
        step: who.clone(),
        field,
        expected: "a number",
        found: kind(v),
    })?;
    let new = num_mul(cur, factor).ok_or(FinishError::OutOfRange { step: who, field })?;
    *v = num_value(new);
    Ok(())
}

/// The mapping under `field` of a step, created empty if absent.
fn mapping_field<'a>(
    step: &'a mut Mapping,
    n: usize,
    field: &'static str,
) -> Result<&'a mut Mapping> {
    let who = describe(step, n);
    let v = step
        .entry(key(field))
        .or_insert_with(|| Value::Mapping(Mapping::new()));
    match v {
        Value::Mapping(m) => Ok(m),
        other => Err(FinishError::WrongType {
            step: who,
            field,
            expected: "a mapping",
            found: kind(other),
        }),
    }
}

/// The step's `agents` mapping, if it has one.
fn agents(step: &Mapping, n: usize) -> Result<Option<&Mapping>> {
    match step.get("agents") {
        None => Ok(None),
        Some(Value::Mapping(m)) => Ok(Some(m)),
        Some(other) => Err(FinishError::WrongType {
            step: describe(step, n),
            field: "agents",
            expected: "a mapping",
            found: kind(other),
        }),
    }
}

fn queue(step: &Mapping, n: usize) -> Result<Option<&str>> {
    Ok(agents(step, n)?.and_then(|a| str_field(a, "queue")))
}

/// Sets `agents.queue`, keeping the other agent keys (creates `agents`).
fn set_queue(step: &mut Mapping, n: usize, q: &str) -> Result<()> {
    mapping_field(step, n, "agents")?.insert(key("queue"), key(q));
    Ok(())
}

fn is_wait_group_prompt(step: &Mapping) -> bool {
    has(step, "prompt") || has(step, "wait") || has(step, "group")
}

// ---------------------------------------------------------------------------
// Step iteration (the reference's `steps(pipeline)`)
// ---------------------------------------------------------------------------

fn top_steps(pipeline: &Value) -> Result<&Vec<Value>> {
    let Value::Mapping(p) = pipeline else {
        return Err(FinishError::PipelineNotMapping);
    };
    match p.get("steps") {
        Some(Value::Sequence(s)) => Ok(s),
        _ => Err(FinishError::MissingSteps),
    }
}

fn top_steps_mut(pipeline: &mut Value) -> Result<&mut Vec<Value>> {
    let Value::Mapping(p) = pipeline else {
        return Err(FinishError::PipelineNotMapping);
    };
    match p.get_mut("steps") {
        Some(Value::Sequence(s)) => Ok(s),
        _ => Err(FinishError::MissingSteps),
    }
}

fn pipeline_map(pipeline: &mut Value) -> Result<&mut Mapping> {
    match pipeline {
        Value::Mapping(m) => Ok(m),
        _ => Err(FinishError::PipelineNotMapping),
    }
}

/// `pipeline.setdefault("env", {})[name] = value`.
fn set_pipeline_env(pipeline: &mut Value, name: &str, value: Value) -> Result<()> {
    let p = pipeline_map(pipeline)?;
    match p
        .entry(key("env"))
        .or_insert_with(|| Value::Mapping(Mapping::new()))
    {
        Value::Mapping(env) => {
            env.insert(key(name), value);
            Ok(())
        }
        other => Err(FinishError::PipelineField {
            field: "env",
            expected: "a mapping",
            found: kind(other),
        }),
    }
}

fn inner_steps_mut(group: &mut Mapping, n: usize) -> Result<Option<&mut Vec<Value>>> {
    let who = describe(group, n);
    match group.get_mut("steps") {
        None => Ok(None),
        Some(Value::Sequence(s)) => Ok(Some(s)),
        Some(other) => Err(FinishError::WrongType {
            step: who,
            field: "steps",
            expected: "a list of steps",
            found: kind(other),
        }),
    }
}

/// Calls `f` on every step in the reference's flattened order (each top-level
/// step, then the steps of a group), with the step's flattened index.
fn for_each_step(
    pipeline: &mut Value,
    mut f: impl FnMut(&mut Mapping, usize) -> Result<()>,
) -> Result<()> {
    let mut n = 0;
    for (i, step) in top_steps_mut(pipeline)?.iter_mut().enumerate() {
        let Value::Mapping(m) = step else {
            return Err(FinishError::StepNotMapping {
                position: format!("steps[{i}]"),
                found: kind(step),
            });
        };
        f(m, n)?;
        let group_n = n;
        n += 1;
        if has(m, "group")
            && let Some(inner) = inner_steps_mut(m, group_n)?
        {
            for (j, s) in inner.iter_mut().enumerate() {
                let Value::Mapping(im) = s else {
                    return Err(FinishError::StepNotMapping {
                        position: format!("steps[{i}].steps[{j}]"),
                        found: kind(s),
                    });
                };
                f(im, n)?;
                n += 1;
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// §6: selection, restriction, glue-exempt steps
// ---------------------------------------------------------------------------

/// The identity test selection matches: `id`, falling back to `command` when
/// `id` is absent or falsy.
fn selection_ident(step: &Mapping) -> Option<&Value> {
    match step.get("id") {
        Some(v) if truthy(v) => Some(v),
        _ => step.get("command"),
    }
}

fn selection_skips(step: &Mapping, selected: bool) -> bool {
    let exempt = selection_ident(step)
        .and_then(Value::as_str)
        .is_some_and(|i| SELECTION_EXEMPT.contains(&i));
    !selected && !is_wait_group_prompt(step) && !exempt && !is_true(step, "async")
}

/// `CI_TEST_IDS`: sets `skip: true` on every step whose index in the flattened
/// order (groups count, then their steps) is not in `ids`, except wait, group
/// and prompt steps, async steps and the always-needed build steps. Runs before
/// any trimming, since trimming changes the indices.
pub fn select_tests_by_id(pipeline: &mut Value, ids: &BTreeSet<usize>) -> Result<()> {
    for_each_step(pipeline, |step, n| {
        if selection_skips(step, ids.contains(&n)) {
            step.insert(key("skip"), Value::Bool(true));
        }
        Ok(())
    })
}

/// `CI_TEST_SELECTION`: like [`select_tests_by_id`], selecting by `id`
/// (falling back to `command`).
pub fn select_tests_by_name(pipeline: &mut Value, names: &BTreeSet<String>) -> Result<()> {
    for_each_step(pipeline, |step, _| {
        let selected = selection_ident(step)
            .and_then(Value::as_str)
            .is_some_and(|i| names.contains(i));
        if selection_skips(step, selected) {
            step.insert(key("skip"), Value::Bool(true));
        }
        Ok(())
    })
}

/// Restricts the pipeline to the `needed` step ids, order preserved: top-level
/// `wait` steps are kept, a group keeps only its needed steps and is kept if
/// any remain, other steps are kept iff their `id` is needed.
///
/// As in the reference, a `wait` *inside* a group has no id and is dropped,
/// and a group without `steps` is dropped. Entries that are not mappings are
/// kept (the plain string `wait` is Buildkite's short form of a wait step; for
/// anything else keeping is the safe choice, and [`finish`] rejects it).
pub fn restrict_to(pipeline: &mut Value, needed: &HashSet<String>) -> Result<()> {
    // The plan names a step by its `id`, falling back to its `key`.
    let name = |m: &Mapping, k: &str| match m.get(k) {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(Value::Bool(b)) => Some(if *b { "True" } else { "False" }.to_string()),
        _ => None,
    };
    let is_needed = |m: &Mapping| {
        name(m, "id")
            .or_else(|| name(m, "key"))
            .is_some_and(|id| needed.contains(&id))
    };
    let steps = top_steps_mut(pipeline)?;
    for (n, step) in steps.iter_mut().enumerate() {
        if let Value::Mapping(m) = step
            && has(m, "group")
            && let Some(inner) = inner_steps_mut(m, n)?
        {
            inner.retain(|s| s.as_mapping().is_some_and(is_needed));
        }
    }
    steps.retain(|step| match step {
        Value::Mapping(m) => {
            has(m, "wait")
                || (has(m, "group")
                    && m.get("steps")
                        .and_then(Value::as_sequence)
                        .is_some_and(|s| !s.is_empty()))
                || is_needed(m)
        }
        _ => true,
    });
    Ok(())
}

/// The dry run's one real change (`trim_ci_glue_exempt_steps`): a step marked
/// `ci_glue_exempt: true` whose non-empty `inputs` did not change gets
/// `skip: "No changes in inputs"`. `changed(pathspecs)` says whether any of
/// the pathspecs changed. Steps whose `inputs` is not a list of strings are
/// left alone (fail safe).
pub fn skip_unchanged_glue_exempt(
    pipeline: &mut Value,
    changed: &dyn Fn(&[String]) -> bool,
) -> Result<()> {
    for_each_step(pipeline, |step, _| {
        if !is_true(step, "ci_glue_exempt") {
            return Ok(());
        }
        let Some(Value::Sequence(inputs)) = step.get("inputs") else {
            return Ok(());
        };
        let Some(inputs) = inputs
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect::<Option<Vec<String>>>()
        else {
            return Ok(());
        };
        if !inputs.is_empty() && !changed(&inputs) {
            step.insert(key("skip"), key("No changes in inputs"));
        }
        Ok(())
    })
}

/// Whether the builds are LTO builds: the template's `env.CI_LTO == 1`
/// (Python equality: `1`, `1.0` and `true` count), a tag build, a non-PR
/// `nightly`/`release-qualification` build, or `CI_RELEASE_LTO_BUILD`.
pub fn compute_lto(
    pipeline: &Value,
    pipeline_name: &str,
    tag: Option<&str>,
    pull_request: bool,
    release_lto: bool,
) -> bool {
    let env_lto = pipeline
        .get("env")
        .and_then(|e| e.get("CI_LTO"))
        .is_some_and(|v| match v {
            Value::Bool(b) => *b,
            Value::Number(n) => n.as_f64() == Some(1.0),
            _ => false,
        });
    env_lto
        || tag.is_some_and(|t| !t.is_empty())
        || (!pull_request && matches!(pipeline_name, "nightly" | "release-qualification"))
        || release_lto
}

// ---------------------------------------------------------------------------
// §7: the finishing chain
// ---------------------------------------------------------------------------

/// Applies the reference's finishing passes, in its order (see the module doc
/// for what is left out).
pub fn finish(pipeline: &mut Value, opts: &FinishOptions) -> Result<()> {
    opts.validate()?;
    top_steps(pipeline)?;
    truncate_skip_length(pipeline)?;
    handle_sanitizer_skip(pipeline, opts)?;
    increase_agents_timeouts(pipeline, opts)?;
    prioritize_pipeline(pipeline, opts)?;
    switch_stuck_queues(pipeline, opts)?;
    permit_rerunning_successful_steps(pipeline)?;
    set_retry_on_agent_lost(pipeline)?;
    set_default_agents_queue(pipeline)?;
    unparallelize(pipeline, opts)?;
    set_parallelism_name(pipeline)?;
    check_depends_on(pipeline, &opts.pipeline_name)?;
    // add_version_to_preflight_tests: out of scope (network).
    move_build_to_lto(pipeline, opts.lto)?;
    trim_builds(pipeline, opts.build_hashes.as_ref())?;
    add_cargo_test_dependency(pipeline, opts)?;
    add_nightly_deploy_dependency(pipeline, opts)?;
    remove_dependencies_on_prs(pipeline, opts)?;
    remove_mz_specific_keys(pipeline)
}

/// String `skip` reasons longer than 70 characters are cut to 70 (Buildkite's
/// limit). Other `skip` values are left alone.
pub fn truncate_skip_length(pipeline: &mut Value) -> Result<()> {
    for_each_step(pipeline, |step, _| {
        if let Some(Value::String(s)) = step.get_mut("skip")
            && let Some((cut, _)) = s.char_indices().nth(70)
        {
            s.truncate(cut);
        }
        Ok(())
    })
}

/// Under a sanitizer, `env.CI_SANITIZER` is set and `sanitizer: skip` steps are
/// skipped; otherwise `sanitizer: only` steps are skipped.
pub fn handle_sanitizer_skip(pipeline: &mut Value, opts: &FinishOptions) -> Result<()> {
    let (skip_value, sanitizer) = match opts.sanitizer() {
        Some(s) => ("skip", Some(s)),
        None => ("only", None),
    };
    if let Some(s) = sanitizer {
        set_pipeline_env(pipeline, "CI_SANITIZER", key(s))?;
    }
    for_each_step(pipeline, |step, _| {
        if str_field(step, "sanitizer") == Some(skip_value) {
            step.insert(key("skip"), Value::Bool(true));
        }
        Ok(())
    })
}

/// The next bigger agent queue, for sanitizer and random-parameter runs.
fn bigger_queue(q: &str) -> Option<&'static str> {
    Some(match q {
        "linux-aarch64-small" => "linux-aarch64",
        "linux-aarch64" => "linux-aarch64-medium",
        "linux-aarch64-medium" => "linux-aarch64-large",
        "linux-aarch64-large" => "builder-linux-aarch64-mem",
        "linux-x86_64-small" => "linux-x86_64",
        "linux-x86_64" => "linux-x86_64-medium",
        "linux-x86_64-medium" => "linux-x86_64-large",
        "linux-x86_64-large" => "builder-linux-x86_64",
        "hetzner-aarch64-2cpu-4gb" => "hetzner-aarch64-4cpu-8gb",
        "hetzner-aarch64-4cpu-8gb" => "hetzner-aarch64-8cpu-16gb",
        "hetzner-aarch64-8cpu-16gb" => "hetzner-aarch64-16cpu-32gb",
        "hetzner-x86-64-2cpu-4gb" => "hetzner-x86-64-4cpu-8gb",
        "hetzner-x86-64-4cpu-8gb" => "hetzner-x86-64-8cpu-16gb",
        "hetzner-x86-64-8cpu-16gb" => "hetzner-x86-64-16cpu-32gb",
        "hetzner-x86-64-12cpu-24gb" => "hetzner-x86-64-dedi-16cpu-64gb",
        "hetzner-x86-64-16cpu-32gb" => "hetzner-x86-64-dedi-16cpu-64gb",
        "hetzner-x86-64-16cpu-64gb" => "hetzner-x86-64-dedi-32cpu-128gb",
        "hetzner-x86-64-dedi-32cpu-128gb" => "hetzner-x86-64-dedi-48cpu-192gb",
        _ => return None,
    })
}

/// Sanitizer or `CI_SYSTEM_PARAMETERS=random`: timeouts ×10 and queues one
/// size up. Quirk kept from the reference: `agents` is *replaced* by
/// `{queue: …}` (other agent keys are dropped; a missing queue becomes null).
/// Coverage: `env.CI_COVERAGE_ENABLED = 1`, timeouts ×3, `coverage: skip`
/// steps skipped, the builds renamed (`name`), `cargo-test` moved to the big
/// queue and unparallelized; without coverage `coverage: only` steps skipped.
pub fn increase_agents_timeouts(pipeline: &mut Value, opts: &FinishOptions) -> Result<()> {
    if opts.sanitizer().is_some() || opts.system_parameters_random {
        for_each_step(pipeline, |step, n| {
            multiply_field(step, n, "timeout_in_minutes", Num::I(10))?;
            if has(step, "agents") {
                let q = agents(step, n)?
                    .and_then(|a| a.get("queue"))
                    .cloned()
                    .unwrap_or(Value::Null);
                let q = match q.as_str().and_then(bigger_queue) {
                    Some(b) => key(b),
                    None => q,
                };
                let mut a = Mapping::new();
                a.insert(key("queue"), q);
                step.insert(key("agents"), Value::Mapping(a));
            }
            Ok(())
        })?;
    }
    if opts.coverage {
        set_pipeline_env(pipeline, "CI_COVERAGE_ENABLED", Value::Number(1.into()))?;
        for_each_step(pipeline, |step, n| {
            multiply_field(step, n, "timeout_in_minutes", Num::I(3))?;
            if str_field(step, "coverage") == Some("skip") {
                step.insert(key("skip"), Value::Bool(true));
            }
            match str_field(step, "id") {
                Some("build-x86_64") => {
                    step.insert(key("name"), key("Build x86_64 with coverage"));
                }
                Some("build-aarch64") => {
                    step.insert(key("name"), key("Build aarch64 with coverage"));
                }
                Some("cargo-test") => {
                    set_queue(step, n, "hetzner-x86-64-dedi-32cpu-128gb")?;
                    step.shift_remove("parallelism");
                }
                _ => {}
            }
            Ok(())
        })
    } else {
        for_each_step(pipeline, |step, _| {
            if str_field(step, "coverage") == Some("only") {
                step.insert(key("skip"), Value::Bool(true));
            }
            Ok(())
        })
    }
}

/// Every step but trigger/wait/group steps gets `priority` = its own + the base
/// priority + the pipeline's `priority` (+10 for a `v…` tag, −50 on `main`, −40
/// for a Dependabot author) + 1/2 for the aarch64 8cpu/16cpu Hetzner queues.
pub fn prioritize_pipeline(pipeline: &mut Value, opts: &FinishOptions) -> Result<()> {
    let base = match pipeline_map(pipeline)?.get("priority") {
        None => Num::I(0),
        Some(v) => as_num(v).ok_or_else(|| FinishError::PipelineField {
            field: "priority",
            expected: "a number",
            found: kind(v),
        })?,
    };
    let mut adjust = opts.priority;
    if opts.tag().is_some_and(|t| t.starts_with('v')) {
        adjust += 10;
    }
    if opts.branch == "main" {
        adjust -= 50;
    }
    if opts.dependabot_author {
        adjust -= 40;
    }
    let priority = num_add(base, Num::I(adjust)).ok_or(FinishError::PipelineField {
        field: "priority",
        expected: "a smaller number",
        found: "an overflow".into(),
    })?;
    for_each_step(pipeline, |step, n| {
        if has(step, "trigger") || has(step, "wait") || has(step, "group") {
            return Ok(());
        }
        let agent_priority = match queue(step, n)? {
            Some("hetzner-aarch64-8cpu-16gb") => 1,
            Some("hetzner-aarch64-16cpu-32gb") => 2,
            _ => 0,
        };
        let who = describe(step, n);
        let own = match step.get("priority") {
            None => Num::I(0),
            Some(v) => as_num(v).ok_or_else(|| FinishError::WrongType {
                step: who.clone(),
                field: "priority",
                expected: "a number",
                found: kind(v),
            })?,
        };
        let total = num_add(own, priority)
            .and_then(|p| num_add(p, Num::I(agent_priority)))
            .ok_or(FinishError::OutOfRange {
                step: who,
                field: "priority",
            })?;
        step.insert(key("priority"), num_value(total));
        Ok(())
    })
}

/// The deterministic part of the reference's `switch_jobs_to_aws`: steps on a
/// stuck Hetzner queue move to x86-64 Hetzner (a string `depends_on:
/// build-aarch64` becomes `build-x86_64`) or to AWS. The stuck set is the
/// always-stuck aarch64 queues plus [`FinishOptions::stuck_queues`], or every
/// Hetzner queue under `force_switch_to_aws`; with `stuck_queues: None` and no
/// force nothing moves (as when the reference's query fails).
pub fn switch_stuck_queues(pipeline: &mut Value, opts: &FinishOptions) -> Result<()> {
    let stuck: BTreeSet<&str> = if opts.force_switch_to_aws {
        FORCE_STUCK.iter().copied().collect()
    } else {
        let Some(observed) = &opts.stuck_queues else {
            return Ok(());
        };
        ALWAYS_STUCK
            .iter()
            .copied()
            .chain(
                observed
                    .iter()
                    .map(String::as_str)
                    .filter(|q| q.starts_with("hetzner-")),
            )
            .collect()
    };
    for_each_step(pipeline, |step, n| {
        if has(step, "trigger") || has(step, "wait") || has(step, "group") {
            return Ok(());
        }
        let Some(agent) = queue(step, n)?.map(str::to_owned) else {
            return Ok(());
        };
        if !stuck.contains(agent.as_str()) {
            return Ok(());
        }
        // (x86 alternative, AWS fallback) for the aarch64 queues.
        let aarch64 = match agent.as_str() {
            "hetzner-aarch64-2cpu-4gb" => Some(("hetzner-x86-64-2cpu-4gb", "linux-aarch64")),
            "hetzner-aarch64-4cpu-8gb" => Some(("hetzner-x86-64-4cpu-8gb", "linux-aarch64")),
            "hetzner-aarch64-8cpu-16gb" => {
                Some(("hetzner-x86-64-8cpu-16gb", "linux-aarch64-medium"))
            }
            "hetzner-aarch64-16cpu-32gb" => {
                Some(("hetzner-x86-64-12cpu-24gb", "linux-aarch64-medium"))
            }
            _ => None,
        };
        let new = if let Some((x86, aws)) = aarch64 {
            if stuck.contains(x86) {
                aws
            } else {
                if str_field(step, "depends_on") == Some("build-aarch64") {
                    step.insert(key("depends_on"), key("build-x86_64"));
                }
                x86
            }
        } else {
            match agent.as_str() {
                "hetzner-x86-64-4cpu-8gb" | "hetzner-x86-64-2cpu-4gb" => "linux-x86_64",
                "hetzner-x86-64-8cpu-16gb"
                | "hetzner-x86-64-12cpu-24gb"
                | "hetzner-x86-64-16cpu-32gb" => "linux-x86_64-medium",
                "hetzner-x86-64-dedi-2cpu-8gb" => "linux-x86_64",
                "hetzner-x86-64-dedi-4cpu-16gb" => "linux-x86_64-medium",
                "hetzner-x86-64-dedi-8cpu-32gb" | "hetzner-x86-64-dedi-16cpu-64gb" => {
                    "linux-x86_64-large"
                }
                "hetzner-x86-64-dedi-32cpu-128gb" | "hetzner-x86-64-dedi-48cpu-192gb" => {
                    "builder-linux-x86_64"
                }
                _ => return Ok(()),
            }
        };
        set_queue(step, n, new)
    })
}

fn skips_retry(step: &Mapping) -> bool {
    has(step, "trigger") || has(step, "wait") || has(step, "group") || has(step, "block")
}

/// `retry.manual.permit_on_passed: true` unless set, on every step but
/// trigger/wait/group/block steps.
pub fn permit_rerunning_successful_steps(pipeline: &mut Value) -> Result<()> {
    for_each_step(pipeline, |step, n| {
        if skips_retry(step) {
            return Ok(());
        }
        let who = describe(step, n);
        let retry = mapping_field(step, n, "retry")?;
        match retry
            .entry(key("manual"))
            .or_insert_with(|| Value::Mapping(Mapping::new()))
        {
            Value::Mapping(manual) => {
                manual
                    .entry(key("permit_on_passed"))
                    .or_insert(Value::Bool(true));
                Ok(())
            }
            other => Err(FinishError::WrongType {
                step: who,
                field: "retry.manual",
                expected: "a mapping",
                found: kind(other),
            }),
        }
    })
}

fn retry_rule(exit_status: Option<i64>, signal_reason: Option<&str>) -> Value {
    let mut m = Mapping::new();
    if let Some(e) = exit_status {
        m.insert(key("exit_status"), Value::Number(e.into()));
    }
    if let Some(s) = signal_reason {
        m.insert(key("signal_reason"), key(s));
    }
    m.insert(key("limit"), Value::Number(2.into()));
    Value::Mapping(m)
}

/// Appends automatic retries (two each) for a lost agent (exit −1, signal
/// none), a stopped agent, exit 128 and exit 199 to `retry.automatic`, after
/// any rules the step already has, on every step but trigger/wait/group/block.
pub fn set_retry_on_agent_lost(pipeline: &mut Value) -> Result<()> {
    for_each_step(pipeline, |step, n| {
        if skips_retry(step) {
            return Ok(());
        }
        let who = describe(step, n);
        let retry = mapping_field(step, n, "retry")?;
        match retry
            .entry(key("automatic"))
            .or_insert_with(|| Value::Sequence(Vec::new()))
        {
            Value::Sequence(rules) => {
                rules.extend([
                    retry_rule(Some(-1), Some("none")),
                    retry_rule(None, Some("agent_stop")),
                    retry_rule(Some(128), None),
                    retry_rule(Some(199), None),
                ]);
                Ok(())
            }
            other => Err(FinishError::WrongType {
                step: who,
                field: "retry.automatic",
                expected: "a list of retry rules",
                found: kind(other),
            }),
        }
    })
}

/// Steps without `agents` (other than prompt/wait/group/trigger steps) get
/// `agents: {queue: hetzner-aarch64-4cpu-8gb}`.
pub fn set_default_agents_queue(pipeline: &mut Value) -> Result<()> {
    for_each_step(pipeline, |step, _| {
        if !has(step, "agents") && !is_wait_group_prompt(step) && !has(step, "trigger") {
            let mut a = Mapping::new();
            a.insert(key("queue"), key(DEFAULT_AGENT));
            step.insert(key("agents"), Value::Mapping(a));
        }
        Ok(())
    })
}

/// `CI_UNPARALLELIZE`: a step with `parallelism` gets its timeout multiplied by
/// it, and loses the `parallelism`.
pub fn unparallelize(pipeline: &mut Value, opts: &FinishOptions) -> Result<()> {
    if !opts.unparallelize {
        return Ok(());
    }
    for_each_step(pipeline, |step, n| {
        let Some(p) = step.get("parallelism") else {
            return Ok(());
        };
        let factor = as_num(p).ok_or_else(|| FinishError::WrongType {
            step: describe(step, n),
            field: "parallelism",
            expected: "a number",
            found: kind(p),
        })?;
        if !has(step, "timeout_in_minutes") {
            return Err(FinishError::MissingTimeout {
                step: describe(step, n),
                why: ", which CI_UNPARALLELIZE multiplies by its parallelism",
            });
        }
        multiply_field(step, n, "timeout_in_minutes", factor)?;
        step.shift_remove("parallelism");
        Ok(())
    })
}

/// Steps with `parallelism` > 1 get ` %N` appended to their `label`.
pub fn set_parallelism_name(pipeline: &mut Value) -> Result<()> {
    for_each_step(pipeline, |step, n| {
        let Some(p) = step.get("parallelism") else {
            return Ok(());
        };
        let p = as_num(p).ok_or_else(|| FinishError::WrongType {
            step: describe(step, n),
            field: "parallelism",
            expected: "a number",
            found: kind(p),
        })?;
        if !num_gt_one(p) {
            return Ok(());
        }
        let who = describe(step, n);
        match step.get_mut("label") {
            Some(Value::String(l)) => {
                l.push_str(" %N");
                Ok(())
            }
            None => Err(FinishError::MissingLabel { step: who }),
            Some(other) => Err(FinishError::WrongType {
                step: who,
                field: "label",
                expected: "a string",
                found: kind(other),
            }),
        }
    })
}

/// In the `test`, `nightly` and `release-qualification` pipelines every step
/// but `analyze`, `deploy`, `coverage-pr-analyze` and prompt/wait/group steps
/// must have an explicit `depends_on` (trigger and block steps too).
pub fn check_depends_on(pipeline: &mut Value, pipeline_name: &str) -> Result<()> {
    if !matches!(pipeline_name, "test" | "nightly" | "release-qualification") {
        return Ok(());
    }
    for_each_step(pipeline, |step, n| {
        if matches!(
            str_field(step, "id"),
            Some("analyze" | "deploy" | "coverage-pr-analyze")
        ) {
            return Ok(());
        }
        if !has(step, "depends_on") && !is_wait_group_prompt(step) {
            return Err(FinishError::MissingDependsOn {
                step: describe(step, n),
                pipeline: pipeline_name.to_owned(),
            });
        }
        Ok(())
    })
}

/// LTO: `env.CI_LTO = 1`, and the builds move to the big builder queues.
pub fn move_build_to_lto(pipeline: &mut Value, lto: bool) -> Result<()> {
    if !lto {
        return Ok(());
    }
    set_pipeline_env(pipeline, "CI_LTO", Value::Number(1.into()))?;
    for_each_step(pipeline, |step, n| match str_field(step, "id") {
        Some("build-x86_64") => set_queue(step, n, "builder-linux-x86_64"),
        Some("build-aarch64") => set_queue(step, n, "builder-linux-aarch64-mem"),
        _ => Ok(()),
    })
}

/// Builds (and their debug-symbol uploads) whose images all exist are
/// skipped; remaining builds and `devel-docker-tags` get `concurrency: 1` and
/// a concurrency group named after the arch's hash. `None` leaves them alone.
pub fn trim_builds(pipeline: &mut Value, hashes: Option<&BuildHashes>) -> Result<()> {
    let Some(h) = hashes else {
        return Ok(());
    };
    let concurrency = |step: &mut Mapping, group: String| {
        step.insert(key("concurrency"), Value::Number(1.into()));
        step.insert(key("concurrency_group"), Value::String(group));
    };
    for_each_step(pipeline, |step, _| {
        let id = str_field(step, "id").map(str::to_owned);
        match id.as_deref() {
            Some(id @ ("build-x86_64" | "build-aarch64")) => {
                let a = if id == "build-x86_64" {
                    &h.x86_64
                } else {
                    &h.aarch64
                };
                if a.all_exist {
                    step.insert(key("skip"), Value::Bool(true));
                } else {
                    concurrency(step, format!("{id}/{}", a.hash));
                }
            }
            Some("upload-debug-symbols-x86_64") if h.x86_64.all_exist => {
                step.insert(key("skip"), Value::Bool(true));
            }
            Some("upload-debug-symbols-aarch64") if h.aarch64.all_exist => {
                step.insert(key("skip"), Value::Bool(true));
            }
            Some("devel-docker-tags") => {
                concurrency(step, format!("devel-docker-tags/{}", h.x86_64.hash))
            }
            _ => {}
        }
        Ok(())
    })
}

/// `test`/`nightly`: on a `test` PR, `cargo-test` depends on `build-x86_64`;
/// otherwise, unless the cargo-test composition's images all exist,
/// `cargo-test` and `miri-test` depend on the build of their queue's arch.
pub fn add_cargo_test_dependency(pipeline: &mut Value, opts: &FinishOptions) -> Result<()> {
    if !matches!(opts.pipeline_name.as_str(), "test" | "nightly") {
        return Ok(());
    }
    if opts.pull_request && opts.pipeline_name == "test" {
        return for_each_step(pipeline, |step, _| {
            if str_field(step, "id") == Some("cargo-test") {
                step.insert(key("depends_on"), key("build-x86_64"));
            }
            Ok(())
        });
    }
    if opts.cargo_test_images_exist == Some(true) {
        return Ok(());
    }
    for_each_step(pipeline, |step, n| {
        if !matches!(str_field(step, "id"), Some("cargo-test" | "miri-test")) {
            return Ok(());
        }
        let q = match agents(step, n)?.and_then(|a| a.get("queue")) {
            Some(Value::String(q)) => q.clone(),
            other => {
                return Err(FinishError::WrongType {
                    step: describe(step, n),
                    field: "agents.queue",
                    expected: "a string",
                    found: other.map_or_else(|| "nothing".into(), kind),
                });
            }
        };
        let build = if q.contains("x86") {
            "build-x86_64"
        } else {
            "build-aarch64"
        };
        step.insert(key("depends_on"), key(build));
        Ok(())
    })
}

/// Tag builds of `test`: `deploy` becomes synchronous (`async: false`), the
/// `wait` step right before it (in flattened order) is skipped, and
/// `nightly-if-release` depends on `deploy`.
pub fn add_nightly_deploy_dependency(pipeline: &mut Value, opts: &FinishOptions) -> Result<()> {
    if opts.pipeline_name != "test" || opts.tag().is_none() {
        return Ok(());
    }
    // First pass: which flattened indices are waits preceding `deploy`.
    let mut skip_at = BTreeSet::new();
    let mut prev_is_wait: Option<bool> = None;
    let mut n_prev = 0;
    for_each_step(pipeline, |step, n| {
        if str_field(step, "id") == Some("deploy") {
            if prev_is_wait != Some(true) {
                return Err(FinishError::DeployNotAfterWait);
            }
            skip_at.insert(n_prev);
        }
        prev_is_wait = Some(has(step, "wait"));
        n_prev = n;
        Ok(())
    })?;
    for_each_step(pipeline, |step, n| {
        match str_field(step, "id") {
            Some("deploy") => {
                step.insert(key("async"), Value::Bool(false));
            }
            Some("nightly-if-release") => {
                step.insert(key("depends_on"), key("deploy"));
            }
            _ => {}
        }
        if skip_at.contains(&n) {
            step.insert(key("skip"), Value::Bool(true));
        }
        Ok(())
    })
}

/// `test` PR builds (not on a tag, not `CI_RELEASE_LTO_BUILD`, not a
/// `dependabot/…` branch): a step whose `depends_on` is the *string*
/// `build-x86_64`/`build-aarch64` (not a list) loses it, and gets
/// `env.CI_WAITING_FOR_BUILD` instead, unless that arch's images all exist;
/// the debug-symbol uploads keep theirs. Without [`BuildHashes`] every
/// dependency is kept (fail safe).
pub fn remove_dependencies_on_prs(pipeline: &mut Value, opts: &FinishOptions) -> Result<()> {
    if opts.pipeline_name != "test"
        || !opts.pull_request
        || opts.tag().is_some()
        || opts.release_lto_build
        || opts.branch.starts_with("dependabot/")
    {
        return Ok(());
    }
    let Some(h) = &opts.build_hashes else {
        return Ok(());
    };
    for_each_step(pipeline, |step, n| {
        if matches!(
            str_field(step, "id"),
            Some("upload-debug-symbols-x86_64" | "upload-debug-symbols-aarch64")
        ) {
            return Ok(());
        }
        let dep = match str_field(step, "depends_on") {
            Some(d @ "build-x86_64") if !h.x86_64.all_exist => d.to_owned(),
            Some(d @ "build-aarch64") if !h.aarch64.all_exist => d.to_owned(),
            _ => return Ok(()),
        };
        mapping_field(step, n, "env")?.insert(key("CI_WAITING_FOR_BUILD"), Value::String(dep));
        step.shift_remove("depends_on");
        Ok(())
    })
}

/// Removes `inputs`, `coverage`, `sanitizer` and `ci_glue_exempt`, and checks
/// that every step but prompt/wait/group/trigger/async steps has a
/// `timeout_in_minutes`.
pub fn remove_mz_specific_keys(pipeline: &mut Value) -> Result<()> {
    for_each_step(pipeline, |step, n| {
        for k in ["inputs", "coverage", "sanitizer", "ci_glue_exempt"] {
            step.shift_remove(k);
        }
        if !has(step, "timeout_in_minutes")
            && !is_wait_group_prompt(step)
            && !has(step, "trigger")
            && !is_true(step, "async")
        {
            return Err(FinishError::MissingTimeout {
                step: describe(step, n),
                why: "",
            });
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests;
