//! The gRPC service against an independent client, Python grpcio (with
//! grpcio-health-checking): stubs generated from our `.proto` by
//! `grpc_tools.protoc` at test time, then `grpcio_client.py` (beside this
//! file) makes the calls against a real `procman run`, over TCP with the
//! token and over the Unix socket without it, and prints what it got.
//!
//! Python and the packages come from a virtualenv made by [`python_venv`]
//! under cargo's `target/tmp` (kept for the next run).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use procman_core::outcome::ProcessEnd;

use super::*;

/// What the test installs with pip.
const PACKAGES: &[&str] = &["grpcio", "grpcio-tools", "grpcio-health-checking"];

/// The token in the config: a client of the test knows it in advance.
const TOKEN: &str = "grpcio-interop-secret";

/// `sleep` from PATH, linked into the scratch dir: its command line then
/// names the dir, so a failed test's `KillOnDrop` finds it.
fn sleep_in(t: &Scratch) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let sleep = std::env::split_paths(&path)
        .map(|d| d.join("sleep"))
        .find(|p| p.is_file())
        .expect("sleep in PATH");
    let link = t.path("sleep");
    std::os::unix::fs::symlink(&sleep, &link).expect("symlink sleep");
    link
}

/// Generates the Python modules of procman.proto into `out`.
async fn stubs(python: &Path, out: &Path) {
    let proto = concat!(env!("CARGO_MANIFEST_DIR"), "/../procman-api/proto");
    std::fs::create_dir_all(out).expect("create the stubs dir");
    let out = out.display().to_string();
    let (end, text) = run(
        python,
        &[
            "-m",
            "grpc_tools.protoc",
            "-I",
            proto,
            &format!("--python_out={out}"),
            &format!("--grpc_python_out={out}"),
            "procman/v1/procman.proto",
        ],
        &[],
    )
    .await;
    assert_eq!(end, ProcessEnd::Exited(0), "grpc_tools.protoc: {text}");
}

/// The client's `<name> <result>` lines.
fn results(out: &str) -> HashMap<&str, &str> {
    out.lines().filter_map(|l| l.split_once(' ')).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_grpcio_calls_the_service_and_health_over_tcp_and_the_socket() {
    // Installing takes up to a minute; the calls a few seconds.
    tokio::time::timeout(WATCHDOG * 3, async {
        let Some(venv) = python_venv("grpcio", PACKAGES).await else {
            return;
        };
        let python = venv.join("bin/python");
        let t = Scratch::new();
        let stubs_dir = t.path("stubs");
        stubs(&python, &stubs_dir).await;

        let sleep = sleep_in(&t).display().to_string();
        let talk = format!("for i in 1 2 3 4 5 6 7 8; do echo talk $i; done; exec {sleep} 1000");
        let entry = |id: &str, exe: &str, args: &[&str]| {
            let args: Vec<String> = args.iter().map(|a| format!("{a:?}")).collect();
            format!(
                "  - id: \"{id}\"\n    management:\n      control:\n        executable: {exe:?}\n        arguments: [{}]\n",
                args.join(", ")
            )
        };
        let port = free_port();
        let yaml = header(&t, port, &format!("  api_token: \"{TOKEN}\"\n"))
            + &entry("sleeper", &sleep, &["1000"])
            + &entry("talker", "sh", &["-c", &talk]);
        let api = Api::start(&t, &yaml, port).await;
        api.wait_state("sleeper", "running").await;
        api.wait_state("talker", "running").await;

        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/api/grpcio_client.py");
        let socket = api.socket().display().to_string();
        let (end, out) = run(
            &python,
            &[
                script,
                &stubs_dir.display().to_string(),
                &port.to_string(),
                TOKEN,
                &socket,
            ],
            &[("PYTHONUNBUFFERED", "1")],
        )
        .await;
        assert_eq!(
            end,
            ProcessEnd::Exited(0),
            "the grpcio client failed:\n{out}\nthe manager's log:\n{}",
            api.m.log_text()
        );
        // Shown when the test fails, or with --nocapture.
        eprintln!("the grpcio client:\n{out}");
        let r = results(&out);
        assert_eq!(r.get("health"), Some(&"SERVING"), "{out}");
        assert_eq!(r.get("unauthenticated"), Some(&"2"), "{out}");
        assert_eq!(r.get("processes"), Some(&"sleeper,talker"), "{out}");
        assert_eq!(r.get("unknown"), Some(&"NOT_FOUND"), "{out}");
        assert_eq!(r.get("bad_signal"), Some(&"INVALID_ARGUMENT"), "{out}");

        // The restart: a new pid, and the old one gone (RestartProcess
        // returns once the old tree is gone).
        let pids: Vec<u32> = r
            .get("restart")
            .map(|s| s.split(' ').filter_map(|p| p.parse().ok()).collect())
            .unwrap_or_default();
        let [old, new] = pids[..] else {
            panic!("no restart pids: {out}")
        };
        assert_ne!(old, new);
        assert!(!alive(old), "the old sleeper {old} still runs");

        // The followed stream saw the stop, then ended when cancelled,
        // and the same connection went on serving.
        let events = r.get("events").copied().unwrap_or_default();
        assert!(events.ends_with(">stopped"), "{out}");
        assert_eq!(r.get("cancelled"), Some(&"CANCELLED"), "{out}");
        assert_eq!(r.get("after_cancel"), Some(&"stopped"), "{out}");
        assert!(!alive(new), "the stopped sleeper {new} still runs");
        assert_eq!(api.process("sleeper").await["state"], "stopped");

        assert_eq!(
            r.get("logs"),
            Some(&"talk 4|talk 5|talk 6|talk 7|talk 8"),
            "{out}"
        );
        assert_eq!(r.get("unix"), Some(&"sleeper,talker"), "{out}");

        // The cancelled stream left nothing that holds the shutdown up.
        api.stop().await;
        let left = nothing_left(t.dir.path());
        assert!(left.is_empty(), "{left:?}");
    })
    .await
    .expect("watchdog");
}
