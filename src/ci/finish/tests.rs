use std::collections::{BTreeSet, HashSet};
use std::path::PathBuf;

use serde_yaml_ng::Value;

use super::*;

fn y(s: &str) -> Value {
    serde_yaml_ng::from_str(s).expect("test YAML parses")
}

fn opts() -> FinishOptions {
    FinishOptions::new("test", "feature")
}

/// Runs `pass` on `input` and compares with `expected` (both YAML texts).
#[track_caller]
fn check(pass: impl FnOnce(&mut Value) -> Result<(), FinishError>, input: &str, expected: &str) {
    let mut p = y(input);
    pass(&mut p).expect("pass succeeds");
    let want = y(expected);
    assert_eq!(
        p,
        want,
        "\n--- got:\n{}\n--- want:\n{}",
        serde_yaml_ng::to_string(&p).unwrap_or_default(),
        serde_yaml_ng::to_string(&want).unwrap_or_default()
    );
}

#[track_caller]
fn check_err(pass: impl FnOnce(&mut Value) -> Result<(), FinishError>, input: &str) -> String {
    let mut p = y(input);
    match pass(&mut p) {
        Ok(()) => panic!(
            "expected an error, got {}",
            serde_yaml_ng::to_string(&p).unwrap_or_default()
        ),
        Err(e) => e.to_string(),
    }
}

// --- truncate_skip_length --------------------------------------------------

#[test]
fn finish_truncate_skip_cuts_long_strings_in_groups_too() {
    let long = "x".repeat(80);
    let cut = "x".repeat(70);
    let multibyte = "é".repeat(75);
    let multibyte_cut = "é".repeat(70);
    check(
        truncate_skip_length,
        &format!(
            "steps:
  - {{id: a, skip: {long}}}
  - {{id: b, skip: short}}
  - {{id: c, skip: true}}
  - group: g
    steps:
      - {{id: d, skip: {multibyte}}}
"
        ),
        &format!(
            "steps:
  - {{id: a, skip: {cut}}}
  - {{id: b, skip: short}}
  - {{id: c, skip: true}}
  - group: g
    steps:
      - {{id: d, skip: {multibyte_cut}}}
"
        ),
    );
}

// --- handle_sanitizer_skip -------------------------------------------------

#[test]
fn finish_sanitizer_skip_and_env() {
    let mut o = opts();
    o.sanitizer = Some("address".into());
    check(
        |p| handle_sanitizer_skip(p, &o),
        "steps:
  - {id: a, sanitizer: skip}
  - {id: b, sanitizer: only}
  - group: g
    steps: [{id: c, sanitizer: skip}]
",
        "env: {CI_SANITIZER: address}
steps:
  - {id: a, sanitizer: skip, skip: true}
  - {id: b, sanitizer: only}
  - group: g
    steps: [{id: c, sanitizer: skip, skip: true}]
",
    );
}

#[test]
fn finish_no_sanitizer_skips_sanitizer_only_steps() {
    let mut o = opts();
    o.sanitizer = Some("none".into());
    check(
        |p| handle_sanitizer_skip(p, &o),
        "env: {A: 1}\nsteps: [{id: a, sanitizer: skip}, {id: b, sanitizer: only}]",
        "env: {A: 1}\nsteps: [{id: a, sanitizer: skip}, {id: b, sanitizer: only, skip: true}]",
    );
}

#[test]
fn finish_unknown_sanitizer_is_an_error() {
    let mut o = opts();
    o.sanitizer = Some("bogus".into());
    let e = check_err(|p| finish(p, &o), "steps: []");
    assert!(e.contains("unknown sanitizer `bogus`"), "{e}");
}

// --- increase_agents_timeouts ----------------------------------------------

#[test]
fn finish_sanitizer_scales_timeouts_and_moves_queues_up() {
    let mut o = opts();
    o.sanitizer = Some("thread".into());
    check(
        |p| increase_agents_timeouts(p, &o),
        "steps:
  - {id: a, timeout_in_minutes: 6, agents: {queue: hetzner-aarch64-4cpu-8gb, other: x}}
  - {id: b, timeout_in_minutes: 1.5, agents: {queue: linux-x86_64-large}}
  - {id: c, agents: {queue: some-unknown-queue}}
  - {id: d, agents: {os: linux}}
  - {id: e, timeout_in_minutes: 2}
  - group: g
    steps: [{id: f, agents: {queue: hetzner-x86-64-12cpu-24gb}}]
",
        // Like the reference, `agents` is replaced by `{queue: ...}`: other
        // agent keys are dropped, and a missing queue becomes null.
        "steps:
  - {id: a, timeout_in_minutes: 60, agents: {queue: hetzner-aarch64-8cpu-16gb}}
  - {id: b, timeout_in_minutes: 15.0, agents: {queue: builder-linux-x86_64}}
  - {id: c, agents: {queue: some-unknown-queue}}
  - {id: d, agents: {queue: null}}
  - {id: e, timeout_in_minutes: 20}
  - group: g
    steps: [{id: f, agents: {queue: hetzner-x86-64-dedi-16cpu-64gb}}]
",
    );
}

#[test]
fn finish_random_system_parameters_scale_like_a_sanitizer() {
    let mut o = opts();
    o.system_parameters_random = true;
    check(
        |p| increase_agents_timeouts(p, &o),
        "steps: [{id: a, timeout_in_minutes: 3, agents: {queue: linux-aarch64-small}}]",
        "steps: [{id: a, timeout_in_minutes: 30, agents: {queue: linux-aarch64}}]",
    );
}

#[test]
fn finish_coverage_handling() {
    let mut o = opts();
    o.coverage = true;
    check(
        |p| increase_agents_timeouts(p, &o),
        "steps:
  - {id: build-x86_64, label: B, timeout_in_minutes: 10}
  - {id: build-aarch64, label: B, timeout_in_minutes: 10}
  - {id: cargo-test, timeout_in_minutes: 60, parallelism: 2, agents: {queue: small}}
  - {id: s, coverage: skip, timeout_in_minutes: 1}
  - {id: o, coverage: only, timeout_in_minutes: 1}
",
        "env: {CI_COVERAGE_ENABLED: 1}
steps:
  - {id: build-x86_64, label: B, timeout_in_minutes: 30, name: Build x86_64 with coverage}
  - {id: build-aarch64, label: B, timeout_in_minutes: 30, name: Build aarch64 with coverage}
  - {id: cargo-test, timeout_in_minutes: 180, agents: {queue: hetzner-x86-64-dedi-32cpu-128gb}}
  - {id: s, coverage: skip, timeout_in_minutes: 3, skip: true}
  - {id: o, coverage: only, timeout_in_minutes: 3}
",
    );
}

#[test]
fn finish_coverage_and_sanitizer_multiply_timeouts() {
    let mut o = opts();
    o.coverage = true;
    o.sanitizer = Some("address".into());
    check(
        |p| increase_agents_timeouts(p, &o),
        "steps: [{id: a, timeout_in_minutes: 2}]",
        "env: {CI_COVERAGE_ENABLED: 1}\nsteps: [{id: a, timeout_in_minutes: 60}]",
    );
}

#[test]
fn finish_without_coverage_skips_coverage_only_steps() {
    check(
        |p| increase_agents_timeouts(p, &opts()),
        "steps: [{id: s, coverage: skip, timeout_in_minutes: 1}, {id: o, coverage: only, timeout_in_minutes: 1}]",
        "steps: [{id: s, coverage: skip, timeout_in_minutes: 1}, {id: o, coverage: only, timeout_in_minutes: 1, skip: true}]",
    );
}

#[test]
fn finish_string_timeout_is_an_error_not_a_repeat() {
    let mut o = opts();
    o.sanitizer = Some("address".into());
    let e = check_err(
        |p| increase_agents_timeouts(p, &o),
        "steps: [{id: a, timeout_in_minutes: \"5\"}]",
    );
    assert!(
        e.contains("step `a`: `timeout_in_minutes` must be a number"),
        "{e}"
    );
}

// --- prioritize_pipeline ---------------------------------------------------

const PRIO_INPUT: &str = "priority: 20
steps:
  - {id: a}
  - {id: b, priority: 5, agents: {queue: hetzner-aarch64-8cpu-16gb}}
  - {id: c, agents: {queue: hetzner-aarch64-16cpu-32gb}}
  - {id: t, trigger: x}
  - wait: ~
  - {block: Go}
  - group: g
    steps: [{id: d, priority: 1}]
";

#[test]
fn finish_priorities_on_a_feature_branch() {
    let mut o = opts();
    o.priority = 3;
    check(
        |p| prioritize_pipeline(p, &o),
        PRIO_INPUT,
        "priority: 20
steps:
  - {id: a, priority: 23}
  - {id: b, priority: 29, agents: {queue: hetzner-aarch64-8cpu-16gb}}
  - {id: c, priority: 25, agents: {queue: hetzner-aarch64-16cpu-32gb}}
  - {id: t, trigger: x}
  - wait: ~
  - {block: Go, priority: 23}
  - group: g
    steps: [{id: d, priority: 24}]
",
    );
}

#[test]
fn finish_priorities_tag_main_dependabot() {
    let run = |o: FinishOptions| {
        let mut p = y("priority: 20\nsteps: [{id: a}]");
        prioritize_pipeline(&mut p, &o).expect("ok");
        p["steps"][0]["priority"].as_i64()
    };
    let mut o = opts();
    o.tag = Some("v0.1.0".into());
    assert_eq!(run(o), Some(30));
    let mut o = opts();
    o.tag = Some("other".into());
    assert_eq!(run(o), Some(20));
    let mut o = opts();
    o.tag = Some(String::new());
    assert_eq!(run(o), Some(20));
    assert_eq!(run(FinishOptions::new("test", "main")), Some(-30));
    let mut o = opts();
    o.dependabot_author = true;
    assert_eq!(run(o), Some(-20));
    let mut o = FinishOptions::new("test", "main");
    o.dependabot_author = true;
    o.tag = Some("v1".into());
    o.priority = -5;
    assert_eq!(run(o), Some(20 - 5 + 10 - 50 - 40));
}

#[test]
fn finish_priority_wrong_types_are_errors() {
    let e = check_err(
        |p| prioritize_pipeline(p, &opts()),
        "steps: [{id: a, priority: high}]",
    );
    assert!(e.contains("step `a`: `priority` must be a number"), "{e}");
    let e = check_err(
        |p| prioritize_pipeline(p, &opts()),
        "priority: x\nsteps: []",
    );
    assert!(e.contains("pipeline `priority` must be a number"), "{e}");
    let e = check_err(
        |p| prioritize_pipeline(p, &opts()),
        "steps: [{id: a, agents: [queue=x]}]",
    );
    assert!(e.contains("`agents` must be a mapping"), "{e}");
}

// --- switch_stuck_queues ---------------------------------------------------

const SWITCH_INPUT: &str = "steps:
  - {id: a, depends_on: build-aarch64, agents: {queue: hetzner-aarch64-4cpu-8gb, x: 1}}
  - {id: b, depends_on: [build-aarch64], agents: {queue: hetzner-aarch64-16cpu-32gb}}
  - {id: c, depends_on: build-aarch64, agents: {queue: hetzner-x86-64-4cpu-8gb}}
  - {id: d, depends_on: build-aarch64}
  - {id: e, trigger: x, agents: {queue: hetzner-aarch64-4cpu-8gb}}
";

#[test]
fn finish_switch_always_stuck_aarch64_queues() {
    check(
        |p| switch_stuck_queues(p, &opts()),
        SWITCH_INPUT,
        "steps:
  - {id: a, depends_on: build-x86_64, agents: {queue: hetzner-x86-64-4cpu-8gb, x: 1}}
  - {id: b, depends_on: [build-aarch64], agents: {queue: hetzner-x86-64-12cpu-24gb}}
  - {id: c, depends_on: build-aarch64, agents: {queue: hetzner-x86-64-4cpu-8gb}}
  - {id: d, depends_on: build-aarch64}
  - {id: e, trigger: x, agents: {queue: hetzner-aarch64-4cpu-8gb}}
",
    );
}

#[test]
fn finish_switch_with_observed_and_forced_queues() {
    let mut o = opts();
    o.stuck_queues = Some(
        [
            "hetzner-x86-64-4cpu-8gb".to_owned(),
            "linux-x86_64".to_owned(),
        ]
        .into(),
    );
    check(
        |p| switch_stuck_queues(p, &o),
        SWITCH_INPUT,
        "steps:
  - {id: a, depends_on: build-aarch64, agents: {queue: linux-aarch64, x: 1}}
  - {id: b, depends_on: [build-aarch64], agents: {queue: hetzner-x86-64-12cpu-24gb}}
  - {id: c, depends_on: build-aarch64, agents: {queue: linux-x86_64}}
  - {id: d, depends_on: build-aarch64}
  - {id: e, trigger: x, agents: {queue: hetzner-aarch64-4cpu-8gb}}
",
    );
    let mut o = opts();
    o.stuck_queues = None;
    o.force_switch_to_aws = true;
    check(
        |p| switch_stuck_queues(p, &o),
        SWITCH_INPUT,
        "steps:
  - {id: a, depends_on: build-aarch64, agents: {queue: linux-aarch64, x: 1}}
  - {id: b, depends_on: [build-aarch64], agents: {queue: linux-aarch64-medium}}
  - {id: c, depends_on: build-aarch64, agents: {queue: linux-x86_64}}
  - {id: d, depends_on: build-aarch64}
  - {id: e, trigger: x, agents: {queue: hetzner-aarch64-4cpu-8gb}}
",
    );
}

#[test]
fn finish_switch_without_an_answer_moves_nothing() {
    let mut o = opts();
    o.stuck_queues = None;
    check(|p| switch_stuck_queues(p, &o), SWITCH_INPUT, SWITCH_INPUT);
}

// --- retries ---------------------------------------------------------------

#[test]
fn finish_retry_merges_with_existing_config() {
    check(
        |p| {
            permit_rerunning_successful_steps(p)?;
            set_retry_on_agent_lost(p)
        },
        "steps:
  - id: a
    retry:
      automatic:
        - {exit_status: 1, limit: 2}
      manual: {permit_on_passed: false, reason: no}
  - {id: b}
  - {block: Go}
  - {id: t, trigger: x}
  - wait: ~
  - group: g
    steps: [{id: c, retry: {manual: {allowed: true}}}]
",
        "steps:
  - id: a
    retry:
      automatic:
        - {exit_status: 1, limit: 2}
        - {exit_status: -1, signal_reason: none, limit: 2}
        - {signal_reason: agent_stop, limit: 2}
        - {exit_status: 128, limit: 2}
        - {exit_status: 199, limit: 2}
      manual: {permit_on_passed: false, reason: no}
  - id: b
    retry:
      manual: {permit_on_passed: true}
      automatic:
        - {exit_status: -1, signal_reason: none, limit: 2}
        - {signal_reason: agent_stop, limit: 2}
        - {exit_status: 128, limit: 2}
        - {exit_status: 199, limit: 2}
  - {block: Go}
  - {id: t, trigger: x}
  - wait: ~
  - group: g
    steps:
      - id: c
        retry:
          manual: {allowed: true, permit_on_passed: true}
          automatic:
            - {exit_status: -1, signal_reason: none, limit: 2}
            - {signal_reason: agent_stop, limit: 2}
            - {exit_status: 128, limit: 2}
            - {exit_status: 199, limit: 2}
",
    );
}

#[test]
fn finish_retry_automatic_must_be_a_list() {
    let e = check_err(
        set_retry_on_agent_lost,
        "steps: [{id: a, retry: {automatic: true}}]",
    );
    assert!(
        e.contains("step `a`: `retry.automatic` must be a list"),
        "{e}"
    );
    let e = check_err(
        permit_rerunning_successful_steps,
        "steps: [{id: a, retry: null}]",
    );
    assert!(e.contains("`retry` must be a mapping, found null"), "{e}");
}

// --- default queue, parallelism ------------------------------------------------

#[test]
fn finish_default_agents_queue() {
    check(
        set_default_agents_queue,
        "steps:
  - {id: a}
  - {id: b, agents: {queue: q}}
  - {block: Go}
  - {block: Go, prompt: sure?}
  - {trigger: x}
  - wait: ~
  - group: g
    steps: [{id: c}]
",
        "steps:
  - {id: a, agents: {queue: hetzner-aarch64-4cpu-8gb}}
  - {id: b, agents: {queue: q}}
  - {block: Go, agents: {queue: hetzner-aarch64-4cpu-8gb}}
  - {block: Go, prompt: sure?}
  - {trigger: x}
  - wait: ~
  - group: g
    steps: [{id: c, agents: {queue: hetzner-aarch64-4cpu-8gb}}]
",
    );
}

#[test]
fn finish_unparallelize() {
    let mut o = opts();
    o.unparallelize = true;
    check(
        |p| unparallelize(p, &o),
        "steps: [{id: a, parallelism: 4, timeout_in_minutes: 10}, {id: b, timeout_in_minutes: 10}]",
        "steps: [{id: a, timeout_in_minutes: 40}, {id: b, timeout_in_minutes: 10}]",
    );
    let input = "steps: [{id: a, parallelism: 4, timeout_in_minutes: 10}]";
    check(|p| unparallelize(p, &opts()), input, input);
    let e = check_err(|p| unparallelize(p, &o), "steps: [{id: a, parallelism: 4}]");
    assert!(
        e.contains("step `a` has no `timeout_in_minutes`, which CI_UNPARALLELIZE"),
        "{e}"
    );
}

#[test]
fn finish_parallelism_name() {
    check(
        set_parallelism_name,
        "steps:
  - {id: a, label: A, parallelism: 2}
  - {id: b, label: B, parallelism: 1}
  - {id: c, label: C}
  - group: g
    steps: [{id: d, label: D, parallelism: 3}]
",
        "steps:
  - {id: a, label: A %N, parallelism: 2}
  - {id: b, label: B, parallelism: 1}
  - {id: c, label: C}
  - group: g
    steps: [{id: d, label: D %N, parallelism: 3}]
",
    );
    let e = check_err(set_parallelism_name, "steps: [{id: a, parallelism: 2}]");
    assert!(
        e.contains("step `a` has `parallelism` > 1 but no `label`"),
        "{e}"
    );
    let e = check_err(
        set_parallelism_name,
        "steps: [{id: a, label: A, parallelism: two}]",
    );
    assert!(e.contains("`parallelism` must be a number"), "{e}");
}

// --- check_depends_on ------------------------------------------------------------

#[test]
fn finish_check_depends_on() {
    let ok = "steps:
  - {id: a, depends_on: []}
  - {id: analyze}
  - {id: deploy, trigger: deploy}
  - {id: coverage-pr-analyze}
  - wait: ~
  - {block: Go, prompt: sure?}
  - group: g
    steps: [{id: b, depends_on: a}]
";
    for name in ["test", "nightly", "release-qualification"] {
        check(|p| check_depends_on(p, name), ok, ok);
    }
    let bad = "steps:\n  - group: g\n    steps: [{label: Some test}]\n";
    let e = check_err(|p| check_depends_on(p, "nightly"), bad);
    assert!(
        e.contains("step labelled \"Some test\" has no explicit `depends_on`, which every step of the `nightly` pipeline needs"),
        "{e}"
    );
    let e = check_err(
        |p| check_depends_on(p, "test"),
        "steps: [{id: t, trigger: x}]",
    );
    assert!(e.contains("step `t`"), "{e}");
    check(|p| check_depends_on(p, "deploy"), bad, bad);
}

// --- LTO, builds -----------------------------------------------------------------

#[test]
fn finish_move_build_to_lto() {
    let input = "steps:
  - {id: build-x86_64, agents: {queue: l-builder-linux-x86_64}}
  - {id: build-aarch64}
  - {id: other, agents: {queue: q}}
";
    check(|p| move_build_to_lto(p, false), input, input);
    check(
        |p| move_build_to_lto(p, true),
        input,
        "env: {CI_LTO: 1}
steps:
  - {id: build-x86_64, agents: {queue: builder-linux-x86_64}}
  - {id: build-aarch64, agents: {queue: builder-linux-aarch64-mem}}
  - {id: other, agents: {queue: q}}
",
    );
}

fn hashes(x86_exist: bool, arm_exist: bool) -> BuildHashes {
    BuildHashes {
        x86_64: ArchHash {
            hash: "X".into(),
            all_exist: x86_exist,
        },
        aarch64: ArchHash {
            hash: "A".into(),
            all_exist: arm_exist,
        },
    }
}

const BUILDS: &str = "steps:
  - group: Builds
    steps:
      - {id: build-x86_64}
      - {id: build-aarch64}
      - {id: upload-debug-symbols-x86_64}
      - {id: upload-debug-symbols-aarch64}
      - {id: devel-docker-tags}
      - {id: other}
";

#[test]
fn finish_trim_builds() {
    check(|p| trim_builds(p, None), BUILDS, BUILDS);
    check(
        |p| trim_builds(p, Some(&hashes(false, false))),
        BUILDS,
        "steps:
  - group: Builds
    steps:
      - {id: build-x86_64, concurrency: 1, concurrency_group: build-x86_64/X}
      - {id: build-aarch64, concurrency: 1, concurrency_group: build-aarch64/A}
      - {id: upload-debug-symbols-x86_64}
      - {id: upload-debug-symbols-aarch64}
      - {id: devel-docker-tags, concurrency: 1, concurrency_group: devel-docker-tags/X}
      - {id: other}
",
    );
    check(
        |p| trim_builds(p, Some(&hashes(true, false))),
        BUILDS,
        "steps:
  - group: Builds
    steps:
      - {id: build-x86_64, skip: true}
      - {id: build-aarch64, concurrency: 1, concurrency_group: build-aarch64/A}
      - {id: upload-debug-symbols-x86_64, skip: true}
      - {id: upload-debug-symbols-aarch64}
      - {id: devel-docker-tags, concurrency: 1, concurrency_group: devel-docker-tags/X}
      - {id: other}
",
    );
}

const CARGO: &str = "steps:
  - {id: cargo-test, depends_on: [], agents: {queue: hetzner-x86-64-dedi-32cpu-128gb-cargo-test}}
  - {id: miri-test, depends_on: [], agents: {queue: hetzner-aarch64-16cpu-32gb}}
";

#[test]
fn finish_cargo_test_dependency() {
    let mut o = opts();
    o.pull_request = true;
    check(
        |p| add_cargo_test_dependency(p, &o),
        CARGO,
        "steps:
  - {id: cargo-test, depends_on: build-x86_64, agents: {queue: hetzner-x86-64-dedi-32cpu-128gb-cargo-test}}
  - {id: miri-test, depends_on: [], agents: {queue: hetzner-aarch64-16cpu-32gb}}
",
    );
    let both = "steps:
  - {id: cargo-test, depends_on: build-x86_64, agents: {queue: hetzner-x86-64-dedi-32cpu-128gb-cargo-test}}
  - {id: miri-test, depends_on: build-aarch64, agents: {queue: hetzner-aarch64-16cpu-32gb}}
";
    for exist in [None, Some(false)] {
        let mut o = FinishOptions::new("nightly", "main");
        o.pull_request = true;
        o.cargo_test_images_exist = exist;
        check(|p| add_cargo_test_dependency(p, &o), CARGO, both);
    }
    let mut o = opts();
    o.cargo_test_images_exist = Some(true);
    check(|p| add_cargo_test_dependency(p, &o), CARGO, CARGO);
    let o = FinishOptions::new("release-qualification", "feature");
    check(|p| add_cargo_test_dependency(p, &o), CARGO, CARGO);
}

const DEPLOY: &str = "steps:
  - {id: a, depends_on: []}
  - wait: ~
  - {id: deploy, trigger: deploy, async: true}
  - {id: nightly-if-release, trigger: nightly, async: true, depends_on: []}
";

#[test]
fn finish_nightly_deploy_dependency_on_tags() {
    check(
        |p| add_nightly_deploy_dependency(p, &opts()),
        DEPLOY,
        DEPLOY,
    );
    let mut o = opts();
    o.tag = Some("v1.2.3".into());
    check(
        |p| add_nightly_deploy_dependency(p, &o),
        DEPLOY,
        "steps:
  - {id: a, depends_on: []}
  - {wait: ~, skip: true}
  - {id: deploy, trigger: deploy, async: false}
  - {id: nightly-if-release, trigger: nightly, async: true, depends_on: deploy}
",
    );
    let e = check_err(
        |p| add_nightly_deploy_dependency(p, &o),
        "steps: [{id: a}, {id: deploy}]",
    );
    assert!(e.contains("does not directly follow a `wait`"), "{e}");
    let e = check_err(
        |p| add_nightly_deploy_dependency(p, &o),
        "steps: [{id: deploy}]",
    );
    assert!(e.contains("does not directly follow a `wait`"), "{e}");
}

const PR_DEPS: &str = "steps:
  - {id: upload-debug-symbols-x86_64, depends_on: build-x86_64}
  - {id: a, depends_on: build-x86_64}
  - {id: b, depends_on: build-aarch64, env: {X: y}}
  - {id: c, depends_on: [build-x86_64]}
";

#[test]
fn finish_remove_dependencies_on_prs() {
    let mut o = opts();
    o.pull_request = true;
    o.build_hashes = Some(hashes(false, true));
    check(
        |p| remove_dependencies_on_prs(p, &o),
        PR_DEPS,
        "steps:
  - {id: upload-debug-symbols-x86_64, depends_on: build-x86_64}
  - {id: a, env: {CI_WAITING_FOR_BUILD: build-x86_64}}
  - {id: b, depends_on: build-aarch64, env: {X: y}}
  - {id: c, depends_on: [build-x86_64]}
",
    );
    let mut untouched = Vec::new();
    let mut n = o.clone();
    n.pull_request = false;
    untouched.push(n);
    let mut n = o.clone();
    n.tag = Some("v1".into());
    untouched.push(n);
    let mut n = o.clone();
    n.release_lto_build = true;
    untouched.push(n);
    let mut n = o.clone();
    n.branch = "dependabot/cargo/foo".into();
    untouched.push(n);
    let mut n = o.clone();
    n.build_hashes = None;
    untouched.push(n);
    let mut n = o.clone();
    n.pipeline_name = "nightly".into();
    untouched.push(n);
    for n in untouched {
        check(|p| remove_dependencies_on_prs(p, &n), PR_DEPS, PR_DEPS);
    }
}

#[test]
fn finish_remove_mz_specific_keys() {
    check(
        remove_mz_specific_keys,
        "steps:
  - {id: a, timeout_in_minutes: 1, inputs: [x], coverage: skip, sanitizer: only, ci_glue_exempt: true}
  - {id: t, trigger: x}
  - {id: s, async: true}
  - wait: ~
  - {block: Go, prompt: sure?}
  - group: g
    steps: [{id: b, timeout_in_minutes: 1, inputs: [y]}]
",
        "steps:
  - {id: a, timeout_in_minutes: 1}
  - {id: t, trigger: x}
  - {id: s, async: true}
  - wait: ~
  - {block: Go, prompt: sure?}
  - group: g
    steps: [{id: b, timeout_in_minutes: 1}]
",
    );
    let e = check_err(remove_mz_specific_keys, "steps: [{id: a, async: false}]");
    assert!(
        e.contains("step `a` has no `timeout_in_minutes` (hint"),
        "{e}"
    );
}

// --- structure errors ----------------------------------------------------------

#[test]
fn finish_structure_errors() {
    let o = opts();
    let e = check_err(|p| finish(p, &o), "- a");
    assert!(e.contains("not a mapping"), "{e}");
    let e = check_err(|p| finish(p, &o), "env: {}");
    assert!(e.contains("no `steps` list"), "{e}");
    let e = check_err(|p| finish(p, &o), "steps: [wait]");
    assert!(
        e.contains("step steps[0] is not a mapping but the string \"wait\""),
        "{e}"
    );
    let e = check_err(|p| finish(p, &o), "steps: [{group: g, steps: [1]}]");
    assert!(e.contains("step steps[0].steps[0] is not a mapping"), "{e}");
    let e = check_err(|p| finish(p, &o), "steps: [{group: g, key: k, steps: ~}]");
    assert!(
        e.contains("`steps` must be a list of steps, found null"),
        "{e}"
    );
    let mut o = opts();
    o.sanitizer = Some("address".into());
    let e = check_err(|p| finish(p, &o), "env: [1]\nsteps: []");
    assert!(e.contains("pipeline `env` must be a mapping"), "{e}");
}

#[test]
fn finish_whole_chain_on_a_small_pipeline() {
    let mut o = opts();
    o.pull_request = true;
    o.build_hashes = Some(hashes(false, false));
    check(
        |p| finish(p, &o),
        "priority: 10
steps:
  - group: Builds
    key: builds
    steps:
      - {id: build-x86_64, label: B, depends_on: [], timeout_in_minutes: 60, inputs: ['*'], agents: {queue: l-builder-linux-x86_64}}
  - {id: t, label: T, depends_on: build-aarch64, timeout_in_minutes: 30, parallelism: 2, inputs: [test/t], agents: {queue: hetzner-aarch64-8cpu-16gb}}
  - {id: u, label: U, depends_on: build-x86_64, timeout_in_minutes: 5, sanitizer: only}
",
        "priority: 10
steps:
  - group: Builds
    key: builds
    steps:
      - id: build-x86_64
        label: B
        depends_on: []
        timeout_in_minutes: 60
        agents: {queue: l-builder-linux-x86_64}
        priority: 10
        retry: &retry
          manual: {permit_on_passed: true}
          automatic:
            - {exit_status: -1, signal_reason: none, limit: 2}
            - {signal_reason: agent_stop, limit: 2}
            - {exit_status: 128, limit: 2}
            - {exit_status: 199, limit: 2}
        concurrency: 1
        concurrency_group: build-x86_64/X
  - id: t
    label: T %N
    timeout_in_minutes: 30
    parallelism: 2
    agents: {queue: hetzner-x86-64-8cpu-16gb}
    priority: 11
    retry: *retry
    env: {CI_WAITING_FOR_BUILD: build-x86_64}
  - id: u
    label: U
    timeout_in_minutes: 5
    skip: true
    priority: 10
    retry: *retry
    agents: {queue: hetzner-aarch64-4cpu-8gb}
    env: {CI_WAITING_FOR_BUILD: build-x86_64}
",
    );
}

// --- §6 -----------------------------------------------------------------------------

const SELECT: &str = "steps:
  - group: Builds
    steps:
      - {id: build-x86_64}
      - {id: lint}
  - {id: a}
  - wait: ~
  - {command: bin/run-b}
  - {id: c, async: true}
  - {block: Go, prompt: sure?}
  - {id: analyze}
";

#[test]
fn finish_select_tests_by_id_counts_groups_in_the_flattened_order() {
    // Flattened: 0 group, 1 build-x86_64, 2 lint, 3 a, 4 wait, 5 bin/run-b, 6 c, 7 block, 8 analyze.
    check(
        |p| select_tests_by_id(p, &[2, 5].into()),
        SELECT,
        "steps:
  - group: Builds
    steps:
      - {id: build-x86_64}
      - {id: lint}
  - {id: a, skip: true}
  - wait: ~
  - {command: bin/run-b}
  - {id: c, async: true}
  - {block: Go, prompt: sure?}
  - {id: analyze}
",
    );
    check(
        |p| select_tests_by_id(p, &BTreeSet::new()),
        SELECT,
        "steps:
  - group: Builds
    steps:
      - {id: build-x86_64}
      - {id: lint, skip: true}
  - {id: a, skip: true}
  - wait: ~
  - {command: bin/run-b, skip: true}
  - {id: c, async: true}
  - {block: Go, prompt: sure?}
  - {id: analyze}
",
    );
}

#[test]
fn finish_select_tests_by_name_falls_back_to_command() {
    check(
        |p| select_tests_by_name(p, &["bin/run-b".to_owned(), "lint".to_owned()].into()),
        SELECT,
        "steps:
  - group: Builds
    steps:
      - {id: build-x86_64}
      - {id: lint}
  - {id: a, skip: true}
  - wait: ~
  - {command: bin/run-b}
  - {id: c, async: true}
  - {block: Go, prompt: sure?}
  - {id: analyze}
",
    );
}

#[test]
fn finish_restrict_to_needed_steps() {
    let needed: HashSet<String> = ["b", "x", "y"].iter().map(|s| s.to_string()).collect();
    check(
        |p| restrict_to(p, &needed),
        "steps:
  - group: G1
    steps: [{id: a}, {wait: ~}, {id: b}]
  - group: G2
    steps: [{id: c}]
  - {group: G3}
  - {id: x}
  - wait: ~
  - wait
  - {id: z}
  - {id: y, trigger: t}
",
        "steps:
  - group: G1
    steps: [{id: b}]
  - {id: x}
  - wait: ~
  - wait
  - {id: y, trigger: t}
",
    );
}

#[test]
fn finish_restrict_to_names_steps_by_id_then_key() {
    let needed: HashSet<String> = ["k", "7"].iter().map(|s| s.to_string()).collect();
    check(
        |p| restrict_to(p, &needed),
        "steps:
  - {key: k}
  - {key: other}
  - {id: 7}
  - {id: x, key: k}
  - group: G
    steps: [{key: k}]
",
        "steps:
  - {key: k}
  - {id: 7}
  - group: G
    steps: [{key: k}]
",
    );
}

#[test]
fn finish_skip_unchanged_glue_exempt_steps() {
    let changed = |specs: &[String]| specs.iter().any(|s| s == "src/changed");
    check(
        |p| skip_unchanged_glue_exempt(p, &changed),
        "steps:
  - {id: a, ci_glue_exempt: true, inputs: [src/other]}
  - {id: b, ci_glue_exempt: true, inputs: [src/other, src/changed]}
  - {id: c, ci_glue_exempt: false, inputs: [src/other]}
  - {id: d, ci_glue_exempt: true, inputs: []}
  - {id: e, ci_glue_exempt: true}
  - {id: f, ci_glue_exempt: true, inputs: src/other}
  - group: g
    steps: [{id: h, ci_glue_exempt: true, inputs: [x]}]
",
        "steps:
  - {id: a, ci_glue_exempt: true, inputs: [src/other], skip: No changes in inputs}
  - {id: b, ci_glue_exempt: true, inputs: [src/other, src/changed]}
  - {id: c, ci_glue_exempt: false, inputs: [src/other]}
  - {id: d, ci_glue_exempt: true, inputs: []}
  - {id: e, ci_glue_exempt: true}
  - {id: f, ci_glue_exempt: true, inputs: src/other}
  - group: g
    steps: [{id: h, ci_glue_exempt: true, inputs: [x], skip: No changes in inputs}]
",
    );
}

#[test]
fn finish_compute_lto() {
    let plain = y("steps: []");
    assert!(!compute_lto(&plain, "test", None, false, false));
    assert!(!compute_lto(&plain, "test", Some(""), false, false));
    assert!(compute_lto(&plain, "test", Some("v1.0"), true, false));
    assert!(compute_lto(&plain, "nightly", None, false, false));
    assert!(!compute_lto(&plain, "nightly", None, true, false));
    assert!(compute_lto(
        &plain,
        "release-qualification",
        None,
        false,
        false
    ));
    assert!(compute_lto(&plain, "test", None, true, true));
    for (env, want) in [
        ("1", true),
        ("1.0", true),
        ("true", true),
        ("'1'", false),
        ("0", false),
        ("2", false),
    ] {
        let p = y(&format!("env: {{CI_LTO: {env}}}\nsteps: []"));
        assert_eq!(
            compute_lto(&p, "test", None, true, false),
            want,
            "CI_LTO: {env}"
        );
    }
    assert!(!compute_lto(
        &y("env: ~\nsteps: []"),
        "test",
        None,
        true,
        false
    ));
}

#[test]
fn finish_options_from_env() {
    let env = |k: &str| {
        match k {
            "BUILDKITE_BRANCH" => Some("main"),
            "CI_PRIORITY" => Some("-3"),
            "BUILDKITE_TAG" => Some(""),
            "BUILDKITE_BUILD_AUTHOR" => Some("Dependabot"),
            "BUILDKITE_PULL_REQUEST" => Some("false"),
            "CI_SANITIZER" => Some("none"),
            "CI_UNPARALLELIZE" => Some("1"),
            "CI_SYSTEM_PARAMETERS" => Some("random"),
            _ => None,
        }
        .map(str::to_owned)
    };
    let o = FinishOptions::from_env("test", env).expect("valid");
    assert_eq!(o.branch, "main");
    assert_eq!(o.priority, -3);
    assert_eq!(o.tag, None);
    assert!(
        o.dependabot_author && !o.pull_request && o.unparallelize && o.system_parameters_random
    );
    assert_eq!(o.sanitizer, None);
    let bad = |k: &str| (k == "CI_PRIORITY").then(|| "high".to_owned());
    assert_eq!(
        FinishOptions::from_env("test", bad),
        Err(FinishError::BadPriority("high".into()))
    );
    let bad = |k: &str| (k == "CI_SANITIZER").then(|| "nope".to_owned());
    assert_eq!(
        FinishOptions::from_env("test", bad),
        Err(FinishError::UnknownSanitizer("nope".into()))
    );
    assert!(env_is_truthy(Some("yes")) && !env_is_truthy(Some("no")) && !env_is_truthy(None));
}

// --- the reference's own result at commit c01 --------------------------------------

fn testdata(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/materialize")
        .join(rel)
}

/// Loads the real `ci/test/pipeline.template.yml` of c01, restricts it to the
/// 18 steps the reference kept, finishes it with c01's environment (branch
/// `feature`, no tag/PR/coverage/sanitizer, priority 0, `test`, LTO computed)
/// and compares with the pipeline the reference would have uploaded.
///
/// The reference's run stubbed its network-dependent parts; this test feeds
/// the same answers rather than ignoring any output: images never exist
/// (`mzbuild.is_docker_image_pushed` / `is_ghcr_image_pushed` stubbed), so the
/// builds get concurrency groups from the image-spec hashes in the vector and
/// `cargo-test` waits for `build-x86_64`; the Buildkite API query for stuck
/// queues returned nothing (`stuck_queues: Some(empty)`), so only the
/// always-stuck aarch64 queues move. `add_version_to_preflight_tests` does not
/// matter: its steps are trimmed at c01.
#[test]
fn finish_reproduces_reference_c01() {
    let vector: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(testdata("c01-finish.json")).expect("vector readable"),
    )
    .expect("vector is JSON");
    let rust_version = vector["rust_version"].as_str().expect("rust_version");
    let template =
        std::fs::read_to_string(testdata("ci/test/pipeline.template.yml")).expect("template");
    let mut pipeline: Value =
        serde_yaml_ng::from_str(&template.replace("$RUST_VERSION", rust_version))
            .expect("template parses");

    let needed: HashSet<String> = vector["needed"]
        .as_array()
        .expect("needed")
        .iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    assert_eq!(needed.len(), 18);
    restrict_to(&mut pipeline, &needed).expect("restrict");

    let arch = |a: &str| ArchHash {
        hash: vector["build_hashes"][a]["hash"]
            .as_str()
            .expect("hash")
            .to_owned(),
        all_exist: vector["build_hashes"][a]["all_exist"]
            .as_bool()
            .expect("all_exist"),
    };
    let mut o = FinishOptions::new("test", "feature");
    o.lto = compute_lto(&pipeline, "test", None, false, false);
    assert_eq!(Some(o.lto), vector["env"]["lto"].as_bool());
    o.build_hashes = Some(BuildHashes {
        x86_64: arch("x86_64"),
        aarch64: arch("aarch64"),
    });
    o.cargo_test_images_exist = vector["cargo_test_images_exist"].as_bool();
    let restricted = pipeline.clone();
    finish(&mut pipeline, &o).expect("finish");

    // The comparison is sharp: without the static queue switch the result differs.
    let mut unswitched = restricted;
    let mut no_answer = o.clone();
    no_answer.stuck_queues = None;
    finish(&mut unswitched, &no_answer).expect("finish");
    assert_ne!(
        &serde_json::to_value(&unswitched).expect("JSON"),
        &vector["final_pipeline"]
    );

    let got = serde_json::to_value(&pipeline).expect("pipeline as JSON");
    let want = &vector["final_pipeline"];
    if &got != want {
        let g = serde_json::to_string_pretty(&got).unwrap_or_default();
        let w = serde_json::to_string_pretty(want).unwrap_or_default();
        let first = g
            .lines()
            .zip(w.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(g.lines().count().min(w.lines().count()));
        panic!(
            "finished pipeline differs from the reference's, first at line {first}:\n got: {:?}\nwant: {:?}",
            g.lines().nth(first),
            w.lines().nth(first)
        );
    }
}
