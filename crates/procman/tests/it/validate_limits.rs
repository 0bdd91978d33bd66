//! `procman validate` on a config with resource limits: after the
//! summary, what would enforce each limit on this host. The expected
//! enforcer comes from the same probe the binary uses, so the test holds
//! on any host: cgroup v2, a hybrid host's v1, or none (the monitor).

use std::path::Path;

use procman_core::outcome::ProcessEnd;
use procman_core::platform::{Controller, Controllers, Enforcer, Host};

use crate::support::*;

/// The line `procman validate` puts before the limits of the processes.
pub const LIMITS_HEADING: &str = "resource limits, as this host would enforce them:";

/// The lines after the summary for the config of the test below, as the
/// host answers `probe`.
fn expected(probe: &[(Controller, Result<Enforcer, String>)]) -> Vec<String> {
    let mut watched = Vec::new();
    let mut by = |c: Controller, on_violation: &str| match probe
        .iter()
        .find(|(p, _)| *p == c)
        .map(|(_, v)| v)
    {
        Some(Ok(e)) if *e != Enforcer::Monitor => e.as_str().to_string(),
        other => {
            let why = match other {
                Some(Err(why)) => why.clone(),
                _ => "the kernel cannot enforce it".to_string(),
            };
            if !watched.iter().any(|(w, _)| *w == c) {
                watched.push((c, why));
            }
            format!("monitor, on_violation: {on_violation}")
        }
    };
    let web = format!(
        "  web: max_memory_mb 64 ({}), max_cpu_percent 50 ({}), max_file_descriptors 64 (rlimit)",
        by(Controller::Memory, "log after 0s"),
        by(Controller::Cpu, "log after 0s"),
    );
    let worker = format!(
        "  worker: max_processes 16 ({})",
        by(Controller::Pids, "restart after 5s")
    );
    let mut lines = vec![LIMITS_HEADING.to_string(), web, worker];
    for (c, why) in watched {
        lines.push(format!(
            "  {} is watched by the manager (every sample_interval): {why}",
            c.key()
        ));
    }
    lines
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validate_says_what_would_enforce_each_limit_on_this_host_and_exits_0() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let yaml = format!(
            "{}  - id: web
    management:
      control: {{executable: \"/bin/true\"}}
      resource_limits: {{max_memory_mb: 64, max_cpu_percent: 50, max_file_descriptors: 64}}
  - id: worker
    management:
      control: {{executable: \"/bin/true\"}}
      resource_limits: {{max_processes: 16, on_violation: restart, violation_grace: 5s}}
",
            t.header()
        );
        let file = t.path("procman.yaml");
        std::fs::write(&file, &yaml).unwrap();
        let file_s = file.display().to_string();
        // Probed before and after: a manager test running beside this one
        // may move this process to another cgroup meanwhile.
        let before = expected(&Controllers::probe(&Host::current()));
        let (end, out) = run(Path::new(procman()), &["validate", "-c", &file_s], &[]).await;
        let after = expected(&Controllers::probe(&Host::current()));
        // A limit the host cannot enforce is no error.
        assert_eq!(end, ProcessEnd::Exited(0), "{out}");
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines[0],
            format!("{file_s}: valid (2 processes, 2 enabled, no warnings)")
        );
        assert!(
            lines[1..] == before[..] || lines[1..] == after[..],
            "got:\n{out}\nwant:\n{}",
            before.join("\n")
        );
    })
    .await
    .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validate_as_another_user_refuses_more_descriptors_than_its_hard_limit() {
    if !crate::users::root_or_skip("validate_as_another_user_refuses_more_descriptors") {
        return;
    }
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        // `nobody` inherits this hard limit and lacks CAP_SYS_RESOURCE.
        let hard = rustix::process::getrlimit(rustix::process::Resource::Nofile)
            .maximum
            .expect("RLIMIT_NOFILE is never unlimited on Linux");
        let n = hard + 1;
        let yaml = format!(
            "{}  - id: web
    management:
      control: {{executable: \"/bin/true\"}}
      resource_limits: {{max_file_descriptors: {n}}}
",
            t.header()
        );
        let (end, out) = crate::credentials::validate_as_nobody(&t, &yaml).await;
        assert_eq!(end, ProcessEnd::Exited(2), "{out}");
        let file = t.path("procman.yaml").display().to_string();
        let head = format!(
            "{file}:9:47: managed_processes[0].management.resource_limits.max_file_descriptors: {n} is above"
        );
        assert!(out.starts_with(&head), "want {head:?}\ngot:\n{out}");
        // Above the hard limit, or above fs.nr_open when that is the hard limit.
        assert!(
            out.contains(&format!("hard limit of {hard} open files"))
                || out.contains("(fs.nr_open)"),
            "{out}"
        );
    })
    .await
    .expect("watchdog");
}
