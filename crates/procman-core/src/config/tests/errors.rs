//! Each kind of error, at its exact place.

use super::load_err;

/// One invalid config and the single problem it must report.
struct Case {
    name: &'static str,
    yaml: &'static str,
    line: usize,
    column: usize,
    path: &'static str,
    message: &'static str,
}

const CASES: &[Case] = &[
    Case {
        name: "unknown key with a hint",
        yaml: "
            managed_processes:
              - id: app
                management:
                  control: {executable: app}
                  restart_polcy:
                    strategy: always
            ",
        line: 5,
        column: 7,
        path: "managed_processes[0].management.restart_polcy",
        message: "unknown key `restart_polcy`; did you mean `restart_policy`?",
    },
    Case {
        name: "unknown key one level too high",
        yaml: "
            managed_processes:
              - id: app
                control: {executable: app}
            ",
        line: 3,
        column: 5,
        path: "managed_processes[0].control",
        message: "unknown key `control`; it belongs under `management`",
    },
    Case {
        name: "bad duration",
        yaml: "
            managed_processes:
              - id: app
                management:
                  control:
                    executable: app
                    shutdown_timeout: 10 seconds please
            ",
        line: 6,
        column: 27,
        path: "managed_processes[0].management.control.shutdown_timeout",
        message: "invalid duration `10 seconds please`; expected a number with a unit",
    },
    Case {
        name: "negative duration",
        yaml: "
            process_manager:
              force_shutdown_timeout: -5s
            ",
        line: 2,
        column: 27,
        path: "process_manager.force_shutdown_timeout",
        message: "duration `-5s` must not be negative",
    },
    Case {
        name: "bad strategy",
        yaml: "
            managed_processes:
              - id: app
                management:
                  control: {executable: app}
                  restart_policy: {strategy: sometimes}
            ",
        line: 5,
        column: 34,
        path: "managed_processes[0].management.restart_policy.strategy",
        message: "unknown strategy `sometimes`; expected one of never, on_failure, always",
    },
    Case {
        name: "duplicate id",
        yaml: "
            managed_processes:
              - id: app
                management: {control: {executable: a}}
              - id: app
                management: {control: {executable: b}}
            ",
        line: 4,
        column: 9,
        path: "managed_processes[1].id",
        message: "duplicate id `app` (first used at line 2)",
    },
    Case {
        name: "malformed id",
        yaml: "
            managed_processes:
              - id: \"my service\"
                management: {control: {executable: a}}
            ",
        line: 2,
        column: 9,
        path: "managed_processes[0].id",
        message: "id `my service` contains ` `",
    },
    Case {
        name: "bad process type asks for nothing the type would",
        yaml: "
            managed_processes:
              - id: ext
                type: unmanged
            ",
        line: 3,
        column: 11,
        path: "managed_processes[0].type",
        message: "unknown process type `unmanged`; expected one of standard_managed, \
                  integrated_managed, unmanaged; did you mean `unmanaged`?",
    },
    Case {
        name: "missing id",
        yaml: "
            managed_processes:
              - management: {control: {executable: a}}
            ",
        line: 2,
        column: 5,
        path: "managed_processes[0].id",
        message: "required key is missing",
    },
    Case {
        name: "missing executable",
        yaml: "
            managed_processes:
              - id: app
                management:
                  control:
                    arguments: [--verbose]
            ",
        line: 4,
        column: 7,
        path: "managed_processes[0].management.control.executable",
        message: "required key is missing",
    },
    Case {
        name: "empty executable",
        yaml: "
            managed_processes:
              - id: app
                management:
                  control:
                    executable:
            ",
        line: 5,
        column: 9,
        path: "managed_processes[0].management.control.executable",
        message: "must not be empty",
    },
    Case {
        name: "missing control",
        yaml: "
            managed_processes:
              - id: app
                management:
                  restart_policy: {strategy: never}
            ",
        line: 3,
        column: 5,
        path: "managed_processes[0].management.control",
        message: "required key is missing",
    },
    Case {
        name: "unset environment variable",
        yaml: "
            managed_processes:
              - id: app
                management:
                  control:
                    executable: ${APP_BIN}/app
            ",
        line: 5,
        column: 21,
        path: "managed_processes[0].management.control.executable",
        message: "environment variable APP_BIN is not set and has no default",
    },
    Case {
        name: "bad signal name",
        yaml: "
            managed_processes:
              - id: app
                management:
                  control:
                    executable: app
                    shutdown_signal: SIGWHATEVER
            ",
        line: 6,
        column: 26,
        path: "managed_processes[0].management.control.shutdown_signal",
        message: "unknown signal `SIGWHATEVER`",
    },
    Case {
        name: "dependency cycle",
        yaml: "
            managed_processes:
              - id: a
                depends_on: [b]
                management: {control: {executable: a}}
              - id: b
                depends_on: [c]
                management: {control: {executable: b}}
              - id: c
                depends_on: [a]
                management: {control: {executable: c}}
            ",
        line: 3,
        column: 18,
        path: "managed_processes[0].depends_on[0]",
        message: "dependency cycle: a -> b -> c -> a",
    },
    Case {
        name: "depends_on unknown id",
        yaml: "
            managed_processes:
              - id: database
                management: {control: {executable: db}}
              - id: app
                depends_on: [databse]
                management: {control: {executable: app}}
            ",
        line: 5,
        column: 18,
        path: "managed_processes[1].depends_on[0]",
        message: "unknown process id `databse`; did you mean `database`?",
    },
    Case {
        name: "depends_on itself",
        yaml: "
            managed_processes:
              - id: app
                depends_on:
                  - id: app
                management: {control: {executable: app}}
            ",
        line: 4,
        column: 13,
        path: "managed_processes[0].depends_on[0]",
        message: "a process cannot depend on itself",
    },
    Case {
        name: "health timeout above interval",
        yaml: "
            managed_processes:
              - id: app
                management:
                  control: {executable: app}
                  health_check:
                    http_endpoint: http://localhost:8080/health
                    interval: 2s
                    timeout: 5s
            ",
        line: 8,
        column: 18,
        path: "managed_processes[0].management.health_check.timeout",
        message: "timeout (5s) must not exceed interval (2s)",
    },
    Case {
        name: "health check without what its type needs",
        yaml: "
            managed_processes:
              - id: app
                management:
                  control: {executable: app}
                  health_check:
                    type: tcp
            ",
        line: 5,
        column: 7,
        path: "managed_processes[0].management.health_check.tcp_endpoint",
        message: "a check of type tcp needs `tcp_endpoint`",
    },
    Case {
        name: "health endpoint the type does not use",
        yaml: "
            managed_processes:
              - id: app
                management:
                  control: {executable: app}
                  health_check:
                    type: tcp
                    tcp_endpoint: localhost:80
                    http_endpoint: http://localhost/health
            ",
        line: 8,
        column: 24,
        path: "managed_processes[0].management.health_check.http_endpoint",
        message: "`http_endpoint` is not used by a check of type tcp",
    },
    Case {
        name: "bad jitter",
        yaml: "
            managed_processes:
              - id: app
                management:
                  control: {executable: app}
                  restart_policy:
                    jitter: 150%
            ",
        line: 6,
        column: 17,
        path: "managed_processes[0].management.restart_policy.jitter",
        message: "must be between 0 and 1 (0% and 100%), found 1.5",
    },
    Case {
        name: "max_delay below restart_delay",
        yaml: "
            managed_processes:
              - id: app
                management:
                  control: {executable: app}
                  restart_policy: {restart_delay: 10s, max_delay: 5s}
            ",
        line: 5,
        column: 55,
        path: "managed_processes[0].management.restart_policy.max_delay",
        message: "max_delay (5s) must not be shorter than restart_delay (10s)",
    },
    Case {
        name: "backoff multiplier below one",
        yaml: "
            managed_processes:
              - id: app
                management:
                  control: {executable: app}
                  restart_policy: {backoff_multiplier: 0.5}
            ",
        line: 5,
        column: 44,
        path: "managed_processes[0].management.restart_policy.backoff_multiplier",
        message: "must be at least 1.0, found 0.5",
    },
    Case {
        name: "port out of range",
        yaml: "
            process_manager:
              port: 65536
            ",
        line: 2,
        column: 9,
        path: "process_manager.port",
        message: "must be at most 65535, found 65536",
    },
    Case {
        name: "bad log level",
        yaml: "
            process_manager:
              log_level: verbose
            ",
        line: 2,
        column: 14,
        path: "process_manager.log_level",
        message: "unknown log level `verbose`; expected one of trace, debug, info, warn, error",
    },
    Case {
        name: "bad bool",
        yaml: "
            managed_processes:
              - id: app
                enabled: yes
                management: {control: {executable: app}}
            ",
        line: 3,
        column: 14,
        path: "managed_processes[0].enabled",
        message: "expected true or false, found `yes`",
    },
    Case {
        name: "wrong type",
        yaml: "
            managed_processes:
              - id: app
                management:
                  control:
                    executable: app
                    arguments: --verbose
            ",
        line: 6,
        column: 20,
        path: "managed_processes[0].management.control.arguments",
        message: "expected a list, found `--verbose`",
    },
    Case {
        name: "file target without a path",
        yaml: "
            log_collection:
              global_aggregation:
                targets:
                  - type: file
                    format: json
            ",
        line: 4,
        column: 9,
        path: "log_collection.global_aggregation.targets[0].path",
        message: "required key is missing",
    },
    Case {
        name: "unmanaged process found two ways",
        yaml: "
            managed_processes:
              - id: ext
                type: unmanaged
                management:
                  discovery:
                    pid: 42
                    process_name: nginx
            ",
        line: 7,
        column: 23,
        path: "managed_processes[0].management.discovery.process_name",
        message: "set only one of pid_file, pid or process_name",
    },
    Case {
        name: "argument_match without process_name",
        yaml: "
            managed_processes:
              - id: ext
                type: unmanaged
                management:
                  discovery:
                    pid_file: /run/ext.pid
                    argument_match: --daemon
            ",
        line: 7,
        column: 25,
        path: "managed_processes[0].management.discovery.argument_match",
        message: "`argument_match` is only used with `process_name`",
    },
    Case {
        name: "empty argument_match",
        yaml: "
            managed_processes:
              - id: ext
                type: unmanaged
                management:
                  discovery: {process_name: nginx, argument_match: ''}
            ",
        line: 5,
        column: 56,
        path: "managed_processes[0].management.discovery.argument_match",
        message: "must not be empty",
    },
    Case {
        name: "process name written as a path",
        yaml: "
            managed_processes:
              - id: ext
                type: unmanaged
                management:
                  discovery: {process_name: /usr/sbin/nginx}
            ",
        line: 5,
        column: 33,
        path: "managed_processes[0].management.discovery.process_name",
        message: "a process name has no `/` (it is matched against the name `ps` shows and the \
                  last part of argv[0]): write `nginx`, and `argument_match` to tell processes apart",
    },
    Case {
        name: "resource limit of zero",
        yaml: "
            managed_processes:
              - id: app
                management:
                  control: {executable: app}
                  resource_limits: {max_cpu_percent: 0}
            ",
        line: 5,
        column: 42,
        path: "managed_processes[0].management.resource_limits.max_cpu_percent",
        message: "must be from 0.1 (the kernel's smallest quota, 1 ms per second) to 100000 (1000 CPUs), found 0",
    },
    Case {
        name: "expected_status out of range",
        yaml: "
            managed_processes:
              - id: app
                management:
                  control: {executable: app}
                  health_check:
                    http_endpoint: http://localhost/
                    expected_status: [200, 700]
            ",
        line: 7,
        column: 32,
        path: "managed_processes[0].management.health_check.expected_status[1]",
        message: "must be at most 599, found 700",
    },
    Case {
        name: "shutdown_on_exit on an unmanaged process",
        yaml: "
            managed_processes:
              - id: db
                type: unmanaged
                shutdown_on_exit: true
                management:
                  discovery: {pid: 1}
            ",
        line: 4,
        column: 23,
        path: "managed_processes[0].shutdown_on_exit",
        message: "an unmanaged process is not run by procman",
    },
    Case {
        name: "empty export image",
        yaml: "
            managed_processes:
              - id: app
                export: {image: ''}
                management:
                  control: {executable: app}
            ",
        line: 3,
        column: 21,
        path: "managed_processes[0].export.image",
        message: "empty",
    },
    Case {
        name: "unknown export key",
        yaml: "
            managed_processes:
              - id: app
                export: {imag: x}
                management:
                  control: {executable: app}
            ",
        line: 3,
        column: 14,
        path: "managed_processes[0].export.imag",
        message: "unknown key",
    },
    Case {
        name: "YAML syntax error",
        yaml: "
            process_manager:
              port: [1, 2
            ",
        line: 3,
        column: 1,
        path: "",
        message: "invalid YAML",
    },
    Case {
        name: "duplicate key",
        yaml: "
            process_manager:
              port: 1
              port: 2
            ",
        line: 3,
        column: 3,
        path: "process_manager.port",
        message: "duplicate key `port` (first at line 2)",
    },
];

#[test]
fn each_invalid_case_reports_one_error_at_its_place() {
    let mut failures = Vec::new();
    for case in CASES {
        let errors = load_err(case.yaml);
        let matches = match errors.as_slice() {
            [e] => {
                (e.line, e.column, e.path.as_str()) == (case.line, case.column, case.path)
                    && e.message.contains(case.message)
            }
            _ => false,
        };
        if !matches {
            failures.push(format!("{}: got {errors:#?}", case.name));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
