//! `pipetrim bootstrap`: checks the ci-builder images; prints the bootstrap
//! pipeline when some are missing, else runs the generator (pipetrim's own
//! trim) as `ci/mkpipeline.sh` would (SPEC §9).

use clap::Parser;

use super::session;
use crate::ci::bootstrap::{BootstrapPlan, CommandCheck, mkpipeline_command, plan_bootstrap};
use crate::cli::{BootstrapArgs, Cli, Global};
use crate::error::Error;
use crate::output::diagnostic::warn;

pub fn run(g: &Global, a: &BootstrapArgs) -> Result<i32, Error> {
    let s = session(g)?;
    let check = CommandCheck {
        template: a.exists_cmd.clone(),
    };
    let plan = plan_bootstrap(&s.root, s.files(), &check, &a.target, &a.args)
        .map_err(|e| Error::Usage(e.to_string()))?;
    match plan {
        BootstrapPlan::Pipeline {
            yaml,
            missing,
            check_failures,
        } => {
            for f in &check_failures {
                warn(format_args!(
                    "existence check failed, treating as missing: {f:?}"
                ));
            }
            eprintln!(
                "{} ci-builder image(s) missing: bootstrap pipeline on stdout",
                missing.len()
            );
            print!("{yaml}");
            Ok(0)
        }
        BootstrapPlan::AllPresent { .. } if a.print => {
            let cmd = mkpipeline_command(&a.target, &a.args);
            eprintln!("every ci-builder image exists; the generator runs directly:");
            println!("{}", cmd.join(" "));
            Ok(0)
        }
        BootstrapPlan::AllPresent { .. } => {
            // Every image exists: the generator is pipetrim's own trim.
            eprintln!(
                "every ci-builder image exists; trimming pipeline `{}`",
                a.target
            );
            let mut argv: Vec<std::ffi::OsString> = vec!["pipetrim".into(), "--repo".into()];
            argv.push(g.repo.clone().into_os_string());
            argv.extend(["--pipeline".into(), a.target.clone().into()]);
            argv.extend(model_flags(g));
            argv.push("trim".into());
            argv.extend(a.args.iter().map(Into::into));
            let cli = Cli::try_parse_from(argv).map_err(|e| {
                Error::Usage(format!(
                    "bootstrap: the generator arguments are not `trim` flags: {e}"
                ))
            })?;
            crate::cli::run(cli)
        }
    }
}

/// The global flags that shape the model, passed on to the generator's
/// trim (`pipetrim --from-index bootstrap` trims from the index too).
fn model_flags(g: &Global) -> Vec<std::ffi::OsString> {
    let mut out: Vec<std::ffi::OsString> = Vec::new();
    for root in &g.python_roots {
        out.extend(["--python-root".into(), root.into()]);
    }
    if g.lazy_imports {
        out.push("--lazy-imports".into());
    }
    if let Some(dir) = &g.cache_dir {
        out.push("--cache-dir".into());
        out.push(dir.clone().into_os_string());
    }
    if g.no_cache {
        out.push("--no-cache".into());
    }
    if g.from_index {
        out.push("--from-index".into());
    }
    out
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::model_flags;
    use crate::cli::Cli;

    /// The global flags `model_flags` passes on to the generator's trim.
    const PASSED: [&str; 5] = [
        "python_roots",
        "lazy_imports",
        "cache_dir",
        "no_cache",
        "from_index",
    ];
    /// Those it does not: the repository and the pipeline are set from the
    /// bootstrap's own, and the generator's output is the pipeline (YAML).
    const NOT_PASSED: [&str; 3] = ["repo", "pipeline", "format"];

    /// A new global flag fails here until it is passed on to the
    /// generator's trim or listed as deliberately not.
    #[test]
    fn every_global_flag_is_passed_on_or_deliberately_not() {
        let cmd = Cli::command();
        let globals: Vec<String> = cmd
            .get_arguments()
            .filter(|a| a.is_global_set())
            .map(|a| a.get_id().to_string())
            .collect();
        assert!(!globals.is_empty());
        for id in &globals {
            assert!(
                PASSED.contains(&id.as_str()) || NOT_PASSED.contains(&id.as_str()),
                "global flag `{id}`: pass it on in model_flags, or list it in NOT_PASSED"
            );
        }
        // What is passed on arrives: the generator's trim sees the flags.
        let g = Cli::try_parse_from([
            "pipetrim",
            "--python-root",
            "misc/python",
            "--python-root",
            "ci",
            "--lazy-imports",
            "--cache-dir",
            "/tmp/c",
            "--no-cache",
            "--from-index",
            "trim",
        ])
        .unwrap()
        .global;
        let mut argv: Vec<std::ffi::OsString> = vec!["pipetrim".into()];
        argv.extend(model_flags(&g));
        argv.push("trim".into());
        let again = Cli::try_parse_from(argv).unwrap().global;
        let passed = |g: &crate::cli::Global| {
            format!(
                "{:?}",
                (
                    &g.python_roots,
                    g.lazy_imports,
                    &g.cache_dir,
                    g.no_cache,
                    g.from_index
                )
            )
        };
        assert_eq!(passed(&again), passed(&g));
    }
}
