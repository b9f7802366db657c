//! The bootstrap of a build (SPEC §9), a re-implementation of
//! `ci/mkpipeline.sh`: check that every ci-builder image exists and, if some
//! do not, emit a pipeline that builds them before running the generator.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;

use pipetrim_queries::specs::{self, env_is_truthy};

use crate::ci::builder::{Arch, BuilderError, BuilderTagger, Flavor};

/// Asks whether an image exists in its registry. Pluggable so the bootstrap
/// is testable without a network.
pub trait ExistenceCheck: Sync {
    /// `Ok(true)`: present; `Ok(false)`: missing; `Err`: the check itself
    /// failed (the bootstrap then treats the image as missing).
    fn exists(&self, image: &str) -> Result<bool, String>;
}

/// Runs a shell command, e.g. `docker manifest inspect {image}`, through
/// `sh -c` with `{image}` replaced by the image reference. Exit status 0
/// means the image exists, any other status that it is missing; failing to
/// run the command (or death by a signal) is an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandCheck {
    pub template: String,
}

impl CommandCheck {
    /// What `bin/ci-builder exists` runs.
    pub fn docker_manifest_inspect() -> Self {
        CommandCheck {
            template: "docker manifest inspect {image}".to_owned(),
        }
    }
}

impl ExistenceCheck for CommandCheck {
    fn exists(&self, image: &str) -> Result<bool, String> {
        // The image goes into a shell command unquoted: only accept the
        // characters an image reference can have.
        if image.is_empty()
            || !image
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "./:-_@".contains(c))
        {
            return Err(format!(
                "refusing to pass `{image}` to a shell: not an image reference"
            ));
        }
        let command = self.template.replace("{image}", image);
        let status = Command::new("sh")
            .arg("-c")
            .arg(&command)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map_err(|e| format!("cannot run `sh -c {command:?}`: {e}"))?;
        match status.code() {
            Some(0) => Ok(true),
            Some(_) => Ok(false),
            None => Err(format!("`{command}` was killed by a signal ({status})")),
        }
    }
}

/// An in-memory registry for tests: images in `present` exist, images in
/// `errors` fail to be checked, anything else is missing. Records every
/// image asked about.
#[derive(Debug, Default)]
pub struct MemoryCheck {
    pub present: HashSet<String>,
    pub errors: HashMap<String, String>,
    asked: Mutex<Vec<String>>,
}

impl MemoryCheck {
    pub fn new(present: impl IntoIterator<Item = String>) -> Self {
        MemoryCheck {
            present: present.into_iter().collect(),
            ..Default::default()
        }
    }

    pub fn with_error(mut self, image: impl Into<String>, message: impl Into<String>) -> Self {
        self.errors.insert(image.into(), message.into());
        self
    }

    /// The images asked about, sorted.
    pub fn asked(&self) -> Vec<String> {
        let mut asked = self
            .asked
            .lock()
            .map(|a| a.clone())
            .unwrap_or_else(|p| p.into_inner().clone());
        asked.sort();
        asked
    }
}

impl ExistenceCheck for MemoryCheck {
    fn exists(&self, image: &str) -> Result<bool, String> {
        match self.asked.lock() {
            Ok(mut a) => a.push(image.to_owned()),
            Err(p) => p.into_inner().push(image.to_owned()),
        }
        if let Some(message) = self.errors.get(image) {
            return Err(message.clone());
        }
        Ok(self.present.contains(image))
    }
}

/// One ci-builder image.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BuilderImage {
    pub flavor: Flavor,
    pub arch: Arch,
    pub tag: String,
    /// `<registry>/ci-builder:<tag>`, what `bin/ci-builder exists` inspects.
    pub image: String,
}

/// A check that failed; the image was treated as missing.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CheckFailure {
    pub image: String,
    pub error: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BootstrapPlan {
    /// Every image exists: run the generator directly
    /// ([`mkpipeline_command`]).
    AllPresent { images: Vec<BuilderImage> },
    /// Some images are missing (or could not be checked): upload `yaml`.
    Pipeline {
        yaml: String,
        missing: Vec<BuilderImage>,
        check_failures: Vec<CheckFailure>,
    },
}

impl BootstrapPlan {
    pub fn yaml(&self) -> Option<&str> {
        match self {
            BootstrapPlan::AllPresent { .. } => None,
            BootstrapPlan::Pipeline { yaml, .. } => Some(yaml),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error("cannot compute the ci-builder tags")]
    Tag(#[from] BuilderError),
}

/// The flavors `ci/mkpipeline.sh` checks, in its order.
pub const BOOTSTRAP_FLAVORS: [Flavor; 4] = Flavor::ALL;

/// The registry `bin/ci-builder` uses: `ghcr.io/materializeinc/materialize`
/// when `CI` or `MZ_GHCR` is truthy (shlib's `is_truthy`, the same rule as
/// the reference's Python), else `materialize`.
pub fn builder_registry_from_env() -> &'static str {
    let truthy = |name: &str| env_is_truthy(std::env::var(name).ok().as_deref());
    if truthy("CI") || truthy("MZ_GHCR") {
        specs::GHCR
    } else {
        specs::DOCKER_HUB
    }
}

/// The command `ci/mkpipeline.sh` execs when every image exists.
pub fn mkpipeline_command(pipeline: &str, extra_args: &[String]) -> Vec<String> {
    let mut cmd: Vec<String> = [
        "bin/ci-builder",
        "run",
        "min",
        "bin/pyactivate",
        "-m",
        "ci.mkpipeline",
        pipeline,
    ]
    .map(String::from)
    .into();
    cmd.extend(extra_args.iter().cloned());
    cmd
}

/// [`plan_bootstrap_with_registry`] with the registry taken from the
/// environment, as `bin/ci-builder` does.
pub fn plan_bootstrap(
    repo: &Path,
    files: &[String],
    check: &dyn ExistenceCheck,
    pipeline: &str,
    extra_args: &[String],
) -> Result<BootstrapPlan, BootstrapError> {
    plan_bootstrap_with_registry(
        repo,
        files,
        check,
        pipeline,
        extra_args,
        builder_registry_from_env(),
    )
}

/// Checks every (arch, flavor) image concurrently and plans the bootstrap.
pub fn plan_bootstrap_with_registry(
    repo: &Path,
    files: &[String],
    check: &dyn ExistenceCheck,
    pipeline: &str,
    extra_args: &[String],
    registry: &str,
) -> Result<BootstrapPlan, BootstrapError> {
    let tagger = BuilderTagger::new(repo, files)?;
    let mut images = Vec::new();
    for arch in Arch::ALL {
        for flavor in BOOTSTRAP_FLAVORS {
            let tag = tagger.tag(flavor, arch)?;
            let image = format!("{registry}/ci-builder:{tag}");
            images.push(BuilderImage {
                flavor,
                arch,
                tag,
                image,
            });
        }
    }

    // One thread per image, like the script's background subshells: the
    // checks wait on the network, not the CPU.
    let results: Vec<Result<bool, String>> = std::thread::scope(|s| {
        let handles: Vec<_> = images
            .iter()
            .map(|img| s.spawn(|| check.exists(&img.image)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("the existence check panicked".to_owned()))
            })
            .collect()
    });

    let mut missing = Vec::new();
    let mut check_failures = Vec::new();
    for (img, result) in images.iter().zip(results) {
        match result {
            Ok(true) => {}
            Ok(false) => missing.push(img.clone()),
            Err(error) => {
                check_failures.push(CheckFailure {
                    image: img.image.clone(),
                    error,
                });
                missing.push(img.clone());
            }
        }
    }
    if missing.is_empty() {
        return Ok(BootstrapPlan::AllPresent { images });
    }
    let yaml = render_bootstrap_pipeline(&missing, pipeline, extra_args);
    Ok(BootstrapPlan::Pipeline {
        yaml,
        missing,
        check_failures,
    })
}

/// The text `ci/mkpipeline.sh` uploads, byte for byte (including the line of
/// two spaces after `steps:` and, without extra arguments, the trailing space
/// after the pipeline name). Like the script's heredoc, `pipeline` and
/// `extra_args` are pasted unquoted.
pub fn render_bootstrap_pipeline(
    missing: &[BuilderImage],
    pipeline: &str,
    extra_args: &[String],
) -> String {
    let mut steps = String::new();
    for img in missing {
        let queue = match img.arch {
            Arch::X86_64 => "builder-linux-x86_64",
            Arch::Aarch64 => "builder-linux-aarch64-mem",
        };
        let (flavor, arch, tag) = (img.flavor, img.arch, &img.tag);
        steps.push_str(&format!(
            "\n  - label: bootstrap {flavor} {arch}\n    \
             command: bin/ci-builder exists {flavor} || bin/ci-builder push {flavor}\n    \
             concurrency: 1\n    \
             concurrency_group: \"ci-builder:{tag}\"\n    \
             agents:\n      \
             queue: {queue}\n"
        ));
    }
    let args = extra_args.join(" ");
    format!(
        "steps:\n  {steps}\n  - wait\n  - label: mkpipeline\n    \
         command: bin/ci-builder run min bin/pyactivate -m ci.mkpipeline {pipeline} {args}\n    \
         priority: 200\n    \
         agents:\n      \
         queue: hetzner-x86-64-4cpu-8gb-mkpipeline\n    \
         retry:\n      \
         automatic:\n        \
         - exit_status: -1\n          \
         signal_reason: none\n          \
         limit: 2\n        \
         - signal_reason: agent_stop\n          \
         limit: 2\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ci::builder::builder_tag;

    const REGISTRY: &str = "ghcr.io/materializeinc/materialize";

    fn fixture() -> (std::path::PathBuf, Vec<String>) {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/builder");
        let files = [
            "Cargo.toml",
            "bin/ci-builder",
            "ci/builder/Dockerfile",
            "ci/builder/_hooks/pre.sh",
            "ci/builder/a-b.txt",
            "ci/builder/a.txt",
            "ci/builder/a/b.txt",
        ]
        .map(String::from)
        .into();
        (dir, files)
    }

    fn image(flavor: Flavor, arch: Arch) -> String {
        let (dir, files) = fixture();
        let tag = builder_tag(&dir, &files, flavor, arch).expect("fixture tag");
        format!("{REGISTRY}/ci-builder:{tag}")
    }

    fn all_images() -> Vec<String> {
        let mut all = Vec::new();
        for arch in Arch::ALL {
            for flavor in BOOTSTRAP_FLAVORS {
                all.push(image(flavor, arch));
            }
        }
        all.sort();
        all
    }

    #[test]
    fn bootstrap_all_present() {
        let (dir, files) = fixture();
        let check = MemoryCheck::new(all_images());
        let plan = plan_bootstrap_with_registry(&dir, &files, &check, "test", &[], REGISTRY)
            .expect("plan");
        assert!(
            matches!(plan, BootstrapPlan::AllPresent { ref images } if images.len() == 8),
            "{plan:?}"
        );
        assert_eq!(plan.yaml(), None);
        assert_eq!(check.asked(), all_images());
        assert_eq!(
            mkpipeline_command("test", &["--foo".to_owned()]).join(" "),
            "bin/ci-builder run min bin/pyactivate -m ci.mkpipeline test --foo"
        );
    }

    #[test]
    fn bootstrap_missing_images_pipeline() {
        let (dir, files) = fixture();
        let missing = [
            image(Flavor::Nightly, Arch::X86_64),
            image(Flavor::Console, Arch::Aarch64),
        ];
        let present = all_images().into_iter().filter(|i| !missing.contains(i));
        let check = MemoryCheck::new(present);
        let extra = ["--sanitizer".to_owned(), "none".to_owned()];
        let plan = plan_bootstrap_with_registry(&dir, &files, &check, "nightly", &extra, REGISTRY)
            .expect("plan");
        let BootstrapPlan::Pipeline {
            yaml,
            missing: got,
            check_failures,
        } = &plan
        else {
            panic!("expected a pipeline: {plan:?}")
        };
        assert!(check_failures.is_empty());
        assert_eq!(
            got.iter().map(|i| i.image.clone()).collect::<Vec<_>>(),
            missing
        );
        insta::assert_snapshot!(yaml);

        // It is YAML with the shape the script uploads.
        let value: serde_yaml_ng::Value = serde_yaml_ng::from_str(yaml).expect("valid yaml");
        let steps = value["steps"].as_sequence().expect("steps");
        assert_eq!(steps.len(), 4);
        assert_eq!(steps[0]["label"].as_str(), Some("bootstrap nightly x86_64"));
        assert_eq!(
            steps[0]["agents"]["queue"].as_str(),
            Some("builder-linux-x86_64")
        );
        assert_eq!(steps[0]["concurrency"].as_u64(), Some(1));
        let tag = missing[0].rsplit(':').next().expect("tag");
        assert_eq!(
            steps[0]["concurrency_group"].as_str(),
            Some(format!("ci-builder:{tag}").as_str())
        );
        assert_eq!(
            steps[1]["label"].as_str(),
            Some("bootstrap console aarch64")
        );
        assert_eq!(
            steps[1]["command"].as_str(),
            Some("bin/ci-builder exists console || bin/ci-builder push console")
        );
        assert_eq!(
            steps[1]["agents"]["queue"].as_str(),
            Some("builder-linux-aarch64-mem")
        );
        assert_eq!(steps[2].as_str(), Some("wait"));
        assert_eq!(
            steps[3]["command"].as_str(),
            Some("bin/ci-builder run min bin/pyactivate -m ci.mkpipeline nightly --sanitizer none")
        );
    }

    #[test]
    fn bootstrap_check_error_is_missing_and_reported() {
        let (dir, files) = fixture();
        let broken = image(Flavor::Min, Arch::Aarch64);
        let check = MemoryCheck::new(all_images()).with_error(broken.clone(), "registry timed out");
        let plan = plan_bootstrap_with_registry(&dir, &files, &check, "test", &[], REGISTRY)
            .expect("plan");
        let BootstrapPlan::Pipeline {
            yaml,
            missing,
            check_failures,
        } = &plan
        else {
            panic!("an error must not count as present: {plan:?}")
        };
        assert_eq!(missing.len(), 1);
        assert_eq!(
            (missing[0].flavor, missing[0].arch),
            (Flavor::Min, Arch::Aarch64)
        );
        assert_eq!(
            check_failures,
            &[CheckFailure {
                image: broken,
                error: "registry timed out".to_owned()
            }]
        );
        assert!(yaml.contains("  - label: bootstrap min aarch64\n"));
        // Without extra arguments the script leaves a trailing space.
        assert!(yaml.contains("-m ci.mkpipeline test \n"));
    }

    #[test]
    fn bootstrap_command_check() {
        let yes = CommandCheck {
            template: "test {image} = reg/ci-builder:ABC".to_owned(),
        };
        assert_eq!(yes.exists("reg/ci-builder:ABC"), Ok(true));
        assert_eq!(yes.exists("reg/ci-builder:XYZ"), Ok(false));
        assert!(yes.exists("a; rm -rf /").is_err());
        let killed = CommandCheck {
            template: "kill -9 $$".to_owned(),
        };
        assert!(killed.exists("x").is_err());
    }
}
