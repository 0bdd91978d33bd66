//! The chain of files of one process's log: the live `<file>`, then
//! `<file>.1` (the newest rotated one) … `<file>.N` (the oldest), opened
//! and known by (device, inode); and the walk over it backwards, record by
//! record, that finds where the last `n` records start.

use std::fs::{self, File};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::config::{Config, ProcessConfig, ProcessLogFormat};
use crate::logs::paths;

/// Length of the RFC 3339 timestamp that starts every plain record.
pub(super) const TS_LEN: usize = 27;
/// Bytes read per step, backwards or forwards.
pub(super) const BLOCK: usize = 64 * 1024;
/// How far into a JSON record its `"ts"` is looked for.
pub(super) const HEAD: usize = 256;
/// Rotated files looked for at most (`max_files` is at most 1000).
pub(super) const MAX_ROTATED: u32 = 10_000;
/// Times [`open_chain`] looks at a chain before it gives up: only a writer
/// that completes a rotation during every look makes them all fail.
pub(super) const ATTEMPTS: usize = 64;

/// The merge key of a record: its timestamp, zero-padded (zeros sort first).
pub(super) type Key = [u8; TS_LEN];

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("read log file {}: {source}", .path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("watch {}: {source}", .path.display())]
    Watch { path: PathBuf, source: io::Error },
    /// The writer completed a rotation during every look at the files, so
    /// their order could not be told for sure.
    #[error("log file {} rotated during each of {attempts} attempts to open its files", .path.display())]
    Rotating { path: PathBuf, attempts: usize },
    #[error("write the output: {0}")]
    Output(#[source] io::Error),
    /// Where the logs are depends on a state directory that cannot be
    /// chosen (no `HOME`).
    #[error(transparent)]
    StateDir(#[from] crate::state::StateError),
}

impl ReadError {
    /// The reader of our output went away (`EPIPE`): the end of a pipeline
    /// such as `procman logs | head`, not a failure.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, ReadError::Output(e) if e.kind() == io::ErrorKind::BrokenPipe)
    }
}

pub(super) fn read_err(path: &Path, source: io::Error) -> ReadError {
    ReadError::Read {
        path: path.to_path_buf(),
        source,
    }
}

/// Where one process's log is, and how it is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSet {
    pub id: String,
    /// The live file; rotated ones are `<path>.1` … `<path>.N`.
    pub path: PathBuf,
    pub format: ProcessLogFormat,
}

impl LogSet {
    /// The log of `process`, or `None` when it has no file (`file: false`).
    pub fn of(config: &Config, process: &ProcessConfig) -> Result<Option<LogSet>, ReadError> {
        let Some(path) = paths::file_path(process, &paths::log_dir(config)?) else {
            return Ok(None);
        };
        Ok(Some(LogSet {
            id: process.id.clone(),
            path,
            format: process.logging.format,
        }))
    }

    /// `<path>.k`: the k-th rotated file, 1 being the newest.
    pub fn rotated(&self, k: u32) -> PathBuf {
        rotated(&self.path, k)
    }
}

/// Plain and JSON logs are written a whole record at a time; raw output is
/// whatever the child wrote, a prompt without newline included.
pub(super) fn whole_records(set: &LogSet) -> bool {
    set.format != ProcessLogFormat::Raw
}

pub(super) fn rotated(base: &Path, k: u32) -> PathBuf {
    let mut name = base.as_os_str().to_owned();
    name.push(format!(".{k}"));
    PathBuf::from(name)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct FileId {
    dev: u64,
    ino: u64,
}

impl FileId {
    fn of(meta: &fs::Metadata) -> FileId {
        FileId {
            dev: meta.dev(),
            ino: meta.ino(),
        }
    }
}

/// One open file of a chain; `len` is its length when it was opened.
#[derive(Debug)]
pub(super) struct Segment {
    pub(super) file: File,
    pub(super) path: PathBuf,
    pub(super) len: u64,
    pub(super) id: FileId,
}

impl Segment {
    pub(super) fn open(path: &Path) -> io::Result<Segment> {
        let file = File::open(path)?;
        let meta = file.metadata()?;
        Ok(Segment {
            len: meta.len(),
            id: FileId::of(&meta),
            file,
            path: path.to_path_buf(),
        })
    }
}

/// A point where the reader looks at the file system. Tests hook the
/// writer in there, to rename files exactly between two looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Step<'a> {
    /// About to look at (stat or open) this name of the chain.
    Look(&'a Path),
    /// At the end of the live file, before looking for a rotation.
    Eof,
}

/// Looks at the names of a chain, calling the hook (tests only) before
/// each look.
pub(super) struct Probe<'h> {
    hook: Option<&'h mut dyn FnMut(Step<'_>)>,
}

impl<'h> Probe<'h> {
    pub(super) fn quiet() -> Probe<'h> {
        Probe { hook: None }
    }

    #[cfg(test)]
    pub(super) fn hooked(hook: &'h mut dyn FnMut(Step<'_>)) -> Probe<'h> {
        Probe { hook: Some(hook) }
    }

    pub(super) fn step(&mut self, step: Step<'_>) {
        if let Some(hook) = self.hook.as_mut() {
            hook(step);
        }
    }

    /// `(device, inode)` of the file at `path`, `None` if there is none.
    pub(super) fn id_at(&mut self, path: &Path) -> Result<Option<FileId>, ReadError> {
        self.step(Step::Look(path));
        match fs::metadata(path) {
            Ok(m) => Ok(Some(FileId::of(&m))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(read_err(path, e)),
        }
    }

    /// The file at `path`, `None` if there is none.
    pub(super) fn open(&mut self, path: &Path) -> Result<Option<Segment>, ReadError> {
        self.step(Step::Look(path));
        match Segment::open(path) {
            Ok(seg) => Ok(Some(seg)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(read_err(path, e)),
        }
    }

    /// The files at the two names every rotation changes last.
    pub(super) fn mark(&mut self, base: &Path) -> Result<Mark, ReadError> {
        Ok(Mark {
            live: self.open(base)?,
            newest: self.open(&rotated(base, 1))?,
        })
    }
}

/// The files at the live name and at `.1`. A look at the chain takes one
/// name at a time while the writer renames, so it is trusted only when
/// the mark taken before it holds still (the one taken after shows the same
/// files): a rotation ends by moving `.1` on and the live file to `.1`, and
/// a file only ever moves to a higher number (it never comes back to a name
/// it left), so no rotation was completed during the look. At most one was
/// under way then, and its one gap moves down the numbers while the look
/// moves up: the look sees every file, each in its place in the order.
/// Two rotations can instead show a file newer than one seen before it, or
/// two gaps in a row that end the look before the end of the chain.
///
/// The mark keeps its files open: a file the writer drops (`max_files`)
/// would otherwise free its inode number for the next new file, which
/// would then pass for it.
#[derive(Debug)]
pub(super) struct Mark {
    live: Option<Segment>,
    newest: Option<Segment>,
}

impl Mark {
    /// The file at the live name.
    pub(super) fn live(&self) -> Option<FileId> {
        self.live.as_ref().map(|s| s.id)
    }

    /// Whether `later` shows the same files at both names.
    pub(super) fn holds_still(&self, later: &Mark) -> bool {
        let id = |s: &Option<Segment>| s.as_ref().map(|s| s.id);
        id(&self.live) == id(&later.live) && id(&self.newest) == id(&later.newest)
    }
}

/// Opens the files of a chain that exist, oldest first (see [`scan`]),
/// looking again while a rotation completes during the look; an error once
/// that happened [`ATTEMPTS`] times.
pub(super) fn open_chain(base: &Path, whole_records: bool) -> Result<Vec<Segment>, ReadError> {
    open_chain_with(base, whole_records, &mut Probe::quiet())
}

/// [`open_chain`], looking through `probe`.
fn open_chain_with(
    base: &Path,
    whole_records: bool,
    probe: &mut Probe<'_>,
) -> Result<Vec<Segment>, ReadError> {
    settled_chain(base, whole_records, ATTEMPTS, probe)?.ok_or_else(|| ReadError::Rotating {
        path: base.to_path_buf(),
        attempts: ATTEMPTS,
    })
}

/// [`open_chain`] with at most `attempts` looks; `None` when a rotation
/// completed during each of them.
pub(super) fn settled_chain(
    base: &Path,
    whole_records: bool,
    attempts: usize,
    probe: &mut Probe<'_>,
) -> Result<Option<Vec<Segment>>, ReadError> {
    for _ in 0..attempts {
        let before = probe.mark(base)?;
        let chain = scan(base, whole_records, probe)?;
        if before.holds_still(&probe.mark(base)?) {
            return Ok(Some(chain));
        }
    }
    Ok(None)
}

/// One look at a chain: opens the files that exist, newest first, and
/// returns them oldest first. The live file may be missing (a rotation
/// under way); the rotated ones end at the second missing number in a row
/// (a rotation renames one file at a time, so it opens at most one gap).
/// A rotation under way may show a file twice (the second is skipped).
/// With `whole_records`, the live file's length is taken to the end of its
/// last complete record.
fn scan(
    base: &Path,
    whole_records: bool,
    probe: &mut Probe<'_>,
) -> Result<Vec<Segment>, ReadError> {
    let mut newest_first: Vec<Segment> = Vec::new();
    let mut missing = 0;
    for k in 0..=MAX_ROTATED {
        let path = if k == 0 {
            base.to_path_buf()
        } else {
            rotated(base, k)
        };
        match probe.open(&path)? {
            Some(mut seg) => {
                missing = 0;
                if k == 0 && whole_records {
                    seg.len = records_end(&seg)?;
                }
                if !newest_first.iter().any(|s| s.id == seg.id) {
                    newest_first.push(seg);
                }
            }
            None => {
                missing += usize::from(k > 0);
                if missing == 2 {
                    break;
                }
            }
        }
    }
    newest_first.reverse();
    Ok(newest_first)
}

/// The end of the last complete record of `seg` (0 if it has none).
fn records_end(seg: &Segment) -> Result<u64, ReadError> {
    let mut end = seg.len;
    let mut buf = vec![0u8; BLOCK.min(seg.len as usize)];
    while end > 0 {
        let from = end.saturating_sub(buf.len() as u64);
        let block = &mut buf[..(end - from) as usize];
        seg.file
            .read_exact_at(block, from)
            .map_err(|e| read_err(&seg.path, e))?;
        if let Some(i) = block.iter().rposition(|&b| b == b'\n') {
            return Ok(from + i as u64 + 1);
        }
        end = from;
    }
    Ok(0)
}

/// Walks the starts of the records of a chain from its end backwards,
/// reading a block at a time.
pub(super) struct Backward<'a> {
    segs: &'a [Segment],
    format: ProcessLogFormat,
    /// Segments `[0, unstarted)` have not been scanned at all.
    unstarted: usize,
    /// The segment being scanned.
    current: Option<usize>,
    /// Bytes `[buf_at, buf_at + buf.len())` of segment `buf_seg`.
    buf: Vec<u8>,
    buf_seg: usize,
    buf_at: u64,
    /// `buf[..pos]` is not scanned yet.
    pos: usize,
}

impl<'a> Backward<'a> {
    pub(super) fn new(segs: &'a [Segment], format: ProcessLogFormat) -> Backward<'a> {
        Backward {
            segs,
            format,
            unstarted: segs.len(),
            current: None,
            buf: Vec::new(),
            buf_seg: usize::MAX,
            buf_at: 0,
            pos: 0,
        }
    }

    /// The start of the previous record, as (segment, offset).
    pub(super) fn next(&mut self) -> Result<Option<(usize, u64)>, ReadError> {
        loop {
            let Some(i) = self.current else {
                if self.unstarted == 0 {
                    return Ok(None);
                }
                self.unstarted -= 1;
                let seg = &self.segs[self.unstarted];
                if seg.len == 0 {
                    continue;
                }
                let mut last = [0u8];
                seg.file
                    .read_exact_at(&mut last, seg.len - 1)
                    .map_err(|e| read_err(&seg.path, e))?;
                // A final newline ends the last record; it starts none.
                self.buf_at = seg.len - u64::from(last[0] == b'\n');
                self.buf.clear();
                self.buf_seg = self.unstarted;
                self.pos = 0;
                self.current = Some(self.unstarted);
                continue;
            };
            if let Some(p) = self.buf[..self.pos].iter().rposition(|&b| b == b'\n') {
                self.pos = p;
                return Ok(Some((i, self.buf_at + p as u64 + 1)));
            }
            if self.buf_at == 0 {
                self.current = None;
                return Ok(Some((i, 0)));
            }
            let seg = &self.segs[i];
            let from = self.buf_at.saturating_sub(BLOCK as u64);
            self.buf.resize((self.buf_at - from) as usize, 0);
            seg.file
                .read_exact_at(&mut self.buf, from)
                .map_err(|e| read_err(&seg.path, e))?;
            self.buf_at = from;
            self.pos = self.buf.len();
        }
    }

    /// The merge key of the record that starts at `off` in segment `i`.
    pub(super) fn key(&self, i: usize, off: u64) -> Result<Key, ReadError> {
        if i == self.buf_seg && off >= self.buf_at {
            let at = (off - self.buf_at) as usize;
            if let Some(head) = self.buf.get(at..at + HEAD) {
                return Ok(record_key(self.format, head));
            }
        }
        let seg = &self.segs[i];
        let mut head = vec![0u8; HEAD.min(seg.len.saturating_sub(off) as usize)];
        seg.file
            .read_exact_at(&mut head, off)
            .map_err(|e| read_err(&seg.path, e))?;
        Ok(record_key(self.format, &head))
    }
}

/// The timestamp of a record from its first bytes: the first 27 bytes of a
/// plain record, the `"ts"` of a JSON one; nothing for raw output.
pub(super) fn record_key(format: ProcessLogFormat, head: &[u8]) -> Key {
    // `head` may run on into the next record.
    let head = &head[..head.iter().position(|&b| b == b'\n').unwrap_or(head.len())];
    let ts = match format {
        ProcessLogFormat::Plain => head,
        ProcessLogFormat::Json => find(head, b"\"ts\":\"").map_or(&[][..], |i| &head[i + 6..]),
        ProcessLogFormat::Raw => &[],
    };
    let mut key = [0u8; TS_LEN];
    for (k, &b) in key.iter_mut().zip(ts.iter().take_while(|&&b| b != b'"')) {
        *k = b;
    }
    key
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
#[path = "../tests/chain.rs"]
mod tests;
