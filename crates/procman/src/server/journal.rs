//! The event journal: every transition of every process, appended to
//! `<state_dir>/events.jsonl` (one [`api::Event`] as JSON per line), so
//! that why a process ended is still known after the manager has gone.
//!
//! Invariants and pitfalls:
//! - Bounded: the live file is renamed to `events.jsonl.1` (replacing the
//!   one before) before a record would take it past [`MAX_BYTES`], so the
//!   journal never holds much more than twice that. Records are written
//!   whole, with one `write` on an `O_APPEND` descriptor (the records that
//!   came together, up to [`BATCH_BYTES`], in the same one: a shutdown of
//!   thousands of processes is not a write per transition), and rotation
//!   happens between records, so a record never spans two files.
//! - The writer is a thread of its own, blocked on the broadcast receiver:
//!   a slow disk never holds up the runtime or a supervisor. If it falls
//!   more than the channel's backlog behind, it writes nothing for the
//!   events it missed (nothing false) and the manager log says how many.
//! - A failed write (a full disk) is counted and logged once, never ends
//!   the writer; the next record starts on a new line, so a half-written
//!   one never spoils the record after it.
//! - The file is opened like the manager's other files: `O_NOFOLLOW`, a
//!   regular file only, mode `0640` whatever the umask.
//! - The writer ends when every sender of the events is gone (the manager
//!   and each of its `Control`s dropped). [`Journal::finish`] waits for
//!   that within a bound; dropping a [`Journal`] waits for nothing.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use procman_api as api;
use procman_core::state::files::{self, Access};
use procman_core::supervisor::Event;
use tokio::sync::broadcast::{self, error::RecvError};

use super::service;

/// The live file is rotated before it would grow past this.
pub const MAX_BYTES: u64 = 1 << 20;

/// Records that came together go out in one write, until it holds this
/// many bytes (the record that reaches it is its last).
const BATCH_BYTES: usize = 16 * 1024;

/// How long the writer, woken by an event, lets more gather before it
/// writes (well within what the channel's backlog holds).
const GATHER: Duration = Duration::from_millis(2);

/// The writer of the journal of one manager.
#[derive(Debug)]
pub struct Journal {
    thread: Option<JoinHandle<()>>,
    /// Disconnected when the writer ends.
    ended: mpsc::Receiver<()>,
    /// The number of the last event the writer has dealt with.
    written: tokio::sync::watch::Receiver<u64>,
}

impl Journal {
    /// Opens (or creates) the journal in `state_dir` and starts its writer
    /// on a thread of its own, which writes every event `events` receives
    /// from now on. Fails if the file cannot be opened (a symbolic link
    /// there is refused) or the thread cannot start.
    pub fn start(
        state_dir: &Path,
        events: broadcast::Receiver<std::sync::Arc<Event>>,
    ) -> io::Result<Journal> {
        let mut writer = Writer::open(state_dir)?;
        let (written_tx, written) = tokio::sync::watch::channel(0);
        writer.written = Some(written_tx);
        let (alive, ended) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("journal".into())
            .spawn(move || {
                let _alive = alive;
                writer.run(events);
            })?;
        Ok(Journal {
            thread: Some(thread),
            ended,
            written,
        })
    }

    /// The number of the last event the writer has dealt with (written, or
    /// lost to a write error), as it changes: a reader of the file who
    /// waits until it reaches an event's number finds that event there.
    pub fn written(&self) -> tokio::sync::watch::Receiver<u64> {
        self.written.clone()
    }

    /// Waits until the writer has written every event sent before the
    /// senders were dropped, for at most `deadline`; tells whether it did.
    /// Past the deadline the writer is left to end on its own. Blocks the
    /// calling thread: from async code, call it in `spawn_blocking`.
    pub fn finish(mut self, deadline: Duration) -> bool {
        match self.ended.recv_timeout(deadline) {
            Err(mpsc::RecvTimeoutError::Timeout) => {
                tracing::warn!(
                    "the event journal is still being written after {}; not waiting for it",
                    humantime::format_duration(deadline)
                );
                false
            }
            // Ended: joining cannot block now (a panic was reported already).
            Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                if let Some(t) = self.thread.take() {
                    let _ = t.join();
                }
                true
            }
        }
    }
}

/// The path of the live journal in `state_dir`.
pub fn path(state_dir: &Path) -> PathBuf {
    state_dir.join(api::JOURNAL_NAME)
}

/// The rotated journal, `events.jsonl.1`.
pub fn rotated_path(state_dir: &Path) -> PathBuf {
    state_dir.join(format!("{}.1", api::JOURNAL_NAME))
}

/// Records serialised and not yet written.
#[derive(Default)]
struct Batch {
    lines: Vec<u8>,
    records: u64,
    /// The number of the last event added.
    last: u64,
}

struct Writer {
    path: PathBuf,
    rotated: PathBuf,
    /// `None` after a failure: opened again at the next record.
    file: Option<File>,
    size: u64,
    /// A write failed, perhaps half-way: start the next record on a new line.
    broken_line: bool,
    /// Records lost to write errors since the last success.
    failed: u64,
    /// Told the number of the last event dealt with, after each write.
    written: Option<tokio::sync::watch::Sender<u64>>,
}

impl Writer {
    fn open(state_dir: &Path) -> io::Result<Writer> {
        let mut w = Writer {
            path: path(state_dir),
            rotated: rotated_path(state_dir),
            file: None,
            size: 0,
            broken_line: false,
            failed: 0,
            written: None,
        };
        w.reopen()?;
        Ok(w)
    }

    fn reopen(&mut self) -> io::Result<()> {
        let opened = files::open(&self.path, Access::Append).map_err(|e| named(&self.path, e))?;
        self.size = opened.file.metadata()?.len();
        self.file = Some(opened.file);
        Ok(())
    }

    fn run(mut self, mut events: broadcast::Receiver<std::sync::Arc<Event>>) {
        let mut batch = Batch::default();
        loop {
            let got = match events.try_recv() {
                Ok(event) => Ok(event),
                Err(broadcast::error::TryRecvError::Lagged(missed)) => Err(Some(missed)),
                Err(broadcast::error::TryRecvError::Closed) => break,
                Err(broadcast::error::TryRecvError::Empty) => {
                    let got = match events.blocking_recv() {
                        Ok(event) => Ok(event),
                        Err(RecvError::Lagged(missed)) => Err(Some(missed)),
                        Err(RecvError::Closed) => break,
                    };
                    // Woken by an event: let the others of its burst
                    // come (a start of hundreds makes two each), to be
                    // written with it in one write after one wake-up.
                    std::thread::sleep(GATHER);
                    got
                }
            };
            // What else has come meanwhile joins it, up to a batch.
            let mut next = Some(got);
            while let Some(got) = next.take() {
                match got {
                    Ok(event) => self.add(&mut batch, &event),
                    Err(Some(missed)) => tracing::warn!(
                        missed,
                        "the event journal fell behind; {missed} events are missing from it"
                    ),
                    Err(None) => {}
                }
                if batch.lines.len() >= BATCH_BYTES {
                    break;
                }
                next = match events.try_recv() {
                    Ok(event) => Some(Ok(event)),
                    Err(broadcast::error::TryRecvError::Lagged(missed)) => Some(Err(Some(missed))),
                    Err(_) => None,
                };
            }
            self.write(&mut batch);
        }
        if self.failed > 0 {
            tracing::warn!(
                lost = self.failed,
                "the event journal lost its last {} events to write errors",
                self.failed
            );
        }
    }

    /// Adds `event`'s record to `batch`.
    fn add(&self, batch: &mut Batch, event: &Event) {
        batch.last = event.seq;
        let start = batch.lines.len();
        // A struct of strings and numbers: serialising cannot fail; if it
        // did, the record is left out whole.
        if serde_json::to_writer(&mut batch.lines, &service::event(event)).is_err() {
            batch.lines.truncate(start);
            return;
        }
        batch.lines.push(b'\n');
        batch.records += 1;
    }

    /// Writes the records of `batch` at once, and empties it.
    fn write(&mut self, batch: &mut Batch) {
        self.append_batch(batch);
        if let Some(written) = &self.written {
            written.send_replace(batch.last);
        }
    }

    fn append_batch(&mut self, batch: &mut Batch) {
        if batch.records == 0 {
            return;
        }
        if self.broken_line {
            batch.lines.insert(0, b'\n');
        }
        let result = self.append(&batch.lines);
        let records = std::mem::take(&mut batch.records);
        batch.lines.clear();
        match result {
            Ok(()) => {
                if self.failed > 0 {
                    tracing::info!(
                        lost = self.failed,
                        path = %self.path.display(),
                        "the event journal is written again; {} events were lost",
                        self.failed
                    );
                }
                self.failed = 0;
                self.broken_line = false;
            }
            Err(e) => {
                if self.failed == 0 {
                    tracing::warn!(
                        error = %e,
                        "cannot write the event journal; events are lost until it can be written again"
                    );
                }
                self.failed += records;
                self.broken_line = true;
                self.file = None;
            }
        }
    }

    /// Appends whole records (`lines`, each ending with a newline). Those
    /// that would take the live file past [`MAX_BYTES`] go to a new one,
    /// after the rotation; the ones before them fill the old one.
    fn append(&mut self, mut lines: &[u8]) -> io::Result<()> {
        if self.file.is_none() {
            self.reopen()?;
        }
        if self.size > 0 && self.size + lines.len() as u64 > MAX_BYTES {
            let room = MAX_BYTES.saturating_sub(self.size) as usize;
            let fits = lines[..room.min(lines.len())]
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |end| end + 1);
            self.write_out(&lines[..fits])?;
            lines = &lines[fits..];
            self.rotate()?;
        }
        self.write_out(lines)
    }

    fn write_out(&mut self, bytes: &[u8]) -> io::Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        let Some(file) = self.file.as_mut() else {
            return Err(io::Error::other("journal not open"));
        };
        file.write_all(bytes).map_err(|e| named(&self.path, e))?;
        self.size += bytes.len() as u64;
        Ok(())
    }

    /// `events.jsonl` → `events.jsonl.1`, then a new live file.
    fn rotate(&mut self) -> io::Result<()> {
        self.file = None;
        fs::rename(&self.path, &self.rotated).map_err(|e| named(&self.path, e))?;
        self.reopen()
    }
}

fn named(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

/// The last `n` events of the journal in `state_dir` (`0`: all of them),
/// oldest first, across the rotated and the live file; only those of
/// `process` when given. A line that is not an event (a record cut short
/// by a crash or a full disk, anything else) is skipped; no journal is an
/// empty list. Reads files (at most about 4 MiB): from async code, call it
/// in `spawn_blocking`.
pub fn read_last(state_dir: &Path, n: usize, process: Option<&str>) -> io::Result<Vec<api::Event>> {
    // The live file first: should it be rotated in between, `.1` is then
    // that same file (read once), never a gap.
    let live = open_to_read(&path(state_dir))?;
    let mut rotated = open_to_read(&rotated_path(state_dir))?;
    if let (Some((_, a)), Some((_, b))) = (&live, &rotated) {
        if (a.dev(), a.ino()) == (b.dev(), b.ino()) {
            rotated = None;
        }
    }
    let mut kept: VecDeque<api::Event> = VecDeque::new();
    for (file, meta) in [rotated, live].into_iter().flatten() {
        for line in tail(file, meta.len())?.split(|&b| b == b'\n') {
            let Ok(event) = serde_json::from_slice::<api::Event>(line) else {
                continue;
            };
            if process.is_some_and(|p| p != event.process) {
                continue;
            }
            if n > 0 && kept.len() == n {
                kept.pop_front();
            }
            kept.push_back(event);
        }
    }
    Ok(kept.into())
}

fn open_to_read(path: &Path) -> io::Result<Option<(File, fs::Metadata)>> {
    let opened = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path);
    match opened {
        Ok(file) => {
            let meta = file.metadata()?;
            if !meta.is_file() {
                return Err(named(
                    path,
                    io::Error::new(io::ErrorKind::InvalidInput, "not a regular file"),
                ));
            }
            Ok(Some((file, meta)))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(named(path, e)),
    }
}

/// The bytes of a journal file, at most its last `2 × MAX_BYTES` (a file
/// the writer did not bound: the lines before are left out, and the first
/// line kept is cut short, so skipped).
fn tail(mut file: File, len: u64) -> io::Result<Vec<u8>> {
    let keep = len.min(2 * MAX_BYTES);
    file.seek(SeekFrom::Start(len - keep))?;
    let mut bytes = Vec::with_capacity(keep as usize);
    file.take(keep).read_to_end(&mut bytes)?;
    Ok(bytes)
}

#[cfg(test)]
#[path = "tests/journal.rs"]
mod tests;
