//! The global aggregation targets of `log_collection`: a file (plain or
//! JSON, rotated), the manager's stdout and stderr (each line prefixed with
//! the process id, coloured per process on a terminal).
//!
//! Each target is a writer thread behind a queue bounded in bytes
//! ([`QUEUE_BYTES`]). Nobody ever waits for a target: a pump that finds a
//! target's queue full drops that batch *for that target only*, counts it
//! (records and bytes, [`Targets::stats`]) and goes on, so a target whose
//! reader stopped (a fifo nobody reads, a paused terminal, a slow disk)
//! costs its own lines and nothing else: every process's own file and its
//! supervision go on at full speed. The first drop of an episode is a
//! warning, the end of the episode an info line with the count.
//!
//! At shutdown, [`Targets::finish`] gives the threads until a deadline to
//! write what is queued; a thread still stuck in `write` then is left
//! behind (the process is about to exit) and the bytes it held are
//! reported as lost.

use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use super::format::{self, Timestamp};
pub use super::queue::TargetStats;
use super::queue::{write_queued, Batch, Queue};
use super::record::{Ending, Origin, Record};
use super::rotate::{Reopen, RotatingFile};
use super::sink::LogError;
use crate::config::{LogCollection, LogTarget, TargetFormat};
use crate::state::files::{self, DirKind};

/// Bytes (of allocated batches) a target may have queued before batches
/// for it are dropped. A batch is one chunk read from a pipe, formatted
/// (at most ≈ 1.5 MiB, JSON of binary output); one batch is always let into
/// an empty queue, so a target is never starved by a large batch.
pub const QUEUE_BYTES: usize = 2 * 1024 * 1024;

/// A target as opened: its name, its kind, where it writes.
type Out = (String, Kind, Box<dyn Write + Send>);

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    /// `<ts> <id> <stream> <line>`
    Plain,
    Json,
    /// `<id> | <line>`, the id coloured on a terminal.
    Prefixed {
        color: bool,
    },
}

#[derive(Debug)]
struct Target {
    kind: Kind,
    queue: Arc<Queue>,
}

/// A writer thread, and how to hear that it ended.
#[derive(Debug)]
struct Writer {
    queue: Arc<Queue>,
    thread: std::thread::JoinHandle<()>,
    done: oneshot::Receiver<()>,
}

/// The running targets. [`Targets::finish`] (or dropping the last `Arc`)
/// closes the queues; the writer threads then write what is queued and end.
#[derive(Debug, Default)]
pub struct Targets {
    list: Vec<Target>,
    writers: Mutex<Vec<Writer>>,
}

impl Targets {
    pub fn none() -> Targets {
        Targets::default()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Opens every configured target and starts its writer thread. A file
    /// target reopens its path on `reopen`'s requests.
    pub fn start(cfg: &LogCollection, reopen: &Reopen) -> Result<Targets, LogError> {
        let mut outs: Vec<Out> = Vec::new();
        if cfg.enabled && cfg.aggregation_enabled {
            for t in &cfg.targets {
                outs.push(match t {
                    LogTarget::File {
                        path,
                        format,
                        rotation,
                    } => {
                        let kind = match format {
                            TargetFormat::Json => Kind::Json,
                            TargetFormat::Plain => Kind::Plain,
                        };
                        let file = open_file(path, *rotation, reopen)?;
                        (
                            format!("file {}", path.display()),
                            kind,
                            Box::new(file) as _,
                        )
                    }
                    LogTarget::ManagerStdout { format } => {
                        let out = std::io::stdout();
                        let kind = kind_of(*format, out.is_terminal());
                        ("process_manager_stdout".into(), kind, own_fd(out)?)
                    }
                    LogTarget::ManagerStderr { format } => {
                        let out = std::io::stderr();
                        let kind = kind_of(*format, out.is_terminal());
                        ("process_manager_stderr".into(), kind, own_fd(out)?)
                    }
                });
            }
        }
        let outs = outs.into_iter().map(|(n, k, w)| (n, k, w, QUEUE_BYTES));
        Targets::with_writers(outs.collect())
    }

    /// Starts a writer thread per `(name, kind, writer, cap)`, each behind
    /// a queue of `cap` bytes.
    fn with_writers(
        outs: Vec<(String, Kind, Box<dyn Write + Send>, usize)>,
    ) -> Result<Targets, LogError> {
        let mut list = Vec::new();
        let mut writers = Vec::new();
        for (name, kind, out, cap) in outs {
            let queue = Arc::new(Queue::new(name, cap));
            let (done_tx, done) = oneshot::channel();
            let q = queue.clone();
            let thread = std::thread::Builder::new()
                .name("procman-log-target".into())
                .spawn(move || {
                    write_queued(&q, out);
                    let _ = done_tx.send(());
                })
                .map_err(LogError::Target)?;
            list.push(Target {
                kind,
                queue: queue.clone(),
            });
            writers.push(Writer {
                queue,
                thread,
                done,
            });
        }
        Ok(Targets {
            list,
            writers: Mutex::new(writers),
        })
    }

    /// Every target's counters, in config order.
    pub fn stats(&self) -> Vec<TargetStats> {
        self.list.iter().map(|t| t.queue.stats()).collect()
    }

    /// Closes the queues and gives the writer threads until `deadline` to
    /// write what they hold. A thread still writing then (stuck in `write`
    /// to a fifo nobody reads) is left behind, and what it held is logged
    /// as lost. Returns the bytes lost that way.
    pub async fn finish(&self, deadline: std::time::Instant) -> u64 {
        for t in &self.list {
            t.queue.close();
        }
        let writers = std::mem::take(&mut *self.writers.lock().unwrap_or_else(|p| p.into_inner()));
        let mut lost = 0;
        for w in writers {
            if tokio::time::timeout_at(deadline.into(), w.done)
                .await
                .is_ok()
            {
                // It sent `done` as its last act: this join does not wait.
                let _ = w.thread.join();
                continue;
            }
            let bytes = w.queue.held();
            lost += bytes;
            tracing::warn!(log_target = %w.queue.name, lost_bytes = bytes,
                "log target still blocked in a write at shutdown; leaving it behind");
        }
        // What each target lost over the whole run, said once at the end
        // (an episode of drops that never ended had no info line).
        for s in self.stats().iter().filter(|s| s.dropped_records > 0) {
            tracing::info!(log_target = %s.name, dropped_records = s.dropped_records,
                dropped_bytes = s.dropped_bytes, "log target lost lines during this run");
        }
        lost
    }

    /// One empty buffer per target, for [`Targets::format_into`].
    pub(crate) fn buffers(&self) -> Vec<Vec<u8>> {
        self.list.iter().map(|_| Vec::new()).collect()
    }

    /// Formats one record for every target, into that target's buffer.
    pub(crate) fn format_into(
        &self,
        bufs: &mut [Vec<u8>],
        ts: &Timestamp,
        origin: &Origin<'_>,
        r: &Record<'_>,
    ) {
        for (t, buf) in self.list.iter().zip(bufs.iter_mut()) {
            match t.kind {
                Kind::Plain => aggregated_plain(buf, ts, origin, r),
                Kind::Json => format::json_line(buf, ts, origin, r),
                Kind::Prefixed { color } => format::prefixed_line(
                    buf,
                    origin,
                    r,
                    color.then(|| format::color_for(origin.id)),
                ),
            }
        }
    }

    /// Queues the buffers filled by [`Targets::format_into`] (`records`
    /// records each), dropping a batch for a target whose queue is full.
    /// Never waits.
    pub(crate) fn push_all(&self, bufs: Vec<Vec<u8>>, records: u64) {
        for (t, bytes) in self.list.iter().zip(bufs) {
            if !bytes.is_empty() {
                t.queue.push(Batch { bytes, records });
            }
        }
    }

    /// The start-of-run separator, for the targets that carry one.
    pub(crate) fn separator(&self, ts: &Timestamp, origin: &Origin<'_>) {
        self.event(ts, origin, None);
    }

    /// The record that closes a run, for the targets that carry one.
    pub(crate) fn run_ended(&self, ts: &Timestamp, origin: &Origin<'_>, end: &Ending<'_>) {
        self.event(ts, origin, Some(end));
    }

    /// A run's start (`end` is `None`) or end, in the plain and JSON
    /// targets: the process's own file format, with its id after the
    /// timestamp in the plain one.
    fn event(&self, ts: &Timestamp, origin: &Origin<'_>, end: Option<&Ending<'_>>) {
        for t in &self.list {
            let mut buf = Vec::new();
            match (t.kind, end) {
                (Kind::Plain, _) => {
                    let mut line = Vec::new();
                    match end {
                        Some(end) => format::plain_run_end(&mut line, ts, origin, end),
                        None => format::plain_separator(&mut line, ts, origin),
                    }
                    // `<ts> <id> ----- …`: the id goes after the timestamp.
                    let (stamp, rest) = line.split_at(Timestamp::LEN.min(line.len()));
                    buf.extend_from_slice(stamp);
                    buf.push(b' ');
                    buf.extend_from_slice(origin.id.as_bytes());
                    buf.extend_from_slice(rest);
                }
                (Kind::Json, Some(end)) => format::json_run_end(&mut buf, ts, origin, end),
                (Kind::Json, None) => format::json_separator(&mut buf, ts, origin),
                (Kind::Prefixed { .. }, _) => continue,
            }
            t.queue.push(Batch {
                bytes: buf,
                records: 1,
            });
        }
    }
}

impl Drop for Targets {
    /// Without [`Targets::finish`], the threads still end once they have
    /// written what is queued; nobody waits for them.
    fn drop(&mut self) {
        for t in &self.list {
            t.queue.close();
        }
    }
}

fn kind_of(format: TargetFormat, terminal: bool) -> Kind {
    match format {
        TargetFormat::Json => Kind::Json,
        TargetFormat::Plain => Kind::Prefixed { color: terminal },
    }
}

/// The manager's stdout or stderr as a file of its own (a duplicate
/// descriptor): writes go straight to the kernel, and a thread blocked in
/// one never holds std's lock on the stream.
fn own_fd(stream: impl std::os::fd::AsFd) -> Result<Box<dyn Write + Send>, LogError> {
    let fd = rustix::io::fcntl_dupfd_cloexec(stream, 3).map_err(|e| LogError::Target(e.into()))?;
    Ok(Box::new(std::fs::File::from(fd)))
}

fn open_file(
    path: &std::path::Path,
    rotation: Option<crate::config::Rotation>,
    reopen: &Reopen,
) -> Result<FileTarget, LogError> {
    if let Some(dir) = path.parent() {
        files::ensure_dir(dir, DirKind::Log)?;
    }
    let rotation = rotation.map(|r| (r.max_size_mb.saturating_mul(1024 * 1024), r.max_files));
    let file = RotatingFile::open(path, rotation).map_err(|source| LogError::File {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(FileTarget(file.with_reopen(reopen)))
}

/// A rotating file as a `Write` of whole records (each batch a set of
/// complete lines, which is what the pumps send).
struct FileTarget(RotatingFile);

impl Write for FileTarget {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write_records(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// `<ts> <id> <stream> <line>` for the aggregated plain file.
fn aggregated_plain(buf: &mut Vec<u8>, ts: &Timestamp, origin: &Origin<'_>, r: &Record<'_>) {
    buf.extend_from_slice(ts.as_bytes());
    buf.push(b' ');
    buf.extend_from_slice(origin.id.as_bytes());
    buf.push(b' ');
    buf.extend_from_slice(r.stream.as_str().as_bytes());
    if r.continues {
        buf.push(b'+');
    }
    buf.push(b' ');
    buf.extend_from_slice(r.bytes);
    buf.push(b'\n');
}

#[cfg(test)]
#[path = "tests/targets.rs"]
mod tests;
