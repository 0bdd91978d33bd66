//! The set of processes that belong to one supervised process.
//!
//! With a cgroup v2 directory per process (the normal case on Linux as
//! root, or with a delegated subtree), every descendant is tracked by the
//! kernel, whatever it does with sessions, groups or double forks. Without
//! one, the tree is the child's process group plus its descendants found in
//! `/proc`; a grandchild that both left the group and lost its parent before
//! the stop escapes that fallback (the docs say so).

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{cgroup, group_alive, process_alive, proctree, signal_group, signal_process};
use crate::outcome::Signal;

/// Where the per-process trees of one manager live.
#[derive(Debug, Clone)]
pub struct TreeRoot {
    dir: Option<PathBuf>,
}

impl TreeRoot {
    /// Creates `<own cgroup v2>/<name>` for this manager's processes, or
    /// falls back to process groups and `/proc` (saying why, once).
    pub fn create(name: &str) -> TreeRoot {
        let Some(own) = cgroup::own_cgroup() else {
            tracing::info!("no cgroup v2 hierarchy mounted; tracking process trees through /proc");
            return TreeRoot { dir: None };
        };
        let dir = own.join(name);
        match std::fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                tracing::info!(dir = %dir.display(), error = %e,
                    "cannot create a cgroup; tracking process trees through /proc");
                return TreeRoot { dir: None };
            }
        }
        tracing::debug!(dir = %dir.display(), "process trees tracked in cgroup v2");
        TreeRoot { dir: Some(dir) }
    }

    /// A root that never uses cgroups (tests of the fallback, other OSes).
    pub fn without_cgroups() -> TreeRoot {
        TreeRoot { dir: None }
    }

    /// The tree of process `id` (its cgroup is created now).
    pub fn tree(&self, id: &str) -> Tree {
        let cgroup = self.dir.as_ref().and_then(|d| {
            let dir = d.join(id);
            match std::fs::create_dir(&dir) {
                Ok(()) => Some(dir),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Some(dir),
                Err(e) => {
                    tracing::warn!(dir = %dir.display(), error = %e, "cannot create a cgroup");
                    None
                }
            }
        });
        Tree {
            cgroup,
            known: Vec::new(),
        }
    }

    pub fn uses_cgroups(&self) -> bool {
        self.dir.is_some()
    }

    /// SIGKILL to every process in every tree of this root, synchronously
    /// (the last resort when a manager is dropped without a stop). Only
    /// possible with cgroups; the fallback has nothing to enumerate here.
    pub fn kill_everything(&self) {
        let Some(dir) = &self.dir else { return };
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() && cgroup::populated(&path) && !cgroup::kill(&path) {
                for pid in cgroup::members(&path) {
                    let _ = signal_process(pid, Signal::KILL);
                }
            }
        }
    }

    /// Removes the (empty) cgroup directories. Trees must have been removed.
    pub fn remove(&self) {
        if let Some(dir) = &self.dir {
            if let Err(e) = std::fs::remove_dir(dir) {
                tracing::debug!(dir = %dir.display(), error = %e, "cgroup not removed");
            }
        }
    }
}

/// One supervised process's tree of processes.
#[derive(Debug)]
pub struct Tree {
    cgroup: Option<PathBuf>,
    /// Fallback only: descendants seen while their ancestor was alive.
    known: Vec<u32>,
}

impl Tree {
    pub fn cgroup(&self) -> Option<&Path> {
        self.cgroup.as_deref()
    }

    /// The cgroup directory, opened for `clone3(CLONE_INTO_CGROUP)`.
    pub(crate) fn dir_fd(&self) -> Option<OwnedFd> {
        let dir = self.cgroup.as_ref()?;
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY)
            .open(dir)
            .map(OwnedFd::from)
            .ok()
    }

    /// `cgroup.procs`, opened for the spawner to join the child before exec.
    pub(crate) fn procs_fd(&self) -> Option<OwnedFd> {
        let dir = self.cgroup.as_ref()?;
        match cgroup::open_procs(dir) {
            Ok(fd) => Some(fd),
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot open cgroup.procs");
                None
            }
        }
    }

    /// Every process of the tree now, `leader` included while it lives.
    pub fn members(&mut self, leader: Option<u32>) -> Vec<u32> {
        if let Some(dir) = &self.cgroup {
            return cgroup::members(dir);
        }
        // Fallback: remember descendants while the leader can still be
        // walked from, so that they are still ours after it dies.
        if let Some(l) = leader.filter(|&l| process_alive(l)) {
            for p in proctree::descendants(l) {
                if !self.known.contains(&p) {
                    self.known.push(p);
                }
            }
        }
        self.known.retain(|&p| process_alive(p));
        let mut all: Vec<u32> = leader.filter(|&l| process_alive(l)).into_iter().collect();
        all.extend(self.known.iter().copied());
        all
    }

    /// Sends `sig` to the leader's group and to every member (so also to a
    /// grandchild that left the group), as systemd's control-group mode does.
    pub fn signal_all(&mut self, leader: Option<u32>, sig: Signal) {
        // The `/proc` fallback must list the members first: once the leader
        // dies its children are re-parented and cannot be found from it. A
        // cgroup keeps them, so there the group is signalled at once.
        let early = if self.cgroup.is_some() {
            Vec::new()
        } else {
            self.members(leader)
        };
        if let Some(l) = leader {
            let _ = signal_group(l, sig);
        }
        let members = if self.cgroup.is_some() {
            self.members(leader)
        } else {
            early
        };
        for pid in members {
            let _ = signal_process(pid, sig);
        }
    }

    /// SIGKILL to everything in the tree.
    pub fn kill_all(&mut self, leader: Option<u32>) {
        if let Some(dir) = &self.cgroup {
            if cgroup::kill(dir) {
                return;
            }
        }
        self.signal_all(leader, Signal::KILL);
    }

    /// True when nothing of the tree is left (zombies not yet reaped count
    /// as gone in the fallback, as they hold no resources but a pid).
    pub fn is_empty(&mut self, leader: Option<u32>) -> bool {
        if let Some(dir) = &self.cgroup {
            return !cgroup::populated(dir);
        }
        let group = leader.is_some_and(group_alive);
        !group && self.members(leader).iter().all(|&p| is_zombie(p))
    }

    /// Waits until the tree is empty or `deadline` passes; true if empty.
    pub async fn wait_empty(&mut self, leader: Option<u32>, deadline: Instant) -> bool {
        if let Some(dir) = self.cgroup.clone() {
            return cgroup::wait_empty(&dir, deadline).await;
        }
        // No kernel event exists for "these pids are gone" without a cgroup:
        // check at a short, bounded interval, only while a stop is pending.
        loop {
            if self.is_empty(leader) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Deletes the cgroup directory (it must be empty).
    pub fn remove(&self) {
        if let Some(dir) = &self.cgroup {
            if let Err(e) = std::fs::remove_dir(dir) {
                tracing::debug!(dir = %dir.display(), error = %e, "cgroup not removed");
            }
        }
    }
}

fn is_zombie(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rfind(')')
            .and_then(|i| stat[i + 1..].split_ascii_whitespace().next())
            .is_some_and(|s| s == "Z" || s == "X"),
    }
}
