//! A key written twice in one mapping: reported at the second, naming the
//! first's line, in every mapping at any depth, and together with every
//! other error in the file.

use super::{load_err, load_ok};

#[test]
fn a_duplicate_key_is_reported_with_every_other_error() {
    let errors = load_err(
        "
        process_manager:
          port: 99999
          log_level: info
          log_level: debug
        managed_processes:
          - id: web
            management:
              control:
                executable: web
                startup_timeout: soon
              restart_policy: {strategy: sometimes}
        ",
    );
    let got: Vec<(usize, usize, &str, &str)> = errors
        .iter()
        .map(|e| (e.line, e.column, e.path.as_str(), e.message.as_str()))
        .collect();
    assert_eq!(got.len(), 4, "{errors:#?}");
    assert_eq!(got[0].2, "process_manager.port");
    assert_eq!(
        got[1],
        (
            4,
            3,
            "process_manager.log_level",
            "duplicate key `log_level` (first at line 3)"
        )
    );
    assert_eq!(
        got[2].2,
        "managed_processes[0].management.control.startup_timeout"
    );
    assert_eq!(
        got[3].2,
        "managed_processes[0].management.restart_policy.strategy"
    );
}

#[test]
fn duplicates_are_found_at_every_depth_and_in_every_form() {
    let errors = load_err(
        "
        managed_processes:
          - id: web
            id: api
            management:
              control:
                executable: web
                environment:
                  PORT: 8080
                  HOST: localhost
                  PORT: 9090
                executable: api
              health_check: {tcp_endpoint: \"localhost:1\", interval: 5s, interval: 6s}
            management: {}
        log_collection:
          global_aggregation:
            targets:
              - {type: process_manager_stdout, type: process_manager_stderr}
        ",
    );
    let got: Vec<(usize, &str, &str)> = errors
        .iter()
        .map(|e| (e.line, e.path.as_str(), e.message.as_str()))
        .collect();
    let env = "managed_processes[0].management.control.environment.PORT";
    let check = "managed_processes[0].management.health_check.interval";
    let targets = "log_collection.global_aggregation.targets[0].type";
    assert_eq!(
        got,
        [
            (
                3,
                "managed_processes[0].id",
                "duplicate key `id` (first at line 2)"
            ),
            (10, env, "duplicate key `PORT` (first at line 8)"),
            (
                11,
                "managed_processes[0].management.control.executable",
                "duplicate key `executable` (first at line 6)"
            ),
            (12, check, "duplicate key `interval` (first at line 12)"),
            (
                13,
                "managed_processes[0].management",
                "duplicate key `management` (first at line 4)"
            ),
            (17, targets, "duplicate key `type` (first at line 17)"),
        ],
        "{errors:#?}"
    );
    // The column is the second key's.
    assert_eq!(errors[3].column, 65, "{errors:#?}");
}

#[test]
fn the_first_of_two_keys_is_kept_and_a_third_is_reported_too() {
    let errors = load_err(
        "
        process_manager:
          port: 1
          port: 2
          port: 3
        ",
    );
    let lines: Vec<(usize, &str)> = errors
        .iter()
        .map(|e| (e.line, e.message.as_str()))
        .collect();
    assert_eq!(
        lines,
        [
            (3, "duplicate key `port` (first at line 2)"),
            (4, "duplicate key `port` (first at line 2)"),
        ]
    );
}

#[test]
fn the_same_key_in_different_mappings_is_no_duplicate() {
    let config = load_ok(
        "
        managed_processes:
          - id: a
            management: {control: {executable: a, environment: {X: 1}}}
          - id: b
            management: {control: {executable: b, environment: {X: 2}}}
        ",
    );
    assert_eq!(config.processes.len(), 2);
    let env = &config.processes[1].control.environment;
    assert_eq!(env, &[("X".to_string(), "2".to_string())]);
}

#[test]
fn a_key_that_is_not_a_string_is_reported_and_the_walk_goes_on() {
    let errors = load_err(
        "
        process_manager:
          [port]: 1
          log_level: loud
        ",
    );
    let got: Vec<(usize, &str)> = errors.iter().map(|e| (e.line, e.path.as_str())).collect();
    assert_eq!(
        got,
        [(2, "process_manager"), (3, "process_manager.log_level")],
        "{errors:#?}"
    );
    assert_eq!(errors[0].message, "a mapping key must be a plain string");
}

/// A mapping of many keys (here 40 variables) is checked by a hash set
/// rather than a scan: duplicates are found there as in a small one, the
/// first kept and each later one reported at its line.
#[test]
fn duplicates_are_found_in_a_mapping_of_many_keys() {
    let mut text = String::from(
        "managed_processes:\n  - id: web\n    management:\n      control:\n        \
         executable: web\n        environment:\n",
    );
    // The i-th variable is on line 7 + i.
    for i in 0..40 {
        let name = match i {
            3 => "V1".to_string(),
            30 => "V20".to_string(),
            39 => "V1".to_string(),
            i => format!("V{i}"),
        };
        text.push_str(&format!("          {name}: \"{i}\"\n"));
    }
    let errors =
        match crate::config::load_str(&text, std::path::Path::new(super::SOURCE), &|_| None) {
            Ok(_) => panic!("expected the duplicates to be reported"),
            Err(e) => e.errors,
        };
    let env = "managed_processes[0].management.control.environment";
    let got: Vec<(usize, usize, String, &str)> = errors
        .iter()
        .map(|e| (e.line, e.column, e.path.clone(), e.message.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (
                10,
                11,
                format!("{env}.V1"),
                "duplicate key `V1` (first at line 8)"
            ),
            (
                37,
                11,
                format!("{env}.V20"),
                "duplicate key `V20` (first at line 27)"
            ),
            (
                46,
                11,
                format!("{env}.V1"),
                "duplicate key `V1` (first at line 8)"
            ),
        ]
    );
}
