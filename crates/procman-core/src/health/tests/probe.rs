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
        pid: Some(4242),
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
        Ok(Probe::Process { pid: 4242 })
    );
    let no_pid = ProbeTarget {
        pid: None,
        ..target()
    };
    assert!(Probe::from_config(&hc(HealthCheckKind::Process), &no_pid).is_err());
}

#[tokio::test]
async fn own_process_is_alive() {
    let pid = std::process::id();
    let out = Probe::Process { pid }.check(Duration::from_secs(1)).await;
    assert!(out.healthy, "{out:?}");
    assert_eq!(out.detail, format!("process {pid} is running"));
}

#[tokio::test]
async fn a_reaped_child_is_gone() {
    let spec = SpawnSpec {
        program: PathBuf::from("/bin/sh"),
        args: vec!["-c".into(), "exit 0".into()],
        cwd: PathBuf::from("/"),
        env: Vec::new(),
        stdout: Stdio::Null,
        stderr: Stdio::Null,
        uid: None,
        gid: None,
        groups: None,
        nofile: None,
    };
    let tree = TreeRoot::without_cgroups().tree("probe-test");
    let child = platform::spawn(spec, &tree).expect("spawn sh");
    let pid = child.pid;
    let end = tokio::time::timeout(WATCHDOG, child.exit)
        .await
        .expect("the child exits")
        .expect("the reaper reports it");
    assert_eq!(end.code(), Some(0));
    let out = Probe::Process { pid }.check(Duration::from_secs(1)).await;
    assert!(!out.healthy, "{out:?}");
    assert_eq!(out.detail, format!("process {pid} is gone"));
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
