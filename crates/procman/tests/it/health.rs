//! Health checks on real processes, as a user sees them in the status and
//! the log files: readiness on the first passing check, a restart after
//! exactly `failure_threshold` failed checks (HTTP and gRPC), a healthy
//! process left alone, `startup_timeout` for a process that never passes
//! (a server that never answers, a closed port, an exec check that hangs
//! and must leave nothing behind), and the port and default gRPC check of
//! an `integrated_managed` process.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use procman_core::health::verdict::Health;
use procman_core::supervisor::{Cause, Handle, HealthStatus, Lifecycle, Phase, ProcessStatus};
use tokio::net::TcpListener;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::server::TcpIncoming;
use tonic::transport::Server;
use tonic_health::server::HealthReporter;
use tonic_health::ServingStatus;

use crate::support::*;

/// Any wait for something that takes well under a second on an idle
/// machine (the watchdog is the real bound).
const SHORT: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------- config

/// One `managed_processes` entry: `executable` with `args`, an optional
/// process `type`, extra `control` keys (see [`control_keys`]) and extra
/// `management` sections ([`health`], [`policy`]).
fn entry(
    id: &str,
    kind: Option<&str>,
    executable: &str,
    args: &[&str],
    control: &str,
    management: &str,
) -> String {
    let args: Vec<String> = args.iter().map(|a| format!("{a:?}")).collect();
    let kind = kind.map_or_else(String::new, |k| format!("    type: {k}\n"));
    format!(
        "  - id: \"{id}\"\n{kind}    management:\n      control:\n        executable: {executable:?}\n        arguments: [{}]\n{}{management}",
        args.join(", "),
        control_keys(control),
    )
}

/// The test child with `args`.
fn child_with(id: &str, args: &[&str], control: &str, management: &str) -> String {
    entry(
        id,
        None,
        &child().display().to_string(),
        args,
        control,
        management,
    )
}

/// A `management` section named `name` with `lines` as its keys.
fn section(name: &str, lines: &str) -> String {
    let mut s = format!("      {name}:\n");
    for l in lines.lines().map(str::trim).filter(|l| !l.is_empty()) {
        s.push_str("        ");
        s.push_str(l);
        s.push('\n');
    }
    s
}

fn health(lines: &str) -> String {
    section("health_check", lines)
}

fn policy(lines: &str) -> String {
    section("restart_policy", lines)
}

/// A port nothing listens on right now: bound to 127.0.0.1:0, then freed.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

// ---------------------------------------------------------------- status

/// The health diagnostics of the current (or last) run.
fn diag(s: &ProcessStatus) -> &HealthStatus {
    s.health
        .as_ref()
        .unwrap_or_else(|| panic!("no health diagnostics: {s:#?}"))
}

/// Waits until the process is `running` and checks that it got there by
/// its first passing check: `starting → running` with cause `ready` and
/// the health diagnostics already saying `healthy`.
async fn wait_ready(h: &Handle, within: Duration) -> ProcessStatus {
    let s = wait_status(h, within, "running", |s| s.phase() == Phase::Running).await;
    let t = s.last_transition.as_ref().expect("a transition");
    assert_eq!((t.from, t.to), (Phase::Starting, Phase::Running), "{s:#?}");
    assert_eq!(t.cause, Cause::Ready, "{s:#?}");
    let d = diag(&s);
    assert_eq!(
        d.health,
        Health::Healthy,
        "running only once healthy: {s:#?}"
    );
    assert_eq!(d.consecutive_failures, 0, "{s:#?}");
    assert_eq!(d.last_error, None, "{s:#?}");
    assert!(d.last_check.is_some() && d.last_latency.is_some(), "{s:#?}");
    s
}

/// Waits until the process is `failed` (with `strategy: never`) and checks
/// that the run ended by `startup_timeout` while it was still `starting`,
/// no sooner than `startup_timeout` after it was spawned.
async fn wait_startup_timeout(
    h: &Handle,
    startup_timeout: Duration,
    within: Duration,
) -> ProcessStatus {
    let s = wait_status(h, within, "failed", |s| {
        matches!(s.phase(), Phase::Failed | Phase::Running)
    })
    .await;
    assert_eq!(s.phase(), Phase::Failed, "never running: {s:#?}");
    let t = s.last_transition.as_ref().expect("a transition");
    assert_eq!(
        (t.from, t.to),
        (Phase::Starting, Phase::Failed),
        "still starting when startup_timeout ended the run: {s:#?}"
    );
    assert!(
        matches!(t.cause, Cause::StartupTimeout(_)),
        "ended by startup_timeout: {s:#?}"
    );
    let reason = match &s.lifecycle {
        Lifecycle::Failed { reason } => reason.clone(),
        other => panic!("{other:?}"),
    };
    assert!(
        reason.contains("startup_timeout"),
        "the reason names startup_timeout: {reason:?}"
    );
    assert_eq!(s.runs, 1, "strategy never: one run: {s:#?}");
    let spawned = s.started_at.expect("started_at");
    let lasted = t.at.duration_since(spawned).expect("ended after spawn");
    assert!(
        lasted >= startup_timeout,
        "ended after {lasted:?}, before startup_timeout {startup_timeout:?}: {s:#?}"
    );
    assert!(
        lasted < startup_timeout + Duration::from_secs(5),
        "ended {lasted:?} after its spawn, long after startup_timeout {startup_timeout:?}"
    );
    let d = diag(&s);
    assert_eq!(d.health, Health::Starting, "never passed a check: {s:#?}");
    s
}

// ------------------------------------------------------------------- logs

/// A process's default log file: `<state_dir>/logs/<id>.log`.
fn log_file(t: &Scratch, id: &str) -> PathBuf {
    t.path("state").join("logs").join(format!("{id}.log"))
}

/// The `stdout` lines of each run in a plain log file (`<ts> stdout
/// <line>`, a `<ts> ----- run N pid P -----` separator before each run),
/// in order: index 0 is run 1.
fn runs_in_log(file: &Path) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    let mut runs: Vec<Vec<String>> = Vec::new();
    for line in text.lines() {
        let (_ts, rest) = line
            .split_once(' ')
            .unwrap_or_else(|| panic!("malformed line {line:?} in {}", file.display()));
        if rest.starts_with("----- run ") && rest.contains(" ended: ") {
            // The record that closes a run.
            continue;
        }
        if let Some(sep) = rest.strip_prefix("----- run ") {
            let n: usize = sep
                .split_whitespace()
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("malformed separator {line:?}"));
            assert_eq!(n, runs.len() + 1, "separators in order: {text}");
            runs.push(Vec::new());
        } else if let Some(out) = rest.strip_prefix("stdout ") {
            runs.last_mut()
                .unwrap_or_else(|| panic!("output before the first separator: {text}"))
                .push(out.to_string());
        }
    }
    runs
}

/// The `health n=K status=S` lines of one run.
fn health_lines(run: &[String]) -> Vec<&str> {
    run.iter()
        .map(String::as_str)
        .filter(|l| l.starts_with("health "))
        .collect()
}

// ------------------------------------------------------------- gRPC server

/// When each `Check` call reached the test's gRPC server.
type Arrivals = Arc<Mutex<Vec<Instant>>>;

/// An independent `tonic-health` server on 127.0.0.1 (on `listener`, or
/// on a port of its own): its address, its reporter, and the arrival time
/// of every call, noted before the call is answered.
async fn grpc_health_server(
    listener: Option<TcpListener>,
) -> (SocketAddr, HealthReporter, Arrivals) {
    let listener = match listener {
        Some(l) => l,
        None => TcpListener::bind("127.0.0.1:0").await.expect("bind"),
    };
    let addr = listener.local_addr().expect("addr");
    let (reporter, service) = tonic_health::server::health_reporter();
    let arrivals: Arrivals = Arc::default();
    let noted = arrivals.clone();
    let service = InterceptedService::new(service, move |req| {
        noted.lock().unwrap().push(Instant::now());
        Ok(req)
    });
    tokio::spawn(
        Server::builder()
            .add_service(service)
            .serve_with_incoming(TcpIncoming::from(listener)),
    );
    (addr, reporter, arrivals)
}

/// Waits until the server has seen more than `n` calls.
async fn wait_arrivals(arrivals: &Arrivals, n: usize, within: Duration) {
    let deadline = Instant::now() + within;
    while arrivals.lock().unwrap().len() <= n {
        assert!(
            Instant::now() < deadline,
            "no check arrived within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

// ------------------------------------------------------------------ tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_ready_on_the_first_pass_and_restarted_after_exactly_three_failures() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let port = free_port();
        let yaml = t.header()
            + &child_with(
                "web",
                &["http-health", &port.to_string(), "--fail-after", "4"],
                "",
                &(health(&format!(
                    "type: http\nhttp_endpoint: \"http://127.0.0.1:{port}/health\"\n\
                     interval: 300ms\ntimeout: 300ms\nfailure_threshold: 3"
                )) + &policy("strategy: on_failure\nrestart_delay: 100ms\njitter: 0")),
            );
        let m = t.manager(&yaml);
        m.start().await;
        let h = m.handle("web").unwrap();

        let s = wait_ready(&h, SHORT).await;
        assert_eq!(diag(&s).last_result, "HTTP 200", "{s:#?}");
        let pid1 = s.pid().expect("pid");
        let log = log_file(&t, "web");
        wait_file(&log, "health n=1 status=200", SHORT).await;

        // Requests 5, 6 and 7 fail: the third failure ends the run.
        let s = wait_status(&h, SHORT, "the run to end", |s| {
            s.phase() == Phase::Backoff || s.runs >= 2
        })
        .await;
        assert_eq!(s.phase(), Phase::Backoff, "{s:#?}");
        let tr = s.last_transition.as_ref().unwrap();
        assert_eq!((tr.from, tr.to), (Phase::Running, Phase::Backoff), "{s:#?}");
        assert_eq!(
            tr.cause,
            Cause::HealthCheck("HTTP 500 (expected 2xx/3xx)".into()),
            "{s:#?}"
        );
        assert!(
            tr.cause.to_string().starts_with("health_check"),
            "{}",
            tr.cause
        );
        let d = diag(&s);
        assert_eq!(d.health, Health::Unhealthy, "{s:#?}");
        assert_eq!(d.consecutive_failures, 3, "{s:#?}");
        assert_eq!(
            d.last_error.as_deref(),
            Some("HTTP 500 (expected 2xx/3xx)"),
            "{s:#?}"
        );

        let s = wait_ready(&h, SHORT).await;
        assert_eq!((s.runs, s.restarts), (2, 1), "{s:#?}");
        let pid2 = s.pid().expect("pid");
        assert_ne!(pid1, pid2, "a new process");
        wait_file(&log, "----- run 2", SHORT).await;
        m.shutdown().await;

        let runs = runs_in_log(&log);
        assert!(runs.len() >= 2, "{runs:#?}");
        let want: Vec<String> = (1..=7)
            .map(|n| format!("health n={n} status={}", if n <= 4 { 200 } else { 500 }))
            .collect();
        assert_eq!(
            health_lines(&runs[0]),
            want,
            "run 1: 4 passing checks, then exactly 3 failing ones: {:#?}",
            runs[0]
        );
    })
    .await
    .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_process_is_never_restarted() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let port = free_port();
        let yaml = t.header()
            + &child_with(
                "web",
                &["http-health", &port.to_string()],
                "",
                &health(&format!(
                    "type: http\nhttp_endpoint: \"http://127.0.0.1:{port}/health\"\n\
                     interval: 200ms\nfailure_threshold: 1"
                )),
            );
        let m = t.manager(&yaml);
        m.start().await;
        let h = m.handle("web").unwrap();
        let first = wait_ready(&h, SHORT).await;
        // Watching for something that must not happen: ~15 checks' worth.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let s = h.status();
        assert_eq!(s.phase(), Phase::Running, "{s:#?}");
        assert_eq!((s.runs, s.restarts), (1, 0), "{s:#?}");
        assert_eq!(s.pid(), first.pid(), "{s:#?}");
        let d = diag(&s);
        assert_eq!(d.health, Health::Healthy, "{s:#?}");
        assert_eq!(d.consecutive_failures, 0, "{s:#?}");
        assert_eq!(d.last_result, "HTTP 200", "{s:#?}");
        assert_eq!(d.last_error, None, "{s:#?}");
        let latency = d.last_latency.expect("last_latency");
        assert!(latency < Duration::from_secs(1), "{latency:?}");
        assert!(
            d.last_check > diag(&first).last_check,
            "checks go on: {first:#?} {s:#?}"
        );
        m.shutdown().await;

        let runs = runs_in_log(&log_file(&t, "web"));
        assert_eq!(runs.len(), 1, "{runs:#?}");
        let lines = health_lines(&runs[0]);
        assert!(lines.len() >= 5, "checked every 200ms: {lines:#?}");
        assert!(
            lines.iter().all(|l| l.ends_with("status=200")),
            "{lines:#?}"
        );
    })
    .await
    .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_not_serving_ends_the_run_after_three_checks_and_serving_again_brings_it_up() {
    tokio::time::timeout(WATCHDOG, async {
        const INTERVAL: Duration = Duration::from_millis(300);
        let (addr, reporter, arrivals) = grpc_health_server(None).await;
        reporter
            .set_service_status("svc", ServingStatus::Serving)
            .await;
        let t = Scratch::new();
        let yaml = t.header()
            + &child_with(
                "svc",
                &["run"],
                "",
                &(health(&format!(
                    "type: grpc\ngrpc_endpoint: \"{addr}\"\ngrpc_service: \"svc\"\n\
                     interval: 300ms\nfailure_threshold: 3"
                )) + &policy("strategy: on_failure\nrestart_delay: 1s\njitter: 0")),
            );
        let m = t.manager(&yaml);
        m.start().await;
        let h = m.handle("svc").unwrap();
        let s = wait_ready(&h, SHORT).await;
        assert_eq!(diag(&s).last_result, "SERVING", "{s:#?}");

        // Switch between two checks, so that no check is in flight: one
        // arrived, the next is due ~300ms later.
        let seen = arrivals.lock().unwrap().len();
        wait_arrivals(&arrivals, seen, SHORT).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        let (t0, t0_wall) = (Instant::now(), SystemTime::now());
        reporter
            .set_service_status("svc", ServingStatus::NotServing)
            .await;

        let s = wait_status(&h, SHORT, "backoff", |s| s.phase() != Phase::Running).await;
        let seen_at = Instant::now();
        assert_eq!(s.phase(), Phase::Backoff, "{s:#?}");
        let tr = s.last_transition.as_ref().unwrap();
        assert_eq!(tr.cause, Cause::HealthCheck("NOT_SERVING".into()), "{s:#?}");
        let d = diag(&s);
        assert_eq!(d.last_result, "NOT_SERVING", "{s:#?}");
        assert_eq!(d.last_error.as_deref(), Some("NOT_SERVING"), "{s:#?}");
        assert_eq!(d.consecutive_failures, 3, "{s:#?}");
        let after = tr.at.duration_since(t0_wall).expect("ended after t0");
        assert!(
            after >= INTERVAL * 2,
            "ended {after:?} after NOT_SERVING: fewer than 3 checks"
        );
        assert!(
            after <= INTERVAL * 3 + Duration::from_secs(3),
            "ended only {after:?} after NOT_SERVING"
        );
        let failed: Vec<Duration> = arrivals
            .lock()
            .unwrap()
            .iter()
            .filter(|&&a| a > t0 && a <= seen_at)
            .map(|&a| a - t0)
            .collect();
        assert!(
            (3..=4).contains(&failed.len()),
            "3 checks saw NOT_SERVING (a 4th may start while the run is stopped): {failed:?}"
        );

        reporter
            .set_service_status("svc", ServingStatus::Serving)
            .await;
        let s = wait_ready(&h, SHORT).await;
        assert_eq!((s.runs, s.restarts), (2, 1), "{s:#?}");
        assert_eq!(diag(&s).last_result, "SERVING", "{s:#?}");
        m.shutdown().await;
    })
    .await
    .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_never_answers_fails_by_startup_timeout_not_by_failed_checks() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let port = free_port();
        // failure_threshold 1: the first failed check would end the run if
        // failures before the first success counted.
        let yaml = t.header()
            + &child_with(
                "mute",
                &["http-health", &port.to_string(), "--hang"],
                "startup_timeout: 2s",
                &(health(&format!(
                    "type: http\nhttp_endpoint: \"http://127.0.0.1:{port}/health\"\n\
                     interval: 300ms\ntimeout: 300ms\nfailure_threshold: 1"
                )) + &policy("strategy: never")),
            );
        let m = t.manager(&yaml);
        m.start().await;
        let h = m.handle("mute").unwrap();
        wait_file(&log_file(&t, "mute"), "accepted conn=1", SHORT).await;
        let s = h.status();
        assert_eq!(s.phase(), Phase::Starting, "a check is pending: {s:#?}");
        let pid = s.pid().expect("pid");

        let s = wait_startup_timeout(&h, Duration::from_secs(2), SHORT).await;
        let d = diag(&s);
        assert_eq!(d.last_result, "timed out after 300ms", "{s:#?}");
        assert_eq!(d.last_error.as_deref(), Some("timed out after 300ms"));
        assert!(
            d.consecutive_failures >= 3,
            "several failed checks did not end the run: {s:#?}"
        );
        assert!(!alive(pid), "the process was stopped");
        m.shutdown().await;
    })
    .await
    .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_port_fails_by_startup_timeout_with_connection_refused() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let port = free_port();
        let yaml = t.header()
            + &child_with(
                "closed",
                &["run"],
                "startup_timeout: 1500ms",
                &(health(&format!(
                    "type: tcp\ntcp_endpoint: \"127.0.0.1:{port}\"\ninterval: 200ms"
                )) + &policy("strategy: never")),
            );
        let m = t.manager(&yaml);
        m.start().await;
        let h = m.handle("closed").unwrap();
        let s = wait_startup_timeout(&h, Duration::from_millis(1500), SHORT).await;
        let d = diag(&s);
        assert_eq!(d.last_result, "connection refused", "{s:#?}");
        assert_eq!(d.last_error.as_deref(), Some("connection refused"));
        assert!(d.consecutive_failures >= 3, "{s:#?}");
        m.shutdown().await;
    })
    .await
    .expect("watchdog");
}

/// Live processes whose environment holds `KEY=VALUE`: (pid, comm).
fn procs_with_env(key_value: &str) -> Vec<(u32, String)> {
    let needle = key_value.as_bytes();
    let mut out = Vec::new();
    for pid in other_pids() {
        let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) else {
            continue;
        };
        if env.split(|&b| b == 0).any(|kv| kv == needle) && alive(pid) {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            out.push((pid, comm.trim().to_string()));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exec_check_that_hangs_is_killed_and_leaves_nothing_behind() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        // The process and its probes inherit this variable: it finds them
        // all in /proc, `sleep` included.
        let marker = format!("PROCMAN_IT_EXEC_PROBE={}", t.dir.path().display());
        let (key, value) = marker.split_once('=').unwrap();
        let yaml = t.header()
            + &child_with(
                "exec",
                &["run"],
                &format!("startup_timeout: 3s\nenvironment:\n  {key}: {value:?}"),
                &(health(&format!(
                    "type: exec\ncommand: [\"sh\", \"-c\", \"sleep 30; : {value}\"]\n\
                     interval: 500ms\ntimeout: 300ms"
                )) + &policy("strategy: never")),
            );
        let m = t.manager(&yaml);
        m.start().await;
        let h = m.handle("exec").unwrap();

        // A probe is running its `sleep 30` while the process starts.
        let deadline = Instant::now() + SHORT;
        while !procs_with_env(&marker).iter().any(|(_, c)| c == "sleep") {
            assert!(Instant::now() < deadline, "no probe seen: {:?}", h.status());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }

        let s = wait_startup_timeout(&h, Duration::from_secs(3), SHORT).await;
        let d = diag(&s);
        assert_eq!(d.last_result, "killed after timeout (300ms)", "{s:#?}");
        assert!(d.consecutive_failures >= 2, "{s:#?}");

        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = procs_with_env(&marker);
            if left.is_empty() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "left behind by the exec check: {left:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let zombies = lasting_zombie_children(Duration::from_secs(5)).await;
        assert!(zombies.is_empty(), "zombie children: {zombies:?}");
        m.shutdown().await;
    })
    .await
    .expect("watchdog");
}

/// An `integrated_managed` process through `sh`, which hands the
/// `--port N` the manager appends (`$0 $1` of the script) on to `env
/// --stay`, whose report goes to `out`.
fn integrated(id: &str, out: &Path, control: &str, management: &str) -> String {
    // `$$` is a literal `$` once the config is expanded.
    let script = format!(
        "exec {} env --stay -- \"$$0\" \"$$@\" > {}",
        child().display(),
        out.display()
    );
    entry(
        id,
        Some("integrated_managed"),
        "sh",
        &["-c", &script],
        control,
        management,
    )
}

/// The port the `env` report at `out` got, checked to be the same in
/// `PROCMAN_PORT` and in `--port N`.
async fn reported_port(out: &Path) -> u16 {
    let text = wait_file(out, "ready pid=", SHORT).await;
    let env_port = text
        .lines()
        .find_map(|l| l.strip_prefix("env PROCMAN_PORT="))
        .unwrap_or_else(|| panic!("no PROCMAN_PORT: {text}"));
    let args = text
        .lines()
        .find_map(|l| l.strip_prefix("args "))
        .unwrap_or_else(|| panic!("no args line: {text}"));
    assert_eq!(args, format!("--port {env_port}"), "{text}");
    env_port.parse().expect("a port number")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn integrated_managed_gets_a_port_and_a_grpc_check_on_it() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let out = t.path("env.out");
        let yaml = t.header()
            + &integrated(
                "integ",
                &out,
                "startup_timeout: 1s",
                &policy("strategy: never"),
            );
        let m = t.manager(&yaml);
        m.start().await;
        let h = m.handle("integ").unwrap();
        let port = reported_port(&out).await;
        assert_ne!(port, 0);
        // Nothing serves gRPC health there: the default check fails until
        // startup_timeout.
        let s = wait_startup_timeout(&h, Duration::from_secs(1), SHORT).await;
        assert_eq!(diag(&s).last_result, "connection refused", "{s:#?}");
        m.shutdown().await;
    })
    .await
    .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn integrated_managed_uses_control_port_for_its_arguments_env_and_check() {
    tokio::time::timeout(WATCHDOG, async {
        // The test serves gRPC health on the port it gives the process,
        // which serves nothing itself: the check passes only if it asks
        // that port.
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let (addr, _reporter, arrivals) = grpc_health_server(Some(listener)).await;
        let t = Scratch::new();
        let out = t.path("env.out");
        let yaml = t.header()
            + &integrated(
                "integ",
                &out,
                &format!("port: {}\nstartup_timeout: 10s", addr.port()),
                &policy("strategy: never"),
            );
        let m = t.manager(&yaml);
        m.start().await;
        let h = m.handle("integ").unwrap();
        assert_eq!(reported_port(&out).await, addr.port());
        let s = wait_ready(&h, SHORT).await;
        assert_eq!(diag(&s).last_result, "SERVING", "{s:#?}");
        assert!(!arrivals.lock().unwrap().is_empty());
        m.shutdown().await;
    })
    .await
    .expect("watchdog");
}

mod tls;
