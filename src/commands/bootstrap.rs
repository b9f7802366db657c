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
