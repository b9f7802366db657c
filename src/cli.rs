//! The command line.

use std::collections::{BTreeSet, HashSet};
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand, ValueEnum};
use pipetrim_queries::fingerprint::{Variant, base32, fingerprints};
use pipetrim_queries::images::{compositions, image_graph};
use pipetrim_queries::inputs::image_files;
use pipetrim_queries::plan::{Plan, plan};
use pipetrim_queries::prime;
use pipetrim_queries::python::{composition_images, composition_imports};
use pipetrim_queries::{Db, Diagnostic};
use serde_json::json;

use crate::builder::{Arch, Flavor};
use crate::env::TrimContext;
use crate::error::Error;
use crate::finish::{self, FinishOptions};
use crate::session::{Session, SessionOptions};

#[derive(Parser, Debug)]
#[command(
    name = "pipetrim",
    version,
    about = "Decides which CI steps a change needs, and proves why."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Debug, Clone)]
pub struct Global {
    /// The checkout to work on.
    #[arg(long, global = true, default_value = ".")]
    pub repo: PathBuf,
    /// Output format.
    #[arg(long, global = true, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// The pipeline: `ci/<PIPELINE>/pipeline.template.yml`.
    #[arg(long, global = true, default_value = "test")]
    pub pipeline: String,
    /// First-party Python roots (repeatable).
    #[arg(long = "python-root", global = true)]
    pub python_roots: Vec<String>,
    /// Also follow imports inside function bodies (SPEC §4.2).
    #[arg(long, global = true)]
    pub lazy_imports: bool,
    /// Where per-file results are kept across runs (default:
    /// $PIPETRIM_CACHE_DIR, else the platform cache directory + `pipetrim`).
    #[arg(long, global = true, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Run without the persistent cache (neither read nor written).
    #[arg(long, global = true)]
    pub no_cache: bool,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
    /// Graphviz (`graph` only).
    Dot,
    /// Mermaid (`graph` only).
    Mermaid,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// The trimmed, finished pipeline (YAML on stdout, decisions on stderr).
    Trim(TrimArgs),
    /// The mzbuild images with their dependencies and inputs.
    Images,
    /// The crates of the Cargo workspace.
    Crates,
    /// The compositions with their Python imports and images.
    Compositions,
    /// Image fingerprints and specs.
    Fingerprint(FingerprintArgs),
    /// The ci-builder image tag for a flavor.
    BuilderTag {
        #[arg(value_enum)]
        flavor: Flavor,
        #[arg(long, value_enum, default_value_t = host_arch())]
        arch: Arch,
    },
    /// Check the ci-builder images; print the bootstrap pipeline if any is missing.
    Bootstrap(BootstrapArgs),
    /// Why a step is kept or trimmed: the chain of evidence.
    Explain {
        /// The step id.
        step: String,
        #[command(flatten)]
        changes: ChangeArgs,
    },
    /// The step → composition → image → crate graph (`--format dot|mermaid|json`).
    Graph {
        /// Only what this step reaches.
        #[arg(long)]
        step: Option<String>,
        #[command(flatten)]
        changes: ChangeArgs,
    },
    /// Which steps a change to these paths would keep, and why (no git needed).
    Affected {
        /// Repo-relative paths.
        #[arg(required = true)]
        paths: Vec<String>,
    },
    /// Watch the checkout; after every edit print the steps the change needs.
    Watch(WatchArgs),
    /// Walk N first-parent commits of `--repo` (a git dir, read-only) and
    /// check incremental plans against from-scratch plans at each.
    Soak {
        /// How many commits.
        #[arg(long, default_value_t = 300)]
        commits: usize,
        /// The last commit of the walk.
        #[arg(long, default_value = "HEAD")]
        from: String,
    },
    /// Write a synthetic monorepo (a git repository) for benchmarks and tests.
    GenFixture(GenFixtureArgs),
}

#[derive(Args, Debug, Clone)]
pub struct GenFixtureArgs {
    /// Size: 1 is ~120 crates, 45 images, 100 compositions, ~10,000 files; N multiplies by N.
    #[arg(long, default_value_t = 1)]
    pub scale: u32,
    #[arg(long, default_value_t = crate::r#gen::DEFAULT_SEED)]
    pub seed: u64,
    /// A directory that does not exist or is empty.
    pub dir: PathBuf,
}

#[derive(Args, Debug, Clone, Default)]
pub struct ChangeArgs {
    /// Base ref to diff against (merge base with HEAD); default origin/main, then main.
    #[arg(long)]
    pub base: Option<String>,
    /// Take the changed paths from FILE (one per line), or `-` for stdin.
    #[arg(long, value_name = "FILE")]
    pub changed_files: Option<String>,
    /// Also count staged, unstaged and untracked changes.
    #[arg(long)]
    pub uncommitted: bool,
}

#[derive(Args, Debug, Clone)]
pub struct TrimArgs {
    #[command(flatten)]
    pub changes: ChangeArgs,
    /// Exit non-zero instead of keeping every step when the plan is unknowable.
    #[arg(long)]
    pub strict: bool,
    /// How to test that an image exists (`{image}` is replaced), e.g.
    /// `docker manifest inspect {image}`: build steps whose images all exist
    /// are skipped. Without it, images count as missing and builds run.
    #[arg(long, value_name = "CMD")]
    pub exists_cmd: Option<String>,
    /// Coverage build (never trimmed).
    #[arg(long)]
    pub coverage: bool,
    /// Sanitizer build (never trimmed); default $CI_SANITIZER.
    #[arg(long)]
    pub sanitizer: Option<String>,
    /// Base priority; default $CI_PRIORITY.
    #[arg(long)]
    pub priority: Option<i64>,
    /// Branch; default $BUILDKITE_BRANCH.
    #[arg(long)]
    pub branch: Option<String>,
    /// Tag; default $BUILDKITE_TAG.
    #[arg(long)]
    pub tag: Option<String>,
    /// Write the pipeline to FILE instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Pipe the pipeline to `buildkite-agent pipeline upload`.
    #[arg(long)]
    pub upload: bool,
    /// With --upload: pass --dry-run to buildkite-agent.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Args, Debug, Clone)]
pub struct FingerprintArgs {
    #[arg(long, value_enum, default_value_t = host_arch())]
    pub arch: Arch,
    #[arg(long, value_enum, default_value_t = Profile::Optimized)]
    pub profile: Profile,
    #[arg(long)]
    pub coverage: bool,
    #[arg(long, default_value = "none")]
    pub sanitizer: String,
    /// Registry; default from MZ_GHCR / the commit's MZ_GHCR_DEFAULT.
    #[arg(long)]
    pub registry: Option<String>,
    #[arg(long, default_value = "")]
    pub prefix: String,
    /// Only this image.
    #[arg(long)]
    pub image: Option<String>,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    Release,
    Optimized,
    Dev,
}

impl Profile {
    fn as_ref_str(self) -> &'static str {
        match self {
            Profile::Release => "RELEASE",
            Profile::Optimized => "OPTIMIZED",
            Profile::Dev => "DEV",
        }
    }
}

#[derive(Args, Debug, Clone)]
pub struct BootstrapArgs {
    /// The pipeline the generator runs after bootstrap.
    #[arg(default_value = "test")]
    pub target: String,
    /// How to test that an image exists; `{image}` is replaced.
    #[arg(long, default_value = "docker manifest inspect {image}")]
    pub exists_cmd: String,
    /// When every image exists, print the generator command instead of
    /// running the trim.
    #[arg(long)]
    pub print: bool,
    /// Arguments passed on to the generator (`trim` flags when pipetrim runs it).
    #[arg(last = true)]
    pub args: Vec<String>,
}

fn host_arch() -> Arch {
    if cfg!(target_arch = "aarch64") {
        Arch::Aarch64
    } else {
        Arch::X86_64
    }
}

/// Runs the CLI; returns the process exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            e.exit_code()
        }
    }
}

impl Global {
    /// The model's options from the global flags; checks `--repo` first.
    fn session_options(&self) -> Result<SessionOptions, Error> {
        if !self.repo.is_dir() {
            return Err(Error::Usage(format!(
                "`{}` is not a directory (hint: pass --repo DIR)",
                self.repo.display()
            )));
        }
        let defaults = SessionOptions::default();
        Ok(SessionOptions {
            pipeline: self.pipeline.clone(),
            python_roots: if self.python_roots.is_empty() {
                defaults.python_roots
            } else {
                self.python_roots.clone()
            },
            lazy_imports: self.lazy_imports,
            cache_dir: if self.no_cache {
                None
            } else {
                self.cache_dir.clone().or_else(crate::cache::default_dir)
            },
        })
    }
}

fn session(g: &Global) -> Result<Session, Error> {
    Session::open(&g.repo, &g.session_options()?)
}

pub fn run(cli: Cli) -> Result<i32, Error> {
    let result = run_command(&cli);
    // New cache entries are written once, at the end.
    let t = std::time::Instant::now();
    let stats = crate::cache::flush_all();
    if std::env::var_os("PIPETRIM_TIMINGS").is_some() {
        eprintln!(
            "timings: cache {} hits, {} misses, {} written, {} evicted, flush {:?}",
            stats.hits,
            stats.misses,
            stats.written,
            stats.evicted,
            t.elapsed()
        );
    }
    result
}

fn run_command(cli: &Cli) -> Result<i32, Error> {
    let g = &cli.global;
    match &cli.command {
        Command::Images => cmd_images(g),
        Command::Crates => cmd_crates(g),
        Command::Compositions => cmd_compositions(g),
        Command::Fingerprint(a) => cmd_fingerprint(g, a),
        Command::BuilderTag { flavor, arch } => {
            let s = session(g)?;
            let tag = crate::builder::builder_tag(&s.root, s.files(), *flavor, *arch)
                .map_err(|e| Error::Usage(e.to_string()))?;
            print_out(g, &json!(tag), &tag)
        }
        Command::Bootstrap(a) => cmd_bootstrap(g, a),
        Command::Trim(a) => cmd_trim(g, a),
        Command::Explain { step, changes } => cmd_explain(g, step, changes),
        Command::Affected { paths } => cmd_affected(g, paths),
        Command::Graph { step, changes } => cmd_graph(g, step.as_deref(), changes),
        Command::GenFixture(a) => cmd_gen_fixture(g, a),
        Command::Watch(a) => cmd_watch(g, a),
        Command::Soak { commits, from } => cmd_soak(g, *commits, from),
    }
}

fn print_out(g: &Global, json: &serde_json::Value, text: &str) -> Result<i32, Error> {
    let mut out = std::io::stdout().lock();
    let r = match g.format {
        Format::Json => writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(json).unwrap_or_default()
        ),
        Format::Text | Format::Dot | Format::Mermaid => writeln!(out, "{}", text.trim_end()),
    };
    r.map_err(|e| Error::Io(e.to_string()))?;
    Ok(0)
}

fn cmd_images(g: &Global) -> Result<i32, Error> {
    let s = session(g)?;
    let db = &s.db;
    let files = s.ws.files(db);
    let graph = image_graph(db, files).clone()?;
    let mut out = Vec::new();
    let mut text = String::new();
    for img in graph.images.values() {
        let inputs = image_files(db, files, &img.name, false)?;
        let trans = image_files(db, files, &img.name, true)?;
        let mut deps = img.depends_on.clone();
        deps.sort();
        text.push_str(&format!(
            "{} ({}){}: {} inputs, {} transitive\n",
            img.name,
            img.dir,
            if deps.is_empty() {
                String::new()
            } else {
                format!(" <- {}", deps.join(", "))
            },
            inputs.len(),
            trans.len()
        ));
        out.push(json!({
            "name": img.name, "path": img.dir, "publish": img.publish, "mainline": img.mainline,
            "depends_on": deps, "pre_images": img.pre_images, "inputs": inputs, "inputs_transitive": trans,
        }));
    }
    print_out(g, &json!(out), &text)
}

fn cmd_crates(g: &Global) -> Result<i32, Error> {
    let s = session(g)?;
    let db = &s.db;
    let ws = pipetrim_queries::cargo::cargo_workspace(db, s.ws.files(db)).clone()?;
    let mut out = Vec::new();
    let mut text = String::new();
    for c in ws.all() {
        let deps: BTreeSet<&String> = c
            .dependencies
            .iter()
            .chain(&c.build_dependencies)
            .chain(&c.dev_dependencies)
            .collect();
        text.push_str(&format!(
            "{} ({}) bins: [{}] examples: [{}]\n",
            c.name,
            c.dir,
            c.bins.join(", "),
            c.examples.join(", ")
        ));
        out.push(json!({
            "name": c.name, "path": c.dir, "bins": c.bins, "examples": c.examples,
            "path_dependencies": deps, "dependencies": c.dependencies,
            "build_dependencies": c.build_dependencies, "dev_dependencies": c.dev_dependencies,
            "member": ws.members.contains_key(&c.name),
        }));
    }
    print_out(g, &json!(out), &text)
}

fn cmd_compositions(g: &Global) -> Result<i32, Error> {
    let s = session(g)?;
    let db = &s.db;
    let files = s.ws.files(db);
    let options = s.ws.options(db);
    let comps = compositions(db, files).clone()?;
    let graph = image_graph(db, files).clone()?;
    let mut out = Vec::new();
    let mut text = String::new();
    for (name, dir) in &comps {
        let file = db.file(&format!("{dir}/mzcompose.py"));
        let imports = composition_imports(db, files, options, file);
        let imgs = composition_images(db, files, options, file);
        let mut images: BTreeSet<String> = imgs
            .names
            .iter()
            .filter(|n| graph.images.contains_key(*n))
            .cloned()
            .collect();
        let mut unsure: Vec<Diagnostic> = imports.unsure.clone();
        if let Some(why) = &imgs.every_image {
            images.extend(graph.images.keys().cloned());
            unsure.push(why.clone());
        }
        text.push_str(&format!(
            "{name} ({dir}): {} imports, images: {}\n",
            imports.files.len(),
            images.iter().cloned().collect::<Vec<_>>().join(", ")
        ));
        for u in &unsure {
            text.push_str(&format!("    unsure: {u}\n"));
        }
        out.push(json!({
            "name": name, "path": dir, "imports": imports.files, "images": images,
            "unsure": unsure.iter().map(|u| json!({"file": u.file, "line": u.line, "reason": u.message})).collect::<Vec<_>>(),
        }));
    }
    print_out(g, &json!(out), &text)
}

/// The registry of image specs (SPEC §8).
fn registry(s: &Session, flag: Option<&str>) -> String {
    if let Some(r) = flag {
        return r.to_string();
    }
    let ghcr = match std::env::var("MZ_GHCR") {
        Ok(v) => finish::env_is_truthy(Some(&v)),
        Err(_) => {
            let file = s.db.file("misc/python/materialize/docker.py");
            let default = file
                .content(&s.db)
                .bytes()
                .and_then(|b| std::str::from_utf8(b).ok())
                .and_then(ghcr_default)
                .unwrap_or_else(|| "1".to_string());
            finish::env_is_truthy(Some(&default))
        }
    };
    if ghcr {
        "ghcr.io/materializeinc/materialize".into()
    } else {
        "materialize".into()
    }
}

/// The value of `MZ_GHCR_DEFAULT` in the text of `docker.py`: a string
/// literal, or `"A" if ui.env_is_truthy("VAR") else "B"` evaluated against
/// the environment, as the reference's module would be at import time.
fn ghcr_default(text: &str) -> Option<String> {
    fn literal(s: &str) -> Option<(&str, &str)> {
        let s = s.trim_start();
        let q = s.chars().next().filter(|c| *c == '"' || *c == '\'')?;
        let end = s[1..].find(q)? + 1;
        Some((&s[1..end], &s[end + 1..]))
    }
    let line = text.lines().find_map(|l| {
        let rest = l.strip_prefix("MZ_GHCR_DEFAULT")?;
        if !rest.starts_with([' ', ':', '=']) {
            return None;
        }
        // `= value`, or with an annotation `: str = value`.
        Some(rest.split_once('=')?.1.trim())
    })?;
    let (first, rest) = literal(line)?;
    let rest = rest.trim();
    if rest.is_empty() || rest.starts_with('#') {
        return Some(first.to_string());
    }
    let cond = rest.strip_prefix("if")?.trim_start();
    let cond = cond
        .strip_prefix("ui.env_is_truthy(")
        .or_else(|| cond.strip_prefix("env_is_truthy("))?;
    let (var, after) = literal(cond)?;
    let after = after.trim_start().strip_prefix(')')?.trim_start();
    let (second, _) = literal(after.strip_prefix("else")?)?;
    let set = finish::env_is_truthy(std::env::var(var).ok().as_deref());
    Some(if set { first } else { second }.to_string())
}

fn cmd_fingerprint(g: &Global, a: &FingerprintArgs) -> Result<i32, Error> {
    let s = session(g)?;
    let db = &s.db;
    let files = s.ws.files(db);
    let variant = Variant::new(
        db,
        a.arch.as_str().to_string(),
        a.profile.as_ref_str().to_string(),
        a.coverage,
        a.sanitizer.clone(),
    );
    let graph = image_graph(db, files).clone()?;
    let names: Vec<String> = graph.images.keys().cloned().collect();
    hash_with_progress(db, prime::prime_image_files(db, files, &names));
    prime::prime_self_hashes(
        db,
        files,
        a.arch.as_str(),
        a.profile.as_ref_str(),
        a.coverage,
        &a.sanitizer,
        &names,
    );
    let fps = fingerprints(db, files, variant).clone()?;
    let reg = registry(&s, a.registry.as_deref());
    let mut out = Vec::new();
    let mut text = String::new();
    for (name, d) in fps.iter() {
        if a.image.as_ref().is_some_and(|i| i != name) {
            continue;
        }
        let fp = base32(d);
        let spec = format!("{reg}/{}{name}:mzbuild-{fp}", a.prefix);
        text.push_str(&format!("{spec}\n"));
        out.push(json!({"name": name, "fingerprint": fp, "spec": spec}));
    }
    if let Some(i) = &a.image
        && out.is_empty()
    {
        return Err(Error::Usage(format!("no image named `{i}`")));
    }
    print_out(g, &json!(out), &text)
}

fn cmd_bootstrap(g: &Global, a: &BootstrapArgs) -> Result<i32, Error> {
    let s = session(g)?;
    let check = crate::bootstrap::CommandCheck {
        template: a.exists_cmd.clone(),
    };
    let plan = crate::bootstrap::plan_bootstrap(&s.root, s.files(), &check, &a.target, &a.args)
        .map_err(|e| Error::Usage(e.to_string()))?;
    match plan {
        crate::bootstrap::BootstrapPlan::Pipeline {
            yaml,
            missing,
            check_failures,
        } => {
            for f in &check_failures {
                eprintln!("warning: existence check failed, treating as missing: {f:?}");
            }
            eprintln!(
                "{} ci-builder image(s) missing: bootstrap pipeline on stdout",
                missing.len()
            );
            print!("{yaml}");
            Ok(0)
        }
        crate::bootstrap::BootstrapPlan::AllPresent { .. } if a.print => {
            let cmd = crate::bootstrap::mkpipeline_command(&a.target, &a.args);
            eprintln!("every ci-builder image exists; the generator runs directly:");
            println!("{}", cmd.join(" "));
            Ok(0)
        }
        crate::bootstrap::BootstrapPlan::AllPresent { .. } => {
            // Every image exists: the generator is pipetrim's own trim.
            eprintln!(
                "every ci-builder image exists; trimming pipeline `{}`",
                a.target
            );
            let mut argv: Vec<std::ffi::OsString> = vec!["pipetrim".into(), "--repo".into()];
            argv.push(g.repo.clone().into_os_string());
            argv.extend(["--pipeline".into(), a.target.clone().into(), "trim".into()]);
            argv.extend(a.args.iter().map(Into::into));
            let cli = Cli::try_parse_from(argv).map_err(|e| {
                Error::Usage(format!(
                    "bootstrap: the generator arguments are not `trim` flags: {e}"
                ))
            })?;
            run(cli)
        }
    }
}

fn cmd_gen_fixture(g: &Global, a: &GenFixtureArgs) -> Result<i32, Error> {
    let s = crate::r#gen::generate(&a.dir, a.scale, a.seed)
        .map_err(|e| Error::Io(format!("cannot generate `{}`: {e}", a.dir.display())))?;
    let text = format!(
        "{}: {} files, {} crates, {} images, {} compositions, {} Python modules, {} steps; branch `feature` changes {}",
        a.dir.display(),
        s.files,
        s.crates,
        s.images,
        s.compositions,
        s.python_modules,
        s.steps,
        s.changed.join(", ")
    );
    let v = json!({
        "dir": a.dir, "files": s.files, "crates": s.crates, "images": s.images,
        "compositions": s.compositions, "python_modules": s.python_modules, "steps": s.steps,
        "changed": s.changed, "main": s.main_commit, "feature": s.feature_commit,
    });
    print_out(g, &v, &text)
}

/// The change set the user asked for.
pub fn resolve_changes(
    root: &Path,
    a: &ChangeArgs,
) -> Result<(Vec<String>, Option<String>, String), Error> {
    if let Some(src) = &a.changed_files {
        let mut text = String::new();
        if src == "-" {
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|e| Error::Io(format!("cannot read stdin: {e}")))?;
        } else {
            text = std::fs::read_to_string(src)
                .map_err(|e| Error::Usage(format!("cannot read `{src}`: {e}")))?;
        }
        let paths: Vec<String> = text
            .lines()
            .map(|l| l.trim().trim_start_matches("./").to_string())
            .filter(|l| !l.is_empty())
            .collect();
        return Ok((paths, None, format!("the list in `{src}`")));
    }
    match crate::git::changes_against(root, a.base.as_deref()) {
        crate::git::Changes::Known {
            base,
            merge_base,
            mut paths,
        } => {
            if a.uncommitted {
                match crate::git::uncommitted(root) {
                    Ok(more) => paths.extend(more),
                    Err(e) => {
                        return Ok((
                            Vec::new(),
                            Some(format!("uncommitted changes unknown: {e}")),
                            base,
                        ));
                    }
                }
            }
            Ok((
                paths,
                None,
                format!(
                    "merge base {} of HEAD and `{base}`",
                    &merge_base[..merge_base.len().min(10)]
                ),
            ))
        }
        crate::git::Changes::Unknown(why) => Ok((Vec::new(), Some(why), "unknown".into())),
    }
}

fn cmd_trim(g: &Global, a: &TrimArgs) -> Result<i32, Error> {
    let t0 = std::time::Instant::now();
    let r = cmd_trim_inner(g, a);
    if std::env::var_os("PIPETRIM_TIMINGS").is_some() {
        eprintln!("timings: total {:?}", t0.elapsed());
    }
    r
}

fn cmd_trim_inner(g: &Global, a: &TrimArgs) -> Result<i32, Error> {
    let timings = std::env::var_os("PIPETRIM_TIMINGS").is_some();
    let t0 = std::time::Instant::now();
    // The change set (gix) is computed while the files are listed.
    let (s, changes) = std::thread::scope(|scope| {
        let changes = scope.spawn(|| resolve_changes(&g.repo, &a.changes));
        let s = session(g);
        let changes = changes
            .join()
            .unwrap_or_else(|_| Err(Error::Git("computing the change set panicked".into())));
        (s, changes)
    });
    // A one-shot run: the OS frees the database faster than dropping it
    // query by query would.
    let mut s = std::mem::ManuallyDrop::new(s?);
    let t_files = t0.elapsed();
    let (paths, unknown, base_desc) = changes?;
    let t_changes = t0.elapsed();
    if let Some(why) = &unknown {
        if a.strict {
            return Err(Error::Git(format!(
                "{why} (--strict: not keeping every step)"
            )));
        }
        eprintln!("warning: the change set is unknown, nothing is trimmed: {why}");
    }
    s.set_changes(paths, unknown.clone());
    let mut ctx = trim_context(g, a)?;
    let db = &s.db;
    let tpl = pipetrim_queries::pipeline::template(db, s.ws.options(db)).clone()?;
    let mut pipeline = tpl.value.clone();
    ctx.finish.lto = finish::compute_lto(
        &pipeline,
        &g.pipeline,
        ctx.finish.tag.as_deref(),
        ctx.finish.pull_request,
        ctx.finish.release_lto_build,
    );
    pipetrim_queries::prime::prime_plan(db, s.ws);
    let plan_result = plan(db, s.ws).clone();
    if timings {
        eprintln!(
            "timings: files {:?}, change set {:?}, plan {:?}",
            t_files,
            t_changes - t_files,
            t0.elapsed() - t_changes
        );
    }
    let no_trim = ctx.no_trim_reason();
    let (plan, plan_error): (Option<std::sync::Arc<Plan>>, Option<Diagnostic>) = match plan_result {
        Ok(p) => (Some(p), None),
        Err(e) => {
            if a.strict {
                return Err(Error::Input(e));
            }
            eprintln!("warning: the plan cannot be computed, every step is kept: {e}");
            (None, Some(e))
        }
    };
    if a.strict
        && let Some(p) = &plan
        && let Some(e) = p.errors.first()
    {
        return Err(Error::Input(e.clone()));
    }
    // Test selection first: it counts steps of the untrimmed pipeline.
    if let Some(ids) = &ctx.test_ids {
        let set: BTreeSet<usize> = ids
            .split(',')
            .map(|i| {
                i.trim()
                    .parse::<usize>()
                    .map_err(|_| Error::Usage(format!("CI_TEST_IDS: `{i}` is not a step index")))
            })
            .collect::<Result<_, _>>()?;
        finish::select_tests_by_id(&mut pipeline, &set).map_err(|e| Error::Usage(e.to_string()))?;
    } else if let Some(sel) = &ctx.test_selection {
        let set: BTreeSet<String> = sel.split(',').map(|s| s.trim().to_string()).collect();
        finish::select_tests_by_name(&mut pipeline, &set)
            .map_err(|e| Error::Usage(e.to_string()))?;
    }
    let dry_run = plan.as_ref().is_some_and(|p| p.glue_changed) && no_trim.is_none();
    let trimmed = no_trim.is_none() && !dry_run && plan.is_some() && unknown.is_none();
    if let Some(p) = &plan {
        if trimmed {
            let needed: HashSet<String> = p
                .steps
                .iter()
                .filter(|d| d.kept)
                .map(|d| d.id.clone())
                .collect();
            finish::restrict_to(&mut pipeline, &needed).map_err(|e| Error::Usage(e.to_string()))?;
        } else if dry_run {
            let changes = s.ws.changes(db).paths(db).clone();
            let changed = |inputs: &[String]| -> bool {
                match pipetrim_queries::pathspec::PathspecSet::new(inputs) {
                    Ok(set) if set.is_empty() => false,
                    Ok(set) => changes.iter().any(|c| set.matches(c)),
                    Err(_) => true,
                }
            };
            finish::skip_unchanged_glue_exempt(&mut pipeline, &changed)
                .map_err(|e| Error::Usage(e.to_string()))?;
        }
    }
    if g.format != Format::Json {
        // The build steps' concurrency groups (and skips) need the image
        // specs of both arches; only the YAML uses them.
        ctx.finish.build_hashes = match build_hashes(&s, &ctx, a.exists_cmd.as_deref()) {
            Ok(h) => Some(h),
            Err(e) => {
                eprintln!(
                    "warning: image fingerprints unavailable, build steps left as they are: {e}"
                );
                None
            }
        };
    }
    finish::finish(&mut pipeline, &ctx.finish)
        .map_err(|e| Error::Usage(format!("{}: {e}", tpl.path)))?;
    let reason = match (&no_trim, &plan_error, dry_run) {
        (Some(r), _, _) => format!("not trimmed: {r}"),
        (None, Some(e), _) => format!("not trimmed: {e}"),
        (None, None, _) if unknown.is_some() => format!(
            "not trimmed: the change set is unknown: {}",
            unknown.as_deref().unwrap_or_default()
        ),
        (None, None, true) => {
            "dry run: CI glue changed (bin, ci, ...); decisions reported, nothing removed".into()
        }
        (None, None, false) => format!("trimmed against {base_desc}"),
    };
    // Report on stderr.
    if let Some(p) = &plan {
        let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "--- {reason}");
        let _ = write!(err, "{}", crate::report::text_report(p, color));
    } else {
        eprintln!("--- {reason}");
    }
    match g.format {
        Format::Json => {
            let steps: Vec<serde_json::Value> = match &plan {
                Some(p) => p.steps.iter().map(|d| json!({
                    "id": d.id, "kept": d.kept, "changed": d.changed, "depends_on": d.depends_on,
                    "globs": d.globs, "images": d.images, "changed_inputs": d.changed_inputs,
                    "reasons": d.reasons,
                })).collect(),
                None => tpl.steps.iter().filter(|s| s.kind.is_unit()).map(|s| json!({"id": s.id, "kept": true, "changed": true})).collect(),
            };
            let v = json!({
                "trimmed": trimmed, "dry_run": dry_run, "reason": reason,
                "errors": plan.as_ref().map(|p| p.errors.clone()).unwrap_or_default(),
                "steps": steps,
            });
            print_out(g, &v, "")
        }
        Format::Text | Format::Dot | Format::Mermaid => {
            let yaml = serde_yaml_ng::to_string(&pipeline).map_err(|e| Error::Io(e.to_string()))?;
            if let Some(path) = &a.output {
                std::fs::write(path, &yaml)
                    .map_err(|e| Error::Io(format!("cannot write `{}`: {e}", path.display())))?;
            } else if !a.upload {
                print!("{yaml}");
            }
            if a.upload {
                let mut cmd = std::process::Command::new("buildkite-agent");
                cmd.args(["pipeline", "upload"]);
                if a.dry_run {
                    cmd.arg("--dry-run");
                }
                let mut child = cmd
                    .stdin(std::process::Stdio::piped())
                    .spawn()
                    .map_err(|e| Error::Io(format!("cannot run buildkite-agent: {e}")))?;
                if let Some(stdin) = child.stdin.as_mut() {
                    stdin
                        .write_all(yaml.as_bytes())
                        .map_err(|e| Error::Io(e.to_string()))?;
                }
                let status = child.wait().map_err(|e| Error::Io(e.to_string()))?;
                if !status.success() {
                    return Err(Error::Io(format!(
                        "buildkite-agent pipeline upload failed: {status}"
                    )));
                }
            }
            Ok(0)
        }
    }
}

fn trim_context(g: &Global, a: &TrimArgs) -> Result<TrimContext, Error> {
    let var = |k: &str| std::env::var(k).ok();
    let mut f =
        FinishOptions::from_env(&g.pipeline, var).map_err(|e| Error::Usage(e.to_string()))?;
    if a.coverage {
        f.coverage = true;
    }
    if let Some(s) = &a.sanitizer {
        f.sanitizer = Some(s.clone()).filter(|s| s != "none");
    }
    if let Some(p) = a.priority {
        f.priority = p;
    }
    if let Some(b) = &a.branch {
        f.branch = b.clone();
    }
    if let Some(t) = &a.tag {
        f.tag = Some(t.clone()).filter(|t| !t.is_empty());
    }
    Ok(TrimContext {
        finish: f,
        test_ids: var("CI_TEST_IDS").filter(|s| !s.is_empty()),
        test_selection: var("CI_TEST_SELECTION").filter(|s| !s.is_empty()),
    })
}

/// A session with its change set applied, and the plan.
fn planned(
    g: &Global,
    paths: Vec<String>,
    unknown: Option<String>,
) -> Result<(Session, std::sync::Arc<Plan>), Error> {
    let mut s = session(g)?;
    s.set_changes(paths, unknown);
    let p = plan(&s.db, s.ws).clone()?;
    Ok((s, p))
}

fn cmd_explain(g: &Global, step: &str, a: &ChangeArgs) -> Result<i32, Error> {
    let root = g.repo.clone();
    let (paths, unknown, _) = resolve_changes(&root, a)?;
    let (s, p) = planned(g, paths, unknown)?;
    let graph = image_graph(&s.db, s.ws.files(&s.db)).clone().ok();
    let Some(d) = p.steps.iter().find(|d| d.id == step) else {
        let known: Vec<&str> = p.steps.iter().map(|d| d.id.as_str()).collect();
        return Err(Error::Usage(format!(
            "no step `{step}` in the pipeline (hint: one of {})",
            known
                .iter()
                .take(12)
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    };
    let text = crate::explain::explain_text(d, graph.as_deref());
    print_out(g, &crate::explain::explain_json(d, graph.as_deref()), &text)
}

fn cmd_affected(g: &Global, paths: &[String]) -> Result<i32, Error> {
    let paths: Vec<String> = paths
        .iter()
        .map(|p| p.trim_start_matches("./").to_string())
        .collect();
    let (s, p) = planned(g, paths, None)?;
    let graph = image_graph(&s.db, s.ws.files(&s.db)).clone().ok();
    let kept: Vec<_> = p.steps.iter().filter(|d| d.kept).collect();
    let mut text = String::new();
    for d in &kept {
        text.push_str(&crate::explain::explain_text(d, graph.as_deref()));
    }
    if kept.is_empty() {
        text.push_str("no step would run for these paths\n");
    }
    let json = json!({
        "steps": kept.iter().map(|d| crate::explain::explain_json(d, graph.as_deref())).collect::<Vec<_>>(),
        "errors": p.errors,
    });
    print_out(g, &json, &text)
}

fn cmd_soak(g: &Global, commits: usize, from: &str) -> Result<i32, Error> {
    let opts = g.session_options()?;
    let report = crate::soak::soak(&g.repo, from, commits, &opts, |i, c, r| {
        if (i + 1) % 25 == 0 {
            eprintln!(
                "soak: {} commits ({c}), {} panics, {} differences, RSS {} MiB",
                i + 1,
                r.panics,
                r.differences.len(),
                r.rss_last_kib / 1024
            );
        }
    })?;
    print!("{}", report.summary());
    Ok(if report.ok() { 0 } else { 1 })
}

fn cmd_graph(g: &Global, step: Option<&str>, a: &ChangeArgs) -> Result<i32, Error> {
    let mut s = session(g)?;
    if a.base.is_some() || a.changed_files.is_some() || a.uncommitted {
        let (paths, unknown, _) = resolve_changes(&s.root, a)?;
        s.set_changes(paths, unknown);
    }
    let mut graph = crate::graph::build(&s)?;
    if let Some(step) = step {
        let id = format!("step:{step}");
        if !graph.nodes.contains_key(&id) {
            return Err(Error::Usage(format!("no step `{step}` in the pipeline")));
        }
        graph = graph.restrict(&id);
    }
    let text = match g.format {
        Format::Mermaid => crate::graph::to_mermaid(&graph),
        _ => crate::graph::to_dot(&graph),
    };
    print_out(g, &crate::graph::to_json(&graph), &text)
}

#[cfg(test)]
mod tests {
    use super::ghcr_default;

    #[test]
    fn ghcr_default_forms() {
        assert_eq!(
            ghcr_default("MZ_GHCR_DEFAULT = \"0\"\n").as_deref(),
            Some("0")
        );
        assert_eq!(
            ghcr_default("x = 1\nMZ_GHCR_DEFAULT: str = '1'  # comment\n").as_deref(),
            Some("1")
        );
        assert_eq!(ghcr_default("MZ_GHCR_DEFAULT_X = \"0\"\n"), None);
        assert_eq!(ghcr_default("MZ_GHCR_DEFAULT = compute()\n"), None);
        // The conditional form depends on an environment variable no test sets.
        assert_eq!(
            ghcr_default(
                "MZ_GHCR_DEFAULT = \"1\" if ui.env_is_truthy(\"PIPETRIM_TEST_NEVER_SET\") else \"0\"\n"
            )
            .as_deref(),
            Some("0")
        );
    }
}

#[derive(Args, Debug, Clone)]
pub struct WatchArgs {
    /// Base ref to diff against (merge base with HEAD); default origin/main, then main.
    #[arg(long)]
    pub base: Option<String>,
}

fn cmd_watch(g: &Global, a: &WatchArgs) -> Result<i32, Error> {
    let opts = g.session_options()?;
    let output = match g.format {
        Format::Json => crate::watch::Output::Json,
        Format::Text | Format::Dot | Format::Mermaid => crate::watch::Output::Text,
    };
    crate::watch::run(&g.repo, &opts, a.base.clone(), output)
}

/// The reference's build hashes: per arch, SHA-1 over the specs of the
/// published images and their dependencies in dependency order, and whether
/// all of them exist.
fn build_hashes(
    s: &Session,
    ctx: &TrimContext,
    exists_cmd: Option<&str>,
) -> Result<finish::BuildHashes, Error> {
    let db = &s.db;
    let files = s.ws.files(db);
    let graph = image_graph(db, files).clone()?;
    // Topological order as the reference resolves it: targets by name,
    // dependencies by name, depth first.
    let mut order: Vec<String> = Vec::new();
    fn visit(graph: &pipetrim_queries::images::ImageGraph, name: &str, order: &mut Vec<String>) {
        if order.iter().any(|o| o == name) {
            return;
        }
        let mut deps: Vec<&String> = graph
            .get(name)
            .map(|i| i.depends_on.iter().collect())
            .unwrap_or_default();
        deps.sort();
        for d in deps {
            visit(graph, d, order);
        }
        order.push(name.to_string());
    }
    for img in graph.images.values().filter(|i| i.publish) {
        visit(&graph, &img.name, &mut order);
    }
    let profile = if ctx.finish.lto {
        "RELEASE"
    } else {
        "OPTIMIZED"
    };
    let sanitizer = ctx
        .finish
        .sanitizer
        .clone()
        .unwrap_or_else(|| "none".into());
    let reg = registry(s, None);
    let check = exists_cmd.map(|t| crate::bootstrap::CommandCheck {
        template: t.to_string(),
    });
    let names: Vec<String> = graph.images.keys().cloned().collect();
    hash_with_progress(db, prime::prime_image_files(db, files, &names));
    let mut per_arch = Vec::new();
    for arch in ["x86_64", "aarch64"] {
        prime::prime_self_hashes(
            db,
            files,
            arch,
            profile,
            ctx.finish.coverage,
            &sanitizer,
            &names,
        );
        let variant = Variant::new(
            db,
            arch.to_string(),
            profile.to_string(),
            ctx.finish.coverage,
            sanitizer.clone(),
        );
        let fps = fingerprints(db, files, variant).clone()?;
        let specs: Vec<String> = order
            .iter()
            .filter_map(|n| {
                fps.get(n)
                    .map(|d| format!("{reg}/{n}:mzbuild-{}", base32(d)))
            })
            .collect();
        let all_exist = match &check {
            Some(c) => {
                use crate::bootstrap::ExistenceCheck;
                use rayon::prelude::*;
                specs.par_iter().all(|spec| c.exists(spec).unwrap_or(false))
            }
            None => false,
        };
        per_arch.push(finish::ArchHash {
            hash: finish::build_hash(specs.iter().map(String::as_str)),
            all_exist,
        });
    }
    let aarch64 = per_arch
        .pop()
        .ok_or_else(|| Error::Io("internal: no aarch64 hash".into()))?;
    let x86_64 = per_arch
        .pop()
        .ok_or_else(|| Error::Io("internal: no x86_64 hash".into()))?;
    Ok(finish::BuildHashes { x86_64, aarch64 })
}

/// Hashes files in parallel; on a terminal, draws a progress line on stderr
/// once hashing has taken more than half a second.
fn hash_with_progress(db: &pipetrim_queries::Database, paths: Vec<String>) {
    let total = paths.len();
    let start = std::time::Instant::now();
    let tty = std::io::stderr().is_terminal();
    let last = std::sync::Mutex::new(std::time::Instant::now());
    let drew = std::sync::atomic::AtomicBool::new(false);
    let progress = |done: usize| {
        if !tty || start.elapsed() < std::time::Duration::from_millis(500) {
            return;
        }
        if let Ok(mut l) = last.try_lock()
            && (l.elapsed() >= std::time::Duration::from_millis(100) || done == total)
        {
            *l = std::time::Instant::now();
            drew.store(true, std::sync::atomic::Ordering::Relaxed);
            eprint!("\rhashing image inputs: {done}/{total} files");
        }
    };
    pipetrim_queries::prime::prime_hashes(db, &paths, &progress);
    if drew.load(std::sync::atomic::Ordering::Relaxed) {
        eprintln!(
            "\rhashing image inputs: {total}/{total} files, {:.1?}",
            start.elapsed()
        );
    }
}
