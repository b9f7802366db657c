//! The change set a command asks for (SPEC §5): an explicit list
//! (`--changed-files FILE|-`), or the merge-base diff against a base ref,
//! plus uncommitted work on request.

use std::io::Read;
use std::path::Path;

use crate::error::Error;
use crate::repo::git::{self, Changes};

/// The changed paths, or why they cannot be known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedChanges {
    /// Repository-relative, `./` stripped; empty when unknown.
    pub paths: Vec<String>,
    /// Why the change set is unknown: every step is then kept (SPEC §10).
    pub unknown: Option<String>,
    /// What the paths were compared against, for the report.
    pub against: String,
}

/// Which uncommitted work counts as changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Uncommitted {
    No,
    /// Staged, unstaged and untracked (`--uncommitted`).
    All,
    /// What the index holds only (`--uncommitted --from-index`).
    Staged,
}

/// The change set from `changed_files` (a file, or `-` for stdin) if
/// given, else from git: the merge base of HEAD and `base` (default
/// `origin/main`, then `main`), plus uncommitted changes if asked.
pub fn resolve(
    root: &Path,
    base: Option<&str>,
    changed_files: Option<&str>,
    uncommitted: Uncommitted,
) -> Result<ResolvedChanges, Error> {
    if let Some(src) = changed_files {
        let mut text = String::new();
        if src == "-" {
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|e| Error::Io(format!("cannot read stdin: {e}")))?;
        } else {
            text = std::fs::read_to_string(src)
                .map_err(|e| Error::Usage(format!("cannot read `{src}`: {e}")))?;
        }
        let paths: Vec<String> = text
            .lines()
            .map(|l| l.trim().trim_start_matches("./").to_string())
            .filter(|l| !l.is_empty())
            .collect();
        return Ok(ResolvedChanges {
            paths,
            unknown: None,
            against: if src == "-" {
                "the list on stdin".to_string()
            } else {
                format!("the list in `{src}`")
            },
        });
    }
    match git::changes_against(root, base) {
        Changes::Known {
            base,
            merge_base,
            mut paths,
        } => {
            if uncommitted != Uncommitted::No {
                let more = git::uncommitted_parts(root).map(|p| match uncommitted {
                    Uncommitted::Staged => p.staged,
                    _ => p.staged.into_iter().chain(p.worktree).collect(),
                });
                match more {
                    Ok(more) => paths.extend(more),
                    Err(e) => {
                        return Ok(ResolvedChanges {
                            paths: Vec::new(),
                            unknown: Some(format!("uncommitted changes unknown: {e}")),
                            against: base,
                        });
                    }
                }
            }
            Ok(ResolvedChanges {
                paths,
                unknown: None,
                against: format!(
                    "merge base {} of HEAD and `{base}`",
                    &merge_base[..merge_base.len().min(10)]
                ),
            })
        }
        Changes::Unknown(why) => Ok(ResolvedChanges {
            paths: Vec::new(),
            unknown: Some(why),
            against: "unknown".into(),
        }),
    }
}
