//! A loaded checkout: the salsa database and the workspace inputs. The same
//! engine serves one-shot commands, `watch`, the benches and the tests.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use pipetrim_queries::{Database, Workspace};
use salsa::Setter;

use crate::error::Error;
use crate::repo::indexload::IndexLoader;
use crate::repo::load::{DiskLoader, scan_cached};

/// How to build the model.
#[derive(Debug, Clone)]
pub struct SessionOptions {
    pub pipeline: String,
    pub python_roots: Vec<String>,
    pub lazy_imports: bool,
    /// The persistent cache's directory; `None` runs without it.
    pub cache_dir: Option<PathBuf>,
    /// Read the checkout as the git index records it (`--from-index`,
    /// [`crate::repo::indexload`]), not the work tree.
    pub from_index: bool,
}

impl Default for SessionOptions {
    fn default() -> Self {
        SessionOptions {
            pipeline: "test".into(),
            python_roots: vec!["misc/python".into()],
            lazy_imports: false,
            cache_dir: None,
            from_index: false,
        }
    }
}

pub struct Session {
    pub root: PathBuf,
    pub db: Database,
    pub ws: Workspace,
}

impl Session {
    /// Loads the visible files of `root`; contents are read on demand.
    pub fn open(root: &Path, opts: &SessionOptions) -> Result<Self, Error> {
        if opts.from_index {
            let (files, known, loader) = IndexLoader::open(root)?;
            let mut s = Self::from_parts(root, files, Arc::new(loader), opts);
            let fs = s.ws.files(&s.db);
            fs.set_known(&mut s.db).to(known);
            return Ok(s);
        }
        let cache = opts.cache_dir.as_deref().map(crate::cache::shared);
        let (files, index) = scan_cached(root, cache.as_deref())?;
        Ok(Self::from_parts(
            root,
            files,
            Arc::new(DiskLoader::with_index(root, index)),
            opts,
        ))
    }

    /// A session over given files and loader (tests, benches, generated repos).
    pub fn from_parts(
        root: &Path,
        files: Vec<String>,
        loader: Arc<dyn pipetrim_queries::Loader>,
        opts: &SessionOptions,
    ) -> Self {
        let mut db = Database::new(loader);
        if let Some(dir) = &opts.cache_dir {
            let cache: Arc<dyn pipetrim_queries::cache::LeafCache> = crate::cache::shared(dir);
            db.set_leaf_cache(Some(cache));
        }
        let ws = db.workspace(
            files,
            Vec::new(),
            None,
            &opts.pipeline,
            opts.python_roots.clone(),
            opts.lazy_imports,
        );
        Session {
            root: root.to_path_buf(),
            db,
            ws,
        }
    }

    /// Sets the change set (sorted and deduplicated here).
    pub fn set_changes(&mut self, mut paths: Vec<String>, unknown: Option<String>) {
        paths.sort();
        paths.dedup();
        let cs = self.ws.changes(&self.db);
        if cs.paths(&self.db).as_slice() != paths.as_slice() {
            cs.set_paths(&mut self.db).to(Arc::new(paths));
        }
        if *cs.unknown(&self.db) != unknown {
            cs.set_unknown(&mut self.db).to(unknown);
        }
    }

    /// Replaces the visible file list (after files were added or removed).
    pub fn set_files(&mut self, mut paths: Vec<String>) {
        paths.sort();
        paths.dedup();
        let fs = self.ws.files(&self.db);
        if fs.paths(&self.db).as_slice() != paths.as_slice() {
            fs.set_paths(&mut self.db).to(Arc::new(paths));
            // Known stamps go by position: they no longer line up.
            if fs.known(&self.db).is_some() {
                fs.set_known(&mut self.db).to(None);
            }
        }
    }

    pub fn files(&self) -> &[String] {
        self.ws.files(&self.db).paths(&self.db)
    }
}
