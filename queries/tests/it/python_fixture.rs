//! Snapshot tests over the fixture repository `testdata/python/` (laid out
//! like the reference), and a salsa reuse test.

use std::path::PathBuf;
use std::sync::Arc;

use pipetrim_queries::python::{composition_images, composition_imports};
use pipetrim_queries::{Database, Db};

use crate::common::{self, count};

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/python")
}

/// Imports (default and lazy) and images of one composition, for a snapshot.
fn describe(comp: &str) -> serde_json::Value {
    let root = fixture();
    let paths = common::walk(&root);
    let (db, ws) = common::database(&root, paths.clone(), false);
    let (lazy_db, lazy_ws) = common::database(&root, paths, true);
    let file = db.file(comp);
    let closure = composition_imports(&db, ws.files(&db), ws.options(&db), file);
    let lazy = composition_imports(
        &lazy_db,
        lazy_ws.files(&lazy_db),
        lazy_ws.options(&lazy_db),
        lazy_db.file(comp),
    );
    let images = composition_images(&db, ws.files(&db), ws.options(&db), file);
    let lazy_only: Vec<String> = lazy
        .files
        .iter()
        .filter(|f| !closure.files.contains(f))
        .map(|f| {
            let via = &lazy.via[f];
            format!(
                "{f} (via {}:{}{})",
                via.importer,
                via.line,
                if via.function_level {
                    ", in a function"
                } else {
                    ""
                }
            )
        })
        .collect();
    let via: Vec<String> = images
        .via
        .iter()
        .flat_map(|(name, srcs)| {
            srcs.iter().map(move |s| {
                format!(
                    "{name}: {}:{} ({})",
                    s.file,
                    s.line,
                    s.scope.as_deref().unwrap_or("module level")
                )
            })
        })
        .collect();
    serde_json::json!({
        "imports": closure.files,
        "unsure": closure.unsure.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
        "lazy_only": lazy_only,
        "images": images.names,
        "images_via": via,
        "every_image": images.every_image.as_ref().map(|d| d.to_string()),
    })
}

#[test]
fn fixture_compositions() {
    let paths = common::walk(&fixture());
    let comps = common::compositions(&paths);
    assert_eq!(comps.len(), 5, "{comps:?}");
    for comp in comps {
        let name = comp.trim_end_matches("/mzcompose.py").replace('/', "__");
        insta::assert_json_snapshot!(name, describe(&comp));
    }
}

/// Editing one module re-parses only that module; closures that cannot
/// reach it are not recomputed.
#[test]
fn editing_one_module_reparses_only_it() {
    let root = fixture();
    let paths = common::walk(&root);
    // In memory, so the test can edit a file and have the database re-stamp it.
    let mem = pipetrim_queries::db::MemoryLoader::default();
    for p in &paths {
        let bytes = std::fs::read(root.join(p)).unwrap_or_default();
        mem.files
            .insert(p.clone(), (bytes, pipetrim_queries::FileMode::Regular));
    }
    let (mut db, log) = Database::with_log(Arc::new(mem.clone()));
    let ws = db.workspace(
        paths.clone(),
        Vec::new(),
        None,
        "test",
        vec!["misc/python".into()],
        false,
    );
    let comps = common::compositions(&paths);
    let run = |db: &Database| {
        for c in &comps {
            let f = db.file(c);
            let _ = composition_imports(db, ws.files(db), ws.options(db), f);
            let _ = composition_images(db, ws.files(db), ws.options(db), f);
        }
    };
    run(&db);
    let cold = log.lock().map(|l| l.clone()).unwrap_or_default();
    assert!(count(&cold, "module_summary") > 10, "{cold:#?}");
    log.lock().map(|mut l| l.clear()).unwrap_or_default();

    // A new line at the top: the summary changes (every line moves).
    let edited = "misc/python/materialize/mzcompose/services/cockroach.py";
    let text = std::fs::read_to_string(root.join(edited)).unwrap_or_default();
    let write = |db: &mut Database, path: &str, text: String| {
        mem.files.insert(
            path.to_string(),
            (text.into_bytes(), pipetrim_queries::FileMode::Regular),
        );
        assert!(db.reload(path), "{path}");
    };
    write(&mut db, edited, format!("# edited\n{text}"));
    run(&db);
    let warm = log.lock().map(|l| l.clone()).unwrap_or_default();
    println!("after the edit: {warm:#?}");
    assert_eq!(count(&warm, "module_summary"), 1, "{warm:#?}");
    // Only lines moved: the module's shape is the same, so no import is
    // resolved again and no composition is analysed again; the analyses
    // that reach the file map their lines again.
    assert_eq!(count(&warm, "module_shape"), 1, "{warm:#?}");
    assert_eq!(count(&warm, "ranked_imports"), 0, "{warm:#?}");
    assert_eq!(count(&warm, "ranked_analysis"), 0, "{warm:#?}");
    assert!(count(&warm, "composition_analysis") > 0, "{warm:#?}");
    // `test/own-service` and `test/broken-dep` do not reach cockroach.py.
    assert!(
        count(&warm, "composition_analysis") < comps.len(),
        "{warm:#?}"
    );
    assert_eq!(count(&warm, "module_index"), 0, "{warm:#?}");
    // The lines reported are the new ones: a line added at the top of a
    // composition file moves every import it makes one line down.
    let comp = comps[0].clone();
    let importer_lines = |db: &Database| -> Vec<(String, usize)> {
        let closure = composition_imports(db, ws.files(db), ws.options(db), db.file(&comp));
        closure
            .via
            .iter()
            .filter(|(_, via)| via.importer == comp)
            .map(|(file, via)| (file.clone(), via.line))
            .collect()
    };
    let before = importer_lines(&db);
    assert!(!before.is_empty(), "{comp} imports nothing");
    let comp_text = std::fs::read_to_string(root.join(&comp)).unwrap_or_default();
    write(&mut db, &comp, format!("# edited\n{comp_text}"));
    log.lock().map(|mut l| l.clear()).unwrap_or_default();
    let moved = importer_lines(&db);
    let after = log.lock().map(|l| l.clone()).unwrap_or_default();
    assert_eq!(count(&after, "ranked_analysis"), 0, "{after:#?}");
    assert_eq!(
        moved,
        before
            .iter()
            .map(|(f, l)| (f.clone(), l + 1))
            .collect::<Vec<_>>()
    );
    log.lock().map(|mut l| l.clear()).unwrap_or_default();

    // A new import: the shape changes, and the analyses run again.
    write(
        &mut db,
        edited,
        format!("import materialize.mzcompose\n{text}"),
    );
    run(&db);
    let changed = log.lock().map(|l| l.clone()).unwrap_or_default();
    assert_eq!(count(&changed, "ranked_imports"), 1, "{changed:#?}");
    assert!(count(&changed, "ranked_analysis") > 0, "{changed:#?}");
}
