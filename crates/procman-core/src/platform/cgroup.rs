//! A cgroup v2 directory used to hold one process tree.
//!
//! Only membership is used here (resource controllers come with limits):
//! `cgroup.procs` lists every member, `cgroup.kill` kills them all at once,
//! and `cgroup.events` says `populated 0` when the last one is gone, with an
//! inotify event on every change. Membership works on any v2 hierarchy,
//! including a hybrid host's `unified` mount with no controllers.

use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::Instant;

use tokio::io::unix::AsyncFd;

use super::limits::Host;

/// The cgroup v2 directory this process belongs to, if a v2 hierarchy is
/// mounted: `<mount point>` + the `0::<path>` line of `/proc/self/cgroup`,
/// and that path itself (`/` at the root). See [`Host::own_v2`].
pub(crate) fn own_cgroup() -> Option<(PathBuf, String)> {
    let host = Host::current();
    let dir = host.own_v2()?;
    let rel = host.own.lines().find_map(|l| l.strip_prefix("0::"))?.trim();
    Some((dir, rel.to_string()))
}

pub(crate) fn open_procs(dir: &Path) -> io::Result<OwnedFd> {
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(dir.join("cgroup.procs"))?;
    Ok(OwnedFd::from(f))
}

pub(crate) fn members(dir: &Path) -> Vec<u32> {
    std::fs::read_to_string(dir.join("cgroup.procs"))
        .map(|s| s.lines().filter_map(|l| l.trim().parse().ok()).collect())
        .unwrap_or_default()
}

/// `populated` from `cgroup.events`; a missing directory is empty.
pub(crate) fn populated(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("cgroup.events"))
        .map(|s| s.lines().any(|l| l.trim() == "populated 1"))
        .unwrap_or(false)
}

/// Writes `1` to `cgroup.kill` (kernel 5.14+). `false` when the file is
/// missing, so the caller falls back to signalling each member.
pub(crate) fn kill(dir: &Path) -> bool {
    use std::io::Write;
    // Never create the file: on an older kernel it does not exist.
    std::fs::OpenOptions::new()
        .write(true)
        .open(dir.join("cgroup.kill"))
        .and_then(|mut f| f.write_all(b"1"))
        .is_ok()
}

/// Waits until the cgroup has no process left, or until `deadline`.
/// Event-driven: inotify on `cgroup.events`. Returns whether it emptied.
pub(crate) async fn wait_empty(dir: &Path, deadline: Instant) -> bool {
    let watch = match Watch::new(&dir.join("cgroup.events")) {
        Ok(w) => w,
        Err(e) => {
            tracing::debug!(error = %e, dir = %dir.display(), "cannot watch cgroup.events");
            return !populated(dir);
        }
    };
    loop {
        if !populated(dir) {
            return true;
        }
        let ready = tokio::time::timeout_at(deadline.into(), watch.fd.readable()).await;
        match ready {
            Err(_) => return !populated(dir),
            Ok(Ok(mut guard)) => {
                watch.drain();
                guard.clear_ready();
            }
            Ok(Err(_)) => return !populated(dir),
        }
    }
}

/// Inotify on one cgroup file: the kernel notifies a change of
/// `cgroup.events` or `memory.events` as a modification.
pub(crate) struct Watch {
    pub(crate) fd: AsyncFd<OwnedFd>,
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Watch")
    }
}

impl Watch {
    pub(crate) fn new(file: &Path) -> io::Result<Watch> {
        use rustix::fs::inotify::{self, CreateFlags, WatchFlags};
        let fd = inotify::init(CreateFlags::NONBLOCK | CreateFlags::CLOEXEC)?;
        inotify::add_watch(&fd, file, WatchFlags::MODIFY)?;
        let fd = super::readable_fd(fd).map_err(|(_, e)| e)?;
        Ok(Watch { fd })
    }

    pub(crate) fn drain(&self) {
        let mut buf = [0u8; 1024];
        while let Ok(n) = rustix::io::read(self.fd.get_ref(), &mut buf) {
            if n == 0 {
                break;
            }
        }
    }
}

/// Whether the process `pid` is in the cgroup `rel` (its path below the v2
/// mount, as `/proc/<pid>/cgroup` writes it after `0::`).
pub(crate) fn contains(rel: &str, pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .map(|s| s.lines().any(|l| l.strip_prefix("0::") == Some(rel)))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    //! The kernel's file formats, written into a temporary directory: these
    //! run the same on a v1, hybrid or v2 host.
    use super::*;
    use std::time::Duration;

    const HYBRID: &str = "\
25 1 0:23 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
42 31 0:39 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
";
    const PURE_V2: &str = "\
22 1 0:20 / /proc rw - proc proc rw
30 1 0:26 / /sys/fs/cgroup rw,nosuid,nodev - cgroup2 cgroup2 rw,nsdelegate
";
    const V1_ONLY: &str = "42 31 0:39 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n";

    #[test]
    fn own_cgroup_is_found_on_v2_and_hybrid_hosts_and_not_on_v1() {
        let cases = [
            (
                PURE_V2,
                "0::/system.slice/app.service\n",
                Some("/sys/fs/cgroup/system.slice/app.service"),
            ),
            (PURE_V2, "0::/\n", Some("/sys/fs/cgroup")),
            (
                HYBRID,
                "4:memory:/x\n0::/\n",
                Some("/sys/fs/cgroup/unified"),
            ),
            (
                HYBRID,
                "4:memory:/x\n0::/session-3.scope\n",
                Some("/sys/fs/cgroup/unified/session-3.scope"),
            ),
            (V1_ONLY, "4:memory:/x\n", None),
            (PURE_V2, "4:memory:/x\n", None),
        ];
        for (mountinfo, own, want) in cases {
            let host = Host {
                mountinfo: mountinfo.to_string(),
                own: own.to_string(),
                prefix: PathBuf::from("/"),
                pid: 1,
            };
            assert_eq!(host.own_v2(), want.map(PathBuf::from), "{own:?}");
        }
    }

    fn fake_cgroup(procs: &str, populated: bool) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("cgroup.procs"), procs).unwrap();
        let events = format!("populated {}\nfrozen 0\n", u8::from(populated));
        std::fs::write(dir.path().join("cgroup.events"), events).unwrap();
        dir
    }

    #[test]
    fn members_and_populated_follow_the_kernel_formats() {
        let dir = fake_cgroup("12\n345\n", true);
        assert_eq!(members(dir.path()), [12, 345]);
        assert!(populated(dir.path()));
        let empty = fake_cgroup("", false);
        assert!(members(empty.path()).is_empty());
        assert!(!populated(empty.path()));
        assert!(
            !populated(&dir.path().join("gone")),
            "a missing cgroup is empty"
        );
    }

    #[test]
    fn kill_writes_1_to_cgroup_kill_and_reports_a_missing_file() {
        let dir = fake_cgroup("1\n", true);
        assert!(!kill(dir.path()), "no cgroup.kill: older kernel");
        std::fs::write(dir.path().join("cgroup.kill"), "").unwrap();
        assert!(kill(dir.path()));
        assert_eq!(
            std::fs::read_to_string(dir.path().join("cgroup.kill")).unwrap(),
            "1"
        );
    }

    #[tokio::test]
    async fn wait_empty_wakes_on_the_change_of_cgroup_events() {
        let dir = fake_cgroup("7\n", true);
        let events = dir.path().join("cgroup.events");
        let writer = {
            let events = events.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(100)).await;
                std::fs::write(&events, "populated 0\nfrozen 0\n").unwrap();
            })
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        assert!(wait_empty(dir.path(), deadline).await);
        writer.await.unwrap();
        let still = fake_cgroup("7\n", true);
        let soon = std::time::Instant::now() + Duration::from_millis(50);
        assert!(
            !wait_empty(still.path(), soon).await,
            "times out while populated"
        );
    }
}
