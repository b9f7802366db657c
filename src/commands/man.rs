//! `pipetrim man [DIR]`: man pages generated from the clap types (nothing
//! is written by hand, so they match the binary that made them).

use std::path::Path;

use clap::CommandFactory;

use crate::cli::Cli;
use crate::error::Error;

/// Without `dir`, `pipetrim.1` on stdout; with it, one page per command
/// (`pipetrim.1`, `pipetrim-trim.1`, …) written into `dir`.
pub fn run(dir: Option<&Path>) -> Result<i32, Error> {
    let cmd = Cli::command();
    let Some(dir) = dir else {
        let mut out = Vec::new();
        render(&cmd, &mut out)?;
        return super::write_stdout(&out);
    };
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::Io(format!("cannot create `{}`: {e}", dir.display())))?;
    let mut cmd = cmd.disable_help_subcommand(true);
    cmd.build();
    let mut written = Vec::new();
    write_pages(&cmd, dir, &mut written)?;
    for p in &written {
        println!("{}", p.display());
    }
    Ok(0)
}

fn render(cmd: &clap::Command, out: &mut Vec<u8>) -> Result<(), Error> {
    clap_mangen::Man::new(cmd.clone())
        .render(out)
        .map_err(|e| Error::Io(format!("cannot render the man page: {e}")))
}

/// Writes `cmd`'s page and, recursively, its subcommands' (a built
/// command names them `pipetrim-trim`, as `man pipetrim-trim` finds them).
fn write_pages(
    cmd: &clap::Command,
    dir: &Path,
    written: &mut Vec<std::path::PathBuf>,
) -> Result<(), Error> {
    let path = clap_mangen::Man::new(cmd.clone())
        .generate_to(dir)
        .map_err(|e| {
            Error::Io(format!(
                "cannot write a man page into `{}`: {e}",
                dir.display()
            ))
        })?;
    written.push(path);
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_pages(sub, dir, written)?;
    }
    Ok(())
}
