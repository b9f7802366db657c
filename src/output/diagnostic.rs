//! A [`Diagnostic`] for a terminal, as cargo and ruff show theirs: the
//! message with its file and line, the source line with a caret under it,
//! and the hint as `help:`. The JSON `Diagnostic` is not touched.
//!
//! The title keeps the one-line form (`` `file`:12: message ``) that people
//! and scripts grep for; the snippet is added when the file can be read.

use std::path::Path;

use annotate_snippets::{AnnotationKind, Group, Level, Renderer, Snippet};
use pipetrim_queries::Diagnostic;

/// How bad it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

/// Files above this are not read for a snippet (a line is all we show).
const MAX_SOURCE: u64 = 8 * 1024 * 1024;

/// The text of line `d.line` of `d.file` under `root`, if both are set and
/// the file is readable UTF-8 (lossy) with that many lines.
pub fn source_line(root: &Path, d: &Diagnostic) -> Option<String> {
    let (file, line) = (d.file.as_deref()?, d.line?);
    let path = root.join(file);
    // Not a FIFO (the read would block) nor anything large.
    let meta = std::fs::metadata(&path).ok()?;
    if !meta.is_file() || meta.len() > MAX_SOURCE {
        return None;
    }
    let bytes = std::fs::read(&path).ok()?;
    let text = String::from_utf8_lossy(&bytes);
    text.lines()
        .nth(line.checked_sub(1)?)
        .map(|l| l.trim_end_matches('\r').to_string())
}

/// Renders `d` with ANSI styles (strip them with an `anstream` writer
/// where colour is off). `source` is the text of line `d.line`.
pub fn render(d: &Diagnostic, severity: Severity, source: Option<&str>) -> String {
    let level = match severity {
        Severity::Error => Level::ERROR,
        Severity::Warning => Level::WARNING,
    };
    let title = match (&d.file, d.line) {
        (Some(f), Some(l)) => format!("`{f}`:{l}: {}", d.message),
        (Some(f), None) => format!("`{f}`: {}", d.message),
        _ => d.message.clone(),
    };
    let mut group = Group::with_title(level.primary_title(title));
    if let (Some(file), Some(line), Some(src)) = (&d.file, d.line, source) {
        // The caret spans the line's text, without its indentation.
        let start = src.len() - src.trim_start().len();
        let end = src.trim_end().len().max(start);
        group = group.element(
            Snippet::source(src)
                .line_start(line)
                .path(file.as_str())
                .annotation(AnnotationKind::Primary.span(start..end)),
        );
    }
    if let Some(h) = &d.hint {
        group = group.element(Level::HELP.message(h.as_str()));
    }
    Renderer::styled().render(&[group])
}

/// A message without a file: `error: …` / `warning: …`, styled.
pub fn render_message(severity: Severity, message: &str) -> String {
    let level = match severity {
        Severity::Error => Level::ERROR,
        Severity::Warning => Level::WARNING,
    };
    Renderer::styled().render(&[Group::with_title(level.primary_title(message))])
}

/// Prints a failed command's error on stderr: a [`Diagnostic`] with its
/// source line (read under `repo`), anything else as `error: …`.
pub fn print_error(e: &crate::error::Error, repo: &Path) {
    use std::io::Write;
    let text = match e {
        crate::error::Error::Input(d) => {
            render(d, Severity::Error, source_line(repo, d).as_deref())
        }
        e => render_message(Severity::Error, &e.to_string()),
    };
    let _ = writeln!(anstream::stderr(), "{text}");
}

/// Prints `warning: {message}` on stderr (coloured where it may be).
pub fn warn(message: impl std::fmt::Display) {
    use std::io::Write;
    let text = render_message(Severity::Warning, &message.to_string());
    let _ = writeln!(anstream::stderr(), "{text}");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(s: &str) -> String {
        anstream::adapter::strip_str(s).to_string()
    }

    #[test]
    fn without_a_source_line_it_is_the_one_line_form() {
        let d = Diagnostic::in_file("a.yml", "bad").hint("fix it");
        let s = plain(&render(&d, Severity::Error, None));
        assert!(s.starts_with("error: `a.yml`: bad\n"), "{s}");
        assert!(s.contains("help: fix it"), "{s}");
    }

    #[test]
    fn source_line_reads_the_line_or_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("f.py"), "a\r\n  b = (\nc\n").expect("write");
        let d = |line| Diagnostic::in_file("f.py", "m").at_line(line);
        assert_eq!(
            source_line(dir.path(), &d(Some(2))).as_deref(),
            Some("  b = (")
        );
        assert_eq!(source_line(dir.path(), &d(Some(1))).as_deref(), Some("a"));
        assert_eq!(source_line(dir.path(), &d(Some(9))), None);
        assert_eq!(source_line(dir.path(), &d(Some(0))), None);
        assert_eq!(source_line(dir.path(), &d(None)), None);
        let missing = Diagnostic::in_file("nope.py", "m").at_line(Some(1));
        assert_eq!(source_line(dir.path(), &missing), None);
    }
}
