//! Salsa reuse for the repository model and fingerprints (issues 2 and 5):
//! after an edit only the queries that read the edited file re-execute.

use pipetrim_queries::cargo::cargo_workspace;
use pipetrim_queries::db::{ExecutionLog, MemoryLoader};
use pipetrim_queries::fingerprint::{Variant, fingerprints};
use pipetrim_queries::inputs::image_inputs;
use pipetrim_queries::plan::{Plan, plan};
use pipetrim_queries::{Database, Db, FileMode, Workspace};
use salsa::plumbing::AsId;
use std::sync::Arc;

use crate::common::count;

/// The bundled example repository, in memory.
fn example() -> (Database, Workspace, ExecutionLog, MemoryLoader) {
    let (loader, paths) = crate::common::example_loader();
    let (db, ws, log) = crate::common::logged_example(&loader, &paths, None);
    (db, ws, log, loader)
}

/// Everything the model and the fingerprints compute, for both arches.
fn compute(db: &Database, ws: Workspace) {
    let files = ws.files(db);
    for arch in ["x86_64", "aarch64"] {
        let v = Variant::new(
            db,
            arch.to_string(),
            "OPTIMIZED".to_string(),
            false,
            "none".to_string(),
        );
        assert!(fingerprints(db, files, v).is_ok());
    }
    assert!(image_inputs(db, files).is_ok());
    assert!(cargo_workspace(db, files).is_ok());
}

fn edit(db: &mut Database, loader: &MemoryLoader, path: &str, content: &str) {
    loader.files.insert(
        path.to_string(),
        (content.as_bytes().to_vec(), FileMode::Regular),
    );
    assert!(db.reload(path), "{path} was never read, or did not change");
}

/// The executed queries since the last call, as `name(path-or-id)` strings.
fn take(log: &ExecutionLog, db: &Database) -> Vec<String> {
    let _ = db;
    std::mem::take(&mut *log.lock().unwrap())
}

#[test]
fn editing_a_rust_file_rehashes_it_and_recomputes_fingerprints_only() {
    let (mut db, ws, log, loader) = example();
    compute(&db, ws);
    let cold = take(&log, &db);
    assert!(count(&cold, "content_sha1") > 10, "{cold:?}");
    assert_eq!(count(&cold, "image_graph"), 1, "{cold:?}");
    let lib = db.file("src/base/src/lib.rs");

    edit(
        &mut db,
        &loader,
        "src/base/src/lib.rs",
        "pub fn changed() {}\n",
    );
    compute(&db, ws);
    let warm = take(&log, &db);
    for q in [
        "image_graph",
        "cargo_workspace",
        "manifest",
        "workspace_manifest",
        "mzbuild_config",
        "dockerfile_deps",
        "image_inputs",
    ] {
        assert_eq!(count(&warm, q), 0, "{q} re-ran: {warm:?}");
    }
    assert_eq!(
        warm.iter()
            .filter(|l| l.starts_with("content_sha1("))
            .collect::<Vec<_>>(),
        vec![&format!("content_sha1({:?})", lib.as_id())],
        "only the edited file is re-hashed"
    );
    assert_eq!(count(&warm, "fingerprints"), 2, "one per arch: {warm:?}");
    // Only the images whose inputs hold the file are re-hashed (per arch).
    assert_eq!(
        count(&warm, "self_hash"),
        4,
        "server and testdrive, per arch: {warm:?}"
    );
    // The edited file's content is read by the hash alone, which does not
    // keep it (no `file_content` memo).
    assert_eq!(count(&warm, "file_content"), 0, "{warm:?}");
    // One input spec (the crate's directory) holds it: its entries are
    // rebuilt once, shared by both images and arches.
    assert_eq!(count(&warm, "spec_entries"), 1, "{warm:?}");
    assert_eq!(warm.len(), 8, "nothing else re-ran: {warm:?}");

    // Editing it back to the same bytes as before the last run re-runs the
    // hash but salsa backdates: the fingerprints are reused.
    edit(
        &mut db,
        &loader,
        "src/base/src/lib.rs",
        "pub fn changed() {}\n// c\n",
    );
    let _ = take(&log, &db);
    edit(
        &mut db,
        &loader,
        "src/base/src/lib.rs",
        "pub fn changed() {}\n",
    );
    compute(&db, ws);
    let warm = take(&log, &db);
    assert_eq!(count(&warm, "content_sha1"), 1, "{warm:?}");
    assert_eq!(count(&warm, "fingerprints"), 0, "{warm:?}");
}

#[test]
fn editing_a_file_no_image_uses_reruns_nothing() {
    let (mut db, ws, log, loader) = example();
    compute(&db, ws);
    let _ = take(&log, &db);
    // Read once so that the database knows it, then edit.
    let _ = db.file("doc/index.md");
    edit(&mut db, &loader, "doc/index.md", "# changed\n");
    compute(&db, ws);
    let warm = take(&log, &db);
    assert!(warm.is_empty(), "{warm:?}");
}

#[test]
fn editing_a_dockerfile_reruns_its_deps_and_dependents_only() {
    let (mut db, ws, log, loader) = example();
    compute(&db, ws);
    let _ = take(&log, &db);
    // A comment: the MZFROM lines stay, so the graph is not even recomputed.
    let df = db.file("misc/images/prod-base/Dockerfile").as_id();
    edit(
        &mut db,
        &loader,
        "misc/images/prod-base/Dockerfile",
        "MZFROM ubuntu-base\nRUN true\n# comment\n",
    );
    compute(&db, ws);
    let warm = take(&log, &db);
    assert_eq!(count(&warm, "dockerfile_deps"), 1, "{warm:?}");
    assert!(
        warm.contains(&format!("dockerfile_deps({df:?})")),
        "{warm:?}"
    );
    assert_eq!(count(&warm, "content_sha1"), 1, "{warm:?}");
    assert!(warm.contains(&format!("content_sha1({df:?})")), "{warm:?}");
    // prod-base alone is re-hashed, once per arch.
    assert_eq!(count(&warm, "self_hash"), 2, "{warm:?}");
    assert_eq!(count(&warm, "file_content"), 1, "{warm:?}");
    assert_eq!(count(&warm, "spec_entries"), 1, "its context: {warm:?}");
    assert_eq!(warm.len(), 8, "{warm:?}");
    assert_eq!(count(&warm, "fingerprints"), 2, "{warm:?}");
    for q in [
        "image_graph",
        "image_inputs",
        "cargo_workspace",
        "manifest",
        "mzbuild_config",
    ] {
        assert_eq!(count(&warm, q), 0, "{q} re-ran: {warm:?}");
    }
    // A new dependency changes the graph and what depends on it.
    edit(
        &mut db,
        &loader,
        "misc/images/prod-base/Dockerfile",
        "MZFROM ubuntu-base\nMZFROM assets\nRUN true\n",
    );
    compute(&db, ws);
    let warm = take(&log, &db);
    assert_eq!(count(&warm, "dockerfile_deps"), 1, "{warm:?}");
    assert_eq!(count(&warm, "image_graph"), 1, "{warm:?}");
    assert_eq!(count(&warm, "image_inputs"), 1, "{warm:?}");
    assert_eq!(count(&warm, "manifest"), 0, "{warm:?}");
    assert_eq!(count(&warm, "mzbuild_config"), 0, "{warm:?}");
}

#[test]
fn editing_a_cargo_toml_reruns_that_manifest_only() {
    let (mut db, ws, log, loader) = example();
    compute(&db, ws);
    let cold = take(&log, &db);
    assert_eq!(count(&cold, "manifest"), 6, "{cold:?}");
    edit(
        &mut db,
        &loader,
        "src/tool/Cargo.toml",
        "[package]\nname = \"mz-tool\"\nversion = \"0.2.0\"\nautobins = true\n\n[[bin]]\nname = \"tool-b\"\npath = \"src/tool_b.rs\"\n\n[dependencies]\nmz-base = { path = \"../base\" }\n",
    );
    compute(&db, ws);
    let warm = take(&log, &db);
    assert_eq!(count(&warm, "manifest"), 1, "{warm:?}");
    assert_eq!(count(&warm, "workspace_manifest"), 0, "{warm:?}");
    // Same parsed manifest (only the version changed): the workspace is
    // recomputed but backdated, so image inputs are not.
    assert_eq!(count(&warm, "image_inputs"), 0, "{warm:?}");
    assert_eq!(count(&warm, "image_graph"), 0, "{warm:?}");
    // No image builds mz-tool: its manifest is no input of any image.
    assert_eq!(count(&warm, "content_sha1"), 0, "{warm:?}");
}

/// A step whose image's inputs cannot be computed is kept (SPEC §10), even
/// when no changed path is known to hit it.
#[test]
fn a_step_whose_image_inputs_fail_is_kept() {
    let (mut db, ws, _log, loader) = example();
    // The testdrive image's bin disappears from every crate.
    edit_unread(
        &loader,
        "src/testdrive/Cargo.toml",
        "[package]\nname = \"mz-testdrive\"\n",
    );
    let _ = &mut db;
    let p = plan(&db, ws).clone().expect("plan");
    let td = p.steps.iter().find(|s| s.id == "testdrive").unwrap();
    assert!(td.kept, "{td:#?}");
    assert!(!p.errors.is_empty());
    assert!(
        p.errors
            .iter()
            .any(|e| e.file.as_deref() == Some("src/testdrive/ci/mzbuild.yml")),
        "{:?}",
        p.errors
    );
    // Steps that do not use the image are still trimmed.
    let docs = p.steps.iter().find(|s| s.id == "docs").unwrap();
    assert!(!docs.kept);
}

fn edit_unread(loader: &MemoryLoader, path: &str, content: &str) {
    loader.files.insert(
        path.to_string(),
        (content.as_bytes().to_vec(), FileMode::Regular),
    );
}

/// A Python module is read for its parse and not kept: a cold plan reads
/// each module once, through no `file_content` memo, and re-parsing an
/// edited module reads it again the same way.
#[test]
fn python_modules_are_parsed_without_keeping_their_text() {
    let (mut db, ws, log, loader) = example();
    let _ = plan(&db, ws);
    let cold = take(&log, &db);
    assert!(count(&cold, "module_summary") >= 3, "{cold:?}");
    let module = "misc/python/materialize/mzcompose/services/postgres.py";
    let id = db.file(module).as_id();
    assert!(
        cold.contains(&format!("module_summary({id:?})")),
        "{cold:?}"
    );
    assert!(!cold.contains(&format!("file_content({id:?})")), "{cold:?}");
    edit(
        &mut db,
        &loader,
        module,
        "from materialize.mzcompose.service import Service\n\n\nclass Postgres(Service):\n    def __init__(self) -> None:\n        super().__init__(name=\"postgres\", config={\"image\": \"postgres:17\"})\n",
    );
    let _ = plan(&db, ws);
    let warm = take(&log, &db);
    assert!(
        warm.contains(&format!("module_summary({id:?})")),
        "{warm:?}"
    );
    assert_eq!(count(&warm, "file_content"), 0, "{warm:?}");
}

/// A line added at the top of a module moves every line of it, and nothing
/// else: no composition is analysed again (their memos read the module's
/// shape, not its lines) and no step's inputs are rebuilt. A composition
/// file's own lines are in its analysis (the `via` of its imports); see
/// `python_fixture::editing_one_module_reparses_only_it` for that case.
#[test]
fn moving_a_modules_lines_rebuilds_no_analysis_and_no_step_inputs() {
    let (before, after, warm) = plan_around_a_line_added_at_the_top(
        "misc/python/materialize/mzcompose/services/postgres.py",
    );
    assert_eq!(count(&warm, "module_summary"), 1, "{warm:?}");
    assert_eq!(count(&warm, "ranked_imports"), 0, "{warm:?}");
    assert_eq!(count(&warm, "ranked_analysis"), 0, "{warm:?}");
    // No analysis names a line of this module (its imports reach nothing
    // first), so none even maps its lines again.
    assert_eq!(count(&warm, "composition_analysis"), 0, "{warm:?}");
    assert_eq!(count(&warm, "step_inputs"), 0, "{warm:?}");
    assert_eq!(before, after);
}

/// A line added at the top of a composition file: its analysis maps its
/// lines again (the `via` of its imports moves down a line), but it is not
/// analysed again, and the steps that use it keep their inputs.
#[test]
fn moving_a_composition_files_lines_maps_them_again_and_rebuilds_no_step_inputs() {
    let (before, after, warm) = plan_around_a_line_added_at_the_top("test/smoke/mzcompose.py");
    assert_eq!(count(&warm, "ranked_analysis"), 0, "{warm:?}");
    assert_eq!(count(&warm, "composition_analysis"), 1, "{warm:?}");
    assert_eq!(count(&warm, "composition_inputs"), 1, "{warm:?}");
    assert_eq!(count(&warm, "step_inputs"), 0, "{warm:?}");
    assert_eq!(before, after);
}

/// The example's plan, then `path` edited with a line added at its top, the
/// plan again, and the queries that second plan ran.
fn plan_around_a_line_added_at_the_top(path: &str) -> (Arc<Plan>, Arc<Plan>, Vec<String>) {
    let (mut db, ws, log, loader) = example();
    let before = plan(&db, ws).clone().expect("plan");
    let _ = take(&log, &db);
    let text = String::from_utf8(loader.files.get(path).unwrap().0.clone()).unwrap();
    edit(&mut db, &loader, path, &format!("# moved\n{text}"));
    let after = plan(&db, ws).clone().expect("plan");
    let warm = take(&log, &db);
    (before, after, warm)
}
