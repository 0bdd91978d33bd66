//! One process's resource limits, written into its cgroups before each
//! run: the v2 files of its tree cgroup, or the v1 directories
//! `<v1 root>/<id>` that the child joins before it execs.
//!
//! | limit | cgroup v2 | cgroup v1 |
//! |---|---|---|
//! | memory | `memory.max`, `memory.swap.max` 0, `memory.oom.group` 1 | `memory.limit_in_bytes`, `memory.memsw.limit_in_bytes` |
//! | cpu | `cpu.max` (`quota period`) | `cpu.cfs_quota_us`, `cpu.cfs_period_us` |
//! | processes | `pids.max` | `pids.max` |
//!
//! A limit whose file cannot be written (a hierarchy that refuses the
//! value) is not silently dropped: it is logged and watched by the manager
//! instead ([`Enforcer::Monitor`]), like a limit the host cannot enforce.

use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::limits::{write, Controller, Controllers, Enforcer};

/// The kernel limits of one run, from `resource_limits`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Limits {
    pub memory_bytes: Option<u64>,
    /// Percent of one CPU (250: two and a half).
    pub cpu_percent: Option<f64>,
    pub processes: Option<u64>,
}

impl Limits {
    pub fn is_set(&self, ctrl: Controller) -> bool {
        match ctrl {
            Controller::Memory => self.memory_bytes.is_some(),
            Controller::Cpu => self.cpu_percent.is_some(),
            Controller::Pids => self.processes.is_some(),
        }
    }

    /// The controllers these limits need.
    pub fn controllers(&self) -> impl Iterator<Item = Controller> + '_ {
        Controller::ALL.into_iter().filter(|c| self.is_set(*c))
    }
}

/// The CFS period used for CPU limits (systemd's default too).
const CPU_PERIOD_US: u64 = 100_000;

/// `(quota, period)` in microseconds for `percent` of one CPU. The kernel
/// refuses a quota under 1 ms: a tiny percentage gets a longer period.
pub fn cpu_quota(percent: f64) -> (u64, u64) {
    let quota = (percent * CPU_PERIOD_US as f64 / 100.0).round() as u64;
    if quota >= 1000 {
        return (quota, CPU_PERIOD_US);
    }
    let period = ((1000.0 * 100.0 / percent).round() as u64).min(1_000_000);
    (1000, period)
}

/// How each limit of a run is enforced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Enforcement(pub Vec<(Controller, Enforcer)>);

impl Enforcement {
    pub fn of(&self, ctrl: Controller) -> Option<Enforcer> {
        self.0.iter().find(|(c, _)| *c == ctrl).map(|(_, e)| *e)
    }

    /// Limits only the manager's sampling watches.
    pub fn monitored(&self) -> impl Iterator<Item = Controller> + '_ {
        self.0
            .iter()
            .filter(|(_, e)| *e == Enforcer::Monitor)
            .map(|(c, _)| *c)
    }
}

/// A process's limit cgroups, across its runs.
#[derive(Debug)]
pub(crate) struct Quota {
    controllers: Arc<Controllers>,
    id: String,
    /// v1 directories created so far, kept across runs.
    v1: Vec<(Controller, PathBuf)>,
    /// The v1 directories the next child joins.
    joined: Vec<PathBuf>,
    /// v2 controllers whose files this process has set.
    v2_set: Vec<Controller>,
    current: Enforcement,
}

impl Quota {
    pub(crate) fn new(controllers: Arc<Controllers>, id: &str) -> Quota {
        Quota {
            controllers,
            id: id.to_string(),
            v1: Vec::new(),
            joined: Vec::new(),
            v2_set: Vec::new(),
            current: Enforcement::default(),
        }
    }

    /// Takes over the v1 directories an earlier manager made for this
    /// process, which a re-attached run is still in: they are removed with
    /// the tree, and used again by the limits that are still set.
    pub(crate) fn adopt(&mut self) {
        for ctrl in Controller::ALL {
            let Some(root) = self.controllers.v1_root(ctrl) else {
                continue;
            };
            let dir = root.join(v1_name(&self.id));
            if dir.is_dir() && !self.v1.iter().any(|(c, _)| *c == ctrl) {
                self.v1.push((ctrl, dir));
            }
        }
    }

    /// Writes `limits` for the next run (`v2_dir`: the tree's cgroup, empty
    /// and fresh) and says what enforces each.
    pub(crate) fn apply(&mut self, v2_dir: Option<&Path>, limits: &Limits) -> Enforcement {
        self.joined.clear();
        let mut by = Vec::new();
        for ctrl in Controller::ALL {
            let on_v2 = v2_dir.filter(|_| self.controllers.on_v2(ctrl));
            if !limits.is_set(ctrl) {
                // A limit removed (a reload): the v2 files go back to "max".
                if let Some(dir) = on_v2.filter(|_| self.v2_set.contains(&ctrl)) {
                    let _ = write_v2(dir, ctrl, &Limits::default());
                    self.v2_set.retain(|c| *c != ctrl);
                }
                continue;
            }
            let enforcer = if let Some(dir) = on_v2 {
                self.try_write(ctrl, Enforcer::CgroupV2, write_v2(dir, ctrl, limits))
            } else if let Some(dir) = self.v1_dir(ctrl) {
                let done = write_v1(&dir, ctrl, limits);
                let e = self.try_write(ctrl, Enforcer::CgroupV1, done);
                if e == Enforcer::CgroupV1 {
                    self.joined.push(dir);
                }
                e
            } else {
                Enforcer::Monitor
            };
            if enforcer == Enforcer::CgroupV2 && !self.v2_set.contains(&ctrl) {
                self.v2_set.push(ctrl);
            }
            by.push((ctrl, enforcer));
        }
        self.current = Enforcement(by);
        self.current.clone()
    }

    fn try_write(&self, ctrl: Controller, ok: Enforcer, done: io::Result<()>) -> Enforcer {
        match done {
            Ok(()) => ok,
            Err(e) => {
                tracing::warn!(process = %self.id, limit = ctrl.key(), error = %e,
                    "cannot set the limit in the cgroup; the manager watches it instead (on_violation)");
                Enforcer::Monitor
            }
        }
    }

    /// `<v1 root>/<id>`, created on first need.
    fn v1_dir(&mut self, ctrl: Controller) -> Option<PathBuf> {
        if let Some((_, d)) = self.v1.iter().find(|(c, _)| *c == ctrl) {
            return Some(d.clone());
        }
        let dir = self.controllers.v1_root(ctrl)?.join(v1_name(&self.id));
        match std::fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                tracing::warn!(process = %self.id, dir = %dir.display(), error = %e,
                    "cannot create a cgroup v1 directory");
                return None;
            }
        }
        self.v1.push((ctrl, dir.clone()));
        Some(dir)
    }

    /// `cgroup.procs` of every v1 directory the next child joins, opened
    /// for writing before the clone. An error: the child would run outside
    /// a limit it was promised, so it does not run.
    pub(crate) fn join_fds(&self) -> io::Result<Vec<OwnedFd>> {
        self.joined
            .iter()
            .map(|d| super::cgroup::open_procs(d))
            .collect()
    }

    /// The cgroup that accounts the run's memory, when one enforces it.
    pub(crate) fn memory(&self, v2_dir: Option<&Path>) -> Option<(Enforcer, PathBuf)> {
        match self.current.of(Controller::Memory)? {
            Enforcer::CgroupV2 => Some((Enforcer::CgroupV2, v2_dir?.to_path_buf())),
            Enforcer::CgroupV1 => {
                let (_, d) = self.v1.iter().find(|(c, _)| *c == Controller::Memory)?;
                Some((Enforcer::CgroupV1, d.clone()))
            }
            _ => None,
        }
    }

    /// The pids cgroup, when one counts the run's processes.
    pub(crate) fn pids(&self, v2_dir: Option<&Path>) -> Option<PathBuf> {
        match self.current.of(Controller::Pids)? {
            Enforcer::CgroupV2 => v2_dir.map(Path::to_path_buf),
            Enforcer::CgroupV1 => self
                .v1
                .iter()
                .find(|(c, _)| *c == Controller::Pids)
                .map(|(_, d)| d.clone()),
            _ => None,
        }
    }

    /// Removes the v1 directories (their processes are gone).
    pub(crate) fn remove(&self) {
        for (_, dir) in &self.v1 {
            if let Err(e) = std::fs::remove_dir(dir) {
                tracing::debug!(dir = %dir.display(), error = %e, "cgroup not removed");
            }
        }
    }
}

/// The directory name of process `id` in a v1 hierarchy: its id, unless
/// that is the name of one of v1's own files (`tasks`,
/// `notify_on_release`, `release_agent`: no dot, unlike every other
/// control file). An id has no dot, so `<id>.process` is no other's.
pub(crate) fn v1_name(id: &str) -> String {
    match id {
        "tasks" | "notify_on_release" | "release_agent" => format!("{id}.process"),
        _ => id.to_string(),
    }
}

/// The v2 files of `ctrl` for `limits` (`max` where a limit is unset).
pub(crate) fn write_v2(dir: &Path, ctrl: Controller, limits: &Limits) -> io::Result<()> {
    let max = |v: Option<u64>| v.map_or("max".to_string(), |n| n.to_string());
    match ctrl {
        Controller::Memory => {
            write(&dir.join("memory.max"), &max(limits.memory_bytes))?;
            // No swap: the limit is the memory the process may use, not a
            // point after which it pages.
            let swap = if limits.memory_bytes.is_some() {
                "0"
            } else {
                "max"
            };
            optional(write(&dir.join("memory.swap.max"), swap))?;
            // An OOM kill ends the whole tree, as the run ends anyway.
            let group = if limits.memory_bytes.is_some() {
                "1"
            } else {
                "0"
            };
            optional(write(&dir.join("memory.oom.group"), group))
        }
        Controller::Cpu => {
            let value = match limits.cpu_percent {
                Some(p) => {
                    let (quota, period) = cpu_quota(p);
                    format!("{quota} {period}")
                }
                None => format!("max {CPU_PERIOD_US}"),
            };
            write(&dir.join("cpu.max"), &value)
        }
        Controller::Pids => write(&dir.join("pids.max"), &max(limits.processes)),
    }
}

/// The v1 files of `ctrl` for `limits`.
pub(crate) fn write_v1(dir: &Path, ctrl: Controller, limits: &Limits) -> io::Result<()> {
    match ctrl {
        Controller::Memory => {
            let bytes = limits
                .memory_bytes
                .map_or("-1".to_string(), |b| b.to_string());
            // memsw must stay >= the memory limit: lift it first, then set
            // both (memsw exists only with swap accounting).
            let memsw = dir.join("memory.memsw.limit_in_bytes");
            optional(write(&memsw, "-1"))?;
            write(&dir.join("memory.limit_in_bytes"), &bytes)?;
            optional(write(&memsw, &bytes))
        }
        Controller::Cpu => {
            let (quota, period) = match limits.cpu_percent {
                Some(p) => {
                    let (q, per) = cpu_quota(p);
                    (q.to_string(), per)
                }
                None => ("-1".to_string(), CPU_PERIOD_US),
            };
            // The quota first back to unlimited: a period shorter than the
            // old quota's would be refused.
            write(&dir.join("cpu.cfs_quota_us"), "-1")?;
            write(&dir.join("cpu.cfs_period_us"), &period.to_string())?;
            write(&dir.join("cpu.cfs_quota_us"), &quota)
        }
        Controller::Pids => write(
            &dir.join("pids.max"),
            &limits
                .processes
                .map_or("max".to_string(), |n| n.to_string()),
        ),
    }
}

/// A file that may be absent (no swap accounting, an older kernel).
fn optional(r: io::Result<()>) -> io::Result<()> {
    match r {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}
