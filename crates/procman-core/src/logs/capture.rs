//! Capture: a pipe per captured stream, and one pump task per run that
//! reads them all, each stream in its own loop.
//!
//! A stream's loop only waits: until its pipe is readable (epoll through
//! tokio, no polling), or until part of a line has waited long enough.
//! The work (read, split into records, format, write the process's file,
//! queue the target batches) runs on a blocking thread, so the async
//! workers never make a blocking system call nor hold the file's mutex
//! across I/O: a slow disk delays that process's log, never supervision.
//!
//! Each round on a blocking thread reads until the pipe is empty or
//! [`ROUND`] bytes were handled, whichever comes first, so a flood costs
//! one hand-over per few MiB, and other streams get their turn. At most
//! [`WORKERS`] rounds run at once; each borrows a scratch set (read buffer,
//! formatted chunk) from a pool of at most that many, so a thousand idle
//! processes cost no buffers and a flood costs a bounded few.
//! Every line of one chunk carries the time the chunk was read.
//!
//! A stream's loop ends at end of file: when every process holding the
//! pipe's write end is gone (a grandchild that kept stdout keeps it going);
//! the other stream's loop goes on alone, and the task ends with the last.
//!
//! Where the bytes go first (see `docs/logs.md`, "Crash of the manager"):
//! - **through the stream's spool** (a process with a file, a spool
//!   directory, and a format that is not raw-unrotated): spliced from the
//!   pipe into the spool, read back, written, and recorded, so a crash of
//!   the manager at any instant loses and repeats no line of the file;
//! - **straight into the file** (raw format, no rotation): spliced from
//!   the pipe, so the file's size is the record; targets get the bytes
//!   read back;
//! - **read from the pipe** (no file, no spool directory, or a spool that
//!   failed: counted in `spool_fallbacks`): as before spools existed.

use std::future::Future;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use super::feed::{Feed, CHUNK};
use super::journal::{self, Shared};
use super::record::Stream;
use super::rotate::{pipe_now, PipeNow, Relay};
use super::sink::ProcessLog;
use super::splitter::LineSplitter;
use crate::platform::Stdio;
/// Bytes handled in one round on a blocking thread at most.
const ROUND: usize = 4 * 1024 * 1024;
/// How long part of a line may wait for its end before it is written.
const PARTIAL_AFTER: Duration = Duration::from_millis(200);
/// Pipe buffer asked for (the kernel caps it at `fs.pipe-max-size`): a
/// flooding child then blocks less often while the pump writes.
const PIPE_SIZE: usize = 1024 * 1024;
/// Rounds that may run at once, on as many blocking threads.
pub(crate) const WORKERS: usize = 4;
/// A formatted chunk kept for reuse is cut back to this capacity (JSON of
/// binary output can be six times the chunk, once).
const KEEP_OUTPUT: usize = 2 * CHUNK;

static ROUNDS: Semaphore = Semaphore::const_new(WORKERS);
/// Scratch sets not in use; never more than [`WORKERS`].
static SCRATCH: Mutex<Vec<Scratch>> = Mutex::new(Vec::new());

#[derive(Default)]
struct Scratch {
    input: Vec<u8>,
    output: Vec<u8>,
    /// Made at the first flood of raw output this set meets.
    relay: Option<std::io::Result<Relay>>,
}

/// The child's stdout and stderr, and the read ends for the pumps.
pub(crate) struct Pipes {
    pub(crate) stdout: Stdio,
    pub(crate) stderr: Stdio,
    pub(crate) readers: Vec<(Stream, OwnedFd)>,
}

/// A pipe per captured stream; `/dev/null` for a stream not captured (never
/// an unread pipe that would fill up and block the child).
pub(crate) fn pipes(log: &ProcessLog) -> io::Result<Pipes> {
    let mut readers = Vec::new();
    let mut end = |capture: bool, stream: Stream| -> io::Result<Stdio> {
        if !capture {
            return Ok(Stdio::Null);
        }
        let (r, w) = pipe_pair()?;
        readers.push((stream, r));
        Ok(Stdio::Fd(w))
    };
    let stdout = end(log.capture_stdout, Stream::Stdout)?;
    let stderr = end(log.capture_stderr, Stream::Stderr)?;
    Ok(Pipes {
        stdout,
        stderr,
        readers,
    })
}

fn pipe_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
    // Failure only keeps the default size.
    let _ = rustix::pipe::fcntl_setpipe_size(&w, PIPE_SIZE);
    // Our end is read when epoll says so; the child's end stays blocking.
    rustix::io::ioctl_fionbio(&r, true)?;
    Ok((r, w))
}

/// Starts the pump of a run: one task for both read ends, each stream
/// with its own loop (its own line splitting, waits and end of file), so a
/// process costs one task however many streams it captures. Call after the
/// spawn (the child holds the write ends; ours were closed with the spec)
/// and `ProcessLog::run_started`; or, for a re-attach, with read ends
/// opened again and after `ProcessLog::run_resumed`: each stream then
/// first writes what its spool holds of this run, going on with the line
/// it held. `None` when no stream is read.
pub(crate) fn start(
    log: &Arc<ProcessLog>,
    readers: Vec<(Stream, OwnedFd)>,
    pid: u32,
    run: u32,
) -> Option<JoinHandle<()>> {
    let mut streams = readers
        .into_iter()
        .filter_map(|(stream, fd)| open(log, stream, fd, pid, run))
        .map(|(pump, ready)| pump.run(ready));
    let first = streams.next()?;
    Some(tokio::spawn(Both {
        first: Some(first),
        second: streams.next(),
    }))
}

/// A stream's pump and the registration of its pipe; `None` (logged) if
/// the pipe cannot be read.
fn open(
    log: &Arc<ProcessLog>,
    stream: Stream,
    fd: OwnedFd,
    pid: u32,
    run: u32,
) -> Option<(Box<Pump>, AsyncFd<Arc<OwnedFd>>)> {
    // Ours from `pipes` already are; one opened again may not be.
    if let Err(e) = rustix::io::ioctl_fionbio(&fd, true) {
        tracing::error!(process = %log.id, error = %e, "cannot read the output pipe");
        return None;
    }
    let fd = Arc::new(fd);
    log.arm(stream, &fd);
    // SAFETY: the descriptor is owned by the `Arc<OwnedFd>`, and the
    // `AsyncFd` holds a clone of it: the descriptor stays open, and the
    // same, for as long as the `AsyncFd` lives.
    let registered = unsafe { AsyncFd::register_with_interest(fd.clone(), Interest::READABLE) };
    let ready = match registered {
        Ok(ready) => ready,
        Err(e) => {
            tracing::error!(process = %log.id, error = %e, "cannot read the output pipe");
            return None;
        }
    };
    let source = match log.spool(stream) {
        _ if log.raw_unrotated() && log.has_file() => Source::File,
        Some(spool) => Source::Spool { spool, fed: None },
        None => Source::Pipe { spool: None },
    };
    let pump = Pump {
        log: log.clone(),
        splitter: LineSplitter::new(stream, log.max_line),
        stream,
        fd,
        pid,
        run,
        source,
    };
    Some((Box::new(pump), ready))
}

/// The loops of a run's streams, polled side by side in one task; done
/// when both are. Each is dropped where it ran once it ends.
struct Both<F> {
    first: Option<F>,
    second: Option<F>,
}

impl<F: Future<Output = ()>> Future for Both<F> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // SAFETY: `Both` never moves its futures: each is polled where it
        // lies and dropped there (`set(None)` through its pin) once done,
        // and `Both` has no `Drop` of its own that could move them.
        let this = unsafe { self.get_unchecked_mut() };
        for slot in [&mut this.first, &mut this.second] {
            // SAFETY: pinned with `Both`, as said above.
            let mut slot = unsafe { Pin::new_unchecked(slot) };
            let done = slot
                .as_mut()
                .as_pin_mut()
                .is_some_and(|f| f.poll(cx).is_ready());
            if done {
                slot.set(None);
            }
        }
        match this.first.is_none() && this.second.is_none() {
            true => Poll::Ready(()),
            false => Poll::Pending,
        }
    }
}

/// One stream of one run: what a round on a blocking thread needs, moved
/// there and back.
struct Pump {
    log: Arc<ProcessLog>,
    stream: Stream,
    fd: Arc<OwnedFd>,
    pid: u32,
    run: u32,
    splitter: LineSplitter,
    source: Source,
}

/// Where a pump's bytes go first.
enum Source {
    /// Spliced into the spool, read back from it. `fed`: the spool offset
    /// fed to the splitter (`None` until the pump has settled what the
    /// spool held).
    Spool { spool: Shared, fed: Option<u64> },
    /// Spliced straight into the file (raw format, no rotation).
    File,
    /// Read from the pipe; with the spool it fell back from, which then
    /// stays empty but still takes the checkpoints.
    Pipe { spool: Option<Shared> },
}

/// How a round of reading ended.
enum Round {
    /// The pipe is empty for now.
    Drained,
    /// [`ROUND`] bytes handled; there may be more.
    More,
    /// End of file, or a read error (logged).
    End,
}

impl Pump {
    /// The pump is boxed, and so are the rounds it awaits and the timer of
    /// a held line: an idle pump (most of them, most of the time) then
    /// holds little more than its wait for the pipe. (An `async fn` keeps
    /// an argument taken by value beside the local it moves it into.)
    async fn run(mut self: Box<Self>, ready: AsyncFd<Arc<OwnedFd>>) {
        // What the spool holds first (after a crash of the manager). Only
        // a spool has anything to settle: the others need no hand-over to
        // a blocking thread, two per spawn in a start of hundreds.
        if matches!(self.source, Source::Spool { .. }) {
            match Box::pin(work(self, |p, s| p.settle(s))).await {
                Some((back, ())) => self = back,
                None => return,
            }
        }
        // Since when the line held has been waiting for its end, and the
        // splitter's record count then (another count: another line).
        let mut pending_since: Option<(tokio::time::Instant, u64)> = None;
        loop {
            // Part of a line that stays without its end for PARTIAL_AFTER is
            // written as a piece to be continued: nothing waits unseen. The
            // wait counts from the first byte held, not from the last read,
            // so a trickle (a progress bar's dots) is not held back forever;
            // but a flood that ends each read mid-line starts a new line
            // each time, and each gets its own wait.
            let partial = self.splitter.has_pending();
            let emitted = self.splitter.emitted();
            pending_since = match (partial, pending_since) {
                (false, _) => None,
                (true, Some((since, seen))) if seen == emitted => Some((since, seen)),
                (true, _) => Some((tokio::time::Instant::now(), emitted)),
            };
            let flush_at = pending_since.map(|(t, _)| t + PARTIAL_AFTER);
            let mut guard = tokio::select! {
                // Data waiting in the pipe goes first: it may well end the
                // line held; only a pipe that stays quiet flushes a piece.
                biased;
                // The pipe's own waker slot, not a waiter in a list: an
                // idle stream holds no wait of its own.
                r = std::future::poll_fn(|cx| ready.poll_read_ready(cx)) => match r {
                    Ok(guard) => guard,
                    Err(e) => {
                        tracing::warn!(process = %self.log.id, error = %e, "waiting on the output pipe failed");
                        break;
                    }
                },
                () = flush(flush_at), if partial => {
                    match Box::pin(work(self, |p, s| p.feed(Feed::Partial, s))).await {
                        Some((back, ())) => self = back,
                        None => return,
                    }
                    continue;
                }
            };
            // The end of a pipe that had nothing more, with nothing to
            // finish: the pump ends here, with no hand-over to a blocking
            // thread (a stop of many processes would make one per pipe).
            if guard.ready().is_read_closed() && self.ends_quietly() {
                return;
            }
            // The end of the stream is finished in the round that finds it.
            let Some((back, round)) = Box::pin(work(self, |p, s| {
                let round = p.read_round(s);
                if matches!(round, Round::End) {
                    p.finish(s);
                }
                round
            }))
            .await
            else {
                return;
            };
            self = back;
            match round {
                Round::Drained => guard.clear_ready(),
                Round::More => {}
                Round::End => return,
            }
        }
        // Waiting on the pipe failed: what was read is finished.
        let _ = Box::pin(work(self, Pump::finish)).await;
    }

    /// End of file: the last line may have had no newline; the spool goes
    /// back to empty. Blocking thread only.
    fn finish(&mut self, s: &mut Scratch) {
        self.feed(Feed::End, s);
        if let Source::Spool { spool, .. } | Source::Pipe { spool: Some(spool) } = &self.source {
            // Everything is written: the spool goes back to empty.
            if let Err(e) = journal::lock(spool).compact(&[], true) {
                tracing::warn!(process = %self.log.id, error = %e, "cannot reset the log spool");
            }
        }
    }

    /// Whether the pipe is at its end with no byte left, and the end has
    /// nothing to do ([`Pump::finish`]): no spool to reset, no line held.
    fn ends_quietly(&self) -> bool {
        matches!(self.source, Source::File | Source::Pipe { spool: None })
            && !self.splitter.has_pending()
            && !self.splitter.continues()
            && pipe_now(self.fd.as_fd()) == PipeNow::Ended
    }
}

/// Resolves at `at` (at once without it): the timer of a held line, made
/// only while a line is held.
async fn flush(at: Option<tokio::time::Instant>) {
    if let Some(at) = at {
        Box::pin(tokio::time::sleep_until(at)).await;
    }
}

/// After a crash of the manager, for a process whose run ended while no
/// manager ran (it will not be re-attached): writes what its spools still
/// hold, as the last lines of the run they came from (pid and run number
/// from their checkpoints), and returns that `(pid, run)` if there was
/// anything. The log file is left open, as at the end of a run: call
/// `ProcessLog::run_ended` next (with how the run ended, if known), which
/// closes it.
// Used by the re-attach of processes after a crash of the manager.
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) async fn recover(log: &Arc<ProcessLog>) -> Option<(u32, u32)> {
    let permit = ROUNDS.acquire().await.ok();
    let log = log.clone();
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        log.recover_blocking()
    })
    .await
    .unwrap_or_else(|e| {
        tracing::error!(error = %e, "recovering a log spool failed");
        None
    })
}

/// Runs `f` on a blocking thread with a scratch set, at most [`WORKERS`]
/// at once, and hands the pump back. `None` if it panicked (logged).
async fn work<R: Send + 'static>(
    pump: Box<Pump>,
    f: fn(&mut Pump, &mut Scratch) -> R,
) -> Option<(Box<Pump>, R)> {
    // Never closed, so `acquire` cannot fail; if it did, running
    // unbounded is better than not running.
    let permit = ROUNDS.acquire().await.ok();
    let id = pump.log.id.clone();
    let round = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let mut pump = pump;
        let mut scratch = take_scratch();
        let r = f(&mut pump, &mut scratch);
        put_scratch(scratch);
        (pump, r)
    });
    match round.await {
        Ok(back) => Some(back),
        Err(e) => {
            tracing::error!(process = %id, error = %e, "the log pump failed; no more output is read");
            None
        }
    }
}

fn take_scratch() -> Scratch {
    let mut pool = SCRATCH.lock().unwrap_or_else(|p| p.into_inner());
    pool.pop().unwrap_or_default()
}

fn put_scratch(s: Scratch) {
    let mut pool = SCRATCH.lock().unwrap_or_else(|p| p.into_inner());
    if pool.len() < WORKERS {
        pool.push(s);
    }
}

#[path = "round.rs"]
mod round;

#[cfg(test)]
#[path = "tests/capture.rs"]
mod tests;

#[cfg(test)]
#[path = "tests/crash.rs"]
mod crash;
