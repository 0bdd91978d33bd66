//! Building probes from the config, and the process liveness check.

use std::path::PathBuf;
use std::time::Duration;

use super::*;
use crate::platform::{self, Credentials, SpawnSpec, Stdio, TreeRoot};

const WATCHDOG: Duration = Duration::from_secs(10);

fn hc(kind: HealthCheckKind) -> HealthCheck {
    HealthCheck::with_defaults(kind)
}

fn target() -> ProbeTarget {
    ProbeTarget {
        process: Some(ChildId::unregistered(4242)),
        port: Some(50123),
        cwd: PathBuf::from("/srv/app"),
        env: vec![("A".into(), "1".into())],
        credentials: Ok(Credentials {
            uid: Some(65534),
            gid: Some(65534),
            groups: Some(vec![65534]),
        }),
    }
}

#[test]
fn http_probe_keeps_url_and_expected_codes() {
    let mut c = hc(HealthCheckKind::Http);
    c.http_endpoint = Some("http://127.0.0.1:8080/healthz".into());
    c.expected_status = vec![204];
    assert_eq!(
        Probe::from_config(&c, &target()),
        Ok(Probe::Http {
            url: "http://127.0.0.1:8080/healthz".into(),
            expected: vec![204],
        })
    );
}

#[test]
fn https_is_refused_when_the_probe_is_built() {
    let mut c = hc(HealthCheckKind::Http);
    c.http_endpoint = Some("https://example.invalid/health".into());
    let err = Probe::from_config(&c, &target()).err().unwrap_or_default();
    assert!(err.contains("https is not supported"), "{err}");

    let mut c = hc(HealthCheckKind::Grpc);
    c.grpc_endpoint = Some("https://example.invalid:443".into());
    let err = Probe::from_config(&c, &target()).err().unwrap_or_default();
    assert!(err.contains("https is not supported"), "{err}");
}

#[test]
fn grpc_without_endpoint_asks_the_integrated_port() {
    let c = hc(HealthCheckKind::Grpc);
    assert_eq!(
        Probe::from_config(&c, &target()),
        Ok(Probe::Grpc {
            endpoint: "127.0.0.1:50123".into(),
            service: String::new(),
        })
    );
    let mut c = hc(HealthCheckKind::Grpc);
    c.grpc_endpoint = Some("http://10.0.0.1:9000".into());
    c.grpc_service = Some("shop.Cart".into());
    assert_eq!(
        Probe::from_config(&c, &target()),
        Ok(Probe::Grpc {
            endpoint: "http://10.0.0.1:9000".into(),
            service: "shop.Cart".into(),
        })
    );
    let no_port = ProbeTarget {
        port: None,
        ..target()
    };
    assert!(Probe::from_config(&hc(HealthCheckKind::Grpc), &no_port).is_err());
}

#[test]
fn tcp_exec_and_process_probes_take_the_target() {
    let mut c = hc(HealthCheckKind::Tcp);
    c.tcp_endpoint = Some("localhost:5432".into());
    assert_eq!(
        Probe::from_config(&c, &target()),
        Ok(Probe::Tcp {
            addr: "localhost:5432".into()
        })
    );

    let mut c = hc(HealthCheckKind::Exec);
    c.command = vec!["./check".into(), "--quick".into()];
    assert_eq!(
        Probe::from_config(&c, &target()),
        Ok(Probe::Exec {
            argv: vec!["./check".into(), "--quick".into()],
            cwd: PathBuf::from("/srv/app"),
            env: vec![("A".into(), "1".into())],
            credentials: target().credentials,
        })
    );
    assert!(Probe::from_config(&hc(HealthCheckKind::Exec), &target()).is_err());

    assert_eq!(
        Probe::from_config(&hc(HealthCheckKind::Process), &target()),
        Ok(Probe::Process {
            child: ChildId::unregistered(4242)
        })
    );
    let no_pid = ProbeTarget {
        process: None,
        ..target()
    };
    assert!(Probe::from_config(&hc(HealthCheckKind::Process), &no_pid).is_err());
}

fn sh(script: &str) -> SpawnSpec {
    SpawnSpec {
        program: PathBuf::from("/bin/sh"),
        args: vec!["-c".into(), script.into()],
        cwd: PathBuf::from("/"),
        env: Vec::new(),
        stdout: Stdio::Null,
        stderr: Stdio::Null,
        uid: None,
        gid: None,
        groups: None,
        nofile: None,
        kill_group_on_exit: false,
    }
}

#[tokio::test]
async fn a_running_child_is_alive_and_a_reaped_one_is_gone() {
    let tree = TreeRoot::without_cgroups().tree("probe-test");
    let spawned = platform::spawn(sh("exec sleep 30"), &tree)
        .await
        .expect("spawn sh");
    let (pid, child) = (spawned.child.pid(), spawned.child.id());
    let out = Probe::Process { child }.check(Duration::from_secs(1)).await;
    assert!(out.healthy, "{out:?}");
    assert_eq!(out.detail, format!("process {pid} is running"));
    spawned
        .child
        .signal(crate::outcome::Signal::KILL)
        .expect("kill");
    let end = tokio::time::timeout(WATCHDOG, spawned.exit)
        .await
        .expect("the child exits")
        .expect("the reaper reports it");
    assert_eq!(end.signal(), Some(crate::outcome::Signal::KILL));
    let out = Probe::Process { child }.check(Duration::from_secs(1)).await;
    assert!(!out.healthy, "{out:?}");
    assert_eq!(out.detail, format!("process {pid} has ended"));
}

#[tokio::test]
async fn a_pid_that_is_not_our_child_is_never_called_alive() {
    // Our own pid exists, but it is not a child the reaper knows: a
    // liveness check must not vouch for a number it does not own.
    let child = ChildId::unregistered(std::process::id());
    let out = Probe::Process { child }.check(Duration::from_secs(1)).await;
    assert!(!out.healthy, "{out:?}");
}

#[test]
fn errors_are_described_down_to_their_cause() {
    let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
    assert_eq!(describe(&refused), "connection refused");
    let other = std::io::Error::other("no route");
    assert_eq!(describe(&other), "no route");
    assert_eq!(
        timed_out(Duration::from_millis(1500)),
        "timed out after 1s 500ms"
    );
}
