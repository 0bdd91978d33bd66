//! The limits report of `procman validate`, against made-up hosts.

use std::path::Path;

use super::*;

fn config(processes: &str) -> Config {
    let text = format!("managed_processes:\n{processes}");
    match procman_core::config::load_str(&text, Path::new("/etc/procman.yaml"), &|_| None) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    }
}

const TWO: &str = "
  - id: web
    management:
      control: {executable: web}
      resource_limits: {max_memory_mb: 512, max_cpu_percent: 80, max_file_descriptors: 1024}
  - id: plain
    management:
      control: {executable: plain}
  - id: worker
    management:
      control: {executable: worker}
      resource_limits: {max_processes: 64, on_violation: stop, violation_grace: 10s}
";

fn v1_except_pids() -> Vec<(Controller, Result<Enforcer, String>)> {
    vec![
        (Controller::Memory, Ok(Enforcer::CgroupV1)),
        (Controller::Cpu, Ok(Enforcer::CgroupV2)),
        (
            Controller::Pids,
            Err("no cgroup hierarchy offers the pids controller to the manager".into()),
        ),
    ]
}

#[test]
fn each_limit_names_what_enforces_it_and_the_monitor_says_why() {
    let lines = limits_report(&config(TWO), &v1_except_pids());
    assert_eq!(
        lines,
        [
            "resource limits, as this host would enforce them:",
            "  web: max_memory_mb 512 (cgroup v1), max_cpu_percent 80 (cgroup v2), \
             max_file_descriptors 1024 (rlimit)",
            "  worker: max_processes 64 (monitor, on_violation: stop after 10s)",
            "  max_processes is watched by the manager (every sample_interval): \
             no cgroup hierarchy offers the pids controller to the manager",
        ]
    );
}

#[test]
fn without_cgroups_every_limit_but_the_rlimit_is_watched_and_explained_once() {
    let none: Vec<_> = Controller::ALL
        .iter()
        .map(|&c| (c, Err(format!("no {} here", c.name()))))
        .collect();
    let lines = limits_report(
        &config(
            "
  - id: a
    management:
      control: {executable: a}
      resource_limits: {max_cpu_percent: 250.5, max_memory_mb: 64, max_file_descriptors: 10}
  - id: b
    management:
      control: {executable: b}
      resource_limits: {max_memory_mb: 32}
",
        ),
        &none,
    );
    assert_eq!(
        lines,
        [
            "resource limits, as this host would enforce them:",
            "  a: max_memory_mb 64 (monitor, on_violation: log after 0s), \
             max_cpu_percent 250.5 (monitor, on_violation: log after 0s), \
             max_file_descriptors 10 (rlimit)",
            "  b: max_memory_mb 32 (monitor, on_violation: log after 0s)",
            "  max_memory_mb is watched by the manager (every sample_interval): no memory here",
            "  max_cpu_percent is watched by the manager (every sample_interval): no cpu here",
        ]
    );
}

#[test]
fn nothing_is_said_without_limits_and_unmanaged_limits_are_not_enforced() {
    let plain = "
  - id: plain
    management:
      control: {executable: plain}
      resource_limits: {on_violation: stop}
";
    assert_eq!(limits_report(&config(plain), &v1_except_pids()), [""; 0]);
    let ext = "
  - id: ext
    type: unmanaged
    management:
      discovery: {pid: 1}
      resource_limits: {max_processes: 5}
";
    assert_eq!(
        limits_report(&config(ext), &v1_except_pids()),
        [
            "resource limits, as this host would enforce them:",
            "  ext (unmanaged, never started: not enforced): max_processes 5",
        ]
    );
}
