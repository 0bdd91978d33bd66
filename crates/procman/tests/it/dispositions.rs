//! Children start with every signal at its default action and none
//! blocked, whatever the manager inherited: a manager started with `&` by a
//! script (SIGINT and SIGQUIT ignored), or by a program that blocks signals.

use std::path::Path;
use std::time::Duration;

use procman_core::outcome::Signal;
use procman_core::platform::signal_process;

use crate::support::*;

/// `SigIgn`, `SigBlk` of a `/proc/<pid>/status` text, as bit masks.
fn masks(status: &str) -> (u64, u64) {
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
            .unwrap_or_else(|| panic!("no {name} in {status}"))
    };
    (field("SigIgn:"), field("SigBlk:"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn children_get_default_signals_whatever_the_manager_inherited() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let out = t.path("status");
        let script = format!("exec cat /proc/self/status > {}; ", out.display());
        let yaml = format!(
            "{}  - id: report\n    profile_type: batch\n    management:\n      control:\n        executable: sh\n        arguments: [\"-c\", {:?}]\n",
            t.header(),
            format!("{script}exec sleep 1000")
        );
        let file = t.path("procman.yaml");
        std::fs::write(&file, yaml).unwrap();
        let _cleanup = KillOnDrop(t.dir.path().display().to_string());
        // The launcher ignores SIGINT, SIGQUIT and SIGHUP and blocks SIGUSR2,
        // then becomes the manager.
        let launcher = "import os, signal, sys\n\
             for s in (signal.SIGINT, signal.SIGQUIT, signal.SIGHUP):\n    signal.signal(s, signal.SIG_IGN)\n\
             signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR2})\n\
             os.execv(sys.argv[1], sys.argv[1:])\n";
        let python = procman_core::platform::resolve_program(
            "python3",
            Path::new("/"),
            std::env::var_os("PATH").as_ref(),
        )
        .expect("python3 (the README lists it)");
        let (mpid, exit, log) = start(
            &python,
            &["-c", launcher, procman(), "run", "-c", file.to_str().unwrap()],
            &[],
        );
        let status = wait_file(&out, "SigBlk:", Duration::from_secs(30)).await;
        let (ignored, blocked) = masks(&status);
        assert_eq!(ignored, 0, "signals ignored in the child: {ignored:#x}");
        assert_eq!(blocked, 0, "signals blocked in the child: {blocked:#x}");
        signal_process(mpid, Signal::TERM).unwrap();
        let end = tokio::time::timeout(Duration::from_secs(30), exit).await;
        let output = std::fs::read_to_string(log.path()).unwrap_or_default();
        assert!(end.is_ok(), "the manager ends on SIGTERM: {output}");
    })
    .await
    .expect("watchdog");
}

/// `python3`, which execs the manager with the dispositions it was given.
fn python() -> std::path::PathBuf {
    procman_core::platform::resolve_program(
        "python3",
        Path::new("/"),
        std::env::var_os("PATH").as_ref(),
    )
    .expect("python3 (the README lists it)")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inherited_ignored_sigchld_does_not_blind_the_manager() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let runs = t.path("runs");
        // `$$` in the config is a literal `$`: this is the shell's `$$`.
        let script = format!("echo $$$$ >> {}; exec sleep 1000", runs.display());
        let yaml = format!(
            "{}  - id: svc\n    management:\n      control:\n        executable: sh\n        arguments: [\"-c\", {script:?}]\n      restart_policy:\n        strategy: always\n        restart_delay: 100ms\n",
            t.header(),
        );
        let file = t.path("procman.yaml");
        std::fs::write(&file, yaml).unwrap();
        let _cleanup = KillOnDrop(t.dir.path().display().to_string());
        // With SIGCHLD ignored the kernel reaps children itself, unless
        // the manager sets it back.
        let launcher = "import os, signal, sys\n\
             signal.signal(signal.SIGCHLD, signal.SIG_IGN)\n\
             os.execv(sys.argv[1], sys.argv[1:])\n";
        let (mpid, exit, log) = start(
            &python(),
            &["-c", launcher, procman(), "run", "-c", file.to_str().unwrap()],
            &[],
        );
        let first = wait_file(&runs, "", Duration::from_secs(30)).await;
        let pid: u32 = first.lines().next().unwrap().trim().parse().unwrap_or_else(|e| panic!("{first:?}: {e}"));
        signal_process(pid, Signal::KILL).unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let text = std::fs::read_to_string(&runs).unwrap_or_default();
            if text.lines().count() >= 2 {
                break;
            }
            let output = std::fs::read_to_string(log.path()).unwrap_or_default();
            assert!(
                tokio::time::Instant::now() < deadline,
                "the killed child was never restarted: {output}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        signal_process(mpid, Signal::TERM).unwrap();
        let end = tokio::time::timeout(Duration::from_secs(30), exit).await;
        let output = std::fs::read_to_string(log.path()).unwrap_or_default();
        assert!(end.is_ok(), "the manager ends on SIGTERM: {output}");
        assert!(
            !output.contains("survived SIGKILL"),
            "the stop saw its child end: {output}"
        );
    })
    .await
    .expect("watchdog");
}
