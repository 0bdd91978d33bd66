//! The plan between two configs, key by key: which changes need a new run
//! (changed), which apply to the running process (changed in place), a
//! limit added against one whose value changed, unmanaged processes, the
//! manager section, and what is left alone.

use std::path::Path;

use crate::config::{load_str, Config};
use crate::manager::{Change, ManagerChange, Plan};

/// The manager section every config starts with; `extra` goes under it.
fn header(extra: &str) -> String {
    format!(
        "process_manager:\n  port: 0\n  state_dir: /tmp/procman-plan-test\n  force_shutdown_timeout: 30s\n{extra}managed_processes:\n"
    )
}

/// A process `id` running `/bin/sh`, with `control` keys added under
/// `control:` and `management` sections under `management:` (both written
/// at the indentation of their parent's first key).
fn proc(id: &str, control: &str, management: &str) -> String {
    let indent = |text: &str, by: &str| -> String {
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| format!("{by}{l}\n"))
            .collect()
    };
    format!(
        "  - id: {id}\n    management:\n      control:\n        executable: /bin/sh\n        arguments: [\"-c\", \"sleep 100\"]\n{}{}",
        indent(control, "        "),
        indent(management, "      "),
    )
}

fn load(yaml: &str) -> Config {
    load_str(yaml, Path::new("/tmp/procman-plan-test.yaml"), &|_| None)
        .unwrap_or_else(|e| panic!("invalid test config:\n{e}\n---\n{yaml}"))
}

/// The plan from `old` to `new`, each a whole config.
fn plan(old: &str, new: &str) -> Plan {
    Plan::between(&load(old), &load(new))
}

/// The plan between two versions of one process `p` (and an unchanged
/// `other` beside it).
fn plan_of_p(old: (&str, &str), new: (&str, &str)) -> Plan {
    let other = proc("other", "", "");
    plan(
        &(header("") + &proc("p", old.0, old.1) + &other),
        &(header("") + &proc("p", new.0, new.1) + &other),
    )
}

fn change(id: &str, keys: &[&str]) -> Vec<Change> {
    vec![Change {
        id: id.to_string(),
        keys: keys.iter().map(|k| k.to_string()).collect(),
    }]
}

/// Asserts that `p` alone is changed (a new run) with exactly `keys`.
fn assert_restart(plan: &Plan, keys: &[&str]) {
    assert_eq!(plan.changed, change("p", keys), "{plan:#?}");
    assert!(plan.changed_in_place.is_empty(), "{plan:#?}");
    assert_eq!(plan.unchanged, vec!["other".to_string()], "{plan:#?}");
    assert!(
        plan.added.is_empty() && plan.removed.is_empty(),
        "{plan:#?}"
    );
    assert!(!plan.is_empty());
}

/// Asserts that `p` alone is changed in place with exactly `keys`.
fn assert_in_place(plan: &Plan, keys: &[&str]) {
    assert_eq!(plan.changed_in_place, change("p", keys), "{plan:#?}");
    assert!(plan.changed.is_empty(), "{plan:#?}");
    assert_eq!(plan.unchanged, vec!["other".to_string()], "{plan:#?}");
    assert!(!plan.is_empty());
}

#[test]
fn the_same_file_changes_nothing() {
    let yaml = header("") + &proc("a", "", "") + &proc("b", "", "");
    let p = plan(&yaml, &yaml);
    assert_eq!(p.unchanged, vec!["a".to_string(), "b".to_string()]);
    assert!(p.added.is_empty() && p.removed.is_empty());
    assert!(p.changed.is_empty() && p.changed_in_place.is_empty());
    assert!(p.manager.is_empty());
    assert!(p.is_empty(), "{p:#?}");
    assert!(!p.needs_manager_restart());
}

#[test]
fn new_ids_are_added_and_missing_ones_removed() {
    let old = header("") + &proc("keep", "", "") + &proc("gone", "", "");
    let new = header("") + &proc("new", "", "") + &proc("keep", "", "");
    let p = plan(&old, &new);
    assert_eq!(p.added, vec!["new".to_string()]);
    assert_eq!(p.removed, vec!["gone".to_string()]);
    assert_eq!(p.unchanged, vec!["keep".to_string()]);
    assert!(p.changed.is_empty() && p.changed_in_place.is_empty());
    assert!(!p.is_empty());
}

#[test]
fn what_is_executed_and_how_needs_a_new_run() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "",
            "working_directory: /tmp",
            "management.control.working_directory",
        ),
        (
            "environment:\n  A: \"1\"",
            "environment:\n  A: \"2\"",
            "management.control.environment",
        ),
        ("", "user: nobody", "management.control.user"),
        ("", "group: root", "management.control.group"),
    ];
    for (old, new, key) in cases {
        assert_restart(&plan_of_p((old, ""), (new, "")), &[key]);
    }
    // The arguments and the program (the helper fixes them; `p` is first).
    let other = proc("other", "", "");
    let old = header("") + &proc("p", "", "") + &other;
    let new = old.replacen("sleep 100", "sleep 200", 1);
    assert_restart(&plan(&old, &new), &["management.control.arguments"]);
    let new = old.replacen("executable: /bin/sh", "executable: /bin/dash", 1);
    assert_restart(&plan(&old, &new), &["management.control.executable"]);
}

#[test]
fn new_env_file_contents_make_a_process_need_a_new_run() {
    let key = "management.control.env_file (its contents)";
    // Unchanged in the file: changed, for that key alone.
    let mut p = plan_of_p(("env_file: /tmp/p.env", ""), ("env_file: /tmp/p.env", ""));
    p.needs_new_run("p", key);
    assert_restart(&p, &[key]);
    // Changed in place: a restart now, every key kept.
    let policy = |s: &str| format!("restart_policy:\n  strategy: {s}");
    let mut p = plan_of_p(("", &policy("never")), ("", &policy("always")));
    p.needs_new_run("p", key);
    assert_restart(&p, &[key, "management.restart_policy"]);
    // Already changed, or added: as it was.
    let mut p = plan_of_p(("", ""), ("working_directory: /tmp", ""));
    let before = p.clone();
    p.needs_new_run("p", key);
    assert_eq!(p, before);
    let mut p = plan(&header(""), &(header("") + &proc("p", "", "")));
    p.needs_new_run("p", key);
    assert_eq!(p.added, ["p"]);
    assert!(p.changed.is_empty(), "{p:#?}");
}

#[test]
fn type_enabled_profile_and_logging_need_a_new_run() {
    let other = proc("other", "", "");
    let old = header("") + &proc("p", "", "") + &other;
    let with = |line: &str| old.replacen("  - id: p\n", &format!("  - id: p\n    {line}\n"), 1);
    assert_restart(&plan(&old, &with("enabled: false")), &["enabled"]);
    assert_restart(&plan(&old, &with("profile_type: batch")), &["profile_type"]);
    assert_restart(
        &plan_of_p(("", ""), ("", "logging:\n  format: json")),
        &["management.logging"],
    );
}

#[test]
fn stop_and_start_settings_apply_in_place() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "startup_timeout: 10s",
            "startup_timeout: 20s",
            "management.control.startup_timeout",
        ),
        (
            "shutdown_timeout: 1s",
            "shutdown_timeout: 2s",
            "management.control.shutdown_timeout",
        ),
        (
            "",
            "shutdown_signal: SIGINT",
            "management.control.shutdown_signal",
        ),
        (
            "",
            "success_exit_codes: [0, 3]",
            "management.control.success_exit_codes",
        ),
    ];
    for (old, new, key) in cases {
        assert_in_place(&plan_of_p((old, ""), (new, "")), &[key]);
    }
}

#[test]
fn policy_health_check_and_dependencies_apply_in_place() {
    assert_in_place(
        &plan_of_p(
            ("", "restart_policy:\n  strategy: never"),
            ("", "restart_policy:\n  strategy: always"),
        ),
        &["management.restart_policy"],
    );
    let check = |interval: &str| {
        format!("health_check:\n  type: exec\n  command: [\"true\"]\n  interval: {interval}")
    };
    assert_in_place(
        &plan_of_p(("", &check("30s")), ("", &check("200ms"))),
        &["management.health_check"],
    );
    assert_in_place(
        &plan_of_p(("", ""), ("", &check("1s"))),
        &["management.health_check"],
    );
    let other = proc("other", "", "");
    let old = header("") + &proc("p", "", "") + &other;
    let new = old.replacen("  - id: p\n", "  - id: p\n    depends_on: [other]\n", 1);
    assert_in_place(&plan(&old, &new), &["depends_on"]);
}

#[test]
fn a_limit_added_or_removed_needs_a_new_run_a_new_value_does_not() {
    let limits = |body: &str| format!("resource_limits:\n  {body}");
    for key in ["max_memory_mb", "max_cpu_percent", "max_processes"] {
        let full = format!("management.resource_limits.{key}");
        let (a, b) = (limits(&format!("{key}: 50")), limits(&format!("{key}: 60")));
        assert_restart(&plan_of_p(("", ""), ("", &a)), &[&full]);
        assert_restart(&plan_of_p(("", &a), ("", "")), &[&full]);
        assert_in_place(&plan_of_p(("", &a), ("", &b)), &[&full]);
    }
    // The descriptor limit is set at exec: always a new run.
    let (a, b) = (
        limits("max_file_descriptors: 256"),
        limits("max_file_descriptors: 512"),
    );
    let key = "management.resource_limits.max_file_descriptors";
    assert_restart(&plan_of_p(("", &a), ("", &b)), &[key]);
    assert_restart(&plan_of_p(("", ""), ("", &a)), &[key]);
    // What the monitor does with a violation: in place.
    let (a, b) = (
        limits("max_memory_mb: 50\n  on_violation: log"),
        limits("max_memory_mb: 50\n  on_violation: stop"),
    );
    assert_in_place(
        &plan_of_p(("", &a), ("", &b)),
        &["management.resource_limits (on_violation, violation_grace, sample_interval)"],
    );
}

#[test]
fn a_change_of_both_classes_is_a_restart_listing_every_key() {
    let p = plan_of_p(
        ("startup_timeout: 10s", "restart_policy:\n  strategy: never"),
        (
            "startup_timeout: 20s\nworking_directory: /tmp",
            "restart_policy:\n  strategy: always",
        ),
    );
    assert_restart(
        &p,
        &[
            "management.control.working_directory",
            "management.control.startup_timeout",
            "management.restart_policy",
        ],
    );
}

/// An unmanaged process watching pid 1, with `management` sections added.
fn unmanaged(management: &str) -> String {
    let extra: String = management
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| format!("      {l}\n"))
        .collect();
    format!(
        "  - id: u\n    type: unmanaged\n    management:\n      discovery:\n        pid: 1\n{extra}"
    )
}

#[test]
fn any_change_of_an_unmanaged_process_is_changed() {
    let check = |interval: &str| {
        format!("health_check:\n  type: exec\n  command: [\"true\"]\n  interval: {interval}")
    };
    // A key that would apply in place to a managed process.
    let p = plan(
        &(header("") + &unmanaged(&check("30s"))),
        &(header("") + &unmanaged(&check("1s"))),
    );
    assert_eq!(
        p.changed,
        change("u", &["management.health_check"]),
        "{p:#?}"
    );
    assert!(p.changed_in_place.is_empty(), "{p:#?}");
    // Its discovery.
    let old = header("") + &unmanaged("");
    let p = plan(&old, &old.replace("pid: 1", "pid: 2"));
    assert_eq!(p.changed, change("u", &["management.discovery"]), "{p:#?}");
    // And none is none.
    assert_eq!(plan(&old, &old).unchanged, vec!["u".to_string()]);
}

fn manager_change(key: &str, applied: bool) -> ManagerChange {
    ManagerChange {
        key: key.to_string(),
        applied,
    }
}

#[test]
fn only_force_shutdown_timeout_of_the_manager_section_applies() {
    let old = header("") + &proc("p", "", "");
    let port = "  port: 0\n";
    // (what the new file has instead of `port: 0`, the key, applied)
    let cases: &[(&str, &str, bool)] = &[
        ("  port: 8123\n", "process_manager.port", false),
        (
            "  port: 0\n  bind: 0.0.0.0\n",
            "process_manager.bind",
            false,
        ),
        (
            "  port: 0\n  log_level: debug\n",
            "process_manager.log_level",
            false,
        ),
        (
            "  port: 0\n  log_format: json\n",
            "process_manager.log_format",
            false,
        ),
        (
            "  port: 0\n  log_dir: /tmp/elsewhere\n",
            "process_manager.log_dir",
            false,
        ),
        (
            "  port: 0\n  api_token: a-token-for-the-test\n",
            "process_manager.api_token",
            false,
        ),
    ];
    for (instead, key, applied) in cases {
        let p = plan(&old, &old.replacen(port, instead, 1));
        assert_eq!(
            p.manager,
            vec![manager_change(key, *applied)],
            "{key}: {p:#?}"
        );
        assert!(p.needs_manager_restart(), "{key}");
        assert_eq!(p.unchanged, vec!["p".to_string()], "{key}: {p:#?}");
        assert!(!p.is_empty(), "{key}");
    }
    let new = old.replace("force_shutdown_timeout: 30s", "force_shutdown_timeout: 5s");
    let p = plan(&old, &new);
    let key = "process_manager.force_shutdown_timeout";
    assert_eq!(p.manager, vec![manager_change(key, true)], "{p:#?}");
    assert!(!p.needs_manager_restart());
    assert!(!p.is_empty());
}

#[test]
fn log_collection_waits_for_a_restart_of_the_manager() {
    let procs = proc("p", "", "");
    let old = header("") + &procs;
    let new = format!(
        "{old}log_collection:\n  enabled: true\n  global_aggregation:\n    enabled: true\n    targets:\n      - type: file\n        path: /tmp/procman-plan-test.log\n"
    );
    let p = plan(&old, &new);
    assert_eq!(p.manager, vec![manager_change("log_collection", false)]);
    assert!(p.needs_manager_restart());
}
