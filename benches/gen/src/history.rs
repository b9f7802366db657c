//! A generated first-parent history with known decisions: the scale-1
//! monorepo, then commits that each edit a Rust file of some crate, a
//! Python service module, a composition's directory, a doc page or the CI
//! glue (some commits two of these). For every commit the generator works
//! out from its own model which steps a correct engine keeps, by which kind
//! of reason, and through which inputs (the triggers `pipetrim stats`
//! counts), without running pipetrim.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io;
use std::path::Path;

use super::{Git, Model, SplitMix64, StepInfo, build, closure_of, write_tree};

/// Why a step is kept in one commit: the kinds of reason (`glob`, `image`,
/// `import`, `depends_on`) and the triggers as (kind, input): `("glob",
/// pattern)`, `("composition", dir)`, `("crate", name)`, `("module", file)`,
/// `("step", id)`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeptTruth {
    pub kinds: BTreeSet<String>,
    pub triggers: BTreeSet<(String, String)>,
}

/// One commit of the history and what it keeps.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommitTruth {
    pub commit: String,
    pub parent: String,
    pub message: String,
    /// The paths the commit changes (sorted).
    pub changed: Vec<String>,
    /// The CI glue (`bin`, `ci`, …) changed: a dry run.
    pub dry_run: bool,
    /// Every kept step, with why.
    pub kept: BTreeMap<String, KeptTruth>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistoryTruth {
    /// The trimmable steps of the pipeline (the same in every commit).
    pub steps: Vec<String>,
    /// Oldest first; each against its first parent.
    pub commits: Vec<CommitTruth>,
}

enum Edit {
    Rust(usize),
    Python(usize),
    CompositionDir(usize),
    Doc,
    Glue,
}

/// Writes the scale-1 repository into `dir` (which must not exist or be
/// empty) with `commits` commits on top of the initial import, on branch
/// `main`. Requires the `git` binary. A function of `(seed, commits)`.
pub fn generate_history(dir: &Path, seed: u64, commits: usize) -> io::Result<HistoryTruth> {
    if dir.exists() && std::fs::read_dir(dir)?.next().is_some() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("`{}` exists and is not empty", dir.display()),
        ));
    }
    std::fs::create_dir_all(dir)?;
    let g = build(1, seed);
    let git = Git::new(dir)?;
    write_tree(dir, &g.tree)?;
    git.run(&["init", "-q", "-b", "main"])?;
    git.commit_all("Initial import", 0)?;
    let oracle = Oracle::new(&g.model, &g.import_graph, &g.steps);
    let mut rng = SplitMix64::new(seed ^ 0x4157_0a7e);
    let services: Vec<usize> = (0..g.model.services.len())
        .filter(|&k| {
            g.tree
                .files
                .contains_key(&service_path(&g.model.services[k].module))
        })
        .collect();
    let mut out = HistoryTruth {
        steps: g.steps.iter().map(|s| s.id.clone()).collect(),
        commits: Vec::new(),
    };
    let mut parent = git.output(&["rev-parse", "HEAD"])?;
    for i in 0..commits {
        // Mostly one edit, sometimes two; every kind comes up.
        let mut edits = vec![pick(&mut rng, i, &g.model, &services)];
        if rng.chance(25) {
            edits.push(pick(&mut rng, i + 7, &g.model, &services));
        }
        let mut changed = BTreeSet::new();
        let mut crates = BTreeSet::new();
        let mut modules = BTreeSet::new();
        let mut names = Vec::new();
        for e in &edits {
            let (path, text) = match *e {
                Edit::Rust(c) => {
                    let cr = &g.model.crates[c];
                    crates.insert(c);
                    names.push(cr.name.clone());
                    let m = &cr.modules[i % cr.modules.len()];
                    (format!("{}/src/{m}.rs", cr.dir), format!("\n// edit {i}\n"))
                }
                Edit::Python(k) => {
                    let module = &g.model.services[k].module;
                    modules.insert(format!("materialize.mzcompose.services.{module}"));
                    names.push(module.clone());
                    (service_path(module), format!("\n# edit {i}\n"))
                }
                Edit::CompositionDir(k) => {
                    let name = &g.model.compositions[k].0;
                    names.push(name.clone());
                    (
                        format!("test/{name}/added-{i}.td"),
                        format!("> SELECT {i};\n{i}\n"),
                    )
                }
                Edit::Doc => {
                    names.push("docs".into());
                    (
                        "doc/user/content/overview/page-0.md".to_string(),
                        format!("\nEdit {i}.\n"),
                    )
                }
                Edit::Glue => {
                    names.push("glue".into());
                    ("bin/ci-builder".to_string(), format!("\n# edit {i}\n"))
                }
            };
            if !g.tree.files.contains_key(&path) && !path.ends_with(".td") {
                return Err(io::Error::other(format!(
                    "generator: `{path}` was not generated"
                )));
            }
            append_or_create(dir, &path, &text)?;
            changed.insert(path);
        }
        let message = format!("edit {i}: {}", names.join(", "));
        git.commit_all(&message, i as u32 + 1)?;
        let commit = git.output(&["rev-parse", "HEAD"])?;
        let changed: Vec<String> = changed.into_iter().collect();
        let (dry_run, kept) = oracle.decide(&changed, &crates, &modules);
        out.commits.push(CommitTruth {
            commit: commit.clone(),
            parent: std::mem::replace(&mut parent, commit),
            message,
            changed,
            dry_run,
            kept,
        });
    }
    git.cleanup();
    Ok(out)
}

fn pick(rng: &mut SplitMix64, i: usize, model: &Model, services: &[usize]) -> Edit {
    match (i + rng.below(5)) % 6 {
        0 | 1 => Edit::Rust(rng.below(model.crates.len())),
        2 => Edit::Python(*rng.pick(services)),
        3 => Edit::CompositionDir(rng.below(model.compositions.len())),
        4 => Edit::Doc,
        _ if rng.chance(50) => Edit::Glue,
        _ => Edit::Rust(rng.below(model.crates.len())),
    }
}

fn service_path(module: &str) -> String {
    format!("misc/python/materialize/mzcompose/services/{module}.py")
}

fn append_or_create(dir: &Path, path: &str, text: &str) -> io::Result<()> {
    use std::io::Write;
    let full = dir.join(path);
    if let Some(p) = full.parent() {
        std::fs::create_dir_all(p)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(full)?;
    f.write_all(text.as_bytes())
}

/// The model's answers, computed once for the whole history.
struct Oracle<'a> {
    model: &'a Model,
    steps: &'a [StepInfo],
    /// For each composition: the images it uses, and its load-time modules.
    comp_images: BTreeMap<String, BTreeSet<String>>,
    comp_modules: BTreeMap<String, BTreeSet<String>>,
}

impl<'a> Oracle<'a> {
    fn new(model: &'a Model, graph: &BTreeMap<String, Vec<String>>, steps: &'a [StepInfo]) -> Self {
        // The same rules as `truth`: the services' images, and both
        // metadata stores' for a composition that loads `metadata_store`.
        let img_of_module: BTreeMap<String, String> = model
            .services
            .iter()
            .filter_map(|sv| {
                let m = format!("materialize.mzcompose.services.{}", sv.module);
                sv.image.clone().map(|i| (m, i))
            })
            .collect();
        let mut comp_images = BTreeMap::new();
        let mut comp_modules = BTreeMap::new();
        for (name, used) in &model.compositions {
            let seen = crate::load_closure(graph, name);
            let mut imgs: BTreeSet<String> = used
                .iter()
                .filter_map(|&k| model.services[k].image.clone())
                .collect();
            if seen.contains("materialize.mzcompose.services.metadata_store") {
                for m in ["postgres", "cockroach"] {
                    if let Some(i) =
                        img_of_module.get(&format!("materialize.mzcompose.services.{m}"))
                    {
                        imgs.insert(i.clone());
                    }
                }
            }
            comp_images.insert(name.clone(), imgs);
            comp_modules.insert(name.clone(), seen);
        }
        Oracle {
            model,
            steps,
            comp_images,
            comp_modules,
        }
    }

    /// Whether crate `from` reaches crate `to` by normal and build
    /// dependencies (itself included).
    fn reaches(&self, from: usize, to: usize) -> bool {
        let mut stack = vec![from];
        let mut seen = HashSet::new();
        while let Some(x) = stack.pop() {
            if x == to {
                return true;
            }
            if seen.insert(x) {
                stack.extend(self.model.crates[x].deps.iter().copied());
                stack.extend(self.model.crates[x].build_deps.iter().copied());
            }
        }
        false
    }

    /// The changed crates among `crates` whose files are an own input of
    /// `image` (through its cargo-build pre-image; an example's crate adds
    /// its dev-dependencies).
    fn crates_hitting(&self, image: &str, crates: &BTreeSet<usize>) -> BTreeSet<String> {
        let Some(im) = self.model.images.iter().find(|i| i.name == image) else {
            return BTreeSet::new();
        };
        crates
            .iter()
            .filter(|&&c| {
                im.cargo_crates.iter().any(|&owner| {
                    let o = &self.model.crates[owner];
                    self.reaches(owner, c)
                        || (!o.is_bin && o.dev_deps.iter().any(|&d| self.reaches(d, c)))
                })
            })
            .map(|&c| self.model.crates[c].name.clone())
            .collect()
    }

    fn decide(
        &self,
        changed: &[String],
        crates: &BTreeSet<usize>,
        modules: &BTreeSet<String>,
    ) -> (bool, BTreeMap<String, KeptTruth>) {
        let glue = changed
            .iter()
            .any(|p| p == "bin" || p.starts_with("bin/") || p.starts_with("ci/"));
        let mut kept: BTreeMap<String, KeptTruth> = BTreeMap::new();
        for st in self.steps {
            let mut t = KeptTruth::default();
            for input in &st.inputs {
                let Ok(spec) = pipetrim_queries::pathspec::Pathspec::parse(input) else {
                    continue;
                };
                if changed.iter().any(|p| spec.matches(p)) {
                    t.kinds.insert("glob".into());
                    t.triggers.insert(("glob".into(), input.clone()));
                }
            }
            let mut images: BTreeSet<String> = BTreeSet::new();
            for c in &st.compositions {
                let dir = format!("test/{c}");
                if changed.iter().any(|p| p.starts_with(&format!("{dir}/"))) {
                    t.kinds.insert("glob".into());
                    t.triggers.insert(("composition".into(), dir));
                }
                for m in self.comp_modules.get(c).into_iter().flatten() {
                    if modules.contains(m) {
                        t.kinds.insert("import".into());
                        let file = m.replace('.', "/");
                        t.triggers
                            .insert(("module".into(), format!("misc/python/{file}.py")));
                    }
                }
                images.extend(self.comp_images.get(c).into_iter().flatten().cloned());
            }
            if st.cloudtest {
                images.insert("environmentd".into());
                images.insert("clusterd".into());
            }
            let closure: BTreeSet<String> = images
                .iter()
                .flat_map(|i| closure_of(self.model, i))
                .collect();
            for img in &closure {
                for name in self.crates_hitting(img, crates) {
                    t.kinds.insert("image".into());
                    t.triggers.insert(("crate".into(), name));
                }
            }
            if !t.kinds.is_empty() {
                kept.insert(st.id.clone(), t);
            }
        }
        // Then what kept steps depend on, transitively, each naming the
        // kept steps that need it.
        loop {
            let mut more: Vec<(String, String)> = Vec::new();
            for st in self.steps.iter().filter(|s| kept.contains_key(&s.id)) {
                for d in &st.depends_on {
                    let known = kept
                        .get(d)
                        .is_some_and(|t| t.triggers.contains(&("step".into(), st.id.clone())));
                    if !known {
                        more.push((d.clone(), st.id.clone()));
                    }
                }
            }
            if more.is_empty() {
                break;
            }
            for (d, by) in more {
                let t = kept.entry(d).or_default();
                t.kinds.insert("depends_on".into());
                t.triggers.insert(("step".into(), by));
            }
        }
        (glue, kept)
    }
}
