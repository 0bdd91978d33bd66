//! Capture: a pipe per captured stream, and a pump task per pipe.
//!
//! The pump task only waits: until its pipe is readable (epoll through
//! tokio, no polling), or until part of a line has waited long enough.
//! The work (read, split into records, format, write the process's file,
//! queue the target batches) runs on a blocking thread, so the async
//! workers never make a blocking system call nor hold the file's mutex
//! across I/O: a slow disk delays that process's log, never supervision.
//!
//! Each round on a blocking thread reads until the pipe is empty or
//! [`ROUND`] bytes were handled, whichever comes first, so a flood costs
//! one hand-over per few MiB, and other pumps get their turn. At most
//! [`WORKERS`] rounds run at once; each borrows a scratch set (read buffer,
//! formatted chunk) from a pool of at most that many, so a thousand idle
//! processes cost no buffers and a flood costs a bounded few.
//! Every line of one chunk carries the time the chunk was read.
//!
//! A pump ends at end of file: when every process holding the pipe's write
//! end is gone (a grandchild that kept stdout keeps the pump going).

use std::io;
use std::os::fd::OwnedFd;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustix::io::Errno;
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use super::format;
use super::record::{Record, Stream};
use super::sink::ProcessLog;
use super::splitter::LineSplitter;
use crate::config::ProcessLogFormat;
use crate::platform::Stdio;

/// Bytes read from a pipe at a time.
const CHUNK: usize = 256 * 1024;
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

/// Starts one pump per read end. Call after the spawn (the child holds
/// the write ends; ours were closed with the spec).
pub(crate) fn start(
    log: &Arc<ProcessLog>,
    readers: Vec<(Stream, OwnedFd)>,
    pid: u32,
    run: u32,
) -> Vec<JoinHandle<()>> {
    readers
        .into_iter()
        .filter_map(|(stream, fd)| {
            let fd = Arc::new(fd);
            // SAFETY: the descriptor is owned by the `Arc<OwnedFd>`, and the
            // `AsyncFd` holds a clone of it: the descriptor stays open, and
            // the same, for as long as the `AsyncFd` lives.
            let registered =
                unsafe { AsyncFd::register_with_interest(fd.clone(), Interest::READABLE) };
            match registered {
                Ok(ready) => {
                    let pump = Pump {
                        log: log.clone(),
                        splitter: LineSplitter::new(stream, log.max_line),
                        stream,
                        fd,
                        pid,
                        run,
                    };
                    Some(tokio::spawn(pump.run(ready)))
                }
                Err(e) => {
                    tracing::error!(process = %log.id, error = %e, "cannot read the output pipe");
                    None
                }
            }
        })
        .collect()
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
    async fn run(mut self, ready: AsyncFd<Arc<OwnedFd>>) {
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
                r = ready.readable() => match r {
                    Ok(guard) => guard,
                    Err(e) => {
                        tracing::warn!(process = %self.log.id, error = %e, "waiting on the output pipe failed");
                        break;
                    }
                },
                () = tokio::time::sleep_until(flush_at.unwrap_or_else(tokio::time::Instant::now)), if partial => {
                    match work(self, |p, s| p.feed(Feed::Partial, &mut s.output)).await {
                        Some((back, ())) => self = back,
                        None => return,
                    }
                    continue;
                }
            };
            let Some((back, round)) = work(self, Pump::read_round).await else {
                return;
            };
            self = back;
            match round {
                Round::Drained => guard.clear_ready(),
                Round::More => {}
                Round::End => break,
            }
        }
        // End of file: the last line may have had no newline.
        let _ = work(self, |p, s| p.feed(Feed::End, &mut s.output)).await;
    }

    /// Reads and handles chunks until the pipe is empty, at its end, or
    /// [`ROUND`] bytes were handled. Blocking thread only.
    fn read_round(&mut self, s: &mut Scratch) -> Round {
        let mut handled = 0;
        while handled < ROUND {
            s.input.clear();
            s.input.reserve(CHUNK);
            match rustix::io::read(&*self.fd, rustix::buffer::spare_capacity(&mut s.input)) {
                Ok(0) => return Round::End,
                Ok(n) => {
                    handled += n;
                    let counters = &self.log.counters;
                    counters.bytes_read.fetch_add(n as u64, Ordering::Relaxed);
                    let Scratch { input, output } = s;
                    self.feed(Feed::Chunk(input), output);
                }
                Err(Errno::AGAIN) => return Round::Drained,
                Err(Errno::INTR) => {}
                Err(e) => {
                    tracing::warn!(process = %self.log.id, stream = self.stream.as_str(),
                        error = %e, "reading the output pipe failed");
                    return Round::End;
                }
            }
        }
        Round::More
    }

    /// Splits what `feed` brings, writes the process's file and queues the
    /// target batches. Raw bytes go to an unrotated raw file as they are.
    fn feed(&mut self, feed: Feed<'_>, out: &mut Vec<u8>) {
        let (log, splitter) = (&*self.log, &mut self.splitter);
        if log.raw_unrotated() {
            consume_raw(log, splitter, feed, self.pid, self.run);
        } else {
            consume(log, splitter, feed, out, self.pid, self.run);
            if out.capacity() > KEEP_OUTPUT {
                out.clear();
                out.shrink_to(KEEP_OUTPUT);
            }
        }
    }
}

/// Runs `f` on a blocking thread with a scratch set, at most [`WORKERS`]
/// at once, and hands the pump back. `None` if it panicked (logged).
async fn work<R: Send + 'static>(
    pump: Pump,
    f: fn(&mut Pump, &mut Scratch) -> R,
) -> Option<(Pump, R)> {
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

/// What a pump hands the splitter.
enum Feed<'a> {
    Chunk(&'a [u8]),
    /// The pipe went quiet with part of a line held.
    Partial,
    /// End of file.
    End,
}

/// Splits what `feed` brings, writes the process's file, and queues the
/// formatted batches for the targets.
fn consume(
    log: &ProcessLog,
    splitter: &mut LineSplitter,
    feed: Feed<'_>,
    out: &mut Vec<u8>,
    pid: u32,
    run: u32,
) {
    let at_end = matches!(feed, Feed::End);
    let (ts, origin) = log.stamp(pid, run);
    out.clear();
    let mut bufs = log.targets.buffers();
    let mut records = 0u64;
    let file = log.has_file();
    let mut emit = |r: Record<'_>| {
        records += 1;
        if file {
            match log.format {
                ProcessLogFormat::Plain => format::plain_line(out, &ts, &r),
                ProcessLogFormat::Json => format::json_line(out, &ts, &origin, &r),
                // Raw with rotation: records keep rotation at line ends.
                ProcessLogFormat::Raw => {
                    out.extend_from_slice(r.bytes);
                    // At the end, a last line without a newline stays so.
                    if !r.continued && !at_end {
                        out.push(b'\n');
                    }
                }
            }
        }
        log.targets.format_into(&mut bufs, &ts, &origin, &r);
    };
    match feed {
        Feed::Chunk(chunk) => splitter.feed(chunk, &mut emit),
        Feed::Partial => splitter.flush_partial(&mut emit),
        Feed::End => splitter.finish(&mut emit),
    }
    log.write_file(out, records);
    log.targets.push_all(bufs, records);
}

/// Raw format without rotation: the file gets the chunk itself, unchanged
/// (no copy, no split); the splitter runs only when targets need records.
fn consume_raw(log: &ProcessLog, splitter: &mut LineSplitter, feed: Feed<'_>, pid: u32, run: u32) {
    if let Feed::Chunk(chunk) = feed {
        let lines = memchr::memchr_iter(b'\n', chunk).count() as u64;
        log.write_file(chunk, lines.max(1));
    }
    if log.targets.is_empty() {
        return;
    }
    let (ts, origin) = log.stamp(pid, run);
    let mut bufs = log.targets.buffers();
    let mut records = 0u64;
    let mut emit = |r: Record<'_>| {
        records += 1;
        log.targets.format_into(&mut bufs, &ts, &origin, &r);
    };
    match feed {
        Feed::Chunk(chunk) => splitter.feed(chunk, &mut emit),
        Feed::Partial => splitter.flush_partial(&mut emit),
        Feed::End => splitter.finish(&mut emit),
    }
    log.targets.push_all(bufs, records);
}

#[cfg(test)]
#[path = "tests/capture.rs"]
mod tests;
