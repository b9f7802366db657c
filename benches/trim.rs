//! Trim latency on generated monorepos (`pipetrim_gen`), scale 1 and 10.
//!
//! `cargo bench --bench trim` (add `-- cold_trim` etc. to filter). The
//! repositories are generated once into `<target>/pipetrim-bench/` and reused.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use divan::Bencher;
use pipetrim::repo::git::{Changes, changes_against};
use pipetrim::repo::load::{DiskLoader, visible_files};
use pipetrim::repo::session::{Session, SessionOptions};
use pipetrim_gen::{DEFAULT_SEED, GENERATOR_VERSION, generate};
use pipetrim_queries::db::MemoryLoader;
use pipetrim_queries::fingerprint::{Variant, fingerprints};
use pipetrim_queries::images::compositions;
use pipetrim_queries::plan::plan;
use pipetrim_queries::python::composition_imports;
use pipetrim_queries::{Db, FileContent, Loader};

fn main() {
    divan::main();
}

const SCALES: [u32; 2] = [1, 10];

/// A generated repository and the paths the benches edit.
struct Fixture {
    dir: PathBuf,
    /// `git diff --name-only main...feature`.
    changed: Vec<String>,
    /// Files the warm benches edit: none of them is in `changed`, so an
    /// edit changes the change set as well as the content.
    rust_file: String,
    python_file: String,
    dockerfile: String,
    template: String,
    /// A file of the crate every image's cargo build depends on.
    shared_rust_file: String,
}

fn target_dir() -> PathBuf {
    if let Some(t) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(t);
    }
    // <target>/release/deps/trim-<hash>
    std::env::current_exe()
        .ok()
        .and_then(|e| Some(e.parent()?.parent()?.parent()?.to_path_buf()))
        .unwrap_or_else(|| PathBuf::from("target"))
}

fn fixture(scale: u32) -> &'static Fixture {
    static CACHE: OnceLock<Mutex<Vec<(u32, &'static Fixture)>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Mutex::default);
    let mut c = cache.lock().expect("fixture cache");
    if let Some((_, f)) = c.iter().find(|(s, _)| *s == scale) {
        return f;
    }
    let dir = target_dir().join("pipetrim-bench").join(format!(
        "scale-{scale}-seed-{DEFAULT_SEED:x}-v{GENERATOR_VERSION}"
    ));
    let marker = dir.join(".git").join("pipetrim-bench-done");
    if !marker.exists() {
        if dir.exists() {
            std::fs::remove_dir_all(&dir).expect("remove stale fixture");
        }
        eprintln!("generating scale {scale} into {} ...", dir.display());
        let t = std::time::Instant::now();
        generate(&dir, scale, DEFAULT_SEED).expect("generate fixture");
        eprintln!("generated in {:.1?}", t.elapsed());
        std::fs::write(&marker, "ok\n").expect("write marker");
    }
    let changed = match changes_against(&dir, Some("main")) {
        Changes::Known { paths, .. } => paths,
        Changes::Unknown(why) => panic!("fixture change set: {why}"),
    };
    let f: &'static Fixture = Box::leak(Box::new(Fixture {
        dir,
        changed,
        // A mid-level library crate that a few images build on.
        rust_file: "src/persist-client/src/lib.rs".into(),
        // A service module that several compositions import.
        python_file: "misc/python/materialize/mzcompose/services/postgres.py".into(),
        dockerfile: "misc/images/prod-base/Dockerfile".into(),
        template: "ci/test/pipeline.template.yml".into(),
        shared_rust_file: "src/ore/src/lib.rs".into(),
    }));
    c.push((scale, f));
    f
}

/// Every visible file, read into memory (the engine then runs without I/O).
fn memory_session(f: &Fixture) -> (Session, MemoryLoader) {
    let files = visible_files(&f.dir).expect("visible files");
    let disk = DiskLoader::new(&f.dir);
    let mem = MemoryLoader::default();
    for p in &files {
        if let (FileContent::Bytes(b), mode) = disk.load(p) {
            mem.files.insert(p.clone(), (b.to_vec(), mode));
        }
    }
    let s = Session::from_parts(
        &f.dir,
        files,
        Arc::new(mem.clone()),
        &SessionOptions::default(),
    );
    (s, mem)
}

fn variant(db: &dyn Db) -> Variant<'_> {
    Variant::new(
        db,
        "x86_64".to_string(),
        "OPTIMIZED".to_string(),
        false,
        "none".to_string(),
    )
}

/// Cold trim as the CLI does it: list the visible files, compute the change
/// set with git, build the model from disk and decide every step.
#[divan::bench(args = SCALES, sample_count = 20, max_time = 10)]
fn cold_trim(bencher: Bencher, scale: u32) {
    let f = fixture(scale);
    bencher.bench(|| {
        let mut s = Session::open(&f.dir, &SessionOptions::default()).expect("open");
        let (paths, unknown) = match changes_against(&f.dir, Some("main")) {
            Changes::Known { paths, .. } => (paths, None),
            Changes::Unknown(why) => (Vec::new(), Some(why)),
        };
        s.set_changes(paths, unknown);
        let p = plan(&s.db, s.ws).clone().expect("plan");
        divan::black_box(p.steps.len())
    });
}

/// The change set alone (merge base + tree diff with gix).
#[divan::bench(args = SCALES, sample_count = 50, max_time = 5)]
fn change_set(bencher: Bencher, scale: u32) {
    let f = fixture(scale);
    bencher.bench(|| changes_against(&f.dir, Some("main")));
}

/// The visible files alone (git index + ignore-aware walk).
#[divan::bench(args = SCALES, sample_count = 20, max_time = 5)]
fn visible_file_list(bencher: Bencher, scale: u32) {
    let f = fixture(scale);
    bencher.bench(|| visible_files(&f.dir).expect("visible files").len());
}

/// Re-trim after editing `path`: each iteration flips the file's content and
/// whether it is in the change set, then re-plans on the same database.
fn warm_retrim(bencher: Bencher, scale: u32, pick: fn(&Fixture) -> &str) {
    warm_retrim_with(bencher, scale, pick, |text| {
        text.extend_from_slice(b"\n# edited by the benchmark\n")
    });
}

/// [`warm_retrim`] with the edit `edit` makes to the file's bytes.
fn warm_retrim_with(
    bencher: Bencher,
    scale: u32,
    pick: fn(&Fixture) -> &str,
    edit: fn(&mut Vec<u8>),
) {
    let f = fixture(scale);
    let path = pick(f).to_string();
    let (mut s, mem) = memory_session(f);
    let original = mem
        .files
        .get(&path)
        .map(|e| e.value().clone())
        .expect("edited file is visible");
    s.set_changes(f.changed.clone(), None);
    let _ = plan(&s.db, s.ws).clone().expect("plan");
    let mut edited = original.clone();
    edit(&mut edited.0);
    let mut flip = false;
    bencher.bench_local(move || {
        flip = !flip;
        let content = if flip { &edited } else { &original };
        mem.files.insert(path.clone(), content.clone());
        s.db.reload(&path);
        let mut changes = f.changed.clone();
        if flip {
            changes.push(path.clone());
        }
        s.set_changes(changes, None);
        let p = plan(&s.db, s.ws).clone().expect("plan");
        divan::black_box(p.steps.len())
    });
}

#[divan::bench(args = SCALES, sample_count = 50, max_time = 5)]
fn warm_retrim_rust(bencher: Bencher, scale: u32) {
    warm_retrim(bencher, scale, |f| &f.rust_file);
}

#[divan::bench(args = SCALES, sample_count = 50, max_time = 5)]
fn warm_retrim_python(bencher: Bencher, scale: u32) {
    warm_retrim(bencher, scale, |f| &f.python_file);
}

/// A Python edit that moves every line of the module (a line added at the
/// top): its summary changes (lines are part of it), so every composition
/// whose closure holds it is analysed again, unlike the comment appended
/// by `warm_retrim_python`, after which only salsa's verification runs.
#[divan::bench(args = SCALES, sample_count = 50, max_time = 5)]
fn warm_retrim_python_lines(bencher: Bencher, scale: u32) {
    warm_retrim_with(
        bencher,
        scale,
        |f| &f.python_file,
        |text| {
            text.splice(0..0, b"# edited by the benchmark\n".iter().copied());
        },
    );
}

#[divan::bench(args = SCALES, sample_count = 50, max_time = 5)]
fn warm_retrim_dockerfile(bencher: Bencher, scale: u32) {
    warm_retrim(bencher, scale, |f| &f.dockerfile);
}

#[divan::bench(args = SCALES, sample_count = 50, max_time = 5)]
fn warm_retrim_template(bencher: Bencher, scale: u32) {
    warm_retrim(bencher, scale, |f| &f.template);
}

/// Load-time import closures of every composition on a fresh database
/// (contents already in memory).
#[divan::bench(args = SCALES, sample_count = 20, max_time = 8)]
fn import_closures_cold(bencher: Bencher, scale: u32) {
    let f = fixture(scale);
    let (s, mem) = memory_session(f);
    let files = s.files().to_vec();
    drop(s);
    bencher.bench(|| {
        let s = Session::from_parts(
            &f.dir,
            files.clone(),
            Arc::new(mem.clone()),
            &SessionOptions::default(),
        );
        let db = &s.db;
        let fs = s.ws.files(db);
        let opts = s.ws.options(db);
        let comps = compositions(db, fs).clone().expect("compositions");
        let mut n = 0;
        for dir in comps.values() {
            let file = db.file(&format!("{dir}/mzcompose.py"));
            n += composition_imports(db, fs, opts, file).files.len();
        }
        n
    });
}

/// Every image's fingerprint on a fresh database (hashes every input).
#[divan::bench(args = SCALES, sample_count = 10, max_time = 10)]
fn fingerprints_cold(bencher: Bencher, scale: u32) {
    let f = fixture(scale);
    let (s, mem) = memory_session(f);
    let files = s.files().to_vec();
    drop(s);
    bencher.bench(|| {
        let s = Session::from_parts(
            &f.dir,
            files.clone(),
            Arc::new(mem.clone()),
            &SessionOptions::default(),
        );
        let fs = s.ws.files(&s.db);
        let v = variant(&s.db);
        fingerprints(&s.db, fs, v)
            .clone()
            .expect("fingerprints")
            .len()
    });
}

/// Fingerprints again after editing a file of the crate every cargo image
/// builds on.
#[divan::bench(args = SCALES, sample_count = 20, max_time = 8)]
fn fingerprints_warm(bencher: Bencher, scale: u32) {
    let f = fixture(scale);
    let path = f.shared_rust_file.clone();
    let (mut s, mem) = memory_session(f);
    {
        let fs = s.ws.files(&s.db);
        let v = variant(&s.db);
        let _ = fingerprints(&s.db, fs, v).clone().expect("fingerprints");
    }
    let original = mem
        .files
        .get(&path)
        .map(|e| e.value().clone())
        .expect("edited file is visible");
    let mut edited = original.clone();
    edited
        .0
        .extend_from_slice(b"\n// edited by the benchmark\n");
    let mut flip = false;
    bencher.bench_local(move || {
        flip = !flip;
        mem.files
            .insert(path.clone(), if flip { &edited } else { &original }.clone());
        s.db.reload(&path);
        let fs = s.ws.files(&s.db);
        let v = variant(&s.db);
        fingerprints(&s.db, fs, v)
            .clone()
            .expect("fingerprints")
            .len()
    });
}
