//! The manager's own output: every byte `procman run` writes to its stderr
//! (its `tracing` log, the final error message) goes through here.
//!
//! Supervision must never depend on where that output goes. A closed pipe
//! (`procman run 2>&1 | head -1`) makes every write fail with EPIPE, and a
//! pipe nobody reads (a stopped pager, a full terminal buffer) makes it
//! block forever. So writing never fails and never blocks the caller:
//!
//! - Once [`start`] ran, messages go into a bounded queue that one writer
//!   thread drains. A message that does not fit (the writer is stuck) or
//!   that the writer fails to write is dropped and counted in [`lost`].
//! - Before that (or when the thread could not be created), a message is
//!   written directly, but only after `poll` says stderr can take it within
//!   a deadline, in pieces no larger than a pipe writes atomically.
//!
//! At exit, [`flush`] waits (bounded) until the queue is written.

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use rustix::event::{poll, PollFd, PollFlags, Timespec};

/// Bytes the queue holds before messages are dropped: room for a burst of
/// a few thousand log lines while stderr is slow, bounded when it is stuck.
const QUEUE_BYTES: usize = 256 * 1024;

/// How long a direct write waits for stderr to accept a piece.
const DIRECT_WAIT: Duration = Duration::from_secs(1);

/// How long the writer, woken by a message, lets more gather before it
/// writes: a delay no reader notices, and a burst is written in a few
/// writes.
const GATHER: Duration = Duration::from_millis(2);

/// A pipe takes a write of up to this many bytes whole once `poll` says it
/// is writable, so a direct write of such a piece does not block.
const PIPE_ATOMIC: usize = 4096;

/// Messages dropped so far: the queue was full, or stderr refused them.
static LOST: AtomicU64 = AtomicU64::new(0);

static WRITER: OnceLock<Writer> = OnceLock::new();

struct Writer {
    state: Mutex<Queue>,
    /// Signalled when a message is queued (the writer waits on it).
    work: Condvar,
    /// Signalled when the writer has written everything (for [`flush`]).
    drained: Condvar,
}

#[derive(Default)]
struct Queue {
    messages: VecDeque<Vec<u8>>,
    bytes: usize,
    /// The writer holds messages taken off the queue and not yet written.
    writing: bool,
    /// The writer waits for a message (only then does a new one wake it).
    idle: bool,
    /// Callers of [`flush`] waiting (only then does the writer signal).
    flushers: usize,
}

impl Writer {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // Nothing panics while holding this lock; if something ever did,
        // the queue is still consistent enough to keep logging.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Starts the writer thread. Until it runs (or if it cannot be created,
/// which the error says), [`write`] writes directly.
pub fn start() -> io::Result<()> {
    if STARTED.load(Ordering::Acquire) {
        return Ok(());
    }
    let writer = WRITER.get_or_init(|| Writer {
        state: Mutex::new(Queue::default()),
        work: Condvar::new(),
        drained: Condvar::new(),
    });
    std::thread::Builder::new()
        .name("procman-console".into())
        .spawn(move || drain(writer))?;
    STARTED.store(true, Ordering::Release);
    Ok(())
}

/// Set once the writer thread runs; [`write`] queues only then (without
/// its thread the queue would only fill).
static STARTED: AtomicBool = AtomicBool::new(false);

/// Writes `bytes` to stderr as one message, or counts it as lost. Never
/// fails, never blocks on a stuck stderr beyond [`DIRECT_WAIT`] (and not
/// at all once the writer thread runs).
pub fn write(bytes: &[u8]) {
    if bytes.is_empty() {
        return;
    }
    match WRITER.get() {
        Some(w) if STARTED.load(Ordering::Acquire) => {
            let mut q = w.lock();
            if q.bytes + bytes.len() > QUEUE_BYTES {
                drop(q);
                LOST.fetch_add(1, Ordering::Relaxed);
                return;
            }
            q.bytes += bytes.len();
            q.messages.push_back(bytes.to_vec());
            let idle = q.idle;
            drop(q);
            // A writer at work takes this message with the rest; one that
            // waits is woken (a burst of lines costs one wake-up).
            if idle {
                w.work.notify_one();
            }
        }
        _ => {
            if write_direct(bytes).is_err() {
                LOST.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Messages dropped so far (queue full, or stderr closed or failing).
pub fn lost() -> u64 {
    LOST.load(Ordering::Relaxed)
}

/// Waits until every queued message is written, or `within` has passed.
pub fn flush(within: Duration) {
    let Some(w) = WRITER.get() else { return };
    if !STARTED.load(Ordering::Acquire) {
        return;
    }
    let deadline = Instant::now() + within;
    let mut q = w.lock();
    q.flushers += 1;
    while !q.messages.is_empty() || q.writing {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        q = w
            .drained
            .wait_timeout(q, left)
            .map(|(q, _)| q)
            .unwrap_or_else(|p| p.into_inner().0);
    }
    q.flushers -= 1;
}

/// The writer thread: takes everything queued, writes it, repeats. It is
/// the only thread that may block on stderr. Messages go out together, in
/// writes of at most [`PIPE_ATOMIC`] bytes (a longer message alone), each
/// whole: a pipe shared with other writers never splits one.
///
/// Woken from idle, it waits [`GATHER`] before it takes the queue: the
/// lines of a burst (a start of hundreds of processes logs two each) then
/// cost one wake-up and a few writes, not a wake-up and a write each.
fn drain(w: &'static Writer) {
    let mut chunk: Vec<u8> = Vec::with_capacity(PIPE_ATOMIC);
    loop {
        let mut woken = false;
        {
            let mut q = w.lock();
            q.writing = false;
            while q.messages.is_empty() {
                if q.flushers > 0 {
                    w.drained.notify_all();
                }
                q.idle = true;
                q = w.work.wait(q).unwrap_or_else(|p| p.into_inner());
                q.idle = false;
                woken = true;
            }
            // Taken as writing from now on: `flush` waits for the batch.
            q.writing = true;
        }
        if woken {
            std::thread::sleep(GATHER);
        }
        let batch = {
            let mut q = w.lock();
            q.bytes = 0;
            std::mem::take(&mut q.messages)
        };
        let mut pending = 0u64;
        for message in batch {
            if !chunk.is_empty() && chunk.len() + message.len() > PIPE_ATOMIC {
                flush_chunk(&mut chunk, &mut pending);
            }
            if message.len() >= PIPE_ATOMIC {
                if write_all(&message).is_err() {
                    LOST.fetch_add(1, Ordering::Relaxed);
                }
                continue;
            }
            chunk.extend_from_slice(&message);
            pending += 1;
        }
        flush_chunk(&mut chunk, &mut pending);
    }
}

/// Writes the `pending` messages gathered in `chunk` at once (all counted
/// as lost if that fails), and empties it.
fn flush_chunk(chunk: &mut Vec<u8>, pending: &mut u64) {
    if !chunk.is_empty() && write_all(chunk).is_err() {
        LOST.fetch_add(*pending, Ordering::Relaxed);
    }
    chunk.clear();
    *pending = 0;
}

/// A blocking `write(2)` loop on stderr (the writer thread's).
fn write_all(mut bytes: &[u8]) -> io::Result<()> {
    let fd = rustix::stdio::stderr();
    while !bytes.is_empty() {
        match rustix::io::write(fd, bytes) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => bytes = &bytes[n..],
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// A write that gives up when stderr takes nothing for [`DIRECT_WAIT`].
fn write_direct(mut bytes: &[u8]) -> io::Result<()> {
    let fd = rustix::stdio::stderr();
    while !bytes.is_empty() {
        let mut fds = [PollFd::new(&fd, PollFlags::OUT)];
        let wait = Timespec::try_from(DIRECT_WAIT).map_err(|_| io::ErrorKind::InvalidInput)?;
        match poll(&mut fds, Some(&wait)) {
            Ok(0) => return Err(io::ErrorKind::TimedOut.into()),
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
        let piece = &bytes[..bytes.len().min(PIPE_ATOMIC)];
        match rustix::io::write(fd, piece) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => bytes = &bytes[n..],
            Err(rustix::io::Errno::INTR | rustix::io::Errno::AGAIN) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// The `tracing` writer: each formatted event is one [`write`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Stderr;

impl io::Write for Stderr {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        write(buf);
        // Lost or not, the event is dealt with: an error here would only
        // make tracing-subscriber report it on stderr, the broken writer.
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Stderr {
    type Writer = Stderr;

    fn make_writer(&'a self) -> Stderr {
        Stderr
    }
}
