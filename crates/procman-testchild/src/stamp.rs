//! `--stamp` and `--pidfile`: facts written to files, for observers that do
//! not read our stdout (benchmarks counting restarts, tests finding a pid).

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

/// Nanoseconds on CLOCK_MONOTONIC, comparable across processes on one boot.
pub fn monotonic_ns() -> u128 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec to write into; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    // Both fields are non-negative for CLOCK_MONOTONIC.
    ts.tv_sec as u128 * 1_000_000_000 + ts.tv_nsec as u128
}

/// Appends `<kind> <ns> <pid>\n` in a single `write(2)` on an O_APPEND file,
/// so lines from concurrent processes never interleave.
pub fn append(path: &Path, kind: char) -> io::Result<()> {
    let line = format!("{kind} {} {}\n", monotonic_ns(), std::process::id());
    let context = |e: io::Error| io::Error::new(e.kind(), format!("stamp {}: {e}", path.display()));
    let mut file = OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .map_err(context)?;
    let written = file.write(line.as_bytes()).map_err(context)?;
    if written != line.len() {
        return Err(context(io::Error::new(
            io::ErrorKind::WriteZero,
            "short write",
        )));
    }
    Ok(())
}

/// Writes our pid to a temporary file and renames it over `path`, so a
/// reader never sees an empty or partial pidfile.
pub fn write_pidfile(path: &Path) -> io::Result<()> {
    let pid = std::process::id();
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".{pid}.tmp"));
    let context =
        |e: io::Error| io::Error::new(e.kind(), format!("pidfile {}: {e}", path.display()));
    fs::write(&tmp, format!("{pid}\n")).map_err(context)?;
    fs::rename(&tmp, path).map_err(context)
}
