//! The set of processes that belong to one supervised process.
//!
//! With a cgroup v2 directory per process (the normal case on Linux as
//! root, or with a delegated subtree), every descendant is tracked by the
//! kernel, whatever it does with sessions, groups or double forks. Without
//! one, the tree is the child's process group plus its descendants found in
//! `/proc`, each remembered by a pidfd once seen; a grandchild that both
//! left the group and lost its parent before it was ever seen escapes that
//! fallback (the docs say so), until the manager's shutdown stops every
//! orphan it adopted ([`TreeRoot::stop_adopted`]).
//!
//! Nothing here signals a bare pid: the leader through its [`Child`], every
//! other member through a [`Member`] opened and checked first (`child.rs`).
//! The blocking parts (`/proc` walks, opening and checking members) run on
//! the platform worker thread (`worker.rs`); a signal reads the cgroup's
//! member list itself (one small read), so that a tree that is its leader
//! alone is signalled without a hand-over.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::child::{Child, Member};
use super::limits::{Controller, Controllers, Host};
use super::oom::OomWatch;
use super::quota::{Enforcement, Limits, Quota};
use super::reaper::{self, Registration};
use super::usage::{self, Sample};
use super::{cgroup, proctree, worker};
use crate::outcome::Signal;

/// A cgroup v2 directory, and its path as `/proc/<pid>/cgroup` shows it.
#[derive(Debug, Clone)]
struct Cgroup {
    dir: PathBuf,
    rel: String,
}

impl Cgroup {
    fn child(&self, name: &str) -> Cgroup {
        let rel = if self.rel.ends_with('/') {
            format!("{}{name}", self.rel)
        } else {
            format!("{}/{name}", self.rel)
        };
        Cgroup {
            dir: self.dir.join(name),
            rel,
        }
    }
}

/// Where the per-process trees of one manager live.
#[derive(Debug, Clone)]
pub struct TreeRoot {
    cgroup: Option<Cgroup>,
    /// Tags the children this root spawns in the reaper's table.
    owner: u64,
    /// Where the resource controllers of this root's processes are.
    controllers: Arc<Controllers>,
    /// Set once the manager's shutdown (or its kill of every process)
    /// begins: no tree of this root spawns again (see [`TreeRoot::close`]).
    closed: Arc<AtomicBool>,
}

fn next_owner() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

impl TreeRoot {
    /// Creates `<own cgroup v2>/<name>` for this manager's processes, or
    /// falls back to process groups and `/proc` (saying why, once), and
    /// sets up the resource controllers that the limits of the config
    /// `need` (see `limits.rs`).
    ///
    /// What an earlier manager on the same state directory left (it was
    /// killed, or detached) is stopped and removed, except the trees of
    /// the processes in `keep`, which are being re-attached.
    pub fn create(name: &str, need: &[Controller], keep: &[String]) -> TreeRoot {
        let mut root = TreeRoot::trees(name, keep);
        let host = Host::current();
        // The v1 directories an earlier manager on this state directory
        // left, whatever this config needs.
        super::limits::sweep_v1(&host, name, keep);
        // A re-attached process may still be in a v1 directory whose
        // controller this config no longer needs: its root is kept too, so
        // that the directory is found, and removed with the tree.
        let mut need = need.to_vec();
        for ctrl in Controller::ALL {
            let kept = host.own_v1(ctrl).is_some_and(|own| {
                keep.iter()
                    .any(|k| own.join(name).join(super::quota::v1_name(k)).is_dir())
            });
            if kept && !need.contains(&ctrl) {
                need.push(ctrl);
            }
        }
        if !need.is_empty() {
            let v2 = root.cgroup.as_ref().map(|c| c.dir.as_path());
            root.controllers = Arc::new(Controllers::create(&host, name, v2, &need));
        }
        root
    }

    fn trees(name: &str, keep: &[String]) -> TreeRoot {
        let owner = next_owner();
        let controllers = Arc::default();
        let Some((dir, rel)) = cgroup::own_cgroup() else {
            tracing::info!("no cgroup v2 hierarchy mounted; tracking process trees through /proc");
            return TreeRoot {
                cgroup: None,
                owner,
                controllers,
                closed: Arc::default(),
            };
        };
        let root = Cgroup { dir, rel }.child(name);
        match std::fs::create_dir(&root.dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                super::leftovers::sweep(&root.dir, keep)
            }
            Err(e) => {
                tracing::info!(dir = %root.dir.display(), error = %e,
                    "cannot create a cgroup; tracking process trees through /proc");
                return TreeRoot {
                    cgroup: None,
                    owner,
                    controllers,
                    closed: Arc::default(),
                };
            }
        }
        tracing::debug!(dir = %root.dir.display(), "process trees tracked in cgroup v2");
        TreeRoot {
            cgroup: Some(root),
            owner,
            controllers,
            closed: Arc::default(),
        }
    }

    /// A root that never uses cgroups (tests of the fallback, other OSes).
    pub fn without_cgroups() -> TreeRoot {
        TreeRoot {
            cgroup: None,
            owner: next_owner(),
            controllers: Arc::default(),
            closed: Arc::default(),
        }
    }

    /// Where the resource controllers are, and which are missing.
    pub fn controllers(&self) -> &Controllers {
        &self.controllers
    }

    /// The tree of process `id`. Its cgroup is created by its first spawn
    /// (see [`Tree::limit`]), not now: a manager starting hundreds of
    /// processes makes each directory on that process's own spawn, beside
    /// the other spawns, rather than all of them before the first one.
    pub fn tree(&self, id: &str) -> Tree {
        Tree {
            cgroup: self.cgroup.as_ref().map(|root| root.child(id)),
            owner: self.owner,
            closed: self.closed.clone(),
            known: Vec::new(),
            killed: AtomicBool::new(false),
            released: AtomicBool::new(true),
            unmade: AtomicBool::new(true),
            fresh: AtomicBool::new(false),
            quota: Quota::new(self.controllers.clone(), id),
        }
    }

    /// The tree of process `id`, being re-attached: its cgroup, with what
    /// runs in it, is kept as the earlier manager left it (created if it
    /// is missing).
    pub fn adopt_tree(&self, id: &str) -> Tree {
        let cgroup = self.cgroup.as_ref().and_then(|root| {
            let cg = root.child(id);
            match std::fs::create_dir(&cg.dir) {
                Ok(()) => Some(cg),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Some(cg),
                Err(e) => {
                    tracing::warn!(dir = %cg.dir.display(), error = %e, "cannot create a cgroup");
                    None
                }
            }
        });
        let mut quota = Quota::new(self.controllers.clone(), id);
        quota.adopt();
        Tree {
            cgroup,
            owner: self.owner,
            closed: self.closed.clone(),
            known: Vec::new(),
            killed: AtomicBool::new(false),
            released: AtomicBool::new(false),
            unmade: AtomicBool::new(false),
            fresh: AtomicBool::new(false),
            quota,
        }
    }

    pub fn uses_cgroups(&self) -> bool {
        self.cgroup.is_some()
    }

    /// Refuses every spawn into this root's trees from now on (the
    /// manager's shutdown, or its kill of every process, has begun), and
    /// returns once every spawn that got past the check is registered: a
    /// kill of everything after this reaches every child there will ever
    /// be (see [`Tree::is_closed`]). Must not be called with the reaper's
    /// lock held.
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        // A spawn checks when its flight departs, under the reaper's lock:
        // waiting for every flight to land waits for those under way.
        reaper::wait_for_flights();
    }

    /// A handle that refuses every spawn into this root's trees from then
    /// on, usable in a signal handler ([`SpawnHalt::halt`]).
    pub fn spawn_halt(&self) -> SpawnHalt {
        SpawnHalt(self.closed.clone())
    }

    /// SIGKILL to every process of every tree of this root, synchronously
    /// (the last resort when a manager is dropped without a stop): every
    /// cgroup's `cgroup.kill`, and the group of every unreaped child. The
    /// root is closed first ([`TreeRoot::close`]): no child spawned after
    /// the kill escapes it.
    pub fn kill_everything(&self) {
        self.close();
        if let Some(root) = &self.cgroup {
            for entry in std::fs::read_dir(&root.dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.is_dir() && cgroup::populated(&path) {
                    cgroup::kill(&path);
                }
            }
        }
        reaper::kill_owned(self.owner);
    }

    /// [`TreeRoot::kill_everything`], then removes the cgroups as they
    /// empty, for at most `within` (a last resort that exits leaves no
    /// empty cgroup behind). Blocking: for `Drop` and exit paths.
    pub fn kill_and_remove(&self, within: Duration) {
        self.kill_everything();
        let Some(root) = &self.cgroup else { return };
        let deadline = Instant::now() + within;
        loop {
            let mut left = 0;
            for entry in std::fs::read_dir(&root.dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.is_dir() && std::fs::remove_dir(&path).is_err() {
                    left += 1;
                }
            }
            if left == 0 || Instant::now() >= deadline {
                break;
            }
            // The kill is asynchronous in the kernel; this wait has a bound.
            std::thread::sleep(Duration::from_millis(10));
        }
        self.remove();
    }

    /// Stops the orphans this process adopted as a subreaper that are not
    /// in any tree (without cgroups: a grandchild that left its group and
    /// whose parent died before it was seen): `sig`, then SIGKILL to what is
    /// left at `deadline`. Only for a manager that reaps every child
    /// ([`reaper::Reaping::All`]): then every child of the process that is
    /// not a registered spawn is such an orphan.
    pub async fn stop_adopted(&self, sig: Signal, deadline: Instant) {
        if reaper::mode().ok() != Some(reaper::Reaping::All) {
            return;
        }
        let ours = self.cgroup.as_ref().map(|c| c.rel.clone());
        let mut left = adopted(ours).await;
        if left.is_empty() {
            return;
        }
        tracing::info!(
            count = left.len(),
            "stopping orphaned descendants the manager adopted"
        );
        for m in &left {
            let _ = m.signal(sig);
        }
        loop {
            left.retain(|m| !m.has_exited());
            if left.is_empty() {
                return;
            }
            if Instant::now() >= deadline {
                for m in &left {
                    let _ = m.signal(Signal::KILL);
                }
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Removes the (empty) cgroup directories. Trees must have been removed.
    pub fn remove(&self) {
        if let Some(root) = &self.cgroup {
            if let Err(e) = std::fs::remove_dir(&root.dir) {
                tracing::debug!(dir = %root.dir.display(), error = %e, "cgroup not removed");
            }
        }
        self.controllers
            .remove(self.cgroup.as_ref().map(|c| c.dir.as_path()));
    }
}

/// The children of this process that no spawn registered, with their
/// descendants, as members.
///
/// An orphan in the cgroup tree of another manager (`/procman-…` other than
/// `ours`) is that manager's: one that detached or died under this process
/// re-parents its services here, and they wait for it to re-attach.
async fn adopted(ours: Option<String>) -> Vec<Member> {
    worker::run(move || {
        let me = std::process::id();
        let table = reaper::lock();
        let orphans: Vec<Member> = proctree::children(me)
            .into_iter()
            .filter(|&pid| !table.is_registered(pid as i32))
            .filter(|&pid| !in_another_manager(pid, ours.as_deref()))
            .filter_map(|pid| Member::open(pid, |_, s| s.ppid == me))
            .collect();
        drop(table);
        let roots: Vec<u32> = orphans.iter().map(Member::pid).collect();
        let mut all = orphans;
        all.extend(open_descendants(&roots, None, &all));
        all
    })
    .await
    .unwrap_or_default()
}

/// Whether `pid` is in a cgroup of a procman tree root other than `ours`.
fn in_another_manager(pid: u32, ours: Option<&str>) -> bool {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    text.lines().any(|line| {
        let path = line.splitn(3, ':').nth(2).unwrap_or("");
        path.contains("/procman-") && ours.is_none_or(|o| !path.starts_with(o))
    })
}

/// Refuses every spawn into a root's trees from the moment it is used: a
/// shutdown signal stops a large start at once, before the manager's tasks
/// (busy spawning) get to the signal. Only a spawn that has not yet
/// reached its check is refused; the shutdown that follows closes the root
/// as usual ([`TreeRoot::close`]), which also waits for those under way.
#[derive(Debug, Clone)]
pub struct SpawnHalt(Arc<AtomicBool>);

impl SpawnHalt {
    /// One atomic store: safe inside a signal handler.
    pub fn halt(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// One supervised process's tree of processes.
#[derive(Debug)]
pub struct Tree {
    cgroup: Option<Cgroup>,
    owner: u64,
    /// Its root's: see [`TreeRoot::close`].
    closed: Arc<AtomicBool>,
    /// Fallback only: descendants seen while their ancestors were alive.
    known: Vec<Member>,
    /// `cgroup.kill` was written to the cgroup: see [`Tree::dir_fd`].
    killed: AtomicBool,
    /// The v2 directory is not there: removed after a stop (see
    /// [`Tree::release`]), or not made yet. The next run creates it.
    released: AtomicBool,
    /// This manager never made the v2 directory: one found under its name
    /// was left by an earlier manager on the same state directory.
    unmade: AtomicBool,
    /// The v2 directory was made (again) and no child was spawned into it
    /// since: its CPU time is 0, not worth a read.
    fresh: AtomicBool,
    quota: Quota,
}

impl Tree {
    pub fn cgroup(&self) -> Option<&Path> {
        self.cgroup.as_ref().map(|c| c.dir.as_path())
    }

    pub(crate) fn owner(&self) -> u64 {
        self.owner
    }

    /// Whether its root takes no more spawns ([`TreeRoot::close`]). A
    /// spawn asks as its [`reaper::Flight`] departs, and the close waits
    /// for every flight to land.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// A spawn refused because the root closed meanwhile: the cgroup that
    /// [`Tree::dir_fd`] may have created again for it goes (a kill of
    /// everything may have removed the others already). Nothing is in it.
    pub(crate) fn discard(&self) {
        if let Some(cg) = &self.cgroup {
            if std::fs::remove_dir(&cg.dir).is_ok() {
                self.released.store(true, Ordering::Relaxed);
            }
        }
    }

    /// The cgroup directory, opened for `clone3(CLONE_INTO_CGROUP)`.
    ///
    /// Pitfall (seen on Linux 6.18): a child created by `clone3` *into* a
    /// cgroup that was once killed through `cgroup.kill` is SIGKILLed by
    /// the kernel as soon as it exists (the kill's sequence number is read
    /// from the parent's cgroup, not the child's, and never matches). So a
    /// killed cgroup is replaced by a new, empty one of the same name
    /// before the next spawn; where that is impossible the spawn joins the
    /// cgroup by `cgroup.procs` instead, which is not affected.
    pub(crate) fn dir_fd(&self) -> Option<OwnedFd> {
        let cg = self.cgroup.as_ref()?;
        self.renew();
        // A child goes into it now: its CPU time is to be read from here on.
        self.fresh.store(false, Ordering::Relaxed);
        rustix::fs::open(
            &cg.dir,
            rustix::fs::OFlags::RDONLY
                | rustix::fs::OFlags::DIRECTORY
                | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .ok()
    }

    /// Makes the v2 directory for the next run: the first time (see
    /// [`TreeRoot::tree`]), again after a stop released it, or anew in
    /// place of a killed one (see [`Tree::dir_fd`]). False when it is not
    /// there and could not be made.
    fn renew(&self) -> bool {
        let Some(cg) = self.cgroup.as_ref() else {
            return true;
        };
        // Nothing will run in it: the spawn is refused.
        if self.is_closed() {
            return true;
        }
        if self.released.load(Ordering::Relaxed) {
            let first = self.unmade.load(Ordering::Relaxed);
            let made = match std::fs::create_dir(&cg.dir) {
                Ok(()) => true,
                // Never made by this manager: what runs in it was left by
                // an earlier one on this state directory (the sweep at
                // start could not remove it). A new, empty cgroup rather
                // than a killed one (see `Tree::dir_fd`); the killed one
                // is used if it cannot go.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && first => {
                    let id = cg.dir.file_name().unwrap_or_default().to_string_lossy();
                    super::leftovers::stop_leftovers(&id, &cg.dir);
                    std::fs::remove_dir(&cg.dir)
                        .and_then(|()| std::fs::create_dir(&cg.dir))
                        .is_ok()
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => false,
                Err(e) => {
                    if first {
                        tracing::warn!(dir = %cg.dir.display(), error = %e,
                            "cannot create a cgroup");
                    } else {
                        tracing::warn!(dir = %cg.dir.display(), error = %e,
                            "cannot create the cgroup again; the next run is not tracked in it");
                    }
                    return false;
                }
            };
            self.released.store(false, Ordering::Relaxed);
            self.unmade.store(false, Ordering::Relaxed);
            self.fresh.store(made, Ordering::Relaxed);
            return true;
        }
        if self.killed.load(Ordering::Relaxed) {
            let renewed = std::fs::remove_dir(&cg.dir).and_then(|()| std::fs::create_dir(&cg.dir));
            match renewed {
                Ok(()) => {
                    self.killed.store(false, Ordering::Relaxed);
                    self.fresh.store(true, Ordering::Relaxed);
                }
                Err(e) => {
                    tracing::debug!(dir = %cg.dir.display(), error = %e,
                        "cannot renew a killed cgroup; the child joins it after the clone");
                }
            }
        }
        true
    }

    /// Writes the limits of the next run into the tree's cgroups (a killed
    /// v2 cgroup is renewed first, so they land in the one the child
    /// joins) and says what enforces each. A tree whose cgroup cannot be
    /// made the first time is tracked through `/proc` from then on, as
    /// without cgroups.
    pub fn limit(&mut self, limits: &Limits) -> Enforcement {
        if !self.renew() && self.unmade.load(Ordering::Relaxed) {
            self.cgroup = None;
        }
        let v2 = self.cgroup.as_ref().map(|c| c.dir.clone());
        self.quota.apply(v2.as_deref(), limits)
    }

    /// `cgroup.procs` of the v1 cgroups the next child joins before exec.
    pub(crate) fn v1_join_fds(&self) -> std::io::Result<Vec<OwnedFd>> {
        self.quota.join_fds()
    }

    /// Watches the run's memory cgroup for OOM kills, when one enforces a
    /// memory limit.
    pub fn oom_watch(&self) -> Option<OomWatch> {
        let v2 = self.cgroup.as_ref().map(|c| c.dir.as_path());
        let (enforcer, dir) = self.quota.memory(v2)?;
        match OomWatch::open(enforcer, &dir) {
            Ok(w) => Some(w),
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e,
                    "cannot watch the memory cgroup for OOM kills; they are reported as SIGKILL");
                None
            }
        }
    }

    /// CPU time of the tree so far, from its v2 cgroup (`None` without);
    /// 0 for one made for the next run, without reading it.
    pub fn cpu_usec(&self) -> Option<u64> {
        let cg = self.cgroup.as_ref()?;
        if self.fresh.load(Ordering::Relaxed) {
            return Some(0);
        }
        usage::cgroup_cpu_usec(&cg.dir)
    }

    /// What the tree uses now (`fds`: count open descriptors too, a read
    /// of each member's `/proc/<pid>/fd`).
    pub async fn sample(&mut self, leader: Option<&Child>, fds: bool) -> Sample {
        let pids = self.pids(leader).await;
        let v2 = self.cgroup.as_ref().map(|c| c.dir.as_path());
        let sources = usage::Sources {
            v2: v2.map(Path::to_path_buf),
            memory: self.quota.memory(v2),
            pids: self.quota.pids(v2),
        };
        worker::run(move || usage::sample(&sources, &pids, fds))
            .await
            .unwrap_or_default()
    }

    /// `cgroup.procs`, opened for a child to join before exec when the
    /// clone cannot place it.
    pub(crate) fn procs_fd(&self) -> Option<OwnedFd> {
        let cg = self.cgroup.as_ref()?;
        match cgroup::open_procs(&cg.dir) {
            Ok(fd) => Some(fd),
            Err(e) => {
                tracing::warn!(dir = %cg.dir.display(), error = %e, "cannot open cgroup.procs");
                None
            }
        }
    }

    /// Looks for descendants of the leader and of the members already known
    /// (fallback only) and remembers them.
    async fn refresh(&mut self, leader: Option<&Child>) {
        if self.cgroup.is_some() {
            return;
        }
        let mut known = std::mem::take(&mut self.known);
        known.retain(|m| !m.has_exited());
        let live = leader.filter(|l| !l.has_exited());
        let leader_reg = live.and_then(Child::registration);
        let leader_pid = live.map(Child::pid);
        // An adopted leader is not in the reaper's table: its pidfd says
        // whether it is still the parent its children were seen under.
        let adopted = live
            .filter(|l| l.is_adopted())
            .and_then(|l| Some(Member::from_pidfd(l.pid(), l.pidfd()?.try_clone().ok()?)));
        let result = worker::run(move || {
            let mut roots: Vec<u32> = known.iter().map(Member::pid).collect();
            roots.extend(leader_pid);
            let mut parents = std::mem::take(&mut known);
            let with_leader: Vec<Member> = adopted.into_iter().collect();
            let fresh: Vec<Member> = if with_leader.is_empty() {
                open_descendants(&roots, leader_reg, &parents)
            } else {
                parents.extend(with_leader);
                let fresh = open_descendants(&roots, leader_reg, &parents);
                parents.retain(|m| Some(m.pid()) != leader_pid);
                fresh
            };
            for m in fresh {
                if !parents.iter().any(|k| k.pid() == m.pid()) {
                    parents.push(m);
                }
            }
            parents
        })
        .await;
        self.known = result.unwrap_or_default();
    }

    /// Sends `sig` to the leader's group and to every member (so also to a
    /// grandchild that left the group), as systemd's control-group mode does.
    pub async fn signal_all(&mut self, leader: Option<&Child>, sig: Signal) {
        self.signal_each(leader, &[sig], false).await;
    }

    /// A stop: `sig` to the group and every member, then SIGCONT, as
    /// systemd does, so that a stopped (`SIGSTOP`ped, or suspended by a
    /// debugger) process gets to handle `sig` rather than wait for the
    /// SIGKILL of the deadline.
    ///
    /// `leader_signalled`: the leader got them already (the manager's stop
    /// pass, with a cgroup only): every other member still does.
    pub async fn signal_stop(
        &mut self,
        leader: Option<&Child>,
        sig: Signal,
        leader_signalled: bool,
    ) {
        let sigs = if sig == Signal::KILL {
            vec![sig]
        } else {
            vec![sig, Signal::CONT]
        };
        self.signal_each(leader, &sigs, leader_signalled).await;
    }

    /// Each of `sigs`, in order, to every process of the tree, each process
    /// once (as systemd's control-group kill: a shell in its TERM trap
    /// that got TERM twice would run the trap twice), the leader first.
    async fn signal_each(
        &mut self,
        leader: Option<&Child>,
        sigs: &[Signal],
        leader_signalled: bool,
    ) {
        // The fallback lists the members first: once the leader dies its
        // children are re-parented and cannot be found from it.
        self.refresh(leader).await;
        let leader_pid = leader.filter(|l| !l.has_exited()).map(Child::pid);
        match &self.cgroup {
            Some(cg) => {
                if let Some(l) = leader.filter(|_| !leader_signalled) {
                    for &sig in sigs {
                        let _ = l.signal(sig);
                    }
                }
                // The member list is one small read, done here: a tree that
                // is its leader alone (most are) needs nothing more, and
                // many stopping at once do not queue for the worker.
                let others: Vec<u32> = cgroup::members(&cg.dir)
                    .into_iter()
                    .filter(|&pid| Some(pid) != leader_pid)
                    .collect();
                if others.is_empty() {
                    return;
                }
                let (cg, sigs) = (cg.clone(), sigs.to_vec());
                worker::run(move || signal_cgroup(&cg, &sigs, &others)).await;
            }
            None => {
                // The leader's group (the leader is in it for as long as
                // it lives: a session leader cannot leave its group), then
                // the members the group did not reach.
                let mut group = None;
                // A leader signalled already: each member then gets its
                // own signal, the group none.
                if let Some(l) = leader.filter(|_| !leader_signalled) {
                    for &sig in sigs {
                        if l.signal_group(sig).unwrap_or(false) {
                            group = Some(l.pid());
                        }
                    }
                }
                for m in &self.known {
                    let in_group = group.is_some_and(|g| {
                        super::procstat::Stat::read(m.pid())
                            .ok()
                            .flatten()
                            .is_some_and(|s| s.pgrp == g)
                    });
                    if !in_group {
                        for &sig in sigs {
                            let _ = m.signal(sig);
                        }
                    }
                }
            }
        }
    }

    /// Every live process of the tree, the leader first, each pid once.
    pub async fn pids(&mut self, leader: Option<&Child>) -> Vec<u32> {
        let mut pids: Vec<u32> = leader
            .filter(|l| !l.has_exited())
            .map(Child::pid)
            .into_iter()
            .collect();
        let rest = match &self.cgroup {
            Some(cg) => {
                let dir = cg.dir.clone();
                worker::run(move || cgroup::members(&dir))
                    .await
                    .unwrap_or_default()
            }
            None => {
                self.refresh(leader).await;
                self.known
                    .iter()
                    .filter(|m| !m.has_exited())
                    .map(Member::pid)
                    .collect()
            }
        };
        for pid in rest {
            if !pids.contains(&pid) {
                pids.push(pid);
            }
        }
        pids
    }

    /// SIGKILL to everything in the tree.
    pub async fn kill_all(&mut self, leader: Option<&Child>) {
        if let Some(cg) = &self.cgroup {
            if cgroup::kill(&cg.dir) {
                self.killed.store(true, Ordering::Relaxed);
                return;
            }
        }
        self.signal_all(leader, Signal::KILL).await;
    }

    /// True when nothing of the tree is left (zombies not yet reaped count
    /// as gone: they hold no resources but a pid).
    pub async fn is_empty(&mut self, leader: Option<&Child>) -> bool {
        if let Some(cg) = &self.cgroup {
            return !cgroup::populated(&cg.dir);
        }
        self.refresh(leader).await;
        leader.is_none_or(Child::has_exited)
            && !leader.is_some_and(Child::group_alive)
            && self.known.iter().all(Member::has_exited)
    }

    /// Waits until the tree is empty or `deadline` passes; true if empty.
    pub async fn wait_empty(&mut self, leader: Option<&Child>, deadline: Instant) -> bool {
        if let Some(cg) = &self.cgroup {
            return cgroup::wait_empty(&cg.dir, deadline).await;
        }
        // No kernel event exists for "these pids are gone" without a cgroup:
        // check at a short, bounded interval, only while a stop is pending.
        loop {
            if self.is_empty(leader).await {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A stop is over once the tree is empty: its v2 directory goes then
    /// (the next run creates it again), so that a shutdown removes each
    /// while the other processes still stop, rather than all of them at the
    /// end. True when it is gone (now or before); false without a cgroup,
    /// or while anything is still in it (the kernel refuses the removal).
    ///
    /// On the platform thread: a removal waits for the kernel's cgroup
    /// lock, which its own workers take to finish the cgroups removed
    /// before; with thousands stopping, a runtime thread would wait there.
    pub async fn release(&self) -> bool {
        let Some(cg) = &self.cgroup else {
            return false;
        };
        if self.released.load(Ordering::Relaxed) {
            return true;
        }
        let dir = cg.dir.clone();
        let removed = worker::run(move || std::fs::remove_dir(dir).is_ok())
            .await
            .unwrap_or(false);
        if removed {
            self.killed.store(false, Ordering::Relaxed);
            self.released.store(true, Ordering::Relaxed);
        }
        removed
    }

    /// Deletes the cgroup directories (they must be empty).
    pub fn remove(&self) {
        if let Some(cg) = self
            .cgroup
            .as_ref()
            .filter(|_| !self.released.load(Ordering::Relaxed))
        {
            if let Err(e) = std::fs::remove_dir(&cg.dir) {
                tracing::debug!(dir = %cg.dir.display(), error = %e, "cgroup not removed");
            }
        }
        self.quota.remove();
    }
}

/// Opens every descendant of `roots`, checking after the open that each
/// still has the parent it was seen under, and that this parent is still
/// that process: the `leader` (a child of ours) while it is unreaped, any
/// other parent while its pidfd (in `parents`, or found here) has not
/// exited.
fn open_descendants(
    roots: &[u32],
    leader: Option<Registration>,
    parents: &[Member],
) -> Vec<Member> {
    let mut found: Vec<Member> = Vec::new();
    for (pid, parent) in proctree::descendants(roots) {
        let Some(m) = Member::open(pid, |_, s| s.ppid == parent) else {
            continue;
        };
        let parent_alive = if let Some(l) = leader.filter(|l| l.pid as u32 == parent) {
            reaper::lock().is_current(l)
        } else {
            parents
                .iter()
                .chain(found.iter())
                .find(|k| k.pid() == parent)
                .is_some_and(|k| !k.has_exited())
        };
        if parent_alive {
            found.push(m);
        }
    }
    found
}

/// Signals the `members` of the cgroup (its list, the leader left out),
/// each opened as a pidfd and checked to be in the cgroup after the open.
fn signal_cgroup(cg: &Cgroup, sigs: &[Signal], members: &[u32]) {
    for &pid in members {
        if let Some(m) = Member::open(pid, |pid, _| cgroup::contains(&cg.rel, pid)) {
            for &sig in sigs {
                let _ = m.signal(sig);
            }
        }
    }
}
