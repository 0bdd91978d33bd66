//! Limits the kernel does not enforce are the manager's to watch: with
//! `Options { cgroups: false }` every limit is `monitor`, and a process
//! over `max_memory_mb` for `violation_grace` meets its `on_violation`:
//! `restart` ends the run as a failure for the restart policy, `stop`
//! leaves the process `failed`, `log` only counts the violation.
//!
//! The memory is held by this test binary itself, run again as the
//! managed process with only the ignored [`hog`] test selected (as
//! `pressure.rs` does): a real process with a real resident set, and no
//! helper binary to find.

use std::path::Path;
use std::time::Duration;

use crate::config;
use crate::manager::{Manager, Options};
use crate::platform::{Controller, Enforcer};
use crate::supervisor::{Cause, Handle, Phase, ProcessStatus};

/// Generous: these tests run on a loaded 2-core machine.
const DEADLINE: Duration = Duration::from_secs(30);

/// MiB the hog holds, and the limit it is over.
const HOG_MIB: usize = 96;
const LIMIT_MIB: usize = 32;

/// Tells [`hog`] how much to hold; without it, it does nothing (so that
/// `cargo test -- --ignored` does not block on it).
const HOG_ENV: &str = "PROCMAN_TEST_HOG_MIB";

#[test]
#[ignore = "the memory hog that the violation tests run as their managed process"]
fn hog() {
    let Some(mib) = std::env::var(HOG_ENV)
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    else {
        return;
    };
    // Every byte written, non-zero: resident, not a lazily zeroed mapping.
    let mut block = vec![0xa5u8; mib << 20];
    for (i, page) in block.chunks_mut(4096).enumerate() {
        page[0] = i as u8;
    }
    std::hint::black_box(&mut block);
    println!("holding {mib} MiB");
    // Bounded, should the manager that runs it be gone: its action ends
    // it long before.
    std::thread::sleep(Duration::from_secs(120));
    std::hint::black_box(&block);
}

/// A manager of one process `hog`, without cgroups.
fn manager(dir: &Path, on_violation: &str) -> Manager {
    let exe = std::env::current_exe().expect("current exe");
    let yaml = format!(
        "process_manager:
  port: 0
  state_dir: \"{dir}/state\"
managed_processes:
  - id: hog
    management:
      control:
        executable: \"{exe}\"
        arguments: [\"supervisor::violation_tests::hog\", \"--exact\", \"--ignored\", \"--nocapture\", \"--test-threads=1\"]
        environment:
          {HOG_ENV}: \"{HOG_MIB}\"
        shutdown_timeout: 2s
      resource_limits:
        max_memory_mb: {LIMIT_MIB}
        on_violation: {on_violation}
        sample_interval: 200ms
        violation_grace: 400ms
      restart_policy:
        strategy: always
        max_attempts: 0
        restart_delay: 100ms
",
        dir = dir.display(),
        exe = exe.display(),
    );
    let file = dir.join("procman.yaml");
    std::fs::write(&file, yaml).expect("write config");
    let config = config::load_file(&file).expect("valid config");
    let options = Options {
        cgroups: false,
        ..Options::default()
    };
    Manager::with_options(config, options).expect("manager")
}

/// Waits until `hog`'s status satisfies `pred`.
async fn wait(h: &Handle, what: &str, pred: impl Fn(&ProcessStatus) -> bool) -> ProcessStatus {
    let mut rx = h.subscribe();
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        {
            let s = rx.borrow_and_update();
            if pred(&s) {
                return s.clone();
            }
        }
        tokio::time::timeout_at(deadline, rx.changed())
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for {what}: {:#?}", h.status()))
            .expect("the supervisor is alive");
    }
}

fn monitored(s: &ProcessStatus) {
    assert_eq!(
        s.enforcement.of(Controller::Memory),
        Some(Enforcer::Monitor),
        "{s:#?}"
    );
}

fn a_violation(cause: &Cause) -> bool {
    matches!(cause, Cause::ResourceViolation(what) if what.contains("over max_memory_mb"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_violation_restart_ends_the_run_for_the_restart_policy() {
    let dir = tempfile::tempdir().expect("tempdir");
    let m = manager(dir.path(), "restart");
    let h = m.handle("hog").expect("hog").clone();
    m.start().await;
    let s = wait(&h, "a restart after a violation", |s| {
        s.restart_causes
            .iter()
            .any(|(kind, n)| kind == "resource_violation" && n >= 1)
    })
    .await;
    monitored(&s);
    assert!(s.runs >= 2 && s.violations >= 1, "{s:#?}");
    assert_ne!(s.phase(), Phase::Failed, "{s:#?}");
    tokio::time::timeout(DEADLINE, m.shutdown())
        .await
        .expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_violation_stop_leaves_the_process_failed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let m = manager(dir.path(), "stop");
    let h = m.handle("hog").expect("hog").clone();
    m.start().await;
    let s = wait(&h, "failed", |s| s.phase() == Phase::Failed).await;
    monitored(&s);
    let cause = &s.last_transition.as_ref().expect("a transition").cause;
    assert!(a_violation(cause), "{s:#?}");
    assert_eq!((s.runs, s.restarts, s.violations), (1, 0, 1), "{s:#?}");
    assert_eq!(s.pid(), None, "{s:#?}");
    tokio::time::timeout(DEADLINE, m.shutdown())
        .await
        .expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_violation_log_counts_and_keeps_the_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let m = manager(dir.path(), "log");
    let h = m.handle("hog").expect("hog").clone();
    m.start().await;
    let first = wait(&h, "running", |s| s.phase() == Phase::Running).await;
    let pid = first.pid().expect("a pid");
    let s = wait(&h, "a violation", |s| s.violations >= 1).await;
    monitored(&s);
    assert_eq!(s.phase(), Phase::Running, "{s:#?}");
    assert_eq!((s.pid(), s.runs), (Some(pid), 1), "the same run: {s:#?}");
    assert!(crate::platform::procstat::alive(pid), "{pid} lives on");
    tokio::time::timeout(DEADLINE, m.shutdown())
        .await
        .expect("shutdown");
}
