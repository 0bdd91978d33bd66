//! How problems are reported: all at once, in order, one line each.

use std::path::Path;

use super::{dedent, load_err, SOURCE};
use crate::config::{load_file, load_str, ConfigErrors, Diagnostic, Severity};

#[test]
fn every_error_in_a_file_is_reported_at_once_in_order() {
    let errors = load_err(
        "
        process_manager:
          port: 99999
          log_levl: debug
        managed_processes:
          - id: web
            management:
              control:
                executable: web
                startup_timeout: soon
              restart_policy:
                strategy: sometimes
                jitter: 2
          - id: web
            depends_on: [cache]
            management:
              control: {executable: web}
        ",
    );
    let got: Vec<(usize, &str)> = errors.iter().map(|e| (e.line, e.path.as_str())).collect();
    assert_eq!(
        got,
        [
            (2, "process_manager.port"),
            (3, "process_manager.log_levl"),
            (9, "managed_processes[0].management.control.startup_timeout"),
            (
                11,
                "managed_processes[0].management.restart_policy.strategy"
            ),
            (12, "managed_processes[0].management.restart_policy.jitter"),
            (13, "managed_processes[1].id"),
            (14, "managed_processes[1].depends_on[0]"),
        ]
    );
}

#[test]
fn display_is_one_line_per_error_with_file_line_and_column() {
    let text = dedent(
        "
        process_manager:
          log_level: loud
          port: -1
        ",
    );
    let err = load_str(&text, Path::new(SOURCE), &|_| None).expect_err("invalid");
    assert_eq!(
        err.to_string(),
        "/etc/procman/procman.yaml:2:14: process_manager.log_level: unknown log level `loud`; \
         expected one of trace, debug, info, warn, error\n\
         /etc/procman/procman.yaml:3:9: process_manager.port: `-1` must not be negative"
    );
}

#[test]
fn an_unreadable_file_is_one_error_without_a_position() {
    let missing = Path::new("/nonexistent/procman.yaml");
    let err = load_file(missing).expect_err("missing file");
    assert_eq!(err.file, missing);
    let [Diagnostic {
        line: 0,
        column: 0,
        path,
        message,
        severity: Severity::Error,
    }] = err.errors.as_slice()
    else {
        panic!("{err:?}");
    };
    assert!(path.is_empty());
    assert!(
        message.starts_with("cannot read the config file"),
        "{message}"
    );
    assert!(err
        .to_string()
        .starts_with("/nonexistent/procman.yaml: cannot read"));
}

#[test]
fn errors_are_a_std_error() {
    fn is_error<E: std::error::Error>(_: &E) {}
    let err = ConfigErrors {
        file: "x.yaml".into(),
        errors: Vec::new(),
    };
    is_error(&err);
}

/// A config of 10,000 processes with one error in every 1,000th: each of
/// the ten is reported, at its line and key path, and nothing else.
#[test]
fn every_error_of_ten_thousand_processes_is_reported() {
    let mut text = String::from("managed_processes:\n");
    let mut expected = Vec::new();
    let mut line = 1;
    for i in 0..10_000 {
        let mut entry = vec![
            format!("  - id: p{i}"),
            "    management:".to_string(),
            "      control:".to_string(),
            "        executable: /bin/sleep".to_string(),
            format!("        arguments: [\"{i}\"]"),
            "        shutdown_timeout: 5s".to_string(),
        ];
        // Never on an entry with an error (whose id may be taken).
        if i > 0 && i % 10 == 0 {
            entry.push(format!("    depends_on: [p{}]", i - 2));
        }
        let at = format!("managed_processes[{i}]");
        if i % 1_000 == 999 {
            let (n, wrong, path) = match (i / 1_000) % 4 {
                0 => (
                    5,
                    "        shutdown_timeot: 5s",
                    "management.control.shutdown_timeot",
                ),
                1 => (
                    5,
                    "        shutdown_timeout: soon",
                    "management.control.shutdown_timeout",
                ),
                2 => (0, "  - id: p0", "id"),
                _ => (4, "        arguments: 7", "management.control.arguments"),
            };
            entry[n] = wrong.to_string();
            expected.push((line + n + 1, format!("{at}.{path}")));
        }
        for l in entry {
            text.push_str(&l);
            text.push('\n');
            line += 1;
        }
    }
    let errors = match load_str(&text, Path::new(SOURCE), &|_| None) {
        Ok(_) => panic!("expected ten errors"),
        Err(e) => e.errors,
    };
    let got: Vec<(usize, String)> = errors.iter().map(|e| (e.line, e.path.clone())).collect();
    assert_eq!(got, expected);
}
