//! Building probes from the config, and the process liveness check.

use std::path::PathBuf;
use std::time::Duration;

use super::*;
use crate::platform::{self, Credentials, TreeRoot};

const WATCHDOG: Duration = Duration::from_secs(10);

fn hc(kind: HealthCheckKind) -> HealthCheck {
    HealthCheck::with_defaults(kind)
}

fn target() -> ProbeTarget {
    ProbeTarget {
        process: Some(ChildId::unregistered(4242).into()),
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
            tls: None,
        })
    );
}

#[test]
fn grpc_without_endpoint_asks_the_integrated_port() {
    let c = hc(HealthCheckKind::Grpc);
    assert_eq!(
        Probe::from_config(&c, &target()),
        Ok(Probe::Grpc {
            endpoint: "127.0.0.1:50123".into(),
            service: String::new(),
            tls: None,
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
            tls: None,
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

use crate::testing::sh;

#[tokio::test]
async fn a_running_child_is_alive_and_a_reaped_one_is_gone() {
    let tree = TreeRoot::without_cgroups().tree("probe-test");
    let spawned = platform::spawn(sh("exec sleep 30"), &tree)
        .await
        .expect("spawn sh");
    let (pid, child) = (spawned.child.pid(), spawned.child.id());
    let out = Probe::Process {
        child: child.clone(),
    }
    .check(Duration::from_secs(1))
    .await;
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
async fn a_found_process_is_alive_by_pid_and_start_time() {
    use crate::platform::discovery::Identity;
    use crate::platform::procstat::Stat;
    let me = Stat::read(std::process::id()).expect("read").expect("self");
    let process = Identity {
        pid: me.pid,
        start_time: me.start_time,
    };
    let target = ProbeTarget {
        process: Some(super::Liveness::Found(process)),
        ..target()
    };
    let probe = Probe::from_config(&hc(HealthCheckKind::Process), &target).expect("probe");
    assert_eq!(probe, Probe::Found { process });
    let out = probe.check(Duration::from_secs(1)).await;
    assert!(out.healthy, "{out:?}");
    assert_eq!(out.detail, format!("process {} is running", me.pid));
    // The same pid with another start time is another process.
    let other = Identity {
        start_time: me.start_time + 1,
        ..process
    };
    let out = Probe::Found { process: other }
        .check(Duration::from_secs(1))
        .await;
    assert!(!out.healthy, "{out:?}");
    assert_eq!(out.detail, format!("process {} has ended", me.pid));
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

// ------------------------------------------------ tls_skip_verify in YAML

/// One process with `health` as its `health_check` lines; `kind` is the
/// process type (`standard_managed` unless given).
fn load_health(kind: &str, health: &str) -> Result<crate::config::Config, Vec<String>> {
    let mut yaml = format!(
        "managed_processes:\n  - id: app\n    type: {kind}\n    management:\n      \
         control: {{executable: app}}\n      health_check:\n"
    );
    for line in health.lines().map(str::trim).filter(|l| !l.is_empty()) {
        yaml.push_str(&format!("        {line}\n"));
    }
    crate::config::load_str(&yaml, std::path::Path::new("/etc/procman.yaml"), &|_| None).map_err(
        |e| {
            e.errors
                .iter()
                .map(|d| format!("{}:{}: {}: {}", d.line, d.column, d.path, d.message))
                .collect()
        },
    )
}

fn loaded_check(kind: &str, health: &str) -> HealthCheck {
    match load_health(kind, health) {
        Ok(config) => *config.processes[0].health_check.clone().expect("a check"),
        Err(e) => panic!("expected a valid config: {e:#?}"),
    }
}

const KEY_PATH: &str = "managed_processes[0].management.health_check.tls_skip_verify";

#[test]
fn tls_skip_verify_defaults_to_false_and_reaches_the_probe() {
    let hc = loaded_check("standard_managed", "http_endpoint: https://localhost:8443/");
    assert!(!hc.tls_skip_verify);
    let hc = loaded_check(
        "standard_managed",
        "http_endpoint: https://localhost:8443/\ntls_skip_verify: true",
    );
    assert!(hc.tls_skip_verify);
    let hc = loaded_check(
        "standard_managed",
        "grpc_endpoint: https://localhost:8443\ntls_skip_verify: true",
    );
    assert!(hc.tls_skip_verify);
    // Explicitly off is fine on a plaintext endpoint.
    let hc = loaded_check(
        "standard_managed",
        "http_endpoint: http://localhost/\ntls_skip_verify: false",
    );
    assert!(!hc.tls_skip_verify);
}

#[test]
fn tls_skip_verify_on_a_plaintext_endpoint_is_an_error_at_its_line() {
    let message = "tls_skip_verify only applies to https:// endpoints";
    for (kind, health) in [
        (
            "standard_managed",
            "http_endpoint: http://localhost/\ntls_skip_verify: true",
        ),
        (
            "standard_managed",
            "grpc_endpoint: localhost:50051\ntls_skip_verify: true",
        ),
        (
            "standard_managed",
            "grpc_endpoint: http://localhost:50051\ntls_skip_verify: true",
        ),
        // The port of an integrated_managed process is plaintext.
        ("integrated_managed", "type: grpc\ntls_skip_verify: true"),
    ] {
        let errors = load_health(kind, health).expect_err(health);
        assert_eq!(
            errors,
            vec![format!("8:26: {KEY_PATH}: {message}")],
            "{health}"
        );
    }
}

#[test]
fn tls_skip_verify_on_a_check_without_tls_is_an_error() {
    for (health, kind) in [
        (
            "tcp_endpoint: localhost:5432\ntls_skip_verify: false",
            "tcp",
        ),
        ("command: [\"true\"]\ntls_skip_verify: true", "exec"),
        ("type: process\ntls_skip_verify: true", "process"),
    ] {
        let errors = load_health("standard_managed", health).expect_err(health);
        assert_eq!(
            errors,
            vec![format!(
                "8:26: {KEY_PATH}: `tls_skip_verify` is not used by a check of type {kind}"
            )],
            "{health}"
        );
    }
    let errors = load_health(
        "standard_managed",
        "http_endpoint: https://h/\ntls_skip_verify: yes",
    )
    .expect_err("not a boolean");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with(&format!("8:26: {KEY_PATH}: ")),
        "{errors:?}"
    );
}

// ------------------------------------------ what validation lets through

#[test]
fn endpoints_validation_accepts_build_a_probe_or_say_why_not() {
    // Endpoints that `procman validate` accepts. Most build a probe; the
    // ones whose characters hyper's URI parser refuses do not, and the
    // supervisor then runs `Probe::Invalid` with this reason, so that the
    // check fails visibly instead of being dropped.
    let endpoints: &[(&str, &str, Option<&str>)] = &[
        ("http_endpoint", "http://localhost:0/", None),
        ("http_endpoint", "https://under_score.internal/", None),
        ("http_endpoint", "https://[::1]:8443/", None),
        ("http_endpoint", "https://user:pw@localhost/h?x=1", None),
        ("grpc_endpoint", "https://127.0.0.1:50051/", None),
        (
            "http_endpoint",
            "http://exa^mple/",
            Some("http endpoint `http://exa^mple/`: invalid uri character"),
        ),
        (
            "grpc_endpoint",
            "ex|ample:50051",
            Some("grpc endpoint `ex|ample:50051`: invalid uri character"),
        ),
    ];
    for &(key, endpoint, refused) in endpoints {
        let hc = loaded_check("standard_managed", &format!("{key}: \"{endpoint}\""));
        let built = Probe::from_config(&hc, &target());
        assert_eq!(
            built.as_ref().err().map(String::as_str),
            refused,
            "{endpoint}"
        );
    }
}

#[tokio::test]
async fn an_invalid_probe_fails_every_check_with_its_reason() {
    let probe = Probe::Invalid {
        reason: "http endpoint `https://x/`: no trusted CA certificates".into(),
    };
    for _ in 0..2 {
        let out = probe.check(Duration::from_secs(1)).await;
        assert!(!out.healthy, "{out:?}");
        assert_eq!(
            out.detail,
            "http endpoint `https://x/`: no trusted CA certificates"
        );
    }
}
