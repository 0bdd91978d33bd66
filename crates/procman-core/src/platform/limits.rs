//! Where the kernel can enforce resource limits on this host, and the
//! per-controller roots the manager's process cgroups go under.
//!
//! Each of the three controllers (memory, cpu, pids) is taken from cgroup
//! v2 when the manager's own v2 cgroup offers it, else from its cgroup v1
//! hierarchy (a hybrid host, like a CentOS 7 or an older Docker host), else
//! it is not available and its limits are watched by the manager instead
//! (`on_violation`). Every directory is created **under the manager's own
//! cgroup** of that hierarchy, as `/proc/self/cgroup` names it, never at a
//! hierarchy's root unless the manager itself is there.
//!
//! On v2 a controller is usable in a child only once the parent lists it in
//! `cgroup.subtree_control`, and a cgroup that has processes cannot do that
//! (the "no internal processes" rule; only the root is exempt). When the
//! manager is alone in its own cgroup (a systemd unit with `Delegate=yes`,
//! a container's entry point) it moves itself into a leaf beside its
//! process cgroups, `<name>-manager`, to make room; when it shares its
//! cgroup with other processes it leaves them alone and says so.
//!
//! Every function reads the host through [`Host`]: the texts of
//! `/proc/self/mountinfo` and `/proc/self/cgroup` and a prefix for the
//! mount points, so the same code runs against a fake cgroupfs in a
//! temporary directory in the tests.

use std::io;
use std::path::{Path, PathBuf};

/// A resource controller of cgroups that a limit needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Controller {
    Memory,
    Cpu,
    Pids,
}

impl Controller {
    pub const ALL: [Controller; 3] = [Controller::Memory, Controller::Cpu, Controller::Pids];

    /// The kernel's name, in `cgroup.controllers` and `/proc/self/cgroup`.
    pub fn name(self) -> &'static str {
        match self {
            Controller::Memory => "memory",
            Controller::Cpu => "cpu",
            Controller::Pids => "pids",
        }
    }

    /// The config key whose limit this controller enforces.
    pub fn key(self) -> &'static str {
        match self {
            Controller::Memory => "max_memory_mb",
            Controller::Cpu => "max_cpu_percent",
            Controller::Pids => "max_processes",
        }
    }
}

/// What enforces one limit of one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enforcer {
    /// A cgroup v2 controller file (`memory.max`, `cpu.max`, `pids.max`).
    CgroupV2,
    /// A cgroup v1 controller file (`memory.limit_in_bytes`, …).
    CgroupV1,
    /// `setrlimit` before exec (`max_file_descriptors`).
    Rlimit,
    /// Nothing in the kernel: the manager samples usage and applies
    /// `on_violation` after `violation_grace`.
    Monitor,
}

impl Enforcer {
    pub fn as_str(self) -> &'static str {
        match self {
            Enforcer::CgroupV2 => "cgroup v2",
            Enforcer::CgroupV1 => "cgroup v1",
            Enforcer::Rlimit => "rlimit",
            Enforcer::Monitor => "monitor",
        }
    }
}

/// The host as the detection reads it.
#[derive(Debug, Clone)]
pub struct Host {
    /// `/proc/self/mountinfo`.
    pub mountinfo: String,
    /// `/proc/self/cgroup`.
    pub own: String,
    /// Prepended to every mount point (`/` on a real host).
    pub prefix: PathBuf,
    /// Our pid, as `cgroup.procs` lists it.
    pub pid: u32,
}

impl Host {
    pub fn current() -> Host {
        Host {
            mountinfo: std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default(),
            own: std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default(),
            prefix: PathBuf::from("/"),
            pid: std::process::id(),
        }
    }

    fn mount_dir(&self, mount: &str) -> PathBuf {
        self.prefix.join(mount.trim_start_matches('/'))
    }

    /// The manager's own v2 cgroup directory.
    pub fn own_v2(&self) -> Option<PathBuf> {
        let mount = self.mounts().find(|m| m.fstype == "cgroup2")?.point;
        let rel = self.own.lines().find_map(|l| l.strip_prefix("0::"))?;
        Some(
            self.mount_dir(mount)
                .join(rel.trim().trim_start_matches('/')),
        )
    }

    /// The manager's own v1 cgroup directory of `ctrl`: the hierarchy
    /// mounted with that controller, and the path `/proc/self/cgroup`
    /// gives for it.
    pub fn own_v1(&self, ctrl: Controller) -> Option<PathBuf> {
        let has = |list: &str| list.split(',').any(|c| c == ctrl.name());
        let mount = self
            .mounts()
            .find(|m| m.fstype == "cgroup" && has(m.options))?
            .point;
        let rel = self.own.lines().find_map(|l| {
            let mut parts = l.splitn(3, ':');
            let (_, list, path) = (parts.next()?, parts.next()?, parts.next()?);
            has(list).then_some(path)
        })?;
        Some(
            self.mount_dir(mount)
                .join(rel.trim().trim_start_matches('/')),
        )
    }

    fn mounts(&self) -> impl Iterator<Item = Mount<'_>> {
        self.mountinfo.lines().filter_map(|line| {
            let (pre, post) = line.split_once(" - ")?;
            let mut post = post.split_ascii_whitespace();
            let fstype = post.next()?;
            let options = post.nth(1).unwrap_or("");
            let point = pre.split_ascii_whitespace().nth(4)?;
            Some(Mount {
                point,
                fstype,
                options,
            })
        })
    }
}

struct Mount<'a> {
    point: &'a str,
    fstype: &'a str,
    options: &'a str,
}

/// Where each controller's process cgroups of one manager live.
#[derive(Debug, Clone, Default)]
pub struct Controllers {
    /// Enabled in the subtree of the manager's v2 root (its process
    /// cgroups have their files).
    pub(crate) v2: Vec<Controller>,
    /// `<own v1 cgroup of the controller>/<name>`, created.
    pub(crate) v1: Vec<(Controller, PathBuf)>,
    /// What is not available, and why: one line each.
    pub(crate) missing: Vec<(Controller, String)>,
    /// The leaf the manager moved itself into, and the cgroup it left.
    pub(crate) moved: Option<(PathBuf, PathBuf)>,
}

impl Controllers {
    /// Sets up `needed` for a manager whose v2 process root is
    /// `v2_root` (`<own v2>/<name>`, created, when v2 is mounted): enables
    /// what v2 offers, creates v1 roots `<own v1>/<name>` for the rest.
    pub fn create(host: &Host, name: &str, v2_root: Option<&Path>, needed: &[Controller]) -> Self {
        let mut out = Controllers::default();
        let mut rest: Vec<Controller> = needed.to_vec();
        if let (Some(root), Some(own)) = (v2_root, host.own_v2()) {
            let offered = list(&own.join("cgroup.controllers"));
            let wanted: Vec<Controller> = rest
                .iter()
                .copied()
                .filter(|c| offered.iter().any(|o| o == c.name()))
                .collect();
            if !wanted.is_empty() {
                let (enabled, why) = enable_v2(host, &own, root, name, &wanted, &mut out);
                for c in &wanted {
                    if !enabled.contains(c) {
                        out.missing.push((*c, why.clone()));
                    }
                }
                rest.retain(|c| !enabled.contains(c));
                out.v2 = enabled;
            }
        }
        for ctrl in rest {
            match create_v1(host, ctrl, name) {
                Ok(dir) => {
                    out.missing.retain(|(c, _)| *c != ctrl);
                    out.v1.push((ctrl, dir));
                }
                Err(why) => {
                    if !out.missing.iter().any(|(c, _)| *c == ctrl) {
                        out.missing.push((ctrl, why));
                    }
                }
            }
        }
        out
    }

    /// What would enforce each controller, without creating anything: for
    /// `procman validate`.
    pub fn probe(host: &Host) -> Vec<(Controller, Result<Enforcer, String>)> {
        let v2 = host.own_v2();
        Controller::ALL
            .iter()
            .map(|&ctrl| {
                let on_v2 = v2.as_ref().is_some_and(|own| {
                    let offered = list(&own.join("cgroup.controllers"))
                        .iter()
                        .any(|c| c == ctrl.name());
                    let enabled = list(&own.join("cgroup.subtree_control"))
                        .iter()
                        .any(|c| c == ctrl.name());
                    // To enable it the manager must be alone in its cgroup
                    // (it then moves itself into a leaf, see `make_room`).
                    offered && writable(own) && (enabled || alone(host, own))
                });
                let verdict = if on_v2 {
                    Ok(Enforcer::CgroupV2)
                } else {
                    match host.own_v1(ctrl) {
                        Some(dir) if !writable(&dir) => {
                            Err(format!("{} is not writable", dir.display()))
                        }
                        Some(dir)
                            if ctrl == Controller::Cpu
                                && !dir.join("cpu.cfs_quota_us").exists() =>
                        {
                            Err(NO_CFS_BANDWIDTH.to_string())
                        }
                        Some(_) => Ok(Enforcer::CgroupV1),
                        None => Err(absent(ctrl)),
                    }
                };
                (ctrl, verdict)
            })
            .collect()
    }

    pub fn v1_root(&self, ctrl: Controller) -> Option<&Path> {
        self.v1
            .iter()
            .find(|(c, _)| *c == ctrl)
            .map(|(_, d)| d.as_path())
    }

    pub fn on_v2(&self, ctrl: Controller) -> bool {
        self.v2.contains(&ctrl)
    }

    /// The controllers that are not available, with why.
    pub fn missing(&self) -> &[(Controller, String)] {
        &self.missing
    }

    /// Removes the v1 roots (empty by now) and gives the manager its own
    /// cgroup back if it moved.
    pub fn remove(&self, v2_root: Option<&Path>) {
        for (_, dir) in &self.v1 {
            // Per-process directories a last-resort exit did not remove.
            for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                if entry.path().is_dir() {
                    let _ = std::fs::remove_dir(entry.path());
                }
            }
            let _ = std::fs::remove_dir(dir);
        }
        if let Some((leaf, own)) = &self.moved {
            // The process root is gone: the own cgroup can drop the
            // controllers and take the manager back, and the leaf can go.
            if v2_root.is_some_and(Path::exists) {
                return;
            }
            let minus: Vec<String> = self.v2.iter().map(|c| format!("-{}", c.name())).collect();
            let _ = write(&own.join("cgroup.subtree_control"), &minus.join(" "));
            if write(&own.join("cgroup.procs"), "0").is_ok() {
                let _ = std::fs::remove_dir(leaf);
            }
        }
    }
}

const NO_CFS_BANDWIDTH: &str = "the kernel has no CPU bandwidth control (CONFIG_CFS_BANDWIDTH)";

/// Whether the manager is the only process of its own v2 cgroup.
fn alone(host: &Host, own: &Path) -> bool {
    others(host, own).is_empty()
}

/// The processes of `own` other than the manager.
fn others(host: &Host, own: &Path) -> Vec<String> {
    let procs = std::fs::read_to_string(own.join("cgroup.procs")).unwrap_or_default();
    let me = host.pid.to_string();
    procs
        .lines()
        .map(str::trim)
        .filter(|p| !p.is_empty() && *p != me)
        .map(str::to_string)
        .collect()
}

fn absent(ctrl: Controller) -> String {
    format!(
        "no cgroup hierarchy offers the {} controller to the manager",
        ctrl.name()
    )
}

/// Enables `wanted` in `own` and then in `root`; returns what got enabled
/// and, for the rest, why not.
fn enable_v2(
    host: &Host,
    own: &Path,
    root: &Path,
    name: &str,
    wanted: &[Controller],
    out: &mut Controllers,
) -> (Vec<Controller>, String) {
    let own_ctl = own.join("cgroup.subtree_control");
    let mut why = String::new();
    let already = list(&own_ctl);
    let (mut in_own, need): (Vec<Controller>, Vec<Controller>) = wanted
        .iter()
        .copied()
        .partition(|c| already.iter().any(|o| o == c.name()));
    if let Err(e) = enable(&own_ctl, &need, &mut in_own) {
        if e.raw_os_error() == Some(libc::EBUSY) {
            match make_room(host, own, name) {
                Ok(leaf) => {
                    out.moved = Some((leaf, own.to_path_buf()));
                    let rest: Vec<Controller> = need
                        .iter()
                        .copied()
                        .filter(|c| !in_own.contains(c))
                        .collect();
                    if let Err(e) = enable(&own_ctl, &rest, &mut in_own) {
                        why = format!("cannot enable it in {}: {e}", own_ctl.display());
                    }
                }
                Err(reason) => why = reason,
            }
        } else {
            why = format!("cannot enable it in {}: {e}", own_ctl.display());
        }
    }
    let root_ctl = root.join("cgroup.subtree_control");
    let mut enabled = Vec::new();
    for c in in_own {
        if let Err(e) = enable(&root_ctl, &[c], &mut enabled) {
            why = format!("cannot enable it in {}: {e}", root_ctl.display());
        }
    }
    (enabled, why)
}

/// Moves the manager into `<own>/<name>-manager` when it is the only
/// process of its own cgroup; else says who else is there.
fn make_room(host: &Host, own: &Path, name: &str) -> Result<PathBuf, String> {
    let others = others(host, own);
    if !others.is_empty() {
        let shown: Vec<&str> = others.iter().take(5).map(String::as_str).collect();
        return Err(format!(
            "the manager's cgroup {} also holds other processes ({}), so it cannot hand \
             controllers to its children; run procman in a cgroup of its own \
             (systemd: Delegate=yes; a container's entry point)",
            own.display(),
            shown.join(", ")
        ));
    }
    let leaf = own.join(format!("{name}-manager"));
    match std::fs::create_dir(&leaf) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(format!("cannot create {}: {e}", leaf.display())),
    }
    write(&leaf.join("cgroup.procs"), &host.pid.to_string())
        .map_err(|e| format!("cannot move the manager into {}: {e}", leaf.display()))?;
    tracing::info!(leaf = %leaf.display(),
        "moved the manager into a leaf cgroup so that its processes can have resource controllers");
    Ok(leaf)
}

/// Writes `+<controller>` for each of `ctrls`, adding each success to
/// `done`; stops at the first failure.
fn enable(file: &Path, ctrls: &[Controller], done: &mut Vec<Controller>) -> io::Result<()> {
    for &c in ctrls {
        write(file, &format!("+{}", c.name()))?;
        done.push(c);
    }
    Ok(())
}

/// Stops what an earlier manager left in `<own v1>/<name>` of every
/// controller, and removes those directories.
pub(crate) fn sweep_v1(host: &Host, name: &str, keep: &[String]) {
    for ctrl in Controller::ALL {
        let Some(dir) = host.own_v1(ctrl).map(|own| own.join(name)) else {
            continue;
        };
        if dir.is_dir() {
            super::leftovers::sweep(&dir, keep);
            let _ = std::fs::remove_dir(&dir);
        }
    }
}

fn create_v1(host: &Host, ctrl: Controller, name: &str) -> Result<PathBuf, String> {
    let own = host.own_v1(ctrl).ok_or_else(|| absent(ctrl))?;
    let dir = own.join(name);
    match std::fs::create_dir(&dir) {
        Ok(()) => {}
        // Swept at start already (`sweep_v1`): what is left belongs to
        // processes being re-attached.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(format!("cannot create {}: {e}", dir.display())),
    }
    if ctrl == Controller::Cpu && !dir.join("cpu.cfs_quota_us").exists() {
        let _ = std::fs::remove_dir(&dir);
        return Err(NO_CFS_BANDWIDTH.into());
    }
    Ok(dir)
}

/// The words of a space-separated cgroup list file.
fn list(file: &Path) -> Vec<String> {
    std::fs::read_to_string(file)
        .map(|s| s.split_ascii_whitespace().map(str::to_string).collect())
        .unwrap_or_default()
}

fn writable(dir: &Path) -> bool {
    rustix::fs::access(dir, rustix::fs::Access::WRITE_OK).is_ok()
}

/// Writes `value` to an existing cgroup file (never creates one).
pub(crate) fn write(file: &Path, value: &str) -> io::Result<()> {
    use std::io::Write;
    // O_TRUNC is ignored by cgroupfs (as for a shell's `>`), and keeps a
    // fake cgroupfs of regular files faithful.
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(file)?;
    f.write_all(value.as_bytes())
}

#[cfg(test)]
#[path = "tests/limits.rs"]
mod tests;
