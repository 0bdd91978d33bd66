//! A process's state file, kept in step with its runs: written when a run
//! is spawned or re-attached, removed when the run ends (a process that is
//! not running has nothing to re-attach to), written once more when the
//! manager detaches.
//!
//! Writes go to blocking threads, at most [`AT_ONCE`] at a time, so that
//! 500 spawns never wait on 500 `fsync`s; they are applied in the order
//! they were asked for (a later request overtaken by none before it), so
//! a removal is never undone by a slow write that was asked for earlier.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Semaphore;

use super::state::ProcessStatus;
use crate::config::ProcessConfig;
use crate::platform::adopt;
use crate::policy::Breaker;
use crate::state::record::{BreakerRecord, HeldPipe, ProcessRecord, VERSION};

/// State file writes on blocking threads at once, across all processes.
const AT_ONCE: usize = 8;
static WRITES: Semaphore = Semaphore::const_new(AT_ONCE);

enum Op {
    Save(Box<ProcessRecord>),
    Remove,
}

/// One process's state file.
#[derive(Debug)]
pub(super) struct StateFile {
    /// `None`: the manager keeps no state (an embedder without a state
    /// directory).
    state_dir: Option<Arc<Path>>,
    id: String,
    /// The number of the last request made.
    asked: AtomicU64,
    /// The number of the last request applied.
    applied: Arc<Mutex<u64>>,
}

impl StateFile {
    pub(super) fn new(state_dir: Option<Arc<Path>>, id: &str) -> StateFile {
        StateFile {
            state_dir,
            id: id.to_string(),
            asked: AtomicU64::new(0),
            applied: Arc::new(Mutex::new(0)),
        }
    }

    /// Writes `record`, in the background.
    pub(super) fn save(&self, record: ProcessRecord) {
        self.submit(Op::Save(Box::new(record)));
    }

    /// Removes the file, in the background.
    pub(super) fn remove(&self) {
        self.submit(Op::Remove);
    }

    /// Writes `record` and returns once it is on disk (a detach).
    pub(super) async fn save_now(&self, record: ProcessRecord) {
        if let Some(task) = self.apply(Op::Save(Box::new(record))) {
            let _ = task.await;
        }
    }

    fn submit(&self, op: Op) {
        if let Some(task) = self.apply(op) {
            drop(task);
        }
    }

    fn apply(&self, op: Op) -> Option<tokio::task::JoinHandle<()>> {
        let dir = self.state_dir.clone()?;
        let seq = self.asked.fetch_add(1, Ordering::Relaxed) + 1;
        let (applied, id) = (self.applied.clone(), self.id.clone());
        Some(tokio::spawn(async move {
            // Never closed: `acquire` cannot fail.
            let _permit = WRITES.acquire().await.ok();
            let done = tokio::task::spawn_blocking(move || {
                let mut last = applied.lock().unwrap_or_else(|p| p.into_inner());
                if seq < *last {
                    return; // A later request was applied already.
                }
                let result = match &op {
                    Op::Save(record) => record.save(&dir),
                    Op::Remove => ProcessRecord::remove(&dir, &id),
                };
                if let Err(e) = result {
                    tracing::warn!(process = %id, error = %e,
                        "cannot write the process's state file; a manager restarted now could not re-attach to it");
                }
                *last = seq;
            });
            let _ = done.await;
        }))
    }
}

/// A stable hash of a process's configuration (its whole parsed form).
pub(crate) fn config_hash(cfg: &ProcessConfig) -> String {
    let text = format!("{cfg:?}");
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
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
