//! `Options::embedded()`: a program that embeds the engine and has
//! children of its own keeps them. The manager is not a subreaper and
//! reaps only its own children (by pidfd), so the program's `wait` still
//! gets its child's status.
//!
//! The reaping mode is chosen once per process, so the test runs this test
//! binary again with only the inner test selected.

use std::path::PathBuf;
use std::time::Duration;

use crate::config;
use crate::manager::{Manager, Options};
use crate::outcome::ProcessEnd;
use crate::platform::{self, Stdio, TreeRoot};
use crate::supervisor::Phase;

#[test]
#[ignore = "run by the_host_program_keeps_its_own_children, in its own process"]
fn inner() {
    let dir = tempfile::tempdir().expect("tempdir");
    let yaml = format!(
        "process_manager:\n  port: 0\n  state_dir: \"{}/state\"\nmanaged_processes:\n  - id: p\n    management:\n      control:\n        executable: /bin/sh\n        arguments: [\"-c\", \"sleep 0.2; exit 3\"]\n      restart_policy:\n        strategy: always\n        max_attempts: 0\n        restart_delay: 50ms\n",
        dir.path().display()
    );
    let file = dir.path().join("procman.yaml");
    std::fs::write(&file, yaml).expect("config");
    let config = config::load_file(&file).expect("valid config");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let m = Manager::with_options(config, Options::embedded()).expect("manager");
        let subreaper = rustix::process::child_subreaper().expect("prctl");
        assert!(
            subreaper.is_none(),
            "the embedded manager is not a subreaper"
        );
        m.start().await;
        // The host's own child, waited for by the host the ordinary way,
        // while the manager restarts its process several times.
        let mut own = std::process::Command::new("/bin/sh")
            .args(["-c", "sleep 1; exit 7"])
            .spawn()
            .expect("the host's child");
        let status = tokio::task::spawn_blocking(move || own.wait())
            .await
            .expect("join")
            .expect("the host's wait gets its child");
        assert_eq!(status.code(), Some(7), "its own exit status, not ECHILD");
        let h = m.handle("p").expect("p");
        let s = h.status();
        assert!(s.runs >= 3, "the manager's process kept restarting: {s:#?}");
        assert_ne!(s.phase(), Phase::Failed, "{s:#?}");
        assert_eq!(s.last_exit, Some(ProcessEnd::Exited(3)));
        tokio::time::timeout(Duration::from_secs(30), m.shutdown())
            .await
            .expect("shutdown");
    });
    println!("embedded: all checks passed");
}

#[test]
fn the_host_program_keeps_its_own_children() {
    let out = tempfile::NamedTempFile::new().expect("temp file");
    let file = out.reopen().expect("reopen");
    let err = file.try_clone().expect("clone");
    let spec = platform::SpawnSpec {
        program: std::env::current_exe().expect("current exe"),
        args: vec![
            "manager::embedded_tests::inner".into(),
            "--exact".into(),
            "--ignored".into(),
            "--nocapture".into(),
            "--test-threads=1".into(),
        ],
        cwd: PathBuf::from("/"),
        stdout: Stdio::Fd(file.into()),
        stderr: Stdio::Fd(err.into()),
        ..crate::testing::sh("")
    };
    let tree = TreeRoot::without_cgroups().tree("embedded");
    let s = platform::spawn_blocking(spec, &tree).expect("run the inner test");
    let end = s.exit.blocking_recv().expect("reaped");
    let text = std::fs::read_to_string(out.path()).unwrap_or_default();
    assert_eq!(end, ProcessEnd::Exited(0), "inner test failed:\n{text}");
    assert!(text.contains("embedded: all checks passed"), "{text}");
}
