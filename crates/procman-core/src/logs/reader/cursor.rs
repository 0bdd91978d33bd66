//! A reading position in a process's log: from the start of its last `n`
//! records forward through its chain and, at the end of the live file, on
//! across rotations.

use std::collections::VecDeque;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::PathBuf;

use super::chain::{
    open_chain, read_err, rotated, settled_chain, whole_records, Backward, FileId, LogSet, Probe,
    ReadError, Segment, Step, BLOCK, MAX_ROTATED,
};
use crate::config::ProcessLogFormat;

/// Looks for the successor of a rotated file (or for the files of a log
/// that had none) before waiting for the next change. Only renames during
/// the look make one fail, and their events wake that wait at once.
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
        self.read_with(buf, &mut Probe::quiet())
    }

    /// [`Cursor::read`], looking at the file system through `probe` (whose
    /// hook is where tests put the writer).
    fn read_with(&mut self, buf: &mut [u8], probe: &mut Probe<'_>) -> Result<usize, ReadError> {
        loop {
            let Some(front) = self.segs.front_mut() else {
                // There was no file: whatever appeared since is all new.
                match settled_chain(&self.base, self.whole_records, RETRIES, probe)? {
                    Some(segs) if !segs.is_empty() => self.segs = segs.into(),
                    // Nothing yet, or renames during every look (whose
                    // events wake the next wait).
                    _ => return Ok(0),
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
            probe.step(Step::Eof);
            // The end of the live file, unless the writer has moved on. The
            // old file is then read again to its end (next turn) before the
            // new one: anything written to it came before the rename.
            match self.successor(probe)? {
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
    /// moved on from it; `None` while that cannot be told for sure.
    fn successor(&self, probe: &mut Probe<'_>) -> Result<Option<Segment>, ReadError> {
        let Some(live) = self.segs.back() else {
            return Ok(None);
        };
        for _ in 0..RETRIES {
            let mark = probe.mark(&self.base)?;
            match mark.live() {
                Some(id) if id != live.id => {}
                // Still ours, or renamed with no new file yet.
                _ => return Ok(None),
            }
            let found = self.find_rotated(live.id, probe)?;
            let next = match found {
                Some(k) if k > 1 => rotated(&self.base, k - 1),
                // At `.1`, or removed (or moved out of the chain): the live
                // file follows.
                _ => self.base.clone(),
            };
            let Some(seg) = probe.open(&next)? else {
                // A rotation under way: its next rename wakes us again.
                return Ok(None);
            };
            let settled = match found {
                // Ours still at `.k` means nothing moved since we looked, so
                // `next` held its successor when we opened it.
                Some(k) => probe.id_at(&rotated(&self.base, k))? == Some(live.id),
                // Not found is trusted only if no rotation was completed
                // during the look (two can carry ours past it, see `Mark`)
                // and we opened the file that was live when it began.
                None => Some(seg.id) == mark.live() && mark.holds_still(&probe.mark(&self.base)?),
            };
            if settled {
                return Ok(Some(seg));
            }
        }
        Ok(None)
    }

    /// Where the file `id` sits among the rotated files, if it does.
    fn find_rotated(&self, id: FileId, probe: &mut Probe<'_>) -> Result<Option<u32>, ReadError> {
        let mut missing = 0;
        for k in 1..=MAX_ROTATED {
            match probe.id_at(&rotated(&self.base, k))? {
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
}

#[cfg(test)]
#[path = "../tests/cursor.rs"]
mod tests;
