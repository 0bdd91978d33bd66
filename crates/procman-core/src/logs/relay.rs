//! A rotating file's side for relayed raw output (see
//! [`ledger`](crate::logs::ledger) for why and how): a flood in the
//! child's pipe is copied by reference into a second pipe, written from
//! there while the child goes on writing, and released from the child's
//! pipe after; and the settling of a round a crash of the manager
//! interrupted. A child module, so that it reaches the file's fields.

use std::fs::File;
use std::io::{self, Seek, SeekFrom};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::path::Path;

use rustix::io::Errno;
use rustix::pipe::SpliceFlags;

use super::{error, LogFileOp, RotatingFile};
use crate::logs::checkpoint::FileId;
use crate::logs::ledger::{Ledger, Relayed, Settle};
use crate::logs::record::Stream;

/// Bytes the child's pipe must hold for a round to be relayed; below
/// that, one `splice` holds the pipe's lock only for a short write.
const RELAY_FROM: usize = 32 * 1024;
/// The relay's size asked for: as large as the child's pipe.
const RELAY_SIZE: usize = 1024 * 1024;
/// Bytes written into the file by one call. A larger write makes the
/// page cache take larger blocks of memory, which a VM that hands freed
/// memory back to its host (free page reporting) faults in slowly: 1 MiB
/// writes ran at 0.3× to 1.0× of a child writing its own file from run to
/// run, 512 KiB steadily at about 0.85×.
const WRITE_MAX: usize = 512 * 1024;

/// The second pipe of a relayed round, and where the bytes go when they
/// are released: moved into a third pipe (the *discard*), which a thread
/// of its own empties into `/dev/null`, so that the pages are freed beside
/// the next round's write rather than before it; `/dev/null` directly when
/// the discard is full or could not be made. One per scratch set (so at
/// most `WORKERS`, each with its thread), made at the first flood; the
/// relay is empty between rounds.
#[derive(Debug)]
pub(crate) struct Relay {
    read: OwnedFd,
    write: OwnedFd,
    null: OwnedFd,
    /// The discard's write end; dropped with the relay, which ends its
    /// thread.
    discard: Option<OwnedFd>,
    /// The discard is at least as large as the relay.
    discard_fits: bool,
}

impl Relay {
    pub(crate) fn new() -> io::Result<Relay> {
        let (read, write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
        // Failure only keeps the default size: rounds are smaller.
        let _ = rustix::pipe::fcntl_setpipe_size(&write, RELAY_SIZE);
        // Our ends never wait: the relay is filled before it is emptied.
        rustix::io::ioctl_fionbio(&read, true)?;
        rustix::io::ioctl_fionbio(&write, true)?;
        let null = rustix::fs::open(
            "/dev/null",
            rustix::fs::OFlags::WRONLY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )?;
        let discard = discard(&null)
            .inspect_err(|e| tracing::debug!(error = %e, "no thread to free relayed output; released inline"))
            .ok();
        let size = |fd: &OwnedFd| rustix::pipe::fcntl_getpipe_size(fd).unwrap_or(0);
        let discard_fits = discard.as_ref().is_some_and(|d| size(d) >= size(&write));
        Ok(Relay {
            read,
            write,
            null,
            discard,
            discard_fits,
        })
    }

    /// The relay in `slot` (a scratch set's), made the first time it is
    /// needed; `None` if it cannot be (rounds are then spliced).
    pub(crate) fn lazy(slot: &mut Option<io::Result<Relay>>) -> Option<&Relay> {
        let made = slot.get_or_insert_with(|| {
            Relay::new().inspect_err(|e| {
                tracing::warn!(error = %e, "cannot make a pipe to relay raw output; floods are spliced")
            })
        });
        made.as_ref().ok()
    }

    /// Empties the relay after a round that failed half-way.
    fn drain(&self) {
        while let Ok(n) = splice(self.read.as_fd(), self.null.as_fd(), RELAY_SIZE) {
            if n == 0 {
                break;
            }
        }
    }

    /// Copies up to `max` of the first bytes of `pipe` into the relay,
    /// leaving them in `pipe`. `Ok(0)`: its end of file.
    fn copy(&self, pipe: BorrowedFd<'_>, max: usize) -> Result<usize, Errno> {
        retry(|| rustix::pipe::tee(pipe, &self.write, max, SpliceFlags::NONBLOCK))
    }

    /// Takes up to `n` of the first bytes out of `pipe`, in one call:
    /// into the discard when it is empty and as large as the relay (then
    /// the whole round fits, so it is never split between two places),
    /// else into `/dev/null`.
    fn take(&self, pipe: BorrowedFd<'_>, n: usize) -> Result<usize, Errno> {
        let discard = self.discard.as_ref().filter(|d| {
            self.discard_fits && rustix::io::ioctl_fionread(d).is_ok_and(|held| held == 0)
        });
        if let Some(d) = discard {
            match splice(pipe, d.as_fd(), n) {
                // Full after all, or its thread is gone: nothing moved.
                Err(Errno::AGAIN | Errno::PIPE) => {}
                other => return other,
            }
        }
        splice(pipe, self.null.as_fd(), n)
    }
}

/// Makes the discard: a pipe whose read end a thread empties into
/// `/dev/null` (blocking, so it sleeps while the pipe is empty) until the
/// write end returned here is closed.
fn discard(null: &OwnedFd) -> io::Result<OwnedFd> {
    let (read, write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
    // Failure only keeps the default size: more goes to /dev/null inline.
    let _ = rustix::pipe::fcntl_setpipe_size(&write, RELAY_SIZE);
    rustix::io::ioctl_fionbio(&write, true)?;
    let null = null.try_clone()?;
    std::thread::Builder::new()
        .name("procman-discard".into())
        .stack_size(64 * 1024)
        .spawn(move || loop {
            let flags = SpliceFlags::MOVE;
            match rustix::pipe::splice(&read, None, &null, None, RELAY_SIZE, flags) {
                Ok(0) => break,
                Ok(_) | Err(Errno::INTR) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "cannot empty the discard of relayed output");
                    break;
                }
            }
        })?;
    Ok(write)
}

fn splice(from: BorrowedFd<'_>, to: BorrowedFd<'_>, max: usize) -> Result<usize, Errno> {
    let flags = SpliceFlags::NONBLOCK | SpliceFlags::MOVE;
    retry(|| rustix::pipe::splice(from, None, to, None, max, flags))
}

fn retry(mut f: impl FnMut() -> Result<usize, Errno>) -> Result<usize, Errno> {
    loop {
        match f() {
            Err(Errno::INTR) => {}
            other => return other,
        }
    }
}

/// A file's relaying: its ledger, and the round a crash interrupted,
/// until it is settled.
#[derive(Debug)]
pub(crate) struct Relaying {
    ledger: Ledger,
    unsettled: Option<Relayed>,
    /// The ledger cannot be written: rounds are spliced.
    broken: bool,
}

/// Whose bytes a round moves.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RunStream {
    pub stream: Stream,
    pub pid: u32,
    pub run: u32,
}

impl RotatingFile {
    /// Relays floods, recording rounds in `ledger`; `unsettled`: a round
    /// a crash interrupted, settled before the first write. For a file
    /// opened [`positioned`](RotatingFile::positioned).
    pub(crate) fn relayed(mut self, ledger: Ledger, unsettled: Option<Relayed>) -> RotatingFile {
        self.relay = Some(Box::new(Relaying {
            ledger,
            unsettled,
            broken: false,
        }));
        self
    }

    /// Relays floods from now on, with the ledger `make` gives, made at
    /// the first flood (a process that never floods holds none).
    pub(crate) fn relaying(&mut self, make: impl FnOnce() -> Ledger) {
        if self.relay.is_none() {
            self.relay = Some(Box::new(Relaying {
                ledger: make(),
                unsettled: None,
                broken: false,
            }));
        }
    }

    /// The stream of a round a crash interrupted, not settled yet.
    pub(crate) fn unsettled(&self) -> Option<Stream> {
        self.relay.as_ref()?.unsettled.map(|r| r.stream)
    }

    /// Whether the next round from `pipe` can be relayed: it holds a
    /// flood, and the ledger works (or is not made yet: see
    /// [`relaying`](RotatingFile::relaying)).
    pub(crate) fn relays(&self, pipe: BorrowedFd<'_>) -> bool {
        self.positioned
            && self.relay.as_ref().is_none_or(|r| !r.broken)
            && rustix::io::ioctl_fionread(pipe).is_ok_and(|n| n as usize >= RELAY_FROM)
    }

    /// Relays one round from `pipe` (up to the relay's size) into the
    /// file's end, and, with `readback`, reads it back into it. As
    /// [`splice_from`](RotatingFile::splice_from): `Ok(0)` at the pipe's
    /// end of file, `WouldBlock` when it is empty; the bytes are in the
    /// file or still in the pipe, and the ledger says which.
    pub(crate) fn relay_from(
        &mut self,
        pipe: BorrowedFd<'_>,
        relay: &Relay,
        who: RunStream,
        readback: Option<&mut Vec<u8>>,
    ) -> io::Result<usize> {
        self.prepare()?;
        self.flush()?;
        let n = match relay.copy(pipe, RELAY_SIZE) {
            Ok(n) => n,
            Err(Errno::AGAIN) => return Err(io::ErrorKind::WouldBlock.into()),
            Err(e) => return Err(error(LogFileOp::Write, &self.path, e.into())),
        };
        if n == 0 {
            return Ok(0);
        }
        let at = self.size;
        let round = Relayed {
            stream: who.stream,
            at: FileId {
                dev: self.id.0,
                ino: self.id.1,
                len: at,
            },
            len: n as u64,
            pid: who.pid,
            run: who.run,
        };
        let (Some(file), Some(state)) = (&self.file, self.relay.as_mut()) else {
            relay.drain();
            return Err(io::ErrorKind::NotFound.into());
        };
        if let Err(e) = state.ledger.begin(round) {
            // Left in the pipe: spliced from now on.
            relay.drain();
            state.broken = true;
            tracing::warn!(path = %self.path.display(), ledger = %state.ledger.path().display(), error = %e,
                "cannot write the raw log's ledger; floods are no longer relayed");
            return Err(io::ErrorKind::Interrupted.into());
        }
        let mut written = 0;
        let mut failed = None;
        while written < n {
            match splice(
                relay.read.as_fd(),
                file.as_fd(),
                (n - written).min(WRITE_MAX),
            ) {
                Ok(0) => break,
                Ok(got) => written += got,
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        if written < n {
            relay.drain();
            written = short_round(file, &mut state.ledger, round, written, &self.path);
        }
        // What reached the file leaves the pipe; the rest stays there.
        let mut released = 0;
        while released < written {
            let took = relay.take(pipe, written - released);
            if let Ok(k @ 1..) = took {
                released += k;
                if released < written {
                    // Part of the round is out: the ledger follows, so
                    // that a crash now cuts back to where the pipe resumes.
                    let rest = Relayed {
                        at: FileId {
                            len: at + released as u64,
                            ..round.at
                        },
                        len: (written - released) as u64,
                        ..round
                    };
                    if let Err(e) = state.ledger.begin(rest) {
                        tracing::warn!(path = %self.path.display(), error = %e,
                            "cannot write the raw log's ledger; a crash now may repeat part of a round");
                    }
                }
                continue;
            }
            // Taken out or not, it cannot be told: the file is cut back,
            // so that the pipe's bytes are written once more, not twice.
            let e = took.map_or_else(io::Error::from, |_| Errno::PIPE.into());
            let to = at + released as u64;
            if let Err(cut) = file.set_len(to) {
                tracing::warn!(path = %self.path.display(), error = %cut,
                    "cannot cut the raw log back; part of a round may appear twice");
            }
            self.size = to;
            // Opened again at the next call, at the real end.
            self.file = None;
            return Err(error(LogFileOp::Write, &self.path, e));
        }
        if let Err(e) = state.ledger.clear() {
            state.broken = true;
            tracing::warn!(path = %self.path.display(), ledger = %state.ledger.path().display(), error = %e,
                "cannot write the raw log's ledger; floods are no longer relayed");
        }
        self.size += written as u64;
        if written == 0 {
            let e = failed.map_or(io::ErrorKind::WriteZero.into(), io::Error::from);
            // Opened again at the next call, at the real end.
            self.file = None;
            return Err(error(LogFileOp::Write, &self.path, e));
        }
        if let Some(buf) = readback {
            self.read_back(buf, at, written)?;
        }
        Ok(written)
    }

    /// Settles a round a crash interrupted (see [`Relayed::settle`]):
    /// `pipe`, its stream's pipe when the run was re-attached; `relay` and
    /// the two buffers to compare. Logs what it did; afterwards the
    /// ledger is clear.
    pub(crate) fn settle(
        &mut self,
        pipe: Option<BorrowedFd<'_>>,
        relay: Option<&Relay>,
        bufs: (&mut Vec<u8>, &mut Vec<u8>),
    ) -> io::Result<()> {
        let Some(round) = self.relay.as_mut().and_then(|r| r.unsettled.take()) else {
            return Ok(());
        };
        self.prepare()?;
        self.flush()?;
        let now = FileId {
            dev: self.id.0,
            ino: self.id.1,
            len: self.size,
        };
        let live = match (pipe, relay) {
            (Some(p), Some(r)) => Some((p, r)),
            _ => None,
        };
        let cut = match (round.settle(now, live.is_some()), live) {
            (Settle::CutTo(len), _) => Some(len),
            (Settle::Compare, Some((pipe, relay))) => self
                .same_head(pipe, relay, &round, bufs)?
                .then_some(round.at.len),
            _ => None,
        };
        if let (Some(len), Some(file)) = (cut, &self.file) {
            file.set_len(len)
                .and_then(|()| (&*file).seek(SeekFrom::Start(len)).map(drop))
                .map_err(|e| error(LogFileOp::Write, &self.path, e))?;
            self.size = len;
        }
        if let Some(len) = cut.filter(|&len| len < now.len) {
            tracing::info!(path = %self.path.display(), from = now.len, to = len,
                "raw log cut back to before the round a crash interrupted; its bytes, still in the pipe, are written again");
        }
        if let Some(state) = self.relay.as_mut() {
            state.ledger.clear()?;
        }
        Ok(())
    }

    /// At the end of a run: a round no pump settled (its pipe was not
    /// found again) is kept as the file holds it.
    pub(crate) fn end_relay(&mut self) {
        if let Some(state) = self.relay.as_mut() {
            if state.unsettled.take().is_some() {
                if let Err(e) = state.ledger.clear() {
                    tracing::warn!(path = %self.path.display(), error = %e, "cannot clear the raw log's ledger");
                }
            }
        }
    }

    /// Whether `pipe` still starts with the round's bytes: it holds at
    /// least the round (released, it may hold less), and the first bytes
    /// it holds are the file's from the round's start.
    fn same_head(
        &self,
        pipe: BorrowedFd<'_>,
        relay: &Relay,
        round: &Relayed,
        (head, ours): (&mut Vec<u8>, &mut Vec<u8>),
    ) -> io::Result<bool> {
        let len = round.len as usize;
        if rustix::io::ioctl_fionread(pipe).map_or(true, |n| (n as usize) < len) {
            return Ok(false);
        }
        let got = match relay.copy(pipe, len) {
            Ok(n) => n,
            Err(Errno::AGAIN) => 0,
            Err(e) => return Err(e.into()),
        };
        head.clear();
        head.resize(got, 0);
        let mut read = 0;
        while read < got {
            match retry(|| rustix::io::read(&relay.read, &mut head[read..])) {
                Ok(0) | Err(_) => break,
                Ok(n) => read += n,
            }
        }
        relay.drain();
        if read == 0 || read < got {
            return Ok(false);
        }
        self.read_back(ours, round.at.len, read)?;
        Ok(head[..read] == ours[..])
    }
}

/// After a short write of a round (`written` of its bytes, a full disk):
/// keeps whole lines only, so that what is written next is not glued to
/// a piece of one (the rest stays in the child's pipe), and records what
/// the file keeps in the ledger before anything leaves the pipe. How many
/// bytes it keeps; 0 when it is cut back to the round's start.
fn short_round(
    file: &File,
    ledger: &mut Ledger,
    round: Relayed,
    written: usize,
    path: &Path,
) -> usize {
    let at = round.at.len;
    let cut = |to: u64| {
        file.set_len(to)
            .and_then(|()| (&*file).seek(SeekFrom::Start(to)).map(drop))
    };
    let mut keep = whole_lines(file, at, written).unwrap_or_else(|e| {
        tracing::warn!(path = %path.display(), error = %e, "cannot read the raw log back; a line may be cut");
        written
    });
    if keep < written {
        if let Err(e) = cut(at + keep as u64) {
            tracing::warn!(path = %path.display(), error = %e, "cannot cut the raw log back to its last whole line");
            keep = written;
        }
    }
    if keep == 0 {
        return 0;
    }
    match ledger.begin(Relayed {
        len: keep as u64,
        ..round
    }) {
        Ok(()) => keep,
        Err(e) => {
            // Nothing leaves the pipe: the file goes back to the round's
            // start (the ledger's record, cut back after a crash, says so).
            if let Err(c) = cut(at) {
                tracing::warn!(path = %path.display(), error = %c, "cannot cut the raw log back; part of a round may appear twice");
            }
            tracing::warn!(path = %path.display(), error = %e, "cannot write the raw log's ledger");
            0
        }
    }
}

/// How many of the `len` bytes from `at` in `file` end with its last
/// newline (0: none has one).
fn whole_lines(file: &File, at: u64, len: usize) -> io::Result<usize> {
    let mut buf = vec![0u8; len.min(64 * 1024)];
    let mut end = len;
    while end > 0 {
        let start = end.saturating_sub(buf.len());
        let chunk = &mut buf[..end - start];
        file.read_exact_at(chunk, at + start as u64)?;
        if let Some(i) = chunk.iter().rposition(|&b| b == b'\n') {
            return Ok(start + i + 1);
        }
        end = start;
    }
    Ok(0)
}

#[cfg(test)]
#[path = "tests/relay.rs"]
mod tests;
