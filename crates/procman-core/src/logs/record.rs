//! The vocabulary of log collection: a [`Record`] is one line (or one piece
//! of a long line) of a process's output, an [`Origin`] says who wrote it and
//! when. Both borrow: the splitter hands out records that point into the
//! bytes read from the pipe, and the formatters copy them once, into the
//! output buffer.

use std::time::SystemTime;

/// Which of a process's output streams a record came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    /// `"stdout"` or `"stderr"`, as written in the plain and JSON formats.
    pub const fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }

    /// The stream named `"stdout"` or `"stderr"`.
    pub fn parse(name: &str) -> Option<Stream> {
        match name {
            "stdout" => Some(Stream::Stdout),
            "stderr" => Some(Stream::Stderr),
            _ => None,
        }
    }
}

impl std::fmt::Display for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One line (or piece of a long line) of a process's output.
///
/// A line no longer than the splitter's `max_line` is one record with both
/// flags false. A longer line is cut into pieces: every piece but the last
/// has `continued`, every piece but the first has `continues`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record<'a> {
    pub stream: Stream,
    /// The bytes of the line, without its newline; not necessarily UTF-8.
    pub bytes: &'a [u8],
    /// This record is NOT the end of its line: the next record of the same
    /// stream continues it.
    pub continued: bool,
    /// This record continues the previous record of the same stream (it is
    /// not the start of its line).
    pub continues: bool,
}

/// Who wrote a batch of records and when: shared by all records of one chunk
/// read from a pipe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Origin<'a> {
    /// The process id from the configuration.
    pub id: &'a str,
    /// The operating-system pid of this run.
    pub pid: u32,
    /// The run number: 1 for the first start, +1 at each restart.
    pub run: u32,
    /// When the chunk was read.
    pub ts: SystemTime,
}

/// How a run ended, for the record that closes it in the log: what the
/// supervisor says of it (`exited with code 3`, `killed by SIGKILL`), the
/// code or the signal when there is one, and how long it ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ending<'a> {
    pub how: &'a str,
    pub code: Option<i32>,
    /// `SIGKILL`, …
    pub signal: Option<&'a str>,
    pub after: std::time::Duration,
}
