//! How records are written out: as stored, after `<id> | `, or as one JSON
//! object each (plain and raw records converted, losslessly).

use std::borrow::Cow;
use std::io::{self, Write};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use super::chain::{Key, LogSet, ReadError, TS_LEN};
use crate::config::ProcessLogFormat;

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

/// A piece of a line: the whole line unless it is longer than
/// [`MAX_PIECE`](super::MAX_PIECE).
#[derive(Debug)]
pub(super) struct Piece {
    pub(super) key: Key,
    pub(super) bytes: Vec<u8>,
    /// The start of its line (only a start has a key).
    pub(super) starts: bool,
    /// The end of its line.
    pub(super) ends: bool,
}

/// Writes a piece of `set`'s log in `style`.
pub(super) fn write_piece(
    set: &LogSet,
    p: &Piece,
    style: Style,
    out: &mut dyn Write,
) -> Result<(), ReadError> {
    let converted = style == Style::Json && set.format != ProcessLogFormat::Json;
    let mut write = || -> io::Result<()> {
        if converted {
            // Each converted piece is an object of its own line.
            write_json(out, set, p)?;
            return out.write_all(b"\n");
        }
        if style == Style::Prefixed && p.starts {
            out.write_all(set.id.as_bytes())?;
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
                rec.line_base64 = Some(STANDARD.encode(text));
            }
        }
    }
    serde_json::to_writer(&mut *out, &rec).map_err(io::Error::from)
}

/// Fills `rec` from a plain record: `<ts> <stream>[+] <bytes>` (returns
/// the bytes), `<ts> ----- run <run> pid <pid> -----` (returns `None`) or
/// `<ts> ----- run <run> pid <pid> ended: <how> -----` (returns how). A
/// line of another shape is all text.
fn parse_plain<'a>(line: &'a [u8], rec: &mut JsonRecord<'a>) -> Option<&'a [u8]> {
    let ts = line.get(..TS_LEN).and_then(|t| std::str::from_utf8(t).ok());
    let (Some(ts), Some(b' '), Some(rest)) = (ts, line.get(TS_LEN), line.get(TS_LEN + 1..)) else {
        return Some(line);
    };
    if let Some(sep) = rest.strip_prefix(b"----- run ") {
        let text = std::str::from_utf8(sep).unwrap_or("");
        let words: Vec<&str> = text.splitn(4, ' ').collect();
        let numbers = |run: &str, pid: &str| Some((run.parse().ok()?, pid.parse().ok()?));
        match words[..] {
            [run, "pid", pid, "-----"] => {
                if let Some((run, pid)) = numbers(run, pid) {
                    (rec.ts, rec.run, rec.pid, rec.event) =
                        (Some(ts), Some(run), Some(pid), Some("start"));
                    return None;
                }
            }
            [run, "pid", pid, ended] => {
                let how = ended
                    .strip_prefix("ended: ")
                    .and_then(|h| h.strip_suffix(" -----"));
                if let (Some((run, pid)), Some(how)) = (numbers(run, pid), how) {
                    (rec.ts, rec.run, rec.pid, rec.event) =
                        (Some(ts), Some(run), Some(pid), Some("end"));
                    // `how` is a suffix of `sep`, so of `line`.
                    let start = line.len() - " -----".len() - how.len();
                    return Some(&line[start..start + how.len()]);
                }
            }
            _ => {}
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

#[cfg(test)]
#[path = "../tests/render.rs"]
mod tests;
