//! Diagnostics: what went wrong, where, and what to do about it.

use std::fmt;

/// An error (or a fail-safe note) about the repository's content, naming the
/// file and, where there is one, the line. Cloneable and hashable so that it
/// can be the result of a memoized query.
#[derive(
    Clone,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    serde::Serialize,
    serde::Deserialize,
    salsa::SalsaValue,
)]
pub struct Diagnostic {
    pub file: Option<String>,
    pub line: Option<usize>,
    pub message: String,
    pub hint: Option<String>,
}

impl Diagnostic {
    pub fn new(message: impl Into<String>) -> Self {
        Diagnostic {
            file: None,
            line: None,
            message: message.into(),
            hint: None,
        }
    }

    pub fn in_file(file: impl Into<String>, message: impl Into<String>) -> Self {
        Diagnostic {
            file: Some(file.into()),
            ..Diagnostic::new(message)
        }
    }

    pub fn at_line(mut self, line: Option<usize>) -> Self {
        self.line = line;
        self
    }

    /// Points at the first line of `text` that contains `needle`, if any.
    pub fn near(self, text: &str, needle: &str) -> Self {
        let line = line_of(text, needle);
        self.at_line(line)
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

/// 1-based line of the first occurrence of `needle` in `text`.
pub fn line_of(text: &str, needle: &str) -> Option<usize> {
    let at = text.find(needle)?;
    Some(text[..at].bytes().filter(|&b| b == b'\n').count() + 1)
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.file, self.line) {
            (Some(file), Some(line)) => write!(f, "`{file}`:{line}: ")?,
            (Some(file), None) => write!(f, "`{file}`: ")?,
            _ => {}
        }
        f.write_str(&self.message)?;
        if let Some(h) = &self.hint {
            write!(f, " (hint: {h})")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostic {}

pub type Result<T, E = Diagnostic> = std::result::Result<T, E>;
