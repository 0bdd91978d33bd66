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
//!   opened newest first, so a rotation between two opens shows a file
//!   twice (the second is skipped) instead of hiding one. A [`Cursor`] at
//!   the end of the live file checks whether the name now points elsewhere;
//!   if so it reads the old file to its end *after* seeing the rename (the
//!   writer is done with a file before it renames it), then goes on with its
//!   successor, found by where the old file now sits in the chain.
//! - A record is a line ending in `\n`; a last line without one (a record
//!   being written, or raw output without a newline) counts as a record.

use std::borrow::Cow;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::config::{Config, LogFile, ProcessConfig, ProcessLogFormat};

/// Length of the RFC 3339 timestamp that starts every plain record.
const TS_LEN: usize = 27;
/// The longest piece of a line held in memory at once.
pub const MAX_PIECE: usize = 1 << 20;
/// Bytes read per step, backwards or forwards.
const BLOCK: usize = 64 * 1024;
/// How far into a JSON record its `"ts"` is looked for.
const HEAD: usize = 256;
/// Rotated files looked for at most (`max_files` is at most 1000).
const MAX_ROTATED: u32 = 10_000;
/// Times the successor of a rotated file is looked for before waiting for
/// the next change (only a rotation under way makes a look fail).
const RETRIES: usize = 16;

/// The merge key of a record: its timestamp, zero-padded (zeros sort first).
type Key = [u8; TS_LEN];

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("read log file {}: {source}", .path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("watch {}: {source}", .path.display())]
    Watch { path: PathBuf, source: io::Error },
    #[error("write the output: {0}")]
    Output(#[source] io::Error),
}

impl ReadError {
    /// The reader of our output went away (`EPIPE`): the end of a pipeline
    /// such as `procman logs | head`, not a failure.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, ReadError::Output(e) if e.kind() == io::ErrorKind::BrokenPipe)
    }
}

fn read_err(path: &Path, source: io::Error) -> ReadError {
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
    pub fn of(config: &Config, process: &ProcessConfig) -> Option<LogSet> {
        let path = match &process.logging.file {
            LogFile::Default => log_dir(config).join(format!("{}.log", process.id)),
            LogFile::Path(p) => p.clone(),
            LogFile::Off => return None,
        };
        Some(LogSet {
            id: process.id.clone(),
            path,
            format: process.logging.format,
        })
    }

    /// `<path>.k`: the k-th rotated file, 1 being the newest.
    pub fn rotated(&self, k: u32) -> PathBuf {
        rotated(&self.path, k)
    }
}

/// The directory of the default log files: `log_dir`, else `<state_dir>/logs`.
pub fn log_dir(config: &Config) -> PathBuf {
    config
        .manager
        .log_dir
        .clone()
        .unwrap_or_else(|| crate::state::dir(config.manager.state_dir.as_deref()).join("logs"))
}

/// Plain and JSON logs are written a whole record at a time; raw output is
/// whatever the child wrote, a prompt without newline included.
fn whole_records(set: &LogSet) -> bool {
    set.format != ProcessLogFormat::Raw
}

fn rotated(base: &Path, k: u32) -> PathBuf {
    let mut name = base.as_os_str().to_owned();
    name.push(format!(".{k}"));
    PathBuf::from(name)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct FileId {
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
struct Segment {
    file: File,
    path: PathBuf,
    len: u64,
    id: FileId,
}

impl Segment {
    fn open(path: &Path) -> io::Result<Segment> {
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

/// `(device, inode)` of the file at `path`, `None` if there is none.
fn id_at(path: &Path) -> Result<Option<FileId>, ReadError> {
    match fs::metadata(path) {
        Ok(m) => Ok(Some(FileId::of(&m))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(read_err(path, e)),
    }
}

/// Opens the files of a chain that exist, oldest first. The live file may
/// be missing (a rotation under way); the rotated ones end at the second
/// missing number in a row (a rotation renames one file at a time, so it
/// opens at most one gap). With `whole_records`, the live file's length is
/// taken to the end of its last complete record.
fn open_chain(base: &Path, whole_records: bool) -> Result<Vec<Segment>, ReadError> {
    let mut newest_first: Vec<Segment> = Vec::new();
    let mut missing = 0;
    for k in 0..=MAX_ROTATED {
        let path = if k == 0 {
            base.to_path_buf()
        } else {
            rotated(base, k)
        };
        match Segment::open(&path) {
            Ok(mut seg) => {
                missing = 0;
                if k == 0 && whole_records {
                    seg.len = records_end(&seg)?;
                }
                if !newest_first.iter().any(|s| s.id == seg.id) {
                    newest_first.push(seg);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                missing += usize::from(k > 0);
                if missing == 2 {
                    break;
                }
            }
            Err(e) => return Err(read_err(&path, e)),
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

/// Where reading starts in a chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Start {
    /// At this offset of this segment (0 = the oldest).
    At(usize, u64),
    /// After everything the chain held when it was opened.
    End,
}

/// Walks the starts of the records of a chain from its end backwards,
/// reading a block at a time.
struct Backward<'a> {
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
    fn new(segs: &'a [Segment], format: ProcessLogFormat) -> Backward<'a> {
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
    fn next(&mut self) -> Result<Option<(usize, u64)>, ReadError> {
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
    fn key(&self, i: usize, off: u64) -> Result<Key, ReadError> {
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
fn record_key(format: ProcessLogFormat, head: &[u8]) -> Key {
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

    fn at(set: &LogSet, segs: Vec<Segment>, start: Start) -> Result<Cursor, ReadError> {
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
        self.read_with(buf, &mut || {})
    }

    /// [`Cursor::read`], calling `at_eof` between reaching the end of the
    /// live file and looking for a rotation (where tests put the writer).
    fn read_with(&mut self, buf: &mut [u8], at_eof: &mut dyn FnMut()) -> Result<usize, ReadError> {
        loop {
            let Some(front) = self.segs.front_mut() else {
                // There was no file: whatever appeared since is all new.
                self.segs = open_chain(&self.base, self.whole_records)?.into();
                if self.segs.is_empty() {
                    return Ok(0);
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
            at_eof();
            // The end of the live file, unless the writer has moved on. The
            // old file is then read again to its end (next turn) before the
            // new one: anything written to it came before the rename.
            match self.successor()? {
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
    /// moved on from it.
    fn successor(&self) -> Result<Option<Segment>, ReadError> {
        let Some(live) = self.segs.back() else {
            return Ok(None);
        };
        for _ in 0..RETRIES {
            match id_at(&self.base)? {
                Some(id) if id != live.id => {}
                // Still ours, or renamed with no new file yet.
                _ => return Ok(None),
            }
            let Some(k) = self.find_rotated(live.id)? else {
                // Removed (or moved out of the chain): the live file follows.
                return self.open(&self.base);
            };
            let next = if k == 1 {
                self.base.clone()
            } else {
                rotated(&self.base, k - 1)
            };
            let Some(seg) = self.open(&next)? else {
                // A rotation under way: its next rename wakes us again.
                return Ok(None);
            };
            // Ours still at `.k` means nothing moved since we looked, so
            // `next` held its successor when we opened it.
            if id_at(&rotated(&self.base, k))? == Some(live.id) {
                return Ok(Some(seg));
            }
        }
        Ok(None)
    }

    /// Where the file `id` sits among the rotated files, if it does.
    fn find_rotated(&self, id: FileId) -> Result<Option<u32>, ReadError> {
        let mut missing = 0;
        for k in 1..=MAX_ROTATED {
            match id_at(&rotated(&self.base, k))? {
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

    fn open(&self, path: &Path) -> Result<Option<Segment>, ReadError> {
        match Segment::open(path) {
            Ok(seg) => Ok(Some(seg)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(read_err(path, e)),
        }
    }
}

/// How records are written out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Each record as stored.
    Stored,
    /// Each record as stored, after `<id> | `.
    Prefixed,
    /// One JSON object per record, whatever the file's format: JSON records
    /// as stored, plain ones converted (`ts`, `id`, `stream`, `line`, or
    /// `pid`, `run`, `"event":"start"` for a run separator), raw lines as
    /// `{"id","line"}`. Invalid UTF-8 is carried in `line_base64`.
    Json,
}

/// A piece of a line: the whole line unless it is longer than [`MAX_PIECE`].
#[derive(Debug)]
struct Piece {
    key: Key,
    bytes: Vec<u8>,
    /// The start of its line (only a start has a key).
    starts: bool,
    /// The end of its line.
    ends: bool,
}

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
                Some(piece) => self.write_piece(&piece, style, out)?,
                None => break,
            }
        }
        Ok(())
    }

    fn write_piece(&self, p: &Piece, style: Style, out: &mut dyn Write) -> Result<(), ReadError> {
        let converted = style == Style::Json && self.set.format != ProcessLogFormat::Json;
        let mut write = || -> io::Result<()> {
            if converted {
                // Each converted piece is an object of its own line.
                write_json(out, &self.set, p)?;
                return out.write_all(b"\n");
            }
            if style == Style::Prefixed && p.starts {
                out.write_all(self.set.id.as_bytes())?;
                out.write_all(b" | ")?;
            }
            out.write_all(&p.bytes)?;
            if p.ends {
                out.write_all(b"\n")?;
            }
            Ok(())
        };
        write().map_err(ReadError::Output)
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
        s.write_piece(&piece, style, out)?;
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

/// A record as `-o json` writes it; absent fields are left out.
#[derive(Debug, Default, serde::Serialize)]
struct JsonRecord<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    ts: Option<&'a str>,
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    run: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    line: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    line_base64: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    partial: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    continues: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    event: Option<&'static str>,
}

/// A plain or raw piece as one JSON object (without the newline).
fn write_json(out: &mut dyn Write, set: &LogSet, p: &Piece) -> io::Result<()> {
    let mut rec = JsonRecord {
        id: &set.id,
        partial: !p.ends,
        continues: !p.starts,
        ..JsonRecord::default()
    };
    let mut text = Some(&p.bytes[..]);
    if p.starts && set.format == ProcessLogFormat::Plain {
        text = parse_plain(&p.bytes, &mut rec);
    }
    if let Some(text) = text {
        match std::str::from_utf8(text) {
            Ok(s) => rec.line = Some(Cow::Borrowed(s)),
            Err(_) => {
                rec.line = Some(String::from_utf8_lossy(text));
                rec.line_base64 = Some(base64(text));
            }
        }
    }
    serde_json::to_writer(&mut *out, &rec).map_err(io::Error::from)
}

/// Fills `rec` from a plain record: `<ts> <stream>[+] <bytes>` (returns
/// the bytes) or `<ts> ----- run <run> pid <pid> -----` (returns `None`).
/// A line of another shape is all text.
fn parse_plain<'a>(line: &'a [u8], rec: &mut JsonRecord<'a>) -> Option<&'a [u8]> {
    let ts = line.get(..TS_LEN).and_then(|t| std::str::from_utf8(t).ok());
    let (Some(ts), Some(b' '), Some(rest)) = (ts, line.get(TS_LEN), line.get(TS_LEN + 1..)) else {
        return Some(line);
    };
    if let Some(sep) = rest.strip_prefix(b"----- run ") {
        let words: Vec<&str> = std::str::from_utf8(sep).unwrap_or("").split(' ').collect();
        if let [run, "pid", pid, "-----"] = words[..] {
            if let (Ok(run), Ok(pid)) = (run.parse(), pid.parse()) {
                (rec.ts, rec.run, rec.pid, rec.event) =
                    (Some(ts), Some(run), Some(pid), Some("start"));
                return None;
            }
        }
        return Some(line);
    }
    let Some(sp) = rest.iter().position(|&b| b == b' ') else {
        return Some(line);
    };
    let (stream, continues) = match &rest[..sp] {
        b"stdout" => ("stdout", false),
        b"stdout+" => ("stdout", true),
        b"stderr" => ("stderr", false),
        b"stderr+" => ("stderr", true),
        _ => return Some(line),
    };
    (rec.ts, rec.stream, rec.continues) = (Some(ts), Some(stream), continues);
    Some(&rest[sp + 1..])
}

/// Standard base64 with padding, as the JSON log format's `line_base64`.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = |i: usize| u32::from(chunk.get(i).copied().unwrap_or(0));
        let n = (b(0) << 16) | (b(1) << 8) | b(2);
        for k in 0..4 {
            if k <= chunk.len() {
                s.push(char::from(ALPHABET[(n >> (18 - 6 * k)) as usize & 63]));
            } else {
                s.push('=');
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A plain record at `micros` past a fixed second.
    fn plain(micros: u32, text: &str) -> String {
        format!("2026-11-30T07:37:15.{micros:06}Z stdout {text}\n")
    }

    fn json(micros: u32, id: &str, text: &str) -> String {
        format!(
            "{{\"ts\":\"2026-11-30T07:37:15.{micros:06}Z\",\"id\":\"{id}\",\"pid\":7,\"run\":1,\"stream\":\"stdout\",\"line\":\"{text}\"}}\n"
        )
    }

    fn set(dir: &Path, id: &str, format: ProcessLogFormat) -> LogSet {
        LogSet {
            id: id.to_string(),
            path: dir.join(format!("{id}.log")),
            format,
        }
    }

    fn tail_bytes(set: &LogSet, n: usize) -> Vec<u8> {
        let mut out = Vec::new();
        Cursor::tail(set, n)
            .and_then(|mut c| c.copy_to(&mut out))
            .expect("tail");
        out
    }

    fn merged(sets: &[LogSet], n: usize, style: Style) -> String {
        let mut sources = merged_tail(sets, n).expect("merged_tail");
        let mut out = Vec::new();
        write_merged(&mut sources, style, true, &mut out).expect("write_merged");
        String::from_utf8(out).expect("utf-8")
    }

    /// Lines `from..to`, written to `path`.
    fn write_lines(path: &Path, from: u32, to: u32) -> String {
        let text: String = (from..to).map(|i| plain(i, &format!("line {i}"))).collect();
        fs::write(path, &text).expect("write");
        text
    }

    #[test]
    fn tail_reads_across_three_rotated_files_oldest_first() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let s = set(dir.path(), "web", ProcessLogFormat::Plain);
        write_lines(&s.rotated(3), 0, 5);
        write_lines(&s.rotated(2), 5, 10);
        write_lines(&s.rotated(1), 10, 15);
        write_lines(&s.path, 15, 20);
        let want: String = (8..20).map(|i| plain(i, &format!("line {i}"))).collect();
        assert_eq!(String::from_utf8(tail_bytes(&s, 12))?, want);
        // The boundary between two files, exactly.
        let want: String = (10..20).map(|i| plain(i, &format!("line {i}"))).collect();
        assert_eq!(String::from_utf8(tail_bytes(&s, 10))?, want);
        Ok(())
    }

    #[test]
    fn n_larger_than_everything_and_zero_give_everything() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let s = set(dir.path(), "web", ProcessLogFormat::Plain);
        let mut all = write_lines(&s.rotated(1), 0, 3);
        all += &write_lines(&s.path, 3, 6);
        assert_eq!(String::from_utf8(tail_bytes(&s, 1000))?, all);
        assert_eq!(String::from_utf8(tail_bytes(&s, 0))?, all);
        assert_eq!(merged(std::slice::from_ref(&s), 1000, Style::Stored), all);
        Ok(())
    }

    #[test]
    fn a_missing_log_is_empty_not_an_error() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let s = set(
            &dir.path().join("never/created"),
            "web",
            ProcessLogFormat::Plain,
        );
        assert!(tail_bytes(&s, 50).is_empty());
        assert_eq!(merged(&[s], 50, Style::Prefixed), "");
        Ok(())
    }

    #[test]
    fn backwards_scan_matches_a_naive_split_across_blocks() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let s = set(dir.path(), "raw", ProcessLogFormat::Raw);
        // Lines of many lengths, empty ones included, over several blocks,
        // and a last line without its newline.
        let mut text = Vec::new();
        for i in 0..3000usize {
            text.extend(std::iter::repeat_n(b'a' + (i % 26) as u8, (i * 37) % 301));
            text.push(b'\n');
        }
        text.extend_from_slice(b"no newline");
        fs::write(&s.path, &text)?;
        let lines: Vec<&[u8]> = text.split(|&b| b == b'\n').collect();
        for n in [1, 2, 17, 500, 2999, 3000, 3001, 5000] {
            let from = lines.len().saturating_sub(n);
            assert_eq!(tail_bytes(&s, n), lines[from..].join(&b'\n'), "n = {n}");
        }
        Ok(())
    }

    #[test]
    fn a_200_kb_line_is_one_record() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let s = set(dir.path(), "big", ProcessLogFormat::Plain);
        let long = "x".repeat(200_000);
        let text = plain(1, "first") + &plain(2, &long) + &plain(3, "last");
        fs::write(&s.path, &text)?;
        let want = plain(2, &long) + &plain(3, "last");
        assert_eq!(String::from_utf8(tail_bytes(&s, 2))?, want);
        let prefixed = format!("big | {}big | {}", plain(2, &long), plain(3, "last"));
        assert_eq!(merged(&[s], 2, Style::Prefixed), prefixed);
        Ok(())
    }

    #[test]
    fn a_line_longer_than_a_piece_is_prefixed_once_and_kept_whole() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let s = set(dir.path(), "huge", ProcessLogFormat::Raw);
        let long = "y".repeat(MAX_PIECE * 2 + 5);
        fs::write(&s.path, format!("a\n{long}\nb\n"))?;
        let want = format!("huge | a\nhuge | {long}\nhuge | b\n");
        assert_eq!(merged(&[s], 0, Style::Prefixed), want);
        Ok(())
    }

    #[test]
    fn invalid_utf8_passes_through_unchanged() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let s = set(dir.path(), "bin", ProcessLogFormat::Plain);
        let mut text = plain(1, "ok").into_bytes();
        text.extend_from_slice(b"2026-11-30T07:37:15.000002Z stderr \xff\xfe\x00\x80 end\n");
        fs::write(&s.path, &text)?;
        assert_eq!(tail_bytes(&s, 0), text);
        let mut sources = merged_tail(std::slice::from_ref(&s), 1)?;
        let mut out = Vec::new();
        write_merged(&mut sources, Style::Prefixed, true, &mut out)?;
        assert_eq!(
            out,
            b"bin | 2026-11-30T07:37:15.000002Z stderr \xff\xfe\x00\x80 end\n"
        );
        Ok(())
    }

    #[test]
    fn two_processes_merge_by_timestamp() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let a = set(dir.path(), "a", ProcessLogFormat::Json);
        let b = set(dir.path(), "b", ProcessLogFormat::Plain);
        fs::write(a.rotated(1), json(1, "a", "a1") + &json(4, "a", "a4"))?;
        fs::write(&a.path, json(5, "a", "a5") + &json(9, "a", "a9"))?;
        fs::write(&b.path, plain(2, "b2") + &plain(5, "b5") + &plain(7, "b7"))?;
        let all = merged(&[a.clone(), b.clone()], 0, Style::Prefixed);
        let order: Vec<&str> = all
            .lines()
            .map(|l| l.trim_end_matches("\"}"))
            .map(|l| &l[l.len() - 2..])
            .collect();
        // Equal times (a5, b5): the first set first.
        assert_eq!(order, ["a1", "b2", "a4", "a5", "b5", "b7", "a9"]);
        assert!(all.starts_with("a | {\"ts\""), "{all}");
        let last3 = merged(&[a, b], 3, Style::Prefixed);
        assert_eq!(
            last3,
            format!(
                "b | {}b | {}a | {}",
                plain(5, "b5"),
                plain(7, "b7"),
                json(9, "a", "a9")
            )
        );
        Ok(())
    }

    #[test]
    fn raw_output_without_a_final_newline_counts_as_a_record() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let s = set(dir.path(), "r", ProcessLogFormat::Raw);
        fs::write(&s.path, "a\nprompt> ")?;
        assert_eq!(String::from_utf8(tail_bytes(&s, 1))?, "prompt> ");
        // A snapshot ends it with a newline; a follow waits for its rest.
        assert_eq!(
            merged(std::slice::from_ref(&s), 0, Style::Prefixed),
            "r | a\nr | prompt> \n"
        );
        let mut sources = merged_tail(std::slice::from_ref(&s), 0)?;
        let mut out = Vec::new();
        write_merged(&mut sources, Style::Prefixed, false, &mut out)?;
        append(&s.path, "yes\n")?;
        write_merged(&mut sources, Style::Prefixed, false, &mut out)?;
        assert_eq!(String::from_utf8(out)?, "r | a\nr | prompt> yes\n");
        Ok(())
    }

    #[test]
    fn a_plain_record_being_written_is_read_once_whole() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let s = set(dir.path(), "w", ProcessLogFormat::Plain);
        fs::write(
            &s.path,
            plain(1, "one") + "2026-11-30T07:37:15.000002Z stdout hal",
        )?;
        assert_eq!(String::from_utf8(tail_bytes(&s, 1))?, plain(1, "one"));
        let mut cursor = Cursor::tail(&s, 1)?;
        assert_eq!(read_all(&mut cursor)?, plain(1, "one"));
        append(&s.path, "f\n")?;
        assert_eq!(read_all(&mut cursor)?, plain(2, "half"));
        Ok(())
    }

    #[test]
    fn a_torn_record_truncated_away_by_the_writer_is_never_seen() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let s = set(dir.path(), "w", ProcessLogFormat::Json);
        fs::write(&s.path, json(1, "w", "one"))?;
        let mut cursor = Cursor::tail(&s, 0)?;
        assert_eq!(read_all(&mut cursor)?, json(1, "w", "one"));
        // A write cut short by a full disk, truncated back by the writer,
        // then the record written again whole.
        let boundary = fs::metadata(&s.path)?.len();
        append(&s.path, "{\"ts\":\"2026-11-30T07:3")?;
        assert_eq!(read_all(&mut cursor)?, "");
        fs::OpenOptions::new()
            .write(true)
            .open(&s.path)?
            .set_len(boundary)?;
        append(&s.path, &json(2, "w", "two"))?;
        assert_eq!(read_all(&mut cursor)?, json(2, "w", "two"));
        Ok(())
    }

    #[test]
    fn json_output_converts_plain_and_raw_records_losslessly() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let p = set(dir.path(), "p", ProcessLogFormat::Plain);
        let mut text = b"2026-11-30T07:37:15.000001Z ----- run 3 pid 1234 -----\n".to_vec();
        text.extend_from_slice(plain(2, "hello \"you\"").as_bytes());
        text.extend_from_slice(b"2026-11-30T07:37:15.000003Z stderr+ bad \xff\n");
        fs::write(&p.path, &text)?;
        let r = set(dir.path(), "r", ProcessLogFormat::Raw);
        fs::write(&r.path, "raw line\n")?;
        let j = set(dir.path(), "j", ProcessLogFormat::Json);
        fs::write(&j.path, json(4, "j", "as stored"))?;
        let out = merged(&[p, r, j], 0, Style::Json);
        let objects: Vec<serde_json::Value> = out
            .lines()
            .map(serde_json::from_str)
            .collect::<Result<_, _>>()?;
        assert_eq!(
            objects[0],
            serde_json::json!({"id": "r", "line": "raw line"})
        );
        assert_eq!(
            objects[1],
            serde_json::json!({"ts": "2026-11-30T07:37:15.000001Z", "id": "p", "pid": 1234, "run": 3, "event": "start"})
        );
        assert_eq!(
            objects[2],
            serde_json::json!({"ts": "2026-11-30T07:37:15.000002Z", "id": "p", "stream": "stdout", "line": "hello \"you\""})
        );
        assert_eq!(
            objects[3],
            serde_json::json!({"ts": "2026-11-30T07:37:15.000003Z", "id": "p", "stream": "stderr",
                "line": "bad \u{FFFD}", "line_base64": base64(b"bad \xff"), "continues": true})
        );
        assert_eq!(
            format!("{}\n", out.lines().nth(4).unwrap_or("")),
            json(4, "j", "as stored")
        );
        Ok(())
    }

    fn append(path: &Path, text: &str) -> io::Result<()> {
        fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?
            .write_all(text.as_bytes())
    }

    fn read_all(cursor: &mut Cursor) -> Result<String, ReadError> {
        let mut out = Vec::new();
        cursor.copy_to(&mut out)?;
        Ok(String::from_utf8_lossy(&out).into_owned())
    }

    #[test]
    fn a_rotated_file_is_read_to_its_end_before_the_next() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let s = set(dir.path(), "web", ProcessLogFormat::Plain);
        append(&s.path, "a\n")?;
        let mut cursor = Cursor::tail(&s, 0)?;
        assert_eq!(read_all(&mut cursor)?, "a\n");
        // Written after our last read, then rotated, before we look again.
        append(&s.path, "b\n")?;
        fs::rename(&s.path, s.rotated(1))?;
        append(&s.path, "c\n")?;
        assert_eq!(read_all(&mut cursor)?, "b\nc\n");
        append(&s.path, "d\n")?;
        assert_eq!(read_all(&mut cursor)?, "d\n");
        Ok(())
    }

    #[test]
    fn a_record_written_just_before_the_rename_is_not_lost() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let s = set(dir.path(), "web", ProcessLogFormat::Plain);
        append(&s.path, "a\n")?;
        let mut cursor = Cursor::tail(&s, 0)?;
        let mut buf = [0u8; 64];
        let n = cursor.read(&mut buf)?;
        assert_eq!(&buf[..n], b"a\n");
        // The writer's last record, its rotation and its next record, all
        // between our read that found the end and our look for a rename.
        let mut writer = Some(|| -> io::Result<()> {
            append(&s.path, "b\n")?;
            fs::rename(&s.path, s.rotated(1))?;
            append(&s.path, "c\n")
        });
        let mut out = Vec::new();
        loop {
            let n = cursor.read_with(&mut buf, &mut || {
                if let Some(w) = writer.take() {
                    w().expect("writer");
                }
            })?;
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        assert_eq!(String::from_utf8(out)?, "b\nc\n");
        Ok(())
    }

    #[test]
    fn several_rotations_between_two_reads_are_followed_in_order() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let s = set(dir.path(), "web", ProcessLogFormat::Plain);
        append(&s.path, "a\n")?;
        let mut cursor = Cursor::tail(&s, 0)?;
        assert_eq!(read_all(&mut cursor)?, "a\n");
        append(&s.path, "b\n")?;
        fs::rename(&s.path, s.rotated(1))?;
        append(&s.path, "c\n")?;
        fs::rename(s.rotated(1), s.rotated(2))?;
        fs::rename(&s.path, s.rotated(1))?;
        append(&s.path, "d\n")?;
        assert_eq!(read_all(&mut cursor)?, "b\nc\nd\n");
        Ok(())
    }

    #[test]
    fn a_renamed_file_without_successor_yet_is_waited_for() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let s = set(dir.path(), "web", ProcessLogFormat::Plain);
        append(&s.path, "a\n")?;
        let mut cursor = Cursor::tail(&s, 0)?;
        append(&s.path, "b\n")?;
        fs::rename(&s.path, s.rotated(1))?;
        assert_eq!(read_all(&mut cursor)?, "a\nb\n");
        append(&s.path, "c\n")?;
        assert_eq!(read_all(&mut cursor)?, "c\n");
        Ok(())
    }

    #[test]
    fn a_removed_or_truncated_live_file_is_read_again_from_its_start() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let s = set(dir.path(), "web", ProcessLogFormat::Plain);
        append(&s.path, "old 1\nold 2\n")?;
        let mut cursor = Cursor::tail(&s, 1)?;
        assert_eq!(read_all(&mut cursor)?, "old 2\n");
        fs::remove_file(&s.path)?;
        append(&s.path, "new\n")?;
        assert_eq!(read_all(&mut cursor)?, "new\n");
        fs::write(&s.path, "")?;
        append(&s.path, "x\n")?;
        assert_eq!(read_all(&mut cursor)?, "x\n");
        Ok(())
    }

    #[test]
    fn a_log_that_appears_later_is_read_from_its_start() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let s = set(dir.path(), "web", ProcessLogFormat::Plain);
        let mut cursor = Cursor::tail(&s, 5)?;
        assert_eq!(read_all(&mut cursor)?, "");
        append(&s.path, "a\n")?;
        fs::rename(&s.path, s.rotated(1))?;
        append(&s.path, "b\n")?;
        assert_eq!(read_all(&mut cursor)?, "a\nb\n");
        Ok(())
    }

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        let cases = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, encoded) in cases {
            assert_eq!(base64(plain.as_bytes()), encoded);
        }
        assert_eq!(base64(&[0xff, 0xfe, 0x00]), "//4A");
    }

    #[test]
    fn log_sets_follow_the_config() -> anyhow::Result<()> {
        let yaml = "
            process_manager:
              log_dir: /var/log/pm
            managed_processes:
              - id: a
                management:
                  control: {executable: a}
              - id: b
                management:
                  control: {executable: b}
                  logging: {file: /tmp/b.txt, format: json}
              - id: c
                management:
                  control: {executable: c}
                  logging: {file: false}
        ";
        let config = crate::config::load_str(yaml, Path::new("/etc/pm.yaml"), &|_| None)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let sets: Vec<Option<LogSet>> = config
            .processes
            .iter()
            .map(|p| LogSet::of(&config, p))
            .collect();
        assert_eq!(
            sets[0].as_ref().map(|s| s.path.clone()),
            Some(PathBuf::from("/var/log/pm/a.log"))
        );
        assert_eq!(
            sets[1].as_ref().map(|s| (s.path.clone(), s.format)),
            Some((PathBuf::from("/tmp/b.txt"), ProcessLogFormat::Json))
        );
        assert_eq!(sets[2], None);
        assert_eq!(
            LogSet::of(&config, &config.processes[0]).map(|s| s.rotated(2)),
            Some(PathBuf::from("/var/log/pm/a.log.2"))
        );
        Ok(())
    }
}
