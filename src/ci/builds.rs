//! The images a build of this checkout produces (SPEC §7 build trimming,
//! §8 specs): their registry, and per arch the reference's build hash and
//! whether every image already exists. The rules are in
//! [`pipetrim_queries::specs`]; this module brings the environment, the
//! session and the existence check to them.

use pipetrim_queries::Db;
use pipetrim_queries::fingerprint::{Variant, fingerprints};
use pipetrim_queries::images::image_graph;
use pipetrim_queries::prime;
use pipetrim_queries::specs;
use rayon::prelude::*;

use crate::ci::bootstrap::{CommandCheck, ExistenceCheck};
use crate::ci::finish::{ArchHash, BuildHashes, FinishOptions};
use crate::error::Error;
use crate::output::progress::hash_image_inputs;
use crate::repo::session::Session;

/// The registry of image specs: `flag` (`--registry`) if given, else as the
/// reference decides from `MZ_GHCR` and the commit's `docker.py`.
pub fn registry(s: &Session, flag: Option<&str>) -> String {
    if let Some(r) = flag {
        return r.to_string();
    }
    let docker_py = || {
        let file = s.db.file(specs::DOCKER_PY);
        let bytes = file.content(&s.db).bytes()?;
        std::str::from_utf8(bytes).ok().map(str::to_string)
    };
    let mz_ghcr = std::env::var("MZ_GHCR").ok();
    let docker_py = if mz_ghcr.is_none() { docker_py() } else { None };
    specs::registry(mz_ghcr.as_deref(), docker_py.as_deref(), &|k| {
        std::env::var(k).ok()
    })
    .to_string()
}

/// Per arch: the build hash of the published images' specs (with the
/// build's profile, coverage and sanitizer) and whether all of them exist,
/// asked of `exists_cmd` (`{image}` replaced); without it they count as
/// missing, so the builds run.
pub fn build_hashes(
    s: &Session,
    finish: &FinishOptions,
    exists_cmd: Option<&str>,
) -> Result<BuildHashes, Error> {
    let db = &s.db;
    let files = s.ws.files(db);
    let graph = image_graph(db, files).clone()?;
    let profile = if finish.lto { "RELEASE" } else { "OPTIMIZED" };
    let sanitizer = finish.sanitizer.clone().unwrap_or_else(|| "none".into());
    let reg = registry(s, None);
    let check = exists_cmd.map(|t| CommandCheck {
        template: t.to_string(),
    });
    let names: Vec<String> = graph.images.keys().cloned().collect();
    let variant = |arch: &str| {
        Variant::new(
            db,
            arch.to_string(),
            profile.to_string(),
            finish.coverage,
            sanitizer.clone(),
        )
    };
    // Warm: the own hashes come from the cache; hash only the inputs of
    // the images that miss for either arch.
    prime::prime_spec_identities(db, files, &names);
    let mut missed: Vec<String> = ["x86_64", "aarch64"]
        .iter()
        .flat_map(|arch| prime::unstored_self_hashes(db, files, variant(arch), &names))
        .collect();
    missed.sort_unstable();
    missed.dedup();
    hash_image_inputs(db, files, &missed);
    let arch_hash = |arch: &str| -> Result<ArchHash, Error> {
        let variant = variant(arch);
        prime::prime_self_hashes(db, files, variant, &names);
        let fps = fingerprints(db, files, variant).clone()?;
        let specs = specs::build_specs(&graph, &fps, &reg);
        let all_exist = match &check {
            // A registry query (or a command) per spec: on every core.
            Some(c) => crate::pool::all_cores(|| {
                specs.par_iter().all(|spec| c.exists(spec).unwrap_or(false))
            }),
            None => false,
        };
        Ok(ArchHash {
            hash: specs::build_hash(specs.iter().map(String::as_str)),
            all_exist,
        })
    };
    Ok(BuildHashes {
        x86_64: arch_hash("x86_64")?,
        aarch64: arch_hash("aarch64")?,
    })
}
