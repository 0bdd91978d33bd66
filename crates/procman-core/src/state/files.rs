//! The files and directories the manager creates, made the same way
//! everywhere: the state directory and the log spool directory `0700`,
//! log directories `0750`, log, lock and target files `0640`, spool files
//! `0600`, whatever the umask (the mode is set
//! explicitly after creation, because the umask can only take bits away).
//!
//! Invariants:
//! - A file is opened with `O_NOFOLLOW`: a symbolic link planted at a log
//!   or lock path is refused, never followed, so the manager (often root)
//!   cannot be made to append to or truncate a file chosen by someone else.
//!   It must also be a regular file (a fifo would block the opener).
//! - A directory we use must be owned by the user the manager runs as and
//!   writable by nobody else: otherwise another user could swap our files
//!   for links between two checks. Such a directory is refused with the fix
//!   in the message. A state directory we own that others can merely read
//!   or enter is tightened to `0700` (it holds the control socket and the
//!   API token); a log directory is left readable, since its files are
//!   `0640` anyway and a log shipper may need to list them.
//!
//! Only the last component is checked: the parents of a configured path
//! are the administrator's choice.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rustix::fs::{fchmod, fstat, FileType, Mode, OFlags};

/// Mode of the state directory.
pub const STATE_DIR_MODE: u32 = 0o700;
/// Mode of a log directory the manager creates.
pub const LOG_DIR_MODE: u32 = 0o750;
/// Mode of a log, lock or target file the manager creates.
pub const FILE_MODE: u32 = 0o640;
/// Mode of a file only the manager reads (the log spool's files).
pub const PRIVATE_FILE_MODE: u32 = 0o600;

/// Which kind of directory, for its mode and the messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DirKind {
    State,
    Log,
    /// `<state_dir>/spool`: output taken from pipes, not yet in the logs.
    Spool,
}

impl DirKind {
    fn mode(self) -> u32 {
        match self {
            DirKind::State | DirKind::Spool => STATE_DIR_MODE,
            DirKind::Log => LOG_DIR_MODE,
        }
    }
}

impl std::fmt::Display for DirKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DirKind::State => "state",
            DirKind::Log => "log",
            DirKind::Spool => "log spool",
        })
    }
}

/// A directory the manager cannot (or must not) use.
#[derive(Debug, thiserror::Error)]
pub enum DirError {
    #[error("cannot create {kind} directory {}: {source}", .path.display())]
    Create {
        kind: DirKind,
        path: PathBuf,
        source: io::Error,
    },
    #[error("{kind} directory {} is not a directory", .path.display())]
    NotDir { kind: DirKind, path: PathBuf },
    #[error("refusing {kind} directory owned by uid {owner} (procman runs as uid {me}): fix with `chown {me} {}` or choose another directory", .path.display())]
    Owner {
        kind: DirKind,
        path: PathBuf,
        owner: u32,
        me: u32,
    },
    #[error("refusing {kind} directory writable by group or others (mode {mode:03o}): fix with `chmod {fix:03o} {}`", .path.display())]
    Writable {
        kind: DirKind,
        path: PathBuf,
        mode: u32,
        fix: u32,
    },
    #[error("cannot set {kind} directory {} to mode {mode:03o}: {source}", .path.display())]
    Chmod {
        kind: DirKind,
        path: PathBuf,
        mode: u32,
        source: io::Error,
    },
}

/// Creates `path` (and its missing parents) as a `kind` directory, or
/// checks the one that is there: ours, not writable by others.
pub fn ensure_dir(path: &Path, kind: DirKind) -> Result<(), DirError> {
    let created = match std::fs::metadata(path) {
        Ok(_) => false,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(kind.mode())
                .create(path)
                .map_err(|source| DirError::Create {
                    kind,
                    path: path.to_path_buf(),
                    source,
                })?;
            true
        }
        Err(source) => {
            return Err(DirError::Create {
                kind,
                path: path.to_path_buf(),
                source,
            })
        }
    };
    let meta = std::fs::metadata(path).map_err(|source| DirError::Create {
        kind,
        path: path.to_path_buf(),
        source,
    })?;
    if !meta.is_dir() {
        return Err(DirError::NotDir {
            kind,
            path: path.to_path_buf(),
        });
    }
    let me = rustix::process::geteuid().as_raw();
    if meta.uid() != me {
        return Err(DirError::Owner {
            kind,
            path: path.to_path_buf(),
            owner: meta.uid(),
            me,
        });
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(DirError::Writable {
            kind,
            path: path.to_path_buf(),
            mode,
            fix: kind.mode(),
        });
    }
    // A new directory gets its mode whatever the umask; an old state
    // directory that others may read is tightened (see the module docs).
    let tighten = kind.mode() == STATE_DIR_MODE && mode & 0o077 != 0;
    if created || tighten {
        if tighten && !created {
            tracing::info!(path = %path.display(), mode = format!("{mode:03o}"),
                "{kind} directory readable by others; setting it to 700");
        }
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(kind.mode())).map_err(
            |source| DirError::Chmod {
                kind,
                path: path.to_path_buf(),
                mode: kind.mode(),
                source,
            },
        )?;
    }
    Ok(())
}

/// How to open a file with [`open`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Appending (log and target files).
    Append,
    /// Reading and writing at any offset (the lock file).
    ReadWrite,
}

/// An open file, and whether this call created it.
#[derive(Debug)]
pub struct Opened {
    pub file: File,
    pub created: bool,
}

/// Opens `path`, creating it with mode [`FILE_MODE`] (whatever the umask)
/// if it does not exist. Never follows a symbolic link and refuses
/// anything but a regular file, without blocking on a fifo. The error
/// keeps the `io::ErrorKind` of the cause; its text says what was refused
/// (callers add the path).
pub fn open(path: &Path, access: Access) -> io::Result<Opened> {
    open_with_mode(path, access, FILE_MODE)
}

/// [`open`], creating the file with `mode` instead of [`FILE_MODE`].
pub fn open_with_mode(path: &Path, access: Access, mode: u32) -> io::Result<Opened> {
    let options = |create: bool| {
        let mut o = OpenOptions::new();
        match access {
            Access::Append => o.append(true),
            Access::ReadWrite => o.read(true).write(true),
        };
        if create {
            o.create_new(true).mode(mode);
        }
        // O_NONBLOCK: opening a fifo for writing would wait for a reader.
        // It changes nothing for a regular file, and is cleared below.
        o.custom_flags((OFlags::NOFOLLOW | OFlags::NONBLOCK).bits() as i32);
        o
    };
    let (file, created) = match options(true).open(path) {
        Ok(f) => (f, true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            (options(false).open(path).map_err(refused_link)?, false)
        }
        Err(e) => return Err(refused_link(e)),
    };
    let stat = fstat(&file)?;
    if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile {
        return Err(not_regular());
    }
    rustix::fs::fcntl_setfl(&file, rustix::fs::fcntl_getfl(&file)? - OFlags::NONBLOCK)?;
    if created {
        fchmod(&file, Mode::from_raw_mode(mode))?;
    }
    Ok(Opened { file, created })
}

/// Opens an existing regular file for reading, never through a symbolic
/// link and without blocking on a fifo.
pub fn open_existing(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags((OFlags::NOFOLLOW | OFlags::NONBLOCK).bits() as i32)
        .open(path)
        .map_err(refused_link)?;
    let stat = fstat(&file)?;
    if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile {
        return Err(not_regular());
    }
    Ok(file)
}

/// Says what was refused: `ELOOP` from `O_NOFOLLOW` means the last
/// component is a symbolic link (not "too many levels of symbolic links"),
/// and `ENXIO` a fifo without a reader or a device without its driver.
fn refused_link(e: io::Error) -> io::Error {
    match e.raw_os_error() {
        Some(libc::ELOOP) => io::Error::new(
            io::ErrorKind::InvalidInput,
            "a symbolic link; refusing to follow it",
        ),
        Some(libc::ENXIO) => not_regular(),
        _ => e,
    }
}

fn not_regular() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        "not a regular file; refusing to use it",
    )
}

#[cfg(test)]
#[path = "tests/files.rs"]
mod tests;
