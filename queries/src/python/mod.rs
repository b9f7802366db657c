//! Temporary stand-in; replaced by the static import and image analysis.
use crate::db::{Db, File, FileSet, Options};
use crate::diag::Diagnostic;

#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct ImportClosure {
    pub files: Vec<String>,
    pub unsure: Vec<Diagnostic>,
}
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct CompositionImages {
    pub names: Vec<String>,
    pub every_image: Option<Diagnostic>,
}
#[salsa::tracked(returns(ref))]
pub fn composition_imports(
    _db: &dyn Db,
    _files: FileSet,
    _options: Options,
    _composition: File,
) -> ImportClosure {
    ImportClosure::default()
}
#[salsa::tracked(returns(ref))]
pub fn composition_images(
    _db: &dyn Db,
    _files: FileSet,
    _options: Options,
    _composition: File,
) -> CompositionImages {
    CompositionImages::default()
}
