//! One writer per log file: each process's own file (`logging.file`, or
//! `<log_dir>/<id>.log`) and each aggregation target of type `file` must be
//! a file of its own. Two writers of one file interleave their records
//! with no order between them, and each rotates the file under the other.
//!
//! Paths are compared absolute and normalised (`.` and `..` resolved by
//! their text, as the loader resolves relative paths against the config
//! file's directory); a symbolic link that makes two paths one file is not
//! seen, since nothing here touches the file system.

use std::collections::{HashMap, HashSet};
use std::path::{Component, Path, PathBuf};

use super::decode::Decoder;
use super::error::{cut, Problem};
use super::node::{Item, Pos};
use super::schema::{Config, LogFile, LogTarget};

/// Where each writer is named in the file, aligned with the config's
/// processes and targets.
pub(super) struct Writers<'a, 'n> {
    /// One per process: its entry in `managed_processes`.
    pub items: &'a [Item<'n>],
    /// One per process: where its id is written, if it has a usable one.
    pub ids_at: &'a [Option<(Pos, String)>],
    /// One per target: its `path` value, for a `file` target.
    pub targets: &'a [Option<Item<'n>>],
}

/// One writer of one file.
struct Writer {
    file: PathBuf,
    /// How a message names it: "process `web`".
    name: String,
    pos: Pos,
    path: String,
}

pub(super) fn check(d: &mut Decoder<'_>, config: &Config, at: &Writers<'_, '_>) {
    let mut writers = processes(config, at);
    if config.log_collection.enabled && config.log_collection.aggregation_enabled {
        writers.extend(targets(config, at));
    }
    // The first writer in the file keeps the file; each later one is the
    // error, naming the first.
    writers.sort_by_key(|w| (w.pos.line, w.pos.column));
    let mut first: HashMap<&Path, &Writer> = HashMap::new();
    for w in &writers {
        match first.get(w.file.as_path()) {
            Some(owner) => {
                let message = format!(
                    "writes the same log file as {} (line {}): {}",
                    owner.name,
                    owner.pos.line,
                    cut(&w.file.to_string_lossy())
                );
                d.report(w.pos, &w.path, Problem::Invalid(message));
            }
            None => {
                first.insert(&w.file, w);
            }
        }
    }
}

fn processes(config: &Config, at: &Writers<'_, '_>) -> Vec<Writer> {
    // The default files are `<log_dir>/<id>.log`. Without `log_dir` or
    // `state_dir` in the file, the directory is only known when a manager
    // runs (it depends on its environment and user, see `state::dir`), so
    // the default files are left out: they cannot meet one another (ids
    // are unique) and whether they meet an explicit path is not known here.
    let log_dir = config.manager.log_dir.as_deref().map(normal).or_else(|| {
        config
            .manager
            .state_dir
            .as_ref()
            .map(|s| normal(&s.join("logs")))
    });
    let mut ids = HashSet::new();
    let mut writers = Vec::new();
    for (n, process) in config.processes.iter().enumerate() {
        let name = format!("process `{}`", cut(&process.id));
        match &process.logging.file {
            LogFile::Off => {}
            LogFile::Path(file) => {
                let Some(item) = at.items.get(n).and_then(|i| i.at(&LOGGING_FILE)) else {
                    continue;
                };
                writers.push(Writer {
                    file: normal(file),
                    name,
                    pos: item.pos(),
                    path: item.path,
                });
            }
            LogFile::Default => {
                let (Some(dir), Some(Some((pos, path)))) = (&log_dir, at.ids_at.get(n)) else {
                    continue;
                };
                // A repeated id is reported as such, not also as a file.
                if !ids.insert(process.id.as_str()) {
                    continue;
                }
                // A well-formed id has no `/` or `..` to resolve (and a
                // malformed one is an error already).
                writers.push(Writer {
                    file: dir.join(format!("{}.log", process.id)),
                    name,
                    pos: *pos,
                    path: path.clone(),
                });
            }
        }
    }
    writers
}

const LOGGING_FILE: [&str; 3] = ["management", "logging", "file"];

fn targets(config: &Config, at: &Writers<'_, '_>) -> Vec<Writer> {
    let mut writers = Vec::new();
    for (target, item) in config.log_collection.targets.iter().zip(at.targets) {
        if let (LogTarget::File { path, .. }, Some(item)) = (target, item) {
            writers.push(Writer {
                file: normal(path),
                name: format!("log target `{}`", parent_of(&item.path)),
                pos: item.pos(),
                path: item.path.clone(),
            });
        }
    }
    writers
}

/// `a.b[0]` for the key path `a.b[0].path`.
fn parent_of(path: &str) -> &str {
    path.rsplit_once('.').map_or(path, |(parent, _)| parent)
}

/// `path` with `.` and `..` resolved by their text (`..` at the root stays
/// at the root, as the kernel does).
pub(super) fn normal(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                if out.file_name().is_some() {
                    out.pop();
                } else if !out.has_root() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}
