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
    let m = Manager::with_options(
        t.config(&yaml),
        Options {
            cgroups: false,
            ..Options::default()
        },
    )
    .expect("manager");
    assert!(!m.uses_cgroups());
    m.start().await;
    let text = wait_file(&out, "ready", Duration::from_secs(20)).await;
    let mut pids = pids_in(&text, "grandchild");
    assert_eq!(pids.len(), 2, "group and setsid grandchildren: {text}");
    pids.extend(pids_in(&text, "ready"));
    m.stop_process("tree").await.expect("stop");
    // The contract of a stop: when it returns, the whole tree is gone.
    let left: Vec<u32> = pids.iter().copied().filter(|&p| alive(p)).collect();
    assert!(left.is_empty(), "still running after the stop: {left:?}");
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

/// As `nobody`, the manager cannot create cgroups and tracks trees through
/// `/proc`. A daemon that double-forked away (its parent gone before any
/// look at `/proc` could see it) is re-parented to the manager, the
/// subreaper: the shutdown stops it with the rest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_cgroups_an_adopted_daemon_is_stopped_at_shutdown() {
    if !is_root() {
        return skip_or_fail("not root: the test runs procman as nobody");
    }
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        give_to_nobody(&t);
        let procman = runnable_by_nobody(&t, std::path::Path::new(procman()));
        let testchild = runnable_by_nobody(&t, child());
        let out = t.path("tree.out");
        let script = format!("exec {} grandchildren --daemon > {}", testchild.display(), out.display());
        let yaml = format!(
            "{}  - id: tree\n    management:\n      control:\n        executable: sh\n        arguments: [\"-c\", {script:?}]\n        shutdown_timeout: 2s\n",
            t.header()
        );
        let file = t.path("procman.yaml");
        std::fs::write(&file, &yaml).unwrap();
        let _cleanup = KillOnDrop(t.dir.path().display().to_string());
        let (uid, gid) = (format!("--reuid={}", NOBODY.0), format!("--regid={}", NOBODY.1));
        let args = [
            uid.as_str(),
            gid.as_str(),
            "--clear-groups",
            "--",
            procman.to_str().unwrap(),
            "run",
            "-c",
            file.to_str().unwrap(),
        ];
        let setpriv = procman_core::platform::resolve_program(
            "setpriv",
            std::path::Path::new("/"),
            std::env::var_os("PATH").as_ref(),
        );
        let Ok(setpriv) = setpriv else {
            return skip_or_fail("no setpriv (util-linux)");
        };
        let (mpid, exit, log) = start(&setpriv, &args, &[]);
        let text = wait_file(&out, "kind=daemon", Duration::from_secs(30)).await;
        let daemon = pids_in(&text, "grandchild")
            .into_iter()
            .last()
            .expect("the daemon's pid");
        let manager = std::fs::read_to_string(format!("/proc/{daemon}/stat")).unwrap();
        assert!(alive(daemon), "the daemon runs: {manager}");
        procman_core::platform::signal_process(mpid, procman_core::outcome::Signal::TERM).unwrap();
        let end = tokio::time::timeout(Duration::from_secs(30), exit)
            .await
            .expect("the manager ends")
            .expect("status");
        let output = std::fs::read_to_string(log.path()).unwrap_or_default();
        assert_eq!(end, procman_core::outcome::ProcessEnd::Exited(0), "{output}");
        assert!(output.contains("/proc"), "it ran without cgroups: {output}");
        wait_gone(&[daemon], Duration::from_secs(5)).await;
    })
    .await
    .expect("watchdog");
}
