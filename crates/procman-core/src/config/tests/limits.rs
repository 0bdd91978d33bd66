//! Values at the edges: durations too long to add to a clock or zero where
//! zero means nothing, text too long to echo, inputs large enough to show
//! a check that is not linear.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::{load_err, load_ok, load_with};

const MAX_DAYS: u64 = 36_500;

fn with_durations(value: &str) -> String {
    format!(
        "
        process_manager:
          force_shutdown_timeout: {value}
        managed_processes:
          - id: app
            management:
              control: {{executable: app, startup_timeout: {value}, shutdown_timeout: {value}}}
              health_check: {{tcp_endpoint: \"localhost:1\", interval: {value}, timeout: {value}, initial_delay: {value}}}
              resource_limits: {{max_memory_mb: 1, violation_grace: {value}, sample_interval: {value}}}
              restart_policy: {{restart_delay: {value}, max_delay: {value}, reset_after: {value}, window: {value}, backoff_multiplier: 1e300}}
        "
    )
}

#[test]
fn the_longest_duration_is_100_years_and_nothing_downstream_overflows() {
    let config = load_ok(&with_durations(&format!("{MAX_DAYS}d")));
    let max = Duration::from_secs(MAX_DAYS * 86_400);
    let p = &config.processes[0];
    assert_eq!(p.control.startup_timeout, max);
    // What the engine does with them: deadlines from now, backoff grown
    // by a huge multiplier over many attempts.
    let now = Instant::now();
    for d in [
        p.control.startup_timeout,
        p.control.shutdown_timeout,
        config.manager.force_shutdown_timeout,
        p.resource_limits.sample_interval,
        p.resource_limits.violation_grace,
    ] {
        assert!(now.checked_add(d).is_some());
        let _ = tokio::time::Instant::now() + d;
    }
    for attempt in [0, 1, 64, u32::MAX] {
        let delay = crate::policy::delay(&p.restart, attempt, 0.999);
        assert!(delay <= max, "{delay:?}");
        assert!(now.checked_add(delay).is_some());
    }

    for too_long in [
        format!("{}d", MAX_DAYS + 1),
        format!("{}h 1s", MAX_DAYS * 24),
        "99999999999999999999999999999999999999999999s".to_string(),
        "18446744073709551616".to_string(),
    ] {
        let errors = load_err(&format!(
            "process_manager: {{force_shutdown_timeout: {too_long}}}"
        ));
        assert_eq!(errors.len(), 1, "{too_long}: {errors:#?}");
        assert_eq!(
            errors[0].message,
            format!("duration `{too_long}` is too long (at most 100 years, 36500d)")
        );
    }
}

#[test]
fn zero_is_refused_where_it_means_nothing() {
    let errors = load_err(&with_durations("0s"));
    let mut got: Vec<&str> = errors
        .iter()
        .map(|e| e.path.rsplit('.').next().unwrap_or(""))
        .collect();
    got.sort_unstable();
    assert_eq!(
        got,
        [
            "interval",
            "reset_after",
            "sample_interval",
            "startup_timeout",
            "timeout",
            "window"
        ],
        "{errors:#?}"
    );
    assert!(errors.iter().all(|e| e.message == "must be greater than 0"));
}

#[test]
fn zero_is_accepted_where_it_means_at_once() {
    let config = load_ok(
        "
        process_manager: {force_shutdown_timeout: 0s}
        managed_processes:
          - id: app
            management:
              control: {executable: app, shutdown_timeout: 0s}
              health_check: {tcp_endpoint: \"localhost:1\", initial_delay: 0s}
              resource_limits: {violation_grace: 0s}
              restart_policy: {restart_delay: 0s, max_delay: 0s}
        ",
    );
    let p = &config.processes[0];
    assert!(p.control.shutdown_timeout.is_zero());
    assert!(p.restart.max_delay.is_zero());
}

/// Every message of `yaml`'s errors, as displayed.
fn shown(yaml: &str) -> Vec<String> {
    match load_with(yaml, &[]) {
        Ok(_) => panic!("expected errors"),
        Err(e) => e.to_string().lines().map(str::to_string).collect(),
    }
}

#[test]
fn long_ids_keys_and_values_are_cut_in_messages() {
    let long = "a".repeat(10_000);
    let yaml = format!(
        "
        process_manager:
          log_level: {long}
          ? {long}
          : 1
          force_shutdown_timeout: {long}
        managed_processes:
          - id: {long}
            depends_on: [{long}x]
            management:
              control:
                executable: \"${{{long}}}\"
                shutdown_signal: {long}
                environment: [\"{long}=1\", \"{long}=2\", \"A\\0B=3\"]
          - id: {long}
            management: {{control: {{executable: b}}}}
          - id: \"tab\\there\"
            management: {{control: {{executable: c}}}}
        "
    );
    let lines = shown(&yaml);
    let errors = load_err(&yaml);
    assert_eq!(lines.len(), errors.len(), "one line each:\n{lines:#?}");
    assert!(lines.len() >= 10, "{lines:#?}");
    for line in &lines {
        assert!(line.len() < 300, "{} characters: {line}", line.len());
    }
    let cut = format!("`{}...`", "a".repeat(64));
    for needle in [
        "log_level: unknown log level",
        "unknown key",
        "invalid duration",
        "must be 1 to 64 characters long",
        "duplicate id",
        "unknown process id",
        "is not set",
        "unknown signal",
        "is set twice",
    ] {
        let line = lines.iter().find(|l| l.contains(needle));
        let line = line.unwrap_or_else(|| panic!("no {needle:?} in {lines:#?}"));
        assert!(line.contains("a..."), "cut: {line}");
    }
    assert!(lines.iter().any(|l| l.contains(&cut)), "{lines:#?}");
    // A NUL escape is refused where it is written, and the message stays
    // on its line.
    assert!(
        lines
            .iter()
            .any(|l| l.contains("environment[2]: contains a NUL character")),
        "{lines:#?}"
    );
    assert!(
        lines.iter().any(|l| l.contains("contains `\\t`")),
        "{lines:#?}"
    );
}

/// Runs `f` on a thread and waits at most `within` for it.
fn within<T: Send + 'static>(within: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(within)
        .unwrap_or_else(|_| panic!("not done within {within:?}: a check is not linear"))
}

#[test]
fn long_lists_are_checked_in_linear_time() {
    // 200,000 `K=V` entries and a process depending on 20,000 others: a
    // check comparing each entry with every other one takes minutes on
    // these, a linear one a second or two in a debug build.
    let mut yaml = String::from("managed_processes:\n  - id: env\n    management:\n      control:\n        executable: x\n        environment:\n");
    for i in 0..200_000 {
        yaml.push_str(&format!("          - V{i}=1\n"));
    }
    yaml.push_str("  - id: hub\n    management: {control: {executable: x}}\n    depends_on:\n");
    for i in 0..20_000 {
        yaml.push_str(&format!("      - p{i}\n"));
    }
    for i in 0..20_000 {
        yaml.push_str(&format!(
            "  - {{id: p{i}, management: {{control: {{executable: x}}}}}}\n"
        ));
    }
    let config = within(Duration::from_secs(120), move || {
        crate::config::load_str(&yaml, std::path::Path::new(super::SOURCE), &|_| None)
    })
    .expect("valid");
    assert_eq!(config.processes[0].control.environment.len(), 200_000);
    assert_eq!(config.processes[1].depends_on.len(), 20_000);
}

#[test]
fn dependency_cycles_are_reported_briefly_and_in_linear_time() {
    // A chain p0 -> p1 -> ... -> p29999 where every process also depends
    // on p0: 30,000 cycles, of every length up to 30,000.
    let n = 30_000;
    let mut yaml = String::from("managed_processes:\n");
    for i in 0..n {
        let next = if i + 1 < n {
            format!(", p{}", i + 1)
        } else {
            String::new()
        };
        yaml.push_str(&format!(
            "  - {{id: p{i}, management: {{control: {{executable: x}}}}, depends_on: [p0{next}]}}\n"
        ));
    }
    let lines = within(
        Duration::from_secs(120),
        move || match crate::config::load_str(&yaml, std::path::Path::new(super::SOURCE), &|_| None)
        {
            Ok(_) => panic!("expected cycles"),
            Err(e) => e
                .to_string()
                .lines()
                .map(str::to_string)
                .collect::<Vec<_>>(),
        },
    );
    let cycles: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("dependency cycle"))
        .collect();
    // p0 -> p0 is a self-dependency, reported as such; then at most 100.
    assert_eq!(cycles.len(), 100, "{}", lines.len());
    assert!(lines.iter().all(|l| l.len() < 300), "{lines:#?}");
    assert!(
        cycles[0].ends_with("dependency cycle: p0 -> p1 -> p0"),
        "{}",
        cycles[0]
    );
    assert!(
        cycles[99].ends_with(
            "dependency cycle: p0 -> p1 -> p2 -> p3 -> p4 -> p5 -> p6 -> p7 -> ... (101 processes) -> p0"
        ),
        "{}",
        cycles[99]
    );
}
