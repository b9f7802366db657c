//! What a history of plans says about each step: how often it was kept,
//! by which kind of reason, which inputs kept it most often, and which
//! changed files and directories keep the most steps (`pipetrim stats`).
//!
//! A pure fold over [`Plan`]s (no git, no database): the edges replay the
//! history and feed each commit's plan to [`StatsBuilder::add`]; tests
//! feed hand-made plans.
//!
//! How a [`Reason`] maps to a kind of reason and to a trigger:
//!
//! | reason | kind | trigger |
//! | --- | --- | --- |
//! | `Glob` from the step's `inputs` | `glob` | `glob`: the input pattern |
//! | `Glob` of a composition's directory | `glob` | `composition`: the directory |
//! | `Glob` of a module a composition imports | `import` | `module`: the module's file |
//! | `Image` through a crate of a cargo-build pre-image | `image` | `crate`: the crate whose files changed (the end of the chain) |
//! | `Image` through the image's context or a copy pre-image | `image` | `image`: the image whose own files changed |
//! | `Image` through the shared Cargo inputs | `image` | `cargo`: `Cargo.lock`, `Cargo.toml`, `ci/builder/**`, … |
//! | `DependedOn` | `depends_on` | `step`: the kept step that depends on it |
//! | `FailSafe`, `ChangesUnknown` | `fail_safe` | `fail-safe`: the file of the diagnostic (or its message) |

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use crate::diag::Diagnostic;
use crate::inputs::Origin;
use crate::plan::{GlobOrigin, Plan, Reason, StepDecision};

/// The kinds of reason a kept step is counted under.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ReasonKind {
    /// A changed path matched an explicit input or a composition's directory.
    Glob,
    /// A changed path is an input of an image the step uses (its context,
    /// a crate of its cargo-build pre-image, the shared Cargo inputs, a
    /// copy pre-image), directly or through `MZFROM`.
    Image,
    /// A changed path is a Python module a composition of the step imports.
    Import,
    /// A kept step depends on this one.
    DependsOn,
    /// Kept without evidence: what could not be read or computed.
    FailSafe,
}

impl ReasonKind {
    pub const ALL: [ReasonKind; 5] = [
        ReasonKind::Glob,
        ReasonKind::Image,
        ReasonKind::Import,
        ReasonKind::DependsOn,
        ReasonKind::FailSafe,
    ];

    /// The JSON key.
    pub fn key(self) -> &'static str {
        match self {
            ReasonKind::Glob => "glob",
            ReasonKind::Image => "image",
            ReasonKind::Import => "import",
            ReasonKind::DependsOn => "depends_on",
            ReasonKind::FailSafe => "fail_safe",
        }
    }

    pub fn of(r: &Reason) -> ReasonKind {
        match r {
            Reason::Glob {
                origin: GlobOrigin::Import { .. },
                ..
            } => ReasonKind::Import,
            Reason::Glob { .. } => ReasonKind::Glob,
            Reason::Image { .. } => ReasonKind::Image,
            Reason::DependedOn { .. } => ReasonKind::DependsOn,
            Reason::FailSafe { .. } | Reason::ChangesUnknown { .. } => ReasonKind::FailSafe,
        }
    }
}

/// What kind of input a trigger names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TriggerKind {
    Glob,
    Composition,
    Module,
    Crate,
    Image,
    Cargo,
    Step,
    FailSafe,
}

impl TriggerKind {
    pub fn name(self) -> &'static str {
        match self {
            TriggerKind::Glob => "glob",
            TriggerKind::Composition => "composition",
            TriggerKind::Module => "module",
            TriggerKind::Crate => "crate",
            TriggerKind::Image => "image",
            TriggerKind::Cargo => "cargo",
            TriggerKind::Step => "step",
            TriggerKind::FailSafe => "fail-safe",
        }
    }
}

/// The input that kept a step: stable across commits (a glob, a crate, a
/// module, an image), so that counting it says what to narrow.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct Trigger {
    pub kind: TriggerKind,
    pub input: String,
}

impl Trigger {
    pub fn of(r: &Reason) -> Trigger {
        let (kind, input) = match r {
            Reason::Glob { glob, origin, .. } => match origin {
                GlobOrigin::Explicit => (TriggerKind::Glob, glob.clone()),
                GlobOrigin::CompositionDir { .. } => (TriggerKind::Composition, glob.clone()),
                GlobOrigin::Import { .. } => (TriggerKind::Module, glob.clone()),
            },
            Reason::Image { image, input, .. } => match &input.origin {
                Origin::Crate { chain, .. } => (
                    TriggerKind::Crate,
                    chain
                        .last()
                        .map_or_else(|| image.to_string(), |c| c.to_string()),
                ),
                Origin::Context | Origin::Copy => (TriggerKind::Image, image.to_string()),
                Origin::CargoShared => (TriggerKind::Cargo, input.spec.describe()),
            },
            Reason::DependedOn { step } => (TriggerKind::Step, step.clone()),
            Reason::FailSafe { diagnostic } => (
                TriggerKind::FailSafe,
                diagnostic
                    .file
                    .clone()
                    .unwrap_or_else(|| diagnostic.message.clone()),
            ),
            Reason::ChangesUnknown { .. } => (TriggerKind::FailSafe, "changes unknown".into()),
        };
        Trigger { kind, input }
    }
}

/// One evaluated commit.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct CommitSummary {
    pub commit: String,
    /// The first parent: the change set is `base..commit`.
    pub base: String,
    /// The steps the plan keeps (the decision also in a dry run).
    pub kept: Vec<String>,
    /// The CI glue changed: `trim` reports the decisions, removes nothing.
    pub dry_run: bool,
    /// How many paths changed.
    pub changed: usize,
    /// How many diagnostics the plan has (fail-safe notes included).
    pub errors: usize,
}

/// A commit without a plan.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Skipped {
    pub commit: String,
    pub base: String,
    pub error: String,
}

/// Counts of commits by kind of reason; a kept step counts under every kind
/// it has, so these may add up to more than `kept`.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ByReason {
    pub glob: usize,
    pub image: usize,
    pub import: usize,
    pub depends_on: usize,
    pub fail_safe: usize,
}

impl ByReason {
    fn bump(&mut self, k: ReasonKind) {
        match k {
            ReasonKind::Glob => self.glob += 1,
            ReasonKind::Image => self.image += 1,
            ReasonKind::Import => self.import += 1,
            ReasonKind::DependsOn => self.depends_on += 1,
            ReasonKind::FailSafe => self.fail_safe += 1,
        }
    }

    pub fn get(&self, k: ReasonKind) -> usize {
        match k {
            ReasonKind::Glob => self.glob,
            ReasonKind::Image => self.image,
            ReasonKind::Import => self.import,
            ReasonKind::DependsOn => self.depends_on,
            ReasonKind::FailSafe => self.fail_safe,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct TriggerCount {
    pub kind: TriggerKind,
    pub input: String,
    /// Commits in which this input kept the step.
    pub count: usize,
}

/// Step-minutes, from the median duration of a step.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Minutes {
    pub median: f64,
    /// `kept × median`.
    pub run: f64,
    /// `(of − kept) × median`: what the plans trim.
    pub saved: f64,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct StepStats {
    pub id: String,
    pub group: Option<String>,
    /// Commits whose plan keeps the step.
    pub kept: usize,
    /// Commits whose plan has the step.
    pub of: usize,
    /// `kept / of`.
    pub rate: f64,
    /// Commits in which it was kept on its own account (an input changed,
    /// or fail safe), not only because a kept step depends on it.
    pub on_its_own: usize,
    pub by_reason: ByReason,
    /// The inputs that kept it most often, most often first.
    pub top_triggers: Vec<TriggerCount>,
    /// With durations: the step-minutes it ran and the plans saved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub minutes: Option<Minutes>,
}

/// A changed file or directory and what changing it costs.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct HotInput {
    /// A file, or a directory with a trailing `/`.
    pub path: String,
    /// Commits that changed it (for a directory: anything below it).
    pub commits: usize,
    /// Over those commits, the mean number of steps its changes alone keep
    /// (the steps they keep on their own account, and what those depend on).
    pub steps_kept_mean: f64,
    pub steps_kept_total: usize,
}

/// A diagnostic and how many plans had it.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ErrorCount {
    #[serde(flatten)]
    pub diagnostic: Diagnostic,
    pub commits: usize,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct TotalMinutes {
    /// Every step with a duration on every commit.
    pub full: f64,
    pub run: f64,
    pub saved: f64,
    /// Of `saved`, what falls on dry-run commits: a dry run reports the
    /// decisions but runs every step.
    pub saved_in_dry_runs: f64,
    /// Steps of the plans that the durations do not name (not in the sums).
    pub steps_without_duration: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Totals {
    /// Commits with a plan.
    pub commits: usize,
    pub skipped: usize,
    pub dry_runs: usize,
    /// Plans with at least one diagnostic.
    pub with_errors: usize,
    /// Step decisions summed over the plans, and how many kept.
    pub step_runs: usize,
    pub kept: usize,
    /// Steps kept per commit, on average.
    pub kept_mean: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub minutes: Option<TotalMinutes>,
}

/// The report (`pipetrim stats --format json` is this, serialized).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Stats {
    pub commits: Vec<CommitSummary>,
    pub skipped: Vec<Skipped>,
    /// Most often kept first (by rate, then count, then id).
    pub steps: Vec<StepStats>,
    /// Most expensive first (by mean, then commits, then path).
    pub hot_inputs: Vec<HotInput>,
    pub errors: Vec<ErrorCount>,
    pub totals: Totals,
}

#[derive(Default)]
struct StepAcc {
    group: Option<String>,
    kept: usize,
    of: usize,
    on_its_own: usize,
    trimmed_in_dry_runs: usize,
    by_reason: ByReason,
    triggers: HashMap<Trigger, usize>,
}

#[derive(Default)]
struct PathAcc {
    commits: usize,
    steps_kept: usize,
    /// For a directory: a file changed below it (the first seen), and
    /// whether another did too. A directory with one changed file says
    /// nothing its file does not.
    file: Option<String>,
    several: bool,
}

/// Folds plans into [`Stats`].
#[derive(Default)]
pub struct StatsBuilder {
    order: Vec<String>,
    steps: HashMap<String, StepAcc>,
    paths: HashMap<String, PathAcc>,
    commits: Vec<CommitSummary>,
    skipped: Vec<Skipped>,
    errors: BTreeMap<Diagnostic, usize>,
}

impl StatsBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Commits added so far (with a plan or skipped).
    pub fn len(&self) -> usize {
        self.commits.len() + self.skipped.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A commit that has no plan (its tree could not be read, its template
    /// does not load): reported, counted nowhere else.
    pub fn skip(&mut self, commit: &str, base: &str, error: impl Into<String>) {
        self.skipped.push(Skipped {
            commit: commit.into(),
            base: base.into(),
            error: error.into(),
        });
    }

    /// The plan of `commit` against `base` for the change set `changes`.
    pub fn add(&mut self, commit: &str, base: &str, changes: &[String], plan: &Plan) {
        let units: Vec<&StepDecision> = plan
            .steps
            .iter()
            .map(|d| &**d)
            .filter(|d| d.kind.is_trimmable())
            .collect();
        for d in &units {
            if !self.steps.contains_key(&d.id) {
                self.order.push(d.id.clone());
            }
            let acc = self.steps.entry(d.id.clone()).or_default();
            acc.group.clone_from(&d.group);
            acc.of += 1;
            if !d.kept {
                acc.trimmed_in_dry_runs += usize::from(plan.glue_changed);
                continue;
            }
            acc.kept += 1;
            acc.on_its_own += usize::from(d.kept_on_its_own());
            let kinds: BTreeSet<ReasonKind> = d.reasons.iter().map(ReasonKind::of).collect();
            for k in kinds {
                acc.by_reason.bump(k);
            }
            let triggers: HashSet<Trigger> = d.reasons.iter().map(Trigger::of).collect();
            for t in triggers {
                *acc.triggers.entry(t).or_default() += 1;
            }
        }
        for e in &plan.errors {
            *self.errors.entry(e.clone()).or_default() += 1;
        }
        self.add_paths(changes, &units);
        self.commits.push(CommitSummary {
            commit: commit.into(),
            base: base.into(),
            kept: units
                .iter()
                .filter(|d| d.kept)
                .map(|d| d.id.clone())
                .collect(),
            dry_run: plan.glue_changed,
            changed: changes.len(),
            errors: plan.errors.len(),
        });
    }

    /// What each changed path, and each directory above one, keeps alone.
    fn add_paths(&mut self, changes: &[String], units: &[&StepDecision]) {
        // The steps each changed path keeps on their own account.
        let mut direct: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, d) in units.iter().enumerate() {
            if d.kept_on_its_own() {
                for p in &d.changed_inputs {
                    direct.entry(p.as_str()).or_default().push(i);
                }
            }
        }
        let index: HashMap<&str, usize> = units
            .iter()
            .enumerate()
            .map(|(i, d)| (d.id.as_str(), i))
            .collect();
        let cost = |seeds: &mut dyn Iterator<Item = usize>| -> usize {
            let mut seen = vec![false; units.len()];
            let mut stack: Vec<usize> = seeds.collect();
            let mut n = 0;
            while let Some(i) = stack.pop() {
                if std::mem::replace(&mut seen[i], true) {
                    continue;
                }
                n += 1;
                stack.extend(
                    units[i]
                        .depends_on
                        .iter()
                        .filter_map(|d| index.get(d.as_str()).copied()),
                );
            }
            n
        };
        let mut dirs: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        let mut seen_paths: HashSet<&str> = HashSet::new();
        for p in changes {
            if !seen_paths.insert(p) {
                continue;
            }
            let n = cost(&mut direct.get(p.as_str()).into_iter().flatten().copied());
            let acc = self.paths.entry(p.clone()).or_default();
            acc.commits += 1;
            acc.steps_kept += n;
            let mut rest = p.as_str();
            while let Some(slash) = rest.rfind('/') {
                rest = &rest[..slash];
                dirs.entry(rest).or_default().push(p);
            }
        }
        for (dir, files) in dirs {
            let n = cost(
                &mut files
                    .iter()
                    .flat_map(|f| direct.get(f).into_iter().flatten())
                    .copied(),
            );
            let acc = self.paths.entry(format!("{dir}/")).or_default();
            acc.commits += 1;
            acc.steps_kept += n;
            for f in files {
                match &acc.file {
                    None => acc.file = Some(f.to_string()),
                    Some(g) if g != f => acc.several = true,
                    Some(_) => {}
                }
            }
        }
    }

    /// The report: `top` triggers per step, `hot` hot inputs, and minutes
    /// from `durations` (step id → median minutes) when given.
    pub fn finish(
        self,
        top: usize,
        hot: usize,
        durations: Option<&BTreeMap<String, f64>>,
    ) -> Stats {
        let StatsBuilder {
            order,
            mut steps,
            paths,
            commits,
            skipped,
            errors,
        } = self;
        let mut out_steps = Vec::with_capacity(order.len());
        let mut total_min: Option<TotalMinutes> = durations.map(|_| TotalMinutes {
            full: 0.0,
            run: 0.0,
            saved: 0.0,
            saved_in_dry_runs: 0.0,
            steps_without_duration: Vec::new(),
        });
        for id in order {
            let Some(acc) = steps.remove(&id) else {
                continue;
            };
            let mut triggers: Vec<TriggerCount> = acc
                .triggers
                .into_iter()
                .map(|(t, count)| TriggerCount {
                    kind: t.kind,
                    input: t.input,
                    count,
                })
                .collect();
            triggers.sort_by(|a, b| {
                b.count
                    .cmp(&a.count)
                    .then(a.kind.cmp(&b.kind))
                    .then(a.input.cmp(&b.input))
            });
            triggers.truncate(top);
            let minutes = match (durations, total_min.as_mut()) {
                (Some(d), Some(t)) => match d.get(&id) {
                    Some(&median) => {
                        let run = acc.kept as f64 * median;
                        let saved = (acc.of - acc.kept) as f64 * median;
                        t.full += acc.of as f64 * median;
                        t.run += run;
                        t.saved += saved;
                        t.saved_in_dry_runs += acc.trimmed_in_dry_runs as f64 * median;
                        Some(Minutes { median, run, saved })
                    }
                    None => {
                        t.steps_without_duration.push(id.clone());
                        None
                    }
                },
                _ => None,
            };
            out_steps.push(StepStats {
                rate: ratio(acc.kept, acc.of),
                id,
                group: acc.group,
                kept: acc.kept,
                of: acc.of,
                on_its_own: acc.on_its_own,
                by_reason: acc.by_reason,
                top_triggers: triggers,
                minutes,
            });
        }
        out_steps.sort_by(|a, b| {
            b.rate
                .total_cmp(&a.rate)
                .then(b.kept.cmp(&a.kept))
                .then(a.id.cmp(&b.id))
        });
        if let Some(t) = total_min.as_mut() {
            t.steps_without_duration.sort();
        }

        let mut hot_inputs: Vec<HotInput> = paths
            .into_iter()
            .filter(|(p, acc)| !p.ends_with('/') || acc.several)
            .map(|(path, acc)| HotInput {
                steps_kept_mean: ratio(acc.steps_kept, acc.commits),
                steps_kept_total: acc.steps_kept,
                commits: acc.commits,
                path,
            })
            .collect();
        hot_inputs.sort_by(|a, b| {
            b.steps_kept_mean
                .total_cmp(&a.steps_kept_mean)
                .then(b.commits.cmp(&a.commits))
                .then(a.path.cmp(&b.path))
        });
        hot_inputs.truncate(hot);

        let step_runs: usize = out_steps.iter().map(|s| s.of).sum();
        let kept: usize = out_steps.iter().map(|s| s.kept).sum();
        let totals = Totals {
            commits: commits.len(),
            skipped: skipped.len(),
            dry_runs: commits.iter().filter(|c| c.dry_run).count(),
            with_errors: commits.iter().filter(|c| c.errors > 0).count(),
            step_runs,
            kept,
            kept_mean: ratio(kept, commits.len()),
            minutes: total_min,
        };
        let mut errors: Vec<ErrorCount> = errors
            .into_iter()
            .map(|(diagnostic, commits)| ErrorCount {
                diagnostic,
                commits,
            })
            .collect();
        errors.sort_by_key(|e| std::cmp::Reverse(e.commits));
        Stats {
            commits,
            skipped,
            steps: out_steps,
            hot_inputs,
            errors,
            totals,
        }
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

#[cfg(test)]
mod tests;
