//! Warnings: located like errors, kept in `Config::warnings`, and never
//! a reason to refuse the file.

use std::path::Path;

use super::{load_err, load_ok, SOURCE};
use crate::config::{Diagnostic, Severity};

fn warnings(yaml: &str) -> Vec<Diagnostic> {
    let config = load_ok(yaml);
    assert!(
        config
            .warnings
            .iter()
            .all(|w| w.severity == Severity::Warning),
        "{:#?}",
        config.warnings
    );
    config.warnings
}

fn at(w: &Diagnostic) -> (usize, usize, &str) {
    (w.line, w.column, w.path.as_str())
}

#[test]
fn a_grace_longer_than_the_whole_shutdown_is_a_warning_at_the_grace() {
    let w = warnings(
        "
        process_manager:
          force_shutdown_timeout: 10s
        managed_processes:
          - id: db
            management:
              control:
                executable: postgres
                shutdown_timeout: 1m
          - id: web
            management:
              control: {executable: web, shutdown_timeout: 10s}
        ",
    );
    assert_eq!(w.len(), 1, "{w:#?}");
    assert_eq!(
        at(&w[0]),
        (
            8,
            27,
            "managed_processes[0].management.control.shutdown_timeout"
        )
    );
    assert_eq!(
        w[0].message,
        "shutdown_timeout of `db` (1m) is longer than process_manager.force_shutdown_timeout \
         (10s): when the manager shuts down, the process is killed before its grace period ends"
    );
    let shown = w[0].display(Path::new("procman.yaml")).to_string();
    assert!(
        shown.starts_with(
            "procman.yaml:8:27: managed_processes[0].management.control.shutdown_timeout: \
             warning: shutdown_timeout of `db`"
        ),
        "{shown}"
    );
}

#[test]
fn a_deadline_shorter_than_a_default_grace_is_a_warning_at_the_deadline() {
    let w = warnings(
        "
        process_manager: {force_shutdown_timeout: 5s}
        managed_processes:
          - id: a
            management: {control: {executable: a}}
          - id: ext
            type: unmanaged
            management: {discovery: {pid: 1}}
        ",
    );
    // Once, for the managed process: an unmanaged one is never stopped.
    assert_eq!(w.len(), 1, "{w:#?}");
    assert_eq!(at(&w[0]), (1, 43, "process_manager.force_shutdown_timeout"));
    assert!(w[0].message.contains("(10s, the default)"), "{w:#?}");
}

#[test]
fn restarting_at_once_without_limit_is_a_warning_at_the_delay() {
    let w = warnings(
        "
        managed_processes:
          - id: loop
            management:
              control: {executable: a}
              restart_policy:
                max_attempts: 0
                restart_delay: 0s
          - id: limited
            management:
              control: {executable: a}
              restart_policy: {max_attempts: 3, restart_delay: 0s}
          - id: slow
            management:
              control: {executable: a}
              restart_policy: {max_attempts: 0, restart_delay: 100ms}
          - id: never
            management:
              control: {executable: a}
              restart_policy: {strategy: never, max_attempts: 0, restart_delay: 0s}
        ",
    );
    assert_eq!(w.len(), 1, "{w:#?}");
    assert_eq!(
        at(&w[0]),
        (
            7,
            24,
            "managed_processes[0].management.restart_policy.restart_delay"
        )
    );
    assert!(w[0]
        .message
        .starts_with("restart_delay 0s with max_attempts 0"));
}

#[test]
fn a_config_without_processes_is_a_warning() {
    let w = warnings("managed_processes: []");
    assert_eq!(at(&w[0]), (1, 1, "managed_processes"));
    let w = warnings("process_manager: {port: 0}");
    assert_eq!(at(&w[0]), (0, 0, "managed_processes"), "the whole file");
    assert_eq!(
        w[0].message,
        "no process is configured: the manager would have nothing to run"
    );
    let shown = w[0].display(Path::new(SOURCE)).to_string();
    assert_eq!(
        shown,
        "/etc/procman/procman.yaml: managed_processes: warning: no process is configured: \
         the manager would have nothing to run"
    );
}

#[test]
fn warnings_are_sorted_and_errors_are_not_warnings() {
    let config = load_ok(
        "
        process_manager: {force_shutdown_timeout: 1s}
        managed_processes:
          - id: b
            management:
              control: {executable: b, shutdown_timeout: 2s}
              restart_policy: {max_attempts: 0, restart_delay: 0s}
        ",
    );
    let places: Vec<usize> = config.warnings.iter().map(|w| w.line).collect();
    assert_eq!(places, [5, 6], "{:#?}", config.warnings);
    // A file with errors has no config, so no warnings either; the
    // errors are errors.
    let errors = load_err("process_manager: {port: x}");
    assert!(errors.iter().all(|e| e.severity == Severity::Error));
}

#[test]
fn depending_on_a_process_that_is_not_enabled_is_a_warning_at_the_entry() {
    let w = warnings(
        "
        managed_processes:
          - id: db
            enabled: false
            management:
              control: {executable: postgres}
          - id: cache
            management:
              control: {executable: redis-server}
          - id: api
            depends_on:
              - cache
              - {id: db, condition: started}
            management:
              control: {executable: api}
          - id: tool
            enabled: false
            depends_on: [db]
            management:
              control: {executable: tool}
        ",
    );
    // Only api: a disabled dependent (tool) starts by hand anyway.
    assert_eq!(w.len(), 1, "{w:#?}");
    assert_eq!(at(&w[0]), (12, 10, "managed_processes[2].depends_on[1]"));
    assert_eq!(
        w[0].message,
        "`api` depends on `db`, which is not enabled: `db` never starts with the manager, \
         so `api` waits for it (state waiting) until it is started by hand"
    );
}

/// A config of `n` processes restarted at once and without limit: one
/// warning each, at each one's `restart_delay` (line 5 + 4 × index).
fn loop_restarts(n: usize) -> String {
    let mut yaml = String::from("managed_processes:\n");
    for i in 0..n {
        yaml.push_str(&format!(
            "  - id: p{i}\n    management:\n      control: {{executable: sleep}}\n      restart_policy: {{strategy: always, restart_delay: 0s, max_attempts: 0}}\n"
        ));
    }
    yaml
}

fn lines(yaml: &str) -> Vec<String> {
    let config = load_ok(yaml);
    crate::config::warning_lines(&config.warnings, Path::new("pm.yaml"))
}

/// A warning repeated for many processes: two in full, then one line that
/// counts the rest and names the last.
#[test]
fn a_warning_repeated_for_many_processes_is_shown_twice_then_counted() {
    let yaml = loop_restarts(5);
    assert_eq!(load_ok(&yaml).warnings.len(), 5);
    let lines = lines(&yaml);
    assert_eq!(lines.len(), 3, "{lines:#?}");
    assert!(lines[0].starts_with("pm.yaml:5:"), "{}", lines[0]);
    assert!(lines[0].contains("managed_processes[0]."), "{}", lines[0]);
    assert!(lines[1].contains("managed_processes[1]."), "{}", lines[1]);
    assert_eq!(
        lines[2],
        "pm.yaml: managed_processes[*].management.restart_policy.restart_delay: warning: \
         3 more like it, the last at line 21 (managed_processes[4].management.restart_policy.restart_delay)"
    );
}

/// Up to three of a kind are all shown: a count would take as much room.
#[test]
fn three_warnings_of_a_kind_are_all_shown() {
    for n in 1..=3 {
        let lines = lines(&loop_restarts(n));
        assert_eq!(lines.len(), n, "{lines:#?}");
        assert!(
            lines.iter().all(|l| !l.contains("more like it")),
            "{lines:#?}"
        );
    }
}

/// A config whose manager gives 1 s of grace, with `n` processes whose
/// `management` is `body` (indented under it).
fn short_grace(n: usize, body: &str) -> String {
    let mut yaml =
        String::from("process_manager:\n  force_shutdown_timeout: 1s\nmanaged_processes:\n");
    for i in 0..n {
        yaml.push_str(&format!("  - id: p{i}\n    management:\n      {body}"));
    }
    yaml
}

/// The same key blamed for many processes, each named in the message (the
/// manager's grace shorter than each process's), is one kind.
#[test]
fn a_warning_that_names_each_process_is_counted_too() {
    let yaml = short_grace(6, "control: {executable: sleep}\n");
    let config = load_ok(&yaml);
    assert_eq!(config.warnings.len(), 6, "{:#?}", config.warnings);
    let lines = lines(&yaml);
    assert_eq!(lines.len(), 3, "{lines:#?}");
    assert!(lines[0].contains("`p0`"), "{}", lines[0]);
    assert!(lines[1].contains("`p1`"), "{}", lines[1]);
    assert!(lines[2].contains("4 more like it"), "{}", lines[2]);
}

/// Warnings of several kinds keep the file's order; a kind's count stands
/// where its third warning would.
#[test]
fn warnings_of_several_kinds_keep_the_file_order() {
    let yaml = short_grace(
        5,
        "control: {executable: sleep, shutdown_timeout: 2s}\n      \
         restart_policy: {strategy: always, restart_delay: 0s, max_attempts: 0}\n",
    );
    let config = load_ok(&yaml);
    let w = &config.warnings;
    assert_eq!(w.len(), 10, "{w:#?}");
    assert!(w.windows(2).all(|p| p[0].line <= p[1].line), "{w:#?}");
    let lines = lines(&yaml);
    assert_eq!(lines.len(), 6, "{lines:#?}");
    for n in 0..4 {
        assert!(
            lines[n].starts_with(&format!("pm.yaml:{}:", w[n].line)),
            "{lines:#?}"
        );
    }
    assert!(
        lines[4].contains("control.shutdown_timeout: warning: 3 more like it"),
        "{lines:#?}"
    );
    assert!(
        lines[5].contains("restart_delay: warning: 3 more like it"),
        "{lines:#?}"
    );
}
