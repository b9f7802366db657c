//! The parallel priming of a plan (`prime::prime_plan`): it resolves the
//! imports of every composition the persistent cache cannot answer for
//! before any composition is analysed, skips those it can, and never
//! changes the plan.

use std::sync::Arc;

use pipetrim_queries::db::MemoryLoader;
use pipetrim_queries::plan::{Plan, plan};
use pipetrim_queries::prime::prime_plan;
use pipetrim_queries::python::composition_imports;
use pipetrim_queries::{Database, Db, FileMode, Workspace};

use crate::common::{MemoryCache, count, example_loader, logged_example};

/// The plan without priming, on a fresh database without a cache.
fn unprimed(loader: &MemoryLoader, paths: &[String]) -> Arc<Plan> {
    let (db, ws, _) = logged_example(loader, paths, None);
    plan(&db, ws).clone().unwrap()
}

fn primed(db: &Database, ws: Workspace) -> Arc<Plan> {
    prime_plan(db, ws);
    plan(db, ws).clone().unwrap()
}

#[test]
fn priming_resolves_every_import_before_a_composition_is_analysed() {
    let (loader, paths) = example_loader();
    let (db, ws, log) = logged_example(&loader, &paths, None);
    assert_eq!(primed(&db, ws), unprimed(&loader, &paths));
    let log = log.lock().unwrap().clone();
    let last_import = log
        .iter()
        .rposition(|q| q.starts_with("ranked_imports("))
        .expect("no import was resolved");
    let first_analysis = log
        .iter()
        .position(|q| q.starts_with("composition_analysis("))
        .expect("no composition was analysed");
    assert!(
        last_import < first_analysis,
        "an import was resolved while the compositions were analysed: {log:?}"
    );
}

#[test]
fn stored_analyses_are_reused_and_only_the_compositions_an_edit_reaches_are_primed() {
    let (loader, paths) = example_loader();
    let cache = Arc::new(MemoryCache::default());
    let (db, ws, _) = logged_example(&loader, &paths, Some(&cache));
    let first = primed(&db, ws);
    assert_eq!(first, unprimed(&loader, &paths));

    // Everything stored: nothing is parsed or resolved again.
    let (db, ws, log) = logged_example(&loader, &paths, Some(&cache));
    assert_eq!(primed(&db, ws), first);
    let warm = log.lock().unwrap().clone();
    assert_eq!(count(&warm, "ranked_imports"), 0, "{warm:?}");
    assert_eq!(count(&warm, "stored_analysis"), 3, "{warm:?}");
    assert_eq!(cache.refused(), 0, "every stored entry was usable");

    // An edit of a module only `smoke` imports: only its closure is
    // resolved again, and the plan is the one computed from scratch.
    let edited = MemoryLoader::default();
    for e in loader.files.iter() {
        edited.files.insert(e.key().clone(), e.value().clone());
    }
    let postgres = "misc/python/materialize/mzcompose/services/postgres.py";
    let mut text = loader.files.get(postgres).unwrap().0.clone();
    text.extend_from_slice(b"\n# edited\n");
    edited
        .files
        .insert(postgres.to_string(), (text, FileMode::Regular));
    let (db, ws, log) = logged_example(&edited, &paths, Some(&cache));
    assert_eq!(primed(&db, ws), unprimed(&edited, &paths));
    let after = log.lock().unwrap().clone();
    let smoke = db.file("test/smoke/mzcompose.py");
    let closure = composition_imports(&db, ws.files(&db), ws.options(&db), smoke);
    assert!(closure.via.contains_key(postgres), "{closure:?}");
    // Smoke's stored analysis was found, but names the old postgres.py:
    // refused (a miss in the stats), not counted as reused.
    assert_eq!(cache.refused(), 1, "smoke's stale analysis");
    assert_eq!(
        count(&after, "ranked_imports"),
        closure.via.len() + 1,
        "only smoke's composition file and closure are resolved: {after:?}"
    );
}

/// The manifests primed beside the template's parse (`trim`'s change-set
/// thread) are the plan's: none is parsed again, and the plan is the one
/// computed from scratch. Stopped before it starts, it parses nothing.
#[test]
fn manifests_primed_on_the_side_are_reused_and_stop_when_asked() {
    use pipetrim_queries::prime::prime_manifests_here;
    use std::sync::atomic::AtomicBool;
    let (loader, paths) = example_loader();

    let (db, ws, log) = logged_example(&loader, &paths, None);
    prime_manifests_here(&db, ws, &AtomicBool::new(true));
    assert_eq!(count(&log.lock().unwrap(), "manifest"), 0);

    prime_manifests_here(&db, ws, &AtomicBool::new(false));
    let side = log.lock().unwrap().clone();
    let manifests = count(&side, "manifest");
    assert!(manifests > 0, "{side:?}");
    assert!(count(&side, "mzbuild_config") > 0, "{side:?}");
    assert_eq!(primed(&db, ws), unprimed(&loader, &paths));
    assert_eq!(count(&log.lock().unwrap(), "manifest"), manifests);
}

/// The entries `trim` makes ahead from the template's and the root
/// manifest's bytes (before the session exists) are the ones their queries
/// store; a database that finds only them gets the same template; other
/// bytes give the template's entry another key, so it is never looked up.
#[test]
fn entries_made_ahead_are_what_the_queries_store() {
    use pipetrim_queries::cache::LeafCache;
    use pipetrim_queries::cargo::workspace_manifest;
    use pipetrim_queries::pipeline::{entries_ahead, template, template_path};
    let (loader, paths) = example_loader();
    let template_bytes = loader.files.get(&template_path("test")).unwrap().0.clone();
    assert!(template_bytes.windows(13).any(|w| w == b"$RUST_VERSION"));
    let root = loader.files.get("Cargo.toml").unwrap().0.clone();
    let ahead = entries_ahead("test", &template_bytes, Some(&root));
    assert_eq!(ahead.len(), 2, "the root manifest's and the template's");

    let cache = Arc::new(MemoryCache::default());
    let (db, ws, _) = logged_example(&loader, &paths, Some(&cache));
    let parsed = template(&db, ws.options(&db)).clone().unwrap();
    assert!(workspace_manifest(&db, db.file("Cargo.toml")).is_ok());
    for (k, v) in &ahead {
        assert_eq!(cache.get(k).as_ref(), Some(v));
    }

    let only = Arc::new(MemoryCache::default());
    for (k, v) in &ahead {
        only.put(k.clone(), v.clone());
    }
    let (db, ws, _) = logged_example(&loader, &paths, Some(&only));
    assert_eq!(template(&db, ws.options(&db)).clone().unwrap(), parsed);
    assert_eq!(only.refused(), 0);

    let mut edited = template_bytes.clone();
    edited.extend_from_slice(b"\n# edited\n");
    let other = entries_ahead("test", &edited, Some(&root));
    assert_eq!(other[0], ahead[0], "the same root manifest");
    assert_ne!(other[1].0, ahead[1].0, "another template text, another key");
    assert!(entries_ahead("test", &template_bytes, None).is_empty());
}
