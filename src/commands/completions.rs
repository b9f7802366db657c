//! `pipetrim completions SHELL`: the completion script, generated from the
//! clap types so it never lags behind the flags.

use clap::CommandFactory;
use clap_complete::Shell as Target;

use crate::cli::{Cli, Shell};
use crate::error::Error;

pub fn run(shell: Shell) -> Result<i32, Error> {
    let target = match shell {
        Shell::Bash => Target::Bash,
        Shell::Zsh => Target::Zsh,
        Shell::Fish => Target::Fish,
    };
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(target, &mut cmd, "pipetrim", &mut out);
    super::write_stdout(&out)
}
