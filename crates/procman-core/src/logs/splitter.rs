//! Cuts one stream's bytes, as they come from the pipe in chunks of any
//! size, into [`Record`]s.
//!
//! Invariants (checked by the property tests in `tests/splitter.rs`):
//! - Concatenating the records, with a `\n` after each record whose
//!   `continued` is false (except a last one emitted by `finish`, which had
//!   none), gives back the input exactly, whatever the chunking.
//! - The records do not depend on how the input was chunked.
//! - No record is longer than `max_line`; a piece with `continued` is exactly
//!   `max_line` bytes long. A line of exactly `max_line` bytes is one record.
//! - The splitter holds at most `max_line` bytes between calls, so a child
//!   that writes a gigabyte without a newline costs `max_line` of memory.
//!
//! Only `\n` ends a line: a `\r` before it is part of the line's bytes.
//! Complete lines inside a chunk are handed out as slices of the chunk; only
//! a line cut by a chunk boundary is copied (into the pending tail).

use memchr::{memchr, memchr_iter};

use super::record::{Record, Stream};

/// Splits one stream into records. One per stream of each process.
#[derive(Debug)]
pub struct LineSplitter {
    stream: Stream,
    max_line: usize,
    /// The start of a line whose end has not been read yet; never more than
    /// `max_line` bytes.
    pending: Vec<u8>,
    /// The next record continues a piece already handed out.
    continues: bool,
    /// Records handed out so far: a held tail after a change of this
    /// number is the start of a line read since.
    emitted: u64,
}

impl LineSplitter {
    /// A splitter for `stream` that keeps lines of up to `max_line` bytes
    /// whole (a `max_line` of 0 is taken as 1).
    pub fn new(stream: Stream, max_line: usize) -> LineSplitter {
        LineSplitter {
            stream,
            max_line: max_line.max(1),
            pending: Vec::new(),
            continues: false,
            emitted: 0,
        }
    }

    /// Hands `out` a record for every complete line (and every full
    /// `max_line` piece of a longer one) in the held tail followed by
    /// `chunk`, and keeps what is left (at most `max_line` bytes).
    pub fn feed(&mut self, chunk: &[u8], mut out: impl FnMut(Record<'_>)) {
        let mut rest = chunk;
        if !self.pending.is_empty() {
            // Complete the held line first. Look one byte past the room left
            // so that a newline right after a full `max_line` keeps the line
            // whole instead of emitting an empty last piece.
            let room = self.max_line - self.pending.len();
            let window = &rest[..rest.len().min(room + 1)];
            if let Some(i) = memchr(b'\n', window) {
                self.keep(&rest[..i]);
                self.emit_pending(false, &mut out);
                rest = &rest[i + 1..];
            } else if rest.len() > room {
                // A full piece, and the byte after it is not a newline.
                self.keep(&rest[..room]);
                self.emit_pending(true, &mut out);
                rest = &rest[room..];
            } else {
                self.keep(rest);
                return;
            }
        }

        let mut start = 0;
        for nl in memchr_iter(b'\n', rest) {
            self.emit_line(&rest[start..nl], &mut out);
            start = nl + 1;
        }
        let mut tail = &rest[start..];
        while tail.len() > self.max_line {
            let (piece, more) = tail.split_at(self.max_line);
            self.emit(piece, true, &mut out);
            tail = more;
        }
        self.keep(tail);
    }

    /// True while part of a line waits for its end.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// The part of a line held, waiting for its end: the last bytes fed.
    pub fn pending(&self) -> &[u8] {
        &self.pending
    }

    /// Whether the next record continues a piece already handed out.
    pub fn continues(&self) -> bool {
        self.continues
    }

    /// A splitter that goes on where one that had handed out a piece to be
    /// continued (`continues`) and held nothing stopped: after a crash,
    /// from a spool's checkpoint.
    pub fn resumed(stream: Stream, max_line: usize, continues: bool) -> LineSplitter {
        let mut s = LineSplitter::new(stream, max_line);
        s.continues = continues;
        s
    }

    /// How many records have been handed out: while it stays the same, a
    /// held tail is the same line (only grown).
    pub fn emitted(&self) -> u64 {
        self.emitted
    }

    /// Emits the part of a line held so far as a piece to be continued
    /// (`continued: true`), so that a line without its newline (a prompt, a
    /// progress bar, a last line before a long silence) is not held back.
    pub fn flush_partial(&mut self, mut out: impl FnMut(Record<'_>)) {
        if !self.pending.is_empty() {
            self.emit_pending(true, &mut out);
        }
    }

    /// At the end of the stream: hands out the held tail, a last line that
    /// had no newline, as a record with `continued` false. The splitter is
    /// then empty and can be used for a new stream.
    pub fn finish(&mut self, mut out: impl FnMut(Record<'_>)) {
        // `continues` without a held tail cannot happen (a piece is only
        // cut once a byte after it has been seen), but if it did, an empty
        // record still ends the line for the reader.
        if !self.pending.is_empty() || self.continues {
            self.emit_pending(false, &mut out);
        }
        self.continues = false;
    }

    /// A complete line (its newline seen), cut into pieces if too long.
    fn emit_line(&mut self, mut line: &[u8], out: &mut impl FnMut(Record<'_>)) {
        while line.len() > self.max_line {
            let (piece, more) = line.split_at(self.max_line);
            self.emit(piece, true, out);
            line = more;
        }
        self.emit(line, false, out);
    }

    fn emit(&mut self, bytes: &[u8], continued: bool, out: &mut impl FnMut(Record<'_>)) {
        self.emitted += 1;
        out(Record {
            stream: self.stream,
            bytes,
            continued,
            continues: self.continues,
        });
        self.continues = continued;
    }

    fn emit_pending(&mut self, continued: bool, out: &mut impl FnMut(Record<'_>)) {
        self.emitted += 1;
        out(Record {
            stream: self.stream,
            bytes: &self.pending,
            continued,
            continues: self.continues,
        });
        self.continues = continued;
        self.pending.clear();
    }

    /// Appends to the held tail, growing its allocation geometrically but
    /// never past `max_line` (which the callers guarantee is enough).
    fn keep(&mut self, bytes: &[u8]) {
        let need = self.pending.len() + bytes.len();
        debug_assert!(need <= self.max_line, "held tail past max_line");
        if need > self.pending.capacity() {
            let target = need
                .max(self.pending.capacity() * 2)
                .max(256)
                .min(self.max_line.max(need));
            self.pending.reserve_exact(target - self.pending.len());
        }
        self.pending.extend_from_slice(bytes);
    }
}

#[cfg(test)]
#[path = "tests/splitter.rs"]
mod tests;
