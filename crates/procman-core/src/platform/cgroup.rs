//! A cgroup v2 directory used to hold one process tree.
//!
//! Only membership is used here (resource controllers come with limits):
//! `cgroup.procs` lists every member, `cgroup.kill` kills them all at once,
//! and `cgroup.events` says `populated 0` when the last one is gone, with an
//! inotify event on every change. Membership works on any v2 hierarchy,
//! including a hybrid host's `unified` mount with no controllers.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Instant;

use tokio::io::unix::AsyncFd;

/// The cgroup v2 directory this process belongs to, if a v2 hierarchy is
/// mounted: `<mount point>` + the `0::<path>` line of `/proc/self/cgroup`.
pub(crate) fn own_cgroup() -> Option<PathBuf> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mount = mountinfo.lines().find_map(|line| {
        let (pre, post) = line.split_once(" - ")?;
        let fstype = post.split_ascii_whitespace().next()?;
        (fstype == "cgroup2").then(|| pre.split_ascii_whitespace().nth(4).map(PathBuf::from))?
    })?;
    let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let rel = own.lines().find_map(|l| l.strip_prefix("0::"))?;
    let rel = rel.trim().trim_start_matches('/');
    Some(if rel.is_empty() {
        mount
    } else {
        mount.join(rel)
    })
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
    std::fs::write(dir.join("cgroup.kill"), b"1").is_ok()
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

struct Watch {
    fd: AsyncFd<OwnedFd>,
}

impl Watch {
    fn new(file: &Path) -> io::Result<Watch> {
        use std::os::unix::ffi::OsStrExt;
        let c = std::ffi::CString::new(file.as_os_str().as_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path has a NUL byte"))?;
        // SAFETY: inotify_init1 takes flags only.
        let raw = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: `fd` is a valid inotify descriptor and `c` a valid C string.
        let wd = unsafe { libc::inotify_add_watch(fd.as_raw_fd(), c.as_ptr(), libc::IN_MODIFY) };
        if wd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is an open descriptor owned by the AsyncFd from now
        // on; OwnedFd always returns the same raw fd until it is dropped.
        let fd = unsafe { AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) }
            .map_err(|e| e.into_parts().1)?;
        Ok(Watch { fd })
    }

    fn drain(&self) {
        let mut buf = [0u8; 1024];
        loop {
            // SAFETY: `buf` is a valid writable buffer of the given length.
            let n = unsafe {
                libc::read(
                    self.fd.get_ref().as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                )
            };
            if n <= 0 {
                break;
            }
        }
    }
}
