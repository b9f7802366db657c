//! `pipetrim fingerprint`: image fingerprints and specs, bit for bit as the
//! reference (SPEC §8).

use std::sync::Arc;

use pipetrim_queries::fingerprint::{Variant, base32, fingerprints, fingerprints_of};
use pipetrim_queries::images::image_graph;
use pipetrim_queries::prime;
use pipetrim_queries::specs::image_spec;
use serde_json::json;

use super::{print_out, session};
use crate::ci::builds::registry;
use crate::cli::{FingerprintArgs, Global};
use crate::error::Error;
use crate::output::progress::hash_image_inputs;

pub fn run(g: &Global, a: &FingerprintArgs) -> Result<i32, Error> {
    // A one-shot run: the OS frees the database faster than dropping it
    // query by query would.
    let s = std::mem::ManuallyDrop::new(session(g)?);
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
    crate::timeline::mark("graph");
    // `--image`: that image and what it is built on, nothing else (an
    // unreadable file in another image is no error for this one).
    let names: Vec<String> = match &a.image {
        Some(i) if !graph.images.contains_key(i) => {
            return Err(Error::Usage(format!("no image named `{i}`")));
        }
        Some(i) => graph.dependency_order([i.as_str()]),
        None => graph.images.keys().cloned().collect(),
    };
    // From the index, a warm run over a few images only looks results up:
    // no worker threads unless contents need hashing (`crate::pool`).
    // Nothing used rayon yet.
    if g.from_index && names.len() <= crate::pool::FEW {
        crate::pool::this_thread_only();
    }
    // Warm: the own hashes come from the cache; hash only the inputs of
    // the images that miss.
    prime::prime_spec_identities(db, files, &names);
    crate::timeline::mark("spec identities");
    let missed = prime::unstored_self_hashes(db, files, variant, &names);
    hash_image_inputs(db, files, &missed);
    prime::prime_self_hashes(db, files, variant, &names);
    crate::timeline::mark("own hashes");
    let fps = match &a.image {
        Some(i) => Arc::new(fingerprints_of(db, files, variant, [i.as_str()])?),
        None => fingerprints(db, files, variant).clone()?,
    };
    crate::timeline::mark("fingerprints");
    let reg = registry(&s, a.registry.as_deref());
    let mut out = Vec::new();
    let mut text = String::new();
    for (name, d) in fps.iter() {
        if a.image.as_ref().is_some_and(|i| i != name) {
            continue;
        }
        let fp = base32(d);
        let spec = image_spec(&reg, &a.prefix, name, d);
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
