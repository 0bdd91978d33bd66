//! `resource_limits`: the values, the host's ceilings on
//! `max_file_descriptors` (errors, judged against this host the same way
//! the loader does, so the tests hold on any host), and the settings that
//! load but do nothing (warnings).

use std::time::Duration;

use super::{load_err, load_ok, load_with};
use crate::config::limits::FdCeiling;
use crate::config::{Diagnostic, Severity, ViolationAction};

/// One process `app` whose `resource_limits` are `limits` (a flow
/// mapping's inside) and whose `restart_policy` is `restart`.
fn app(limits: &str, restart: &str) -> String {
    format!(
        "
        managed_processes:
          - id: app
            management:
              control: {{executable: app}}
              resource_limits: {{{limits}}}
              restart_policy: {{{restart}}}
        "
    )
}

/// The warnings of a config that must load.
fn warnings(yaml: &str) -> Vec<Diagnostic> {
    let w = load_ok(yaml).warnings;
    assert!(w.iter().all(|w| w.severity == Severity::Warning), "{w:#?}");
    w
}

fn key(w: &Diagnostic) -> &str {
    w.path.rsplit('.').next().unwrap_or("")
}

#[test]
fn every_key_is_read_with_its_default() {
    let l = load_ok(&app(
        "max_memory_mb: 512, max_cpu_percent: 50%, max_file_descriptors: 256, \
         max_processes: 32, on_violation: stop, violation_grace: 30s, sample_interval: 250ms",
        "",
    ))
    .processes[0]
        .resource_limits
        .clone();
    assert_eq!(l.max_memory_mb, Some(512));
    assert_eq!(l.max_cpu_percent, Some(50.0));
    assert_eq!(l.max_file_descriptors, Some(256));
    assert_eq!(l.max_processes, Some(32));
    assert_eq!(l.on_violation, ViolationAction::Stop);
    assert_eq!(l.violation_grace, Duration::from_secs(30));
    assert_eq!(l.sample_interval, Duration::from_millis(250));
    assert_eq!(l.kernel().memory_bytes, Some(512 << 20));

    let l = load_ok(&app("max_memory_mb: 1", "")).processes[0]
        .resource_limits
        .clone();
    assert_eq!(
        (l.on_violation, l.violation_grace, l.sample_interval),
        (ViolationAction::Log, Duration::ZERO, Duration::from_secs(5))
    );
}

#[test]
fn zero_sample_interval_cpu_and_counts_are_errors_all_at_once() {
    let errors = load_err(&app(
        "max_memory_mb: 0, max_cpu_percent: 0, max_file_descriptors: 0, \
         max_processes: 0, sample_interval: 0s",
        "",
    ));
    let got: Vec<(&str, &str)> = errors
        .iter()
        .map(|e| (key(e), e.message.as_str()))
        .collect();
    assert_eq!(got.len(), 5, "{errors:#?}");
    assert!(got.contains(&("sample_interval", "must be greater than 0")));
    assert!(got.contains(&(
        "max_cpu_percent",
        "must be from 0.1 (the kernel's smallest quota, 1 ms per second) to 100000 (1000 CPUs), found 0"
    )));
    for k in ["max_memory_mb", "max_file_descriptors", "max_processes"] {
        assert!(got.iter().any(|&(g, _)| g == k), "{k}: {got:#?}");
    }
    assert!(errors.iter().all(|e| e.line == 5), "{errors:#?}");
}

#[test]
fn the_ceiling_is_fs_nr_open_then_the_hard_limit_when_it_cannot_be_raised() {
    let kernel = FdCeiling {
        nr_open: Some(1 << 20),
        hard: None,
    };
    assert_eq!(kernel.check(1 << 20), Ok(()));
    let over = kernel.check((1 << 20) + 1).expect_err("above fs.nr_open");
    assert!(
        over.starts_with(
            "1048577 is above the kernel's ceiling of 1048576 open files per process (fs.nr_open)"
        ),
        "{over}"
    );

    let unprivileged = FdCeiling {
        nr_open: Some(1 << 20),
        hard: Some(4096),
    };
    assert_eq!(unprivileged.check(4096), Ok(()));
    let over = unprivileged.check(4097).expect_err("above the hard limit");
    assert!(
        over.starts_with("4097 is above the manager's own hard limit of 4096 open files"),
        "{over}"
    );
    assert!(over.contains("CAP_SYS_RESOURCE"), "{over}");
    // Above both: the kernel's ceiling is the one no privilege lifts.
    let both = unprivileged.check(2 << 20).expect_err("above both");
    assert!(both.contains("fs.nr_open"), "{both}");

    // Nothing known: nothing refused.
    let unknown = FdCeiling {
        nr_open: None,
        hard: None,
    };
    assert_eq!(unknown.check(u64::MAX), Ok(()));
}

/// Loads `max_file_descriptors: n`; the error it gets, if any.
fn fd_error(n: u64) -> Option<Diagnostic> {
    match load_with(&app(&format!("max_file_descriptors: {n}"), ""), &[]) {
        Ok(_) => None,
        Err(e) => {
            assert_eq!(e.errors.len(), 1, "{e}");
            e.errors.into_iter().next()
        }
    }
}

#[test]
fn max_file_descriptors_is_refused_above_this_hosts_ceiling_at_its_place() {
    let host = FdCeiling::current();
    match host.nr_open {
        Some(nr_open) => {
            // fs.nr_open itself is allowed by the kernel's ceiling (maybe
            // not by the hard limit).
            let at_ceiling = fd_error(nr_open).map(|e| e.message);
            assert_eq!(at_ceiling, host.check(nr_open).err());
            assert!(!at_ceiling.is_some_and(|m| m.contains("fs.nr_open")));
            let e = fd_error(nr_open + 1).expect("above fs.nr_open");
            assert_eq!(
                (e.line, e.column, e.path.as_str()),
                (
                    5,
                    47,
                    "managed_processes[0].management.resource_limits.max_file_descriptors"
                )
            );
            assert_eq!(Err(e.message), host.check(nr_open + 1));
        }
        // Without /proc/sys/fs/nr_open the check is skipped.
        None => assert_eq!(fd_error(u64::MAX >> 1), None),
    }
}

#[test]
fn max_file_descriptors_above_the_hard_limit_is_an_error_unless_the_manager_may_raise_it() {
    let hard = rustix::process::getrlimit(rustix::process::Resource::Nofile).maximum;
    let host = FdCeiling::current();
    let Some(above) = hard.map(|h| h + 1) else {
        return; // An unlimited hard limit: nothing to be above.
    };
    if host.nr_open.is_some_and(|c| above > c) {
        return; // The hard limit is fs.nr_open, tested above.
    }
    let e = fd_error(above);
    if host.hard.is_some() {
        let e = e.expect("above the hard limit, without CAP_SYS_RESOURCE");
        assert!(e.message.contains("hard limit"), "{}", e.message);
    } else {
        assert_eq!(e, None, "a privileged manager raises its hard limit");
    }
}

#[test]
fn violation_settings_without_a_limit_they_govern_are_one_warning() {
    let w = warnings(&app(
        "max_file_descriptors: 64, violation_grace: 10s, on_violation: stop",
        "",
    ));
    assert_eq!(w.len(), 1, "{w:#?}");
    // At the first of them, naming each.
    assert_eq!(key(&w[0]), "violation_grace");
    assert_eq!(
        w[0].message,
        "violation_grace, on_violation have no effect without max_memory_mb, \
         max_cpu_percent or max_processes: they govern only those limits, when the \
         kernel cannot enforce them (max_file_descriptors always is)"
    );
    let w = warnings(&app("sample_interval: 1s", ""));
    assert_eq!(key(&w[0]), "sample_interval");
    assert!(w[0].message.starts_with("sample_interval has no effect"));
    for governed in [
        "max_memory_mb: 64",
        "max_cpu_percent: 10",
        "max_processes: 8",
    ] {
        let yaml = app(&format!("{governed}, on_violation: stop"), "");
        assert_eq!(warnings(&yaml), [], "{governed}");
    }
}

#[test]
fn on_violation_restart_with_strategy_never_is_a_warning() {
    let w = warnings(&app(
        "max_memory_mb: 64, on_violation: restart",
        "strategy: never",
    ));
    assert_eq!(w.len(), 1, "{w:#?}");
    assert_eq!((w[0].line, key(&w[0])), (5, "on_violation"));
    assert!(
        w[0].message
            .contains("ends the run, which is then not restarted"),
        "{}",
        w[0].message
    );
    for fine in [
        app("max_memory_mb: 64, on_violation: restart", ""),
        app("max_memory_mb: 64, on_violation: stop", "strategy: never"),
    ] {
        assert_eq!(warnings(&fine), []);
    }
}

#[test]
fn a_cpu_limit_above_every_cpu_of_the_host_is_a_warning_not_an_error() {
    let Ok(cpus) = std::thread::available_parallelism() else {
        return; // Unknown: nothing to compare with.
    };
    let all = cpus.get() * 100;
    assert_eq!(warnings(&app(&format!("max_cpu_percent: {all}"), "")), []);
    let w = warnings(&app(&format!("max_cpu_percent: {}", all + 1), ""));
    assert_eq!(w.len(), 1, "{w:#?}");
    assert_eq!(key(&w[0]), "max_cpu_percent");
    assert!(
        w[0].message.starts_with(&format!(
            "max_cpu_percent {} is more than all {cpus} CPU",
            all + 1
        )),
        "{}",
        w[0].message
    );
}

#[test]
fn limits_of_an_unmanaged_process_are_a_warning_at_the_section() {
    let w = warnings(
        "
        managed_processes:
          - id: ext
            type: unmanaged
            management:
              discovery: {pid: 1}
              resource_limits:
                max_memory_mb: 64
        ",
    );
    assert_eq!(w.len(), 1, "{w:#?}");
    assert_eq!((w[0].line, w[0].column), (6, 7));
    assert!(
        w[0].message
            .starts_with("resource_limits of `ext` are not enforced"),
        "{}",
        w[0].message
    );
}

#[test]
fn values_past_what_the_kernel_takes_are_errors() {
    let errors = load_err(&app(
        "max_memory_mb: 17592186044416, max_cpu_percent: 1e300, \
         max_processes: 18446744073709551615, sample_interval: 10ms",
        "",
    ));
    let got: Vec<&str> = errors.iter().map(key).collect();
    assert_eq!(
        got,
        [
            "max_memory_mb",
            "max_cpu_percent",
            "max_processes",
            "sample_interval"
        ],
        "{errors:#?}"
    );
    assert!(
        errors[3].message.starts_with("must be at least 100ms"),
        "{errors:#?}"
    );
    // The largest values the kernel takes load.
    load_ok(&app(
        "max_memory_mb: 8796093022208, max_cpu_percent: 100000, \
         max_processes: 4194304, sample_interval: 100ms",
        "",
    ));
}

#[test]
fn a_memory_limit_with_a_unit_says_the_unit_is_mib() {
    let errors = load_err(&app("max_memory_mb: 512MB", ""));
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(
        errors[0].message,
        "expected a whole number of MiB without a unit, found 512MB"
    );
}

/// A config for another host (`procman export`) is not held to this
/// host's accounts and ceilings; the same file for this host is.
#[test]
fn a_config_for_elsewhere_skips_what_only_this_host_can_tell() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("elsewhere.yaml");
    std::fs::write(
        &file,
        "managed_processes:\n  - id: db\n    management:\n      control: {executable: postgres, user: no-such-user-4711, group: no-such-group-4711}\n      resource_limits: {max_file_descriptors: 1073741824}\n",
    )
    .expect("write");
    let here = crate::config::load_file(&file).expect_err("not for this host");
    let text = here.to_string();
    assert!(text.contains("user"), "{text}");
    assert!(text.contains("max_file_descriptors"), "{text}");
    let config = crate::config::load_file_elsewhere(&file).expect("for another host");
    let db = &config.processes[0];
    assert_eq!(db.control.user.as_deref(), Some("no-such-user-4711"));
    assert_eq!(db.control.group.as_deref(), Some("no-such-group-4711"));
    assert_eq!(db.resource_limits.max_file_descriptors, Some(1 << 30));
    // What no kernel allows is refused for any host.
    let text = std::fs::read_to_string(&file).expect("read");
    std::fs::write(&file, text.replace("1073741824", "2147483648")).expect("write");
    let err = crate::config::load_file_elsewhere(&file).expect_err("no kernel allows it");
    assert!(err.to_string().contains("2147483584"), "{err}");
}
