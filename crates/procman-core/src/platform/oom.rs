//! Hearing of the kernel's OOM kills in a process's memory cgroup, without
//! polling.
//!
//! - cgroup v2: `memory.events` counts `oom_kill`; the kernel notifies
//!   every change of the file, which inotify sees as a modification.
//! - cgroup v1: `memory.oom_control` counts `oom_kill`; an eventfd
//!   registered through `cgroup.event_control` fires when the cgroup
//!   meets its limit (and when the cgroup goes).
//!
//! Either way the counter is read when the event fires, and when the run
//! ends (so an OOM kill of the main process is known even if its exit is
//! seen first): a kill is a counter above the one read before the run.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use tokio::io::unix::AsyncFd;

use super::cgroup::Watch;
use super::limits::{write, Enforcer};

/// The OOM kills of one run.
#[derive(Debug)]
pub struct OomWatch {
    /// The counter file (`memory.events` or `memory.oom_control`).
    file: PathBuf,
    baseline: u64,
    source: Source,
}

#[derive(Debug)]
enum Source {
    V2(Watch),
    V1 {
        event: AsyncFd<OwnedFd>,
        /// The `memory.oom_control` descriptor the event is registered on:
        /// it must stay open for as long as the registration.
        _control: OwnedFd,
    },
}

impl OomWatch {
    /// Starts watching the memory cgroup `dir` (`enforcer` says which
    /// version it is). Reads the counter now: kills before are not ours.
    pub(crate) fn open(enforcer: Enforcer, dir: &Path) -> io::Result<OomWatch> {
        let (file, source) = match enforcer {
            Enforcer::CgroupV2 => {
                let file = dir.join("memory.events");
                let watch = Watch::new(&file)?;
                (file, Source::V2(watch))
            }
            _ => {
                let file = dir.join("memory.oom_control");
                let control = OwnedFd::from(std::fs::File::open(&file)?);
                let efd = rustix::event::eventfd(
                    0,
                    rustix::event::EventfdFlags::CLOEXEC | rustix::event::EventfdFlags::NONBLOCK,
                )?;
                let line = format!("{} {}", efd.as_raw_fd(), control.as_raw_fd());
                write(&dir.join("cgroup.event_control"), &line)?;
                let event = super::readable_fd(efd).map_err(|(_, e)| e)?;
                (
                    file,
                    Source::V1 {
                        event,
                        _control: control,
                    },
                )
            }
        };
        let baseline = kills(&file);
        Ok(OomWatch {
            file,
            baseline,
            source,
        })
    }

    /// OOM kills in the cgroup since the watch began.
    pub fn kills(&self) -> u64 {
        kills(&self.file).saturating_sub(self.baseline)
    }

    /// Waits for the first OOM kill of the run; returns how many there
    /// were by then. Pending for good if the event source fails.
    pub async fn fired(&mut self) -> u64 {
        loop {
            let n = self.kills();
            if n > 0 {
                return n;
            }
            let fd = match &self.source {
                Source::V2(w) => &w.fd,
                Source::V1 { event, .. } => event,
            };
            let Ok(mut guard) = fd.readable().await else {
                return std::future::pending().await;
            };
            match &self.source {
                Source::V2(w) => w.drain(),
                Source::V1 { event, .. } => {
                    let mut buf = [0u8; 8];
                    let _ = rustix::io::read(event.get_ref(), &mut buf);
                }
            }
            guard.clear_ready();
            if !self.file.exists() {
                // The cgroup went (v1 fires its events then): nothing more.
                return std::future::pending().await;
            }
            if let Source::V1 { .. } = self.source {
                // v1 notifies when the cgroup runs out of memory, before
                // the OOM killer has picked and killed its victim: look
                // again a few times, for a bounded second, not for ever.
                for _ in 0..10 {
                    if self.kills() > 0 {
                        break;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            }
        }
    }
}

/// `oom_kill N` from a `memory.events` or `memory.oom_control` file.
pub(crate) fn kills(file: &Path) -> u64 {
    std::fs::read_to_string(file)
        .ok()
        .and_then(|s| parse_kills(&s))
        .unwrap_or(0)
}

pub(crate) fn parse_kills(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .and_then(|n| n.trim().parse().ok())
}
