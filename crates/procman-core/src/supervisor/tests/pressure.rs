//! A spawn that fails for a passing reason (here EAGAIN: the process limit
//! of `RLIMIT_NPROC`) is a failed run for the restart policy, not a
//! `failed` process for good: once the limit is lifted, the next restart
//! runs it.
//!
//! `RLIMIT_NPROC` binds only users without CAP_SYS_RESOURCE, and it is a
//! limit of the whole process, so the test runs this test binary again with
//! only the inner test selected; as root, the inner test first becomes
//! `nobody`.

use std::time::Duration;

use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};

use crate::config;
use crate::manager::{Manager, Options};
use crate::outcome::ProcessEnd;
use crate::platform::{self, SpawnSpec, Stdio, TreeRoot};
use crate::supervisor::{Cause, Phase};

const WATCHDOG: Duration = Duration::from_secs(60);

fn config(dir: &std::path::Path) -> config::Config {
    let yaml = format!(
        "process_manager:\n  port: 0\n  state_dir: \"{}/state\"\nmanaged_processes:\n  - id: p\n    management:\n      control:\n        executable: /bin/sleep\n        arguments: [\"1000\"]\n      restart_policy:\n        strategy: always\n        max_attempts: 0\n        restart_delay: 100ms\n        backoff_multiplier: 1.0\n",
        dir.display()
    );
    let file = dir.join("procman.yaml");
    std::fs::write(&file, yaml).expect("write config");
    config::load_file(&file).expect("valid config")
}

/// Becomes `nobody` (all threads: glibc's setresuid covers them), so that
/// `RLIMIT_NPROC` applies; a no-op when not root.
fn become_nobody(dir: &std::path::Path) {
    if !rustix::process::geteuid().is_root() {
        return;
    }
    // nobody / nogroup on Debian.
    let (uid, gid) = (65534, 65534);
    rustix::fs::chown(
        dir,
        Some(rustix::fs::Uid::from_raw(uid)),
        Some(rustix::fs::Gid::from_raw(gid)),
    )
    .expect("chown the test dir");
    // SAFETY: plain libc calls; glibc applies them to every thread.
    unsafe {
        assert_eq!(libc::setgroups(0, std::ptr::null()), 0, "setgroups");
        assert_eq!(libc::setresgid(gid, gid, gid), 0, "setresgid");
        assert_eq!(libc::setresuid(uid, uid, uid), 0, "setresuid");
    }
}

#[test]
#[ignore = "run by a_transient_spawn_failure_goes_through_the_restart_policy, in its own process"]
fn inner() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = config(dir.path());
    become_nobody(dir.path());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let options = Options {
            cgroups: false,
            ..Options::default()
        };
        // Its threads (reaper, platform worker) start here, before the limit.
        let m = Manager::with_options(config, options).expect("manager");
        let before = getrlimit(Resource::Nproc);
        setrlimit(
            Resource::Nproc,
            Rlimit {
                current: Some(1),
                maximum: before.maximum,
            },
        )
        .expect("lower RLIMIT_NPROC");
        let h = m.handle("p").expect("p").clone();
        let mut rx = h.subscribe();
        m.start().await;
        let backoff = tokio::time::timeout(WATCHDOG, async {
            loop {
                let s = rx.borrow_and_update().clone();
                assert_ne!(s.phase(), Phase::Failed, "failed for good: {s:#?}");
                if s.phase() == Phase::Backoff && s.runs == 0 {
                    return s;
                }
                rx.changed().await.expect("status");
            }
        })
        .await
        .expect("backoff after a failed spawn");
        match &backoff.last_transition.as_ref().expect("transition").cause {
            Cause::SpawnFailed(why) => assert!(why.contains("fork"), "{why}"),
            other => panic!("cause {other:?}"),
        }
        setrlimit(Resource::Nproc, before).expect("restore RLIMIT_NPROC");
        let running = tokio::time::timeout(WATCHDOG, async {
            loop {
                let s = rx.borrow_and_update().clone();
                if s.phase() == Phase::Running {
                    return s;
                }
                rx.changed().await.expect("status");
            }
        })
        .await
        .expect("running once the limit is gone");
        assert_eq!(running.runs, 1);
        m.shutdown().await;
    });
    println!("pressure: all checks passed");
}

#[test]
fn a_transient_spawn_failure_goes_through_the_restart_policy() {
    let exe = std::env::current_exe().expect("current exe");
    let out = tempfile::NamedTempFile::new().expect("temp file");
    let file = out.reopen().expect("reopen");
    let err = file.try_clone().expect("clone");
    let spec = SpawnSpec {
        program: exe,
        args: vec![
            "supervisor::pressure_tests::inner".into(),
            "--exact".into(),
            "--ignored".into(),
            "--nocapture".into(),
            "--test-threads=1".into(),
        ],
        stdout: Stdio::Fd(file.into()),
        stderr: Stdio::Fd(err.into()),
        ..crate::testing::sh("")
    };
    let tree = TreeRoot::without_cgroups().tree("pressure");
    let s = platform::spawn_blocking(spec, &tree).expect("run the inner test");
    let end = s.exit.blocking_recv().expect("reaped");
    let text = std::fs::read_to_string(out.path()).unwrap_or_default();
    assert_eq!(end, ProcessEnd::Exited(0), "inner test failed:\n{text}");
    assert!(
        text.contains("pressure: all checks passed"),
        "the inner test did not run:\n{text}"
    );
}
