//! Several processes' logs merged by time: each read record by record (a
//! [`Source`]), the last `n` records of all of them found by a k-way merge
//! run backwards, then written out in order of their timestamps.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::Write;

use super::chain::{
    open_chain, record_key, whole_records, Backward, LogSet, ReadError, BLOCK, HEAD, TS_LEN,
};
use super::cursor::{Cursor, Start};
use super::render::{write_piece, Piece, Style};

/// The longest piece of a line held in memory at once.
pub const MAX_PIECE: usize = 1 << 20;

/// One process's log read record by record.
#[derive(Debug)]
pub struct Source {
    set: LogSet,
    cursor: Cursor,
    /// Bytes read and not handed out yet: `buf[start..]`.
    buf: Vec<u8>,
    start: usize,
    /// The last piece handed out did not end its line.
    mid_line: bool,
}

impl Source {
    pub fn new(set: LogSet, cursor: Cursor) -> Source {
        Source {
            set,
            cursor,
            buf: Vec::new(),
            start: 0,
            mid_line: false,
        }
    }

    /// The last `n` records of `set` (`0`: all of them).
    pub fn tail(set: &LogSet, n: usize) -> Result<Source, ReadError> {
        Ok(Source::new(set.clone(), Cursor::tail(set, n)?))
    }

    pub fn set(&self) -> &LogSet {
        &self.set
    }

    /// The next piece available now. A last line without its newline is
    /// handed out only `at_end` (otherwise it waits for the rest).
    fn next_piece(&mut self, at_end: bool) -> Result<Option<Piece>, ReadError> {
        loop {
            let pending = &self.buf[self.start..];
            let (len, used, ends) = if let Some(i) = pending.iter().position(|&b| b == b'\n') {
                (i, i + 1, true)
            } else if pending.len() >= MAX_PIECE {
                (MAX_PIECE, MAX_PIECE, false)
            } else {
                self.buf.drain(..self.start);
                self.start = 0;
                let had = self.buf.len();
                self.buf.resize(had + BLOCK, 0);
                let read = self.cursor.read(&mut self.buf[had..]);
                self.buf.truncate(had + read.as_ref().map_or(0, |n| *n));
                if read? > 0 {
                    continue;
                }
                if !at_end || had == 0 {
                    return Ok(None);
                }
                (had, had, true)
            };
            let bytes = self.buf[self.start..self.start + len].to_vec();
            self.start += used;
            let starts = !self.mid_line;
            self.mid_line = !ends;
            let key = if starts {
                record_key(self.set.format, &bytes[..bytes.len().min(HEAD)])
            } else {
                [0; TS_LEN]
            };
            return Ok(Some(Piece {
                key,
                bytes,
                starts,
                ends,
            }));
        }
    }

    /// Writes the rest of a line cut into pieces, as far as it is there.
    fn finish_line(
        &mut self,
        style: Style,
        at_end: bool,
        out: &mut dyn Write,
    ) -> Result<(), ReadError> {
        while self.mid_line {
            match self.next_piece(at_end)? {
                Some(piece) => write_piece(&self.set, &piece, style, out)?,
                None => break,
            }
        }
        Ok(())
    }
}

/// Sources for `sets`, each placed so that together they hold the last `n`
/// records of the merge of all of them (`0`: everything). Ties in time go
/// to the set that comes first, as in [`write_merged`].
pub fn merged_tail(sets: &[LogSet], n: usize) -> Result<Vec<Source>, ReadError> {
    let chains = sets
        .iter()
        .map(|s| open_chain(&s.path, whole_records(s)))
        .collect::<Result<Vec<_>, _>>()?;
    let mut starts = vec![if n == 0 { Start::At(0, 0) } else { Start::End }; sets.len()];
    if n > 0 {
        // A k-way merge run backwards: the newest record of all comes first.
        let mut backs: Vec<Backward<'_>> = chains
            .iter()
            .zip(sets)
            .map(|(c, s)| Backward::new(c, s.format))
            .collect();
        let mut heap = BinaryHeap::new();
        for (i, back) in backs.iter_mut().enumerate() {
            if let Some((seg, off)) = back.next()? {
                heap.push((back.key(seg, off)?, i, seg, off));
            }
        }
        for _ in 0..n {
            let Some((_, i, seg, off)) = heap.pop() else {
                break;
            };
            starts[i] = Start::At(seg, off);
            if let Some((seg, off)) = backs[i].next()? {
                heap.push((backs[i].key(seg, off)?, i, seg, off));
            }
        }
    }
    sets.iter()
        .zip(chains)
        .zip(starts)
        .map(|((set, chain), start)| Ok(Source::new(set.clone(), Cursor::at(set, chain, start)?)))
        .collect()
}

/// Writes every record available now from `sources`, merged by time: the
/// timestamp of plain records, the `ts` of JSON ones (raw output has none
/// and goes in source order). Ties go to the source that comes first.
/// With `at_end`, a last line without its newline is written too, ended by
/// one; otherwise it waits for its rest (for a later call).
pub fn write_merged(
    sources: &mut [Source],
    style: Style,
    at_end: bool,
    out: &mut dyn Write,
) -> Result<(), ReadError> {
    // The later pieces of a long line have no time of their own: a line
    // begun in an earlier call is finished before anything else.
    for s in sources.iter_mut() {
        s.finish_line(style, at_end, out)?;
    }
    let mut heads = Vec::with_capacity(sources.len());
    let mut heap = BinaryHeap::new();
    for (i, s) in sources.iter_mut().enumerate() {
        let head = if s.mid_line {
            None
        } else {
            s.next_piece(at_end)?
        };
        if let Some(p) = &head {
            heap.push(Reverse((p.key, i)));
        }
        heads.push(head);
    }
    while let Some(Reverse((_, i))) = heap.pop() {
        let Some(piece) = heads[i].take() else {
            continue;
        };
        let s = &mut sources[i];
        write_piece(&s.set, &piece, style, out)?;
        s.finish_line(style, at_end, out)?;
        if !s.mid_line {
            if let Some(p) = s.next_piece(at_end)? {
                heap.push(Reverse((p.key, i)));
                heads[i] = Some(p);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "../tests/merge.rs"]
mod tests;
