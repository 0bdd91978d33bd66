//! A rotating file's side for spools and splicing: the identity a
//! checkpoint records, and raw output moved from a pipe straight into the
//! file (`positioned` mode, see the parent module). Below the usual 100
//! lines on purpose: a child module, so that it reaches the file's fields
//! while `rotate.rs` stays about rotation.

use std::io;
use std::os::fd::BorrowedFd;

use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::pipe::SpliceFlags;

use super::{error, LogFileOp, RotatingFile};
use crate::logs::checkpoint::FileId;

impl RotatingFile {
    /// Opens the file without `O_APPEND`, readable, and writes at its end:
    /// what [`splice_from`](RotatingFile::splice_from) needs. For a file
    /// without rotation, with no other writer.
    pub fn positioned(mut self) -> RotatingFile {
        self.positioned = true;
        self
    }

    /// The live file as it is now, when it is open and nothing is
    /// buffered: what a spool's checkpoint records after a write.
    pub(crate) fn identity(&self) -> Option<FileId> {
        let (dev, ino) = self.id;
        (self.file.is_some() && self.buf.is_empty()).then_some(FileId {
            dev,
            ino,
            len: self.size,
        })
    }

    /// Moves up to `max` bytes from `pipe` to the end of the file (opened
    /// [`positioned`](RotatingFile::positioned)), and, with `readback`,
    /// reads them back into it. `Ok(0)`: the pipe's end of file; an error
    /// of kind `WouldBlock`: an empty pipe. The bytes are in the file, or
    /// still in the pipe: never only in memory.
    pub fn splice_from(
        &mut self,
        pipe: BorrowedFd<'_>,
        max: usize,
        readback: Option<&mut Vec<u8>>,
    ) -> io::Result<usize> {
        if !self.positioned {
            return Err(io::ErrorKind::Unsupported.into());
        }
        // Not opened yet (opened at the first write): a run that writes
        // nothing creates no file, and its stop opens and fsyncs none.
        if self.file.is_none() {
            if let Some(idle) = nothing_to_move(pipe) {
                return idle;
            }
        }
        self.prepare()?;
        self.flush()?;
        let Some(file) = &self.file else {
            return Err(error(
                LogFileOp::Write,
                &self.path,
                io::ErrorKind::NotFound.into(),
            ));
        };
        let start = self.size;
        let flags = SpliceFlags::NONBLOCK | SpliceFlags::MOVE;
        let n = match rustix::pipe::splice(pipe, None, file, None, max, flags) {
            Ok(n) => n,
            Err(rustix::io::Errno::AGAIN) => return Err(io::ErrorKind::WouldBlock.into()),
            Err(e) => {
                // Opened again at the next call, at the real end.
                self.file = None;
                return Err(error(LogFileOp::Write, &self.path, e.into()));
            }
        };
        self.size += n as u64;
        if let Some(buf) = readback {
            self.read_back(buf, start, n)?;
        }
        Ok(n)
    }

    /// Reads the file's `n` bytes from `start` into `buf` (from the page
    /// cache: they were just written).
    pub(super) fn read_back(&self, buf: &mut Vec<u8>, start: u64, n: usize) -> io::Result<()> {
        let Some(file) = &self.file else {
            return Err(io::ErrorKind::NotFound.into());
        };
        buf.clear();
        buf.resize(n, 0);
        let mut got = 0;
        while got < n {
            match rustix::io::pread(file, &mut buf[got..], start + got as u64) {
                Ok(0) => {
                    return Err(error(
                        LogFileOp::Read,
                        &self.path,
                        io::ErrorKind::UnexpectedEof.into(),
                    ))
                }
                Ok(k) => got += k,
                Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(error(LogFileOp::Read, &self.path, e.into())),
            }
        }
        Ok(())
    }
}

/// What [`RotatingFile::splice_from`] returns for `pipe` without touching
/// the file, when the pipe has no byte to give: `WouldBlock` while it is
/// empty, `Ok(0)` at its end of file. `None` when it has bytes (or cannot
/// be asked): the splice decides.
fn nothing_to_move(pipe: BorrowedFd<'_>) -> Option<io::Result<usize>> {
    match pipe_now(pipe) {
        PipeNow::Empty => Some(Err(io::ErrorKind::WouldBlock.into())),
        PipeNow::Ended => Some(Ok(0)),
        PipeNow::Bytes => None,
    }
}

/// What a pipe's read end holds now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PipeNow {
    /// Nothing, and a writer may still add some.
    Empty,
    /// Nothing, and every write end is closed: its end of file.
    Ended,
    /// Bytes to read (or the kernel could not say: reading will).
    Bytes,
}

/// Asks the kernel, without reading, what `pipe` holds now (a poll and a
/// `FIONREAD`, neither of which blocks).
pub(crate) fn pipe_now(pipe: BorrowedFd<'_>) -> PipeNow {
    let mut fds = [PollFd::new(&pipe, PollFlags::IN)];
    let zero = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    match poll(&mut fds, Some(&zero)) {
        Ok(0) => return PipeNow::Empty,
        Ok(_) => {}
        Err(_) => return PipeNow::Bytes,
    }
    // Asked after the poll: once it saw the hang-up, no byte can be added.
    let hung_up = fds[0].revents().contains(PollFlags::HUP);
    match rustix::io::ioctl_fionread(pipe) {
        Ok(0) if hung_up => PipeNow::Ended,
        Ok(0) => PipeNow::Empty,
        _ => PipeNow::Bytes,
    }
}
