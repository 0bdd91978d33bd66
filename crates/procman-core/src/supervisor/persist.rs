//! A process's state file, kept in step with its runs: written when a run
//! is spawned or re-attached, removed when the run ends (a process that is
//! not running has nothing to re-attach to), written once more when the
//! manager detaches.
//!
//! The write itself (one `pwrite` over the record's slot, see
//! `state/slots.rs`) is made at once, by the supervisor, before the run's
//! output is read: a manager killed a moment after a spawn leaves a state
//! file for it, and a removal can never be overtaken by an older write. It
//! is not `fsync`ed: a record only names processes of the boot that wrote
//! it, and the page cache outlives a crash of the manager, which is what
//! the file is for; only a detach, after which no manager runs, flushes it.

use std::os::fd::{OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::state::ProcessStatus;
use super::task::Task;
use crate::config::ProcessConfig;
use crate::logs::Stream;
use crate::platform::adopt;
use crate::policy::Breaker;
use crate::state::record::{BreakerRecord, HeldPipe, ProcessRecord, VERSION};
use crate::state::slots::Records;

/// One process's state file: its record in the manager's [`Records`].
#[derive(Debug)]
pub(super) struct StateFile {
    /// `None`: the manager keeps no state (an embedder without a state
    /// directory).
    records: Option<Arc<Records>>,
    id: String,
}

impl StateFile {
    pub(super) fn new(records: Option<Arc<Records>>, id: &str) -> StateFile {
        StateFile {
            records,
            id: id.to_string(),
        }
    }

    /// Writes `record` now.
    pub(super) fn save(&self, record: &ProcessRecord) {
        let Some(records) = &self.records else {
            return;
        };
        if let Err(e) = records.save(record, false) {
            tracing::warn!(process = %self.id, error = %e,
                "cannot write the process's state file; a manager restarted now could not re-attach to it");
        }
    }

    /// Writes `record` and returns once it is on disk (a detach).
    pub(super) async fn save_now(&self, record: ProcessRecord) {
        let Some(records) = self.records.clone() else {
            return;
        };
        let id = self.id.clone();
        let saved = tokio::task::spawn_blocking(move || records.save(&record, true)).await;
        if let Ok(Err(e)) = saved {
            tracing::warn!(process = %id, error = %e,
                "cannot write the process's state file; the next manager will not re-attach to it");
        }
    }

    /// Removes the record.
    pub(super) fn remove(&self) {
        if let Some(records) = &self.records {
            if let Err(e) = records.remove(&self.id) {
                tracing::warn!(process = %self.id, error = %e, "cannot remove the process's state file");
            }
        }
    }
}

/// Copies of the read ends of a run's pipes for the child to hold (each at
/// its descriptor, see `adopt.rs`), and what the state file says of them.
/// A copy that cannot be made is no reason not to run the process: that
/// stream is then not found again by a new manager.
pub(super) fn held_pipes(readers: &[(Stream, OwnedFd)]) -> (Vec<(OwnedFd, RawFd)>, Vec<HeldPipe>) {
    let mut copies = Vec::new();
    let mut held = Vec::new();
    for (stream, fd) in readers {
        let at = match stream {
            Stream::Stdout => adopt::HOLD_FDS[0],
            Stream::Stderr => adopt::HOLD_FDS[1],
        };
        if let (Ok(copy), Ok(inode)) = (fd.try_clone(), adopt::pipe_inode(fd)) {
            copies.push((copy, at));
            held.push(HeldPipe {
                stream: stream.as_str().to_string(),
                fd: at,
                inode,
            });
        }
    }
    (copies, held)
}

/// A stable digest of a process's configuration (its whole parsed form),
/// as the state file holds it (see [`hash_text`]).
pub(crate) fn config_digest(cfg: &ProcessConfig) -> u64 {
    use std::fmt::Write as _;
    // Hashed as it is formatted: the same digest as of the whole text,
    // without making the text (some kilobytes per process).
    let mut fnv = Fnv(FNV_START);
    let _ = write!(fnv, "{cfg:?}");
    fnv.0
}

/// FNV-1a fed by a formatter.
struct Fnv(u64);

impl std::fmt::Write for Fnv {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0 = fnv(self.0, s.as_bytes());
        Ok(())
    }
}

/// How a config digest is written in a state file.
pub(crate) fn hash_text(digest: u64) -> String {
    format!("{digest:016x}")
}

impl Task {
    /// [`config_digest`] of this process's config, made once per config
    /// (every spawn writes it; a reload's new config makes it again). A
    /// digest of 0 is made each time (one config in 2^64).
    pub(super) fn config_digest(&self) -> u64 {
        use std::sync::atomic::Ordering::Relaxed;
        match self.cfg_digest.load(Relaxed) {
            0 => {
                let d = config_digest(&self.cfg);
                self.cfg_digest.store(d, Relaxed);
                d
            }
            d => d,
        }
    }
}

/// FNV-1a: stable across builds and runs (unlike std's hasher).
pub(crate) fn digest(bytes: &[u8]) -> u64 {
    fnv(FNV_START, bytes)
}

const FNV_START: u64 = 0xcbf2_9ce4_8422_2325;

/// FNV-1a of `bytes`, going on from `h`.
fn fnv(mut h: u64, bytes: &[u8]) -> u64 {
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The digest of the file at `path` now (`None` when it cannot be read).
pub(crate) fn file_digest(path: &Path) -> Option<u64> {
    std::fs::read(path).ok().map(|b| digest(&b))
}

/// What a run leaves in the state file.
pub(super) struct RunFacts<'a> {
    /// `None`: the run is about to be spawned (see `ProcessRecord::pid`).
    pub(super) pid: Option<u32>,
    pub(super) cgroup: Option<&'a Path>,
    pub(super) pipes: Vec<HeldPipe>,
    pub(super) port: Option<u16>,
}

/// The record of the current run, with the counters of `status`.
pub(super) fn record(
    cfg: &ProcessConfig,
    cfg_digest: u64,
    status: &ProcessStatus,
    breaker: &Breaker,
    run: RunFacts<'_>,
) -> ProcessRecord {
    let started_at_ms = status.started_at.and_then(|t| {
        t.duration_since(std::time::UNIX_EPOCH)
            .ok()
            .map(|d| d.as_millis() as u64)
    });
    ProcessRecord {
        version: VERSION,
        id: cfg.id.clone(),
        pid: run.pid,
        start_time: run.pid.and_then(adopt::start_time),
        boot_id: adopt::boot_id().to_string(),
        config_hash: hash_text(cfg_digest),
        cgroup: run.cgroup.map(PathBuf::from),
        run: status.runs,
        restarts: status.restarts,
        restart_causes: status
            .restart_causes
            .iter()
            .map(|(k, n)| (k.to_string(), n))
            .collect(),
        breaker: BreakerRecord {
            open: false,
            recent_restarts: breaker.recent_restarts(),
            attempt: breaker.attempt(),
        },
        started_at_ms,
        pipes: run.pipes,
        port: run.port,
        manager_pid: std::process::id(),
    }
}

#[cfg(test)]
mod tests {
    /// The digest hashed while formatting is the digest of the formatted
    /// text, which records written by earlier managers hold: a config
    /// unchanged across an upgrade is still seen as unchanged.
    #[test]
    fn config_digest_is_the_digest_of_the_debug_text() {
        let config = crate::config::load_str(
            "managed_processes:\n  - id: web\n    management:\n      control: {executable: sleep, arguments: ['1']}\n",
            std::path::Path::new("t.yaml"),
            &|_| None,
        )
        .expect("valid");
        let cfg = &config.processes[0];
        assert_eq!(
            super::config_digest(cfg),
            super::digest(format!("{cfg:?}").as_bytes())
        );
        assert_ne!(super::config_digest(cfg), super::digest(b""));
    }

    /// Keys added later are left out of the text at their defaults, so a
    /// config that does not use them keeps the digest that records
    /// written before they existed hold.
    #[test]
    fn later_keys_at_their_defaults_leave_the_digest_alone() {
        let load = |extra: &str| {
            let text = format!("managed_processes:\n  - id: web\n{extra}    management:\n      control: {{executable: sleep}}\n");
            crate::config::load_str(&text, std::path::Path::new("t.yaml"), &|_| None)
                .expect("valid")
                .processes[0]
                .clone()
        };
        let plain = format!("{:?}", load(""));
        assert!(
            plain.ends_with("depends_on: [], discovery: None }"),
            "{plain}"
        );
        let same = load("    shutdown_on_exit: false\n");
        assert_eq!(super::config_digest(&same), super::digest(plain.as_bytes()));
        let set = load("    shutdown_on_exit: true\n    export: {image: 'web:1'}\n");
        let text = format!("{set:?}");
        assert!(text.contains("shutdown_on_exit: true"), "{text}");
        assert!(text.contains("web:1"), "{text}");
        assert!(set.shutdown_on_exit);
        let image = set.export.as_ref().and_then(|e| e.image.as_deref());
        assert_eq!(image, Some("web:1"));
    }
}
