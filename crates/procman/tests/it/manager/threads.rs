//! A user out of processes (`RLIMIT_NPROC`): `procman run` either refuses
//! to start with exit 1 and a message naming the threads it could not
//! create, or runs and supervises; it never panics (exit 101), neither at
//! start nor later, when a health check resolves a host name (tokio does
//! that on a blocking thread, which it panics for when it cannot create
//! one).
//!
//! Root is exempt from RLIMIT_NPROC, so the manager runs as `nobody`.

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use procman_core::outcome::ProcessEnd;
use procman_core::platform::{child_path, resolve_program, Stdio};

use super::*;

/// One start under a limit: up to about two seconds of health checks.
const EACH: Duration = Duration::from_secs(30);

/// What one run under a limit came to.
#[derive(Debug, PartialEq)]
enum Outcome {
    /// Exit 1, naming what it could not create.
    Refused,
    /// The manager ran, but the limit left no room for the child itself
    /// (its spawn failed with EAGAIN): a process state, not a crash.
    ChildRefused,
    /// The child ran and passed a health check by host name.
    Supervised,
    /// `setpriv` could not even execute `procman`: other processes of
    /// `nobody` (another test's children) already use up the limit.
    UserFull,
}

/// Why this test cannot run here, if it cannot.
fn missing_prerequisite() -> Option<String> {
    if !is_root() {
        return Some("needs root to run the manager as `nobody`".into());
    }
    let path = child_path(&[]);
    for tool in ["prlimit", "setpriv"] {
        if resolve_program(tool, Path::new("/"), path.as_ref()).is_err() {
            return Some(format!("needs `{tool}` (util-linux) in PATH"));
        }
    }
    None
}

/// A tiny HTTP server on 127.0.0.1 that answers every request with 200.
async fn ok_server() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut conn, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                let _ = conn.read(&mut buf).await;
                let _ = conn
                    .write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                    )
                    .await;
            });
        }
    });
    port
}

/// Runs the manager as `nobody` with `RLIMIT_NPROC` = `limit` until it
/// shows what it makes of it.
async fn run_with_limit(t: &Scratch, procman: &Path, config: &Path, limit: u32) -> Outcome {
    let log = t.path(&format!("limit-{limit}.log"));
    let file = std::fs::File::create(&log).expect("log file");
    let nproc = format!("--nproc={limit}:{limit}");
    let config_s = config.display().to_string();
    let procman_s = procman.display().to_string();
    let args = [
        nproc.as_str(),
        "setpriv",
        "--reuid=nobody",
        "--regid=nogroup",
        "--clear-groups",
        procman_s.as_str(),
        "run",
        "-c",
        config_s.as_str(),
    ];
    let prlimit =
        resolve_program("prlimit", Path::new("/"), child_path(&[]).as_ref()).expect("prlimit");
    let mut m = Running::start(&prlimit, &args, &[], Stdio::Null, Stdio::Fd(file.into()));
    m.log = Some(log);
    let deadline = Instant::now() + EACH;
    let outcome = loop {
        if !m.running() {
            let end = m.ended(EACH).await;
            let text = m.log_text();
            if end == ProcessEnd::Exited(126) && text.contains("setpriv: failed to execute") {
                return Outcome::UserFull;
            }
            assert_eq!(end, ProcessEnd::Exited(1), "limit {limit}:\n{text}");
            assert!(
                text.contains("procman: cannot create"),
                "limit {limit}: {text}"
            );
            assert!(
                text.contains("RLIMIT_NPROC"),
                "limit {limit}: names the limit: {text}"
            );
            return Outcome::Refused;
        }
        let text = m.log_text();
        if text.contains("process=web") && text.contains("to=running") {
            break Outcome::Supervised;
        }
        // The fork refused by the limit: a passing failure, retried by the
        // restart policy.
        if text.contains("process=web")
            && text.contains("cannot create a process (fork): resource temporarily unavailable")
        {
            break Outcome::ChildRefused;
        }
        assert!(
            Instant::now() < deadline,
            "limit {limit}: neither refused nor running:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    m.signal(Sig::TERM.as_raw());
    let end = m.ended(EACH).await;
    let text = m.log_text();
    assert_eq!(
        end,
        ProcessEnd::Exited(0),
        "limit {limit} ({outcome:?}):\n{text}"
    );
    assert!(!text.contains("panic"), "limit {limit}: a panic:\n{text}");
    outcome
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_any_process_limit_the_manager_refuses_cleanly_or_supervises_never_panics() {
    if let Some(why) = missing_prerequisite() {
        return skip_or_fail(&format!("this test {why}"));
    }
    tokio::time::timeout(Duration::from_secs(240), async {
        let t = Scratch::new();
        let _cleanup = KillOnDrop(t.dir.path().display().to_string());
        // `nobody` must reach the binary, read the config and own its
        // state directory (0700, or the manager refuses it).
        std::fs::set_permissions(t.dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let procman_copy = t.path("procman");
        if std::fs::hard_link(procman(), &procman_copy).is_err() {
            std::fs::copy(procman(), &procman_copy).expect("copy procman");
        }
        let state = t.path("state");
        std::fs::create_dir(&state).expect("state dir");
        rustix::fs::chown(&state, Some(rustix::process::Uid::from_raw(65534)), Some(rustix::process::Gid::from_raw(65534)))
            .expect("chown state dir to nobody");
        std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o700)).expect("chmod");

        let port = ok_server().await;
        let yaml = format!(
            "{}  - id: \"web\"\n    management:\n      control:\n        executable: \"sleep\"\n        arguments: [\"1000\"]\n      health_check:\n        type: http\n        http_endpoint: \"http://localhost:{port}/\"\n        interval: 200ms\n",
            t.header()
        );
        let config = config_file(&t, &yaml);

        let mut seen = Vec::new();
        // Every limit that matters (the manager needs about ten), and two
        // with room to spare in case other tests run processes as nobody.
        for limit in (1..=12).chain([16, 24]) {
            seen.push((limit, run_with_limit(&t, &procman_copy, &config, limit).await));
        }
        assert!(seen.iter().any(|(_, o)| *o == Outcome::Refused), "{seen:?}");
        assert!(seen.iter().any(|(_, o)| *o == Outcome::Supervised), "{seen:?}");
    })
    .await
    .expect("watchdog");
}
