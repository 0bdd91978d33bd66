//! No spawn once the shutdown has begun: three shutdown signals that
//! arrive while many processes start (and others restart from backoff)
//! leave no child behind the manager. Every child is either killed by the
//! forced exit or never spawned.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use procman_core::outcome::ProcessEnd;

use super::*;

const LONG: Duration = Duration::from_secs(30);
/// Services that run until stopped, each writing its pid file.
const SERVICES: usize = 120;
/// Processes that exit at once and are restarted after a short backoff:
/// spawns keep coming during the shutdown if anything lets them.
const CRASHERS: usize = 30;

/// A config of [`SERVICES`] services and [`CRASHERS`] crash loops, every
/// one with the scratch dir on its command line (so the test finds them
/// whoever their parent is). Returns the config and the services' pid
/// files.
fn many(t: &Scratch) -> (PathBuf, Vec<PathBuf>) {
    let mut yaml = t.header();
    let mut pidfiles = Vec::new();
    for i in 0..SERVICES {
        let pidfile = t.path(&format!("svc{i}.pid"));
        let p = pidfile.display().to_string();
        yaml += &child_entry(&format!("svc{i}"), &["--pidfile", &p, "run"], "");
        pidfiles.push(pidfile);
    }
    for i in 0..CRASHERS {
        let stamp = t.path(&format!("crash{i}.stamps")).display().to_string();
        yaml += &child_entry(
            &format!("crash{i}"),
            &["--stamp", &stamp, "exit", "3"],
            "      restart_policy:\n        restart_delay: 5ms\n        max_attempts: 0\n",
        );
    }
    (config_file(t, &yaml), pidfiles)
}

/// No state file is left in the scratch dir's state directory.
fn assert_no_state_file(t: &Scratch) {
    let records = procman_core::state::record::ProcessRecord::ids(&t.path("state"));
    assert!(records.is_empty(), "state files left: {records:?}");
}

/// A scratch dir, the marker its processes' command lines hold, and what
/// kills them all when the test ends.
fn scratch() -> (Scratch, String, KillOnDrop) {
    let t = Scratch::new();
    let marker = t.dir.path().display().to_string();
    let cleanup = KillOnDrop(marker.clone());
    (t, marker, cleanup)
}

/// Sends the manager three different shutdown signals (a forced exit),
/// holding it stopped meanwhile so that they arrive together.
async fn three_shutdown_signals(m: &mut Running) {
    m.signal(Sig::STOP.as_raw());
    wait_stopped(m.pid).await;
    m.signal(Sig::TERM.as_raw());
    m.signal(Sig::INT.as_raw());
    m.signal(Sig::QUIT.as_raw());
    m.signal(Sig::CONT.as_raw());
}

/// Waits until at least `n` of `files` exist.
async fn wait_some(files: &[PathBuf], n: usize) {
    let deadline = Instant::now() + LONG;
    while files.iter().filter(|f| f.exists()).count() < n {
        assert!(
            Instant::now() < deadline,
            "fewer than {n} of {} services started",
            files.len()
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Starts the manager on [`many`], waits until `started` services have
/// written their pid files, then sends it three different shutdown signals
/// at once (held stopped meanwhile, so that it gets them together while
/// the start goes on). Once it has ended, no process of its config may
/// remain alive.
async fn forced_exit_during_start(started: usize) {
    let (t, marker, _cleanup) = scratch();
    let (config, pidfiles) = many(&t);
    let mut m = Running::run_logged(&config, &t.path("manager.log"), &[]);
    wait_some(&pidfiles, started).await;
    three_shutdown_signals(&mut m).await;
    let end = m.ended(LONG).await;
    assert!(
        matches!(end, ProcessEnd::Exited(0 | 1)),
        "{end:?}: {}",
        m.log_text()
    );
    // A SIGKILLed child is gone within moments; an orphan stays for good.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let left = procs_mentioning(&marker);
        if left.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} processes outlived the manager ({end:?}, {started} started before the signals): {left:?}\n{}",
            left.len(),
            m.log_text()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Every process was killed on purpose (or never spawned): no state
    // file may tell the next manager that they ended while none ran.
    assert_no_state_file(&t);
}

/// A shutdown (one signal) early in a large start: every process stops,
/// and no state file is left, also of a process whose record was written
/// before a spawn the shutdown then refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_early_in_a_large_start_leaves_no_state_file() {
    tokio::time::timeout(WATCHDOG, async {
        let (t, marker, _cleanup) = scratch();
        let (config, pidfiles) = many(&t);
        let mut m = Running::run_logged(&config, &t.path("manager.log"), &[]);
        wait_some(&pidfiles, 1).await;
        m.signal(Sig::TERM.as_raw());
        let end = m.ended(LONG).await;
        assert_eq!(end, ProcessEnd::Exited(0), "{}", m.log_text());
        assert!(procs_mentioning(&marker).is_empty(), "{}", m.log_text());
        assert_no_state_file(&t);
    })
    .await
    .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forced_exit_early_in_a_large_start_leaves_no_child() {
    tokio::time::timeout(WATCHDOG, forced_exit_during_start(1))
        .await
        .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forced_exit_half_way_through_a_large_start_leaves_no_child() {
    tokio::time::timeout(WATCHDOG, forced_exit_during_start(SERVICES / 2))
        .await
        .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forced_exit_among_restarts_leaves_no_child() {
    tokio::time::timeout(WATCHDOG, forced_exit_during_start(SERVICES))
        .await
        .expect("watchdog");
}

/// Waits until no new pid file has appeared for a second: every child
/// cloned so far has written its own.
async fn settled_count(files: &[PathBuf]) -> usize {
    let deadline = Instant::now() + LONG;
    let count = || files.iter().filter(|f| f.exists()).count();
    let (mut last, mut since) = (count(), Instant::now());
    while since.elapsed() < Duration::from_secs(1) {
        assert!(Instant::now() < deadline, "the pid files never settled");
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = count();
        if now != last {
            (last, since) = (now, Instant::now());
        }
    }
    last
}

/// A shutdown signal stops a large start at once: it refuses spawns in
/// its handler, before the manager's tasks, busy spawning, get to it. The
/// manager is held stopped while the signal is sent, so that it meets the
/// signal in the middle of its start; only the spawns under way when it
/// arrives (at most one per runtime thread: three) may still make a
/// process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_signal_stops_a_large_start_at_once() {
    tokio::time::timeout(WATCHDOG, async {
        let (t, marker, _cleanup) = scratch();
        let (config, pidfiles) = many(&t);
        let mut m = Running::run_logged(&config, &t.path("manager.log"), &[]);
        wait_some(&pidfiles, SERVICES / 4).await;
        m.signal(Sig::STOP.as_raw());
        wait_stopped(m.pid).await;
        let before = settled_count(&pidfiles).await;
        assert!(before < SERVICES, "the start was over before the signal");
        m.signal(Sig::TERM.as_raw());
        m.signal(Sig::CONT.as_raw());
        let end = m.ended(LONG).await;
        assert_eq!(end, ProcessEnd::Exited(0), "{}", m.log_text());
        let after = pidfiles.iter().filter(|f| f.exists()).count();
        assert!(
            after <= before + 3,
            "{} services started after the shutdown signal ({before} before it)",
            after - before
        );
        assert!(procs_mentioning(&marker).is_empty(), "{}", m.log_text());
        assert_no_state_file(&t);
    })
    .await
    .expect("watchdog");
}

/// A forced exit while an exec health check runs: the check's command is
/// one of the manager's spawns, killed with everything else, not left
/// behind as an orphan.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forced_exit_leaves_no_health_check_running() {
    tokio::time::timeout(WATCHDOG, async {
        let (t, _marker, _cleanup) = scratch();
        let pidfile = t.path("probe.pid");
        let script = format!("echo $$$$ > {}; exec sleep 60", pidfile.display());
        let health = format!(
            "      health_check:\n        type: exec\n        command: [\"sh\", \"-c\", {script:?}]\n        interval: 60s\n        timeout: 60s\n"
        );
        let yaml = t.header() + &child_entry("web", &["run"], &health);
        let config = config_file(&t, &yaml);
        let mut m = Running::run_logged(&config, &t.path("manager.log"), &[]);
        let deadline = Instant::now() + LONG;
        let probe: u32 = loop {
            let text = std::fs::read_to_string(&pidfile).unwrap_or_default();
            if let Ok(pid) = text.trim().parse() {
                break pid;
            }
            assert!(Instant::now() < deadline, "the check never ran: {}", m.log_text());
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert!(alive(probe));
        three_shutdown_signals(&mut m).await;
        let end = m.ended(LONG).await;
        assert!(matches!(end, ProcessEnd::Exited(0 | 1)), "{end:?}: {}", m.log_text());
        let deadline = Instant::now() + Duration::from_secs(15);
        while alive(probe) {
            assert!(
                Instant::now() < deadline,
                "the health check {probe} outlived the manager ({end:?}): {}",
                m.log_text()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("watchdog");
}

/// State records that cannot be read (here, a link where the file should
/// be): the manager refuses to start, and says why, rather than start
/// every process beside the copies an earlier manager may have left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_state_records_refuse_the_start() {
    tokio::time::timeout(WATCHDOG, async {
        let (t, _marker, _cleanup) = scratch();
        let pidfile = t.path("web.pid");
        let p = pidfile.display().to_string();
        let yaml = t.header() + &child_entry("web", &["--pidfile", &p, "run"], "");
        let config = config_file(&t, &yaml);
        let records = t.path("state").join("processes");
        std::fs::create_dir_all(&records).expect("records dir");
        std::os::unix::fs::symlink("/etc/hostname", records.join("slots")).expect("link");
        let mut m = Running::run_logged(&config, &t.path("manager.log"), &[]);
        let end = m.ended(LONG).await;
        assert_eq!(end, ProcessEnd::Exited(1), "{}", m.log_text());
        let log = m.log_text();
        assert!(
            log.contains("cannot use the processes' state records") && log.contains("twice"),
            "{log}"
        );
        assert!(!pidfile.exists(), "web was started");
    })
    .await
    .expect("watchdog");
}
