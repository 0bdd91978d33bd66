//! The state of one process, `ProcessRecord`: what a new manager needs to
//! re-attach to the process an earlier one started (pid, start time, boot
//! id, the pipes it holds) and to go on where that one left off (run
//! number, restart counters, circuit breaker). Records live in one slot
//! file per state directory (see `slots.rs`); a record too large for a
//! slot, and every record of a manager from before the slot file, is a
//! file of its own, `<state_dir>/processes/<id>.json`, written here: to a
//! temporary file in the same directory, then swapped with the old one.
//! A record is removed when its process is stopped on purpose: a manager
//! that starts and finds none starts the process afresh.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::files;
use super::slots::Records;

/// Bumped when the format changes incompatibly: a file of another version
/// is ignored (and the process started afresh), never misread.
pub const VERSION: u32 = 1;

/// One captured output pipe a process holds, to be re-opened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldPipe {
    /// `stdout` or `stderr`.
    pub stream: String,
    /// The descriptor the process holds the read end at.
    pub fd: i32,
    /// The pipe's inode: proof that the descriptor is still that pipe.
    pub inode: u64,
}

/// The circuit breaker, as far as it survives a manager restart.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BreakerRecord {
    pub open: bool,
    /// Restarts counted in the window (restored as if they had just
    /// happened: a crash never forgives a crash loop).
    pub recent_restarts: u32,
    /// The backoff exponent.
    pub attempt: u32,
}

/// What the state file of one process holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessRecord {
    pub version: u32,
    pub id: String,
    /// The running process, if one runs (none while in backoff).
    pub pid: Option<u32>,
    /// Its start time, `/proc/<pid>/stat` field 22 (clock ticks since boot).
    pub start_time: Option<u64>,
    /// `/proc/sys/kernel/random/boot_id` when it was written.
    pub boot_id: String,
    /// A hash of the process's configuration: a different one means the
    /// config changed while no manager ran.
    pub config_hash: String,
    /// The process's cgroup v2 directory, if it has one.
    pub cgroup: Option<PathBuf>,
    /// Which run this is (1 for the first).
    pub run: u32,
    pub restarts: u32,
    /// Restarts by the kind of end they followed.
    pub restart_causes: Vec<(String, u32)>,
    pub breaker: BreakerRecord,
    /// When the run was spawned, in milliseconds since the Unix epoch.
    pub started_at_ms: Option<u64>,
    pub pipes: Vec<HeldPipe>,
    /// The port an `integrated_managed` process was given.
    pub port: Option<u16>,
    /// The manager that wrote it.
    pub manager_pid: u32,
}

/// The directory of the state files.
pub fn dir(state_dir: &Path) -> PathBuf {
    state_dir.join("processes")
}

fn path(state_dir: &Path, id: &str) -> PathBuf {
    dir(state_dir).join(format!("{id}.json"))
}

fn temp_path(state_dir: &Path, id: &str) -> PathBuf {
    dir(state_dir).join(format!(".{id}.json.tmp"))
}

/// Puts the new record (`temp`) in place atomically. The two files are
/// swapped (`RENAME_EXCHANGE`) rather than the old one replaced: both
/// files live on, so a write allocates no inode and frees none (on ext4,
/// with many files written, allocating one was most of a spawn's cost of
/// writing its state). A file system without the exchange, or no record
/// yet: a plain rename.
fn replace(temp: &Path, target: &Path) -> io::Result<()> {
    use rustix::fs::{renameat_with, RenameFlags, CWD};
    match renameat_with(CWD, temp, CWD, target, RenameFlags::EXCHANGE) {
        Ok(()) => Ok(()),
        Err(_) => std::fs::rename(temp, target),
    }
}

impl ProcessRecord {
    /// Writes the record into the records of `state_dir`, and `fsync`s it.
    /// (A manager keeps its [`Records`] open; this opens them for one
    /// write.)
    pub fn save(&self, state_dir: &Path) -> io::Result<()> {
        Records::open(state_dir)?.save(self, true)
    }

    /// Reads the record of `id` from `state_dir`: `Ok(None)` when there is
    /// none, or it is of another version; an error for a file of its own
    /// that cannot be read or parsed.
    pub fn load(state_dir: &Path, id: &str) -> io::Result<Option<ProcessRecord>> {
        Records::open(state_dir)?.take(id).transpose()
    }

    /// Removes the record of `id` from `state_dir`.
    pub fn remove(state_dir: &Path, id: &str) -> io::Result<()> {
        Records::open(state_dir)?.remove(id)
    }

    /// The ids that have a record in `state_dir`.
    pub fn ids(state_dir: &Path) -> Vec<String> {
        Records::open(state_dir)
            .map(|r| r.ids())
            .unwrap_or_default()
    }

    /// Writes the record to a file of its own: to the temporary file, then
    /// swapped with the old one.
    pub(super) fn write_file(&self, state_dir: &Path, sync: bool) -> io::Result<()> {
        let mut text = serde_json::to_vec(self).map_err(io::Error::other)?;
        text.push(b'\n');
        let target = path(state_dir, &self.id);
        let temp = temp_path(state_dir, &self.id);
        // The temporary file holds the record before the last one (see
        // `replace`), or what a crash left: ours to overwrite.
        let mut file = files::open(&temp, files::Access::ReadWrite)?.file;
        file.set_len(0)?;
        file.write_all(&text)?;
        if sync {
            file.sync_all()?;
        }
        replace(&temp, &target)
    }
}

/// Reads the file of its own of `id`'s record: `Ok(None)` when there is
/// none, or it is of another version.
pub(super) fn load_file(state_dir: &Path, id: &str) -> io::Result<Option<ProcessRecord>> {
    let path = path(state_dir, id);
    let opened = match files::open_existing(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let record: ProcessRecord = serde_json::from_reader(io::BufReader::new(opened))
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    if record.version != VERSION || record.id != id {
        return Ok(None);
    }
    Ok(Some(record))
}

/// Removes the file of its own of `id`'s record, and the previous one kept
/// beside it.
pub(super) fn remove_file(state_dir: &Path, id: &str) -> io::Result<()> {
    let _ = std::fs::remove_file(temp_path(state_dir, id));
    match std::fs::remove_file(path(state_dir, id)) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// The ids that have a file of their own.
pub(super) fn file_ids(state_dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir(state_dir))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let id = name.strip_suffix(".json")?;
            (!id.starts_with('.')).then(|| id.to_string())
        })
        .collect()
}

#[cfg(test)]
#[path = "tests/record.rs"]
mod tests;
