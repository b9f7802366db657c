//! Image specs (SPEC §8): `<registry>/<prefix><name>:mzbuild-<fingerprint>`,
//! which registry the reference pushes to, and its build hash over the specs
//! of a build. Pure: the caller passes the environment and `docker.py`.

use std::collections::BTreeMap;

use sha1::{Digest, Sha1};

use crate::fingerprint::{Digest20, base32};
use crate::images::ImageGraph;

/// The registry when `MZ_GHCR` is truthy (also `bin/ci-builder`'s under CI).
pub const GHCR: &str = "ghcr.io/materializeinc/materialize";
/// The registry otherwise.
pub const DOCKER_HUB: &str = "materialize";
/// The file whose `MZ_GHCR_DEFAULT` decides when `MZ_GHCR` is unset.
pub const DOCKER_PY: &str = "misc/python/materialize/docker.py";

/// The reference's `ui.env_is_truthy` (and shlib's `is_truthy`, which
/// agrees): set and not one of `""`, `0`, `no`, `false`.
pub fn env_is_truthy(value: Option<&str>) -> bool {
    value.is_some_and(|v| !matches!(v, "" | "0" | "no" | "false"))
}

/// The registry of image specs: GHCR when `MZ_GHCR` is truthy; when it is
/// unset, the commit's own `MZ_GHCR_DEFAULT` in [`DOCKER_PY`] (its text is
/// `docker_py`) decides, or `"1"` where there is none. `var` reads the
/// environment, for the conditional form of the default.
pub fn registry(
    mz_ghcr: Option<&str>,
    docker_py: Option<&str>,
    var: &dyn Fn(&str) -> Option<String>,
) -> &'static str {
    let ghcr = match mz_ghcr {
        Some(v) => env_is_truthy(Some(v)),
        None => {
            let default = docker_py
                .and_then(|text| ghcr_default(text, var))
                .unwrap_or_else(|| "1".to_string());
            env_is_truthy(Some(&default))
        }
    };
    if ghcr { GHCR } else { DOCKER_HUB }
}

/// The value of `MZ_GHCR_DEFAULT` in the text of `docker.py`: a string
/// literal, or `"A" if ui.env_is_truthy("VAR") else "B"` evaluated against
/// `var`, as the reference's module would be at import time.
pub fn ghcr_default(text: &str, var: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    fn literal(s: &str) -> Option<(&str, &str)> {
        let s = s.trim_start();
        let q = s.chars().next().filter(|c| *c == '"' || *c == '\'')?;
        let end = s[1..].find(q)? + 1;
        Some((&s[1..end], &s[end + 1..]))
    }
    let line = text.lines().find_map(|l| {
        let rest = l.strip_prefix("MZ_GHCR_DEFAULT")?;
        if !rest.starts_with([' ', ':', '=']) {
            return None;
        }
        // `= value`, or with an annotation `: str = value`.
        Some(rest.split_once('=')?.1.trim())
    })?;
    let (first, rest) = literal(line)?;
    let rest = rest.trim();
    if rest.is_empty() || rest.starts_with('#') {
        return Some(first.to_string());
    }
    let cond = rest.strip_prefix("if")?.trim_start();
    let cond = cond
        .strip_prefix("ui.env_is_truthy(")
        .or_else(|| cond.strip_prefix("env_is_truthy("))?;
    let (name, after) = literal(cond)?;
    let after = after.trim_start().strip_prefix(')')?.trim_start();
    let (second, _) = literal(after.strip_prefix("else")?)?;
    let set = env_is_truthy(var(name).as_deref());
    Some(if set { first } else { second }.to_string())
}

/// `<registry>/<prefix><name>:mzbuild-<fingerprint in base32>`.
pub fn image_spec(registry: &str, prefix: &str, name: &str, fingerprint: &Digest20) -> String {
    format!("{registry}/{prefix}{name}:mzbuild-{}", base32(fingerprint))
}

/// The specs a build of the published images produces: those images and
/// their dependencies in the reference's resolution order
/// ([`ImageGraph::dependency_order`]), images without a fingerprint left out.
pub fn build_specs(
    graph: &ImageGraph,
    fingerprints: &BTreeMap<String, Digest20>,
    registry: &str,
) -> Vec<String> {
    let published = graph
        .images
        .values()
        .filter(|i| i.publish)
        .map(|i| i.name.as_str());
    graph
        .dependency_order(published)
        .iter()
        .filter_map(|n| fingerprints.get(n).map(|d| image_spec(registry, "", n, d)))
        .collect()
}

/// The reference's build hash: hex SHA-1 over the concatenated specs, in
/// order (see [`build_specs`]).
pub fn build_hash<'a>(specs: impl IntoIterator<Item = &'a str>) -> String {
    let mut h = Sha1::new();
    for spec in specs {
        h.update(spec.as_bytes());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::images::Image;

    fn unset(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn ghcr_default_forms() {
        assert_eq!(
            ghcr_default("MZ_GHCR_DEFAULT = \"0\"\n", &unset).as_deref(),
            Some("0")
        );
        assert_eq!(
            ghcr_default("x = 1\nMZ_GHCR_DEFAULT: str = '1'  # comment\n", &unset).as_deref(),
            Some("1")
        );
        assert_eq!(ghcr_default("MZ_GHCR_DEFAULT_X = \"0\"\n", &unset), None);
        assert_eq!(ghcr_default("MZ_GHCR_DEFAULT = compute()\n", &unset), None);
        let conditional = "MZ_GHCR_DEFAULT = \"1\" if ui.env_is_truthy(\"CI\") else \"0\"\n";
        assert_eq!(ghcr_default(conditional, &unset).as_deref(), Some("0"));
        let ci = |k: &str| (k == "CI").then(|| "true".to_string());
        assert_eq!(ghcr_default(conditional, &ci).as_deref(), Some("1"));
    }

    #[test]
    fn registry_follows_mz_ghcr_then_the_commits_default() {
        let zero = Some("MZ_GHCR_DEFAULT = \"0\"\n");
        assert_eq!(registry(Some("1"), zero, &unset), GHCR);
        assert_eq!(registry(Some("0"), None, &unset), DOCKER_HUB);
        assert_eq!(registry(Some(""), None, &unset), DOCKER_HUB);
        assert_eq!(registry(None, zero, &unset), DOCKER_HUB);
        assert_eq!(registry(None, None, &unset), GHCR);
        assert_eq!(registry(None, Some("other = 1\n"), &unset), GHCR);
    }

    #[test]
    fn truthiness_is_the_references() {
        for yes in ["1", "yes", "true", "on", "anything"] {
            assert!(env_is_truthy(Some(yes)), "{yes}");
        }
        for no in ["", "0", "no", "false"] {
            assert!(!env_is_truthy(Some(no)), "{no}");
        }
        assert!(!env_is_truthy(None));
    }

    #[test]
    fn build_specs_in_the_references_order() {
        let image = |name: &str, publish: bool, deps: &[&str]| Image {
            name: name.to_string(),
            dir: format!("images/{name}"),
            publish,
            mainline: true,
            depends_on: deps.iter().map(|d| d.to_string()).collect(),
            pre_images: Vec::new(),
        };
        let graph = ImageGraph {
            images: [
                image("app", true, &["base"]),
                image("base", false, &[]),
                image("tool", false, &[]),
            ]
            .into_iter()
            .map(|i| (i.name.clone(), i))
            .collect(),
        };
        let fps: BTreeMap<String, Digest20> = ["app", "base", "tool"]
            .iter()
            .enumerate()
            .map(|(i, n)| (n.to_string(), [i as u8; 20]))
            .collect();
        let specs = build_specs(&graph, &fps, "reg");
        // The unpublished dependency comes along, first; `tool` does not.
        assert_eq!(
            specs,
            [
                format!("reg/base:mzbuild-{}", base32(&[1; 20])),
                format!("reg/app:mzbuild-{}", base32(&[0; 20])),
            ]
        );
        assert_eq!(
            image_spec("r", "p-", "x", &[0; 20]),
            format!("r/p-x:mzbuild-{}", base32(&[0; 20]))
        );
    }

    #[test]
    fn build_hash_is_sha1_of_concatenated_specs() {
        assert_eq!(build_hash([]), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
        // sha1("ab") == sha1 over "a" then "b".
        assert_eq!(
            build_hash(["a", "b"]),
            "da23614e02469a0d7c7bd1bdab5c9c474b1904dc"
        );
    }
}
