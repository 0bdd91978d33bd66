//! What an earlier manager on the same state directory left in its
//! cgroups (it was killed, and removed nothing): processes that would run
//! beside their new copies, or unsupervised. They are stopped at start,
//! except the trees of processes being re-attached.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::cgroup;
use super::child::Member;
use crate::outcome::Signal;

/// Processes still in a process's cgroup when a manager starts were left
/// by an earlier manager on the same state directory that was killed or
/// crashed: they are stopped, so that no second copy runs beside them.
/// (Processes with a valid state file are re-attached instead, and their
/// trees never come here.) Bounded: at most 2 s.
pub(crate) fn stop_leftovers(id: &str, dir: &Path) {
    if kill_leftovers(id, dir) {
        wait_emptied(&[dir.to_path_buf()]);
    }
}

/// Whether processes are in the cgroup `dir`: `cgroup.events` says so on
/// v2; a v1 directory has only its list.
fn populated(dir: &Path) -> bool {
    if dir.join("cgroup.events").exists() {
        cgroup::populated(dir)
    } else {
        !cgroup::members(dir).is_empty()
    }
}

/// SIGKILL to everything in `dir`, saying so; false if it was empty.
fn kill_leftovers(id: &str, dir: &Path) -> bool {
    if !populated(dir) {
        return false;
    }
    let count = cgroup::members(dir).len();
    tracing::warn!(process = %id, count, dir = %dir.display(),
        "processes left by an earlier manager on this state directory; stopping them so that no second copy runs");
    if !cgroup::kill(dir) {
        for pid in cgroup::members(dir) {
            if let Some(m) = Member::open(pid, |_, _| true) {
                let _ = m.signal(Signal::KILL);
            }
        }
    }
    true
}

/// Waits until every cgroup of `dirs` is empty, at most 2 s in all.
fn wait_emptied(dirs: &[PathBuf]) {
    let deadline = Instant::now() + Duration::from_secs(2);
    while dirs.iter().any(|d| populated(d)) && Instant::now() < deadline {
        // At start-up, before any supervision: a short, bounded wait.
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Stops and removes every process cgroup an earlier manager on the same
/// state directory left under `root` (killed, it removed nothing), but
/// those of the ids in `keep` (being re-attached): the processes of ids
/// still in the config would run beside their new copies, and those of
/// ids no longer there would run unsupervised.
pub(crate) fn sweep(root: &Path, keep: &[String]) {
    let mut swept = Vec::new();
    for entry in std::fs::read_dir(root).into_iter().flatten().flatten() {
        let dir = entry.path();
        if !dir.is_dir() {
            continue;
        }
        let id = entry.file_name().to_string_lossy().into_owned();
        if keep
            .iter()
            .any(|k| *k == id || super::quota::v1_name(k) == id)
        {
            continue;
        }
        // Every tree is killed first, then all are waited for together: a
        // hundred leftovers cost one wait, not a hundred.
        kill_leftovers(&id, &dir);
        swept.push(dir);
    }
    wait_emptied(&swept);
    for dir in swept {
        if let Err(e) = std::fs::remove_dir(&dir) {
            tracing::warn!(dir = %dir.display(), error = %e,
                "cannot remove a cgroup left by an earlier manager");
        }
    }
}
