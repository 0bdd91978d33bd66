use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use procman_api::{HealthCheck, ResourceLimit, ResourceUsage, Transition};

use super::*;

/// A process row with nothing set but its id and state.
pub(crate) fn process(id: &str, state: &str) -> Process {
    Process {
        id: id.into(),
        kind: "standard_managed".into(),
        state: state.into(),
        enabled: true,
        pid: None,
        started_at: None,
        uptime_seconds: None,
        runs: 0,
        restarts: 0,
        health: None,
        last_exit: None,
        last_error: None,
        waiting_reason: None,
        usage: None,
    }
}

#[test]
fn the_table_has_a_row_per_process_with_humanised_values() {
    let mut web = process("web", "running");
    web.pid = Some(4242);
    web.uptime_seconds = Some(7440.5);
    web.restarts = 3;
    web.health = Some("healthy".into());
    let mut worker = process("worker-with-a-long-id", "failed");
    worker.kind = "integrated_managed".into();
    worker.last_exit = Some(Exit {
        code: None,
        signal: Some("SIGSEGV".into()),
        core_dumped: true,
        description: "killed by SIGSEGV (core dumped)".into(),
    });
    let got = table(&[web, worker]).render(false);
    let lines: Vec<&str> = got.lines().collect();
    assert_eq!(
        lines,
        [
            "ID                     TYPE        STATE     PID  UPTIME  RESTARTS  HEALTH   LAST EXIT",
            "web                    standard    running  4242    2h4m         3  healthy  -",
            "worker-with-a-long-id  integrated  failed      -       -         0  -        SIGSEGV (core)",
        ],
        "{got}"
    );
}

#[test]
fn the_table_is_coloured_only_when_asked() {
    let t = table(&[process("a", "running"), process("b", "stopped")]);
    assert!(!t.render(false).contains('\x1b'));
    let coloured = t.render(true);
    assert!(coloured.contains("\x1b[32mrunning\x1b[0m"), "{coloured:?}");
    assert!(coloured.contains("\x1b[2mstopped\x1b[0m"), "{coloured:?}");
}

#[test]
fn last_exits_are_short() {
    let exit = |code, signal: Option<&str>, core| Exit {
        code,
        signal: signal.map(Into::into),
        core_dumped: core,
        description: "d".into(),
    };
    assert_eq!(exit_short(&exit(Some(1), None, false)), "code 1");
    assert_eq!(exit_short(&exit(None, Some("SIGKILL"), false)), "SIGKILL");
    assert_eq!(
        exit_short(&exit(None, Some("SIGABRT"), true)),
        "SIGABRT (core)"
    );
    assert_eq!(exit_short(&exit(None, None, false)), "unknown");
}

#[test]
fn times_are_absolute_in_utc_and_relative() {
    let at = humantime::parse_rfc3339("2026-12-02T09:15:00.250Z").expect("time");
    let now = at + Duration::from_secs(192);
    assert_eq!(
        when("2026-12-02T09:15:00.250Z", now),
        "2026-12-02 09:15:00 UTC (3m12s ago)"
    );
    assert_eq!(when("not a time", now), "not a time");
}

#[test]
fn the_detail_says_since_when_why_pids_health_and_log() {
    let mut p = process("web", "running");
    p.pid = Some(100);
    p.runs = 3;
    p.restarts = 2;
    p.last_exit = Some(Exit {
        code: Some(1),
        signal: None,
        core_dumped: false,
        description: "exited with code 1".into(),
    });
    let d = ProcessDetail {
        process: p,
        last_transition: Some(Transition {
            from: "starting".into(),
            to: "running".into(),
            cause: "the process is ready".into(),
            cause_kind: "ready".into(),
            at: "2026-12-02T09:15:00.000Z".into(),
        }),
        pids: vec![100, 101, 102],
        breaker: "closed".into(),
        health_check: Some(HealthCheck {
            kind: "http".into(),
            state: "healthy".into(),
            last_check: Some("2026-12-02T09:17:50.000Z".into()),
            last_latency_seconds: Some(0.0031),
            last_result: "HTTP 200".into(),
            consecutive_failures: 0,
            last_error: None,
        }),
        log_file: Some("/var/log/web.log".into()),
        log_bytes: 12_400,
        log_dropped: 0,
        restarts_by_cause: BTreeMap::from([("exit".to_string(), 2)]),
        limits: Vec::new(),
        on_violation: None,
        violation_grace_seconds: None,
        sample_interval_seconds: None,
        usage: None,
        oom_kills: 0,
        violations: 0,
    };
    let now = humantime::parse_rfc3339("2026-12-02T09:18:00Z").expect("time") as SystemTime;
    let text = describe(&d, now, false);
    for want in [
        "● web (standard_managed)\n",
        "State: running since 2026-12-02 09:15:00 UTC (3m0s ago)\n",
        "Why: the process is ready (starting → running)\n",
        "PID: 100\n",
        "Tree: 101 102\n",
        "Last exit: exited with code 1\n",
        "Restarts: 2 (2 after exit); 3 runs\n",
        "Breaker: closed\n",
        "Health: healthy (http): HTTP 200 in 3ms, 2026-12-02 09:17:50 UTC (10s ago)\n",
        "Log file: /var/log/web.log\n",
        "Log: 12.1 KiB read, 0 records dropped\n",
        "Limits: none\n",
    ] {
        assert!(text.contains(want), "{want:?} missing in:\n{text}");
    }
    assert!(!text.contains('\x1b'));
    // Labels are right-aligned on their colon.
    let colons: Vec<usize> = text.lines().skip(1).filter_map(|l| l.find(": ")).collect();
    assert!(colons.windows(2).all(|w| w[0] == w[1]), "{text}");
}

#[test]
fn an_unmanaged_process_is_found_not_restarted_and_has_no_log() {
    let mut p = process("db", "running");
    p.kind = "unmanaged".into();
    p.pid = Some(700);
    p.runs = 2;
    let mut d = detail(p);
    d.last_transition = Some(Transition {
        from: "exited".into(),
        to: "running".into(),
        cause: "found by pid_file /run/db.pid (pid 700)".into(),
        cause_kind: "discovered".into(),
        at: "2026-12-02T09:15:00.000Z".into(),
    });
    let text = describe(&d, SystemTime::now(), false);
    for want in [
        "● db (unmanaged)\n",
        "Why: found by pid_file /run/db.pid (pid 700) (exited → running)\n",
        "Found: 2 times\n",
    ] {
        assert!(text.contains(want), "{want:?} missing in:\n{text}");
    }
    for unwanted in ["Restarts:", "Breaker:", "Log file:", "Log:"] {
        assert!(!text.contains(unwanted), "{unwanted:?} in:\n{text}");
    }
}

#[test]
fn the_log_tail_is_the_records_as_plain_lines() {
    let recs: Vec<LogRecord> = [
        r#"{"ts":"2026-12-02T09:15:00.000000Z","id":"w","pid":1,"run":1,"event":"start"}"#,
        r#"{"ts":"2026-12-02T09:15:00.100000Z","id":"w","pid":1,"run":1,"stream":"stdout","line":"hi"}"#,
    ]
    .iter()
    .map(|j| serde_json::from_str(j).expect("record"))
    .collect();
    assert_eq!(
        String::from_utf8(tail(&recs)).expect("utf-8"),
        "\n2026-12-02T09:15:00.000000Z ----- run 1 pid 1 -----\n2026-12-02T09:15:00.100000Z stdout hi\n"
    );
    assert_eq!(tail(&[]), b"\n(no log lines yet)\n");
}

/// A detail of `p` with nothing else set.
pub(crate) fn detail(p: Process) -> ProcessDetail {
    ProcessDetail {
        process: p,
        last_transition: None,
        pids: vec![],
        breaker: "closed".into(),
        health_check: None,
        log_file: None,
        log_bytes: 0,
        log_dropped: 0,
        restarts_by_cause: BTreeMap::new(),
        limits: Vec::new(),
        on_violation: None,
        violation_grace_seconds: None,
        sample_interval_seconds: None,
        usage: None,
        oom_kills: 0,
        violations: 0,
    }
}

fn limit(key: &str, value: f64, by: Option<&str>) -> ResourceLimit {
    ResourceLimit {
        limit: key.into(),
        value,
        enforced_by: by.map(Into::into),
    }
}

#[test]
fn the_detail_shows_each_limit_with_its_unit_and_enforcer_and_the_usage() {
    let mut d = detail(process("web", "running"));
    d.limits = vec![
        limit("max_memory_mb", 64.0, Some("cgroup v1")),
        limit("max_cpu_percent", 12.5, Some("monitor")),
        limit("max_file_descriptors", 100.0, Some("rlimit")),
        limit("max_processes", 32.0, Some("cgroup v2")),
    ];
    d.on_violation = Some("restart".into());
    d.violation_grace_seconds = Some(0.5);
    d.sample_interval_seconds = Some(5.0);
    d.oom_kills = 1;
    d.violations = 2;
    d.usage = Some(ResourceUsage {
        memory_bytes: Some(16 << 20),
        cpu_seconds: Some(1.234),
        cpu_percent: Some(3.4),
        processes: 2,
        open_files: Some(7),
        source: "cgroup".into(),
    });
    let text = describe(&d, SystemTime::now(), false);
    let block: Vec<&str> = text.lines().skip_while(|l| *l != "  Limits:").collect();
    assert_eq!(
        block,
        [
            "  Limits:",
            "    max_memory_mb         64 MiB             by cgroup v1",
            "    max_cpu_percent       12.5% of one core  by monitor",
            "    max_file_descriptors  100 open files     by rlimit",
            "    max_processes         32 processes       by cgroup v2",
            "    on_violation          restart after 500ms, monitor samples every 5s",
            "    OOM kills             1",
            "    violations            2",
            "  Usage (from cgroup):",
            "    memory      16.0 MiB of 64 MiB (25%)",
            "    CPU         3.4% of one core (max 12.5%), 1.23s this run",
            "    processes   2 of 32",
            "    open files  7 (max 100 per process)",
        ],
        "{text}"
    );
    assert!(!text.contains("Limits: none"), "{text}");
}

#[test]
fn before_a_run_the_enforcer_is_not_known_and_there_is_no_usage() {
    let mut d = detail(process("web", "registered"));
    d.limits = vec![
        limit("max_memory_mb", 64.0, None),
        limit("max_file_descriptors", 100.0, Some("rlimit")),
    ];
    d.on_violation = Some("log".into());
    d.violation_grace_seconds = Some(0.0);
    d.sample_interval_seconds = Some(5.0);
    let text = describe(&d, SystemTime::now(), false);
    assert!(
        text.contains("    max_memory_mb         64 MiB          (enforcer known once it runs)\n"),
        "{text}"
    );
    assert!(
        text.contains("    on_violation          log, monitor samples every 5s\n"),
        "{text}"
    );
    assert!(!text.contains("Usage"), "{text}");
}

#[test]
fn a_reading_without_some_figures_shows_dashes() {
    let mut d = detail(process("web", "running"));
    d.usage = Some(ResourceUsage {
        memory_bytes: None,
        cpu_seconds: None,
        cpu_percent: None,
        processes: 1,
        open_files: None,
        source: "proc".into(),
    });
    let text = describe(&d, SystemTime::now(), false);
    assert!(text.contains("Limits: none\n"), "{text}");
    for want in [
        "  Usage (from proc):\n",
        "    memory      -\n",
        "    CPU         -\n",
        "    processes   1\n",
        "    open files  -\n",
    ] {
        assert!(text.contains(want), "{want:?} in:\n{text}");
    }
}

#[test]
fn on_violation_is_unused_when_the_kernel_enforces_every_limit() {
    let mut d = detail(process("web", "running"));
    d.limits = vec![
        limit("max_memory_mb", 64.0, Some("cgroup v2")),
        limit("max_file_descriptors", 100.0, Some("rlimit")),
    ];
    d.on_violation = Some("stop".into());
    d.violation_grace_seconds = Some(90.0);
    d.sample_interval_seconds = Some(5.0);
    let text = describe(&d, SystemTime::now(), false);
    assert!(
        text.contains(
            "    on_violation          stop after 1m30s (unused: the kernel enforces every limit)\n"
        ),
        "{text}"
    );
}
