//! A rotating file's side for spools and splicing: the identity a
//! checkpoint records, and raw output moved from a pipe straight into the
//! file (`positioned` mode, see the parent module). Below the usual 100
//! lines on purpose: a child module, so that it reaches the file's fields
//! while `rotate.rs` stays about rotation.

use std::io;
use std::os::fd::BorrowedFd;

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
            buf.clear();
            buf.resize(n, 0);
            rustix::io::pread(file, &mut buf[..], start)
                .and_then(|got| {
                    if got == n {
                        Ok(())
                    } else {
                        Err(rustix::io::Errno::IO)
                    }
                })
                .map_err(|e| error(LogFileOp::Read, &self.path, e.into()))?;
        }
        Ok(n)
    }
}
