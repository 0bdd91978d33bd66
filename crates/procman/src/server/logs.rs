//! The processes' log records for the API: the last records of one log or
//! of all of them merged by time, and a follow that goes on with every new
//! record. Each record is the JSON object `procman logs -o json` prints
//! (`procman_core::logs::reader` with [`Style::Json`]): `ts`, `id`,
//! `stream`, `line` (`line_base64` for bytes that are not UTF-8), or
//! `event` for the start and end of a run.
//!
//! Invariants and pitfalls:
//! - File I/O never runs on the async runtime: a tail runs on the blocking
//!   pool, a follow on a thread of its own (at most [`MAX_FOLLOWERS`] at
//!   once), blocked in `poll` while nothing is written.
//! - Memory is bounded whatever the size of the logs: a tail keeps at most
//!   [`MAX_RECORDS`] records and [`MAX_BYTES`] of JSON (the newest), each
//!   as its JSON text (a [`Record`], never a parsed value, which takes
//!   several times the text's size), a
//!   follow hands records over through a channel of [`FOLLOW_BACKLOG`]: a
//!   client that reads slowly holds its follower back, never the manager's
//!   memory.
//! - A follow ends promptly once its receiver is dropped, whether it waits
//!   for the logs to change or for the client to read.
//! - Raw logs (`logging.format: raw`) have no timestamps to merge by: with
//!   no process named, their records come before the merged others.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use procman_core::config::{ProcessConfig, ProcessLogFormat};
use procman_core::logs::file_path;
use procman_core::logs::follow::{follow as follow_files, Cancel};
use procman_core::logs::reader::{merged_tail, write_merged, LogSet, ReadError, Source, Style};
use procman_core::manager::{Control, ManagerError};
use tokio::sync::{mpsc, oneshot};

use super::service::Refusal;

/// The most records a tail returns (`n = 0`, "all", means this many).
pub const MAX_RECORDS: usize = 100_000;
/// The most bytes of JSON a tail returns; past it, the oldest records are
/// left out.
pub const MAX_BYTES: usize = 8 << 20;
/// Records a follow reads ahead of its client.
pub const FOLLOW_BACKLOG: usize = 256;
/// Follows running at once; one more is refused (`Unavailable`).
pub const MAX_FOLLOWERS: usize = 64;

static FOLLOWERS: AtomicUsize = AtomicUsize::new(0);

/// Which logs to read.
#[derive(Debug, Clone)]
struct Selection {
    /// Logs with timestamps, merged by them.
    timed: Vec<LogSet>,
    /// Raw logs, each in a block of its own, before the others.
    raw: Vec<LogSet>,
}

impl Selection {
    fn paths(&self) -> Vec<PathBuf> {
        self.raw
            .iter()
            .chain(&self.timed)
            .map(|s| s.path.clone())
            .collect()
    }

    /// One source per log, placed at its last `n` records (merged).
    fn sources(&self, n: usize) -> Result<Vec<Source>, ReadError> {
        let mut sources = self
            .raw
            .iter()
            .map(|s| Source::tail(s, n))
            .collect::<Result<Vec<_>, _>>()?;
        sources.extend(merged_tail(&self.timed, n)?);
        Ok(sources)
    }
}

/// The log of `cfg` as the running manager writes it: under its own state
/// directory, whatever the environment of the caller.
fn log_set(control: &Control, cfg: &ProcessConfig) -> Option<LogSet> {
    let dir = match &control.config().manager.log_dir {
        Some(dir) => dir.clone(),
        None => control.state_dir().join("logs"),
    };
    file_path(cfg, &dir).map(|path| LogSet {
        id: cfg.id.clone(),
        path,
        format: cfg.logging.format,
    })
}

fn select(control: &Control, id: Option<&str>) -> Result<Selection, Refusal> {
    let sets: Vec<LogSet> = match id {
        Some(id) => {
            let config = control.config();
            let cfg = config
                .process(id)
                .ok_or_else(|| Refusal::from(ManagerError::UnknownProcess(id.to_string())))?;
            let set = log_set(control, cfg).ok_or_else(|| {
                Refusal::Conflict(format!(
                    "process `{id}` has no log file (`logging.file: false`)"
                ))
            })?;
            vec![set]
        }
        None => control
            .config()
            .processes
            .iter()
            .filter_map(|p| log_set(control, p))
            .collect(),
    };
    let (raw, timed) = sets
        .into_iter()
        .partition(|s| s.format == ProcessLogFormat::Raw);
    Ok(Selection { timed, raw })
}

fn unreadable(e: impl std::fmt::Display) -> Refusal {
    Refusal::Unavailable(format!("cannot read the logs: {e}"))
}

/// The last `n` records of process `id`'s log, or (`None`) of every
/// process's, merged by time; oldest first. `n = 0` or more than
/// [`MAX_RECORDS`] means [`MAX_RECORDS`]; whatever `n`, at most
/// [`MAX_BYTES`] of JSON is returned (the newest records).
pub async fn tail(control: &Control, id: Option<&str>, n: usize) -> Result<Vec<Record>, Refusal> {
    let n = bounded(n);
    let selection = select(control, id)?;
    tokio::task::spawn_blocking(move || read_tail(&selection, n))
        .await
        .map_err(unreadable)?
        .map_err(unreadable)
}

fn bounded(n: usize) -> usize {
    match n {
        0 => MAX_RECORDS,
        n => n.min(MAX_RECORDS),
    }
}

fn read_tail(selection: &Selection, n: usize) -> Result<Vec<Record>, ReadError> {
    let mut kept = Newest::new(n);
    let mut sources = selection.sources(n)?;
    let mut out = Lines::new(|line: &[u8]| {
        kept.push(line);
        Ok(())
    });
    write_merged(&mut sources, Style::Json, true, &mut out)?;
    drop(out);
    Ok(kept.records.into())
}

/// The newest records, within a count and [`MAX_BYTES`].
struct Newest {
    n: usize,
    records: VecDeque<Record>,
    bytes: usize,
}

impl Newest {
    fn new(n: usize) -> Newest {
        Newest {
            n,
            records: VecDeque::new(),
            bytes: 0,
        }
    }

    fn push(&mut self, line: &[u8]) {
        let Some(record) = Record::from_line(line) else {
            return;
        };
        self.bytes += record.0.len();
        self.records.push_back(record);
        while self.records.len() > self.n || (self.bytes > MAX_BYTES && self.records.len() > 1) {
            if let Some(old) = self.records.pop_front() {
                self.bytes -= old.0.len();
            }
        }
    }
}

/// One log record: the text of one JSON object, as `procman logs -o json`
/// prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record(Box<str>);

impl Record {
    /// A line of [`Style::Json`] output. Every line is one object;
    /// anything else is left out rather than sent as a record.
    fn from_line(line: &[u8]) -> Option<Record> {
        let object = line.first() == Some(&b'{')
            && serde_json::from_slice::<serde::de::IgnoredAny>(line).is_ok();
        match std::str::from_utf8(line) {
            Ok(text) if object => Some(Record(text.into())),
            _ => {
                tracing::debug!(
                    line = %String::from_utf8_lossy(&line[..line.len().min(200)]),
                    "a log line that is not a JSON object was left out"
                );
                None
            }
        }
    }

    /// The JSON text of the object.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<Record> for String {
    fn from(r: Record) -> String {
        r.0.into()
    }
}

/// A writer that hands each complete line (without its `\n`) to `emit`.
struct Lines<F: FnMut(&[u8]) -> io::Result<()>> {
    partial: Vec<u8>,
    emit: F,
}

impl<F: FnMut(&[u8]) -> io::Result<()>> Lines<F> {
    fn new(emit: F) -> Lines<F> {
        Lines {
            partial: Vec::new(),
            emit,
        }
    }
}

impl<F: FnMut(&[u8]) -> io::Result<()>> Write for Lines<F> {
    fn write(&mut self, mut buf: &[u8]) -> io::Result<usize> {
        let len = buf.len();
        while let Some(i) = buf.iter().position(|&b| b == b'\n') {
            if self.partial.is_empty() {
                (self.emit)(&buf[..i])?;
            } else {
                self.partial.extend_from_slice(&buf[..i]);
                let line = std::mem::take(&mut self.partial);
                (self.emit)(&line)?;
            }
            buf = &buf[i + 1..];
        }
        self.partial.extend_from_slice(buf);
        Ok(len)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The last `n` records (bounded as by [`tail`]), then every new record as
/// it is written, across rotations, until the receiver is dropped. The
/// follow runs on a thread of its own and never buffers more than
/// [`FOLLOW_BACKLOG`] records for a slow reader. Must be called inside the
/// async runtime.
pub fn follow(
    control: &Control,
    id: Option<&str>,
    n: usize,
) -> Result<mpsc::Receiver<Record>, Refusal> {
    let n = bounded(n);
    let selection = select(control, id)?;
    let runtime = tokio::runtime::Handle::try_current()
        .map_err(|_| Refusal::Unavailable("no async runtime to follow the logs on".into()))?;
    let cancel = Cancel::new().map_err(unreadable)?;
    let slot = Slot::take()?;
    let (tx, rx) = mpsc::channel(FOLLOW_BACKLOG);
    let (done, ended) = oneshot::channel::<()>();
    let watch = tx.clone();
    let token = cancel.clone();
    std::thread::Builder::new()
        .name("log-follow".into())
        .spawn(move || {
            let _slot = slot;
            let _done = done;
            run_follow(&selection, n, &cancel, tx);
        })
        .map_err(|e| Refusal::Unavailable(format!("cannot follow the logs: {e}")))?;
    // Wakes the follower, wherever it waits, once the receiver is gone.
    runtime.spawn(async move {
        tokio::select! {
            () = watch.closed() => token.cancel(),
            _ = ended => {}
        }
    });
    Ok(rx)
}

fn run_follow(selection: &Selection, n: usize, cancel: &Cancel, tx: mpsc::Sender<Record>) {
    let mut out = Lines::new(|line: &[u8]| match Record::from_line(line) {
        Some(v) => tx
            .blocking_send(v)
            .map_err(|_| io::Error::from(io::ErrorKind::BrokenPipe)),
        None => Ok(()),
    });
    let followed = selection.sources(n).and_then(|mut sources| {
        follow_files(&selection.paths(), cancel, None, || {
            write_merged(&mut sources, Style::Json, false, &mut out)
        })
    });
    match followed {
        Err(e) if !e.is_broken_pipe() => {
            tracing::warn!(error = %e, "a follow of the logs ended");
        }
        _ => {}
    }
}

/// One of the [`MAX_FOLLOWERS`] places, given back when dropped.
struct Slot;

impl Slot {
    fn take() -> Result<Slot, Refusal> {
        let taken = FOLLOWERS.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            (n < MAX_FOLLOWERS).then_some(n + 1)
        });
        match taken {
            Ok(_) => Ok(Slot),
            Err(_) => Err(Refusal::Unavailable(format!(
                "{MAX_FOLLOWERS} clients follow the logs already; try again later"
            ))),
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        FOLLOWERS.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
#[path = "tests/logs.rs"]
mod tests;
