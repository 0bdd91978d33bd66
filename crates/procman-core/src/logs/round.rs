//! A pump's work on a blocking thread, by where its bytes go first (see
//! the parent module): through the spool, straight into the file, or read
//! from the pipe; and, before the first round, what the spool held.

use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::time::Duration;

use rustix::event::{poll, PollFd, PollFlags, Timespec};
use std::sync::atomic::Ordering;

use rustix::io::Errno;

use super::{Pump, Round, Scratch, Source, KEEP_OUTPUT, ROUND};
use crate::logs::feed::{self, consume, consume_raw, Feed, Mark, CHUNK};
use crate::logs::journal;
use crate::logs::rotate::RunStream;
use crate::logs::splitter::LineSplitter;
use crate::logs::spool::Spool;

impl Pump {
    /// Handles chunks until the pipe is empty, at its end, or [`ROUND`]
    /// bytes were handled. Blocking thread only.
    pub(super) fn read_round(&mut self, s: &mut Scratch) -> Round {
        match &self.source {
            Source::Spool { spool, .. } => {
                let spool = spool.clone();
                let mut guard = journal::lock(&spool);
                self.spool_round(&mut guard, s)
            }
            Source::File => self.file_round(s),
            Source::Pipe { .. } => self.pipe_round(s),
        }
    }

    /// Through the spool: splice, read back, write, record.
    fn spool_round(&mut self, spool: &mut Spool, s: &mut Scratch) -> Round {
        let mut handled = 0;
        let round = loop {
            if handled >= ROUND {
                break Round::More;
            }
            let Source::Spool {
                fed: Some(from), ..
            } = self.source
            else {
                break Round::More;
            };
            if from < spool.end() {
                if let Err(e) = spool.read_at(from, CHUNK, &mut s.input) {
                    self.leave_spool(spool, "cannot read the log spool", &e);
                    break Round::More;
                }
                let n = s.input.len() as u64;
                if let Source::Spool { fed, .. } = &mut self.source {
                    *fed = Some(from + n);
                }
                handled += n as usize;
                let Scratch { input, output, .. } = s;
                self.consume(Feed::Chunk(input), output, Some(spool));
                continue;
            }
            match spool.fill(self.fd.as_fd(), CHUNK) {
                Ok(0) => return Round::End,
                Ok(n) => {
                    let counters = &self.log.counters;
                    counters.bytes_read.fetch_add(n as u64, Ordering::Relaxed);
                }
                Err(Errno::AGAIN) => break Round::Drained,
                Err(Errno::INTR) => {}
                Err(e) => {
                    // A full disk, a file system that refuses splice: the
                    // bytes are still in the pipe.
                    self.leave_spool(spool, "cannot move output into the log spool", &e);
                    break Round::More;
                }
            }
        };
        // Back to empty now and then, keeping the line held: it is then
        // all the spool holds, and was fed.
        match spool.compact(self.splitter.pending(), false) {
            Ok(true) => {
                if let Source::Spool { fed, .. } = &mut self.source {
                    *fed = Some(spool.end());
                }
            }
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(process = %self.log.id, error = %e, "cannot reset the log spool")
            }
        }
        round
    }

    /// The spool cannot be used: from now on the pipe is read directly,
    /// and the spool, emptied, only takes the checkpoints.
    fn leave_spool(&mut self, spool: &mut Spool, what: &str, e: &dyn std::fmt::Display) {
        self.log.fall_back(what, e);
        let Source::Spool { spool: shared, .. } = &self.source else {
            return;
        };
        // What it held is in the splitter already.
        if let Err(e) = spool.abandon() {
            tracing::warn!(process = %self.log.id, path = %spool.path().display(), error = %e,
                "cannot empty the log spool");
        }
        self.source = Source::Pipe {
            spool: Some(shared.clone()),
        };
    }

    /// Raw, not rotated: spliced straight into the file.
    fn file_round(&mut self, s: &mut Scratch) -> Round {
        let mut handled = 0;
        let targets = !self.log.targets.is_empty();
        let who = RunStream {
            stream: self.stream,
            pid: self.pid,
            run: self.run,
        };
        while handled < ROUND {
            let Scratch {
                input,
                output,
                relay,
            } = s;
            let bufs = (&mut *input, &mut *output);
            match self
                .log
                .splice_file(self.fd.as_fd(), CHUNK, who, relay, bufs, targets)
            {
                Ok(0) => return Round::End,
                Ok(n) => {
                    handled += n;
                    let counters = &self.log.counters;
                    counters.bytes_read.fetch_add(n as u64, Ordering::Relaxed);
                    if targets {
                        let who = (self.pid, self.run);
                        consume_raw(
                            &self.log,
                            &mut self.splitter,
                            Feed::Chunk(&s.input),
                            who,
                            true,
                        );
                    }
                }
                // In a flood the child refills the pipe within moments:
                // waiting for it here keeps the round on its thread.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if handled < FLOOD || !refilled(self.fd.as_fd()) {
                        return Round::Drained;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.log
                        .fall_back("cannot move output into the log file", &e);
                    self.source = Source::Pipe { spool: None };
                    return Round::More;
                }
            }
        }
        Round::More
    }

    /// Reads the pipe itself.
    fn pipe_round(&mut self, s: &mut Scratch) -> Round {
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
                    let Scratch { input, output, .. } = s;
                    self.feed_chunk(input, output);
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

    /// A chunk read from the pipe (not through the spool).
    fn feed_chunk(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        match &self.source {
            Source::Pipe { spool: Some(spool) } => {
                let spool = spool.clone();
                let mut guard = journal::lock(&spool);
                self.consume(Feed::Chunk(chunk), out, Some(&mut guard));
            }
            _ => self.consume(Feed::Chunk(chunk), out, None),
        }
    }

    /// A held line's wait ran out (`Partial`), or the end of the stream.
    pub(super) fn feed(&mut self, feed: Feed<'_>, s: &mut Scratch) {
        match &self.source {
            Source::Spool { spool, .. } | Source::Pipe { spool: Some(spool) } => {
                let spool = spool.clone();
                let mut guard = journal::lock(&spool);
                self.consume(feed, &mut s.output, Some(&mut guard));
            }
            _ => self.consume(feed, &mut s.output, None),
        }
    }

    /// Splits, writes (and records in `spool`) and queues the targets'
    /// batches. Raw bytes go to an unrotated raw file as they are.
    fn consume(&mut self, feed: Feed<'_>, out: &mut Vec<u8>, spool: Option<&mut Spool>) {
        let (log, splitter, who) = (&*self.log, &mut self.splitter, (self.pid, self.run));
        if log.raw_unrotated() {
            let in_file = matches!(self.source, Source::File);
            consume_raw(log, splitter, feed, who, in_file);
            return;
        }
        let fed = match self.source {
            Source::Spool { fed, .. } => fed,
            _ => None,
        };
        let mark = spool.map(|spool| Mark { spool, fed });
        consume(log, splitter, feed, out, who, mark);
        if out.capacity() > KEEP_OUTPUT {
            out.clear();
            out.shrink_to(KEEP_OUTPUT);
        }
    }

    /// Before the first round: what the spool holds of another run is
    /// written as that run's last lines; what it holds of this run is fed
    /// first, going on with the line it held.
    pub(super) fn settle(&mut self, _s: &mut Scratch) {
        let Source::Spool { spool, fed } = &mut self.source else {
            return;
        };
        let shared = spool.clone();
        let other = {
            let guard = journal::lock(&shared);
            let cp = guard.checkpoint();
            (cp.pid, cp.run) != (self.pid, self.run)
        };
        if other {
            if let Err(e) = feed::finish_backlog(&self.log, self.stream, &shared) {
                tracing::warn!(process = %self.log.id, error = %e, "cannot write what the log spool holds");
            }
        }
        let mut guard = journal::lock(&shared);
        if let Err(e) = guard.set_run(self.pid, self.run) {
            tracing::warn!(process = %self.log.id, error = %e, "cannot write a log spool's checkpoint");
        }
        let cp = *guard.checkpoint();
        *fed = Some(cp.done);
        self.splitter = LineSplitter::resumed(self.stream, self.log.max_line, cp.continues);
    }
}

/// Bytes a round must have moved to wait for the pipe to refill.
const FLOOD: usize = 64 * 1024;
/// How long a flood's round waits for the pipe to refill.
const REFILL: Duration = Duration::from_millis(2);

/// Whether `pipe` becomes readable within [`REFILL`].
fn refilled(pipe: BorrowedFd<'_>) -> bool {
    let mut fds = [PollFd::new(&pipe, PollFlags::IN)];
    let wait = Timespec {
        tv_sec: 0,
        tv_nsec: REFILL.as_nanos() as i64,
    };
    matches!(poll(&mut fds, Some(&wait)), Ok(n) if n > 0)
}
