//! Synthetic monorepos shaped like the reference (SPEC §2–§4), for the
//! benches and the end-to-end tests, and the `gen-fixture` binary. A
//! development crate: the shipped `pipetrim` does not link it.
//!
//! [`generate`] writes a git repository: a Cargo workspace under `src/` with a
//! path-dependency DAG, mzbuild images with `MZFROM` chains and cargo/copy
//! pre-images, a first-party Python tree with service classes, compositions
//! that import them, a pipeline template, CI glue and filler files. Branch
//! `main` has a short history; branch `feature` (checked out at the end) adds
//! one commit that edits a Rust file of a leaf crate, a Python service module
//! and a doc page. Everything is a function of `(scale, seed)`: the files, the
//! commits and their ids.
//!
//! The generator also works out, from its own model, what a correct engine
//! must decide for the `feature` change ([`GenSummary`]), so tests can check
//! the engine against ground truth rather than against itself.
//! [`generate_history`] does the same for a linear history of edits: which
//! steps each commit keeps, by which kinds of reason and through which
//! inputs (what `pipetrim stats` counts).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt::Write as _;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

mod history;
pub use history::{CommitTruth, HistoryTruth, KeptTruth, generate_history};

/// The seed the benches and `gen-fixture` use by default.
pub const DEFAULT_SEED: u64 = 0x5eed_7715;

/// Bumped whenever the generated content changes, so caches keyed by it
/// (the benches') are rebuilt.
pub const GENERATOR_VERSION: u32 = 1;

/// What was generated, and what a correct trim of `main...feature` decides.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GenSummary {
    /// Files in the work tree at `feature` (not counting `.git`).
    pub files: usize,
    /// Crates that are workspace members.
    pub crates: usize,
    /// Crates under an `exclude` entry.
    pub excluded_crates: usize,
    pub images: usize,
    pub compositions: usize,
    /// `.py` files under `misc/python/materialize/`.
    pub python_modules: usize,
    /// Trimmable steps of `ci/test/pipeline.template.yml` (no waits, no groups).
    pub steps: usize,
    /// Paths of `git diff --name-only main...feature`.
    pub changed: Vec<String>,
    /// The crate (package name) whose Rust file the feature commit edits.
    pub changed_crate: String,
    pub changed_rust_file: String,
    pub changed_python_module: String,
    /// Images whose transitive inputs contain the changed Rust file.
    pub images_hit: BTreeSet<String>,
    /// For every composition, the images of the repository it uses (§4.1).
    pub composition_images: BTreeMap<String, BTreeSet<String>>,
    /// Compositions that import the changed Python module (at load time,
    /// directly or transitively).
    pub compositions_importing_changed_module: BTreeSet<String>,
    /// Steps kept because a composition they run uses an image in `images_hit`.
    pub steps_kept_by_images: BTreeSet<String>,
    /// Steps kept because a composition they run imports the changed module.
    pub steps_kept_by_imports: BTreeSet<String>,
    /// Steps kept because one of their explicit `inputs` matches a change.
    pub steps_kept_by_inputs: BTreeSet<String>,
    /// Steps no change reaches (not even through `depends_on`).
    pub steps_untouched: BTreeSet<String>,
    /// Commit ids of `main` and `feature`.
    pub main_commit: String,
    pub feature_commit: String,
}

/// A tiny deterministic PRNG (splitmix64).
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`; 0 gives 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        (self.next_u64() % n as u64) as usize
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next_u64() % 100 < percent
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

const LIB_WORDS: &[&str] = &[
    "ore",
    "build-tools",
    "proto",
    "repr",
    "expr",
    "sql-lexer",
    "sql-parser",
    "sql",
    "pgrepr",
    "pgwire",
    "pgwire-common",
    "pgcopy",
    "pgtz",
    "persist",
    "persist-types",
    "persist-client",
    "storage",
    "storage-types",
    "storage-client",
    "storage-operators",
    "storage-controller",
    "compute",
    "compute-types",
    "compute-client",
    "adapter",
    "adapter-types",
    "catalog",
    "catalog-protos",
    "cluster",
    "cluster-client",
    "controller",
    "controller-types",
    "timely-util",
    "interchange",
    "kafka-util",
    "avro",
    "ccsr",
    "aws-util",
    "cloud-resources",
    "orchestrator",
    "orchestrator-process",
    "orchestrator-kubernetes",
    "orchestrator-tracing",
    "secrets",
    "build-info",
    "http-util",
    "frontegg-auth",
    "frontegg-client",
    "audit-log",
    "postgres-util",
    "mysql-util",
    "sql-server-util",
    "ssh-util",
    "tls-util",
    "txn-wal",
    "walkabout",
    "lowertest",
    "transform",
    "metrics",
    "tracing",
    "prof",
    "prof-http",
    "regexp",
    "service",
    "rocksdb",
    "rocksdb-types",
    "segment",
    "sql-pretty",
    "arrow-util",
    "dyncfg",
    "dyncfgs",
    "expr-parser",
    "ore-proc",
    "repr-test-util",
    "server-core",
    "test-macro",
    "timestamp-oracle",
    "alloc",
    "alloc-default",
    "auth",
    "authenticator",
    "aws-secrets-controller",
    "cloud-api",
    "durable-cache",
    "environmentd-core",
    "expr-derive",
    "expr-test-util",
    "fivetran-core",
    "license-keys",
    "mysql-util-types",
    "npm",
    "persist-proc",
    "pgtest-core",
    "postgres-client",
    "proc-macro-util",
    "sql-parser-derive",
    "storage-client-types",
    "testdrive-core",
    "timely-util-proc",
    "workspace-hack",
    "ore-build",
    "cloud-provider",
];

const BIN_WORDS: &[&str] = &[
    "environmentd",
    "clusterd",
    "testdrive",
    "sqllogictest",
    "persistcli",
    "balancerd",
    "catalog-debug",
    "kafka-datagen",
    "s3-datagen",
    "lsp-server",
    "orchestratord",
    "mz",
    "pgtest",
    "fivetran-destination",
    "mz-debug",
    "frontegg-mock",
    "sqlsmith",
    "jobs",
];

const THIRD_PARTY: &[(&str, &str)] = &[
    ("postgres", "postgres:17.5"),
    ("mysql", "mysql:9.3.0"),
    ("kafka", "confluentinc/cp-kafka:7.9.0"),
    ("zookeeper", "confluentinc/cp-zookeeper:7.9.0"),
    ("schema-registry", "confluentinc/cp-schema-registry:7.9.0"),
    ("redpanda", "redpandadata/redpanda:v25.1.2"),
    ("minio", "minio/minio:RELEASE.2025-05-24"),
    ("localstack", "localstack/localstack:4.4"),
    ("toxiproxy", "ghcr.io/shopify/toxiproxy:2.12.0"),
    ("cockroach", "cockroachdb/cockroach:v25.1.5"),
    ("foundationdb", "foundationdb/foundationdb:7.3.63"),
    ("azurite", "mcr.microsoft.com/azure-storage/azurite:3.34.0"),
    ("sql-server", "mcr.microsoft.com/mssql/server:2022-latest"),
    ("ssh-bastion-host", "linuxserver/openssh-server:9.9"),
    ("debezium", "debezium/connect:2.7"),
];

const EXTERNAL_SERVICES: &[(&str, &str)] = &[
    ("grafana", "grafana/grafana:11.6.1"),
    ("prometheus", "prom/prometheus:v3.4.0"),
    ("jaeger", "jaegertracing/all-in-one:1.69.0"),
    ("mailhog", "mailhog/mailhog:v1.0.1"),
    ("dnsmasq", "jpillora/dnsmasq:1.1"),
];

const PY_PACKAGES: &[&str] = &[
    "checks",
    "cloudtest",
    "output_consistency",
    "parallel_workload",
    "feature_benchmark",
    "scalability",
    "zippy",
    "data_ingest",
    "ci_util",
    "buildkite_insights",
    "version_consistency",
    "postgres_consistency",
];

const COMP_WORDS: &[&str] = &[
    "testdrive",
    "cluster",
    "sqllogictest",
    "restart",
    "mysql-cdc",
    "mysql-rtr",
    "pg-cdc",
    "pg-rtr",
    "kafka-auth",
    "kafka-exactly-once",
    "kafka-matrix",
    "kafka-rtr",
    "kafka-resumption",
    "upsert",
    "persistence",
    "platform-checks",
    "zippy",
    "limits",
    "chbench",
    "tpch",
    "ssh-connection",
    "source-sink-errors",
    "storage-usage",
    "sql-feature-flags",
    "secrets-local-file",
    "retain-history",
    "replica-isolation",
    "pubsub-disruption",
    "prod-config",
    "parallel-workload",
    "parallel-benchmark",
    "feature-benchmark",
    "scalability",
    "lang-csharp",
    "lang-java",
    "lang-js",
    "lang-python",
    "lang-ruby",
    "metabase",
    "dbt-materialize",
    "fivetran-destination",
    "debezium",
    "copy-to-s3",
    "data-ingest",
    "bounded-memory",
    "balancerd",
    "canary-environment",
    "cloud-canary",
    "cluster-spec-sheet",
    "race-condition",
    "rqg",
    "sqlsmith",
    "sqlancer",
    "txn-wal-fencing",
    "mz-debug",
    "mzcompose-example",
    "legacy-upgrade",
    "0dt",
    "backup-restore",
    "skip-version-upgrade",
    "ui",
    "workload-replay",
    "oauth",
    "sql-server-cdc",
    "terraform",
    "aws-localstack",
    "azurite",
    "foundationdb",
    "orchestratord",
    "pgtest",
    "pgtest-mz",
    "persist",
    "persistcli",
    "s3-datagen",
    "kafka-datagen",
    "catalog-debug",
    "lsp",
    "jobs",
    "frontegg",
    "cockroach-metadata",
    "postgres-metadata",
    "console",
    "balancerd-tls",
    "mysql-rtr-replica",
    "debezium-postgres",
    "debezium-mysql",
    "schema-registry",
    "redpanda",
    "toxiproxy-kafka",
    "ssh-bastion",
    "http-sources",
    "webhook",
    "load-generator",
    "materialized-view-refresh",
    "indexes",
    "cluster-replicas",
    "storage-shared-fate",
    "compute-shared-fate",
    "introspection",
];

const QUEUES: &[&str] = &[
    "hetzner-aarch64-4cpu-8gb",
    "hetzner-aarch64-8cpu-16gb",
    "hetzner-aarch64-16cpu-32gb",
    "hetzner-x86-64-4cpu-8gb",
    "linux-aarch64-small",
];

struct Crate {
    name: String,
    word: String,
    dir: String,
    deps: Vec<usize>,
    build_deps: Vec<usize>,
    dev_deps: Vec<usize>,
    bins: Vec<String>,
    examples: Vec<String>,
    modules: Vec<String>,
    is_bin: bool,
    /// For bin crates: 0 = `[[bin]]` on `src/main.rs`, 1 = `src/bin/<name>.rs`,
    /// 2 = `src/main.rs` (the bin is the package name).
    bin_style: usize,
}

struct Image {
    name: String,
    dir: String,
    mzfrom: Vec<String>,
    /// Crates (indices) whose bins or examples a cargo-build pre-image names.
    cargo_crates: Vec<usize>,
}

struct Service {
    class: String,
    module: String,
    /// The repository image it uses, if any.
    image: Option<String>,
}

/// One file of the generated tree.
struct Tree {
    files: BTreeMap<String, (Vec<u8>, bool)>,
}

impl Tree {
    fn add(&mut self, path: impl Into<String>, text: impl Into<String>) {
        self.files
            .insert(path.into(), (text.into().into_bytes(), false));
    }

    fn add_exec(&mut self, path: impl Into<String>, text: impl Into<String>) {
        self.files
            .insert(path.into(), (text.into().into_bytes(), true));
    }
}

const HEADER_HASH: &str = "# Copyright Materialize, Inc. and contributors. All rights reserved.\n#\n# Use of this software is governed by the Business Source License\n# included in the LICENSE file at the root of this repository.\n\n";
const HEADER_RS: &str = "// Copyright Materialize, Inc. and contributors. All rights reserved.\n//\n// Use of this software is governed by the Business Source License\n// included in the LICENSE file at the root of this repository.\n\n";

fn suffix(r: u32) -> String {
    if r == 0 {
        String::new()
    } else {
        format!("-{r}")
    }
}

fn py_suffix(r: u32) -> String {
    if r == 0 {
        String::new()
    } else {
        format!("_{r}")
    }
}

fn camel(s: &str) -> String {
    s.split(['-', '_'])
        .filter(|p| !p.is_empty())
        .map(|p| {
            let mut c = p.chars();
            match c.next() {
                Some(f) => f.to_ascii_uppercase().to_string() + c.as_str(),
                None => String::new(),
            }
        })
        .collect()
}

fn snake(s: &str) -> String {
    s.replace('-', "_")
}

/// The whole model, before it is written out.
struct Model {
    crates: Vec<Crate>,
    excluded: Vec<String>,
    images: Vec<Image>,
    services: Vec<Service>,
    /// Composition name and the services (indices) it runs.
    compositions: Vec<(String, Vec<usize>)>,
}

/// Writes the repository (see the module docs) into `dir`, which must not
/// exist or be empty. Requires the `git` binary.
pub fn generate(dir: &Path, scale: u32, seed: u64) -> io::Result<GenSummary> {
    let scale = scale.max(1);
    if dir.exists() && std::fs::read_dir(dir)?.next().is_some() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("`{}` exists and is not empty", dir.display()),
        ));
    }
    std::fs::create_dir_all(dir)?;
    let Generated {
        tree,
        model,
        import_graph,
        steps,
    } = build(scale, seed);

    // The feature change: a Rust file of a leaf (bin) crate that owns a tool
    // image, a Python service module, a doc page.
    let leaf = model
        .crates
        .iter()
        .position(|c| c.is_bin && c.word == "sqllogictest")
        .ok_or_else(|| io::Error::other("generator: no sqllogictest crate"))?;
    let leaf_crate = &model.crates[leaf];
    let changed_rust_file = format!("{}/src/{}.rs", leaf_crate.dir, leaf_crate.modules[0]);
    let changed_python_module =
        "misc/python/materialize/mzcompose/services/toxiproxy.py".to_string();
    let changed_doc = "doc/user/content/overview/page-0.md".to_string();
    for p in [&changed_rust_file, &changed_python_module, &changed_doc] {
        if !tree.files.contains_key(p) {
            return Err(io::Error::other(format!(
                "generator: `{p}` was not generated"
            )));
        }
    }

    let git = Git::new(dir)?;
    write_tree(dir, &tree)?;
    git.run(&["init", "-q", "-b", "main"])?;
    git.commit_all("Initial import", 0)?;
    // Second commit on main, before the branch point.
    append(
        dir,
        "README.md",
        "\nSee doc/developer for the developer guide.\n",
    )?;
    git.commit_all("README: point to the developer guide", 1)?;
    git.run(&["checkout", "-q", "-b", "feature"])?;
    append(
        dir,
        &changed_rust_file,
        "\n/// Added on the feature branch.\npub fn feature_flag() -> bool {\n    true\n}\n",
    )?;
    append(
        dir,
        &changed_python_module,
        "\n\nTOXIPROXY_FEATURE_TIMEOUT = \"30s\"\n",
    )?;
    append(
        dir,
        &changed_doc,
        "\nA paragraph added on the feature branch.\n",
    )?;
    git.commit_all("sqllogictest: feature flag; toxiproxy: timeout", 2)?;
    // Main moves on after the branch point: `main...feature` must ignore this.
    git.run(&["checkout", "-q", "main"])?;
    append(dir, "doc/developer/guide.md", "\nMain moved on.\n")?;
    git.commit_all("doc: main moves on", 3)?;
    let main_commit = git.output(&["rev-parse", "HEAD"])?;
    git.run(&["checkout", "-q", "feature"])?;
    let feature_commit = git.output(&["rev-parse", "HEAD"])?;
    git.cleanup();

    let mut changed = vec![
        changed_rust_file.clone(),
        changed_python_module.clone(),
        changed_doc,
    ];
    changed.sort();
    let mut summary = truth(
        &model,
        &import_graph,
        &steps,
        leaf,
        &changed,
        &changed_python_module,
    );
    summary.files = tree.files.len();
    summary.crates = model.crates.len();
    summary.excluded_crates = model.excluded.len();
    summary.images = model.images.len();
    summary.compositions = model.compositions.len();
    summary.python_modules = tree
        .files
        .keys()
        .filter(|p| p.starts_with("misc/python/materialize/") && p.ends_with(".py"))
        .count();
    summary.steps = steps.len();
    summary.changed = changed;
    summary.changed_crate = leaf_crate.name.clone();
    summary.changed_rust_file = changed_rust_file;
    summary.changed_python_module = changed_python_module;
    summary.main_commit = main_commit;
    summary.feature_commit = feature_commit;
    Ok(summary)
}

struct Generated {
    tree: Tree,
    model: Model,
    import_graph: BTreeMap<String, Vec<String>>,
    steps: Vec<StepInfo>,
}

/// The whole tree in memory (a pure function of scale and seed).
fn build(scale: u32, seed: u64) -> Generated {
    let mut rng = SplitMix64::new(seed ^ u64::from(scale).wrapping_mul(0x1000_0000_01b3));
    let mut tree = Tree {
        files: BTreeMap::new(),
    };
    let model = build_model(&mut rng, scale);
    emit_cargo(&mut tree, &mut rng, &model);
    emit_images(&mut tree, &model);
    let import_graph = emit_python(&mut tree, &mut rng, &model, scale);
    let steps = emit_pipeline(&mut tree, &mut rng, &model, scale);
    emit_glue(&mut tree);
    emit_filler(&mut tree, &mut rng, &model, scale);
    Generated {
        tree,
        model,
        import_graph,
        steps,
    }
}

fn build_model(rng: &mut SplitMix64, scale: u32) -> Model {
    let mut crates: Vec<Crate> = Vec::new();
    let mut lib_indices: Vec<usize> = Vec::new();
    for r in 0..scale {
        let sfx = suffix(r);
        let first_lib = lib_indices.len();
        for (j, w) in LIB_WORDS.iter().enumerate() {
            let word = format!("{w}{sfx}");
            let i = crates.len();
            let mut deps = BTreeSet::new();
            if !lib_indices.is_empty() {
                // `ore` first, then a few near neighbours and far ones.
                if j > 0 || r > 0 {
                    deps.insert(lib_indices[0]);
                }
                let n = 1 + rng.below(5);
                for _ in 0..n {
                    let k = if rng.chance(60) && lib_indices.len() > first_lib {
                        let span = (lib_indices.len() - first_lib).min(12);
                        lib_indices[lib_indices.len() - 1 - rng.below(span)]
                    } else {
                        lib_indices[rng.below(lib_indices.len())]
                    };
                    deps.insert(k);
                }
            }
            let mut build_deps = Vec::new();
            if j > 2 && rng.chance(10) {
                build_deps.push(lib_indices[first_lib + 1]);
            }
            let mut dev_deps = Vec::new();
            if !lib_indices.is_empty() && rng.chance(20) {
                let k = lib_indices[rng.below(lib_indices.len())];
                if !deps.contains(&k) {
                    dev_deps.push(k);
                }
            }
            let n_mod = 6 + rng.below(20);
            let modules = (0..n_mod).map(|m| module_name(rng, m)).collect();
            let examples = if j == 10 {
                vec![format!("{word}-bench")]
            } else {
                Vec::new()
            };
            crates.push(Crate {
                name: format!("mz-{word}"),
                dir: format!("src/{word}"),
                word,
                deps: deps.into_iter().collect(),
                build_deps,
                dev_deps,
                bins: Vec::new(),
                examples,
                modules,
                is_bin: false,
                bin_style: 0,
            });
            lib_indices.push(i);
        }
        for (j, w) in BIN_WORDS.iter().enumerate() {
            let word = format!("{w}{sfx}");
            let mut deps = BTreeSet::new();
            let n = 3 + rng.below(8);
            for _ in 0..n {
                deps.insert(lib_indices[first_lib + rng.below(lib_indices.len() - first_lib)]);
            }
            // environmentd and clusterd pull in most of the stack.
            if j < 2 {
                for &k in &lib_indices[first_lib..] {
                    if rng.chance(40) {
                        deps.insert(k);
                    }
                }
            }
            let bin_style = j % 3;
            let mut bins = vec![if bin_style == 2 {
                format!("mz-{word}")
            } else {
                word.clone()
            }];
            if j % 6 == 3 {
                bins.push(format!("{word}-admin"));
            }
            let n_mod = 4 + rng.below(12);
            let modules = (0..n_mod).map(|m| module_name(rng, m)).collect();
            crates.push(Crate {
                name: format!("mz-{word}"),
                dir: format!("src/{word}"),
                word,
                deps: deps.into_iter().collect(),
                build_deps: Vec::new(),
                dev_deps: Vec::new(),
                bins,
                examples: Vec::new(),
                modules,
                is_bin: true,
                bin_style,
            });
        }
    }

    // Images.
    let mut images = Vec::new();
    for r in 0..scale {
        let sfx = suffix(r);
        let bin_crates: Vec<usize> = crates
            .iter()
            .enumerate()
            .filter(|(_, c)| c.is_bin && c.word.ends_with(&sfx) && crate_replica(c, scale) == r)
            .map(|(i, _)| i)
            .collect();
        let img = |name: String, dir: String, mzfrom: Vec<String>, cargo: Vec<usize>| Image {
            name,
            dir,
            mzfrom,
            cargo_crates: cargo,
        };
        images.push(img(
            format!("ubuntu-base{sfx}"),
            format!("misc/images/ubuntu-base{sfx}"),
            vec![],
            vec![],
        ));
        images.push(img(
            format!("prod-base{sfx}"),
            format!("misc/images/prod-base{sfx}"),
            vec![format!("ubuntu-base{sfx}")],
            vec![],
        ));
        images.push(img(
            format!("console{sfx}"),
            format!("misc/images/console{sfx}"),
            vec![],
            vec![],
        ));
        images.push(img(
            format!("materialized-base{sfx}"),
            format!("misc/images/materialized-base{sfx}"),
            vec![format!("console{sfx}"), format!("ubuntu-base{sfx}")],
            vec![],
        ));
        images.push(img(
            format!("materialized{sfx}"),
            format!("misc/images/materialized{sfx}"),
            vec![format!("materialized-base{sfx}")],
            vec![bin_crates[0], bin_crates[1]],
        ));
        for &c in &bin_crates {
            let cr = &crates[c];
            images.push(img(
                cr.word.clone(),
                format!("{}/ci", cr.dir),
                vec![format!("prod-base{sfx}")],
                vec![c],
            ));
        }
        // An image built from an example.
        let ex = crates
            .iter()
            .position(|c| !c.examples.is_empty() && crate_replica(c, scale) == r)
            .unwrap_or(0);
        images.push(img(
            format!("{}-example", crates[ex].word),
            format!("misc/images/{}-example", crates[ex].word),
            vec![format!("ubuntu-base{sfx}")],
            vec![ex],
        ));
        for (i, (n, _)) in THIRD_PARTY.iter().enumerate() {
            let mzfrom = if i % 3 == 0 {
                vec![format!("ubuntu-base{sfx}")]
            } else {
                vec![]
            };
            images.push(img(
                format!("{n}{sfx}"),
                format!("misc/images/{n}{sfx}"),
                mzfrom,
                vec![],
            ));
        }
        for k in 0..(45 - 5 - bin_crates.len() - 1 - THIRD_PARTY.len()) {
            images.push(img(
                format!("tool-{k}{sfx}"),
                format!("misc/images/tool-{k}{sfx}"),
                vec![format!("prod-base{sfx}")],
                vec![],
            ));
        }
    }

    // Python services: one per composable image, plus external ones.
    let mut services = Vec::new();
    for r in 0..scale {
        let sfx = suffix(r);
        let psfx = py_suffix(r);
        for im in images.iter().filter(|i| i.name.ends_with(&sfx) || r == 0) {
            if image_replica(&im.name, scale) != r {
                continue;
            }
            let base = im.name.strip_suffix(&sfx).unwrap_or(&im.name);
            if [
                "ubuntu-base",
                "prod-base",
                "materialized-base",
                "console",
                "environmentd",
            ]
            .contains(&base)
                || base.starts_with("tool-")
            {
                continue;
            }
            services.push(Service {
                class: format!(
                    "{}{}",
                    camel(base),
                    if r == 0 { String::new() } else { r.to_string() }
                ),
                module: format!("{}{psfx}", snake(base)),
                image: Some(im.name.clone()),
            });
        }
        for (n, _) in EXTERNAL_SERVICES {
            services.push(Service {
                class: format!(
                    "{}{}",
                    camel(n),
                    if r == 0 { String::new() } else { r.to_string() }
                ),
                module: format!("{}{psfx}", snake(n)),
                image: None,
            });
        }
    }

    // Compositions: each runs a few services.
    let mut compositions = Vec::new();
    let n_comp = 100 * scale as usize;
    for i in 0..n_comp {
        let r = (i / 100) as u32;
        let w = COMP_WORDS[i % COMP_WORDS.len()];
        let name = if i < COMP_WORDS.len() {
            w.to_string()
        } else {
            format!("{w}-{}", i / COMP_WORDS.len())
        };
        let replica: Vec<usize> = services
            .iter()
            .enumerate()
            .filter(|(_, s)| service_replica(&s.module, scale) == r)
            .map(|(k, _)| k)
            .collect();
        let mut used = BTreeSet::new();
        let by_class = |c: &str| {
            replica
                .iter()
                .copied()
                .find(|&k| services[k].class.trim_end_matches(char::is_numeric) == c)
        };
        if rng.chance(85)
            && let Some(k) = by_class("Materialized")
        {
            used.insert(k);
        }
        if rng.chance(60)
            && let Some(k) = by_class("Testdrive")
        {
            used.insert(k);
        }
        // Make sure the changed tool and the changed module are used somewhere, not everywhere.
        if i % 100 == 7 || i % 100 == 41 {
            if let Some(k) = by_class("Sqllogictest") {
                used.insert(k);
            }
            if let Some(k) = by_class("Toxiproxy") {
                used.insert(k);
            }
        }
        for _ in 0..1 + rng.below(4) {
            let k = *rng.pick(&replica);
            let cls = services[k]
                .class
                .trim_end_matches(char::is_numeric)
                .to_string();
            // The changed tool's and module's users are chosen above.
            if cls != "Sqllogictest" && cls != "Toxiproxy" {
                used.insert(k);
            }
        }
        compositions.push((name, used.into_iter().collect()));
    }
    Model {
        crates,
        excluded: vec!["misc/wasm/sql-wasm".into(), "misc/wasm/repr-wasm".into()],
        images,
        services,
        compositions,
    }
}

fn crate_replica(c: &Crate, scale: u32) -> u32 {
    for r in (1..scale).rev() {
        if c.word.ends_with(&format!("-{r}")) {
            return r;
        }
    }
    0
}

fn image_replica(name: &str, scale: u32) -> u32 {
    for r in (1..scale).rev() {
        if name.ends_with(&format!("-{r}")) {
            return r;
        }
    }
    0
}

fn service_replica(module: &str, scale: u32) -> u32 {
    for r in (1..scale).rev() {
        if module.ends_with(&format!("_{r}")) {
            return r;
        }
    }
    0
}

fn module_name(rng: &mut SplitMix64, m: usize) -> String {
    const PARTS: &[&str] = &[
        "codec", "config", "metrics", "error", "client", "server", "state", "render", "plan",
        "optimize", "cache", "trace", "schema", "types", "util", "stats", "fetch", "write", "read",
        "batch", "operator", "source", "sink", "catalog", "command", "response", "protocol",
    ];
    format!("{}_{m}", rng.pick(PARTS))
}

fn emit_cargo(tree: &mut Tree, rng: &mut SplitMix64, model: &Model) {
    let mut root = String::from("[workspace]\nmembers = [\n");
    for c in &model.crates {
        let _ = writeln!(root, "    \"{}\",", c.dir);
    }
    root.push_str("]\nexclude = [\n    \"misc/wasm/*\",\n    \"misc/fuzz\",\n]\nresolver = \"2\"\n\n[workspace.package]\nedition = \"2024\"\nrust-version = \"1.89.0\"\n\n[profile.dev]\nsplit-debuginfo = \"unpacked\"\n\n[profile.release]\ndebug = 1\n");
    tree.add("Cargo.toml", root);
    let mut lock = String::from(
        "# This file is automatically @generated by Cargo.\n# It is not intended for manual editing.\nversion = 4\n",
    );
    for c in &model.crates {
        let _ = write!(
            lock,
            "\n[[package]]\nname = \"{}\"\nversion = \"0.0.0\"\ndependencies = [\n",
            c.name
        );
        for &d in &c.deps {
            let _ = writeln!(lock, " \"{}\",", model.crates[d].name);
        }
        lock.push_str("]\n");
    }
    tree.add("Cargo.lock", lock);

    for c in &model.crates {
        let mut t = format!(
            "[package]\nname = \"{}\"\ndescription = \"The {} component.\"\nversion = \"0.0.0\"\nedition.workspace = true\nrust-version.workspace = true\npublish = false\n",
            c.name, c.word
        );
        let bin_style = c.bin_style;
        if c.is_bin && bin_style == 0 {
            let _ = write!(
                t,
                "\n[[bin]]\nname = \"{}\"\npath = \"src/main.rs\"\n",
                c.bins[0]
            );
        }
        t.push_str("\n[dependencies]\nanyhow = \"1.0.98\"\n");
        for (k, &d) in c.deps.iter().enumerate() {
            let dep = &model.crates[d];
            if k % 7 == 3 {
                let _ = writeln!(
                    t,
                    "{} = {{ path = \"../{}\", package = \"{}\" }}",
                    snake(&dep.word),
                    dep.word,
                    dep.name
                );
            } else {
                let _ = writeln!(
                    t,
                    "{} = {{ path = \"../{}\", default-features = false }}",
                    dep.name, dep.word
                );
            }
        }
        t.push_str("serde = { version = \"1.0.219\", features = [\"derive\"] }\ntokio = { version = \"1.45.0\", features = [\"rt\"] }\n");
        if !c.dev_deps.is_empty() || !c.examples.is_empty() {
            t.push_str("\n[dev-dependencies]\n");
            for &d in &c.dev_deps {
                let dep = &model.crates[d];
                let _ = writeln!(t, "{} = {{ path = \"../{}\" }}", dep.name, dep.word);
            }
            t.push_str("criterion = \"0.6.0\"\n");
        }
        if !c.build_deps.is_empty() {
            t.push_str("\n[build-dependencies]\n");
            for &d in &c.build_deps {
                let dep = &model.crates[d];
                let _ = writeln!(t, "{} = {{ path = \"../{}\" }}", dep.name, dep.word);
            }
        }
        t.push_str("\n[features]\ndefault = []\n\n[package.metadata.cargo-udeps.ignore]\nnormal = [\"workspace-hack\"]\n");
        tree.add(format!("{}/Cargo.toml", c.dir), t);

        let mut root_rs = String::from(HEADER_RS);
        let _ = writeln!(root_rs, "//! The {} crate.\n", c.word);
        for m in &c.modules {
            let _ = writeln!(root_rs, "pub mod {m};");
        }
        if c.is_bin {
            if bin_style == 1 {
                tree.add(format!("{}/src/lib.rs", c.dir), root_rs);
                for b in &c.bins {
                    tree.add(
                        format!("{}/src/bin/{b}.rs", c.dir),
                        format!("{HEADER_RS}fn main() {{\n    println!(\"{b}\");\n}}\n"),
                    );
                }
            } else {
                root_rs.push_str("\nfn main() {\n    println!(\"hello\");\n}\n");
                tree.add(format!("{}/src/main.rs", c.dir), root_rs);
            }
            if bin_style != 1 && c.bins.len() > 1 {
                for b in &c.bins[1..] {
                    tree.add(
                        format!("{}/src/bin/{b}.rs", c.dir),
                        format!("{HEADER_RS}fn main() {{\n    println!(\"{b}\");\n}}\n"),
                    );
                }
            }
        } else {
            tree.add(format!("{}/src/lib.rs", c.dir), root_rs);
        }
        for m in &c.modules {
            tree.add(
                format!("{}/src/{m}.rs", c.dir),
                rust_module(rng, c, m, model),
            );
        }
        for e in &c.examples {
            tree.add(
                format!("{}/examples/{e}.rs", c.dir),
                format!("{HEADER_RS}fn main() {{\n    println!(\"{e}\");\n}}\n"),
            );
        }
        if !c.build_deps.is_empty() {
            tree.add(
                format!("{}/build.rs", c.dir),
                format!("{HEADER_RS}fn main() {{\n    println!(\"cargo:rerun-if-changed=build.rs\");\n}}\n"),
            );
        }
        if rng.chance(40) {
            tree.add(
                format!("{}/tests/integration.rs", c.dir),
                format!("{HEADER_RS}#[test]\nfn works() {{\n    assert_eq!(2 + 2, 4);\n}}\n"),
            );
        }
        if rng.chance(25) {
            tree.add(
                format!("{}/src/{}.proto", c.dir, snake(&c.word)),
                format!("syntax = \"proto3\";\n\npackage mz_{};\n\nmessage Proto{} {{\n    uint64 id = 1;\n}}\n", snake(&c.word), camel(&c.word)),
            );
        }
    }
    for dir in &model.excluded {
        let name = dir.rsplit('/').next().unwrap_or("wasm");
        tree.add(
            format!("{dir}/Cargo.toml"),
            format!("[package]\nname = \"mz-{name}\"\nversion = \"0.0.0\"\nedition = \"2024\"\n\n[lib]\ncrate-type = [\"cdylib\"]\n"),
        );
        tree.add(
            format!("{dir}/src/lib.rs"),
            format!("{HEADER_RS}pub fn wasm() {{}}\n"),
        );
    }
    tree.add(
        "misc/fuzz/Cargo.toml",
        "[package]\nname = \"mz-fuzz\"\nversion = \"0.0.0\"\nedition = \"2024\"\n",
    );
    tree.add(
        "misc/fuzz/src/lib.rs",
        format!("{HEADER_RS}pub fn fuzz() {{}}\n"),
    );
    tree.add(
        ".cargo/config.toml",
        "[build]\nrustflags = [\"--cfg=tokio_unstable\"]\n",
    );
}

fn rust_module(rng: &mut SplitMix64, c: &Crate, m: &str, model: &Model) -> String {
    let mut t = String::from(HEADER_RS);
    let _ = writeln!(t, "//! `{m}` of {}.\n", c.name);
    if let Some(&d) = c.deps.first() {
        let _ = writeln!(
            t,
            "#[allow(unused_imports)]\nuse {}::*;\n",
            snake(&model.crates[d].name)
        );
    }
    for f in 0..2 + rng.below(5) {
        let n = rng.next_u64() % 10_000;
        let _ = write!(
            t,
            "/// Computes the {m} value number {f}.\npub fn {m}_{f}(x: u64) -> u64 {{\n    x.wrapping_mul({n}).rotate_left({}) ^ 0x{:x}\n}}\n\n",
            rng.below(63),
            rng.next_u64() & 0xffff_ffff
        );
    }
    let _ = write!(
        t,
        "#[derive(Debug, Clone, PartialEq, Eq)]\npub struct {}State {{\n    pub id: u64,\n    pub name: String,\n}}\n",
        camel(m)
    );
    t
}

fn emit_images(tree: &mut Tree, model: &Model) {
    for im in &model.images {
        let mut y = format!("{HEADER_HASH}name: {}\n", im.name);
        let base = im.name.split('-').next().unwrap_or("");
        if base == "console" {
            y.push_str("description: The web console.\npre-image:\n  - type: copy\n    source: misc/www\n    destination: www\n    matching: \"*.js\"\n");
        } else if !im.cargo_crates.is_empty() {
            y.push_str("pre-image:\n  - type: cargo-build\n");
            let mut bins = Vec::new();
            let mut examples = Vec::new();
            for &c in &im.cargo_crates {
                let cr = &model.crates[c];
                if cr.is_bin {
                    bins.push(cr.bins[0].clone());
                } else {
                    examples.extend(cr.examples.iter().cloned());
                }
            }
            match bins.len() {
                0 => {}
                1 => {
                    let _ = writeln!(y, "    bin: {}", bins[0]);
                }
                _ => {
                    y.push_str("    bin:\n");
                    for b in &bins {
                        let _ = writeln!(y, "      - {b}");
                    }
                }
            }
            if !examples.is_empty() {
                let _ = writeln!(y, "    example: {}", examples[0]);
            }
            y.push_str("    strip: false\n");
        } else if im.name.starts_with("tool-") {
            y.push_str("publish: false\nmainline: false\n");
        }
        tree.add(format!("{}/mzbuild.yml", im.dir), y);
        let mut d = String::from(HEADER_HASH);
        if im.mzfrom.is_empty() {
            let ext = THIRD_PARTY
                .iter()
                .find(|(n, _)| im.name.starts_with(n))
                .map_or("ubuntu:noble-20250415.1", |(_, i)| i);
            let _ = writeln!(d, "FROM {ext}\n");
        }
        for (k, f) in im.mzfrom.iter().enumerate() {
            if k + 1 < im.mzfrom.len() {
                let _ = writeln!(d, "MZFROM {f} AS {f}");
            } else {
                let _ = writeln!(d, "MZFROM {f}\n");
            }
        }
        let _ = write!(
            d,
            "RUN apt-get update \\\n    && apt-get install -y --no-install-recommends ca-certificates curl \\\n    && rm -rf /var/lib/apt/lists/*\n\nCOPY . /usr/local/share/{}/\n\nENTRYPOINT [\"tini\", \"--\"]\n",
            im.name
        );
        tree.add(format!("{}/Dockerfile", im.dir), d);
        if im.dir.starts_with("misc/images/") {
            tree.add_exec(
                format!("{}/entrypoint.sh", im.dir),
                format!("#!/usr/bin/env bash\n{HEADER_HASH}set -euo pipefail\nexec \"$@\"\n"),
            );
        }
    }
}

/// Writes the Python tree and the compositions; returns the load-time import
/// graph (dotted module -> modules it imports at load time; compositions as
/// `composition:<name>`), for the ground truth.
fn emit_python(
    tree: &mut Tree,
    rng: &mut SplitMix64,
    model: &Model,
    scale: u32,
) -> BTreeMap<String, Vec<String>> {
    let mut imports: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut add_py = |tree: &mut Tree, module: &str, text: String, load: Vec<String>| {
        let rel = module.replace('.', "/");
        let is_pkg = tree
            .files
            .contains_key(&format!("misc/python/{rel}/__init__.py"))
            || text.starts_with("# package");
        let path = if is_pkg {
            format!("misc/python/{rel}/__init__.py")
        } else {
            format!("misc/python/{rel}.py")
        };
        tree.add(path, text);
        imports.insert(module.to_string(), load);
    };
    add_py(
        tree,
        "materialize",
        format!(
            "# package\n{HEADER_HASH}\"\"\"Internal Python tooling.\"\"\"\n\nimport os\nfrom pathlib import Path\n\nMZ_ROOT = Path(os.environ.get(\"MZ_ROOT\", \".\"))\n"
        ),
        vec![],
    );
    add_py(
        tree,
        "materialize.ui",
        format!(
            "{HEADER_HASH}import sys\n\n\ndef say(msg: str) -> None:\n    print(msg, file=sys.stderr)\n"
        ),
        vec![],
    );
    add_py(
        tree,
        "materialize.util",
        format!(
            "{HEADER_HASH}import json\nimport random\n\nfrom materialize import ui\n\n\nclass PropagatingThread:\n    pass\n\n\ndef all_subclasses(cls):\n    from materialize.mzcompose import loader\n\n    return cls.__subclasses__()\n"
        ),
        vec!["materialize.ui".into()],
    );
    add_py(
        tree,
        "materialize.docker",
        format!("{HEADER_HASH}MZ_GHCR_DEFAULT = \"1\"\n"),
        vec![],
    );
    add_py(
        tree,
        "materialize.buildkite",
        format!(
            "{HEADER_HASH}import os\n\nfrom materialize import ui, util\n\n\ndef is_in_buildkite() -> bool:\n    return \"BUILDKITE\" in os.environ\n"
        ),
        vec!["materialize.ui".into(), "materialize.util".into()],
    );
    add_py(
        tree,
        "materialize.cli",
        format!("# package\n{HEADER_HASH}"),
        vec![],
    );
    add_py(
        tree,
        "materialize.cli.ci_annotate_errors",
        format!("{HEADER_HASH}from materialize import buildkite\n"),
        vec!["materialize.buildkite".into()],
    );
    add_py(
        tree,
        "materialize.mzcompose",
        format!(
            "# package\n{HEADER_HASH}from materialize import ui\n\nDEFAULT_MZ_VOLUMES = [\"mzdata:/mzdata\", \"mydata:/var/lib/mysql-files\"]\nDEFAULT_MZ_ENVIRONMENT_ID = \"mzcompose-test-00000000\"\n"
        ),
        vec!["materialize.ui".into()],
    );
    add_py(
        tree,
        "materialize.mzcompose.loader",
        format!("{HEADER_HASH}composition_path = None\n"),
        vec![],
    );
    add_py(
        tree,
        "materialize.mzcompose.service",
        format!(
            "{HEADER_HASH}from typing import TypedDict\n\n\nclass ServiceConfig(TypedDict, total=False):\n    mzbuild: str\n    image: str\n    command: list[str]\n\n\nclass Service:\n    def __init__(self, name: str, config: ServiceConfig) -> None:\n        self.name = name\n        self.config = config\n"
        ),
        vec![],
    );
    add_py(
        tree,
        "materialize.mzcompose.composition",
        format!(
            "{HEADER_HASH}import argparse\nfrom typing import TYPE_CHECKING\n\nfrom materialize import ui, util\nfrom materialize.mzcompose import loader\nfrom materialize.mzcompose.service import Service\n\nif TYPE_CHECKING:\n    from materialize.buildkite import is_in_buildkite\n\n\nclass WorkflowArgumentParser(argparse.ArgumentParser):\n    pass\n\n\nclass Composition:\n    def up(self, *services: str) -> None:\n        from materialize import docker\n\n        ui.say(\" \".join(services))\n"
        ),
        vec![
            "materialize.ui".into(),
            "materialize.util".into(),
            "materialize.mzcompose.loader".into(),
            "materialize.mzcompose.service".into(),
        ],
    );
    add_py(
        tree,
        "materialize.mzcompose.services",
        format!("# package\n{HEADER_HASH}"),
        vec![],
    );
    let mz = "materialize.mzcompose";
    let svc_imports = vec![format!("{mz}.service"), mz.to_string()];
    for (k, s) in model.services.iter().enumerate() {
        let m = format!("{mz}.services.{}", s.module);
        let name = s.module.replace('_', "-");
        let head = format!(
            "{HEADER_HASH}from materialize.mzcompose import DEFAULT_MZ_VOLUMES\nfrom materialize.mzcompose.service import (\n    Service,\n    ServiceConfig,\n)\n\n\n"
        );
        let body = match &s.image {
            None => {
                let ext = EXTERNAL_SERVICES
                    .iter()
                    .find(|(n, _)| s.module.starts_with(&snake(n)))
                    .map_or("busybox:1", |(_, i)| i);
                format!(
                    "class {c}(Service):\n    def __init__(self, name: str = \"{name}\") -> None:\n        config: ServiceConfig = {{\"image\": \"{ext}\", \"ports\": [8080]}}\n        super().__init__(name=name, config=config)\n",
                    c = s.class
                )
            }
            Some(img) => match k % 5 {
                0 => format!(
                    "class {c}(Service):\n    def __init__(self, name: str = \"{name}\", ports: list[str] = [\"8080\"]) -> None:\n        config: ServiceConfig = {{\n            \"mzbuild\": \"{img}\",\n            \"ports\": ports,\n            \"volumes\": DEFAULT_MZ_VOLUMES,\n        }}\n        super().__init__(name=name, config=config)\n",
                    c = s.class
                ),
                1 => format!(
                    "class {c}(Service):\n    def __init__(self, name: str = \"{name}\", image: str | None = None) -> None:\n        config: ServiceConfig = {{}}\n        if image:\n            config[\"image\"] = image\n        else:\n            config[\"mzbuild\"] = \"{img}\"\n        super().__init__(name=name, config=config)\n",
                    c = s.class
                ),
                2 => format!(
                    "class {c}(Service):\n    def __init__(\n        self,\n        name: str = \"{name}\",\n        mzbuild: str = \"{img}\",\n        environment: list[str] = [],\n    ) -> None:\n        config: ServiceConfig = {{\"mzbuild\": mzbuild, \"environment\": environment}}\n        super().__init__(name=name, config=config)\n\n\nclass {c}Replica({c}):\n    pass\n",
                    c = s.class
                ),
                3 => format!(
                    "class {c}(Service):\n    def __init__(self, name: str = \"{name}\") -> None:\n        image_name = \"{img}\"\n        config: ServiceConfig = {{\"command\": [\"--log-filter=info\"]}}\n        config[\"mzbuild\"] = image_name\n        super().__init__(name=name, config=config)\n",
                    c = s.class
                ),
                _ => format!(
                    "class _{c}Base(Service):\n    def __init__(self, name: str, mzbuild: str = \"{img}\") -> None:\n        config: ServiceConfig = {{\"mzbuild\": mzbuild}}\n        super().__init__(name=name, config=config)\n\n\nclass {c}(_{c}Base):\n    def __init__(self, name: str = \"{name}\") -> None:\n        super().__init__(name=name)\n",
                    c = s.class
                ),
            },
        };
        add_py(tree, &m, format!("{head}{body}"), svc_imports.clone());
    }
    // metadata_store: an alias computed by a call (SPEC §4.1).
    let pg = model.services.iter().find(|s| s.class == "Postgres");
    let cr = model.services.iter().find(|s| s.class == "Cockroach");
    if let (Some(pg), Some(cr)) = (pg, cr) {
        add_py(
            tree,
            &format!("{mz}.services.metadata_store"),
            format!(
                "{HEADER_HASH}from materialize.mzcompose.services.{} import Cockroach\nfrom materialize.mzcompose.services.{} import Postgres\n\n\ndef _get_cockroach_or_postgres_metadata():\n    import os\n\n    return Cockroach if os.environ.get(\"CRDB\") else Postgres\n\n\nCockroachOrPostgresMetadata = _get_cockroach_or_postgres_metadata()\n",
                cr.module, pg.module
            ),
            vec![
                format!("{mz}.services.{}", cr.module),
                format!("{mz}.services.{}", pg.module),
            ],
        );
    }

    // Filler packages: a DAG of modules, mostly chained within a package.
    let mut all: Vec<String> = Vec::new();
    for r in 0..scale {
        let psfx = py_suffix(r);
        for p in PY_PACKAGES {
            let pkg = format!("materialize.{p}{psfx}");
            add_py(tree, &pkg, format!("# package\n{HEADER_HASH}"), vec![]);
            let first = all.len();
            let n = 44 + rng.below(8);
            for k in 0..n {
                let m = format!("{pkg}.{}", module_name(rng, k));
                let mut load = Vec::new();
                let mut text = String::from(HEADER_HASH);
                text.push_str("import json\nimport os\nfrom typing import TYPE_CHECKING\n\n");
                if all.len() > first && rng.chance(55) {
                    let t = all[first + rng.below(all.len() - first)].clone();
                    let (parent, leaf) = t.rsplit_once('.').unwrap_or(("materialize", &t));
                    let _ = writeln!(text, "from {parent} import {leaf}");
                    load.push(t);
                }
                if !all.is_empty() && rng.chance(8) {
                    let t = all[rng.below(all.len())].clone();
                    let _ = writeln!(text, "import {t}");
                    load.push(t);
                }
                if rng.chance(30) {
                    text.push_str("from materialize import ui\n");
                    load.push("materialize.ui".into());
                }
                if rng.chance(20) && !all.is_empty() {
                    let t = all[rng.below(all.len())].clone();
                    let _ = writeln!(text, "\nif TYPE_CHECKING:\n    import {t}\n");
                }
                let _ = write!(
                    text,
                    "\n\nclass {}Action:\n    \"\"\"An action (`import os` in a docstring is not an import).\"\"\"\n\n    def run(self) -> int:\n",
                    camel(&module_name(rng, k))
                );
                if rng.chance(30) && !all.is_empty() {
                    let t = all[rng.below(all.len())].clone();
                    let _ = writeln!(text, "        import {t}  # lazily, at run time\n");
                }
                let _ = writeln!(text, "        return {}\n", rng.below(1000));
                add_py(tree, &m, text, load);
                all.push(m);
            }
        }
    }
    // checks.all_checks: the dynamic import of every sibling (SPEC §4.2).
    let ac = "materialize.checks.all_checks";
    let mut siblings = Vec::new();
    for (k, dep) in all.iter().take(30).enumerate() {
        let m = format!("{ac}.check_{k}");
        add_py(
            tree,
            &m,
            format!(
                "{HEADER_HASH}from materialize.checks import {}\n\n\nclass Check{k}:\n    pass\n",
                dep.rsplit('.').next().unwrap_or("x")
            ),
            vec![dep.clone()],
        );
        siblings.push(m);
    }
    add_py(
        tree,
        ac,
        format!(
            "# package\n{HEADER_HASH}import importlib\nimport pkgutil\n\nfor module_info in pkgutil.iter_modules(__path__):\n    importlib.import_module(f\"{{__name__}}.{{module_info.name}}\")\n"
        ),
        siblings,
    );

    // Compositions.
    let mut comps = Vec::new();
    for (i, (name, used)) in model.compositions.iter().enumerate() {
        let r = (i / 100) as u32;
        let mut text = format!(
            "{HEADER_HASH}\"\"\"\nThe {name} tests.\n\"\"\"\n\nimport json\nimport random\n\nfrom materialize import buildkite, ui\nfrom materialize.mzcompose.composition import (\n    Composition,\n    WorkflowArgumentParser,\n)\n"
        );
        let mut load = vec![
            "materialize.buildkite".to_string(),
            "materialize.ui".into(),
            format!("{mz}.composition"),
        ];
        for &k in used {
            let s = &model.services[k];
            let _ = writeln!(text, "from {mz}.services.{} import {}", s.module, s.class);
            load.push(format!("{mz}.services.{}", s.module));
        }
        let metadata = r == 0 && i % 9 == 4;
        if metadata {
            let _ = writeln!(
                text,
                "from {mz}.services.metadata_store import CockroachOrPostgresMetadata"
            );
            load.push(format!("{mz}.services.metadata_store"));
        }
        let psfx = py_suffix(r);
        let checks = r == 0 && name == "platform-checks";
        if checks {
            text.push_str("from materialize.checks.all_checks import *  # noqa: F401\n");
            load.push(ac.to_string());
        }
        if rng.chance(50) {
            let p = rng.pick(PY_PACKAGES);
            let pkg_mods: Vec<&String> = all
                .iter()
                .filter(|m| m.starts_with(&format!("materialize.{p}{psfx}.")))
                .collect();
            if !pkg_mods.is_empty() {
                let t = pkg_mods[rng.below(pkg_mods.len())].clone();
                let (parent, leaf) = t.rsplit_once('.').unwrap_or(("materialize", &t));
                let _ = writeln!(text, "from {parent} import {leaf}");
                load.push(t);
            }
        }
        text.push_str("\nSERVICES = [\n");
        for &k in used {
            let s = &model.services[k];
            if s.class.starts_with("Testdrive") {
                let _ = writeln!(text, "    {}(default_timeout=\"300s\"),", s.class);
            } else {
                let _ = writeln!(text, "    {}(),", s.class);
            }
        }
        if metadata {
            text.push_str("    CockroachOrPostgresMetadata(),\n");
        }
        text.push_str("]\n\n\ndef workflow_default(c: Composition) -> None:\n    from materialize.mzcompose import loader\n\n    c.up(*[s.name for s in SERVICES])\n");
        let _ = write!(
            text,
            "\n\ndef workflow_{}(c: Composition, parser: WorkflowArgumentParser) -> None:\n    parser.add_argument(\"--seed\", type=int, default={})\n    args = parser.parse_args()\n    ui.say(json.dumps({{\"seed\": args.seed, \"r\": random.random()}}))\n",
            snake(name).replace(|c: char| !c.is_ascii_alphanumeric() && c != '_', "_"),
            rng.below(100_000)
        );
        tree.add(format!("test/{name}/mzcompose.py"), text);
        tree.add_exec(
            format!("test/{name}/mzcompose"),
            format!("#!/usr/bin/env bash\n{HEADER_HASH}exec \"$(dirname \"$0\")\"/../../bin/pyactivate -m materialize.cli.mzcompose \"$@\"\n"),
        );
        comps.push((name.clone(), load));
    }
    // Remember the load-time graph for the ground truth.
    let mut g = imports;
    for (name, load) in comps {
        g.insert(format!("composition:{name}"), load);
    }
    g
}

/// Steps of the pipeline, for the ground truth.
struct StepInfo {
    id: String,
    inputs: Vec<String>,
    compositions: Vec<String>,
    cloudtest: bool,
    depends_on: Vec<String>,
}

fn emit_pipeline(
    tree: &mut Tree,
    rng: &mut SplitMix64,
    model: &Model,
    scale: u32,
) -> Vec<StepInfo> {
    let mut y = format!(
        "{HEADER_HASH}# This file is processed by mkpipeline.py to trim unnecessary steps in PR\n# builds. The inputs for steps using the `mzcompose` plugin are computed\n# automatically. Inputs for other steps need to be manually listed in the\n# `inputs` key.\n\ndag: true\n\nenv:\n  CARGO_BUILD_JOBS: \"default\"\n\npriority: 20\n\nsteps:\n"
    );
    let mut steps: Vec<StepInfo> = Vec::new();
    let step = |y: &mut String,
                steps: &mut Vec<StepInfo>,
                s: StepInfo,
                indent: &str,
                label: &str,
                timeout: usize,
                queue: &str,
                extra: &str| {
        let _ = writeln!(y, "{indent}- id: {}", s.id);
        let _ = writeln!(y, "{indent}  label: \"{label}\"");
        if s.compositions.is_empty() && !s.cloudtest {
            let _ = writeln!(
                y,
                "{indent}  command: bin/ci-builder run stable bin/pyactivate -m ci.test.{}",
                snake(&s.id)
            );
        }
        if !s.inputs.is_empty() {
            let _ = writeln!(y, "{indent}  inputs:");
            for i in &s.inputs {
                let _ = writeln!(y, "{indent}    - \"{i}\"");
            }
        }
        match s.depends_on.len() {
            0 => {
                let _ = writeln!(y, "{indent}  depends_on: []");
            }
            1 => {
                let _ = writeln!(y, "{indent}  depends_on: {}", s.depends_on[0]);
            }
            _ => {
                let _ = writeln!(y, "{indent}  depends_on:");
                for d in &s.depends_on {
                    let _ = writeln!(y, "{indent}    - {d}");
                }
            }
        }
        let _ = writeln!(y, "{indent}  timeout_in_minutes: {timeout}");
        if !s.compositions.is_empty() || s.cloudtest {
            let _ = writeln!(y, "{indent}  plugins:");
        }
        for c in &s.compositions {
            let _ = writeln!(
                y,
                "{indent}    - ./ci/plugins/mzcompose:\n{indent}        composition: {c}"
            );
            y.push_str(extra);
        }
        if s.cloudtest {
            let _ = writeln!(
                y,
                "{indent}    - ./ci/plugins/cloudtest:\n{indent}        args: [-m=long, test/cloudtest/test_{}.py]",
                snake(&s.id)
            );
        }
        let _ = writeln!(y, "{indent}  agents:\n{indent}    queue: {queue}");
        y.push('\n');
        steps.push(s);
    };
    let si = |id: String, inputs: Vec<&str>, comps: Vec<String>, cloud: bool, deps: Vec<String>| {
        StepInfo {
            id,
            inputs: inputs.into_iter().map(String::from).collect(),
            compositions: comps,
            cloudtest: cloud,
            depends_on: deps,
        }
    };
    for r in 0..scale {
        let sfx = suffix(r);
        let build = format!("build-aarch64{sfx}");
        let _ = writeln!(
            y,
            "  - group: Builds{sfx}\n    key: builds{sfx}\n    steps:"
        );
        let ind = "      ";
        step(
            &mut y,
            &mut steps,
            si(
                format!("build-x86_64{sfx}"),
                vec!["*"],
                vec![],
                false,
                vec![],
            ),
            ind,
            ":rust: Build x86_64",
            60,
            "builder-linux-x86_64",
            "",
        );
        step(
            &mut y,
            &mut steps,
            si(build.clone(), vec!["*"], vec![], false, vec![]),
            ind,
            ":rust: Build aarch64",
            60,
            "builder-linux-aarch64-mem",
            "",
        );
        step(
            &mut y,
            &mut steps,
            si(
                format!("build-wasm{sfx}"),
                vec!["ci/deploy/npm.py", "bin/wasm-build", "misc/wasm", "src"],
                vec![],
                false,
                vec![],
            ),
            ind,
            ":rust: Build WASM",
            20,
            "hetzner-x86-64-4cpu-8gb",
            "",
        );
        step(
            &mut y,
            &mut steps,
            si(
                format!("devel-docker-tags{sfx}"),
                vec!["*"],
                vec![],
                false,
                vec![format!("build-x86_64{sfx}"), build.clone()],
            ),
            ind,
            "Tag development docker images",
            20,
            "linux-aarch64-small",
            "",
        );
        let _ = writeln!(y, "  - group: Lints{sfx}\n    key: lints{sfx}\n    steps:");
        let lints: [(&str, Vec<&str>); 6] = [
            ("lint-fast", vec!["*"]),
            (
                "lint-clippy",
                vec!["Cargo.lock", "Cargo.toml", "**/Cargo.toml", "**/*.rs"],
            ),
            (
                "lint-doctests",
                vec![
                    "Cargo.lock",
                    "Cargo.toml",
                    "**/Cargo.toml",
                    "**/*.rs",
                    "misc/helm-charts",
                ],
            ),
            ("lint-python", vec!["misc/python", "**/*.py"]),
            ("lint-docs", vec!["doc/user"]),
            ("lint-deps", vec!["Cargo.lock", "deny.toml"]),
        ];
        for (id, inputs) in lints {
            step(
                &mut y,
                &mut steps,
                si(format!("{id}{sfx}"), inputs, vec![], false, vec![]),
                ind,
                id,
                30,
                "hetzner-x86-64-16cpu-32gb",
                "",
            );
        }
        y.push_str("  - wait: ~\n\n");
        // Composition steps in groups of ten; every third composition gets a
        // second step with other args.
        let comps: Vec<&String> = model.compositions[(r as usize * 100)..(r as usize * 100 + 100)]
            .iter()
            .map(|c| &c.0)
            .collect();
        let mut units: Vec<(String, String, bool)> = Vec::new();
        for (k, c) in comps.iter().enumerate() {
            units.push(((*c).clone(), (*c).clone(), k % 2 == 0));
            if k % 3 == 0 {
                units.push((format!("{c}-long"), (*c).clone(), false));
            }
        }
        for (g, chunk) in units.chunks(10).enumerate() {
            let _ = writeln!(
                y,
                "  - group: \"Tests {g}{sfx}\"\n    key: tests-{g}{sfx}\n    steps:"
            );
            for (id, comp, own_dir) in chunk {
                let inputs = if *own_dir {
                    vec![format!("test/{comp}")]
                } else {
                    vec![]
                };
                let depends = if rng.chance(10) {
                    vec![format!("build-x86_64{sfx}")]
                } else {
                    vec![build.clone()]
                };
                let extra = if id.ends_with("-long") {
                    format!("{ind}        args: [--seed=1, --long]\n")
                } else {
                    String::new()
                };
                let s = StepInfo {
                    id: id.clone(),
                    inputs,
                    compositions: vec![comp.clone()],
                    cloudtest: false,
                    depends_on: depends,
                };
                let q = rng.pick(QUEUES).to_string();
                step(
                    &mut y,
                    &mut steps,
                    s,
                    ind,
                    &format!("{comp} tests"),
                    30 + rng.below(90),
                    &q,
                    &extra,
                );
            }
        }
        let _ = writeln!(
            y,
            "  - group: Cloudtest{sfx}\n    key: cloudtest{sfx}\n    steps:"
        );
        for k in 0..10 {
            step(
                &mut y,
                &mut steps,
                si(
                    format!("cloudtest-{k}{sfx}"),
                    vec![],
                    vec![],
                    true,
                    vec![build.clone()],
                ),
                ind,
                &format!("Cloudtest {k}"),
                60,
                "hetzner-aarch64-8cpu-16gb",
                "",
            );
        }
    }
    // Pad to ~150 trimmable steps per scale unit: checks on docs and web assets.
    let target = 150 * scale as usize;
    let mut k = 0;
    if steps.len() < target {
        y.push_str("  - group: Misc\n    key: misc\n    steps:\n");
    }
    while steps.len() < target {
        let inputs = if k % 2 == 0 {
            vec!["misc/www"]
        } else {
            vec!["doc/developer"]
        };
        step(
            &mut y,
            &mut steps,
            si(format!("misc-check-{k}"), inputs, vec![], false, vec![]),
            "      ",
            &format!("Misc check {k}"),
            10,
            "linux-aarch64-small",
            "",
        );
        k += 1;
    }
    tree.add("ci/test/pipeline.template.yml", y);
    steps
}

fn emit_glue(tree: &mut Tree) {
    for b in [
        "ci-builder",
        "mzcompose",
        "pyactivate",
        "environmentd",
        "wasm-build",
        "lint",
    ] {
        tree.add_exec(
            format!("bin/{b}"),
            format!("#!/usr/bin/env bash\n{HEADER_HASH}set -euo pipefail\n\n# {b}\nexec \"$(dirname \"$0\")\"/pyactivate -m materialize.cli.{} \"$@\"\n", snake(b)),
        );
    }
    tree.add("ci/builder/Dockerfile", format!("{HEADER_HASH}FROM ubuntu:noble-20250415.1\n\nARG ARCH_GCC\nARG RUST_VERSION\n\nRUN apt-get update && apt-get install -y curl git\n"));
    tree.add(
        "ci/builder/requirements.txt",
        "black==25.1.0\npytest==8.3.5\nruff==0.11.10\n",
    );
    tree.add_exec(
        "ci/builder/entrypoint.sh",
        "#!/usr/bin/env bash\nexec \"$@\"\n",
    );
    tree.add("ci/builder/stable.stamp", "2025-05-20\n");
    tree.add(
        "ci/plugins/mzcompose/plugin.yml",
        "name: mzcompose\nconfiguration:\n  properties:\n    composition:\n      type: string\n",
    );
    tree.add_exec(
        "ci/plugins/mzcompose/hooks/command",
        "#!/usr/bin/env bash\nset -euo pipefail\n",
    );
    tree.add("ci/plugins/cloudtest/plugin.yml", "name: cloudtest\n");
    tree.add_exec(
        "ci/plugins/cloudtest/hooks/command",
        "#!/usr/bin/env bash\nset -euo pipefail\n",
    );
    tree.add_exec(
        "ci/mkpipeline.sh",
        "#!/usr/bin/env bash\nset -euo pipefail\nexec bin/pyactivate -m ci.mkpipeline \"$@\"\n",
    );
    tree.add(
        "ci/mkpipeline.py",
        format!("{HEADER_HASH}def main() -> int:\n    return 0\n"),
    );
    tree.add(
        "ci/deploy/npm.py",
        format!("{HEADER_HASH}def main() -> int:\n    return 0\n"),
    );
    tree.add(
        "ci/nightly/pipeline.template.yml",
        "steps:\n  - id: nightly\n    command: true\n",
    );
    tree.add(
        ".gitignore",
        "/target\n*.pyc\n__pycache__/\n/misc/python/venv\n",
    );
    tree.add(
        "README.md",
        "# Materialize (synthetic)\n\nA generated monorepo for pipetrim's benchmarks.\n",
    );
    tree.add(
        "deny.toml",
        "[licenses]\nallow = [\"Apache-2.0\", \"MIT\"]\n",
    );
    tree.add(
        "pyproject.toml",
        "[tool.ruff]\ntarget-version = \"py310\"\n",
    );
    tree.add(
        "misc/python/requirements.txt",
        "psycopg==3.2.9\nrequests==2.32.3\n",
    );
    tree.add(
        "doc/developer/guide.md",
        "# Developer guide\n\nRead this first.\n",
    );
}

fn emit_filler(tree: &mut Tree, rng: &mut SplitMix64, model: &Model, scale: u32) {
    // Web assets for the console image's copy pre-image.
    for k in 0..40 * scale as usize {
        let ext = ["js", "css", "html", "js"][k % 4];
        tree.add(
            format!("misc/www/assets/a{k}.{ext}"),
            format!("/* asset {k} */\nconsole.log({});\n", rng.below(1 << 20)),
        );
    }
    // Testdrive scripts next to compositions.
    for (name, _) in &model.compositions {
        for k in 0..rng.below(12) {
            tree.add(
                format!("test/{name}/t{k}.td"),
                format!("# Test {k} of {name}.\n\n> CREATE TABLE t{k} (a int);\n> INSERT INTO t{k} VALUES ({});\n> SELECT count(*) FROM t{k};\n1\n", rng.below(1000)),
            );
        }
    }
    for k in 0..20 * scale as usize {
        tree.add(
            format!("misc/helm-charts/operator/templates/t{k}.yaml"),
            format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm{k}\n"),
        );
    }
    tree.add(
        "doc/user/content/overview/page-0.md",
        "---\ntitle: Overview\n---\n\nWhat Materialize is.\n",
    );
    // Documentation pages fill the tree up to ~10,000 files per scale unit.
    let target = 10_000 * scale as usize;
    let sections = [
        "sql",
        "ingest-data",
        "serve-results",
        "manage",
        "integrations",
        "reference",
        "overview",
        "get-started",
    ];
    let mut k = 1;
    while tree.files.len() < target {
        let sec = sections[k % sections.len()];
        tree.add(
            format!("doc/user/content/{sec}/sub-{}/page-{k}.md", k / 97),
            format!("---\ntitle: Page {k}\nweight: {}\n---\n\nSome documentation about {sec}, paragraph {}.\n", rng.below(100), rng.next_u64()),
        );
        k += 1;
    }
}

/// What a correct engine decides for the feature change, from the model.
fn truth(
    model: &Model,
    graph: &BTreeMap<String, Vec<String>>,
    steps: &[StepInfo],
    leaf: usize,
    changed: &[String],
    changed_py: &str,
) -> GenSummary {
    let mut s = GenSummary::default();
    // Images whose transitive inputs contain the leaf crate's file: images
    // with a cargo pre-image whose crates depend (transitively, normal and
    // build deps) on the leaf, then images that MZFROM them.
    let reaches_leaf = |c: usize| -> bool {
        let mut stack = vec![c];
        let mut seen = HashSet::new();
        while let Some(x) = stack.pop() {
            if x == leaf {
                return true;
            }
            if seen.insert(x) {
                stack.extend(model.crates[x].deps.iter().copied());
                stack.extend(model.crates[x].build_deps.iter().copied());
            }
        }
        false
    };
    let mut hit: BTreeSet<String> = model
        .images
        .iter()
        .filter(|im| {
            im.cargo_crates.iter().any(|&c| {
                reaches_leaf(c)
                    || (!model.crates[c].is_bin
                        && model.crates[c].dev_deps.iter().any(|&d| reaches_leaf(d)))
            })
        })
        .map(|im| im.name.clone())
        .collect();
    loop {
        let more: Vec<String> = model
            .images
            .iter()
            .filter(|im| !hit.contains(&im.name) && im.mzfrom.iter().any(|f| hit.contains(f)))
            .map(|im| im.name.clone())
            .collect();
        if more.is_empty() {
            break;
        }
        hit.extend(more);
    }
    // Images per composition: the services' images, metadata_store's both.
    let img_of_module: BTreeMap<String, String> = model
        .services
        .iter()
        .filter_map(|sv| {
            sv.image.as_ref().map(|i| {
                (
                    format!("materialize.mzcompose.services.{}", sv.module),
                    i.clone(),
                )
            })
        })
        .collect();
    let changed_mod = changed_py
        .trim_start_matches("misc/python/")
        .trim_end_matches(".py")
        .replace('/', ".");
    let mut importing = BTreeSet::new();
    for (name, used) in &model.compositions {
        let seen = load_closure(graph, name);
        let mut imgs = BTreeSet::new();
        for &k in used {
            if let Some(i) = &model.services[k].image {
                imgs.insert(i.clone());
            }
        }
        if seen.contains("materialize.mzcompose.services.metadata_store") {
            for m in ["postgres", "cockroach"] {
                if let Some(i) = img_of_module.get(&format!("materialize.mzcompose.services.{m}")) {
                    imgs.insert(i.clone());
                }
            }
        }
        if seen.contains(&changed_mod) {
            importing.insert(name.clone());
        }
        s.composition_images.insert(name.clone(), imgs);
    }
    for st in steps {
        let by_img = st.compositions.iter().any(|c| {
            s.composition_images.get(c).is_some_and(|imgs| {
                imgs.iter().any(|i| {
                    // The image or anything it builds on.
                    closure_of(model, i).iter().any(|x| hit.contains(x))
                })
            })
        }) || (st.cloudtest
            && ["environmentd", "clusterd"]
                .iter()
                .any(|i| closure_of(model, i).iter().any(|x| hit.contains(x))));
        if by_img {
            s.steps_kept_by_images.insert(st.id.clone());
        }
        if st.compositions.iter().any(|c| importing.contains(c)) {
            s.steps_kept_by_imports.insert(st.id.clone());
        }
        if let Ok(set) = pipetrim_queries::pathspec::PathspecSet::new(&st.inputs)
            && !st.inputs.is_empty()
            && changed.iter().any(|p| set.matches(p))
        {
            s.steps_kept_by_inputs.insert(st.id.clone());
        }
    }
    // Everything reached, then what those depend on.
    let mut reached: BTreeSet<String> = s
        .steps_kept_by_images
        .iter()
        .chain(&s.steps_kept_by_imports)
        .chain(&s.steps_kept_by_inputs)
        .cloned()
        .collect();
    loop {
        let more: Vec<String> = steps
            .iter()
            .filter(|st| reached.contains(&st.id))
            .flat_map(|st| st.depends_on.iter().cloned())
            .filter(|d| !reached.contains(d))
            .collect();
        if more.is_empty() {
            break;
        }
        reached.extend(more);
    }
    s.steps_untouched = steps
        .iter()
        .filter(|st| !reached.contains(&st.id))
        .map(|st| st.id.clone())
        .collect();
    s.images_hit = hit;
    s.compositions_importing_changed_module = importing;
    s
}

/// An image and every image it depends on.
fn closure_of(model: &Model, name: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut stack = vec![name.to_string()];
    while let Some(n) = stack.pop() {
        if out.insert(n.clone())
            && let Some(im) = model.images.iter().find(|i| i.name == n)
        {
            stack.extend(im.mzfrom.iter().cloned());
        }
    }
    out
}

fn write_tree(dir: &Path, tree: &Tree) -> io::Result<()> {
    let mut made: HashSet<PathBuf> = HashSet::new();
    for (path, (bytes, exec)) in &tree.files {
        let full = dir.join(path);
        if let Some(parent) = full.parent()
            && !made.contains(parent)
        {
            std::fs::create_dir_all(parent)?;
            made.insert(parent.to_path_buf());
        }
        std::fs::write(&full, bytes)?;
        if *exec {
            std::fs::set_permissions(&full, std::fs::Permissions::from_mode(0o755))?;
        }
    }
    Ok(())
}

fn append(dir: &Path, path: &str, text: &str) -> io::Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(dir.join(path))?;
    f.write_all(text.as_bytes())
}

/// Runs `git` deterministically: no system or user config, fixed identity
/// and dates.
struct Git {
    dir: PathBuf,
    home: PathBuf,
}

impl Git {
    fn new(dir: &Path) -> io::Result<Self> {
        let home = std::env::temp_dir().join(format!(
            "pipetrim-gen-home-{}-{}",
            std::process::id(),
            dir.as_os_str().len()
        ));
        std::fs::create_dir_all(&home)?;
        Ok(Git {
            dir: dir.to_path_buf(),
            home,
        })
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new("git");
        c.current_dir(&self.dir)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &self.home)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_AUTHOR_NAME", "Generator")
            .env("GIT_AUTHOR_EMAIL", "gen@pipetrim.invalid")
            .env("GIT_COMMITTER_NAME", "Generator")
            .env("GIT_COMMITTER_EMAIL", "gen@pipetrim.invalid")
            .args([
                "-c",
                "core.autocrlf=false",
                "-c",
                "commit.gpgsign=false",
                "-c",
                "core.fsmonitor=false",
            ])
            .args(args);
        c
    }

    fn run(&self, args: &[&str]) -> io::Result<()> {
        self.output(args).map(|_| ())
    }

    fn output(&self, args: &[&str]) -> io::Result<String> {
        let out = self.command(args).output()?;
        if !out.status.success() {
            return Err(io::Error::other(format!(
                "git {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    fn commit_all(&self, msg: &str, n: u32) -> io::Result<()> {
        self.run(&["add", "-A"])?;
        let date = format!("{} +0000", 1_700_000_000 + u64::from(n) * 3600);
        let out = self
            .command(&["commit", "-q", "--no-verify", "-m", msg])
            .env("GIT_AUTHOR_DATE", &date)
            .env("GIT_COMMITTER_DATE", &date)
            .output()?;
        if !out.status.success() {
            return Err(io::Error::other(format!(
                "git commit: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(())
    }

    fn cleanup(&self) {
        let _ = std::fs::remove_dir_all(&self.home);
    }
}

/// The modules composition `name` loads at load time, over the recorded
/// import graph (`composition:NAME` → modules → modules): the truth both
/// the fixture's and the history's expectations are built from.
pub(crate) fn load_closure(graph: &BTreeMap<String, Vec<String>>, name: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut stack = graph
        .get(&format!("composition:{name}"))
        .cloned()
        .unwrap_or_default();
    while let Some(m) = stack.pop() {
        if seen.insert(m.clone())
            && let Some(next) = graph.get(&m)
        {
            stack.extend(next.iter().cloned());
        }
    }
    seen
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_is_deterministic() {
        let mut a = SplitMix64::new(7);
        let mut b = SplitMix64::new(7);
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
        assert_ne!(SplitMix64::new(8).next_u64(), SplitMix64::new(7).next_u64());
    }

    #[test]
    fn tree_is_a_function_of_the_seed() {
        let a = build(1, 42);
        let b = build(1, 42);
        assert_eq!(a.tree.files, b.tree.files);
        assert_eq!(a.tree.files.len(), 10_000);
        let c = build(1, 43);
        assert_ne!(a.tree.files, c.tree.files);
    }

    #[test]
    fn model_has_the_designed_shape() {
        let mut rng = SplitMix64::new(DEFAULT_SEED);
        let m = build_model(&mut rng, 1);
        assert_eq!(m.crates.len(), LIB_WORDS.len() + BIN_WORDS.len());
        assert_eq!(m.images.len(), 45);
        assert_eq!(m.compositions.len(), 100);
        // Deps only point to lower-numbered library crates.
        for (i, c) in m.crates.iter().enumerate() {
            for &d in c.deps.iter().chain(&c.build_deps).chain(&c.dev_deps) {
                assert!(
                    d < i && !m.crates[d].is_bin,
                    "{} -> {}",
                    c.name,
                    m.crates[d].name
                );
            }
        }
    }
}
