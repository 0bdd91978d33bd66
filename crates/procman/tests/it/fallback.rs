//! Without cgroups (an unprivileged user, a v1-only host), process trees
//! are the process group plus the descendants found in `/proc`.

use std::time::Duration;

use procman_core::manager::{Manager, Options};

use crate::support::*;

async fn stop_leaves_nothing(extra_args: &str) {
    let t = Scratch::new();
    let out = t.path("out");
    let args = format!("grandchildren {extra_args}");
    let yaml =
        t.header() + &child_entry_to_file("tree", &args, &out, "        shutdown_timeout: 1s\n");
    let m = Manager::with_options(t.config(&yaml), Options {
            cgroups: false,
            ..Options::default()
        }).expect("manager");
    assert!(!m.uses_cgroups());
    m.start().await;
    let text = wait_file(&out, "ready", Duration::from_secs(20)).await;
    let mut pids = pids_in(&text, "grandchild");
    assert_eq!(pids.len(), 2, "group and setsid grandchildren: {text}");
    pids.extend(pids_in(&text, "ready"));
    m.stop_process("tree").await.expect("stop");
    wait_gone(&pids, Duration::from_secs(10)).await;
    m.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_cgroups_group_and_setsid_grandchildren_are_stopped() {
    tokio::time::timeout(WATCHDOG, stop_leaves_nothing(""))
        .await
        .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_cgroups_grandchildren_ignoring_sigterm_are_killed() {
    tokio::time::timeout(WATCHDOG, stop_leaves_nothing("--ignore-term"))
        .await
        .expect("watchdog");
}
