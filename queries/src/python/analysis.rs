//! A composition's analysis (its import closure and images), kept in the
//! persistent cache like a leaf.
//!
//! Recomputing it from cached summaries is still most of a warm run: name
//! lookups through every module the composition reaches. So the result is
//! stored too, under a key that covers everything it depends on, and
//! checked on load:
//!
//! - the summaries of the files it read: their paths and blob ids are
//!   stored with the entry and compared with the files' stamps on load,
//!   so an edit of any of them is a miss;
//! - the part of the file set the analysis can see. It reads the file set
//!   in four places: the module index (the paths below the Python roots),
//!   `package_dirs` for the wrong-root fail safe (every `__init__.py` of
//!   the checkout), [`super::imports::Lookup::find`] for a file outside
//!   the roots (paths below that file's own directory only) and
//!   `package_modules` for dynamic imports (paths below the importer's
//!   directory). A file outside the roots enters the closure only through
//!   `find` from the composition or from such a file, so it lies below the
//!   composition's directory, by induction; the importers' directories
//!   are then below a root or below the composition's directory. The key
//!   holds the paths below each root, every `__init__.py`, and the paths
//!   below the composition's directory (an addition or removal anywhere
//!   else cannot change the answer);
//! - the options (roots, `--lazy-imports`), the encodings ([`SCHEMA`]) and
//!   the analysis code itself (a digest of its source): in the key.
//!
//! An entry is written only when every file it read carries a blob id the
//! loader vouched for, so a file edited while it was read never poisons it.

use std::sync::{Arc, OnceLock};

use rustc_hash::FxHashMap;
use sha1::{Digest, Sha1};

use crate::cache::{Kind, SCHEMA, encode, key, lookup};
use crate::db::{Db, File, FileSet, Options};
use crate::diag::Diagnostic;
use crate::paths;

use super::images::{CompositionImages, ImageSource, image_analysis};
use super::imports::{ImportClosure, Unresolved, Via, import_closure};
use super::imports::{unrank_diagnostic, unrank_notes};
use super::summary::line_of_rank;

/// What the analysis of a composition found.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct CompositionAnalysis {
    pub imports: ImportClosure,
    pub images: CompositionImages,
}

/// The import closure and images of a composition: from the persistent
/// cache when the files it read and the file set it saw are unchanged,
/// else computed (and then stored).
#[salsa::tracked(returns(ref))]
pub fn composition_analysis(
    db: &dyn Db,
    files: FileSet,
    options: Options,
    composition: File,
) -> Arc<CompositionAnalysis> {
    // A re-run in this process (after an edit, in `watch`): the entry for
    // the new state would rarely be read again, and looking it up and
    // storing it would cost more than the analysis.
    let cache = db.leaf_cache().filter(|_| !db.analysed_before(composition));
    if cache.is_some()
        && let Some(found) = stored_analysis(db, files, options, composition)
    {
        return found.clone();
    }
    let ranked = ranked_analysis(db, files, options, composition);
    let found = unrank(db, &ranked.analysis);
    if let Some(cache) = cache {
        // Every file it read: the closure's (each one's direct imports)
        // and the image lookups'.
        let read: Vec<File> = std::iter::once(composition)
            .chain(found.imports.via.keys().map(|p| db.file(p)))
            .chain(ranked.read.iter().copied())
            .collect();
        if let Some(bytes) = Stored::new(db, &read, &found).and_then(|s| encode(&s)) {
            cache.put(analysis_key(db, files, options, composition), bytes);
        }
    }
    Arc::new(found)
}

/// What the steps' inputs read of a composition's analysis: the closure's
/// files and fail-safe notes, the image names and the every-image note;
/// not where each import or image comes from (`via`, which carries lines).
/// A firewall: its equality ignores `via`, so an edit that only moves lines
/// (which changes `via`) leaves it equal, and the plan does not rebuild the
/// inputs of every step that uses the composition (1,500 at scale 10).
#[derive(Clone, Debug)]
pub struct CompositionInputs(Arc<CompositionAnalysis>);

impl CompositionInputs {
    pub fn files(&self) -> &[String] {
        &self.0.imports.files
    }
    pub fn unsure(&self) -> &[Diagnostic] {
        &self.0.imports.unsure
    }
    pub fn unresolved(&self) -> &[super::imports::Unresolved] {
        &self.0.imports.unresolved
    }
    pub fn image_names(&self) -> &[String] {
        &self.0.images.names
    }
    pub fn every_image(&self) -> Option<&Diagnostic> {
        self.0.images.every_image.as_ref()
    }
}

impl PartialEq for CompositionInputs {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
            || (self.files() == other.files()
                && self.unsure() == other.unsure()
                && self.unresolved() == other.unresolved()
                && self.image_names() == other.image_names()
                && self.every_image() == other.every_image())
    }
}

impl Eq for CompositionInputs {}

/// [`CompositionInputs`] of a composition.
#[salsa::tracked(returns(ref))]
pub fn composition_inputs(
    db: &dyn Db,
    files: FileSet,
    options: Options,
    composition: File,
) -> CompositionInputs {
    CompositionInputs(composition_analysis(db, files, options, composition).clone())
}

/// A composition's analysis over the shapes of its modules
/// ([`super::summary::module_shape`]): each line is a rank in its file.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RankedAnalysis {
    pub analysis: CompositionAnalysis,
    /// The files whose summaries the image lookups read.
    pub read: Vec<File>,
}

/// The closure and images of a composition, computed over its modules'
/// shapes. An edit that only moves lines in a module leaves this memo
/// valid: [`composition_analysis`] then only maps its lines again.
#[salsa::tracked(returns(ref))]
pub fn ranked_analysis(
    db: &dyn Db,
    files: FileSet,
    options: Options,
    composition: File,
) -> Arc<RankedAnalysis> {
    let imports = import_closure(db, files, options, composition);
    let images = image_analysis(db, files, options, composition);
    Arc::new(RankedAnalysis {
        analysis: CompositionAnalysis {
            imports,
            images: images.images,
        },
        read: images.read,
    })
}

/// `ranked` with real line numbers: each line is a rank in the file named
/// beside it (the importer of a `via` edge, an image source's file, a
/// diagnostic's file).
fn unrank(db: &dyn Db, ranked: &CompositionAnalysis) -> CompositionAnalysis {
    let mut out = ranked.clone();
    let c = &mut out.imports;
    for via in c.via.values_mut() {
        via.line = line_of_rank(db, db.file(&via.importer), via.line);
    }
    unrank_notes(db, &mut c.unsure, &mut c.unresolved);
    let i = &mut out.images;
    if let Some(d) = &mut i.every_image {
        unrank_diagnostic(db, d);
    }
    for sources in i.via.values_mut() {
        for s in sources {
            s.line = line_of_rank(db, db.file(&s.file), s.line);
        }
    }
    out
}

/// The analysis the persistent cache holds for the composition's current
/// state, if it holds one (`None` also without a cache). A query of its
/// own, apart from [`composition_analysis`], so that the priming can ask
/// which compositions will need computing (and parse their modules in
/// parallel first) without decoding any entry twice.
#[salsa::tracked(returns(ref))]
pub fn stored_analysis(
    db: &dyn Db,
    files: FileSet,
    options: Options,
    composition: File,
) -> Option<Arc<CompositionAnalysis>> {
    let cache = db.leaf_cache()?;
    let key = analysis_key(db, files, options, composition);
    let found = lookup::<Stored, _>(cache, &key, |s| s.restore(db))?;
    Some(Arc::new(found))
}

/// A digest of the analysis code: a result computed by other code is
/// never reused, even if nobody bumped [`SCHEMA`].
fn code_digest() -> u64 {
    static DIGEST: OnceLock<u64> = OnceLock::new();
    *DIGEST.get_or_init(|| {
        let sources = [
            include_str!("analysis.rs"),
            include_str!("imports.rs"),
            include_str!("images.rs"),
            include_str!("summary.rs"),
            include_str!("mod.rs"),
            include_str!("../paths.rs"),
            include_str!("../db.rs"),
            include_str!("../cache.rs"),
            include_str!("../diag.rs"),
        ];
        crate::cache::code_digest(&sources)
    })
}

/// What every composition's analysis can see of the file set: the paths
/// below each Python root and every package's `__init__.py`.
#[salsa::tracked(returns(copy))]
pub fn python_view(db: &dyn Db, files: FileSet, options: Options) -> [u8; 20] {
    let mut h = Sha1::new();
    for root in options.python_roots(db) {
        crate::cache::hash_str(&mut h, root);
        let under = files.under(db, root.trim_end_matches('/'));
        h.update((under.len() as u64).to_le_bytes());
        for p in under {
            crate::cache::hash_str(&mut h, p);
        }
    }
    h.update(b"packages");
    for p in files.paths(db).iter() {
        if p.ends_with("/__init__.py") {
            crate::cache::hash_str(&mut h, p);
        }
    }
    h.finalize().into()
}

/// The cache key of a composition's analysis (see the module docs).
fn analysis_key(db: &dyn Db, files: FileSet, options: Options, composition: File) -> Vec<u8> {
    let mut h = Sha1::new();
    h.update(code_digest().to_le_bytes());
    h.update(SCHEMA.to_le_bytes());
    let roots = options.python_roots(db);
    h.update((roots.len() as u64).to_le_bytes());
    for r in roots {
        crate::cache::hash_str(&mut h, r);
    }
    h.update([u8::from(options.lazy_imports(db))]);
    h.update(python_view(db, files, options));
    let path = composition.path(db);
    crate::cache::hash_str(&mut h, path);
    let own = files.under(db, paths::parent(path));
    h.update((own.len() as u64).to_le_bytes());
    for p in own {
        crate::cache::hash_str(&mut h, p);
    }
    key(Kind::CompositionAnalysis, &h.finalize().into())
}

/// An [`ImageSource`]: (file, line, scope).
type StoredSource = (u32, usize, Option<String>);

/// A stored analysis: the paths it names once, by index.
#[derive(serde::Serialize, serde::Deserialize)]
struct Stored {
    paths: Vec<String>,
    /// Every file the analysis read, with the blob id it had.
    deps: Vec<(u32, [u8; 20])>,
    files: Vec<u32>,
    unsure: Vec<Diagnostic>,
    unresolved: Vec<Unresolved>,
    /// (file, importer, line, function level).
    via: Vec<(u32, u32, usize, bool)>,
    names: Vec<String>,
    every_image: Option<Diagnostic>,
    /// Per name: (file, line, scope).
    sources: Vec<(String, Vec<StoredSource>)>,
}

#[derive(Default)]
struct Table<'a> {
    paths: Vec<String>,
    index: FxHashMap<&'a str, u32>,
}

impl<'a> Table<'a> {
    fn id(&mut self, p: &'a str) -> Option<u32> {
        if let Some(&i) = self.index.get(p) {
            return Some(i);
        }
        let i = u32::try_from(self.paths.len()).ok()?;
        self.paths.push(p.to_string());
        self.index.insert(p, i);
        Some(i)
    }
}

impl Stored {
    /// The entry for `found`, or `None` when a file it read has no blob id
    /// the loader vouched for.
    fn new(db: &dyn Db, read: &[File], found: &CompositionAnalysis) -> Option<Stored> {
        let mut t = Table::default();
        let mut deps = Vec::with_capacity(read.len());
        for &f in read {
            let blob = crate::cache::vouched_blob(db, f)?;
            deps.push((t.id(f.path(db))?, blob));
        }
        deps.sort_unstable();
        deps.dedup();
        let c = &found.imports;
        let files = c.files.iter().map(|p| t.id(p)).collect::<Option<_>>()?;
        let mut via = Vec::with_capacity(c.via.len());
        for (p, v) in &c.via {
            via.push((t.id(p)?, t.id(&v.importer)?, v.line, v.function_level));
        }
        let i = &found.images;
        let mut sources = Vec::with_capacity(i.via.len());
        for (name, srcs) in &i.via {
            let mut v = Vec::with_capacity(srcs.len());
            for s in srcs {
                v.push((t.id(&s.file)?, s.line, s.scope.clone()));
            }
            sources.push((name.clone(), v));
        }
        Some(Stored {
            paths: t.paths,
            deps,
            files,
            unsure: c.unsure.clone(),
            unresolved: c.unresolved.clone(),
            via,
            names: i.names.clone(),
            every_image: i.every_image.clone(),
            sources,
        })
    }

    /// The analysis, if every file it read still has the blob id it had.
    fn restore(self, db: &dyn Db) -> Option<CompositionAnalysis> {
        let path = |i: u32| self.paths.get(i as usize);
        for &(i, blob) in &self.deps {
            if db.file(path(i)?).stamp(db).blob() != Some(&blob) {
                return None;
            }
        }
        let files = self
            .files
            .iter()
            .map(|&i| path(i).cloned())
            .collect::<Option<_>>()?;
        let mut via = std::collections::BTreeMap::new();
        for &(p, importer, line, function_level) in &self.via {
            via.insert(
                path(p)?.clone(),
                Via {
                    importer: path(importer)?.clone(),
                    line,
                    function_level,
                },
            );
        }
        let mut sources = std::collections::BTreeMap::new();
        for (name, srcs) in &self.sources {
            let mut v = Vec::with_capacity(srcs.len());
            for (f, line, scope) in srcs {
                v.push(ImageSource {
                    file: path(*f)?.clone(),
                    line: *line,
                    scope: scope.clone(),
                });
            }
            sources.insert(name.clone(), v);
        }
        Some(CompositionAnalysis {
            imports: ImportClosure {
                files,
                unsure: self.unsure,
                unresolved: self.unresolved,
                via,
            },
            images: CompositionImages {
                names: self.names,
                every_image: self.every_image,
                via: sources,
            },
        })
    }
}
