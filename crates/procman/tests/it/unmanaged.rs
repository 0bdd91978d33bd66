//! Unmanaged processes: started by the test itself (not by procman), found
//! by a real `procman run` through a pid file, a pid or a name with
//! `argument_match`, reported (state, pid, usage, health), heard ending
//! and found again, and never signalled: not by a refused stop, restart,
//! start or signal, not by a failing health check, not by the manager's
//! shutdown. The test child writes `got SIG…` for every signal it gets,
//! so "never signalled" is read from its own output.

use std::path::Path;
use std::time::Duration;

use procman_api::{Event, Process, ProcessDetail};
use procman_core::outcome::{ProcessEnd, Signal};
use procman_core::platform::signal_process;
use tokio::sync::oneshot;

use crate::api::{request, Via};
use crate::cli_control::Running;
use crate::support::*;

/// How long the manager may take to see something (a look for a name
/// happens every 2 s while nothing is found).
const SEE: Duration = Duration::from_secs(30);

/// A test child running `run`, started by the test: not procman's child.
/// Its command line holds the test's directory (`--stamp`), for
/// `argument_match` and for [`KillOnDrop`].
struct Outside {
    pid: u32,
    exit: oneshot::Receiver<ProcessEnd>,
    out: tempfile::NamedTempFile,
}

impl Outside {
    fn start(t: &Scratch, extra: &[&str]) -> Outside {
        let stamp = t.path("outside.stamp").display().to_string();
        let mut args = vec!["--stamp", stamp.as_str()];
        args.extend_from_slice(extra);
        args.push("run");
        let (pid, exit, out) = start(child(), &args, &[]);
        Outside { pid, exit, out }
    }

    /// Started, once it has said it is ready.
    async fn ready(t: &Scratch) -> Outside {
        let o = Outside::start(t, &[]);
        wait_file(o.out.path(), "ready pid=", SEE).await;
        o
    }

    /// With `--pidfile FILE`, once the file names it.
    async fn with_pidfile(t: &Scratch, file: &Path) -> Outside {
        let file_arg = file.display().to_string();
        let o = Outside::start(t, &["--pidfile", &file_arg]);
        wait_pidfile(file, SEE, |p| p == o.pid).await;
        o
    }

    /// What it printed: `ready pid=N`, and `got SIG…` for each signal.
    fn output(&self) -> String {
        std::fs::read_to_string(self.out.path()).unwrap_or_default()
    }

    /// Asserts it runs and was never signalled.
    fn untouched(&self) {
        assert!(alive(self.pid), "process {} is gone", self.pid);
        let out = self.output();
        assert!(!out.contains("got "), "it was signalled: {out}");
    }

    /// SIGKILL, and its end (the test reaps it).
    async fn kill(self) {
        signal_process(self.pid, Signal::KILL).expect("kill");
        let end = tokio::time::timeout(SEE, self.exit)
            .await
            .expect("it ends")
            .expect("its status");
        assert_eq!(end.signal(), Some(Signal::KILL));
    }
}

/// One unmanaged entry found by `discovery` (a YAML flow mapping), with
/// `extra` lines under `management` (indented by 6).
fn entry(id: &str, discovery: &str, extra: &str) -> String {
    format!(
        "  - id: \"{id}\"\n    type: unmanaged\n    management:\n      discovery: {discovery}\n{extra}"
    )
}

/// The process `id` once `pred` holds for it.
async fn wait_for(m: &Running, id: &str, what: &str, pred: impl Fn(&Process) -> bool) -> Process {
    let ps = m
        .wait_until(&format!("{id} {what}"), |ps| {
            ps.iter().any(|p| p.id == id && pred(p))
        })
        .await;
    ps.into_iter()
        .find(|p| p.id == id)
        .expect("the process waited for")
}

fn running_as(p: &Process, pid: u32) -> bool {
    p.state == "running" && p.pid == Some(pid)
}

/// The events of `id` so far, oldest first.
async fn events(m: &Running, id: &str) -> Vec<Event> {
    m.client().events(Some(id), 100).await.expect("events")
}

/// `(to, cause_kind, pid)` of each event: the story of a process.
fn story(events: &[Event]) -> Vec<(String, String, Option<u32>)> {
    events
        .iter()
        .map(|e| (e.to.clone(), e.cause_kind.clone(), e.pid))
        .collect()
}

/// The story `rows` (`(to, cause_kind, pid)`) tell.
fn expected(rows: &[(&str, &str, u32)]) -> Vec<(String, String, Option<u32>)> {
    rows.iter()
        .map(|&(to, kind, pid)| (to.to_string(), kind.to_string(), Some(pid)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn found_by_pid_file_reported_rediscovered_through_inotify_and_gone() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        // The test's own processes go too if it fails before `Running`'s guard.
        let _cleanup = KillOnDrop(t.dir.path().display().to_string());
        let file = t.path("run/ext.pid");
        std::fs::create_dir_all(file.parent().expect("dir")).expect("mkdir");
        let first = Outside::with_pidfile(&t, &file).await;
        // Relative to the config file's directory.
        let m = Running::start(t, &entry("ext", "{pid_file: run/ext.pid}", "")).await;
        let p = m.process("ext").await;
        assert!(running_as(&p, first.pid), "{p:#?}");
        assert_eq!(p.kind, "unmanaged");
        assert!(p.uptime_seconds.is_some(), "{p:#?}");

        // The detail: its pid, its usage from /proc, no limits.
        let out = m.cli(&["status", "ext", "-o", "json"]).await;
        out.ok();
        let d: ProcessDetail = out.json();
        assert_eq!(d.pids, [first.pid], "{d:#?}");
        let usage = d.usage.as_ref().expect("usage");
        assert!(usage.memory_bytes.is_some_and(|b| b > 0), "{d:#?}");
        assert_eq!(usage.processes, 1, "{d:#?}");
        assert!(usage.open_files.is_some_and(|n| n >= 1), "{d:#?}");
        assert!(usage.cpu_seconds.is_some(), "{d:#?}");
        assert_eq!(usage.source, "proc");
        assert!(d.limits.is_empty(), "{d:#?}");
        let why = d.last_transition.as_ref().expect("a transition");
        assert_eq!(why.cause_kind, "discovered");
        assert!(why.cause.contains("ext.pid (pid "), "{why:#?}");
        let out = m.cli(&["status", "ext"]).await;
        out.ok();
        let text = &out.stdout;
        assert!(text.contains(&format!("PID: {}\n", first.pid)), "{text}");
        assert!(text.contains("Found: once\n"), "{text}");
        assert!(!text.contains("Log file:"), "{text}");
        // /metrics has its usage too.
        let r = request(&Via::Unix(m.socket()), "GET", "/metrics", &[], None).await;
        assert_eq!(r.status, 200);
        let metrics = r.text();
        assert!(
            metrics.contains("procman_process_memory_bytes{process=\"ext\"}"),
            "{metrics}"
        );

        // The pid file now names another process while the first still
        // runs: no look happens while one is found, so only inotify can
        // tell, and the new process is watched.
        let second = Outside::with_pidfile(&m.t, &file).await;
        wait_for(&m, "ext", "watching the second process", |p| {
            running_as(p, second.pid)
        })
        .await;

        // It ends: `exited`, its end unknown (not our child). The pid file
        // still names it, dead: it stays `exited`.
        let second_pid = second.pid;
        second.kill().await;
        let p = wait_for(&m, "ext", "exited", |p| p.state == "exited").await;
        let end = p.last_exit.expect("last exit");
        assert_eq!((end.code, &end.signal), (None, &None), "{end:#?}");
        assert!(end.description.contains("unknown"), "{end:#?}");

        // A third process writes the file: found again.
        let third = Outside::with_pidfile(&m.t, &file).await;
        wait_for(&m, "ext", "running again", |p| running_as(p, third.pid)).await;
        assert_eq!(m.process("ext").await.runs, 3);

        let want = expected(&[
            ("running", "discovered", first.pid),
            ("running", "discovered", second_pid),
            ("exited", "gone", second_pid),
            ("running", "discovered", third.pid),
        ]);
        assert_eq!(story(&events(&m, "ext").await), want);
        first.untouched();
        third.untouched();
        m.stop().await;
    })
    .await
    .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn found_by_name_and_arguments_the_oldest_of_several_and_found_again() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        // The test's own processes go too if it fails before `Running`'s guard.
        let _cleanup = KillOnDrop(t.dir.path().display().to_string());
        let first = Outside::ready(&t).await;
        let second = Outside::ready(&t).await;
        // The test's directory is on the command line of its children only.
        let discovery = format!(
            "{{process_name: procman-testchild, argument_match: {:?}}}",
            format!("{}/outside.stamp run", t.dir.path().display())
        );
        let (first_pid, second_pid) = (first.pid, second.pid);
        let m = Running::start(t, &entry("ext", &discovery, "")).await;
        // Two match: the older is watched, with a warning naming the count.
        assert!(running_as(&m.process("ext").await, first.pid));
        let log = m
            .wait_manager_log("2 processes match process_name; watching the oldest")
            .await;
        assert!(
            log.contains("2 processes match process_name; watching the oldest"),
            "{log}"
        );

        // It ends: the other one is found at once.
        first.kill().await;
        wait_for(&m, "ext", "the second found", |p| running_as(p, second.pid)).await;
        // It ends too: nothing left, `exited`, until a new process of that
        // name appears and a look (every 2 s while none is found) sees it.
        second.kill().await;
        let p = wait_for(&m, "ext", "exited", |p| p.state == "exited").await;
        assert!(p
            .last_exit
            .is_some_and(|e| e.code.is_none() && e.signal.is_none()));
        let third = Outside::start(&m.t, &[]);
        wait_for(&m, "ext", "the third found", |p| running_as(p, third.pid)).await;

        let want = expected(&[
            ("running", "discovered", first_pid),
            ("exited", "gone", first_pid),
            ("running", "discovered", second_pid),
            ("exited", "gone", second_pid),
            ("running", "discovered", third.pid),
        ]);
        assert_eq!(story(&events(&m, "ext").await), want);
        third.untouched();
        m.stop().await;
    })
    .await
    .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn found_by_pid_never_signalled_and_left_running_by_the_manager() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        // The test's own processes go too if it fails before `Running`'s guard.
        let _cleanup = KillOnDrop(t.dir.path().display().to_string());
        let ext = Outside::ready(&t).await;
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr").port()
        };
        // `ext` fails its check (nobody listens there); `alive` passes a
        // `process` check on the same process.
        let failing = format!(
            "      health_check:\n        type: tcp\n        tcp_endpoint: \"127.0.0.1:{closed}\"\n        interval: 200ms\n        failure_threshold: 2\n"
        );
        let passing = "      health_check: {type: process, interval: 200ms}\n";
        let pid = format!("{{pid: {}}}", ext.pid);
        let entries = entry("ext", &pid, &failing) + &entry("alive", &pid, passing);
        let mut m = Running::start(t, &entries).await;

        let p = wait_for(&m, "ext", "unhealthy", |p| {
            p.health.as_deref() == Some("unhealthy")
        })
        .await;
        assert!(running_as(&p, ext.pid), "unhealthy, still reported running: {p:#?}");
        let d = m.client().process("ext").await.expect("detail");
        let hc = d.health_check.expect("a health check");
        assert!(hc.consecutive_failures >= 2, "{hc:#?}");
        assert_eq!(hc.last_error.as_deref(), Some("connection refused"), "{hc:#?}");
        wait_for(&m, "alive", "healthy", |p| p.health.as_deref() == Some("healthy")).await;

        // Every command that would act on it is refused, and says why.
        for action in ["stop", "restart", "start"] {
            let out = m.cli(&[action, "ext"]).await;
            assert_eq!(out.code(), 1, "{action}: {out:#?}");
            assert!(
                out.stderr.contains("process ext is unmanaged: procman only monitors it"),
                "{action}: {out:#?}"
            );
        }
        let out = m.cli(&["signal", "ext", "TERM"]).await;
        assert_eq!(out.code(), 1, "{out:#?}");
        assert!(out.stderr.contains("is unmanaged"), "{out:#?}");
        for path in ["stop", "restart", "start"] {
            let path = format!("/api/v1/processes/ext/{path}");
            let r = request(&Via::Unix(m.socket()), "POST", &path, &[], None).await;
            assert_eq!(r.status, 409, "{path}: {}", r.text());
            assert!(r.text().contains("unmanaged"), "{}", r.text());
        }
        // `stop --all` leaves it out.
        m.cli(&["stop", "--all"]).await.ok();
        let p = m.process("ext").await;
        assert!(running_as(&p, ext.pid), "{p:#?}");
        assert_eq!(p.runs, 1, "{p:#?}");
        ext.untouched();

        // The manager's shutdown (SIGTERM) leaves it running.
        signal_process(m.pid, Signal::TERM).expect("SIGTERM the manager");
        let end = m.exited(SEE).await;
        assert_eq!(end, ProcessEnd::Exited(0), "{}", m.log());
        ext.untouched();
        ext.kill().await;
    })
    .await
    .expect("watchdog");
}

fn find<'p>(ps: &'p [Process], id: &str) -> &'p Process {
    ps.iter()
        .find(|p| p.id == id)
        .unwrap_or_else(|| panic!("no {id}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_found_is_registered_with_the_reason_then_found_and_kept_at_a_detach() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        // The test's own processes go too if it fails before `Running`'s guard.
        let _cleanup = KillOnDrop(t.dir.path().display().to_string());
        let ext = Outside::ready(&t).await;
        let pid = ext.pid;
        // `late`'s pid file is in a directory that does not exist yet.
        let entries = entry("ext", &format!("{{pid: {pid}}}"), "")
            + &entry("late", "{pid_file: later/late.pid}", "");
        let mut m = Running::launch(t, &entries);
        let ps = m
            .wait_until("ext found, late not", |ps| {
                find(ps, "ext").state == "running" && find(ps, "late").last_error.is_some()
            })
            .await;
        assert_eq!(find(&ps, "ext").pid, Some(pid));
        let late = find(&ps, "late");
        assert_eq!(late.state, "registered");
        let reason = late.last_error.clone().expect("a reason");
        assert!(
            reason.ends_with("later/late.pid does not exist"),
            "{reason}"
        );

        // A pid is looked for once: after it ended, `exited` for good.
        ext.kill().await;
        wait_for(&m, "ext", "exited", |p| p.state == "exited").await;

        // The directory and the file appear: found on a look.
        std::fs::create_dir(m.t.path("later")).expect("mkdir");
        let later = Outside::with_pidfile(&m.t, &m.t.path("later/late.pid")).await;
        let p = wait_for(&m, "late", "found", |p| running_as(p, later.pid)).await;
        assert_eq!(p.last_error, None);

        // `shutdown --keep-processes` detaches: nothing is signalled.
        m.cli(&["shutdown", "--keep-processes"]).await.ok();
        assert_eq!(m.exited(SEE).await, ProcessEnd::Exited(0), "{}", m.log());
        later.untouched();
        later.kill().await;
    })
    .await
    .expect("watchdog");
}
