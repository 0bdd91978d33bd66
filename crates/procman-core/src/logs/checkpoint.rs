//! A spool's checkpoint: how far its bytes went into the process's log,
//! and what the log looked like then. Kept in the first page of the spool
//! file ([`HEADER`] bytes), in two slots written in turn.
//!
//! Invariants:
//! - A checkpoint is written after the log write it describes, by one
//!   `pwrite` into the slot the last one did not use; the other slot keeps
//!   the previous checkpoint whole. A slot whose checksum does not match
//!   (a write torn by a crash) is ignored, so a reader always finds the
//!   newest checkpoint that was completely written: the valid slot with
//!   the highest sequence number.
//! - Page cache is enough: a checkpoint guards against a crash of the
//!   manager, not of the machine, so nothing is fsynced.
//!
//! What a checkpoint says (see [`Checkpoint`]): every byte of the spool
//! before `done` is in the log, none after it is; the log file `log`
//! (device, inode, length) was the live file right after that write; and
//! `gen`, a counter shared by the process's two streams, orders the
//! checkpoints of both, so the newest one says how long the log was at
//! the last write that was recorded.

use std::fs::File;
use std::io;

use crate::state::fnv1a_bytes;

/// Bytes before the spool's data: the two checkpoint slots, padded to a
/// page so that spliced data stays page-aligned.
pub(crate) const HEADER: u64 = 4096;
/// Bytes of one slot.
pub(crate) const SLOT: usize = 128;
const MAGIC: &[u8; 4] = b"PMSP";
const VERSION: u8 = 1;
/// Bytes covered by the checksum (the checksum follows them).
pub(crate) const BODY: usize = 64;

/// A record kept in two slots of a file written in turn (a spool's
/// checkpoint, a raw log's [`ledger`](super::ledger)): a torn write spoils
/// one slot, and the other holds the record before it.
pub(crate) trait Slotted: Copy {
    /// The sequence number; 0: never written.
    fn seq_mut(&mut self) -> &mut u64;
    fn seq(mut self) -> u64 {
        *self.seq_mut()
    }
    /// The slot (see [`slot`]).
    fn encode(&self) -> [u8; SLOT];
    /// `None` for an empty, torn or foreign slot (see [`fields`]).
    fn decode(b: &[u8]) -> Option<Self>;
}

/// A sealed slot: `magic`, `version`, `flags`, then from byte 8 the
/// sequence number and the other `words`, then `halves`, all
/// little-endian, and a checksum over the first [`BODY`] bytes at `BODY`.
pub(crate) fn slot(
    (magic, version): (&[u8; 4], u8),
    flags: u8,
    words: &[u64],
    halves: &[u32],
) -> [u8; SLOT] {
    let mut b = [0u8; SLOT];
    b[..4].copy_from_slice(magic);
    b[4] = version;
    b[5] = flags;
    let mut at = 8;
    for w in words {
        b[at..at + 8].copy_from_slice(&w.to_le_bytes());
        at += 8;
    }
    for h in halves {
        b[at..at + 4].copy_from_slice(&h.to_le_bytes());
        at += 4;
    }
    let sum = fnv1a_bytes(&b[..BODY]);
    b[BODY..BODY + 8].copy_from_slice(&sum.to_le_bytes());
    b
}

/// The fields of a slot [`slot`] made, if it is one of `magic` and
/// `version`, whole, and written (sequence number not 0).
pub(crate) fn fields<'a>(b: &'a [u8], (magic, version): (&[u8; 4], u8)) -> Option<Fields<'a>> {
    let whole = b.len() >= BODY + 8
        && &b[..4] == magic
        && b[4] == version
        && b[BODY..BODY + 8] == fnv1a_bytes(&b[..BODY]).to_le_bytes();
    let f = Fields { b };
    (whole && f.word(0)? != 0).then_some(f)
}

/// A slot's fields, read as [`slot`] wrote them.
pub(crate) struct Fields<'a> {
    b: &'a [u8],
}

impl Fields<'_> {
    pub(crate) fn flags(&self) -> u8 {
        self.b[5]
    }

    /// Word `i` (0: the sequence number).
    pub(crate) fn word(&self, i: usize) -> Option<u64> {
        let at = 8 + 8 * i;
        Some(u64::from_le_bytes(self.b.get(at..at + 8)?.try_into().ok()?))
    }

    /// Half-word `i` after `words` words.
    pub(crate) fn half(&self, words: usize, i: usize) -> Option<u32> {
        let at = 8 + 8 * words + 4 * i;
        Some(u32::from_le_bytes(self.b.get(at..at + 4)?.try_into().ok()?))
    }
}

/// A log file, as a checkpoint names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FileId {
    pub dev: u64,
    pub ino: u64,
    /// Its length right after the write (nothing buffered).
    pub len: u64,
}

/// One checkpoint of a spool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Checkpoint {
    /// Slot sequence number; 0: never written.
    pub seq: u64,
    /// The process's write counter at this checkpoint (both streams).
    pub gen: u64,
    /// Spool offset: the bytes before it are in the log (or were dropped
    /// and counted), the bytes from it on are not. Never inside a line
    /// the splitter holds.
    pub done: u64,
    /// The next record continues a piece already written (a long line
    /// cut, or part of a line flushed after its wait).
    pub continues: bool,
    /// The run whose output the spool holds.
    pub pid: u32,
    pub run: u32,
    /// The live log file after the write; `None` before any write.
    pub log: Option<FileId>,
}

impl Default for Checkpoint {
    fn default() -> Checkpoint {
        Checkpoint {
            seq: 0,
            gen: 0,
            done: HEADER,
            continues: false,
            pid: 0,
            run: 0,
            log: None,
        }
    }
}

impl Slotted for Checkpoint {
    fn seq_mut(&mut self) -> &mut u64 {
        &mut self.seq
    }

    fn encode(&self) -> [u8; SLOT] {
        let flags = u8::from(self.continues) | (u8::from(self.log.is_some()) << 1);
        let log = self.log.unwrap_or(FileId {
            dev: 0,
            ino: 0,
            len: 0,
        });
        let words = [self.seq, self.gen, self.done, log.dev, log.ino, log.len];
        slot((MAGIC, VERSION), flags, &words, &[self.pid, self.run])
    }

    fn decode(b: &[u8]) -> Option<Checkpoint> {
        let f = fields(b, (MAGIC, VERSION))?;
        let log = (f.flags() & 2 != 0).then_some(FileId {
            dev: f.word(3)?,
            ino: f.word(4)?,
            len: f.word(5)?,
        });
        Some(Checkpoint {
            seq: f.word(0)?,
            gen: f.word(1)?,
            done: f.word(2)?,
            continues: f.flags() & 1 != 0,
            pid: f.half(6, 0)?,
            run: f.half(6, 1)?,
            log,
        })
    }
}

/// The newest record of a file's two slots, if either holds a whole one.
pub(crate) fn read<T: Slotted>(file: &File) -> io::Result<Option<T>> {
    let mut page = [0u8; 2 * SLOT];
    let mut got = 0;
    while got < page.len() {
        match rustix::io::pread(file, &mut page[got..], got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(newest(&page[..got]))
}

/// The valid slot with the highest sequence number in `page`.
fn newest<T: Slotted>(page: &[u8]) -> Option<T> {
    page.chunks(SLOT)
        .filter_map(T::decode)
        .max_by_key(|t| t.seq())
}

/// Writes `cp` with the next sequence number into the slot the last
/// record did not use, and updates `cp`'s sequence number.
pub(crate) fn write<T: Slotted>(file: &File, cp: &mut T) -> io::Result<()> {
    let mut next = *cp;
    *next.seq_mut() = cp.seq() + 1;
    let bytes = next.encode();
    let at = (next.seq() % 2) * SLOT as u64;
    loop {
        match rustix::io::pwrite(file, &bytes, at) {
            Ok(n) if n == bytes.len() => break,
            // A short write of 128 bytes into an allocated page does not
            // happen; if it did, the checksum makes the slot invalid.
            Ok(_) => return Err(io::ErrorKind::WriteZero.into()),
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    *cp = next;
    Ok(())
}

#[cfg(test)]
#[path = "tests/checkpoint.rs"]
mod tests;
