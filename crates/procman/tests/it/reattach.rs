//! Re-attach: a manager that died (SIGKILL) or detached (`shutdown
//! --keep-processes`) leaves its processes running, and the next `procman
//! run` on the same state directory takes them up again: the same pids
//! (as the children's own stamps say), no second copy, every counter line
//! in the log once and in order across the gap, and supervision as before.
//! What is not the same process (a recycled pid, a run that ended while no
//! manager ran, a tree with no state file, an id no longer configured) is
//! never adopted.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use procman_api::{Event, Process};
use procman_core::outcome::{ProcessEnd, Signal};
use procman_core::platform::{adopt, signal_process};
use procman_core::state::record::ProcessRecord;

use crate::cli_control::{svc, svc_with, Running, SETTLE};
use crate::logs::{plain_file, Plain};
use crate::support::*;

mod flood;
mod midstart;
mod refusals;

/// A child writing `line N` every 10 ms, for far longer than any test.
const COUNTER: [&str; 4] = ["lines", "100000000", "--interval", "10ms"];

/// How many more lines each counter must write under the new manager
/// before the logs are judged (2 s at 10 ms).
const MORE_LINES: u64 = 200;

/// The pid each process's run started with, from the `S` stamps the test
/// child itself wrote (one start each is expected).
async fn started_pids(m: &Running, ids: &[&str]) -> BTreeMap<String, u32> {
    let mut out = BTreeMap::new();
    for id in ids {
        let starts = starts(m, id, 1).await;
        assert_eq!(starts.len(), 1, "{id} started more than once: {starts:?}");
        out.insert(id.to_string(), starts[0]);
    }
    out
}

/// The pids of the first `n` (or more) starts of `id`'s test child.
async fn starts(m: &Running, id: &str, n: usize) -> Vec<u32> {
    let stamp = m.t.path(&format!("{id}.stamp"));
    wait_starts(&stamp, n, SETTLE)
        .await
        .into_iter()
        .filter(|(kind, ..)| *kind == 'S')
        .map(|(_, _, pid)| pid)
        .collect()
}

/// Waits until each process's state file names the pid `pids` gives it:
/// the file is written in the background after the spawn, and a crash
/// before that leaves nothing to re-attach to.
async fn wait_recorded(m: &Running, pids: &BTreeMap<String, u32>) {
    let state = m.t.path("state");
    let deadline = Instant::now() + SETTLE;
    for (id, pid) in pids {
        loop {
            let record = ProcessRecord::load(&state, id).ok().flatten();
            if record.as_ref().and_then(|r| r.pid) == Some(*pid) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{id}'s state file does not name pid {pid}: {record:#?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Each process's pid as the manager reports it.
fn reported(ps: &[Process]) -> BTreeMap<String, u32> {
    ps.iter()
        .filter_map(|p| Some((p.id.clone(), p.pid?)))
        .collect()
}

/// Whether every process runs, each with the pid `want` gives it.
fn all_running_as(ps: &[Process], want: &BTreeMap<String, u32>) -> bool {
    ps.len() == want.len()
        && ps
            .iter()
            .all(|p| p.state == "running" && p.pid.is_some() && p.pid == want.get(&p.id).copied())
}

/// Runs a new manager and waits until it runs every process with the pid
/// `before` gives it, as the API and `status -o json` say; each test child
/// started once (no second copy was spawned).
async fn rerun_and_reattach(m: &mut Running, before: &BTreeMap<String, u32>) {
    m.rerun().await;
    m.wait_until("every process re-attached with its pid", |ps| {
        all_running_as(ps, before)
    })
    .await;
    let out = m.cli(&["status", "-o", "json"]).await;
    out.ok();
    let listed: Vec<Process> = out.json();
    assert!(all_running_as(&listed, before), "{out:#?}");
    let ids: Vec<&str> = before.keys().map(String::as_str).collect();
    assert_eq!(&started_pids(m, &ids).await, before);
}

/// The live test children of this test (their `--stamp` is in its
/// directory), sorted.
fn test_children(m: &Running) -> Vec<u32> {
    let name = child()
        .file_name()
        .expect("a file name")
        .to_string_lossy()
        .into_owned();
    let mut pids: Vec<u32> = procs_mentioning(&m.t.dir.path().display().to_string())
        .into_iter()
        .filter(|(_, cmdline)| cmdline.contains(&name))
        .map(|(pid, _)| pid)
        .collect();
    pids.sort_unstable();
    pids
}

fn sorted(pids: &BTreeMap<String, u32>) -> Vec<u32> {
    let mut v: Vec<u32> = pids.values().copied().collect();
    v.sort_unstable();
    v
}

/// The highest `line N` in a process log read while it is being written
/// (a last line read half-way only makes the number smaller).
fn last_count(log: &str) -> u64 {
    log.lines()
        .filter_map(|l| l.rsplit_once(" stdout line ")?.1.parse().ok())
        .max()
        .unwrap_or(0)
}

/// Waits until `id`'s counter has written line `n`.
async fn wait_count(m: &Running, id: &str, n: u64) {
    let path = m.t.path("state").join("logs").join(format!("{id}.log"));
    let deadline = Instant::now() + SETTLE;
    while last_count(&m.process_log(id)) < n {
        assert!(
            Instant::now() < deadline,
            "{id} did not reach line {n} in {}; manager log:\n{}",
            path.display(),
            m.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The numbers of the `line N` records of run `run` in a finished plain
/// log, in file order.
fn counted(log: &Path, run: u32) -> Vec<u64> {
    let mut current = 0;
    let mut out = Vec::new();
    for record in plain_file(log) {
        match record {
            Plain::Sep { run: r, .. } => current = r,
            Plain::Rec { stream, bytes, .. } if current == run && stream == "stdout" => {
                let text = String::from_utf8_lossy(&bytes).into_owned();
                let n = text
                    .strip_prefix("line ")
                    .and_then(|n| n.parse().ok())
                    .unwrap_or_else(|| panic!("not a counter line in {}: {text:?}", log.display()));
                out.push(n);
            }
            _ => {}
        }
    }
    out
}

/// Asserts that `nums` is 1, 2, 3, … with no gap and no duplicate, naming
/// the missing and repeated numbers (and where the crash was) if not.
fn assert_counts_once_in_order(id: &str, nums: &[u64], at_crash: u64) {
    let want: Vec<u64> = (1..=nums.len() as u64).collect();
    if nums == want.as_slice() {
        return;
    }
    let max = nums.iter().copied().max().unwrap_or(0);
    let mut seen = vec![0u32; max as usize + 1];
    for &n in nums {
        seen[n as usize] += 1;
    }
    let missing: Vec<u64> = (1..=max).filter(|&n| seen[n as usize] == 0).collect();
    let repeated: Vec<u64> = (1..=max).filter(|&n| seen[n as usize] > 1).collect();
    let disorder = nums.windows(2).position(|w| w[1] <= w[0]);
    panic!(
        "{id}: {} lines up to {max}, the log held up to {at_crash} at the crash; \
         missing {missing:?}, repeated {repeated:?}, first out of order at index {disorder:?}",
        nums.len()
    );
}

/// Asserts that the manager log has a transition of `id` with `cause`,
/// waiting for it: the log is written by its own thread, so a line can
/// follow the state the API already shows.
async fn assert_logged(m: &Running, id: &str, cause: &str) {
    let process = format!("process={id} ");
    let cause = format!("cause={cause}");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let log = m.log();
        if log
            .lines()
            .any(|l| l.contains(&process) && l.contains(&cause))
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no transition of {id} with {cause:?} in the manager log:\n{log}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Every transition in the event journal, as `procman events` shows it.
async fn journal(m: &Running) -> Vec<Event> {
    m.client().events(None, 0).await.expect("events")
}

/// The transitions of `id` among `events`.
fn events_of<'a>(events: &'a [Event], id: &str) -> Vec<&'a Event> {
    events.iter().filter(|e| e.process == id).collect()
}

/// Asserts that the journal says the new manager took up `id` as the run
/// with `pid`.
fn assert_reattached(events: &[Event], id: &str, pid: u32) {
    let mine = events_of(events, id);
    assert!(
        mine.iter().any(|e| e.cause_kind == "reattached"
            && e.from == "registered"
            && e.to == "running"
            && e.pid == Some(pid)
            && e.cause == "re-attached by a new manager"),
        "no re-attach of {id} (pid {pid}) among its events: {mine:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigkilled_manager_is_succeeded_by_one_that_reattaches_to_every_child() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let counters = ["count0", "count1", "count2", "count3"];
        let sleepers = ["idle0", "idle1", "idle2", "idle3", "idle4", "idle5"];
        let ids: Vec<&str> = counters.iter().chain(&sleepers).copied().collect();
        let mut entries: String = counters.iter().map(|id| svc(&t, id, &COUNTER)).collect();
        entries.extend(sleepers.iter().map(|id| svc(&t, id, &["run"])));
        let mut m = Running::start(t, &entries).await;
        let before = started_pids(&m, &ids).await;
        let ps = m.client().processes().await.expect("processes");
        assert_eq!(
            reported(&ps),
            before,
            "the manager's pids are the children's own"
        );
        for id in counters {
            wait_count(&m, id, 20).await;
        }
        wait_recorded(&m, &before).await;

        m.crash().await;
        let at_crash: BTreeMap<&str, u64> = counters
            .iter()
            .map(|id| (*id, last_count(&m.process_log(id))))
            .collect();
        let gone: Vec<u32> = sorted(&before).into_iter().filter(|&p| !alive(p)).collect();
        assert!(
            gone.is_empty(),
            "processes ended with the manager: {gone:?}"
        );

        rerun_and_reattach(&mut m, &before).await;
        // No second copy: these processes only.
        assert_eq!(test_children(&m), sorted(&before));
        for (id, pid) in &before {
            let line = format!(
                "process={id} pid={pid} from=registered to=running cause=re-attached by a new manager"
            );
            // Waited for: the log's own thread can write it after the state.
            m.wait_manager_log(&line).await;
        }

        // The counters are read on.
        for id in counters {
            wait_count(&m, id, at_crash[id] + MORE_LINES).await;
        }

        // Supervised again: a re-attached child that dies is restarted.
        let victim = before["idle0"];
        signal_process(victim, Signal::KILL).expect("kill idle0");
        let ps = m
            .wait_until("idle0 restarted by its policy", |ps| {
                ps.iter().any(|p| {
                    p.id == "idle0" && p.state == "running" && p.pid.is_some_and(|p| p != victim)
                })
            })
            .await;
        let idle0 = ps.iter().find(|p| p.id == "idle0").expect("idle0");
        assert_eq!(idle0.restarts, 1, "{idle0:#?}");
        assert_eq!(starts(&m, "idle0", 2).await[1], idle0.pid.expect("a pid"));
        wait_gone(&[victim], SETTLE).await;
        let ps = m.client().processes().await.expect("processes");
        let others: Vec<&Process> = ps.iter().filter(|p| p.id != "idle0").collect();
        assert!(
            others
                .iter()
                .all(|p| p.state == "running" && p.pid == before.get(&p.id).copied()),
            "{others:#?}"
        );

        let last = sorted(&reported(&ps));
        let logs = m.t.path("state").join("logs");
        let events = journal(&m).await;
        m.cli(&["shutdown"]).await.ok();
        assert_eq!(m.exited(SETTLE).await, ProcessEnd::Exited(0), "{}", m.log());
        wait_gone(&last, SETTLE).await;
        for id in counters {
            let nums = counted(&logs.join(format!("{id}.log")), 1);
            assert_counts_once_in_order(id, &nums, at_crash[id]);
            assert!(
                nums.len() as u64 >= at_crash[id] + MORE_LINES,
                "{id}: {}",
                nums.len()
            );
        }
        for (id, pid) in &before {
            assert_reattached(&events, id, *pid);
        }
    })
    .await
    .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_keep_processes_leaves_them_for_the_next_manager() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let ids = ["count", "web", "worker"];
        let entries = [
            svc(&t, "count", &COUNTER),
            svc(&t, "web", &["run"]),
            svc(&t, "worker", &["run"]),
        ]
        .concat();
        let mut m = Running::start(t, &entries).await;
        let before = started_pids(&m, &ids).await;
        wait_count(&m, "count", 20).await;

        m.cli(&["shutdown", "--keep-processes"]).await.ok();
        assert_eq!(m.exited(SETTLE).await, ProcessEnd::Exited(0), "{}", m.log());
        let at_detach = last_count(&m.process_log("count"));
        let state = m.t.path("state");
        for (id, pid) in &before {
            assert!(alive(*pid), "{id} (pid {pid}) ended with the manager");
            let record = ProcessRecord::load(&state, id).expect("readable");
            assert_eq!(record.and_then(|r| r.pid), Some(*pid), "{id}'s state file");
        }

        rerun_and_reattach(&mut m, &before).await;
        wait_count(&m, "count", at_detach + MORE_LINES).await;

        // A re-attached run detaches in turn and is re-attached again: its
        // pipes go along each time, and its output is read on.
        m.cli(&["shutdown", "--keep-processes"]).await.ok();
        assert_eq!(m.exited(SETTLE).await, ProcessEnd::Exited(0), "{}", m.log());
        let record = ProcessRecord::load(&state, "count")
            .expect("readable")
            .expect("a state file");
        assert_eq!(record.pipes.len(), 2, "{record:?}");
        let at_second = last_count(&m.process_log("count"));
        rerun_and_reattach(&mut m, &before).await;
        wait_count(&m, "count", at_second + MORE_LINES).await;

        let events = journal(&m).await;
        m.cli(&["shutdown"]).await.ok();
        assert_eq!(m.exited(SETTLE).await, ProcessEnd::Exited(0), "{}", m.log());
        wait_gone(&sorted(&before), SETTLE).await;
        assert_eq!(ProcessRecord::ids(&state), Vec::<String>::new());
        let nums = counted(&state.join("logs").join("count.log"), 1);
        assert_counts_once_in_order("count", &nums, at_detach);
        for (id, pid) in &before {
            assert_reattached(&events, id, *pid);
        }
    })
    .await
    .expect("watchdog");
}
