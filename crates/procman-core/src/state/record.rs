//! One state file per process, `<state_dir>/processes/<id>.json`: what a
//! new manager needs to re-attach to the process an earlier one started
//! (pid, start time, boot id, the pipes it holds) and to go on where that
//! one left off (run number, restart counters, circuit breaker).
//!
//! Written atomically against a crash of the manager, which is what it is
//! for (a record names processes of the boot that wrote it, and the page
//! cache outlives the manager): a record of one page or less (every one in
//! practice) is written over the old one in place by one `pwrite` at
//! offset 0, padded with spaces to the old length, so the file is never
//! truncated and no inode or block is allocated after its first write; a
//! larger one is written to a temporary file in the same directory and
//! swapped with the old one. Removed
//! when the process is stopped on purpose: a manager that starts and finds
//! no file starts the process afresh.

use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::files::{self, DirKind};

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

/// The largest record written in place: one page, which a write at offset
/// 0 from a resident buffer changes whole (the kernel copies it under the
/// file's lock, and takes a fatal signal only before a page's copy), so a
/// manager killed at any instant leaves the old record or the new one.
const IN_PLACE: usize = 4096;

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
    /// Writes the record (see the module's doc), and `fsync`s it (the
    /// directory is created `0700` on first use).
    pub fn save(&self, state_dir: &Path) -> io::Result<()> {
        self.write(state_dir, true)
    }

    /// [`ProcessRecord::save`] without the `fsync`: whole against a crash
    /// of the manager (the page cache outlives it), which is what a state
    /// file is for (it is only valid in the boot that wrote it).
    pub fn save_unsynced(&self, state_dir: &Path) -> io::Result<()> {
        self.write(state_dir, false)
    }

    fn write(&self, state_dir: &Path, sync: bool) -> io::Result<()> {
        let mut text = serde_json::to_vec(self).map_err(io::Error::other)?;
        let target = path(state_dir, &self.id);
        let opened = match files::open(&target, files::Access::ReadWrite) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                files::ensure_dir(&dir(state_dir), DirKind::State).map_err(io::Error::other)?;
                files::open(&target, files::Access::ReadWrite)?
            }
            opened => opened?,
        };
        let file = opened.file;
        let old = usize::try_from(file.metadata()?.len()).unwrap_or(usize::MAX);
        if text.len() < IN_PLACE && old <= IN_PLACE {
            // Padded with spaces to the old length (JSON allows them), so
            // no part of the old record is left after the new one and the
            // file is never truncated.
            text.resize(old.max(text.len() + 1) - 1, b' ');
            text.push(b'\n');
            file.write_all_at(&text, 0)?;
            if sync {
                file.sync_all()?;
            }
            return Ok(());
        }
        drop(file);
        text.push(b'\n');
        self.swap_in(state_dir, &text, sync)
    }

    /// A record too large to be written in place: written to the temporary
    /// file and swapped with the old one.
    fn swap_in(&self, state_dir: &Path, text: &[u8], sync: bool) -> io::Result<()> {
        let target = path(state_dir, &self.id);
        let temp = temp_path(state_dir, &self.id);
        // The temporary file holds the record before the last one (see
        // `replace`), or what a crash left: ours to overwrite.
        let mut file = files::open(&temp, files::Access::ReadWrite)?.file;
        file.set_len(0)?;
        file.write_all(text)?;
        if sync {
            file.sync_all()?;
        }
        replace(&temp, &target)
    }

    /// Reads the record of `id`: `Ok(None)` when there is none, or it is
    /// of another version; an error for a file that cannot be read or
    /// parsed (the caller says so and starts afresh).
    pub fn load(state_dir: &Path, id: &str) -> io::Result<Option<ProcessRecord>> {
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

    /// Removes the record of `id` (a process stopped on purpose), and the
    /// previous one kept beside it.
    pub fn remove(state_dir: &Path, id: &str) -> io::Result<()> {
        let _ = std::fs::remove_file(temp_path(state_dir, id));
        match std::fs::remove_file(path(state_dir, id)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// The ids that have a state file (whatever the config says now).
    pub fn ids(state_dir: &Path) -> Vec<String> {
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
}

#[cfg(test)]
#[path = "tests/record.rs"]
mod tests;
