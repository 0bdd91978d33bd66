//! Reading a process's log files back: the last records of a process, the
//! records of several processes merged by time, and the reading position
//! that [`follow`](super::follow) keeps as the files grow.
//!
//! A process's log is a chain of files: the live `<file>`, then `<file>.1`
//! (the newest rotated one) … `<file>.N` (the oldest). The manager renames
//! them at record boundaries, so a record never spans two files.
//!
//! Invariants and pitfalls:
//! - Memory is bounded whatever the size of the files: the last `n` records
//!   are found by reading backwards in blocks, then the bytes are streamed.
//!   A line is held in memory only to prefix or merge it, and then at most
//!   [`MAX_PIECE`] bytes of it (a longer line is handed out in pieces).
//! - Bytes are never changed: invalid UTF-8 and raw output go out as they
//!   are. Only [`Style::Json`] converts, and then losslessly (`line_base64`).
//! - Files are known by (device, inode), never by name alone. A chain is
//!   opened newest first, so a rotation under way shows a file twice (the
//!   second is skipped) instead of hiding one. A [`Cursor`] at the end of
//!   the live file checks whether the name now points elsewhere; if so it
//!   reads the old file to its end *after* seeing the rename (the writer is
//!   done with a file before it renames it), then goes on with its
//!   successor, found by where the old file now sits in the chain.
//! - The names are looked at one at a time while the writer renames, so a
//!   look over the chain (opening it, or finding where a file went) counts
//!   only if no rotation was *completed* during it: the live name and `.1`
//!   hold the same files before and after (a `Mark`, which keeps them open
//!   so that their inode numbers cannot be handed to new files meanwhile).
//!   Otherwise it is done again. Two rotations during one look could show a
//!   newer file after an older one (records repeated, out of order) or two
//!   gaps in a row, taken for the end of the chain (records lost).
//!   A [`Cursor`] whose look was spoilt 16 times in a row reads nothing
//!   more for now: the renames that spoilt it wake the next wait of
//!   [`follow`](super::follow). Opening a chain to read its last records
//!   fails after 64 ([`ReadError::Rotating`]), which only a writer that
//!   never pauses between rotations can cause.
//! - A record is a line ending in `\n`; a last line without one (a record
//!   being written, or raw output without a newline) counts as a record.
//!
//! The parts, each a file:
//! - `chain`: the files of one log, opened newest first and known by
//!   (device, inode); [`LogSet`] (where a log is) and [`ReadError`]; the
//!   walk backwards that finds where records start.
//! - `cursor`: a [`Cursor`], the reading position that moves forward
//!   through a chain and across rotations.
//! - `merge`: a [`Source`] per process, read record by record, and the
//!   merge of several by timestamp ([`merged_tail`], [`write_merged`]).
//! - `render`: how a record is written out ([`Style`]).

mod chain;
mod cursor;
mod merge;
mod render;

// `reader::log_dir` is `logs::log_dir`, kept here for existing callers.
pub use super::paths::log_dir;
pub use chain::{LogSet, ReadError};
pub use cursor::Cursor;
pub use merge::{merged_tail, write_merged, Source, MAX_PIECE};
pub use render::Style;
