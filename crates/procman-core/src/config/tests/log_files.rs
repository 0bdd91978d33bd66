//! Two writers of one log file: processes (their `logging.file` or the
//! default `<log_dir>/<id>.log`) and aggregation `file` targets.

use super::{load_err, load_ok};
use crate::config::Diagnostic;

fn places(errors: &[Diagnostic]) -> Vec<(usize, &str, &str)> {
    errors
        .iter()
        .map(|e| (e.line, e.path.as_str(), e.message.as_str()))
        .collect()
}

#[test]
fn two_processes_with_one_file_are_an_error_naming_both() {
    let errors = load_err(
        "
        managed_processes:
          - id: a
            management:
              control: {executable: a}
              logging: {file: /var/log/app.log}
          - id: b
            management:
              control: {executable: b}
              logging: {file: /var/log/./old/../app.log}
        ",
    );
    assert_eq!(
        places(&errors),
        [(
            9,
            "managed_processes[1].management.logging.file",
            "writes the same log file as process `a` (line 5): /var/log/app.log"
        )]
    );
}

#[test]
fn a_file_and_another_process_default_file_meet_when_log_dir_is_known() {
    // Relative paths resolve against the config's directory, /etc/procman.
    let yaml = |manager: &str| {
        format!(
            "
            process_manager: {{{manager}}}
            managed_processes:
              - id: web
                management: {{control: {{executable: web}}}}
              - id: api
                management:
                  control: {{executable: api}}
                  logging: {{file: logs/web.log}}
            "
        )
    };
    let errors = load_err(&yaml("state_dir: ."));
    assert_eq!(
        places(&errors),
        [(
            8,
            "managed_processes[1].management.logging.file",
            "writes the same log file as process `web` (line 3): /etc/procman/logs/web.log"
        )]
    );
    let errors = load_err(&yaml("log_dir: /etc/procman/logs/"));
    assert_eq!(errors.len(), 1, "{errors:#?}");
    // Without either, the default directory depends on who runs the
    // manager: nothing to compare with at load time.
    load_ok(&yaml("port: 0"));
    load_ok(&yaml("log_dir: /var/log/procman"));
}

#[test]
fn a_process_file_and_a_target_or_two_targets_are_an_error() {
    let errors = load_err(
        "
        process_manager: {log_dir: /var/log/procman}
        managed_processes:
          - id: web
            management: {control: {executable: web}}
        log_collection:
          global_aggregation:
            targets:
              - type: file
                path: /var/log/procman/web.log
              - type: process_manager_stdout
              - type: file
                path: /var/log/all.log
              - {type: file, path: /var/log/../log/all.log, format: json}
        ",
    );
    assert_eq!(
        places(&errors),
        [
            (
                9,
                "log_collection.global_aggregation.targets[0].path",
                "writes the same log file as process `web` (line 3): /var/log/procman/web.log"
            ),
            (
                13,
                "log_collection.global_aggregation.targets[3].path",
                "writes the same log file as log target \
                 `log_collection.global_aggregation.targets[2]` (line 12): /var/log/all.log"
            ),
        ]
    );
}

#[test]
fn files_that_are_off_or_targets_that_are_off_write_nothing() {
    load_ok(
        "
        managed_processes:
          - id: a
            management:
              control: {executable: a}
              logging: {file: /var/log/one.log}
          - id: b
            management:
              control: {executable: b}
              logging: {file: false}
        log_collection:
          enabled: false
          global_aggregation:
            targets:
              - {type: file, path: /var/log/one.log}
        ",
    );
    load_ok(
        "
        managed_processes:
          - id: a
            management: {control: {executable: a}, logging: {file: /var/log/one.log}}
        log_collection:
          global_aggregation:
            enabled: false
            targets:
              - {type: file, path: /var/log/one.log}
        ",
    );
}

#[test]
fn a_repeated_id_is_one_error_not_also_a_shared_file() {
    let errors = load_err(
        "
        process_manager: {state_dir: /var/lib/procman}
        managed_processes:
          - id: a
            management: {control: {executable: a}}
          - id: a
            management: {control: {executable: b}}
        ",
    );
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(errors[0].message.starts_with("duplicate id"));
}
