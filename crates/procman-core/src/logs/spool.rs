//! A spool: the file between a pipe and a process's log, so that output
//! taken from the pipe is never only in the manager's memory.
//!
//! A pump moves bytes from the pipe into the spool with `splice(2)`, at
//! the spool's end (the file only grows between resets): the kernel moves
//! them, so the spool's size is always exactly what was taken from the
//! pipe, even when the manager is killed in the middle of the call. The
//! pump then reads the new bytes back (`pread`, from the page cache),
//! writes them to the log as before, and records how far it got in the
//! spool's [`checkpoint`](super::checkpoint). After a crash, the bytes
//! past the checkpoint are still there to be written.
//!
//! Layout: `<state_dir>/spool/<id>.<stdout|stderr>`, mode `0600`: a header
//! page of two checkpoint slots, then data. Offsets are file offsets.
//!
//! Reset: once the spool holds [`COMPACT_AT`] bytes (or at the end of the
//! stream) and everything in it but the line the splitter holds is
//! recorded as done, the held line is copied to the start of the data, the
//! file is cut after it, and a checkpoint says `done` = [`HEADER`]. A crash
//! between those steps leaves a file shorter than the recorded `done`,
//! which [`Spool::open`] reads as "reset": the data starts at `HEADER`.
//! For that the copy must end before the recorded `done` (checked), which
//! holds as soon as the spool is larger than a held line.

use std::fs::File;
use std::io;
use std::os::fd::BorrowedFd;
use std::path::{Path, PathBuf};

use rustix::io::Errno;
use rustix::pipe::SpliceFlags;

use super::checkpoint::{self, Checkpoint, FileId, HEADER};
use super::record::Stream;
use crate::state::files::{self, Access, PRIVATE_FILE_MODE};

/// Data a spool may hold before it is reset at the end of a round.
pub(crate) const COMPACT_AT: u64 = 1024 * 1024;

/// One stream's spool file, open.
#[derive(Debug)]
pub(crate) struct Spool {
    file: File,
    path: PathBuf,
    /// The file's size: where the next splice goes.
    end: u64,
    /// The last checkpoint written.
    cp: Checkpoint,
}

/// `<dir>/<id>.<stream>`.
pub(crate) fn path(dir: &Path, id: &str, stream: Stream) -> PathBuf {
    dir.join(format!("{id}.{}", stream.as_str()))
}

impl Spool {
    /// Opens (or creates) the spool at `path` and finds where its data
    /// not yet in the log starts. A reset seen here (the file shorter than
    /// the checkpoint's `done`) is written down at once, before anything
    /// can grow the file past that offset again.
    pub(crate) fn open(path: &Path) -> io::Result<Spool> {
        let named = |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", path.display()));
        let file = files::open_with_mode(path, Access::ReadWrite, PRIVATE_FILE_MODE)
            .map_err(named)?
            .file;
        let size = file.metadata().map_err(named)?.len();
        let found = checkpoint::read(&file).map_err(named)?;
        let mut spool = Spool {
            file,
            path: path.to_path_buf(),
            end: size.max(HEADER),
            cp: found.unwrap_or_default(),
        };
        if size < HEADER {
            spool.file.set_len(HEADER).map_err(named)?;
        }
        let reset = spool.cp.done > size || spool.cp.done < HEADER;
        if found.is_none() && size > HEADER {
            tracing::warn!(path = %path.display(),
                "log spool without a readable checkpoint; writing all it holds again");
        }
        if found.is_none() || reset {
            spool.cp.done = HEADER;
            checkpoint::write(&spool.file, &mut spool.cp).map_err(named)?;
        }
        Ok(spool)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The last checkpoint written.
    pub(crate) fn checkpoint(&self) -> &Checkpoint {
        &self.cp
    }

    /// Where the data ends (the next splice goes there).
    pub(crate) fn end(&self) -> u64 {
        self.end
    }

    /// Whether bytes past the checkpoint wait to be written.
    pub(crate) fn has_backlog(&self) -> bool {
        self.cp.done < self.end
    }

    /// Moves up to `max` bytes from `pipe` to the spool's end. `Ok(0)` is
    /// the pipe's end of file; `Err(AGAIN)` an empty pipe.
    pub(crate) fn fill(&mut self, pipe: BorrowedFd<'_>, max: usize) -> Result<usize, Errno> {
        let mut at = self.end;
        let flags = SpliceFlags::NONBLOCK | SpliceFlags::MOVE;
        let n = rustix::pipe::splice(pipe, None, &self.file, Some(&mut at), max, flags)?;
        // The kernel moved the offset by what it wrote.
        self.end = at;
        Ok(n)
    }

    /// Reads the spool's bytes from `from` up to `max` of them (not past
    /// the end) into `buf`, replacing its content.
    pub(crate) fn read_at(&self, from: u64, max: usize, buf: &mut Vec<u8>) -> io::Result<()> {
        let want = usize::try_from(self.end.saturating_sub(from)).map_or(max, |n| n.min(max));
        buf.clear();
        buf.reserve(want);
        while buf.len() < want {
            let (len, at) = (buf.len(), from + buf.len() as u64);
            let spare = &mut buf.spare_capacity_mut()[..want - len];
            match rustix::io::pread(&self.file, spare, at) {
                Ok(([], _)) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("{}: shorter than expected", self.path.display()),
                    ))
                }
                Ok((filled, _)) => {
                    let n = filled.len();
                    // SAFETY: `pread` initialised the first `n` bytes of
                    // the spare capacity, right after the current length.
                    unsafe { buf.set_len(buf.len() + n) };
                }
                Err(Errno::INTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Records that the bytes before `done` are in the log, which is
    /// `log` after the process's write number `gen`. Call it right after
    /// that write, under the log's lock.
    pub(crate) fn commit(
        &mut self,
        done: u64,
        continues: bool,
        gen: u64,
        log: Option<FileId>,
    ) -> io::Result<()> {
        self.record(|cp| {
            cp.done = done;
            cp.continues = continues;
            cp.gen = gen;
            cp.log = log;
        })
    }

    /// The bytes spliced from now on are run `run` (pid `pid`). Call it
    /// before the first splice of a run, once the last run's bytes are
    /// all written.
    pub(crate) fn set_run(&mut self, pid: u32, run: u32) -> io::Result<()> {
        if (self.cp.pid, self.cp.run) == (pid, run) {
            return Ok(());
        }
        self.record(|cp| {
            cp.pid = pid;
            cp.run = run;
            cp.continues = false;
        })
    }

    /// Writes the last checkpoint changed by `change`; kept only once
    /// written.
    fn record(&mut self, change: impl FnOnce(&mut Checkpoint)) -> io::Result<()> {
        let mut cp = self.cp;
        change(&mut cp);
        checkpoint::write(&self.file, &mut cp)?;
        self.cp = cp;
        Ok(())
    }

    /// Empties the spool for good (its stream reads the pipe directly from
    /// now on; what it held was fed already). It still takes checkpoints.
    pub(crate) fn abandon(&mut self) -> io::Result<()> {
        self.file.set_len(HEADER)?;
        self.end = HEADER;
        // Even if this write fails, the file is now shorter than the
        // recorded `done` (or the spool was empty): it reads as reset.
        self.cp.done = HEADER;
        checkpoint::write(&self.file, &mut self.cp)
    }

    /// Resets the spool when it is worth it (`force`: whenever possible):
    /// `held`, the line the splitter holds, must be exactly what lies past
    /// the checkpoint. Returns whether it was reset.
    pub(crate) fn compact(&mut self, held: &[u8], force: bool) -> io::Result<bool> {
        let data = self.end - HEADER;
        let held_len = held.len() as u64;
        let worth = data > 0 && (force || data >= COMPACT_AT);
        // The copy must end before the recorded `done` (see the module
        // docs), and only recorded bytes may be dropped.
        if !worth || self.end - self.cp.done != held_len || HEADER + held_len >= self.cp.done {
            return Ok(false);
        }
        if !held.is_empty() {
            let mut at = 0;
            while at < held.len() {
                match rustix::io::pwrite(&self.file, &held[at..], HEADER + at as u64) {
                    Ok(n) => at += n,
                    Err(Errno::INTR) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        self.file.set_len(HEADER + held_len)?;
        self.end = HEADER + held_len;
        // Even if this write fails, the file is now shorter than the
        // recorded `done`: a reader takes it as reset.
        self.cp.done = HEADER;
        checkpoint::write(&self.file, &mut self.cp)?;
        Ok(true)
    }
}

#[cfg(test)]
#[path = "tests/spool.rs"]
mod tests;
