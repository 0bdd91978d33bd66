//! A process's state file, kept in step with its runs: written when a run
//! is spawned or re-attached, removed when the run ends (a process that is
//! not running has nothing to re-attach to), written once more when the
//! manager detaches.
//!
//! The write itself (a small temporary file renamed over the old one) is
//! made at once, by the supervisor, before the run's output is read: a
//! manager killed a moment after a spawn leaves a state file for it, and
//! a removal can never be overtaken by an older write. The `fsync` that
//! follows goes to a blocking thread, at most [`AT_ONCE`] at a time, so
//! that 500 spawns never wait on 500 disk flushes; it only matters against
//! a crash of the whole machine, after which no process survives anyway.
//!
//! The removal goes to a blocking thread too: unlinking a file that was
//! flushed frees its blocks, which on a file system mounted with `discard`
//! waits for the device (some 150 µs a file, two files a process: at a
//! shutdown of 500, a runtime thread would wait there for the others'
//! stops). It stays in order with the writes: a write made after it was
//! asked for is never removed by it (the two take one lock, and the
//! removal does nothing once a write came), and the supervisor waits for
//! it before it ends ([`StateFile::settled`]).

use std::os::fd::{OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Semaphore;

use super::state::ProcessStatus;
use crate::config::ProcessConfig;
use crate::logs::Stream;
use crate::platform::adopt;
use crate::policy::Breaker;
use crate::state::record::{BreakerRecord, HeldPipe, ProcessRecord, VERSION};

/// `fsync`s of state files on blocking threads at once, across all
/// processes.
const AT_ONCE: usize = 8;
static SYNCS: Semaphore = Semaphore::const_new(AT_ONCE);

/// One process's state file.
#[derive(Debug)]
pub(super) struct StateFile {
    /// `None`: the manager keeps no state (an embedder without a state
    /// directory).
    state_dir: Option<Arc<Path>>,
    id: String,
    /// How many writes so far, taken by every write and removal: see
    /// [`StateFile::remove`].
    writes: Arc<Mutex<u64>>,
    /// The removal under way on a blocking thread, if any.
    removing: Option<tokio::task::JoinHandle<()>>,
}

impl StateFile {
    pub(super) fn new(state_dir: Option<Arc<Path>>, id: &str) -> StateFile {
        StateFile {
            state_dir,
            id: id.to_string(),
            writes: Arc::default(),
            removing: None,
        }
    }

    fn writes(&self) -> MutexGuard<'_, u64> {
        // Nothing panics while holding it; a poisoned count is still right.
        self.writes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes `record` now, and `fsync`s it in the background.
    pub(super) fn save(&self, record: &ProcessRecord) {
        let Some(dir) = self.state_dir.clone() else {
            return;
        };
        let mut writes = self.writes();
        *writes += 1;
        let saved = record.save_unsynced(&dir);
        drop(writes);
        if let Err(e) = saved {
            tracing::warn!(process = %self.id, error = %e,
                "cannot write the process's state file; a manager restarted now could not re-attach to it");
            return;
        }
        let id = self.id.clone();
        tokio::spawn(async move {
            // Never closed: `acquire` cannot fail.
            let _permit = SYNCS.acquire().await.ok();
            let synced = tokio::task::spawn_blocking(move || ProcessRecord::sync(&dir, &id));
            if let Ok(Err(e)) = synced.await {
                tracing::debug!(error = %e, "cannot fsync a state file");
            }
        });
    }

    /// Writes `record` and returns once it is on disk (a detach).
    pub(super) async fn save_now(&mut self, record: ProcessRecord) {
        self.settled().await;
        let Some(dir) = self.state_dir.clone() else {
            return;
        };
        let id = self.id.clone();
        *self.writes() += 1;
        let saved = tokio::task::spawn_blocking(move || record.save(&dir)).await;
        if let Ok(Err(e)) = saved {
            tracing::warn!(process = %id, error = %e,
                "cannot write the process's state file; the next manager will not re-attach to it");
        }
    }

    /// Removes the file, on a blocking thread (here without a runtime),
    /// unless a write comes first.
    pub(super) fn remove(&mut self) {
        let Some(dir) = self.state_dir.clone() else {
            return;
        };
        let seen = *self.writes();
        let writes = self.writes.clone();
        let id = self.id.clone();
        let remove = move || {
            let now = writes.lock().unwrap_or_else(|p| p.into_inner());
            // Written again since: that file is a newer run's.
            if *now != seen {
                return;
            }
            if let Err(e) = ProcessRecord::remove(&dir, &id) {
                tracing::warn!(process = %id, error = %e, "cannot remove the process's state file");
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                // The one before has nothing left to do once this one runs.
                self.removing = Some(rt.spawn_blocking(remove));
            }
            Err(_) => remove(),
        }
    }

    /// Returns once the removal under way, if any, is done.
    pub(super) async fn settled(&mut self) {
        if let Some(removing) = self.removing.take() {
            let _ = removing.await;
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

/// A stable hash of a process's configuration (its whole parsed form).
pub(crate) fn config_hash(cfg: &ProcessConfig) -> String {
    format!("{:016x}", digest(format!("{cfg:?}").as_bytes()))
}

/// FNV-1a: stable across builds and runs (unlike std's hasher).
pub(crate) fn digest(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
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
    pub(super) pid: u32,
    pub(super) cgroup: Option<&'a Path>,
    pub(super) pipes: Vec<HeldPipe>,
    pub(super) port: Option<u16>,
}

/// The record of the current run, with the counters of `status`.
pub(super) fn record(
    cfg: &ProcessConfig,
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
        pid: Some(run.pid),
        start_time: adopt::start_time(run.pid),
        boot_id: adopt::boot_id().to_string(),
        config_hash: config_hash(cfg),
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
