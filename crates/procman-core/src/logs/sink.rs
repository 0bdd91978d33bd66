//! One process's log: where its records go, in which format, and what
//! could not be written; and what every process's log shares
//! ([`LogSetup`]).
//!
//! The file is open only while the process runs: [`ProcessLog::run_started`]
//! opens it (at its first write) and [`ProcessLog::run_ended`] closes it,
//! so ten thousand configured processes that do not run hold no
//! descriptor. Whether it can be written is checked when the manager is
//! created, without keeping it open.
//!
//! Every call that touches the file runs on a blocking thread, never on
//! the async workers: the mutex around the file is held across the write,
//! and a slow disk (or an fsync) must not stall supervision.
//!
//! With a spool directory ([`LogSetup::with_spool`]), every write is
//! followed, under the same lock, by a checkpoint in one of the process's
//! spools ([`journal`](super::journal)), and the first start, re-attach or
//! recovery of the process after the manager started repairs the file
//! ([`repair`](super::repair)) before anything is written to it.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use tokio::sync::Semaphore;

use super::format::{self, Timestamp};
use super::journal::{self, Journal};
use super::paths::{file_path, log_dir};
use super::record::{Ending, Origin};
use super::rotate::{self, LogFileOp, Reopen, RotatingFile};
use super::spool::Spool;
use super::targets::Targets;
use crate::config::{Config, ProcessConfig, ProcessLogFormat};
use crate::state::files::{self, Access, DirError, DirKind};
use crate::state::StateError;

/// How many opens, separators and fsyncs may run at once on blocking
/// threads (10,000 processes stopping together must not make 10,000
/// threads).
static FILE_OPS: Semaphore = Semaphore::const_new(16);

/// What every process's log shares: the directory of the default files,
/// the aggregation targets, and the reopen requests.
#[derive(Debug, Clone)]
pub struct LogSetup {
    pub log_dir: PathBuf,
    pub targets: Arc<Targets>,
    reopen: Reopen,
    /// `<state_dir>/spool`, when output goes through spools.
    spool_dir: Option<PathBuf>,
}

impl LogSetup {
    /// Finds the log directory and starts the aggregation targets (opening
    /// their files: an unwritable one is an error now).
    pub fn start(config: &Config) -> Result<LogSetup, LogError> {
        let reopen = Reopen::default();
        Ok(LogSetup {
            log_dir: log_dir(config)?,
            targets: Arc::new(Targets::start(&config.log_collection, &reopen)?),
            reopen,
            spool_dir: None,
        })
    }

    /// Output goes through spools in `<state_dir>/spool` (created `0700`),
    /// so that a crash of the manager loses and repeats no line of a
    /// process's file. If that directory cannot be used, pipes are read
    /// directly (as without this call), and the manager log says why.
    pub fn with_spool(mut self, state_dir: &Path) -> LogSetup {
        let dir = state_dir.join("spool");
        match files::ensure_dir(&dir, DirKind::Spool) {
            Ok(()) => self.spool_dir = Some(dir),
            Err(e) => tracing::warn!(error = %e,
                "cannot use the log spool directory; reading output directly (a crash of the manager may lose the lines it had read)"),
        }
        self
    }

    /// Every log file (per process and file targets) reopens its path
    /// before its next write: for an external `logrotate` that renamed it.
    pub fn reopen(&self) {
        self.reopen.request();
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error(transparent)]
    Dir(#[from] DirError),
    #[error(transparent)]
    State(#[from] StateError),
    /// `source` names the path already (see `rotate::LogFileError`).
    #[error("{source}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot start a log target: {0}")]
    Target(#[source] std::io::Error),
}

/// Counters a process's log keeps, readable at any time.
#[derive(Debug, Default)]
pub struct LogCounters {
    /// Records that could not be written (a full disk, an I/O error).
    pub dropped_records: AtomicU64,
    /// Bytes of the process's output read from its pipes.
    pub bytes_read: AtomicU64,
    /// Streams that could not use their spool and read their pipe
    /// directly (no spool directory is not counted).
    pub spool_fallbacks: AtomicU64,
    /// True while writes fail; a success clears it (and is logged once).
    failing: AtomicBool,
}

impl LogCounters {
    pub fn dropped(&self) -> u64 {
        self.dropped_records.load(Ordering::Relaxed)
    }
}

/// A process's log file: its path, and the file while a run is open.
#[derive(Debug)]
struct LogFile {
    path: PathBuf,
    rotation: Option<(u64, u32)>,
    reopen: Reopen,
    /// `Some` from the start of a run to its end (opened at the first
    /// write), `None` in between.
    open: Mutex<Option<RotatingFile>>,
}

impl LogFile {
    /// Held across file I/O, on blocking threads only. A panic while it
    /// was held leaves at worst a partly written record, which the next
    /// write follows: the log goes on.
    fn lock(&self) -> MutexGuard<'_, Option<RotatingFile>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A process's log. Shared by the two streams of its pump.
#[derive(Debug)]
pub(crate) struct ProcessLog {
    pub(crate) id: Arc<str>,
    pub(crate) format: ProcessLogFormat,
    pub(crate) max_line: usize,
    pub(crate) capture_stdout: bool,
    pub(crate) capture_stderr: bool,
    file: Option<LogFile>,
    rotates: bool,
    pub(crate) targets: Arc<Targets>,
    pub(crate) counters: Arc<LogCounters>,
    /// The spools, when there is a file and a spool directory.
    journal: Option<Journal>,
    /// The pipe a round a crash interrupted came from, for its settling.
    armed: Mutex<recovery::Armed>,
}

impl ProcessLog {
    /// The log of `cfg`. Creates its directory, and checks that the file
    /// can be written (naming the path if not) without keeping it open.
    pub(crate) fn new(cfg: &ProcessConfig, setup: &LogSetup) -> Result<ProcessLog, LogError> {
        let file = match file_path(cfg, &setup.log_dir) {
            None => None,
            Some(path) => {
                if let Some(dir) = path.parent() {
                    files::ensure_dir(dir, DirKind::Log)?;
                }
                check_writable(&path).map_err(|source| LogError::File {
                    path: path.clone(),
                    source,
                })?;
                Some(LogFile {
                    path,
                    rotation: cfg
                        .logging
                        .rotation
                        .map(|r| (r.max_size_mb.saturating_mul(1024 * 1024), r.max_files)),
                    reopen: setup.reopen.clone(),
                    open: Mutex::new(None),
                })
            }
        };
        let raw_unrotated =
            cfg.logging.format == ProcessLogFormat::Raw && cfg.logging.rotation.is_none();
        let journal = match (&setup.spool_dir, &file) {
            (Some(dir), Some(_)) => Some(Journal::new(dir, !raw_unrotated)),
            _ => None,
        };
        Ok(ProcessLog {
            journal,
            armed: Mutex::default(),
            id: cfg.id.as_str().into(),
            format: cfg.logging.format,
            max_line: cfg.logging.buffer_size,
            capture_stdout: cfg.logging.capture_stdout,
            capture_stderr: cfg.logging.capture_stderr,
            file,
            rotates: cfg.logging.rotation.is_some(),
            targets: setup.targets.clone(),
            counters: Arc::new(LogCounters::default()),
        })
    }

    /// Raw format and no rotation: the bytes can go to the file as read.
    pub(crate) fn raw_unrotated(&self) -> bool {
        self.format == ProcessLogFormat::Raw && !self.rotates
    }

    pub(crate) fn has_file(&self) -> bool {
        self.file.is_some()
    }

    /// Writes records of our own (a run's start or end) to the file, and
    /// records the write in an open spool (its offsets unchanged).
    /// Blocking: call it from a blocking thread.
    pub(crate) fn write_file(&self, bytes: &[u8], records: u64) {
        let spool = self
            .journal
            .as_ref()
            .and_then(|j| j.open_spools().into_iter().next());
        match spool {
            Some(shared) => {
                let mut spool = journal::lock(&shared);
                let cp = *spool.checkpoint();
                self.write_marked(bytes, records, Some((&mut spool, cp.done, cp.continues)));
            }
            None => self.write_marked(bytes, records, None),
        }
    }

    /// Writes complete formatted records to the file, straight through to
    /// the OS; then, with `mark` `(spool, done, continues)`, records in
    /// that spool that its bytes before `done` are in the file. `records`
    /// is how many they are, for the dropped count. Blocking: call it from
    /// a blocking thread, holding the spool's lock.
    pub(crate) fn write_marked(
        &self,
        bytes: &[u8],
        records: u64,
        mark: Option<(&mut Spool, u64, bool)>,
    ) {
        let Some(file) = &self.file else {
            return;
        };
        if bytes.is_empty() {
            return;
        }
        let mut open = file.lock();
        let result = match open.as_mut() {
            Some(f) => f.write_records(bytes).and_then(|()| f.flush()),
            // Only a pump the drain gave up on (and aborted) can get here.
            None => Err(std::io::Error::other(rotate::LogFileError {
                op: LogFileOp::Write,
                path: file.path.clone(),
                source: std::io::Error::other("the run ended; the file is closed"),
            })),
        };
        // A failed write left the file as it was (a torn record is cut
        // back), and its records are counted as dropped: no checkpoint, so
        // the last one still describes the file.
        if let (Ok(()), Some((spool, done, continues)), Some(j)) = (&result, mark, &self.journal) {
            let id = open.as_ref().and_then(RotatingFile::identity);
            if let Err(e) = spool.commit(done, continues, j.next_gen(), id) {
                j.fall_back(
                    &self.id,
                    "cannot write a log spool's checkpoint",
                    &e,
                    &self.counters,
                );
            }
        }
        drop(open);
        self.note_result(&file.path, result.map_err(|e| e.to_string()), records);
    }

    fn note_result(&self, path: &Path, result: Result<(), String>, records: u64) {
        let c = &self.counters;
        match result {
            Ok(()) => {
                if c.failing.swap(false, Ordering::Relaxed) {
                    tracing::info!(process = %self.id, path = %path.display(),
                        dropped = c.dropped(), "log file writable again");
                }
            }
            Err(error) => {
                c.dropped_records.fetch_add(records, Ordering::Relaxed);
                if !c.failing.swap(true, Ordering::Relaxed) {
                    tracing::error!(process = %self.id, path = %path.display(), %error,
                        "cannot write the log file; counting the records lost until it works again");
                }
            }
        }
    }

    /// Now, as the time of records (a chunk's lines, a run's start or
    /// end), and who wrote them.
    pub(crate) fn stamp(&self, pid: u32, run: u32) -> (Timestamp, Origin<'_>) {
        let now = SystemTime::now();
        let origin = Origin {
            id: &self.id,
            pid,
            run,
            ts: now,
        };
        (Timestamp::new(now), origin)
    }

    /// A run starts: the file opens (at its first write), and the run's
    /// separator goes to it and to the targets. The pumps start after.
    pub(crate) async fn run_started(self: &Arc<Self>, pid: u32, run: u32) {
        let (ts, origin) = self.stamp(pid, run);
        self.targets.separator(&ts, &origin);
        let mut buf = Vec::with_capacity(128);
        match self.format {
            ProcessLogFormat::Plain => format::plain_separator(&mut buf, &ts, &origin),
            ProcessLogFormat::Json => format::json_separator(&mut buf, &ts, &origin),
            // Raw keeps exactly the child's bytes: no separator.
            ProcessLogFormat::Raw => {}
        }
        // Raw and not rotated: no separator, no spool (its journal keeps
        // none), and the file opens at its first write. What is left (the
        // first time, the removal of spools another format left: two
        // unlinks) is done here, without a blocking thread.
        if self.raw_unrotated() {
            self.open_run(None);
            return;
        }
        let log = self.clone();
        off_runtime(move || {
            log.open_run(None);
            // What the spools hold of a run that ended while no manager
            // ran goes first, as that run's last lines.
            log.settle_spools(None, Some((pid, run)));
            log.write_file(&buf, 1);
        })
        .await;
    }

    /// A run goes on under a new manager (re-attach after a crash): the
    /// file and the spools open as for [`run_started`], no separator is
    /// written, and what the spools hold of this run is written by the
    /// pumps (`capture::start`) before the pipe's new bytes.
    ///
    /// [`run_started`]: ProcessLog::run_started
    pub(crate) async fn run_resumed(self: &Arc<Self>, pid: u32, run: u32) {
        let log = self.clone();
        off_runtime(move || {
            log.open_run(Some((pid, run)));
            log.settle_spools(Some((pid, run)), Some((pid, run)));
        })
        .await;
    }

    /// A run's pumps are done: how it ended (when there was a run: its pid,
    /// number and ending) goes to the file and the targets, then the file
    /// is closed, after an fsync with `sync` (a stop: every line is on disk
    /// when the stop completes).
    pub(crate) async fn run_ended(
        self: &Arc<Self>,
        run: Option<(u32, u32, Ending<'_>)>,
        sync: bool,
    ) {
        let mut buf = Vec::new();
        if let Some((pid, run, end)) = run {
            let (ts, origin) = self.stamp(pid, run);
            self.targets.run_ended(&ts, &origin, &end);
            match self.format {
                ProcessLogFormat::Plain => format::plain_run_end(&mut buf, &ts, &origin, &end),
                ProcessLogFormat::Json => format::json_run_end(&mut buf, &ts, &origin, &end),
                // Raw keeps exactly the child's bytes: no record of ours.
                ProcessLogFormat::Raw => {}
            }
        }
        if buf.is_empty() && self.close_idle() {
            return;
        }
        let log = self.clone();
        off_runtime(move || {
            let Some(file) = &log.file else { return };
            if !buf.is_empty() && file.lock().is_some() {
                log.write_file(&buf, 1);
            }
            if let Some(j) = &log.journal {
                j.close();
            }
            drop(log.take_armed());
            let Some(mut f) = file.lock().take() else {
                return;
            };
            f.end_relay();
            let result = if sync { f.sync() } else { f.flush() };
            if let Err(e) = result {
                tracing::warn!(process = %log.id, path = %file.path.display(), error = %e,
                    "cannot flush the log file at the end of the run");
            }
        })
        .await;
    }

    /// Ends the run's file here, without a blocking thread, when that has
    /// nothing to do: no spool open, and the file never opened (the run
    /// wrote nothing) with nothing buffered. `false` when there is work
    /// (or the file's lock is held).
    fn close_idle(&self) -> bool {
        if self
            .journal
            .as_ref()
            .is_some_and(|j| !j.open_spools().is_empty())
        {
            return false;
        }
        let Some(file) = &self.file else {
            return true;
        };
        let Ok(mut open) = file.open.try_lock() else {
            return false;
        };
        if open.as_ref().is_some_and(|f| !f.is_idle()) {
            return false;
        }
        *open = None;
        true
    }
}

#[path = "recovery.rs"]
mod recovery;

#[cfg(test)]
impl ProcessLog {
    /// Holds the file's lock, as a write that hangs (a stuck disk) would.
    pub(crate) fn hold_file(&self) -> Option<MutexGuard<'_, Option<RotatingFile>>> {
        self.file.as_ref().map(LogFile::lock)
    }
}

/// Runs `f` on a blocking thread, at most [`FILE_OPS`] at once.
async fn off_runtime(f: impl FnOnce() + Send + 'static) {
    // The semaphore is never closed, so `acquire` cannot fail; if it did,
    // running unbounded is better than not running.
    let permit = FILE_OPS.acquire().await.ok();
    let _ = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        f();
    })
    .await;
}

/// Whether `path` can be opened for appending, without keeping it open or
/// creating it: an existing file is opened (no link, a regular file) and
/// closed; for a missing one, its directory must be writable.
fn check_writable(path: &Path) -> std::io::Result<()> {
    let fail = |e| rotate::error(LogFileOp::Open, path, e);
    match std::fs::symlink_metadata(path) {
        Ok(_) => files::open(path, Access::Append).map(drop).map_err(fail),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let dir = match path.parent() {
                Some(d) if !d.as_os_str().is_empty() => d,
                _ => Path::new("."),
            };
            rustix::fs::access(
                dir,
                rustix::fs::Access::WRITE_OK | rustix::fs::Access::EXEC_OK,
            )
            .map_err(|e| fail(e.into()))
        }
        Err(e) => Err(fail(e)),
    }
}
