//! One manager per state directory: an exclusive `flock` on
//! `procman.lock`, which holds the owner's pid for the error message.
//!
//! The lock file is truncated to write our pid, so it is first checked to
//! be a regular file that we own, opened without following a link: a link
//! planted there must never make the manager truncate its target.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use rustix::fs::{flock, FlockOperation};

use super::files::{self, Access, DirError, DirKind};

/// What can go wrong with the state directory and its lock.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot choose a state directory: HOME is not set; set process_manager.state_dir or PROCMAN_STATE_DIR")]
    NoHome,
    #[error(transparent)]
    Dir(#[from] DirError),
    #[error("cannot open lock file {}: {source}", .path.display())]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("refusing lock file {} owned by uid {owner} (procman runs as uid {me})", .path.display())]
    NotOurs { path: PathBuf, owner: u32, me: u32 },
    #[error("another procman (pid {pid}) is already running with state directory {}", .dir.display())]
    Held { dir: PathBuf, pid: String },
}

/// The name this error had when the lock was all it covered.
pub type LockError = StateError;

/// Held for as long as the manager runs; released on drop (and by the
/// kernel if the manager dies).
#[derive(Debug)]
pub struct StateLock {
    _file: File,
    path: PathBuf,
}

impl StateLock {
    /// Creates (or checks, see [`files::ensure_dir`]) the state directory
    /// and takes its lock.
    pub fn acquire(dir: &Path) -> Result<StateLock, StateError> {
        files::ensure_dir(dir, DirKind::State)?;
        let path = dir.join("procman.lock");
        let open_err = |source| StateError::Open {
            path: path.clone(),
            source,
        };
        let mut file = files::open(&path, Access::ReadWrite)
            .map_err(open_err)?
            .file;
        let owner = file.metadata().map_err(open_err)?.uid();
        let me = rustix::process::geteuid().as_raw();
        if owner != me {
            return Err(StateError::NotOurs { path, owner, me });
        }
        if flock(&file, FlockOperation::NonBlockingLockExclusive).is_err() {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            let pid = pid.trim();
            return Err(StateError::Held {
                dir: dir.to_path_buf(),
                pid: if pid.is_empty() {
                    "unknown".into()
                } else {
                    pid.into()
                },
            });
        }
        file.set_len(0).map_err(open_err)?;
        file.rewind().map_err(open_err)?;
        writeln!(file, "{}", std::process::id()).map_err(open_err)?;
        Ok(StateLock { _file: file, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_names_the_first_holder() {
        let dir = tempfile::tempdir().unwrap();
        let first = StateLock::acquire(dir.path()).unwrap();
        let err = StateLock::acquire(dir.path()).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("pid {}", std::process::id())),
            "{msg}"
        );
        drop(first);
        StateLock::acquire(dir.path()).expect("free again after drop");
    }

    #[test]
    fn a_link_at_the_lock_path_is_refused_and_its_target_kept() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious\n").unwrap();
        let state = dir.path().join("state");
        std::fs::create_dir(&state).unwrap();
        std::os::unix::fs::symlink(&victim, state.join("procman.lock")).unwrap();
        let err = StateLock::acquire(&state).unwrap_err().to_string();
        assert!(
            err.contains("procman.lock") && err.contains("symbolic link"),
            "{err}"
        );
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    }
}
