//! The command line: clap types and the dispatch to [`crate::commands`].
//! No domain rule lives here; each command's module says what it does.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::ci::builder::{Arch, Flavor};
use crate::commands;
use crate::error::Error;
use crate::repo::session::SessionOptions;

#[derive(Parser, Debug)]
#[command(
    name = "pipetrim",
    version = env!("PIPETRIM_VERSION"),
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
    /// Read the checkout as git's index records it, not the work tree:
    /// for CI jobs on a fresh checkout, where the two agree, this skips
    /// checking every file on disk. Untracked files and unstaged edits are
    /// not seen; `--uncommitted` counts staged changes only. `watch`
    /// refuses it; `soak` and `stats` read commits from git's objects
    /// with or without it.
    #[arg(long, global = true, env = "PIPETRIM_FROM_INDEX",
          action = clap::ArgAction::SetTrue,
          value_parser = clap::builder::FalseyValueParser::new())]
    pub from_index: bool,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
    /// Graphviz (`graph` only).
    Dot,
    /// Mermaid (`graph` only).
    Mermaid,
    /// Markdown (`stats` only).
    Markdown,
}

// `defer`: a subcommand's arguments are built only when it runs (or for
// help, completions and man pages), not all of them on every start.
#[derive(Subcommand, Debug)]
#[command(defer = true)]
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
    /// Over N first-parent commits of `--repo` (a git dir, read-only): how
    /// often each step is kept and why, and which files keep the most steps.
    Stats(StatsArgs),
    /// Print the shell completion script for SHELL on stdout.
    Completions {
        #[arg(value_enum)]
        shell: Shell,
    },
    /// Write the man pages (`pipetrim.1`, `pipetrim-trim.1`, …) into DIR,
    /// or print `pipetrim.1` on stdout without DIR.
    Man { dir: Option<PathBuf> },
}

/// The shells `completions` writes for.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

#[derive(Args, Debug, Clone)]
pub struct StatsArgs {
    /// How many commits (each against its first parent).
    #[arg(long, default_value_t = 300)]
    pub commits: usize,
    /// The last commit of the walk.
    #[arg(long, default_value = "HEAD")]
    pub from: String,
    /// Median minutes per step id (JSON or CSV): adds step-minutes run and saved.
    #[arg(long, value_name = "FILE")]
    pub durations: Option<PathBuf>,
    /// Also write the keep-rate plot (one bar per step) as SVG to FILE.
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,
    /// Write the report to FILE (atomically) instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Triggers listed per step.
    #[arg(long, default_value_t = 3)]
    pub top: usize,
    /// Hot inputs listed.
    #[arg(long, default_value_t = 20)]
    pub hot: usize,
}

#[derive(Args, Debug, Clone, Default)]
pub struct ChangeArgs {
    /// Base ref to diff against (merge base with HEAD); default origin/main, then main.
    #[arg(long)]
    pub base: Option<String>,
    /// Take the changed paths from FILE (one per line), or `-` for stdin.
    #[arg(long, value_name = "FILE")]
    pub changed_files: Option<String>,
    /// Also count staged, unstaged and untracked changes (with
    /// `--from-index`: staged changes only).
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
    /// Show the decisions on the build page: a Markdown summary piped to
    /// `buildkite-agent annotate --style info|warning --context pipetrim`.
    /// A failing agent is a warning, never a failed trim.
    #[arg(long)]
    pub annotate: bool,
    /// With --annotate: run CMD (`sh -c`) instead of `buildkite-agent
    /// annotate`: the Markdown on its stdin, `--style S --context pipetrim`
    /// as its arguments (`"$@"`), the style also in
    /// `$PIPETRIM_ANNOTATION_STYLE`.
    #[arg(long, value_name = "CMD", requires = "annotate")]
    pub annotate_cmd: Option<String>,
    /// Also write the Markdown summary to FILE.
    #[arg(long, value_name = "FILE")]
    pub report_markdown: Option<PathBuf>,
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
    /// The reference's spelling (`Profile.RELEASE`, …), which fingerprints hash.
    pub(crate) fn as_ref_str(self) -> &'static str {
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

#[derive(Args, Debug, Clone)]
pub struct WatchArgs {
    /// Base ref to diff against (merge base with HEAD); default origin/main, then main.
    #[arg(long)]
    pub base: Option<String>,
}

/// Runs the CLI; returns the process exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    crate::timeline::mark("args");
    let repo = cli.global.repo.clone();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            crate::output::diagnostic::print_error(&e, &repo);
            e.exit_code()
        }
    }
}

impl Global {
    /// The model's options from the global flags; checks `--repo` first.
    pub(crate) fn session_options(&self) -> Result<SessionOptions, Error> {
        if !self.repo.is_dir() {
            return Err(Error::Usage(format!(
                "`{}` is not a directory (hint: pass --repo DIR)",
                self.repo.display()
            )));
        }
        let defaults = SessionOptions::default();
        Ok(SessionOptions {
            pipeline: self.pipeline.clone(),
            python_roots: crate::repo::roots::python_roots(
                &self.repo,
                &self.python_roots,
                &defaults.python_roots,
            )?,
            lazy_imports: self.lazy_imports,
            cache_dir: self.cache_dir(),
            from_index: self.from_index,
        })
    }

    /// The persistent cache's directory; `None` runs without it.
    pub fn cache_dir(&self) -> Option<std::path::PathBuf> {
        if self.no_cache {
            None
        } else {
            self.cache_dir.clone().or_else(crate::cache::default_dir)
        }
    }
}

/// Runs one parsed command line; `Ok` carries the exit code.
pub fn run(cli: Cli) -> Result<i32, Error> {
    let result = run_command(&cli);
    // New cache entries are written once, at the end.
    let t = std::time::Instant::now();
    let stats = crate::cache::flush_all();
    if crate::timeline::enabled() {
        eprintln!(
            "timings: cache {} hits, {} misses, {} written, {} evicted, flush {:?}",
            stats.hits,
            stats.misses,
            stats.written,
            stats.evicted,
            t.elapsed()
        );
    }
    crate::timeline::mark("flush");
    if let Some(line) = crate::timeline::render() {
        eprintln!("{line}");
    }
    result
}

fn run_command(cli: &Cli) -> Result<i32, Error> {
    let g = &cli.global;
    match &cli.command {
        Command::Images => commands::images::run(g),
        Command::Crates => commands::crates::run(g),
        Command::Compositions => commands::compositions::run(g),
        Command::Fingerprint(a) => commands::fingerprint::run(g, a),
        Command::BuilderTag { flavor, arch } => commands::builder_tag::run(g, *flavor, *arch),
        Command::Bootstrap(a) => commands::bootstrap::run(g, a),
        Command::Trim(a) => commands::trim::run(g, a),
        Command::Explain { step, changes } => commands::explain::run(g, step, changes),
        Command::Affected { paths } => commands::affected::run(g, paths),
        Command::Graph { step, changes } => commands::graph::run(g, step.as_deref(), changes),
        Command::Watch(a) => commands::watch::run(g, a),
        Command::Soak { commits, from } => commands::soak::run(g, *commits, from),
        Command::Stats(a) => commands::stats::run(g, a),
        Command::Completions { shell } => commands::completions::run(*shell),
        Command::Man { dir } => commands::man::run(dir.as_deref()),
    }
}
