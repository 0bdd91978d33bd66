//! Putting a process's log back as its newest checkpoint left it, before
//! the spools' backlog is written again after a crash of the manager.
//!
//! Every write to the log is followed by a checkpoint, both under the
//! log's lock, so after a crash at most one write is not recorded: the
//! last one, made after the newest checkpoint (the highest `gen` over the
//! process's spools). Its bytes are still in a spool past that stream's
//! `done`, and will be written again; so they must go from the log. The
//! rule, with `(dev, ino, len)` the live file the newest checkpoint names:
//!
//! - **that file is still the live file**: it is cut to `len` if longer
//!   (never lengthened: a shorter file was cut by someone else, and is
//!   left so);
//! - **it is a rotated file `<path>.k`** (the unrecorded write filled it
//!   and rotated it away): it is cut to `len`, and the files that write
//!   made after it, `<path>.1` … `<path>.(k-1)` and the live file, are
//!   removed. Readers take rotated files oldest first, and a missing
//!   number is only a gap, so the lines stay in order; the next write
//!   opens a new live file, as if the rotation had come at `len`;
//! - **it is nowhere** (renamed by an external `logrotate` whose reopen
//!   request was taken by the unrecorded write, or deleted by a rotation
//!   with `max_files: 0`): nothing is touched, and the lines of that one
//!   write may appear twice.

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::checkpoint::FileId;
use super::rotate::rotated_paths;
use crate::state::files::{self, Access};

/// What [`repair`] did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Repaired {
    /// The file already ended where the checkpoint says.
    Nothing,
    /// `path` was cut from `from` to `to` bytes.
    Cut { path: PathBuf, from: u64, to: u64 },
    /// A rotated file was cut (`cut`, when it was longer) and the files
    /// made after it removed.
    Rotated {
        kept: PathBuf,
        cut: Option<(u64, u64)>,
        removed: Vec<PathBuf>,
    },
    /// The file the checkpoint names is gone; nothing was touched.
    NotFound,
}

/// Puts the log at `path` (rotated into `max_files` numbered files, when
/// it rotates) back as the checkpoint naming `last` left it.
pub(crate) fn repair(path: &Path, max_files: Option<u32>, last: FileId) -> io::Result<Repaired> {
    if is(path, last) {
        return Ok(match cut(path, last)? {
            Some((from, to)) => Repaired::Cut {
                path: path.to_path_buf(),
                from,
                to,
            },
            None => Repaired::Nothing,
        });
    }
    // Newest first: `.1`, `.2`, …
    let mut newer = vec![path.to_path_buf()];
    let numbered = rotated_paths(path, max_files.unwrap_or(0));
    for p in numbered.into_iter().rev() {
        if is(&p, last) {
            let cut = cut(&p, last)?;
            let mut removed = Vec::new();
            for n in newer {
                match std::fs::remove_file(&n) {
                    Ok(()) => removed.push(n),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(named(&n, e)),
                }
            }
            return Ok(Repaired::Rotated {
                kept: p,
                cut,
                removed,
            });
        }
        newer.push(p);
    }
    Ok(Repaired::NotFound)
}

/// Whether `path` is the file `id` names (a link is never followed).
fn is(path: &Path, id: FileId) -> bool {
    std::fs::symlink_metadata(path)
        .is_ok_and(|m| m.is_file() && m.dev() == id.dev && m.ino() == id.ino)
}

/// Cuts the file at `path` to `id.len` if it is longer, and says from
/// what size.
fn cut(path: &Path, id: FileId) -> io::Result<Option<(u64, u64)>> {
    let file = files::open(path, Access::ReadWrite)
        .map_err(|e| named(path, e))?
        .file;
    let meta = file.metadata().map_err(|e| named(path, e))?;
    // Checked again on the open file: the path may have changed since.
    if meta.dev() != id.dev || meta.ino() != id.ino || meta.len() <= id.len {
        return Ok(None);
    }
    file.set_len(id.len).map_err(|e| named(path, e))?;
    Ok(Some((meta.len(), id.len)))
}

fn named(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

#[cfg(test)]
#[path = "tests/repair.rs"]
mod tests;
