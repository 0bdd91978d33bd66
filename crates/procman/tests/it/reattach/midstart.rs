//! A manager SIGKILLed in the middle of a large start: every child it had
//! spawned by then is re-attached by the next manager (the same pid), and
//! none runs twice, with cgroups and without them (as `nobody`). The
//! state file of a child is written as soon as the child exists, before
//! anything slow, so the kill finds none without one.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use procman_api::client::Client;
use procman_api::Process;
use procman_core::outcome::{ProcessEnd, Signal};
use procman_core::platform::signal_process;
use procman_core::state::record::ProcessRecord;

use crate::cli_control::SETTLE;
use crate::support::*;

/// Processes in the config.
const PROCESSES: usize = 300;
/// The manager is killed as soon as this many children run.
const KILL_AT: usize = 10;

/// How the managers of one test run: as this user, or as `nobody` through
/// `setpriv` (no cgroups then).
struct Launcher {
    setpriv: Option<PathBuf>,
    procman: PathBuf,
}

impl Launcher {
    fn run(
        &self,
        config: &Path,
    ) -> (
        u32,
        tokio::sync::oneshot::Receiver<ProcessEnd>,
        tempfile::NamedTempFile,
    ) {
        let procman = self.procman.display().to_string();
        let config = config.display().to_string();
        match &self.setpriv {
            None => start(&self.procman, &["run", "-c", &config], &[]),
            Some(setpriv) => {
                let (uid, gid) = (
                    format!("--reuid={}", NOBODY.0),
                    format!("--regid={}", NOBODY.1),
                );
                let args = [
                    uid.as_str(),
                    gid.as_str(),
                    "--clear-groups",
                    "--",
                    &procman,
                    "run",
                    "-c",
                    &config,
                ];
                start(setpriv, &args, &[])
            }
        }
    }
}

/// The live test children of the config in `t`: pid → the id whose stamp
/// file is on its command line. A child not yet past its exec still shows
/// the manager's command line, and is not counted.
fn children(t: &Scratch, program: &Path) -> BTreeMap<u32, String> {
    let name = program
        .file_name()
        .expect("a file name")
        .to_string_lossy()
        .into_owned();
    let dir = t.dir.path().display().to_string();
    procs_mentioning(&dir)
        .into_iter()
        .filter(|(_, cmdline)| {
            cmdline
                .split(' ')
                .next()
                .is_some_and(|p| p.ends_with(&name))
        })
        .filter_map(|(pid, cmdline)| {
            let stamp = cmdline.split(' ').find(|a| a.ends_with(".stamp"))?;
            let id = Path::new(stamp).file_stem()?.to_string_lossy().into_owned();
            Some((pid, id))
        })
        .collect()
}

/// Waits until the children stop changing (those spawned just before the
/// kill finish their exec) for a quarter of a second.
async fn settled_children(t: &Scratch, program: &Path) -> BTreeMap<u32, String> {
    let deadline = Instant::now() + SETTLE;
    let mut last = children(t, program);
    let mut since = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(25)).await;
        let now = children(t, program);
        if now != last {
            (last, since) = (now, Instant::now());
        } else if since.elapsed() >= Duration::from_millis(250) {
            return last;
        }
        assert!(
            Instant::now() < deadline,
            "the children never settled: {last:?}"
        );
    }
}

async fn killed_mid_start(nobody: bool) {
    let t = Scratch::new();
    let (launcher, program) = if nobody {
        give_to_nobody(&t);
        let setpriv = procman_core::platform::resolve_program(
            "setpriv",
            Path::new("/"),
            std::env::var_os("PATH").as_ref(),
        );
        let Ok(setpriv) = setpriv else {
            return skip_or_fail("no setpriv (util-linux)");
        };
        let procman = runnable_by_nobody(&t, Path::new(procman()));
        (
            Launcher {
                setpriv: Some(setpriv),
                procman,
            },
            runnable_by_nobody(&t, child()),
        )
    } else {
        let procman = PathBuf::from(procman());
        (
            Launcher {
                setpriv: None,
                procman,
            },
            child().to_path_buf(),
        )
    };
    let entries: String = (0..PROCESSES)
        .map(|i| {
            let stamp = t.path(&format!("p{i}.stamp"));
            format!(
                "  - id: \"p{i}\"\n    management:\n      control:\n        executable: \"{}\"\n        arguments: [\"--stamp\", \"{}\", \"run\"]\n",
                program.display(),
                stamp.display()
            )
        })
        .collect();
    let config = t.path("procman.yaml");
    std::fs::write(&config, format!("{}{entries}", t.header())).expect("write config");
    let _cleanup = KillOnDrop(t.dir.path().display().to_string());

    // The first manager, killed as soon as KILL_AT children run.
    let (pid, exit, log) = launcher.run(&config);
    let deadline = Instant::now() + SETTLE;
    while children(&t, &program).len() < KILL_AT {
        assert!(
            Instant::now() < deadline,
            "fewer than {KILL_AT} children after {SETTLE:?}; manager log:\n{}",
            std::fs::read_to_string(log.path()).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    signal_process(pid, Signal::KILL).expect("SIGKILL the manager");
    let end = tokio::time::timeout(SETTLE, exit)
        .await
        .expect("the manager ends")
        .expect("status");
    assert!(
        matches!(end, ProcessEnd::Signaled { signal, .. } if signal == Signal::KILL),
        "{end:?}"
    );
    let before = settled_children(&t, &program).await;
    assert!(before.len() >= KILL_AT, "{before:?}");
    assert!(
        before.len() < PROCESSES,
        "the kill came after the whole start: nothing was tested"
    );
    let ids: BTreeSet<&String> = before.values().collect();
    assert_eq!(
        ids.len(),
        before.len(),
        "a process ran twice under the first manager: {before:?}"
    );

    // The next manager re-attaches to every one of them, and starts the rest.
    let (pid2, exit2, log2) = launcher.run(&config);
    let client = Client::unix(t.path("state").join(procman_api::SOCKET_NAME));
    let deadline = Instant::now() + SETTLE;
    let listed: Vec<Process> = loop {
        let ps = client.processes().await.unwrap_or_default();
        if ps.len() == PROCESSES && ps.iter().all(|p| p.state == "running") {
            break ps;
        }
        assert!(
            Instant::now() < deadline,
            "not every process running after {SETTLE:?}: {:?}\nmanager log:\n{}",
            ps.iter()
                .filter(|p| p.state != "running")
                .collect::<Vec<_>>(),
            std::fs::read_to_string(log2.path()).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let reported: BTreeMap<String, u32> = listed
        .iter()
        .filter_map(|p| Some((p.id.clone(), p.pid?)))
        .collect();
    for (pid, id) in &before {
        assert_eq!(
            reported.get(id),
            Some(pid),
            "{id} (pid {pid}, spawned by the killed manager) was not re-attached; manager log:\n{}",
            std::fs::read_to_string(log2.path()).unwrap_or_default()
        );
    }
    // One copy of each, no more: every live test child is the one reported.
    let after = settled_children(&t, &program).await;
    let mut per_id: BTreeMap<&String, Vec<u32>> = BTreeMap::new();
    for (pid, id) in &after {
        per_id.entry(id).or_default().push(*pid);
    }
    let twice: Vec<_> = per_id.iter().filter(|(_, pids)| pids.len() > 1).collect();
    assert!(twice.is_empty(), "processes running twice: {twice:?}");
    assert_eq!(after.len(), PROCESSES, "{after:?}");

    signal_process(pid2, Signal::TERM).expect("stop the manager");
    let end = tokio::time::timeout(SETTLE, exit2)
        .await
        .expect("the manager ends")
        .expect("status");
    assert_eq!(
        end,
        ProcessEnd::Exited(0),
        "{}",
        std::fs::read_to_string(log2.path()).unwrap_or_default()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manager_killed_mid_start_leaves_every_child_to_the_next() {
    tokio::time::timeout(WATCHDOG, killed_mid_start(false))
        .await
        .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_cgroups_a_manager_killed_mid_start_leaves_every_child_to_the_next() {
    if !is_root() {
        return skip_or_fail("not root: the test runs procman as nobody");
    }
    tokio::time::timeout(WATCHDOG, killed_mid_start(true))
        .await
        .expect("watchdog");
}

/// Makes `id`'s record one written just before a clone: no pid (and
/// whatever else `change` makes of it).
fn unname(state: &Path, id: &str, change: impl FnOnce(&mut ProcessRecord)) {
    let mut record = ProcessRecord::load(state, id)
        .expect("readable")
        .expect("a state file");
    record.pid = None;
    record.start_time = None;
    change(&mut record);
    record.save(state).expect("save the state file");
}

/// A manager killed after a clone but before it named the child in the
/// state file (and before the run's separator reached its log): the next
/// manager finds the child by the pipes it holds, re-attaches to it, and
/// begins the run in the log with its separator, as a spawn does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_found_by_its_pipes_gets_its_runs_separator() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let entries = crate::cli_control::svc_with(&t, "web", &["run"], "");
        let mut m = crate::cli_control::Running::start(t, &entries).await;
        let pids = super::started_pids(&m, &["web"]).await;
        super::wait_recorded(&m, &pids).await;
        m.crash().await;
        // As the record and the log are just before the clone: no pid, no
        // line of this run.
        let state = m.t.path("state");
        unname(&state, "web", |_| {});
        let log = state.join("logs").join("web.log");
        std::fs::write(&log, "").expect("empty web's log");

        super::rerun_and_reattach(&mut m, &pids).await;
        let pid = pids["web"];
        let want = format!("----- run 1 pid {pid} -----");
        let deadline = Instant::now() + SETTLE;
        while !m.process_log("web").contains(&want) {
            assert!(
                Instant::now() < deadline,
                "no `{want}` in web's log:\n{}\nmanager log:\n{}",
                m.process_log("web"),
                m.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        m.cli(&["shutdown"]).await.ok();
        assert_eq!(m.exited(SETTLE).await, ProcessEnd::Exited(0), "{}", m.log());
    })
    .await
    .expect("watchdog");
}

/// A manager killed while restarting a process, before the new child was
/// named and after it had already ended (a crash loop): the next manager
/// keeps the process's counters and lets its restart policy decide, rather
/// than start it afresh at run 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_cut_short_by_a_crash_keeps_the_counters() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let policy =
            "restart_policy:\n  strategy: always\n  restart_delay: 0s\n  max_attempts: 0\n";
        let entries = crate::cli_control::svc_with(&t, "web", &["run"], policy);
        let mut m = crate::cli_control::Running::start(t, &entries).await;
        let pids = super::started_pids(&m, &["web"]).await;
        super::wait_recorded(&m, &pids).await;
        m.crash().await;
        let old = pids["web"];
        signal_process(old, Signal::KILL).expect("kill web");
        wait_gone(&[old], SETTLE).await;
        // As the record is just before the clone of run 5: no pid, and the
        // pipes it names are held by no process.
        unname(&m.t.path("state"), "web", |record| {
            record.run = 5;
            record.restarts = 4;
        });

        m.rerun().await;
        let ps = m
            .wait_until("web restarted by its policy", |ps| {
                ps[0].state == "running" && ps[0].pid.is_some_and(|p| p != old)
            })
            .await;
        assert!(
            ps[0].runs == 6 && ps[0].restarts == 5,
            "the counters were not kept: {:?}\n{}",
            ps[0],
            m.log()
        );
        m.cli(&["shutdown"]).await.ok();
        assert_eq!(m.exited(SETTLE).await, ProcessEnd::Exited(0), "{}", m.log());
    })
    .await
    .expect("watchdog");
}
