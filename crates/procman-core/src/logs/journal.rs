//! The spools of one process's log and what ties them together: which are
//! open for the current run, the write counter their checkpoints share,
//! the repair of the log once per manager, and the fallback when a spool
//! cannot be used.
//!
//! Invariants:
//! - Every write to the log is followed by a checkpoint in one of the
//!   process's spools, under the log's lock (see `ProcessLog::write_marked`),
//!   as long as the spools are open. If they cannot all be opened, none is
//!   used, and their files are removed: a checkpoint older than writes
//!   that were not recorded must never drive a repair.
//! - Lock order: a spool's lock, then the log file's lock.
//! - Spools are open from the start of a run (or a re-attach, or a
//!   recovery) to its end, like the log file: a process that does not run
//!   holds no descriptor.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use super::checkpoint::FileId;
use super::ledger::{self, Relayed};
use super::record::Stream;
use super::repair::Repaired;
use super::spool::{self, Spool};

/// A spool shared by its stream's pump and the run's start and end.
pub(crate) type Shared = Arc<Mutex<Spool>>;

const STREAMS: [Stream; 2] = [Stream::Stdout, Stream::Stderr];

/// The spools of one process.
#[derive(Debug)]
pub(crate) struct Journal {
    dir: PathBuf,
    /// False for a log that needs none (raw and not rotated: its file is
    /// its own record): spool files left by another format are removed.
    active: bool,
    /// Open for the current run, stdout then stderr.
    slots: Mutex<[Option<Shared>; 2]>,
    /// The log was repaired (or needed none) since this manager started.
    repaired: AtomicBool,
    /// The process's write counter, shared by its spools' checkpoints.
    gen: AtomicU64,
    /// A fallback was reported (once per process).
    warned: AtomicBool,
}

/// Locks a spool; a panic while it was held leaves a spool whose
/// checkpoint is still valid, so it is used on.
pub(crate) fn lock(spool: &Shared) -> MutexGuard<'_, Spool> {
    spool.lock().unwrap_or_else(|p| p.into_inner())
}

fn index(stream: Stream) -> usize {
    match stream {
        Stream::Stdout => 0,
        Stream::Stderr => 1,
    }
}

impl Journal {
    pub(crate) fn new(dir: &Path, active: bool) -> Journal {
        Journal {
            dir: dir.to_path_buf(),
            active,
            slots: Mutex::new([None, None]),
            repaired: AtomicBool::new(false),
            gen: AtomicU64::new(0),
            warned: AtomicBool::new(false),
        }
    }

    fn slots(&self) -> MutexGuard<'_, [Option<Shared>; 2]> {
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The spool of `stream`, when open.
    pub(crate) fn spool(&self, stream: Stream) -> Option<Shared> {
        self.slots()[index(stream)].clone()
    }

    /// The open spools.
    pub(crate) fn open_spools(&self) -> Vec<Shared> {
        self.slots().iter().flatten().cloned().collect()
    }

    /// The next write number (under the log's lock).
    pub(crate) fn next_gen(&self) -> u64 {
        self.gen.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Closes the spools (the run ended). One a pump still holds (one
    /// the drain gave up on, finishing its last round) stays, so that the
    /// next run shares it instead of opening the file a second time.
    pub(crate) fn close(&self) {
        for slot in self.slots().iter_mut() {
            if slot.as_ref().is_some_and(|s| Arc::strong_count(s) == 1) {
                *slot = None;
            }
        }
    }

    /// The ledger of the process `id`'s relayed raw output.
    pub(crate) fn ledger_path(&self, id: &str) -> PathBuf {
        ledger::path(&self.dir, id)
    }

    /// For a log that needs no spool, the first time since the manager
    /// started (`None` after): removes the spools another format left, and
    /// returns the round of run `resume` a crash interrupted (its ledger
    /// kept until a pump settles it with the run's pipe). The ledger of
    /// any other run goes: that run's pipe is gone, so its file holds all
    /// there is of the round.
    pub(crate) fn interrupted(&self, id: &str, resume: Option<(u32, u32)>) -> Option<Relayed> {
        if self.active || self.repaired.swap(true, Ordering::Relaxed) {
            return None;
        }
        self.remove_files(id);
        let path = self.ledger_path(id);
        let found = match resume {
            Some(_) => ledger::interrupted(&path).unwrap_or_else(|e| {
                tracing::warn!(process = %id, path = %path.display(), error = %e,
                    "cannot read the raw log's ledger; a round a crash interrupted may appear twice");
                None
            }),
            None => None,
        };
        match found {
            Some(r) if Some((r.pid, r.run)) == resume => Some(r),
            _ => {
                remove(id, &path);
                None
            }
        }
    }

    /// Opens the spools of the captured streams (and any other left with
    /// data), unless open; the first time, repairs the log at `path` with
    /// `repair_log`. Blocking. On failure no spool is used (see the module
    /// docs), and the caller reads its pipes directly.
    pub(crate) fn open(
        &self,
        id: &str,
        captured: [bool; 2],
        repair_log: impl FnOnce(FileId) -> io::Result<Repaired>,
        counters: &super::sink::LogCounters,
    ) {
        if !self.active {
            return;
        }
        let mut slots = self.slots();
        if slots.iter().any(Option::is_some) {
            return;
        }
        let mut opened: [Option<Spool>; 2] = [None, None];
        for (i, stream) in STREAMS.into_iter().enumerate() {
            let path = spool::path(&self.dir, id, stream);
            if !captured[i] && std::fs::symlink_metadata(&path).is_err() {
                continue;
            }
            match Spool::open(&path) {
                Ok(s) => opened[i] = Some(s),
                Err(e) => {
                    drop(slots);
                    self.fall_back(id, "cannot open the log spool", &e, counters);
                    self.remove_files(id);
                    return;
                }
            }
        }
        if !self.repaired.swap(true, Ordering::Relaxed) {
            // Left by the raw format before: its rounds are all settled.
            remove(id, &self.ledger_path(id));
            let gen = opened.iter().flatten().map(|s| s.checkpoint().gen).max();
            self.gen.store(gen.unwrap_or(0), Ordering::Relaxed);
            let newest = opened
                .iter()
                .flatten()
                .map(|s| *s.checkpoint())
                .max_by_key(|c| c.gen);
            if let Some(last) = newest.and_then(|c| c.log) {
                report(id, repair_log(last));
            }
        }
        for (slot, s) in slots.iter_mut().zip(opened) {
            *slot = s.map(|s| Arc::new(Mutex::new(s)));
        }
    }

    /// Removes the process's spool files (ENOENT is fine).
    fn remove_files(&self, id: &str) {
        for stream in STREAMS {
            remove(id, &spool::path(&self.dir, id, stream));
        }
    }

    /// Counts a stream that reads its pipe directly from now on, and says
    /// so once per process.
    pub(crate) fn fall_back(
        &self,
        id: &str,
        what: &str,
        error: &dyn std::fmt::Display,
        counters: &super::sink::LogCounters,
    ) {
        counters.spool_fallbacks.fetch_add(1, Ordering::Relaxed);
        if !self.warned.swap(true, Ordering::Relaxed) {
            tracing::warn!(process = %id, %error,
                "{what}; reading the output directly (a crash of the manager may lose the lines it had read)");
        }
    }
}

/// Removes a spool or ledger file of process `id` (ENOENT is fine).
fn remove(id: &str, path: &Path) {
    match std::fs::remove_file(path) {
        Ok(()) => tracing::debug!(process = %id, path = %path.display(), "removed a log spool"),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!(process = %id, path = %path.display(), error = %e,
            "cannot remove a log spool"),
    }
}

/// Says what a repair did.
fn report(id: &str, result: io::Result<Repaired>) {
    match result {
        Ok(Repaired::Nothing) => {}
        Ok(Repaired::Cut { path, from, to }) => tracing::info!(process = %id,
            path = %path.display(), from, to,
            "log cut back to its last recorded write; the rest is written again from the spool"),
        Ok(Repaired::Rotated { kept, cut, removed }) => tracing::info!(process = %id,
            kept = %kept.display(), ?cut, removed = removed.len(),
            "log put back to its last recorded write before a rotation; the rest is written again from the spool"),
        Ok(Repaired::NotFound) => tracing::warn!(process = %id,
            "the log file of the last recorded write is gone (renamed or removed); the lines of the write cut short by the crash may appear twice"),
        Err(e) => tracing::warn!(process = %id, error = %e,
            "cannot put the log back to its last recorded write; the lines of the write cut short by the crash may appear twice"),
    }
}
