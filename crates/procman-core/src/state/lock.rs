//! One manager per state directory: an exclusive `flock` on
//! `procman.lock`, which holds the owner's pid for the error message.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use rustix::fs::{flock, FlockOperation};

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("cannot create state directory {}: {source}", .path.display())]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open lock file {}: {source}", .path.display())]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("another procman (pid {pid}) is already running with state directory {}", .dir.display())]
    Held { dir: PathBuf, pid: String },
}

/// Held for as long as the manager runs; released on drop (and by the
/// kernel if the manager dies).
#[derive(Debug)]
pub struct StateLock {
    _file: File,
    path: PathBuf,
}

impl StateLock {
    pub fn acquire(dir: &Path) -> Result<StateLock, LockError> {
        std::fs::create_dir_all(dir).map_err(|source| LockError::CreateDir {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = dir.join("procman.lock");
        let open_err = |source| LockError::Open {
            path: path.clone(),
            source,
        };
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(open_err)?;
        if flock(&file, FlockOperation::NonBlockingLockExclusive).is_err() {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            let pid = pid.trim();
            return Err(LockError::Held {
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
}
