//! A reading position in a process's log: from the start of its last `n`
//! records forward through its chain and, at the end of the live file, on
//! across rotations.

use std::collections::VecDeque;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::chain::{
    id_at, open_chain, read_err, rotated, whole_records, Backward, FileId, LogSet, ReadError,
    Segment, BLOCK, MAX_ROTATED,
};
use crate::config::ProcessLogFormat;

/// Times the successor of a rotated file is looked for before waiting for
/// the next change (only a rotation under way makes a look fail).
const RETRIES: usize = 16;

/// Where reading starts in a chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Start {
    /// At this offset of this segment (0 = the oldest).
    At(usize, u64),
    /// After everything the chain held when it was opened.
    End,
}

/// The start of the last `n` records of a chain (all of them for 0).
fn last_n_start(segs: &[Segment], n: usize) -> Result<Start, ReadError> {
    if n == 0 {
        return Ok(Start::At(0, 0));
    }
    let mut back = Backward::new(segs, ProcessLogFormat::Raw);
    let mut start = Start::End;
    for _ in 0..n {
        match back.next()? {
            Some((i, off)) => start = Start::At(i, off),
            None => break,
        }
    }
    Ok(start)
}

/// A reading position in a process's log that moves forward through its
/// chain and, at the end of the live file, on across rotations.
#[derive(Debug)]
pub struct Cursor {
    base: PathBuf,
    /// Files still to read, the current one first; the last is the newest
    /// known. Empty while the log has no file at all.
    segs: VecDeque<Segment>,
    /// Hand out only complete records of the live file (plain and JSON).
    whole_records: bool,
}

impl Cursor {
    /// A cursor at the start of the last `n` records (`0`: all of them).
    pub fn tail(set: &LogSet, n: usize) -> Result<Cursor, ReadError> {
        let segs = open_chain(&set.path, whole_records(set))?;
        let start = last_n_start(&segs, n)?;
        Cursor::at(set, segs, start)
    }

    pub(super) fn at(set: &LogSet, segs: Vec<Segment>, start: Start) -> Result<Cursor, ReadError> {
        let mut segs = VecDeque::from(segs);
        let (skip, off) = match start {
            Start::At(i, off) => (i, off),
            Start::End => (
                segs.len().saturating_sub(1),
                segs.back().map_or(0, |s| s.len),
            ),
        };
        segs.drain(..skip.min(segs.len()));
        if let Some(first) = segs.front_mut() {
            first
                .file
                .seek(SeekFrom::Start(off))
                .map_err(|e| read_err(&first.path, e))?;
        }
        Ok(Cursor {
            base: set.path.clone(),
            segs,
            whole_records: whole_records(set),
        })
    }

    /// Reads what follows, from this file or the next; `Ok(0)` when
    /// everything written so far has been read.
    pub fn read(&mut self, buf: &mut [u8]) -> Result<usize, ReadError> {
        self.read_with(buf, &mut || {})
    }

    /// [`Cursor::read`], calling `at_eof` between reaching the end of the
    /// live file and looking for a rotation (where tests put the writer).
    fn read_with(&mut self, buf: &mut [u8], at_eof: &mut dyn FnMut()) -> Result<usize, ReadError> {
        loop {
            let Some(front) = self.segs.front_mut() else {
                // There was no file: whatever appeared since is all new.
                self.segs = open_chain(&self.base, self.whole_records)?.into();
                if self.segs.is_empty() {
                    return Ok(0);
                }
                continue;
            };
            let n = match front.file.read(buf) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(read_err(&front.path, e)),
            };
            if n > 0 {
                match self.complete_records(buf, n)? {
                    0 => {} // only part of a record: as if at the end
                    n => return Ok(n),
                }
            } else if self.segs.len() > 1 {
                // A rotated file is complete: on to the next.
                self.segs.pop_front();
                continue;
            }
            if self.rewind_if_truncated()? {
                continue;
            }
            at_eof();
            // The end of the live file, unless the writer has moved on. The
            // old file is then read again to its end (next turn) before the
            // new one: anything written to it came before the rename.
            match self.successor()? {
                Some(next) => self.segs.push_back(next),
                None => return Ok(0),
            }
        }
    }

    /// How many of the `n` bytes just read into `buf` to hand out: in the
    /// live file of a plain or JSON log, up to the end of the last complete
    /// record (the file position goes back to there). A record being
    /// written is then read once it is whole, and one that the writer
    /// truncates away (a write cut short by a full disk) is never seen.
    /// A record longer than `buf` is handed out in pieces.
    fn complete_records(&mut self, buf: &[u8], n: usize) -> Result<usize, ReadError> {
        if !self.whole_records || self.segs.len() > 1 {
            return Ok(n);
        }
        let keep = match buf[..n].iter().rposition(|&b| b == b'\n') {
            Some(i) => i + 1,
            None if n == buf.len() => n,
            None => 0,
        };
        if keep < n {
            if let Some(seg) = self.segs.front_mut() {
                let back = -((n - keep) as i64);
                seg.file
                    .seek(SeekFrom::Current(back))
                    .map_err(|e| read_err(&seg.path, e))?;
            }
        }
        Ok(keep)
    }

    /// Copies everything written so far to `out`; returns the byte count.
    pub fn copy_to(&mut self, out: &mut dyn Write) -> Result<u64, ReadError> {
        let mut buf = vec![0u8; BLOCK];
        let mut total = 0;
        loop {
            let n = self.read(&mut buf)?;
            if n == 0 {
                return Ok(total);
            }
            out.write_all(&buf[..n]).map_err(ReadError::Output)?;
            total += n as u64;
        }
    }

    /// A live file cut shorter than our position (`copytruncate` style) is
    /// read again from its start.
    fn rewind_if_truncated(&mut self) -> Result<bool, ReadError> {
        let Some(seg) = self.segs.back_mut() else {
            return Ok(false);
        };
        let err = |e| read_err(&seg.path, e);
        let len = seg.file.metadata().map_err(err)?.len();
        if len >= seg.file.stream_position().map_err(err)? {
            return Ok(false);
        }
        seg.file.seek(SeekFrom::Start(0)).map_err(err)?;
        Ok(true)
    }

    /// The file that follows the newest one we hold, once the writer has
    /// moved on from it.
    fn successor(&self) -> Result<Option<Segment>, ReadError> {
        let Some(live) = self.segs.back() else {
            return Ok(None);
        };
        for _ in 0..RETRIES {
            match id_at(&self.base)? {
                Some(id) if id != live.id => {}
                // Still ours, or renamed with no new file yet.
                _ => return Ok(None),
            }
            let Some(k) = self.find_rotated(live.id)? else {
                // Removed (or moved out of the chain): the live file follows.
                return self.open(&self.base);
            };
            let next = if k == 1 {
                self.base.clone()
            } else {
                rotated(&self.base, k - 1)
            };
            let Some(seg) = self.open(&next)? else {
                // A rotation under way: its next rename wakes us again.
                return Ok(None);
            };
            // Ours still at `.k` means nothing moved since we looked, so
            // `next` held its successor when we opened it.
            if id_at(&rotated(&self.base, k))? == Some(live.id) {
                return Ok(Some(seg));
            }
        }
        Ok(None)
    }

    /// Where the file `id` sits among the rotated files, if it does.
    fn find_rotated(&self, id: FileId) -> Result<Option<u32>, ReadError> {
        let mut missing = 0;
        for k in 1..=MAX_ROTATED {
            match id_at(&rotated(&self.base, k))? {
                Some(found) if found == id => return Ok(Some(k)),
                Some(_) => missing = 0,
                None => {
                    missing += 1;
                    if missing == 2 {
                        break;
                    }
                }
            }
        }
        Ok(None)
    }

    fn open(&self, path: &Path) -> Result<Option<Segment>, ReadError> {
        match Segment::open(path) {
            Ok(seg) => Ok(Some(seg)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(read_err(path, e)),
        }
    }
}

#[cfg(test)]
#[path = "../tests/cursor.rs"]
mod tests;
