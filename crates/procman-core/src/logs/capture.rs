//! Capture: a pipe per captured stream, and a pump task per pipe.
//!
//! The pump waits until its pipe is readable (no polling), reads a chunk
//! into a per-thread scratch buffer, splits it into records, formats them
//! for the process's file and for each aggregation target, writes the file
//! straight through, then queues the target batches. Memory per pump is the
//! splitter's pending line (at most `buffer_size`); the read buffer belongs
//! to the worker thread, so a thousand idle processes cost no buffers.
//! Every line of one chunk carries the time the chunk was read.
//!
//! A pump ends at end of file: when every process holding the pipe's write
//! end is gone (a grandchild that kept stdout keeps the pump going).

use std::cell::RefCell;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::SystemTime;

use tokio::net::unix::pipe;
use tokio::task::JoinHandle;

use super::format::{self, Timestamp};
use super::record::{Origin, Record, Stream};
use super::sink::ProcessLog;
use super::splitter::LineSplitter;
use crate::config::ProcessLogFormat;
use crate::platform::Stdio;

/// Bytes read from a pipe at a time.
const CHUNK: usize = 256 * 1024;
/// How long part of a line may wait for its end before it is written.
const PARTIAL_AFTER: std::time::Duration = std::time::Duration::from_millis(200);
/// Pipe buffer asked for (the kernel caps it at `fs.pipe-max-size`): a
/// flooding child then blocks less often while the pump writes.
const PIPE_SIZE: libc::c_int = 1024 * 1024;

thread_local! {
    static SCRATCH: RefCell<(Vec<u8>, Vec<u8>)> = const { RefCell::new((Vec::new(), Vec::new())) };
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
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 just created both descriptors; nothing else owns them.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // SAFETY: F_SETPIPE_SZ on our own pipe; failure only keeps the default.
    unsafe { libc::fcntl(w.as_raw_fd(), libc::F_SETPIPE_SZ, PIPE_SIZE) };
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
        .filter_map(|(stream, fd)| match pipe::Receiver::from_owned_fd(fd) {
            Ok(rx) => Some(tokio::spawn(pump(log.clone(), stream, rx, pid, run))),
            Err(e) => {
                tracing::error!(process = %log.id, error = %e, "cannot read the output pipe");
                None
            }
        })
        .collect()
}

enum Step {
    More(Vec<Vec<u8>>),
    Again,
    End,
}

async fn pump(log: Arc<ProcessLog>, stream: Stream, rx: pipe::Receiver, pid: u32, run: u32) {
    let mut splitter = LineSplitter::new(stream, log.max_line);
    loop {
        // Part of a line that stays without its end for PARTIAL_AFTER is
        // written as a piece to be continued: nothing waits unseen.
        let partial = splitter.has_pending();
        tokio::select! {
            ready = rx.readable() => if ready.is_err() { break },
            () = tokio::time::sleep(PARTIAL_AFTER), if partial => {
                let batches = SCRATCH.with(|cell| {
                    let (_, output) = &mut *cell.borrow_mut();
                    dispatch(&log, &mut splitter, Feed::Partial, output, pid, run)
                });
                log.targets.queue_all(batches).await;
                continue;
            }
        }
        let step = SCRATCH.with(|cell| {
            let mut scratch = cell.borrow_mut();
            let (input, output) = &mut *scratch;
            if input.len() < CHUNK {
                input.resize(CHUNK, 0);
            }
            match rx.try_read(input) {
                Ok(0) => Step::End,
                Ok(n) => {
                    log.counters.bytes_read.fetch_add(n as u64, Ordering::Relaxed);
                    let chunk = Feed::Chunk(&input[..n]);
                    Step::More(dispatch(&log, &mut splitter, chunk, output, pid, run))
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Step::Again,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => Step::Again,
                Err(e) => {
                    tracing::warn!(process = %log.id, stream = stream.as_str(), error = %e, "reading the output pipe failed");
                    Step::End
                }
            }
        });
        match step {
            Step::More(batches) => log.targets.queue_all(batches).await,
            Step::Again => {}
            Step::End => break,
        }
    }
    // End of file: the last line may have had no newline.
    let batches = SCRATCH.with(|cell| {
        let (_, output) = &mut *cell.borrow_mut();
        dispatch(&log, &mut splitter, Feed::End, output, pid, run)
    });
    log.targets.queue_all(batches).await;
}

/// Raw bytes go to an unrotated raw file as they are; everything else is
/// split into records and formatted.
fn dispatch(
    log: &ProcessLog,
    splitter: &mut LineSplitter,
    feed: Feed<'_>,
    out: &mut Vec<u8>,
    pid: u32,
    run: u32,
) -> Vec<Vec<u8>> {
    if log.raw_unrotated() {
        consume_raw(log, splitter, feed, pid, run)
    } else {
        consume(log, splitter, feed, out, pid, run)
    }
}

/// The time every record of this chunk carries, and who wrote it.
fn stamp(log: &ProcessLog, pid: u32, run: u32) -> (Timestamp, Origin<'_>) {
    let now = SystemTime::now();
    let origin = Origin {
        id: &log.id,
        pid,
        run,
        ts: now,
    };
    (Timestamp::new(now), origin)
}

/// What a pump hands the splitter.
enum Feed<'a> {
    Chunk(&'a [u8]),
    /// The pipe went quiet with part of a line held.
    Partial,
    /// End of file.
    End,
}

/// Splits what `feed` brings, writes the process's file, and returns the
/// formatted batches for the targets.
fn consume(
    log: &ProcessLog,
    splitter: &mut LineSplitter,
    feed: Feed<'_>,
    out: &mut Vec<u8>,
    pid: u32,
    run: u32,
) -> Vec<Vec<u8>> {
    let at_end = matches!(feed, Feed::End);
    let (ts, origin) = stamp(log, pid, run);
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
    bufs
}

/// Raw format without rotation: the file gets the chunk itself, unchanged
/// (no copy, no split); the splitter runs only when targets need records.
fn consume_raw(
    log: &ProcessLog,
    splitter: &mut LineSplitter,
    feed: Feed<'_>,
    pid: u32,
    run: u32,
) -> Vec<Vec<u8>> {
    if let Feed::Chunk(chunk) = feed {
        let lines = memchr::memchr_iter(b'\n', chunk).count() as u64;
        log.write_file(chunk, lines.max(1));
    }
    if log.targets.is_empty() {
        return Vec::new();
    }
    let (ts, origin) = stamp(log, pid, run);
    let mut bufs = log.targets.buffers();
    let mut emit = |r: Record<'_>| log.targets.format_into(&mut bufs, &ts, &origin, &r);
    match feed {
        Feed::Chunk(chunk) => splitter.feed(chunk, &mut emit),
        Feed::Partial => splitter.flush_partial(&mut emit),
        Feed::End => splitter.finish(&mut emit),
    }
    bufs
}
