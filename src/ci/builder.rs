//! The ci-builder image tag (SPEC §9): a re-implementation of
//! `bin/ci-builder tag FLAVOR` with `MZ_DEV_CI_BUILDER_ARCH=ARCH`.
//!
//! The script computes, in bash:
//!
//! ```text
//! { git diff --name-only -z <empty-tree> ci/builder bin/ci-builder
//!   git ls-files --others --exclude-standard -z ci/builder
//! } | LC_ALL=C sort -z | xargs -0 sha1sum
//! printf '%s\n' "flavor:$flavor" "build-args:$docker_build_args"
//! ```
//!
//! and prints the RFC 4648 base32 encoding of the SHA-1 of those bytes. The
//! values that enter `docker_build_args` (nightly date, rust components,
//! target CPU and features per arch, the template itself) are read from the
//! commit's own `bin/ci-builder`, so a commit that changes them is followed;
//! a script whose shape is not recognised is an error rather than a guess.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use sha1::{Digest, Sha1};

/// The script whose tag is reproduced, repository-relative.
pub const SCRIPT_PATH: &str = "bin/ci-builder";
/// The directory whose visible files enter the tag, repository-relative.
pub const BUILDER_DIR: &str = "ci/builder";
/// The manifest the script reads `rust-version` from (with `sed`).
pub const CARGO_TOML: &str = "Cargo.toml";

/// An enum of names with one spelling each (in `bin/ci-builder`, on the
/// command line and in JSON), written once: the variants with their names,
/// then `ALL` (in the listed order), `as_str`, `Display`, `FromStr`, clap
/// and serde all follow from that list.
macro_rules! named_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident ($kind:literal) {
            $($variant:ident = $text:literal),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(
            Clone,
            Copy,
            Debug,
            PartialEq,
            Eq,
            Hash,
            PartialOrd,
            Ord,
            clap::ValueEnum,
            serde::Serialize,
            serde::Deserialize,
        )]
        pub enum $name {
            $(
                #[value(name = $text)]
                #[serde(rename = $text)]
                $variant,
            )+
        }

        impl $name {
            /// Every value, in the order `ci/mkpipeline.sh` checks them.
            pub const ALL: [$name; [$($text),+].len()] = [$($name::$variant),+];

            /// The name `bin/ci-builder` uses.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = ParseNameError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $name::ALL
                    .into_iter()
                    .find(|v| v.as_str() == s)
                    .ok_or_else(|| ParseNameError {
                        kind: $kind,
                        value: s.to_owned(),
                        expected: &[$($text),+],
                    })
            }
        }
    };
}

named_enum! {
    /// A ci-builder flavor (`bin/ci-builder <cmd> <flavor>`).
    pub enum Flavor ("ci-builder flavor") {
        Stable = "stable",
        Nightly = "nightly",
        Min = "min",
        Console = "console",
    }
}

named_enum! {
    /// A ci-builder architecture (`MZ_DEV_CI_BUILDER_ARCH`, gcc nomenclature:
    /// `arch_gcc` in the script).
    pub enum Arch ("ci-builder architecture") {
        X86_64 = "x86_64",
        Aarch64 = "aarch64",
    }
}

impl Arch {
    /// The Go name (`arch_go` of `misc/shlib/shlib.bash`).
    pub fn go_name(self) -> &'static str {
        match self {
            Arch::X86_64 => "amd64",
            Arch::Aarch64 => "arm64",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} `{value}` (hint: expected one of {})", .expected.join(", "))]
pub struct ParseNameError {
    kind: &'static str,
    value: String,
    expected: &'static [&'static str],
}

#[derive(Debug, thiserror::Error)]
pub enum BuilderError {
    #[error("`{path}` is not among the visible files of the repository")]
    MissingFile { path: String },
    #[error("cannot read `{}`", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "`{path}`: {what} (hint: the script's format is not the one pipetrim knows; \
         compare it with `bin/ci-builder tag`)"
    )]
    UnrecognisedScript { path: String, what: String },
}

fn unrecognised(what: impl Into<String>) -> BuilderError {
    BuilderError::UnrecognisedScript {
        path: SCRIPT_PATH.to_owned(),
        what: what.into(),
    }
}

/// Is `path` one of the files the tag hashes? (`git diff … ci/builder
/// bin/ci-builder`: pathspecs match the path itself or anything below it.)
pub fn is_builder_input(path: &str) -> bool {
    under_spec(path, BUILDER_DIR) || under_spec(path, SCRIPT_PATH)
}

/// `path` is `spec` or lies below it (a plain git pathspec; `spec` is
/// never the root here).
fn under_spec(path: &str, spec: &str) -> bool {
    !spec.is_empty() && (path == spec || pipetrim_queries::paths::is_under(path, spec))
}

/// The files the tag hashes, in the script's order (`LC_ALL=C sort -z`:
/// bytewise), without duplicates.
pub fn builder_inputs(files: &[String]) -> Vec<&str> {
    let mut out: Vec<&str> = files
        .iter()
        .map(String::as_str)
        .filter(|p| is_builder_input(p))
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// `bin/ci-builder tag FLAVOR` with `MZ_DEV_CI_BUILDER_ARCH=ARCH`.
///
/// `files` are the repository's visible files (SPEC §1), repository-relative.
pub fn builder_tag(
    repo: &Path,
    files: &[String],
    flavor: Flavor,
    arch: Arch,
) -> Result<String, BuilderError> {
    BuilderTagger::new(repo, files)?.tag(flavor, arch)
}

/// Computes tags for several (flavor, arch) pairs while hashing the files
/// and parsing the script once.
#[derive(Debug)]
pub struct BuilderTagger {
    repo: PathBuf,
    /// The `sha1sum` output over the builder inputs.
    sums: String,
    script: BuilderScript,
    /// The root `Cargo.toml`, read only when a flavor needs it (the script
    /// does not read it for `nightly`).
    cargo_toml: std::sync::OnceLock<Result<Vec<u8>, (io::ErrorKind, String)>>,
}

impl BuilderTagger {
    pub fn new(repo: &Path, files: &[String]) -> Result<Self, BuilderError> {
        let inputs = builder_inputs(files);
        if !inputs.contains(&SCRIPT_PATH) {
            return Err(BuilderError::MissingFile {
                path: SCRIPT_PATH.to_owned(),
            });
        }
        let script_full = repo.join(SCRIPT_PATH);
        let script_bytes = std::fs::read(&script_full).map_err(|source| BuilderError::Read {
            path: script_full.clone(),
            source,
        })?;
        let text = String::from_utf8(script_bytes).map_err(|_| unrecognised("not valid UTF-8"))?;
        let script = BuilderScript::parse(&text)?;
        // The files the script hashes: tracked ones under its pathspecs, and
        // untracked ones under `ci/builder` (its `ls-files --others`).
        let mut hashed_files: Vec<&str> = files
            .iter()
            .map(String::as_str)
            .filter(|p| script.hashed.iter().any(|spec| under_spec(p, spec)))
            .collect();
        hashed_files.sort_unstable();
        hashed_files.dedup();
        let mut sums = String::new();
        for path in hashed_files {
            let full = repo.join(path);
            // `sha1sum` follows symlinks; a directory or dangling link fails.
            let bytes = read_regular(&full).map_err(|source| BuilderError::Read {
                path: full.clone(),
                source,
            })?;
            sums.push_str(&sha1sum_line(&Sha1::digest(&bytes), path));
        }
        Ok(BuilderTagger {
            repo: repo.to_owned(),
            sums,
            script,
            cargo_toml: std::sync::OnceLock::new(),
        })
    }

    /// The parsed `bin/ci-builder`.
    pub fn script(&self) -> &BuilderScript {
        &self.script
    }

    fn rust_version(&self, flavor: Flavor) -> Result<String, BuilderError> {
        match self.script.flavor(flavor)?.rust_version {
            RustVersion::Literal(ref v) => Ok(v.clone()),
            RustVersion::FromCargoToml => {
                let full = self.repo.join(CARGO_TOML);
                let bytes = self
                    .cargo_toml
                    .get_or_init(|| std::fs::read(&full).map_err(|e| (e.kind(), e.to_string())))
                    .as_ref()
                    .map_err(|(kind, msg)| BuilderError::Read {
                        path: full.clone(),
                        source: io::Error::new(*kind, msg.clone()),
                    })?;
                Ok(sed_rust_version(bytes))
            }
        }
    }

    /// The `docker_build_args` string of the script for (flavor, arch).
    pub fn build_args(&self, flavor: Flavor, arch: Arch) -> Result<String, BuilderError> {
        let script = &self.script;
        let arm = script.flavor(flavor)?;
        let rust_version = self.rust_version(flavor)?;
        let rust_date = arm.rust_date.clone();
        let components = format!(
            "{}{}",
            script.components_base,
            if rust_version == "nightly" {
                &script.components_nightly
            } else {
                &script.components_other
            }
        );
        let mut vars: BTreeMap<&str, String> = BTreeMap::new();
        vars.insert("arch_gcc", arch.as_str().to_owned());
        vars.insert("arch_go", arch.go_name().to_owned());
        vars.insert("rust_version", rust_version);
        vars.insert("rust_date", rust_date);
        vars.insert("rust_components", expand(&components, &vars)?);
        vars.insert(
            "rust_cpu_target",
            script.per_arch("rust_cpu_target", &script.cpu_target, arch)?,
        );
        vars.insert(
            "rust_target_features",
            script.per_arch("rust_target_features", &script.target_features, arch)?,
        );
        expand(&script.build_args_template, &vars)
    }

    /// The bytes the script hashes for (flavor, arch).
    pub fn hash_input(&self, flavor: Flavor, arch: Arch) -> Result<String, BuilderError> {
        match self.script.format {
            TagFormat::BuildArgs => {
                let args = self.build_args(flavor, arch)?;
                Ok(format!(
                    "{}flavor:{}\nbuild-args:{}\n",
                    self.sums, flavor, args
                ))
            }
            TagFormat::Legacy { .. } => {
                // `files=$(… | xargs sha1sum)` drops the trailing newline,
                // the appended literal starts and ends with one, and
                // `echo "$files"` adds another.
                let arm = self.script.flavor(flavor)?;
                Ok(format!(
                    "{}\nrust-version:{}\nrust-date:{}\narch:{}\nflavor:{}\n\n",
                    self.sums.trim_end_matches('\n'),
                    self.rust_version(flavor)?,
                    arm.rust_date,
                    arch.as_str(),
                    flavor
                ))
            }
        }
    }

    pub fn tag(&self, flavor: Flavor, arch: Arch) -> Result<String, BuilderError> {
        let input = self.hash_input(flavor, arch)?;
        Ok(data_encoding::BASE32.encode(&Sha1::digest(input.as_bytes())))
    }
}

/// One output line of GNU `sha1sum` (coreutils 9): a name containing `\`,
/// newline or carriage return is escaped and the line starts with `\`.
fn sha1sum_line(digest: &[u8], path: &str) -> String {
    let hex = data_encoding::HEXLOWER.encode(digest);
    if path.contains(['\\', '\n', '\r']) {
        let escaped = path
            .replace('\\', "\\\\")
            .replace('\n', "\\n")
            .replace('\r', "\\r");
        format!("\\{hex}  {escaped}\n")
    } else {
        format!("{hex}  {path}\n")
    }
}

/// `$(sed -n 's/rust-version = "\(.*\)"/\1/p' Cargo.toml)`: every line that
/// contains `rust-version = "…"` (anywhere in the file, any table, also in a
/// comment), with the leftmost match replaced by the text between its opening
/// quote and the *last* quote of the line (greedy `.*`), the rest of the line
/// kept; lines joined by newlines, trailing newlines stripped. No match gives
/// an empty string, as in the script.
pub fn sed_rust_version(cargo_toml: &[u8]) -> String {
    const NEEDLE: &[u8] = b"rust-version = \"";
    let mut out: Vec<u8> = Vec::new();
    for line in cargo_toml.split(|&b| b == b'\n') {
        let Some(start) = line.windows(NEEDLE.len()).position(|w| w == NEEDLE) else {
            continue;
        };
        let open = start + NEEDLE.len();
        let Some(close) = line[open..]
            .iter()
            .rposition(|&b| b == b'"')
            .map(|i| open + i)
        else {
            continue;
        };
        out.extend_from_slice(&line[..start]);
        out.extend_from_slice(&line[open..close]);
        out.extend_from_slice(&line[close + 1..]);
        out.push(b'\n');
    }
    // Command substitution drops NUL bytes and trailing newlines.
    out.retain(|&b| b != 0);
    while out.last() == Some(&b'\n') {
        out.pop();
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// How a flavor's `rust_version` is set in the script's `case "$flavor"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RustVersion {
    /// `rust_version=$(sed -n 's/rust-version = "\(.*\)"/\1/p' Cargo.toml)`
    FromCargoToml,
    /// `rust_version=<literal>`
    Literal(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlavorArm {
    pub rust_version: RustVersion,
    pub rust_date: String,
}

/// How the script turns its inputs into the hashed bytes; it changed in
/// February 2026.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagFormat {
    /// `printf '%s\n' "flavor:$flavor" "build-args:$docker_build_args"`
    /// after the `sha1sum` lines of `ci/builder` and `bin/ci-builder`.
    BuildArgs,
    /// The older `files+="…rust-version:…rust-date:…arch:…flavor:…"` trailer
    /// hashed through `echo "$files"`; `with_script` says whether
    /// `bin/ci-builder` itself was among the hashed files (added in 2026-02).
    Legacy { with_script: bool },
}

/// What the tag needs from `bin/ci-builder`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuilderScript {
    pub format: TagFormat,
    /// The pathspecs of the script's `git diff --name-only -z <empty tree> …`
    /// (`ci/builder bin/ci-builder` now; older scripts also `.bazelversion`).
    pub hashed: Vec<String>,
    pub nightly_rust_date: String,
    pub flavors: BTreeMap<String, FlavorArm>,
    /// `rust_components=…` (may mention `$arch_gcc`).
    pub components_base: String,
    /// What `rust_components+=` appends when `rust_version` is `nightly`.
    pub components_nightly: String,
    /// What `rust_components+=` appends otherwise.
    pub components_other: String,
    /// `case "$arch_gcc"` arms setting `rust_cpu_target`, resolved.
    pub cpu_target: BTreeMap<String, String>,
    /// `case "$arch_gcc"` arms setting `rust_target_features`, resolved.
    pub target_features: BTreeMap<String, String>,
    /// The `docker_build_args="…"` template, continuation lines joined.
    pub build_args_template: String,
}

/// Fragments of the tag computation that must be present verbatim: the file
/// list, its order, the hashed trailer and the encoding.
const REQUIRED_FRAGMENTS: &[&str] = &[
    "git ls-files --others --exclude-standard -z ci/builder)",
    "LC_ALL=C sort -z",
    "xargs -0 \"$shasum\"",
    "base64.b32encode(hashlib.sha1(input).digest())",
    "arch_gcc=${MZ_DEV_CI_BUILDER_ARCH:-$(arch_gcc)}",
    "arch_go=$(arch_go \"$arch_gcc\")",
];

const DIFF_WITH_SCRIPT: &str =
    "git diff --name-only -z 4b825dc642cb6eb9a060e54bf8d69288fbee4904 ci/builder bin/ci-builder)";
const DIFF_BUILDER_ONLY: &str =
    "git diff --name-only -z 4b825dc642cb6eb9a060e54bf8d69288fbee4904 ci/builder)";
const BUILD_ARGS_TRAILER: &str =
    "printf '%s\\n' \"flavor:$flavor\" \"build-args:$docker_build_args\"";
/// The lines of the older trailer, in order.
const LEGACY_TRAILER: &[&str] = &[
    "files+=\"",
    "rust-version:$rust_version",
    "rust-date:$rust_date",
    "arch:$arch_gcc",
    "flavor:$flavor",
    "tag=$(echo \"$files\" | python3",
];

const SED_RUST_VERSION: &str = r#"$(sed -n 's/rust-version = "\(.*\)"/\1/p' Cargo.toml)"#;

impl BuilderScript {
    pub fn parse(text: &str) -> Result<Self, BuilderError> {
        for fragment in REQUIRED_FRAGMENTS {
            if !text.contains(fragment) {
                return Err(unrecognised(format!(
                    "the tag computation no longer contains `{fragment}`"
                )));
            }
        }
        let format = if text.contains(BUILD_ARGS_TRAILER) {
            if !text.contains(DIFF_WITH_SCRIPT) {
                return Err(unrecognised(format!(
                    "the tag computation no longer contains `{DIFF_WITH_SCRIPT}`"
                )));
            }
            TagFormat::BuildArgs
        } else {
            // The older trailer: every line present, in order.
            let mut at = 0;
            for line in LEGACY_TRAILER {
                match text[at..].find(line) {
                    Some(i) => at += i + line.len(),
                    None => {
                        return Err(unrecognised(format!(
                            "the tag computation contains neither `{BUILD_ARGS_TRAILER}` nor the older `{line}` trailer"
                        )));
                    }
                }
            }
            let with_script =
                hashed_specs(text).is_some_and(|specs| specs.iter().any(|s| s == SCRIPT_PATH));
            TagFormat::Legacy { with_script }
        };
        let hashed = hashed_specs(text).ok_or_else(|| {
            unrecognised(format!(
                "the tag computation no longer contains `{DIFF_BUILDER_ONLY}` or a variant"
            ))
        })?;
        if !hashed.iter().any(|s| s == BUILDER_DIR) {
            return Err(unrecognised(
                "the hashed files no longer include `ci/builder`",
            ));
        }
        let lines: Vec<&str> = text.lines().collect();
        let top = top_level_assignments(&lines);

        let nightly_rust_date = top
            .get("NIGHTLY_RUST_DATE")
            .cloned()
            .ok_or_else(|| unrecognised("no `NIGHTLY_RUST_DATE=` assignment"))?;

        let flavors = parse_flavor_case(&lines, &nightly_rust_date)?;

        if let TagFormat::Legacy { .. } = format {
            // The older hash does not include the build arguments.
            return Ok(BuilderScript {
                format,
                hashed,
                nightly_rust_date,
                flavors,
                components_base: String::new(),
                components_nightly: String::new(),
                components_other: String::new(),
                cpu_target: BTreeMap::new(),
                target_features: BTreeMap::new(),
                build_args_template: String::new(),
            });
        }

        let components_base = top
            .get("rust_components")
            .cloned()
            .ok_or_else(|| unrecognised("no `rust_components=` assignment"))?;
        let (components_nightly, components_other) = parse_components_if(&lines)?;

        let cpu_target = parse_arch_case(&lines, "rust_cpu_target", &top)?;
        let target_features = parse_arch_case(&lines, "rust_target_features", &top)?;
        let build_args_template = parse_build_args(&lines)?;

        Ok(BuilderScript {
            format,
            hashed,
            nightly_rust_date,
            flavors,
            components_base,
            components_nightly,
            components_other,
            cpu_target,
            target_features,
            build_args_template,
        })
    }

    fn flavor(&self, flavor: Flavor) -> Result<&FlavorArm, BuilderError> {
        self.flavors
            .get(flavor.as_str())
            .ok_or_else(|| unrecognised(format!("the script does not know the flavor `{flavor}`")))
    }

    fn per_arch(
        &self,
        var: &str,
        map: &BTreeMap<String, String>,
        arch: Arch,
    ) -> Result<String, BuilderError> {
        map.get(arch.as_str())
            .cloned()
            .ok_or_else(|| unrecognised(format!("no `{arch})` arm setting `{var}`")))
    }
}

/// Unquotes a shell word that is a plain literal: `abc`, `"abc"`, `'abc'`.
/// `$`-expansions are kept as written inside double quotes (resolved later
/// against known variables); anything else is not a literal.
/// The plain pathspecs after `git diff --name-only -z <empty tree>` in the
/// tag computation, or `None` when there is no such line (or it uses
/// anything but plain paths).
fn hashed_specs(text: &str) -> Option<Vec<String>> {
    const PREFIX: &str = "git diff --name-only -z 4b825dc642cb6eb9a060e54bf8d69288fbee4904 ";
    let at = text.find(PREFIX)? + PREFIX.len();
    let rest = &text[at..];
    let specs = &rest[..rest.find(')')?];
    let specs: Vec<String> = specs.split_whitespace().map(str::to_owned).collect();
    let plain = |s: &String| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'.' | b'-' | b'_'))
    };
    (!specs.is_empty() && specs.iter().all(plain)).then_some(specs)
}

fn shell_word(word: &str) -> Option<String> {
    if let Some(inner) = word.strip_prefix('\'').and_then(|w| w.strip_suffix('\'')) {
        return (!inner.contains('\'')).then(|| inner.to_owned());
    }
    if let Some(inner) = word.strip_prefix('"').and_then(|w| w.strip_suffix('"')) {
        return (!inner.contains(['"', '\\', '`'])).then(|| inner.to_owned());
    }
    if word.contains([
        '"', '\'', '\\', '`', ' ', '\t', ';', '(', ')', '&', '|', '<', '>',
    ]) {
        return None;
    }
    Some(word.to_owned())
}

fn is_ident(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `name=value` lines at column 0 whose value is a literal word.
fn top_level_assignments(lines: &[&str]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for line in lines {
        if let Some((name, value)) = line.split_once('=')
            && is_ident(name)
            && let Some(v) = shell_word(value)
        {
            out.insert(name.to_owned(), v);
        }
    }
    out
}

/// The `case "$flavor" in … esac` block: for each arm, how `rust_version`
/// and `rust_date` are set.
fn parse_flavor_case(
    lines: &[&str],
    nightly_date: &str,
) -> Result<BTreeMap<String, FlavorArm>, BuilderError> {
    let start = lines
        .iter()
        .position(|l| l.trim() == "case \"$flavor\" in")
        .ok_or_else(|| unrecognised("no `case \"$flavor\" in` block"))?;
    // `rust_date=` before the case is its default.
    let default_date = lines[..start]
        .iter()
        .rev()
        .find_map(|l| l.trim().strip_prefix("rust_date="))
        .map(|v| shell_word(v).ok_or_else(|| unrecognised(format!("cannot read `rust_date={v}`"))))
        .transpose()?
        .unwrap_or_default();
    let mut flavors = BTreeMap::new();
    let mut current: Option<(String, Option<RustVersion>, Option<String>)> = None;
    let mut finish =
        |cur: Option<(String, Option<RustVersion>, Option<String>)>| -> Result<(), BuilderError> {
            if let Some((name, version, date)) = cur {
                if name == "*" {
                    return Ok(());
                }
                let rust_version = version.ok_or_else(|| {
                    unrecognised(format!("the `{name})` arm does not set `rust_version`"))
                })?;
                flavors.insert(
                    name,
                    FlavorArm {
                        rust_version,
                        rust_date: date.unwrap_or_else(|| default_date.clone()),
                    },
                );
            }
            Ok(())
        };
    for line in &lines[start + 1..] {
        let t = line.trim();
        if t == "esac" {
            finish(current.take())?;
            return Ok(flavors);
        }
        if let Some(name) = t.strip_suffix(')')
            && (name == "*"
                || name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        {
            finish(current.take())?;
            current = Some((name.to_owned(), None, None));
            continue;
        }
        let Some((_, version, date)) = current.as_mut() else {
            continue;
        };
        if let Some(v) = t.strip_prefix("rust_version=") {
            *version = Some(if v == SED_RUST_VERSION {
                RustVersion::FromCargoToml
            } else {
                RustVersion::Literal(
                    shell_word(v)
                        .filter(|w| !w.contains('$'))
                        .ok_or_else(|| unrecognised(format!("cannot read `rust_version={v}`")))?,
                )
            });
        } else if let Some(v) = t.strip_prefix("rust_date=") {
            let word = shell_word(v)
                .ok_or_else(|| unrecognised(format!("cannot read `rust_date={v}`")))?;
            let value = word
                .replace("${NIGHTLY_RUST_DATE}", nightly_date)
                .replace("$NIGHTLY_RUST_DATE", nightly_date);
            if value.contains('$') {
                return Err(unrecognised(format!("cannot read `rust_date={v}`")));
            }
            *date = Some(value);
        }
    }
    Err(unrecognised(
        "the `case \"$flavor\" in` block has no `esac`",
    ))
}

/// `if [[ $rust_version = nightly ]]; then rust_components+=A else
/// rust_components+=B fi` → (A, B).
fn parse_components_if(lines: &[&str]) -> Result<(String, String), BuilderError> {
    let err = || {
        unrecognised("the `rust_components+=` block for nightly/other is not in the known shape")
    };
    let start = lines
        .iter()
        .position(|l| l.trim() == "if [[ $rust_version = nightly ]]; then")
        .ok_or_else(err)?;
    let body: Vec<&str> = lines[start + 1..]
        .iter()
        .map(|l| l.trim())
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .take(4)
        .collect();
    match body.as_slice() {
        [a, "else", b, "fi"] => {
            let a = a
                .strip_prefix("rust_components+=")
                .and_then(shell_word)
                .ok_or_else(err)?;
            let b = b
                .strip_prefix("rust_components+=")
                .and_then(shell_word)
                .ok_or_else(err)?;
            Ok((a, b))
        }
        _ => Err(err()),
    }
}

/// `case "$arch_gcc" in` blocks with arms `x86_64) VAR="$name" ;;`, resolved
/// against the top-level assignments.
fn parse_arch_case(
    lines: &[&str],
    var: &str,
    top: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, BuilderError> {
    let mut out = BTreeMap::new();
    for line in lines {
        let t = line.trim();
        let Some((arch, rest)) = t.split_once(')') else {
            continue;
        };
        let arch = arch.trim();
        if !Arch::ALL.iter().any(|a| a.as_str() == arch) {
            continue;
        }
        let Some(value) = rest
            .trim()
            .strip_suffix(";;")
            .map(str::trim)
            .and_then(|r| r.strip_prefix(var))
        else {
            continue;
        };
        let Some(value) = value.strip_prefix('=') else {
            continue;
        };
        let word = shell_word(value).ok_or_else(|| unrecognised(format!("cannot read `{t}`")))?;
        let resolved = match word.strip_prefix('$') {
            Some(name) => {
                let name = name
                    .strip_prefix('{')
                    .and_then(|n| n.strip_suffix('}'))
                    .unwrap_or(name);
                top.get(name).cloned().ok_or_else(|| {
                    unrecognised(format!("`{t}` uses `${name}`, which is not set"))
                })?
            }
            None => word,
        };
        if resolved.contains('$') {
            return Err(unrecognised(format!("cannot resolve `{t}`")));
        }
        out.insert(arch.to_owned(), resolved);
    }
    if out.is_empty() {
        return Err(unrecognised(format!(
            "no `case \"$arch_gcc\"` arms setting `{var}`"
        )));
    }
    Ok(out)
}

/// `docker_build_args="\` … `"`: inside double quotes a backslash-newline is
/// removed, so the lines are simply concatenated.
fn parse_build_args(lines: &[&str]) -> Result<String, BuilderError> {
    let start = lines
        .iter()
        .position(|l| l.starts_with("docker_build_args=\""))
        .ok_or_else(|| unrecognised("no `docker_build_args=\"…\"` assignment"))?;
    let mut text = String::new();
    let first = &lines[start]["docker_build_args=\"".len()..];
    let mut rest = lines[start + 1..].iter();
    let mut current = first;
    loop {
        if let Some(body) = current.strip_suffix('\\') {
            text.push_str(body);
            current = rest
                .next()
                .ok_or_else(|| unrecognised("`docker_build_args` is not closed"))?;
        } else if let Some(body) = current.strip_suffix('"') {
            text.push_str(body);
            break;
        } else {
            return Err(unrecognised(
                "`docker_build_args` spans lines without `\\` continuations",
            ));
        }
    }
    if text.contains(['"', '\\', '`']) || text.contains("$(") {
        return Err(unrecognised(
            "`docker_build_args` contains quoting or command substitution",
        ));
    }
    Ok(text)
}

/// Expands `$name` and `${name}` against `vars`; any other `$` is an error.
fn expand(template: &str, vars: &BTreeMap<&str, String>) -> Result<String, BuilderError> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let (name, consumed) = if let Some(braced) = after.strip_prefix('{') {
            let end = braced
                .find('}')
                .ok_or_else(|| unrecognised(format!("unclosed `${{` in `{template}`")))?;
            (&braced[..end], end + 2)
        } else {
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            (&after[..end], end)
        };
        let value = vars.get(name).ok_or_else(|| {
            unrecognised(format!(
                "`{template}` uses `${name}`, which pipetrim does not know"
            ))
        })?;
        out.push_str(value);
        rest = &after[consumed..];
    }
    out.push_str(rest);
    Ok(out)
}

/// `std::fs::read`, refusing what is not a regular file (after symlinks):
/// a FIFO would block the read forever.
fn read_regular(path: &Path) -> io::Result<Vec<u8>> {
    if !std::fs::metadata(path)?.is_file() {
        return Err(io::Error::other("is not a regular file"));
    }
    std::fs::read(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) -> io::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            if path.is_dir() {
                walk(root, &path, out)?;
            } else if let Ok(rel) = path.strip_prefix(root)
                && let Some(rel) = rel.to_str()
            {
                out.push(rel.replace(std::path::MAIN_SEPARATOR, "/"));
            }
        }
        Ok(())
    }

    fn fixture() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/builder")
    }

    /// The tag of the fixture computed by the coreutils and python3 binaries,
    /// the way `bin/ci-builder` does, with the build args spelled out here.
    fn shell_tag(dir: &Path, flavor: &str, build_args: &str) -> String {
        let script = r#"
            set -euo pipefail
            {
                find ci/builder bin/ci-builder -type f -print0 | LC_ALL=C sort -z | xargs -0 sha1sum
                printf '%s\n' "flavor:$1" "build-args:$2"
            } | python3 -c 'import base64, hashlib, sys; print(base64.b32encode(hashlib.sha1(sys.stdin.buffer.read()).digest()).decode())'
        "#;
        let out = std::process::Command::new("bash")
            .current_dir(dir)
            .args(["-c", script, "bash", flavor, build_args])
            .output()
            .expect("bash runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .expect("utf-8")
            .trim()
            .to_owned()
    }

    #[test]
    fn builder_tag_fixture_matches_shell_pipeline() {
        let dir = fixture();
        let mut files = Vec::new();
        walk(&dir, &dir, &mut files).expect("fixture readable");
        // The rust version the way the script reads it.
        let sed = std::process::Command::new("sed")
            .current_dir(&dir)
            .args(["-n", r#"s/rust-version = "\(.*\)"/\1/p"#, "Cargo.toml"])
            .output()
            .expect("sed runs");
        let rust_version = String::from_utf8(sed.stdout)
            .expect("utf-8")
            .trim_end_matches('\n')
            .to_owned();
        assert_eq!(rust_version, "1.77.2");
        for (arch, go, cpu, features) in [
            ("x86_64", "amd64", "x86-64-v2", "+sse4.2"),
            ("aarch64", "arm64", "cortex-a72", "+neon"),
        ] {
            for flavor in ["stable", "nightly", "min", "console"] {
                let (rust, extra) = if flavor == "nightly" {
                    ("nightly/2031-07-09".to_owned(), ",miri-preview")
                } else {
                    (rust_version.clone(), ",clippy-preview")
                };
                let args = format!(
                    "--build-arg ARCH={arch}/{go} --build-arg RUST={rust} \
                     --build-arg COMPONENTS=rustc,rust-std-{arch}-unknown-linux-gnu{extra} \
                     --build-arg CPU={cpu} --build-arg FEATURES={features}"
                );
                let expected = shell_tag(&dir, flavor, &args);
                assert_eq!(expected.len(), 32);
                let got = builder_tag(
                    &dir,
                    &files,
                    flavor.parse().expect("flavor"),
                    arch.parse().expect("arch"),
                )
                .expect("tag");
                assert_eq!(got, expected, "{flavor}/{arch}");
            }
        }
    }

    #[test]
    fn builder_tag_errors_name_the_file() {
        let dir = fixture();
        let err = builder_tag(
            &dir,
            &["ci/builder/Dockerfile".to_owned()],
            Flavor::Min,
            Arch::X86_64,
        )
        .expect_err("no script");
        assert!(err.to_string().contains("`bin/ci-builder`"), "{err}");

        let files = vec!["bin/ci-builder".to_owned(), "ci/builder/gone".to_owned()];
        let err = builder_tag(&dir, &files, Flavor::Min, Arch::X86_64).expect_err("unreadable");
        assert!(err.to_string().contains("ci/builder/gone"), "{err}");

        // Nightly does not read Cargo.toml, the others do.
        let tmp = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(tmp.path().join("bin")).expect("mkdir");
        std::fs::copy(
            dir.join("bin/ci-builder"),
            tmp.path().join("bin/ci-builder"),
        )
        .expect("copy");
        let files = vec!["bin/ci-builder".to_owned()];
        assert!(builder_tag(tmp.path(), &files, Flavor::Nightly, Arch::Aarch64).is_ok());
        let err = builder_tag(tmp.path(), &files, Flavor::Stable, Arch::Aarch64)
            .expect_err("no Cargo.toml");
        assert!(err.to_string().contains("Cargo.toml"), "{err}");

        // A script whose tag computation changed is not guessed at.
        std::fs::write(tmp.path().join("bin/ci-builder"), "#!/bin/sh\necho hello\n")
            .expect("write");
        let err = builder_tag(tmp.path(), &files, Flavor::Nightly, Arch::Aarch64)
            .expect_err("unrecognised");
        assert!(
            matches!(err, BuilderError::UnrecognisedScript { .. }),
            "{err}"
        );
        assert!(err.to_string().contains("`bin/ci-builder`"), "{err}");
    }

    /// The visible files of a checkout (SPEC §1), read-only.
    fn git_visible_files(repo: &Path) -> Vec<String> {
        let run = |args: &[&str]| {
            let out = std::process::Command::new("git")
                .current_dir(repo)
                .env("GIT_OPTIONAL_LOCKS", "0")
                .args(args)
                .output()
                .expect("git runs");
            assert!(
                out.status.success(),
                "git {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8(out.stdout).expect("utf-8 paths")
        };
        let mut files: Vec<String> = run(&[
            "diff",
            "--name-only",
            "-z",
            "4b825dc642cb6eb9a060e54bf8d69288fbee4904",
        ])
        .split('\0')
        .chain(run(&["ls-files", "--others", "--exclude-standard", "-z"]).split('\0'))
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
        files.sort();
        files
    }

    /// Run with `PIPETRIM_REF_DIR=<dir holding the c01 work tree> cargo test
    /// -p pipetrim --lib -- --ignored builder_tag_c01` (README, "Real
    /// commits").
    #[test]
    #[ignore = "needs PIPETRIM_REF_DIR: a directory with the Materialize work tree c01 (see README)"]
    fn builder_tag_c01_matches_reference() {
        let dir = std::env::var_os("PIPETRIM_REF_DIR")
            .expect("PIPETRIM_REF_DIR names the directory holding the c01 work tree");
        let repo = &Path::new(&dir).join("c01");
        assert!(
            repo.join("bin/ci-builder").exists(),
            "{} is not a Materialize work tree",
            repo.display()
        );
        let expected = [
            ("stable/x86_64", "MDCJU7WJDNWUM2KPESU7GDBOURBIPZYN"),
            ("stable/aarch64", "I2XQFENL44WWLJQV5AYKVGXKNFNT67DM"),
            ("nightly/x86_64", "WKKOLELAY5HWKREQP4L7VHC3FSPGYXKY"),
            ("nightly/aarch64", "ZDTBLVPJA76IJ4LF7GYCM63UWNS4ZE4I"),
            ("min/x86_64", "ASZAO4M4DEV66OTFY7M25UYJ3FFQUF4A"),
            ("min/aarch64", "FWTYY5MXI6WQDFPSISWFCJMD54IDRK76"),
            ("console/x86_64", "O2JHHTQS56HCZA7IGJAEBQXWGA6OMODS"),
            ("console/aarch64", "S4HKQ7PFQP5E7F2SUBVO3NVV4AP5KWBO"),
        ];
        let files = git_visible_files(repo);
        let tagger = BuilderTagger::new(repo, &files).expect("c01 parses");
        for (key, tag) in expected {
            let (flavor, arch) = key.split_once('/').expect("key");
            let got = tagger
                .tag(flavor.parse().expect("flavor"), arch.parse().expect("arch"))
                .expect("tag");
            assert_eq!(got, tag, "{key}");
        }
    }

    #[test]
    fn builder_sed_rust_version_quirks() {
        assert_eq!(
            sed_rust_version(b"[workspace.package]\nrust-version = \"1.94.1\"\n"),
            "1.94.1"
        );
        // Comment mentioning it without ` = "` does not match.
        assert_eq!(
            sed_rust_version(b"# checks rust-version compatibility\nrust-version = \"1.2\""),
            "1.2"
        );
        // Leading text is kept, greedy `.*` runs to the last quote.
        assert_eq!(
            sed_rust_version(b"  rust-version = \"1.2\" # \"x\"\n"),
            "  1.2\" # \"x"
        );
        // Several matching lines: all of them, newline-joined.
        assert_eq!(
            sed_rust_version(b"rust-version = \"1\"\nrust-version = \"2\"\n\n"),
            "1\n2"
        );
        assert_eq!(sed_rust_version(b"rust-version.workspace = true\n"), "");
        assert_eq!(sed_rust_version(b"rust-version = \"1\"\r\n"), "1\r");
    }

    #[test]
    fn builder_inputs_filter_and_sort() {
        let files: Vec<String> = [
            "ci/builder/b",
            "bin/ci-builder",
            "ci/builderx/a",
            "ci/builder/B",
            "bin/ci-builder.sh",
            "ci/builder/_",
        ]
        .into_iter()
        .map(String::from)
        .collect();
        assert_eq!(
            builder_inputs(&files),
            [
                "bin/ci-builder",
                "ci/builder/B",
                "ci/builder/_",
                "ci/builder/b"
            ]
        );
    }

    #[test]
    fn builder_sha1sum_escapes_like_coreutils() {
        let d = [0u8; 20];
        assert_eq!(
            sha1sum_line(&d, "a b"),
            format!("{}  a b\n", "0".repeat(40))
        );
        assert_eq!(
            sha1sum_line(&d, "a\\b\nc"),
            format!("\\{}  a\\\\b\\nc\n", "0".repeat(40))
        );
    }

    #[test]
    fn builder_names_round_trip() {
        for f in Flavor::ALL {
            assert_eq!(f.to_string().parse::<Flavor>(), Ok(f));
        }
        for a in Arch::ALL {
            assert_eq!(a.to_string().parse::<Arch>(), Ok(a));
        }
        assert!("x86-64".parse::<Arch>().is_err());
        assert!(
            "beta"
                .parse::<Flavor>()
                .unwrap_err()
                .to_string()
                .contains("`beta`")
        );
    }

    #[test]
    fn builder_expand_rejects_unknown_variables() {
        let mut vars = BTreeMap::new();
        vars.insert("a", "1".to_owned());
        assert_eq!(expand("x=$a,${a}-", &vars).ok(), Some("x=1,1-".to_owned()));
        assert!(matches!(
            expand("$b", &vars),
            Err(BuilderError::UnrecognisedScript { .. })
        ));
    }
}
