//! The records of every process in one file, `<state_dir>/processes/slots`:
//! one slot of [`SLOT`] bytes per process, at a multiple of [`SLOT`].
//!
//! A record is written over its slot by one `pwrite` of the whole slot:
//! its JSON, padded with spaces, ending with a newline. A slot never
//! straddles a page, and a write that stays within one page from a
//! resident buffer changes it whole (the kernel copies it under the file's
//! lock and takes a fatal signal only before a page's copy), so a manager
//! killed at any instant leaves the old record or the new one. A slot
//! whose first byte is not `{` holds no record (a removed one is all
//! spaces). Nothing is created, allocated or renamed when a process
//! starts: the file is made once per state directory, where one file per
//! process made the start of many processes pay for as many inodes.
//!
//! A record that does not fit in a slot (a cgroup path of kilobytes; none
//! in practice) is written to a file of its own, `<id>.json` beside the
//! slots (see `record.rs`), and that process keeps its own file for the
//! rest of the manager's life; at load such a file wins over a slot.
//! Files of this kind are also what managers before the slot file wrote,
//! so a manager re-attaches to the processes of one of those too.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::files::{self, DirKind};
use super::record::{self, ProcessRecord, VERSION};

/// The size of a slot: a divisor of every page size, and room for a
/// record several times over (one is about 500 bytes).
pub const SLOT: usize = 1024;

/// The name of the slot file in the records' directory.
const FILE_NAME: &str = "slots";

/// What is known of one process's record.
#[derive(Debug, Clone, Copy, Default)]
struct Place {
    /// Its slot, once it has one (kept for the manager's life).
    slot: Option<u32>,
    /// The slot holds its record.
    live: bool,
    /// Its record is a file of its own.
    own_file: bool,
}

#[derive(Debug, Default)]
struct Table {
    places: HashMap<Box<str>, Place>,
    /// Slots that hold no record, to be given out.
    free: Vec<u32>,
    /// The first slot past the end of the file.
    end: u32,
    /// What was read at open and not yet taken.
    found: HashMap<Box<str>, io::Result<ProcessRecord>>,
}

/// The records of one state directory, open.
#[derive(Debug)]
pub struct Records {
    state_dir: PathBuf,
    file: File,
    table: Mutex<Table>,
}

impl Records {
    /// Opens the records of `state_dir` (creating the directory `0700` and
    /// the slot file) and reads every record there is.
    pub fn open(state_dir: &Path) -> io::Result<Records> {
        let dir = record::dir(state_dir);
        files::ensure_dir(&dir, DirKind::State).map_err(io::Error::other)?;
        let file = files::open(&dir.join(FILE_NAME), files::Access::ReadWrite)?.file;
        let mut bytes = Vec::new();
        (&file).read_to_end(&mut bytes)?;
        let mut table = Table::default();
        for (i, slot) in bytes.chunks(SLOT).enumerate() {
            let index = u32::try_from(i).map_err(io::Error::other)?;
            table.end = index + 1;
            match read_slot(slot) {
                Some(Ok(r)) if !table.places.contains_key(r.id.as_str()) => {
                    let id: Box<str> = r.id.as_str().into();
                    let place = Place {
                        slot: Some(index),
                        live: true,
                        own_file: false,
                    };
                    table.places.insert(id.clone(), place);
                    table.found.insert(id, Ok(r));
                }
                Some(Err(e)) => {
                    let id = legible_id(slot).unwrap_or("?");
                    tracing::warn!(process = %id, slot = index, error = %e,
                        "a damaged state record is ignored: the process is started afresh, and a copy an earlier manager left running is only found by its cgroup");
                    table.free.push(index);
                }
                // No record, one of another version, or a second one of
                // an id (never written so): given out again.
                _ => table.free.push(index),
            }
        }
        // Given out lowest first.
        table.free.reverse();
        for id in record::file_ids(state_dir) {
            let Some(found) = record::load_file(state_dir, &id).transpose() else {
                continue;
            };
            let id: Box<str> = id.into();
            table.places.entry(id.clone()).or_default().own_file = true;
            table.found.insert(id, found);
        }
        Ok(Records {
            state_dir: state_dir.to_path_buf(),
            file,
            table: Mutex::new(table),
        })
    }

    fn table(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The record of `id` read at open, taken (`None`: there was none, or
    /// one of another version). An error: a file of its own that cannot
    /// be read or parsed.
    pub fn take(&self, id: &str) -> Option<io::Result<ProcessRecord>> {
        self.table().found.remove(id)
    }

    /// Forgets what was read at open and not taken.
    pub fn forget_found(&self) {
        let mut table = self.table();
        table.found = HashMap::new();
    }

    /// Writes `record` over the last one of its process; with `sync`, it
    /// is on disk when this returns.
    pub fn save(&self, record: &ProcessRecord, sync: bool) -> io::Result<()> {
        let mut text = [b' '; SLOT];
        let fits = {
            let mut room = &mut text[..SLOT - 1];
            serde_json::to_writer(&mut room, record).is_ok()
        };
        text[SLOT - 1] = b'\n';
        let (slot, own_file) = {
            let mut table = self.table();
            let table = &mut *table;
            let place = table.places.entry(record.id.as_str().into()).or_default();
            if fits && !place.own_file {
                let slot = *place.slot.get_or_insert_with(|| {
                    table.free.pop().unwrap_or_else(|| {
                        table.end += 1;
                        table.end - 1
                    })
                });
                place.live = true;
                (Some(slot), false)
            } else {
                place.own_file = true;
                (place.slot.filter(|_| std::mem::take(&mut place.live)), true)
            }
        };
        if own_file {
            record.write_file(&self.state_dir, sync)?;
            // The slot's record is older than the file: cleared.
            return match slot {
                Some(slot) => self.clear(slot, sync),
                None => Ok(()),
            };
        }
        let Some(slot) = slot else { return Ok(()) };
        self.file.write_all_at(&text, offset(slot))?;
        if sync {
            self.file.sync_data()?;
        }
        Ok(())
    }

    /// Removes the record of `id` (a process stopped on purpose), and
    /// gives its slot out again (the file grows with the processes that
    /// run at once, not with every id a reload ever added).
    pub fn remove(&self, id: &str) -> io::Result<()> {
        let place = {
            let mut table = self.table();
            table.found.remove(id);
            table.places.remove(id)
        };
        let Some(place) = place else { return Ok(()) };
        if let Some(slot) = place.slot {
            if let Err(e) = self.clear(slot, false) {
                // Still its record: kept as it was.
                self.table().places.insert(id.into(), place);
                return Err(e);
            }
            self.table().free.push(slot);
        }
        if place.own_file {
            record::remove_file(&self.state_dir, id)?;
        }
        Ok(())
    }

    /// The ids that have a record (whatever the config says now).
    pub fn ids(&self) -> Vec<String> {
        let table = self.table();
        let mut ids: Vec<String> = table
            .places
            .iter()
            .filter(|(_, p)| p.live || p.own_file)
            .map(|(id, _)| id.to_string())
            .collect();
        ids.sort();
        ids
    }

    fn clear(&self, slot: u32, sync: bool) -> io::Result<()> {
        let mut blank = [b' '; SLOT];
        blank[SLOT - 1] = b'\n';
        self.file.write_all_at(&blank, offset(slot))?;
        if sync {
            self.file.sync_data()?;
        }
        Ok(())
    }
}

/// The id a damaged record still shows, for the warning.
fn legible_id(slot: &[u8]) -> Option<&str> {
    const KEY: &[u8] = b"\"id\":\"";
    let at = slot.windows(KEY.len()).position(|w| w == KEY)? + KEY.len();
    let len = slot[at..].iter().position(|&b| b == b'"')?;
    std::str::from_utf8(&slot[at..at + len]).ok()
}

fn offset(slot: u32) -> u64 {
    u64::from(slot) * SLOT as u64
}

/// The record a slot holds: `None` when it holds none, or one of another
/// version (ignored, never misread).
fn read_slot(slot: &[u8]) -> Option<io::Result<ProcessRecord>> {
    if slot.first() != Some(&b'{') {
        return None;
    }
    match serde_json::from_slice::<ProcessRecord>(slot) {
        Ok(r) if r.version == VERSION => Some(Ok(r)),
        Ok(_) => None,
        Err(e) => Some(Err(io::Error::new(io::ErrorKind::InvalidData, e))),
    }
}

#[cfg(test)]
#[path = "tests/slots.rs"]
mod tests;
