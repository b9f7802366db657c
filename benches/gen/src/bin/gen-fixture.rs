//! `gen-fixture --scale N DIR`: writes a synthetic monorepo (a git
//! repository) for benchmarks and tests, and says what it generated.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use serde_json::json;

#[derive(Parser, Debug)]
#[command(
    name = "gen-fixture",
    about = "Write a synthetic monorepo (a git repository) for benchmarks and tests."
)]
struct Args {
    /// Size: 1 is ~120 crates, 45 images, 100 compositions, ~10,000 files; N multiplies by N.
    #[arg(long, default_value_t = 1)]
    scale: u32,
    #[arg(long, default_value_t = pipetrim_gen::DEFAULT_SEED)]
    seed: u64,
    /// Output format of the summary.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// A directory that does not exist or is empty.
    dir: PathBuf,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Text,
    Json,
}

fn main() -> ExitCode {
    let a = Args::parse();
    let s = match pipetrim_gen::generate(&a.dir, a.scale, a.seed) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: cannot generate `{}`: {e}", a.dir.display());
            return ExitCode::from(2);
        }
    };
    match a.format {
        Format::Text => println!(
            "{}: {} files, {} crates, {} images, {} compositions, {} Python modules, {} steps; branch `feature` changes {}",
            a.dir.display(),
            s.files,
            s.crates,
            s.images,
            s.compositions,
            s.python_modules,
            s.steps,
            s.changed.join(", ")
        ),
        Format::Json => {
            let v = json!({
                "dir": a.dir, "files": s.files, "crates": s.crates, "images": s.images,
                "compositions": s.compositions, "python_modules": s.python_modules, "steps": s.steps,
                "changed": s.changed, "main": s.main_commit, "feature": s.feature_commit,
            });
            println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        }
    }
    ExitCode::SUCCESS
}
