//! Where a process's log file is: the one answer both the writer
//! ([`sink`](super::sink)) and the reader ([`reader`](super::reader)) use,
//! so that `procman logs` reads the files the manager writes.
//!
//! Small on purpose (below the usual 100 lines): it is the whole of a
//! concept that two sides share, and folding it into either would make the
//! other depend on it.

use std::path::{Path, PathBuf};

use crate::config::{Config, LogFile, ProcessConfig};
use crate::state::{self, StateError};

/// The directory of the default log files: the config's `log_dir`, else
/// `<state_dir>/logs` (the state directory as [`crate::state::dir`] finds
/// it for this config file).
pub fn log_dir(config: &Config) -> Result<PathBuf, StateError> {
    match &config.manager.log_dir {
        Some(dir) => Ok(dir.clone()),
        None => Ok(state::dir(config.manager.state_dir.as_deref(), &config.source)?.join("logs")),
    }
}

/// The path of a process's (live) log file: `<log_dir>/<id>.log` by
/// default, the configured path, or `None` when it has no file
/// (`file: false`).
pub fn file_path(cfg: &ProcessConfig, log_dir: &Path) -> Option<PathBuf> {
    match &cfg.logging.file {
        LogFile::Default => Some(log_dir.join(format!("{}.log", cfg.id))),
        LogFile::Path(p) => Some(p.clone()),
        LogFile::Off => None,
    }
}
