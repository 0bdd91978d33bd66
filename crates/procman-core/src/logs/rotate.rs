//! A log file that rotates by size, by renaming: `<path>` → `<path>.1` →
//! … → `<path>.N`, the oldest dropped.
//!
//! Invariants:
//! - Records are never split: a file only ever ends at a record boundary
//!   (callers hand in complete records, each ending in `\n`), so reading
//!   `.N` … `.1` and then `<path>` gives every record once, in order. That
//!   holds at every instant, including a crash in the middle of a rotation:
//!   each rename is atomic, and a missing number is only a gap.
//! - A file holds at most `max_bytes`, except one record longer than that,
//!   which gets a file of its own. A batch that does not fit is cut at the
//!   last record boundary that does: the file is filled, then rotated.
//! - Nothing is lost silently. A failed write drops that call's bytes and
//!   says so (`Err`, naming the path); a write cut short by a full disk is
//!   truncated back to the last whole record, and the next call reopens the
//!   file by its path, so it works again once there is room. A failed
//!   rotation keeps writing the live file past `max_bytes` (and warns)
//!   rather than lose records.
//!
//! - A [`Reopen`] request (SIGUSR1, after an external `logrotate` renamed
//!   the file) is seen before the next write: the buffer goes to the old
//!   file, then the path is opened anew, so no record is split between the
//!   two files and none is lost.
//! - Files are created `0640` and never through a symbolic link (see
//!   [`crate::state::files`]).
//!
//! - In `positioned` mode (raw output spliced straight from a pipe, see
//!   [`RotatingFile::splice_from`]) the file is opened without `O_APPEND`,
//!   which `splice(2)` refuses, and written at its position, set to its end
//!   at each open.
//!
//! Pitfall: the size is counted, not asked from the file system, so a
//! second writer to the same file makes rotation come early or late (never
//! lose or split records).

use std::fs::File;
use std::io::{self, Seek, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use memchr::{memchr, memrchr};

use crate::state::files::{self, Access};

/// The default size of the write buffer.
pub const DEFAULT_BUFFER: usize = 64 * 1024;

/// What was being done to a log file when it failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFileOp {
    Open,
    Read,
    Write,
    Rotate,
    Sync,
}

impl std::fmt::Display for LogFileOp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LogFileOp::Open => "open",
            LogFileOp::Read => "read back",
            LogFileOp::Write => "write to",
            LogFileOp::Rotate => "rotate",
            LogFileOp::Sync => "sync",
        })
    }
}

/// An I/O error on a log file, naming it. Returned inside an `io::Error`
/// of the same kind, so callers can still match on `ErrorKind::StorageFull`.
#[derive(Debug, thiserror::Error)]
#[error("cannot {op} log file {}: {source}", .path.display())]
pub struct LogFileError {
    pub op: LogFileOp,
    pub path: PathBuf,
    pub source: io::Error,
}

pub(crate) fn error(op: LogFileOp, path: &Path, source: io::Error) -> io::Error {
    io::Error::new(
        source.kind(),
        LogFileError {
            op,
            path: path.to_path_buf(),
            source,
        },
    )
}

/// A request to reopen log files by their path: a generation number
/// shared by the files of one manager, which each compare with the one
/// they were opened at before every write.
#[derive(Debug, Clone, Default)]
pub struct Reopen(Arc<AtomicU64>);

impl Reopen {
    /// Every file sharing this reopens its path before its next write.
    pub fn request(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    fn generation(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

#[derive(Clone, Copy, Debug)]
struct Rotation {
    max_bytes: u64,
    max_files: u32,
}

/// An append-only log file with a write buffer and optional rotation.
#[derive(Debug)]
pub struct RotatingFile {
    path: PathBuf,
    /// None after a failed write or reopen: the next write opens the path
    /// again.
    file: Option<File>,
    /// Bytes in the live file: on disk plus buffered.
    size: u64,
    rotation: Option<Rotation>,
    /// After a failed rotation, the size at which to try again.
    rotate_retry_at: Option<u64>,
    buf: Vec<u8>,
    buf_cap: usize,
    /// Reopen requests, and the generation this file was opened at.
    reopen: Option<(Reopen, u64)>,
    /// Device and inode of the open file.
    id: (u64, u64),
    /// Opened without `O_APPEND` and written at its position (its end).
    positioned: bool,
    /// In `positioned` mode with a ledger: a flood is relayed.
    relay: Option<Box<relay::Relaying>>,
}

impl RotatingFile {
    /// Opens `path` for appending, creating it if needed (not its
    /// directory: the caller checks that). An existing file is continued,
    /// and its size counts towards `rotation`: `(max_bytes, max_files)`.
    /// A `max_files` of 0 keeps no old file: rotation starts afresh.
    pub fn open(path: &Path, rotation: Option<(u64, u32)>) -> io::Result<RotatingFile> {
        let mut f = RotatingFile::lazy(path, rotation);
        f.open_again()?;
        Ok(f)
    }

    /// Like [`open`](RotatingFile::open), but the path is only opened at
    /// the first write (and an error to open it is that write's error).
    pub fn lazy(path: &Path, rotation: Option<(u64, u32)>) -> RotatingFile {
        RotatingFile {
            path: path.to_path_buf(),
            file: None,
            size: 0,
            rotation: rotation.map(|(max_bytes, max_files)| Rotation {
                max_bytes: max_bytes.max(1),
                max_files,
            }),
            rotate_retry_at: None,
            buf: Vec::new(),
            buf_cap: DEFAULT_BUFFER,
            reopen: None,
            id: (0, 0),
            positioned: false,
            relay: None,
        }
    }

    /// A file already open as `file` (a device in tests), with `path` to
    /// reopen after a failure.
    #[cfg(test)]
    fn with_file(path: &Path, file: File) -> RotatingFile {
        let mut f = RotatingFile::lazy(path, None);
        f.file = Some(file);
        f
    }

    /// Follows `reopen`'s requests from now on.
    pub fn with_reopen(mut self, reopen: &Reopen) -> RotatingFile {
        self.reopen = Some((reopen.clone(), reopen.generation()));
        self
    }

    /// Appends `bytes`, one or more complete records each ending in `\n`.
    /// When they would take the file past `max_bytes`, the records that fit
    /// go in, the file is rotated, and the rest go into the new file.
    /// Small writes are buffered: call [`flush`] when the stream goes quiet
    /// (a batch larger than the buffer goes straight to the OS).
    ///
    /// On `Err` the bytes of this call not yet written are dropped (and,
    /// when a buffer flush failed, the buffered bytes of earlier calls: call
    /// `flush` after each batch to count losses exactly).
    ///
    /// [`flush`]: RotatingFile::flush
    pub fn write_records(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.prepare()?;
        let mut rest = bytes;
        while !rest.is_empty() {
            let take = match self.room() {
                Some(room) if rest.len() as u64 > room => {
                    // `room` < `rest.len()`, so it fits in usize.
                    match memrchr(b'\n', &rest[..room as usize]) {
                        Some(i) => i + 1,
                        // One record longer than max_bytes: alone in a file.
                        None if self.size == 0 => memchr(b'\n', rest).map_or(rest.len(), |i| i + 1),
                        None => {
                            self.flush()?;
                            match self.rotate() {
                                Ok(()) => continue,
                                Err(e) if self.file.is_some() => {
                                    self.rotation_failed(&e);
                                    rest.len()
                                }
                                Err(e) => return Err(e),
                            }
                        }
                    }
                }
                _ => rest.len(),
            };
            self.append(&rest[..take])?;
            rest = &rest[take..];
        }
        Ok(())
    }

    /// Before a write: a reopen request is honoured (what is buffered
    /// goes to the old file), and a file not open is opened.
    pub(super) fn prepare(&mut self) -> io::Result<()> {
        if let Some((reopen, opened_at)) = &mut self.reopen {
            let now = reopen.generation();
            if now != *opened_at {
                *opened_at = now;
                // What was written before the request stays in the old
                // file; the path is opened anew below.
                let flushed = self.flush();
                self.file = None;
                flushed?;
            }
        }
        if self.file.is_none() {
            // First write, after a failed one, or a reopen request: the
            // path again, and its real size.
            self.open_again()?;
        }
        Ok(())
    }

    /// Never opened (nothing was written) and nothing buffered: closing it
    /// has nothing to write, flush or sync.
    pub fn is_idle(&self) -> bool {
        self.file.is_none() && self.buf.is_empty() && self.unsettled().is_none()
    }

    /// Writes the buffer out. On `Err` its bytes are dropped.
    pub fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let buf = std::mem::take(&mut self.buf);
        let result = self.write_out(&buf);
        if result.is_err() {
            self.size -= buf.len() as u64;
        }
        self.buf = buf;
        self.buf.clear();
        result
    }

    /// Flushes, then asks the OS to put the file on disk.
    pub fn sync(&mut self) -> io::Result<()> {
        self.flush()?;
        match &self.file {
            Some(f) => f
                .sync_all()
                .map_err(|e| error(LogFileOp::Sync, &self.path, e)),
            None => Ok(()),
        }
    }

    /// How many more bytes fit before a rotation, if one is due at all.
    fn room(&self) -> Option<u64> {
        let rot = self.rotation?;
        if self.rotate_retry_at.is_some_and(|at| self.size < at) {
            return None;
        }
        Some(rot.max_bytes.saturating_sub(self.size))
    }

    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        if self.file.is_none() {
            self.open_again()?;
        }
        if self.buf.len() + bytes.len() > self.buf_cap {
            self.flush()?;
        }
        if bytes.len() > self.buf_cap {
            self.write_out(bytes)?;
        } else {
            self.buf.extend_from_slice(bytes);
        }
        self.size += bytes.len() as u64;
        Ok(())
    }

    /// Writes `bytes` whole to the file, or none of them: a write cut
    /// short (a full disk) is truncated back, and the file is reopened at
    /// the next call.
    fn write_out(&mut self, bytes: &[u8]) -> io::Result<()> {
        let file = match &mut self.file {
            Some(f) => f,
            None => {
                return Err(error(
                    LogFileOp::Write,
                    &self.path,
                    io::ErrorKind::NotFound.into(),
                ))
            }
        };
        let (written, result) = write_whole(file, bytes);
        if let Err(e) = result {
            if written > 0 {
                // Appends go to the end, so the torn record is the last
                // `written` bytes. Best effort: if this fails too, the
                // reader sees a partial line, which is all we can do.
                if let Ok(meta) = file.metadata() {
                    let _ = file.set_len(meta.len().saturating_sub(written as u64));
                }
            }
            self.file = None;
            return Err(error(LogFileOp::Write, &self.path, e));
        }
        Ok(())
    }

    fn open_again(&mut self) -> io::Result<()> {
        let (file, size, id) = open_append(&self.path, self.positioned)?;
        self.id = id;
        self.file = Some(file);
        self.size = size + self.buf.len() as u64;
        Ok(())
    }

    /// Renames `.N-1` → `.N` … `<path>` → `.1` and opens a new `<path>`.
    /// The buffer must be empty. Stops at the first failed rename, so no
    /// file is overwritten that was not moved on first.
    fn rotate(&mut self) -> io::Result<()> {
        let Some(rot) = self.rotation else {
            return Ok(());
        };
        let renamed = if rot.max_files == 0 {
            std::fs::remove_file(&self.path)
        } else {
            for n in (1..rot.max_files).rev() {
                let from = numbered(&self.path, n);
                match std::fs::rename(&from, numbered(&self.path, n + 1)) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => {
                        return Err(error(LogFileOp::Rotate, &from, e));
                    }
                    _ => {}
                }
            }
            std::fs::rename(&self.path, numbered(&self.path, 1))
        };
        match renamed {
            // NotFound: someone removed the live file; start a new one.
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                return Err(error(LogFileOp::Rotate, &self.path, e));
            }
            _ => {}
        }
        self.file = None;
        self.size = 0;
        if self.rotate_retry_at.take().is_some() {
            tracing::info!(path = %self.path.display(), "log file rotates again");
        }
        self.open_again()
    }

    fn rotation_failed(&mut self, e: &io::Error) {
        if self.rotate_retry_at.is_none() {
            tracing::warn!(path = %self.path.display(), error = %e,
                "cannot rotate the log file; writing on past its size limit");
        }
        // Retry after some growth, not at every call: a rotation costs up
        // to max_files renames.
        let step = self
            .rotation
            .map_or(0, |r| (r.max_bytes / 16).max(64 * 1024));
        self.rotate_retry_at = Some(self.size + step);
    }
}

impl Drop for RotatingFile {
    fn drop(&mut self) {
        // Best effort; a caller that wants to know uses `flush` or `sync`.
        let _ = self.flush();
    }
}

/// The rotated files of `path`, oldest first: `<path>.N` … `<path>.1` (some
/// may not exist). Read them, then `path`, to get every record in order.
pub fn rotated_paths(path: &Path, max_files: u32) -> Vec<PathBuf> {
    (1..=max_files).rev().map(|n| numbered(path, n)).collect()
}

/// `<path>.<n>`: the number is appended, not put in place of an extension.
fn numbered(path: &Path, n: u32) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

/// Opens `path` to write at its end: appending, or (`positioned`) read
/// and write with the position at the end. Its size, device and inode.
fn open_append(path: &Path, positioned: bool) -> io::Result<(File, u64, (u64, u64))> {
    let fail = |e| error(LogFileOp::Open, path, e);
    let access = if positioned {
        Access::ReadWrite
    } else {
        Access::Append
    };
    let mut file = files::open(path, access).map_err(fail)?.file;
    let meta = file.metadata().map_err(fail)?;
    if positioned {
        file.seek(io::SeekFrom::End(0)).map_err(fail)?;
    }
    Ok((file, meta.len(), (meta.dev(), meta.ino())))
}

/// Like `write_all`, but says how much got through before an error.
fn write_whole(w: &mut impl Write, bytes: &[u8]) -> (usize, io::Result<()>) {
    let mut done = 0;
    while done < bytes.len() {
        match w.write(&bytes[done..]) {
            Ok(0) => return (done, Err(io::ErrorKind::WriteZero.into())),
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (done, Err(e)),
        }
    }
    (done, Ok(()))
}

#[path = "splice.rs"]
mod splice;
pub(crate) use splice::{pipe_now, PipeNow};

#[path = "relay.rs"]
mod relay;
pub(crate) use relay::{Relay, RunStream};

#[cfg(test)]
#[path = "tests/rotate.rs"]
mod tests;
