//! One process's log: where its records go, in which format, and what
//! could not be written.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use super::format::{self, Timestamp};
use super::paths::file_path;
use super::record::Origin;
use super::rotate::RotatingFile;
use super::targets::Targets;
use crate::config::{ProcessConfig, ProcessLogFormat};

/// What every process's log shares: the directory of the default files and
/// the aggregation targets.
#[derive(Debug, Clone)]
pub struct LogSetup {
    pub log_dir: PathBuf,
    pub targets: Arc<Targets>,
}

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("log directory {}: {source}", .path.display())]
    Directory {
        path: PathBuf,
        source: std::io::Error,
    },
    /// `source` names the path already (see `rotate::LogFileError`).
    #[error("{source}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Counters a process's log keeps, readable at any time.
#[derive(Debug, Default)]
pub struct LogCounters {
    /// Records that could not be written (a full disk, an I/O error).
    pub dropped_records: AtomicU64,
    /// Bytes of the process's output read from its pipes.
    pub bytes_read: AtomicU64,
    /// True while writes fail; a success clears it (and is logged once).
    failing: AtomicBool,
}

impl LogCounters {
    pub fn dropped(&self) -> u64 {
        self.dropped_records.load(Ordering::Relaxed)
    }
}

/// A process's log. Shared by the pumps of its two streams.
#[derive(Debug)]
pub(crate) struct ProcessLog {
    pub(crate) id: Arc<str>,
    pub(crate) format: ProcessLogFormat,
    pub(crate) max_line: usize,
    pub(crate) capture_stdout: bool,
    pub(crate) capture_stderr: bool,
    file: Option<(PathBuf, Mutex<RotatingFile>)>,
    rotates: bool,
    pub(crate) targets: Arc<Targets>,
    pub(crate) counters: Arc<LogCounters>,
}

impl ProcessLog {
    /// Opens (creating if needed) the process's log file. Fails, naming the
    /// path, when the directory or the file cannot be written.
    pub(crate) fn open(cfg: &ProcessConfig, setup: &LogSetup) -> Result<ProcessLog, LogError> {
        let file = match file_path(cfg, &setup.log_dir) {
            None => None,
            Some(path) => {
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).map_err(|source| LogError::Directory {
                        path: dir.to_path_buf(),
                        source,
                    })?;
                }
                let rotation = cfg
                    .logging
                    .rotation
                    .map(|r| (r.max_size_mb.saturating_mul(1024 * 1024), r.max_files));
                let f = RotatingFile::open(&path, rotation).map_err(|source| LogError::File {
                    path: path.clone(),
                    source,
                })?;
                Some((path, Mutex::new(f)))
            }
        };
        Ok(ProcessLog {
            id: cfg.id.as_str().into(),
            format: cfg.logging.format,
            max_line: cfg.logging.buffer_size,
            capture_stdout: cfg.logging.capture_stdout,
            capture_stderr: cfg.logging.capture_stderr,
            file,
            rotates: cfg.logging.rotation.is_some(),
            targets: setup.targets.clone(),
            counters: Arc::new(LogCounters::default()),
        })
    }

    /// Raw format and no rotation: the bytes can go to the file as read.
    pub(crate) fn raw_unrotated(&self) -> bool {
        self.format == ProcessLogFormat::Raw && !self.rotates
    }

    pub(crate) fn has_file(&self) -> bool {
        self.file.is_some()
    }

    /// Writes complete formatted records to the file, straight through to
    /// the OS. `records` is how many they are, for the dropped count.
    pub(crate) fn write_file(&self, bytes: &[u8], records: u64) {
        let Some((path, file)) = &self.file else {
            return;
        };
        if bytes.is_empty() {
            return;
        }
        let mut f = file.lock().unwrap_or_else(|p| p.into_inner());
        let result = f.write_records(bytes).and_then(|()| f.flush());
        drop(f);
        self.note_result(path, result.map_err(|e| e.to_string()), records);
    }

    fn note_result(&self, path: &Path, result: Result<(), String>, records: u64) {
        let c = &self.counters;
        match result {
            Ok(()) => {
                if c.failing.swap(false, Ordering::Relaxed) {
                    tracing::info!(process = %self.id, path = %path.display(),
                        dropped = c.dropped(), "log file writable again");
                }
            }
            Err(error) => {
                c.dropped_records.fetch_add(records, Ordering::Relaxed);
                if !c.failing.swap(true, Ordering::Relaxed) {
                    tracing::error!(process = %self.id, path = %path.display(), %error,
                        "cannot write the log file; counting the records lost until it works again");
                }
            }
        }
    }

    /// The separator at the start of each run, in the file and the targets.
    pub(crate) async fn run_started(&self, pid: u32, run: u32) {
        let ts = Timestamp::new(SystemTime::now());
        let origin = Origin {
            id: &self.id,
            pid,
            run,
            ts: SystemTime::now(),
        };
        let mut buf = Vec::with_capacity(128);
        match self.format {
            ProcessLogFormat::Plain => format::plain_separator(&mut buf, &ts, &origin),
            ProcessLogFormat::Json => format::json_separator(&mut buf, &ts, &origin),
            // Raw keeps exactly the child's bytes: no separator.
            ProcessLogFormat::Raw => {}
        }
        self.write_file(&buf, 1);
        self.targets.separator(&ts, &origin).await;
    }

    /// Flushes and fsyncs the file (at a stop, so that every line is on
    /// disk before the manager exits).
    pub(crate) fn sync(&self) {
        if let Some((path, file)) = &self.file {
            let mut f = file.lock().unwrap_or_else(|p| p.into_inner());
            if let Err(e) = f.sync() {
                tracing::warn!(process = %self.id, path = %path.display(), error = %e,
                    "cannot sync the log file");
            }
        }
    }
}
