//! Temporary stand-in; replaced by the full git pathspec matcher.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PathspecSet {
    specs: Vec<String>,
}
#[derive(Debug, Clone, PartialEq, Eq, Hash, thiserror::Error)]
#[error("bad pathspec `{0}`")]
pub struct PathspecError(pub String);
impl PathspecSet {
    pub fn new<I: IntoIterator<Item = S>, S: AsRef<str>>(specs: I) -> Result<Self, PathspecError> {
        Ok(PathspecSet {
            specs: specs.into_iter().map(|s| s.as_ref().to_string()).collect(),
        })
    }
    pub fn matches(&self, path: &str) -> bool {
        self.specs
            .iter()
            .any(|s| s == "*" || s == path || crate::paths::is_under(path, s))
    }
    pub fn is_empty(&self) -> bool {
        self.specs.is_empty()
    }
}
