//! A raw log's ledger: the round of output being relayed from a pipe into
//! the process's file, so that a crash of the manager in the middle of it
//! loses and repeats no byte.
//!
//! Raw output without rotation goes straight from the child's pipe into
//! its file (see [`splice`](super::rotate)). Moved by one `splice(2)`, the
//! bytes leave the pipe as they reach the file; but the kernel then holds
//! the pipe's lock while it writes the file, and the child, blocked on
//! that lock, cannot write meanwhile. A flood is therefore *relayed*: the
//! bytes are copied by reference into a second pipe (`tee(2)`), written
//! from there into the file while the child goes on writing, and only then
//! released from the child's pipe. Between the write and the release the
//! bytes are in both; this ledger says so:
//!
//! 1. before the file is written, a [`Relayed`] record: the stream, the
//!    file (device, inode) and its length, how many bytes follow, and the
//!    run;
//! 2. after the bytes are released from the pipe, a clear record.
//!
//! A manager that finds a record (see [`Relayed::settle`]) knows that
//! the file's bytes past `at` are that round's, and that the pipe may hold
//! them still: if the file is short of `at + len`, the release had not
//! happened (it comes after the whole write), and the file is cut back to
//! `at`; if it is whole, the pipe's first bytes tell: the round's bytes
//! again (not released: cut back), or anything else (released: kept).
//!
//! Pitfall: output that repeats itself exactly over a whole round (up to
//! the relay's capacity, 1 MiB) looks the same released or not; a crash in
//! the microseconds between the release and the clear record then cuts one
//! repetition. Such output is the same line over and over, and the round
//! is cut, never written twice.
//!
//! Layout: `<state_dir>/spool/<id>.raw`, mode `0600`, two slots written in
//! turn (see [`checkpoint`](super::checkpoint)); page cache only, nothing
//! is fsynced (a crash of the manager, not of the machine).

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use super::checkpoint::{self, FileId, Slotted, SLOT};
use super::record::Stream;
use crate::state::files::{self, Access, PRIVATE_FILE_MODE};

const MAGIC: &[u8; 4] = b"PMRL";
const VERSION: u8 = 1;

/// A round being relayed into the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Relayed {
    pub stream: Stream,
    /// The file, and its length where the round's bytes start.
    pub at: FileId,
    /// How many bytes the round writes.
    pub len: u64,
    pub pid: u32,
    pub run: u32,
}

/// What a record found after a crash asks of the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Settle {
    /// Nothing: the round was released (or cannot be told, or its pipe
    /// is gone, so the file holds all there is of it).
    Keep,
    /// The round's bytes are still in the pipe: cut the file to this
    /// length, and they are written again.
    CutTo(u64),
    /// The whole round is in the file: compare it with the pipe's first
    /// `len` bytes (equal: cut to `at`).
    Compare,
}

impl Relayed {
    /// What to do with the file `now` (its identity and length) when the
    /// round's pipe is `live` (re-attached) or not.
    pub(crate) fn settle(&self, now: FileId, live: bool) -> Settle {
        let same = now.dev == self.at.dev && now.ino == self.at.ino;
        let end = self.at.len.saturating_add(self.len);
        match () {
            _ if !same || !live || now.len < self.at.len || now.len > end => Settle::Keep,
            _ if now.len < end => Settle::CutTo(self.at.len),
            _ => Settle::Compare,
        }
    }
}

/// One slot: a record, or the clear record (`relayed: None`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Entry {
    seq: u64,
    relayed: Option<Relayed>,
}

impl Slotted for Entry {
    fn seq_mut(&mut self) -> &mut u64 {
        &mut self.seq
    }

    fn encode(&self) -> [u8; SLOT] {
        let Some(r) = &self.relayed else {
            return checkpoint::slot((MAGIC, VERSION), 0, &[self.seq], &[]);
        };
        let flags = 1 | (u8::from(r.stream == Stream::Stderr) << 1);
        let words = [self.seq, r.at.dev, r.at.ino, r.at.len, r.len];
        checkpoint::slot((MAGIC, VERSION), flags, &words, &[r.pid, r.run])
    }

    fn decode(b: &[u8]) -> Option<Entry> {
        let f = checkpoint::fields(b, (MAGIC, VERSION))?;
        let relayed = if f.flags() & 1 != 0 {
            Some(Relayed {
                stream: if f.flags() & 2 != 0 {
                    Stream::Stderr
                } else {
                    Stream::Stdout
                },
                at: FileId {
                    dev: f.word(1)?,
                    ino: f.word(2)?,
                    len: f.word(3)?,
                },
                len: f.word(4)?,
                pid: f.half(5, 0)?,
                run: f.half(5, 1)?,
            })
        } else {
            None
        };
        Some(Entry {
            seq: f.word(0)?,
            relayed,
        })
    }
}

/// A process's ledger file, opened at the first round relayed.
#[derive(Debug)]
pub(crate) struct Ledger {
    path: PathBuf,
    file: Option<File>,
    last: Entry,
}

/// `<dir>/<id>.raw`.
pub(crate) fn path(dir: &Path, id: &str) -> PathBuf {
    dir.join(format!("{id}.raw"))
}

/// The round a crash interrupted, as the ledger at `path` records it
/// (`None`: no ledger, a clear one, or one that cannot be read).
pub(crate) fn interrupted(path: &Path) -> io::Result<Option<Relayed>> {
    let file = match files::open_existing(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    Ok(checkpoint::read::<Entry>(&file)?.and_then(|e| e.relayed))
}

impl Ledger {
    pub(crate) fn new(path: PathBuf) -> Ledger {
        Ledger {
            path,
            file: None,
            last: Entry {
                seq: 0,
                relayed: None,
            },
        }
    }

    /// Its file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Records a round about to be written (or what is left of it).
    pub(crate) fn begin(&mut self, round: Relayed) -> io::Result<()> {
        self.record(Some(round))
    }

    /// Records that no round is under way.
    pub(crate) fn clear(&mut self) -> io::Result<()> {
        self.record(None)
    }

    fn record(&mut self, relayed: Option<Relayed>) -> io::Result<()> {
        if self.file.is_none() {
            let named =
                |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", self.path.display()));
            let file = files::open_with_mode(&self.path, Access::ReadWrite, PRIVATE_FILE_MODE)
                .map_err(named)?
                .file;
            self.last.seq = checkpoint::read::<Entry>(&file)
                .map_err(named)?
                .map_or(0, |e| e.seq);
            self.file = Some(file);
        }
        let Some(file) = &self.file else {
            return Err(io::ErrorKind::NotFound.into());
        };
        self.last.relayed = relayed;
        checkpoint::write(file, &mut self.last)
    }
}

#[cfg(test)]
#[path = "tests/ledger.rs"]
mod tests;
