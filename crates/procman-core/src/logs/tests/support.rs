//! What the tests of the log reader and of following share: records in
//! the stored formats, a log in a directory, and reading it back.

use std::fs;
use std::io::{self, Write};
use std::path::Path;

use super::reader::{merged_tail, write_merged, Cursor, LogSet, Style};
use crate::config::ProcessLogFormat;

/// A plain record at `micros` past a fixed second.
pub(super) fn plain(micros: u32, text: &str) -> String {
    format!("2026-11-30T07:37:15.{micros:06}Z stdout {text}\n")
}

/// A JSON record of process `id` at `micros` past the same second.
pub(super) fn json(micros: u32, id: &str, text: &str) -> String {
    format!(
        "{{\"ts\":\"2026-11-30T07:37:15.{micros:06}Z\",\"id\":\"{id}\",\"pid\":7,\"run\":1,\"stream\":\"stdout\",\"line\":\"{text}\"}}\n"
    )
}

/// The log of process `id`: `<dir>/<id>.log`, in `format`.
pub(super) fn set(dir: &Path, id: &str, format: ProcessLogFormat) -> LogSet {
    LogSet {
        id: id.to_string(),
        path: dir.join(format!("{id}.log")),
        format,
    }
}

/// The bytes of the last `n` records of `set` (`0`: all of them).
pub(super) fn tail_bytes(set: &LogSet, n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    Cursor::tail(set, n)
        .and_then(|mut c| c.copy_to(&mut out))
        .expect("tail");
    out
}

/// The last `n` records of `sets` merged, as written in `style`.
pub(super) fn merged(sets: &[LogSet], n: usize, style: Style) -> String {
    let mut sources = merged_tail(sets, n).expect("merged_tail");
    let mut out = Vec::new();
    write_merged(&mut sources, style, true, &mut out).expect("write_merged");
    String::from_utf8(out).expect("utf-8")
}

/// Appends `bytes` to the file at `path`, creating it if need be.
pub(super) fn append(path: &Path, bytes: impl AsRef<[u8]>) -> io::Result<()> {
    fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?
        .write_all(bytes.as_ref())
}
