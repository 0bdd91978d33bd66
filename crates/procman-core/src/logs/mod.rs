//! Log collection: every line a process writes, to its own file and to the
//! aggregation targets, with nothing lost and memory bounded.
//!
//! - [`capture`]: one pump task per captured stream waits on the pipe while
//!   the process runs (and after, until every holder of the pipe is gone);
//!   on a blocking thread it moves the bytes into the stream's [`spool`],
//!   splits them into records ([`splitter`]), formats them ([`format`]),
//!   writes them straight through to the OS and records how far it got
//!   ([`checkpoint`]), so a crash of the manager loses and repeats no line
//!   of a process's file ([`repair`] and [`journal`] put it back), and the
//!   async workers never block on a file. Raw output without rotation goes
//!   straight into the file; a flood is relayed through a second pipe, its
//!   rounds recorded in a [`ledger`].
//! - [`sink`]: a process's log: its file ([`rotate`]), open only while the
//!   process runs, its format, its counters (records it could not write,
//!   e.g. on a full disk).
//! - [`targets`]: the global aggregation targets of `log_collection`, each
//!   a writer thread behind a queue bounded in bytes that nobody waits for:
//!   a stuck target loses its own lines, nothing else.
//! - [`reader`] and [`follow`]: what `procman logs` uses to read the files.

pub(crate) mod capture;
mod checkpoint;
mod feed;
pub mod follow;
pub(crate) mod format;
mod journal;
mod ledger;
mod paths;
mod queue;
pub mod reader;
pub(crate) mod record;
mod repair;
pub(crate) mod rotate;
pub(crate) mod sink;
pub(crate) mod splitter;
mod spool;
pub(crate) mod targets;

#[cfg(test)]
#[path = "tests/support.rs"]
mod support;

pub use paths::{file_path, log_dir};
pub use record::Stream;
pub use rotate::{rotated_paths, Reopen};
pub use sink::{LogCounters, LogError, LogSetup};
pub use targets::{TargetStats, Targets, QUEUE_BYTES};
