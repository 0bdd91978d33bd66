//! A supervisor whose every handle is gone while it waits for a tree to
//! end (its grace period) waits idle: no busy loop on the closed channel.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config;
use crate::logs::sink::ProcessLog;
use crate::logs::LogSetup;
use crate::platform::TreeRoot;
use crate::supervisor::{self, Context, Phase};

/// CPU time this thread has used.
fn thread_cpu() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

fn config(dir: &std::path::Path) -> config::Config {
    // Ignores SIGTERM: the stop waits out its whole shutdown_timeout.
    let yaml = format!(
        "process_manager:\n  port: 0\n  state_dir: \"{}/state\"\nmanaged_processes:\n  - id: stubborn\n    management:\n      control:\n        executable: /bin/sh\n        arguments: [\"-c\", \"trap '' TERM; touch ready; while :; do sleep 1; done\"]\n        working_directory: \"{}\"\n        shutdown_timeout: 3s\n",
        dir.display(),
        dir.display()
    );
    let file = dir.join("procman.yaml");
    std::fs::write(&file, yaml).expect("write config");
    config::load_file(&file).expect("valid config")
}

#[tokio::test]
async fn a_stop_with_every_handle_gone_waits_without_spinning() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = config(dir.path());
    let cfg = config.processes[0].clone();
    let setup = LogSetup::start(&config).expect("log setup");
    let log = Arc::new(ProcessLog::new(&cfg, &setup).expect("log"));
    let ctx = Arc::new(Context {
        config_dir: dir.path().to_path_buf(),
        trees: TreeRoot::without_cgroups(),
        events: Default::default(),
        records: None,
    });
    let (handle, task) = supervisor::spawn(cfg, ctx, log, None);
    handle.start().await.expect("started");
    // Once it ignores SIGTERM (a file appears: no event to wait on).
    let ready = dir.path().join("ready");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ready.exists() {
        assert!(Instant::now() < deadline, "the child never got ready");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut status = handle.subscribe();
    let stop = handle.stop();
    // Stopping: the tree ignores SIGTERM, so the supervisor waits.
    while status.borrow_and_update().phase() != Phase::Stopping {
        status.changed().await.expect("status");
    }
    drop(stop);
    drop(handle);
    // This test runs on one thread: the supervisor's too. A busy loop on
    // the closed command channel would burn this thread's CPU.
    let (cpu0, t0) = (thread_cpu(), Instant::now());
    tokio::time::timeout(Duration::from_secs(30), task)
        .await
        .expect("the task ends after the SIGKILL")
        .expect("no panic");
    let (cpu, wall) = (thread_cpu() - cpu0, t0.elapsed());
    assert!(wall >= Duration::from_secs(1), "it waited: {wall:?}");
    assert!(
        cpu < wall / 5,
        "{cpu:?} of CPU over {wall:?} of waiting: a busy loop"
    );
}
