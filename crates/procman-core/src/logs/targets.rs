//! The global aggregation targets of `log_collection`: a file (plain or
//! JSON, rotated), the manager's stdout and stderr (each line prefixed with
//! the process id, coloured per process on a terminal).
//!
//! Each target is a writer thread behind a bounded channel: a slow target
//! (a terminal nobody scrolls, a full disk) slows the pumps that feed it
//! rather than growing memory, and never blocks the async runtime.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use tokio::sync::mpsc;

use super::format::{self, Timestamp};
use super::record::{Origin, Record};
use super::rotate::RotatingFile;
use super::sink::LogError;
use crate::config::{LogCollection, LogTarget, TargetFormat};

/// Batches in flight per target before the pumps wait.
const DEPTH: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    /// `<ts> <id> <stream> <line>`
    Plain,
    Json,
    /// `<id> | <line>`, the id coloured on a terminal.
    Prefixed {
        color: bool,
    },
}

#[derive(Debug)]
struct Target {
    kind: Kind,
    tx: mpsc::Sender<Vec<u8>>,
}

/// The running targets. Dropping every `Arc` of it closes the channels; the
/// writer threads then drain what is queued and end (see [`Targets::start`]).
#[derive(Debug, Default)]
pub struct Targets {
    list: Vec<Target>,
    /// Bytes a target could not write (closed stdout, full disk).
    pub dropped_bytes: Arc<AtomicU64>,
}

impl Targets {
    pub fn none() -> Targets {
        Targets::default()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Opens every configured target and starts its writer thread. Join
    /// the returned threads after the last `Arc<Targets>` is dropped to know
    /// that everything queued was written.
    pub fn start(cfg: &LogCollection) -> Result<(Arc<Targets>, Vec<JoinHandle<()>>), LogError> {
        let mut list = Vec::new();
        let mut writers: Vec<Box<dyn Write + Send>> = Vec::new();
        if cfg.enabled && cfg.aggregation_enabled {
            for t in &cfg.targets {
                let (kind, out): (Kind, Box<dyn Write + Send>) = match t {
                    LogTarget::File {
                        path,
                        format,
                        rotation,
                    } => {
                        let kind = match format {
                            TargetFormat::Json => Kind::Json,
                            TargetFormat::Plain => Kind::Plain,
                        };
                        (kind, Box::new(open_file(path, *rotation)?))
                    }
                    LogTarget::ManagerStdout { format } => (
                        kind_of(*format, std::io::stdout().is_terminal()),
                        Box::new(std::io::stdout()),
                    ),
                    LogTarget::ManagerStderr { format } => (
                        kind_of(*format, std::io::stderr().is_terminal()),
                        Box::new(std::io::stderr()),
                    ),
                };
                list.push(kind);
                writers.push(out);
            }
        }
        let dropped = Arc::new(AtomicU64::new(0));
        let mut targets = Vec::new();
        let mut threads = Vec::new();
        for (kind, mut out) in list.into_iter().zip(writers) {
            let (tx, mut rx) = mpsc::channel::<Vec<u8>>(DEPTH);
            targets.push(Target { kind, tx });
            // The thread owns only the receiver (holding the Targets would
            // keep the channels open forever) and the shared counter.
            let dropped_in = dropped.clone();
            let handle = std::thread::Builder::new()
                .name("procman-log-target".into())
                .spawn(move || {
                    let mut failing = false;
                    while let Some(bytes) = rx.blocking_recv() {
                        match out.write_all(&bytes).and_then(|()| out.flush()) {
                            Ok(()) => failing = false,
                            Err(e) => {
                                dropped_in.fetch_add(bytes.len() as u64, Ordering::Relaxed);
                                if !failing {
                                    tracing::error!(error = %e, "a log target cannot be written");
                                    failing = true;
                                }
                            }
                        }
                    }
                })
                .map_err(|source| LogError::Directory {
                    path: PathBuf::from("<log target thread>"),
                    source,
                })?;
            threads.push(handle);
        }
        let shared = Arc::new(Targets {
            list: targets,
            dropped_bytes: dropped,
        });
        Ok((shared, threads))
    }

    /// One empty buffer per target, for [`Targets::format_into`].
    pub(crate) fn buffers(&self) -> Vec<Vec<u8>> {
        self.list.iter().map(|_| Vec::new()).collect()
    }

    /// Formats one record for every target, into that target's buffer.
    pub(crate) fn format_into(
        &self,
        bufs: &mut [Vec<u8>],
        ts: &Timestamp,
        origin: &Origin<'_>,
        r: &Record<'_>,
    ) {
        for (t, buf) in self.list.iter().zip(bufs.iter_mut()) {
            match t.kind {
                Kind::Plain => aggregated_plain(buf, ts, origin, r),
                Kind::Json => format::json_line(buf, ts, origin, r),
                Kind::Prefixed { color } => format::prefixed_line(
                    buf,
                    origin,
                    r,
                    color.then(|| format::color_for(origin.id)),
                ),
            }
        }
    }

    /// Queues the buffers filled by [`Targets::format_into`]; waits while a
    /// target is [`DEPTH`] batches behind.
    pub(crate) async fn queue_all(&self, bufs: Vec<Vec<u8>>) {
        for (t, buf) in self.list.iter().zip(bufs) {
            self.queue(t, buf).await;
        }
    }

    /// The start-of-run separator, for the targets that carry one.
    pub(crate) async fn separator(&self, ts: &Timestamp, origin: &Origin<'_>) {
        for t in &self.list {
            let mut buf = Vec::new();
            match t.kind {
                Kind::Plain => {
                    buf.extend_from_slice(ts.as_bytes());
                    buf.push(b' ');
                    buf.extend_from_slice(origin.id.as_bytes());
                    buf.extend_from_slice(
                        format!(" ----- run {} pid {} -----\n", origin.run, origin.pid).as_bytes(),
                    );
                }
                Kind::Json => format::json_separator(&mut buf, ts, origin),
                Kind::Prefixed { .. } => continue,
            }
            self.queue(t, buf).await;
        }
    }

    async fn queue(&self, t: &Target, buf: Vec<u8>) {
        if buf.is_empty() {
            return;
        }
        let len = buf.len() as u64;
        if t.tx.send(buf).await.is_err() {
            self.dropped_bytes.fetch_add(len, Ordering::Relaxed);
        }
    }
}

fn kind_of(format: TargetFormat, terminal: bool) -> Kind {
    match format {
        TargetFormat::Json => Kind::Json,
        TargetFormat::Plain => Kind::Prefixed { color: terminal },
    }
}

fn open_file(
    path: &std::path::Path,
    rotation: Option<crate::config::Rotation>,
) -> Result<FileTarget, LogError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| LogError::Directory {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    let rotation = rotation.map(|r| (r.max_size_mb.saturating_mul(1024 * 1024), r.max_files));
    let file = RotatingFile::open(path, rotation).map_err(|source| LogError::File {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(FileTarget(file))
}

/// A rotating file as a `Write` of whole records (each batch a set of
/// complete lines, which is what the pumps send).
struct FileTarget(RotatingFile);

impl Write for FileTarget {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write_records(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// `<ts> <id> <stream> <line>` for the aggregated plain file.
fn aggregated_plain(buf: &mut Vec<u8>, ts: &Timestamp, origin: &Origin<'_>, r: &Record<'_>) {
    buf.extend_from_slice(ts.as_bytes());
    buf.push(b' ');
    buf.extend_from_slice(origin.id.as_bytes());
    buf.push(b' ');
    buf.extend_from_slice(r.stream.as_str().as_bytes());
    if r.continues {
        buf.push(b'+');
    }
    buf.push(b' ');
    buf.extend_from_slice(r.bytes);
    buf.push(b'\n');
}
