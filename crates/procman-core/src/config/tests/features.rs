//! Each feature of the format, on a valid config.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{load_ok, load_ok_with};
use crate::config::schema::*;
use crate::outcome::Signal;

#[test]
fn empty_file_and_empty_process_list_are_valid() {
    let config = load_ok("");
    assert!(config.processes.is_empty());
    assert_eq!(config.manager.port, 50055);
    assert_eq!(config.log_collection, LogCollection::default());
    assert!(load_ok("managed_processes: []").processes.is_empty());
}

#[test]
fn defaults_fill_every_unwritten_key() {
    let config = load_ok(
        "
        managed_processes:
          - id: app
            management:
              control:
                executable: app
        ",
    );
    let p = &config.processes[0];
    assert_eq!(p.kind, ProcessKind::StandardManaged);
    assert_eq!(p.profile, Profile::LongRunning);
    assert!(p.enabled);
    assert_eq!(p.restart, RestartPolicy::default());
    assert_eq!(p.control.startup_timeout, Duration::from_secs(60));
    assert_eq!(p.control.shutdown_timeout, Duration::from_secs(10));
    assert_eq!(p.control.shutdown_signal, Signal::TERM);
    assert_eq!(p.control.working_directory, None);
    assert_eq!(p.health_check, None);
    assert_eq!(p.resource_limits, ResourceLimits::default());
    assert_eq!(p.logging.buffer_size, 8192);
    assert_eq!(p.logging.file, LogFile::Default);
    assert_eq!(p.logging.format, ProcessLogFormat::Plain);
    assert_eq!(config.manager.log_level, LogLevel::Info);
    assert_eq!(
        config.manager.force_shutdown_timeout,
        Duration::from_secs(30)
    );
}

#[test]
fn env_expansion_set_default_and_dollar() {
    let config = load_ok_with(
        "
        process_manager:
          port: ${PORT:-9000}
          api_token: ${TOKEN}
        managed_processes:
          - id: ${APP_ID:-app}
            management:
              control:
                executable: ${BIN_DIR}/server
                arguments: [\"--price=$$5\", \"${EMPTY:-fallback}\", \"$HOME\", \"${UNSET:-${BIN_DIR}}\"]
              restart_policy:
                max_attempts: ${N:-3}
        ",
        &[("TOKEN", "s3cret"), ("BIN_DIR", "/usr/local/bin"), ("EMPTY", "")],
    );
    assert_eq!(config.manager.port, 9000);
    assert_eq!(config.manager.api_token.as_deref(), Some("s3cret"));
    let p = &config.processes[0];
    assert_eq!(p.id, "app");
    assert_eq!(p.control.executable, "/usr/local/bin/server");
    assert_eq!(
        p.control.arguments,
        ["--price=$5", "fallback", "$HOME", "/usr/local/bin"]
    );
    assert_eq!(p.restart.max_attempts, 3);
}

#[test]
fn environment_as_map_and_as_list() {
    let config = load_ok(
        "
        managed_processes:
          - id: map
            management:
              control:
                executable: app
                environment:
                  NAME: web
                  WORKERS: 4
                  DEBUG: false
                  EMPTY: \"\"
          - id: list
            management:
              control:
                executable: app
                environment:
                  - NAME=web
                  - URL=postgres://h/db?a=b
                  - EMPTY=
        ",
    );
    let pairs = |p: &ProcessConfig| -> Vec<(String, String)> { p.control.environment.clone() };
    let owned = |v: &[(&str, &str)]| -> Vec<(String, String)> {
        v.iter().map(|&(k, v)| (k.into(), v.into())).collect()
    };
    assert_eq!(
        pairs(&config.processes[0]),
        owned(&[
            ("NAME", "web"),
            ("WORKERS", "4"),
            ("DEBUG", "false"),
            ("EMPTY", "")
        ])
    );
    assert_eq!(
        pairs(&config.processes[1]),
        owned(&[
            ("NAME", "web"),
            ("URL", "postgres://h/db?a=b"),
            ("EMPTY", "")
        ])
    );
}

#[test]
fn relative_paths_resolve_against_the_config_directory() {
    let config = load_ok(
        "
        process_manager:
          state_dir: state
          log_dir: ./logs
          api_token_file: ../secrets/token
        managed_processes:
          - id: app
            management:
              control:
                executable: ./bin/app
                working_directory: ./work
                env_file: app.env
              logging:
                file: /var/log/app.log
          - id: quiet
            management:
              control: {executable: app}
              logging: {file: false}
          - id: other
            management:
              control: {executable: app}
              logging: {file: \"logs/other.log\"}
          - id: ext
            type: unmanaged
            management:
              discovery: {pid_file: run/ext.pid}
        log_collection:
          global_aggregation:
            targets:
              - {type: file, path: all.log}
        ",
    );
    let m = &config.manager;
    assert_eq!(
        m.state_dir.as_deref(),
        Some(Path::new("/etc/procman/state"))
    );
    assert_eq!(m.log_dir.as_deref(), Some(Path::new("/etc/procman/logs")));
    assert_eq!(
        m.api_token_file.as_deref(),
        Some(Path::new("/etc/procman/../secrets/token"))
    );
    let app = &config.processes[0];
    // The executable is kept as written: it resolves against the working
    // directory at spawn time, not against the config file.
    assert_eq!(app.control.executable, "./bin/app");
    assert_eq!(
        app.control.working_directory.as_deref(),
        Some(Path::new("/etc/procman/work"))
    );
    assert_eq!(
        app.control.env_file.as_deref(),
        Some(Path::new("/etc/procman/app.env"))
    );
    assert_eq!(
        app.logging.file,
        LogFile::Path(PathBuf::from("/var/log/app.log"))
    );
    assert_eq!(config.processes[1].logging.file, LogFile::Off);
    assert_eq!(
        config.processes[2].logging.file,
        LogFile::Path(PathBuf::from("/etc/procman/logs/other.log"))
    );
    assert_eq!(
        config.processes[3].discovery,
        Some(Discovery::PidFile(PathBuf::from(
            "/etc/procman/run/ext.pid"
        )))
    );
    assert_eq!(
        config.log_collection.targets[0],
        LogTarget::File {
            path: PathBuf::from("/etc/procman/all.log"),
            format: TargetFormat::Plain,
            rotation: None
        }
    );
}

#[test]
fn durations_in_every_written_form() {
    let config = load_ok(
        "
        managed_processes:
          - id: app
            management:
              control:
                executable: app
                startup_timeout: 90
                shutdown_timeout: 1.5s
              restart_policy:
                restart_delay: 300ms
                max_delay: 1h30m
                reset_after: \"2m\"
                window: 0.5
                jitter: 25%
        ",
    );
    let p = &config.processes[0];
    assert_eq!(p.control.startup_timeout, Duration::from_secs(90));
    assert_eq!(p.control.shutdown_timeout, Duration::from_millis(1500));
    assert_eq!(p.restart.restart_delay, Duration::from_millis(300));
    assert_eq!(p.restart.max_delay, Duration::from_secs(5400));
    assert_eq!(p.restart.reset_after, Duration::from_secs(120));
    assert_eq!(p.restart.window, Duration::from_millis(500));
    assert_eq!(p.restart.jitter, 0.25);
}

#[test]
fn extensions_are_read() {
    let config = load_ok(
        "
        process_manager:
          port: 0
          bind: 0.0.0.0
          log_format: json
          log_level: debug
        managed_processes:
          - id: svc
            type: integrated_managed
            profile_type: worker
            enabled: false
            management:
              control:
                executable: svc
                shutdown_signal: INT
                user: nobody
                group: nogroup
                success_exit_codes: [0, 3]
                port: 7001
              health_check:
                initial_delay: 2s
                success_threshold: 2
              resource_limits:
                max_processes: 64
                on_violation: restart
                violation_grace: 30s
                max_cpu_percent: 250%
              restart_policy:
                strategy: always
                max_attempts: 0
                restart_delay: 2m
              logging:
                format: raw
                rotation: {max_size_mb: 10}
          - id: job
            profile_type: batch
            management:
              control: {executable: job}
              health_check:
                type: exec
                command: test -f /tmp/ready
        ",
    );
    let m = &config.manager;
    assert_eq!((m.port, m.bind.as_str()), (0, "0.0.0.0"));
    assert_eq!(
        (m.log_format, m.log_level),
        (LogFormat::Json, LogLevel::Debug)
    );
    let svc = &config.processes[0];
    assert_eq!(
        (svc.kind, svc.profile, svc.enabled),
        (ProcessKind::IntegratedManaged, Profile::LongRunning, false)
    );
    assert_eq!(svc.control.shutdown_signal, Signal::INT);
    assert_eq!(svc.control.user.as_deref(), Some("nobody"));
    assert_eq!(svc.control.group.as_deref(), Some("nogroup"));
    assert_eq!(svc.control.success_exit_codes, [0, 3]);
    assert_eq!(svc.control.port, Some(7001));
    let h = svc.health_check.as_ref().expect("health check");
    // An integrated_managed process with no endpoint is probed by gRPC.
    assert_eq!(
        (h.kind, h.grpc_endpoint.as_deref()),
        (HealthCheckKind::Grpc, None)
    );
    assert_eq!(
        (h.initial_delay, h.success_threshold),
        (Duration::from_secs(2), 2)
    );
    let l = &svc.resource_limits;
    assert_eq!(
        (l.max_processes, l.on_violation),
        (Some(64), ViolationAction::Restart)
    );
    assert_eq!(
        (l.violation_grace, l.max_cpu_percent),
        (Duration::from_secs(30), Some(250.0))
    );
    let r = &svc.restart;
    assert_eq!((r.strategy, r.max_attempts), (RestartStrategy::Always, 0));
    // A restart_delay above the default cap raises the cap.
    assert_eq!(
        (r.restart_delay, r.max_delay),
        (Duration::from_secs(120), Duration::from_secs(120))
    );
    assert_eq!(svc.logging.format, ProcessLogFormat::Raw);
    assert_eq!(
        svc.logging.rotation,
        Some(Rotation {
            max_size_mb: 10,
            max_files: 5
        })
    );
    let job = &config.processes[1];
    assert_eq!(job.profile, Profile::Batch);
    let h = job.health_check.as_ref().expect("health check");
    assert_eq!(h.kind, HealthCheckKind::Exec);
    assert_eq!(h.command, ["/bin/sh", "-c", "test -f /tmp/ready"]);
}

#[test]
fn health_check_kind_is_inferred_and_disabled_is_none() {
    let config = load_ok(
        "
        managed_processes:
          - id: tcp
            management:
              control: {executable: a}
              health_check: {tcp_endpoint: \"localhost:5432\", interval: 500ms}
          - id: grpc
            management:
              control: {executable: a}
              health_check: {grpc_endpoint: \"[::1]:50051\", grpc_service: api}
          - id: http
            management:
              control: {executable: a}
              health_check: {http_endpoint: \"https://x/health\", expected_status: [200, 204]}
          - id: off
            management:
              control: {executable: a}
              health_check: {enabled: false}
        ",
    );
    let kind = |i: usize| config.processes[i].health_check.as_ref().map(|h| h.kind);
    assert_eq!(kind(0), Some(HealthCheckKind::Tcp));
    assert_eq!(kind(1), Some(HealthCheckKind::Grpc));
    assert_eq!(kind(2), Some(HealthCheckKind::Http));
    assert_eq!(kind(3), None);
    // Without a timeout, a short interval shortens the default timeout.
    let tcp = config.processes[0].health_check.as_ref().expect("tcp");
    assert_eq!(tcp.timeout, Duration::from_millis(500));
    let http = config.processes[2].health_check.as_ref().expect("http");
    assert_eq!(http.expected_status, [200, 204]);
}

#[test]
fn unmanaged_processes_are_found_by_discovery() {
    let config = load_ok(
        "
        managed_processes:
          - id: by-pid
            type: unmanaged
            management:
              discovery: {pid: 4242}
          - id: by-name
            type: unmanaged
            management:
              discovery: {method: process_name, process_name: nginx}
          - id: by-name-and-arguments
            type: unmanaged
            management:
              discovery:
                process_name: python3
                argument_match: \"worker.py --queue mail\"
        ",
    );
    assert_eq!(config.processes[0].discovery, Some(Discovery::Pid(4242)));
    assert_eq!(
        config.processes[1].discovery,
        Some(Discovery::ProcessName {
            name: "nginx".into(),
            argument_match: None
        })
    );
    assert_eq!(
        config.processes[2].discovery,
        Some(Discovery::ProcessName {
            name: "python3".into(),
            argument_match: Some("worker.py --queue mail".into())
        })
    );
    assert_eq!(config.processes[0].control.executable, "");
}

#[test]
fn depends_on_in_every_form() {
    let config = load_ok(
        "
        managed_processes:
          - id: db
            management:
              control: {executable: db}
              health_check: {tcp_endpoint: \"localhost:5432\"}
          - id: migrate
            profile_type: batch
            depends_on: [db]
            management:
              control: {executable: migrate}
          - id: api
            depends_on:
              - id: db
                condition: healthy
              - migrate: {condition: completed_successfully}
            management:
              control: {executable: api}
          - id: web
            depends_on:
              api: {condition: service_started}
              db:
            management:
              control: {executable: web}
        ",
    );
    let deps = |i: usize| -> Vec<(&str, DependencyCondition)> {
        config.processes[i]
            .depends_on
            .iter()
            .map(|d| (d.id.as_str(), d.condition))
            .collect()
    };
    use DependencyCondition::*;
    assert_eq!(deps(1), [("db", Started)]);
    assert_eq!(
        deps(2),
        [("db", Healthy), ("migrate", CompletedSuccessfully)]
    );
    assert_eq!(deps(3), [("api", Started), ("db", Started)]);
}

#[test]
fn log_collection_targets() {
    let config = load_ok(
        "
        log_collection:
          enabled: false
          global_aggregation:
            targets:
              - type: process_manager_stderr
                format: json
              - type: file
                path: /var/log/all.log
                rotation: {max_size_mb: 50, max_files: 3}
        ",
    );
    let lc = &config.log_collection;
    assert!(!lc.enabled && lc.aggregation_enabled);
    assert_eq!(
        lc.targets[0],
        LogTarget::ManagerStderr {
            format: TargetFormat::Json
        }
    );
    assert_eq!(
        lc.targets[1],
        LogTarget::File {
            path: PathBuf::from("/var/log/all.log"),
            format: TargetFormat::Plain,
            rotation: Some(Rotation {
                max_size_mb: 50,
                max_files: 3
            }),
        }
    );
}
