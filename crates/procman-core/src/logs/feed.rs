//! What a pump does with bytes once it has them: split them into records,
//! format them, write the process's file (and record how far it got in
//! the stream's spool), and queue the targets' batches. Also the writing
//! of what a spool still holds of a run that ended while no manager ran.

use std::io;

use super::format;
use super::journal::{self, Shared};
use super::record::{Record, Stream};
use super::sink::ProcessLog;
use super::splitter::LineSplitter;
use super::spool::Spool;
use crate::config::ProcessLogFormat;

/// Bytes read from a pipe or a spool at a time.
pub(crate) const CHUNK: usize = 256 * 1024;

/// What a pump hands the splitter.
pub(crate) enum Feed<'a> {
    Chunk(&'a [u8]),
    /// The pipe went quiet with part of a line held.
    Partial,
    /// End of file.
    End,
}

/// Where the bytes came from, for the checkpoint that follows the write.
pub(crate) struct Mark<'a> {
    pub spool: &'a mut Spool,
    /// The spool offset fed to the splitter so far; `None` when the bytes
    /// came from the pipe directly (after a fallback): the spool then
    /// holds nothing, and every byte read counts as done.
    pub fed: Option<u64>,
}

/// Splits what `feed` brings, writes the process's file, records it in
/// `mark`'s spool, and queues the formatted batches for the targets.
pub(crate) fn consume(
    log: &ProcessLog,
    splitter: &mut LineSplitter,
    feed: Feed<'_>,
    out: &mut Vec<u8>,
    (pid, run): (u32, u32),
    mark: Option<Mark<'_>>,
) {
    let at_end = matches!(feed, Feed::End);
    let (ts, origin) = log.stamp(pid, run);
    out.clear();
    let mut bufs = log.targets.buffers();
    let mut records = 0u64;
    let file = log.has_file();
    let mut emit = |r: Record<'_>| {
        records += 1;
        if file {
            match log.format {
                ProcessLogFormat::Plain => format::plain_line(out, &ts, &r),
                ProcessLogFormat::Json => format::json_line(out, &ts, &origin, &r),
                // Raw with rotation: records keep rotation at line ends.
                ProcessLogFormat::Raw => {
                    out.extend_from_slice(r.bytes);
                    // At the end, a last line without a newline stays so.
                    if !r.continued && !at_end {
                        out.push(b'\n');
                    }
                }
            }
        }
        log.targets.format_into(&mut bufs, &ts, &origin, &r);
    };
    match feed {
        Feed::Chunk(chunk) => splitter.feed(chunk, &mut emit),
        Feed::Partial => splitter.flush_partial(&mut emit),
        Feed::End => splitter.finish(&mut emit),
    }
    // Never past the line the splitter holds: it is fed again after a
    // crash.
    let mark = mark.map(|m| {
        let done = match m.fed {
            Some(fed) => fed - splitter.pending().len() as u64,
            None => m.spool.end(),
        };
        (m.spool, done, splitter.continues())
    });
    log.write_marked(out, records, mark);
    log.targets.push_all(bufs, records);
}

/// Raw format without rotation: the file gets the chunk itself, unchanged
/// (no copy, no split) unless it is there already (`in_file`: spliced);
/// the splitter runs only when targets need records.
pub(crate) fn consume_raw(
    log: &ProcessLog,
    splitter: &mut LineSplitter,
    feed: Feed<'_>,
    (pid, run): (u32, u32),
    in_file: bool,
) {
    if let Feed::Chunk(chunk) = feed {
        if !in_file {
            let lines = memchr::memchr_iter(b'\n', chunk).count() as u64;
            log.write_marked(chunk, lines.max(1), None);
        }
    }
    if log.targets.is_empty() {
        return;
    }
    let (ts, origin) = log.stamp(pid, run);
    let mut bufs = log.targets.buffers();
    let mut records = 0u64;
    let mut emit = |r: Record<'_>| {
        records += 1;
        log.targets.format_into(&mut bufs, &ts, &origin, &r);
    };
    match feed {
        Feed::Chunk(chunk) => splitter.feed(chunk, &mut emit),
        Feed::Partial => splitter.flush_partial(&mut emit),
        Feed::End => splitter.finish(&mut emit),
    }
    log.targets.push_all(bufs, records);
}

/// Writes what `spool` holds past its checkpoint as the last lines of the
/// run the checkpoint names (a held line ends there), then resets the
/// spool. For a run that ended while no manager read its output. Returns
/// that run's `(pid, run)` when there was anything. Blocking.
pub(crate) fn finish_backlog(
    log: &ProcessLog,
    stream: Stream,
    spool: &Shared,
) -> io::Result<Option<(u32, u32)>> {
    let mut spool = journal::lock(spool);
    if !spool.has_backlog() {
        return Ok(None);
    }
    let cp = *spool.checkpoint();
    let who = (cp.pid, cp.run);
    let mut splitter = LineSplitter::resumed(stream, log.max_line, cp.continues);
    let (mut input, mut out) = (Vec::new(), Vec::new());
    let mut fed = cp.done;
    while fed < spool.end() {
        spool.read_at(fed, CHUNK, &mut input)?;
        fed += input.len() as u64;
        let mark = Mark {
            spool: &mut spool,
            fed: Some(fed),
        };
        consume(
            log,
            &mut splitter,
            Feed::Chunk(&input),
            &mut out,
            who,
            Some(mark),
        );
    }
    let mark = Mark {
        spool: &mut spool,
        fed: Some(fed),
    };
    consume(log, &mut splitter, Feed::End, &mut out, who, Some(mark));
    spool.compact(&[], true)?;
    Ok(Some(who))
}
