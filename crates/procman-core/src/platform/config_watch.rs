//! Hearing that configuration files change (the config file and the
//! `env_file`s it names), for `procman run --watch-config`.
//!
//! Each file is watched through its directory (see `platform/inotify.rs`), so
//! that an editor's write-to-temp-then-rename, a `cp` over, a delete and
//! recreate, all come as events naming the file. When a path goes through
//! symbolic links (a Kubernetes ConfigMap mounts `config.yaml ->
//! ..data/config.yaml` with `..data -> ..2026_12_03_xx`), the name of each
//! link in its directory is listened for too, and so is the file the path
//! resolves to in its own directory; the links are resolved again after
//! every change, so a swap of `..data` is heard, and so are later writes
//! to the file it now leads to.
//!
//! Invariants and pitfalls:
//! - Event-driven: the only timer is the debounce. A change starts a batch;
//!   the batch is answered after `quiet` without a further change, or at
//!   the latest `10 × quiet` after its first change, so that a file
//!   rewritten forever is still reloaded.
//! - Watches are in place (links resolved again) before
//!   [`ConfigWatch::changed`] answers: a change made after the answer, the
//!   caller's reading of the files included, is heard by the next call.
//! - Cancel-safe: the changes heard live in the watch, not in the future,
//!   so a `changed` dropped by a `select!` loses none.
//! - A directory that is removed (or cannot be watched when the links are
//!   resolved again) is warned about once; the other files are still
//!   heard, and it is watched again at the next change heard or
//!   [`ConfigWatch::set_files`]. Nothing waits for it to reappear.
//! - An overflow of the kernel's event queue counts as a change of every
//!   file.

use std::ffi::OsString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use rustix::fs::inotify::ReadFlags;
use tokio::time::Instant;

use super::inotify::Inotify;

/// The most symbolic links followed resolving one path (the kernel's own
/// limit before `ELOOP`).
const MAX_LINKS: usize = 40;

/// A batch of changes is answered at the latest this many quiet times
/// after its first change.
const MAX_QUIETS: u32 = 10;

/// Watches a set of files (by their directories, so that an editor's
/// write-to-temp-then-rename, a `cp` over, a delete-and-recreate and a
/// Kubernetes ConfigMap's `..data` symlink swap are all heard).
#[derive(Debug)]
pub struct ConfigWatch {
    inotify: Inotify,
    quiet: Duration,
    /// The files, as given, without repeats.
    files: Vec<PathBuf>,
    /// Which of `files` changed since the last answer.
    pending: Vec<bool>,
    /// When the first and the last change of the pending batch were heard.
    batch: Option<(Instant, Instant)>,
    /// The names listened for.
    points: Vec<Point>,
    dirs: Vec<Dir>,
}

/// A name in a directory whose change is a change of `files[file]`: the
/// file's own name, a link met resolving its path, or the file it leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Point {
    file: usize,
    dir: PathBuf,
    name: OsString,
    /// The file's own directory, as given: it must be watchable at first.
    own: bool,
}

/// A directory holding points.
#[derive(Debug)]
struct Dir {
    path: PathBuf,
    /// Its watch; none while it cannot be watched.
    wd: Option<i32>,
    /// Whether that was warned about.
    warned: bool,
}

impl ConfigWatch {
    /// Watches `files`, answering a batch of changes after `quiet`
    /// without another. Needs a tokio runtime. Errors name the directory
    /// that cannot be watched.
    pub fn new(files: &[PathBuf], quiet: Duration) -> io::Result<ConfigWatch> {
        let mut watch = ConfigWatch {
            inotify: Inotify::new()?,
            quiet,
            files: Vec::new(),
            pending: Vec::new(),
            batch: None,
            points: Vec::new(),
            dirs: Vec::new(),
        };
        watch.set_files(files)?;
        Ok(watch)
    }

    /// Replaces the set of files (after a reload the `env_file`s may
    /// differ); directories no longer needed are unwatched.
    ///
    /// A change already heard of a file that stays in the set is still
    /// answered. On an error (naming the directory) the set is unchanged.
    pub fn set_files(&mut self, files: &[PathBuf]) -> io::Result<()> {
        let mut unique: Vec<PathBuf> = Vec::with_capacity(files.len());
        for file in files {
            if !unique.contains(file) {
                unique.push(file.clone());
            }
        }
        self.watch(points_of(&unique), true)?;
        let pending = unique
            .iter()
            .map(|f| {
                let at = self.files.iter().position(|g| g == f);
                at.is_some_and(|i| self.pending[i])
            })
            .collect();
        self.files = unique;
        self.pending = pending;
        if !self.pending.contains(&true) {
            self.batch = None;
        }
        Ok(())
    }

    /// Waits for a change of any watched file, then for `quiet` without
    /// further events (debounce; but never more than 10 x quiet after the
    /// first event, so a file rewritten forever still reloads), and returns
    /// the files that changed (deduplicated, in the order given).
    /// Cancel-safe in a `select!` (no event lost if dropped mid-wait).
    pub async fn changed(&mut self) -> io::Result<Vec<PathBuf>> {
        loop {
            match self.batch {
                None => self.hear().await?,
                Some((first, last)) => {
                    let end = (last + self.quiet).min(first + self.quiet * MAX_QUIETS);
                    // Checked first: events that never stop must not
                    // postpone the answer.
                    if Instant::now() >= end {
                        break;
                    }
                    if tokio::time::timeout_at(end, self.hear()).await.is_err() {
                        break;
                    }
                }
            }
        }
        self.batch = None;
        let changed = self
            .files
            .iter()
            .zip(&mut self.pending)
            .filter_map(|(file, pending)| std::mem::take(pending).then(|| file.clone()))
            .collect();
        Ok(changed)
    }

    /// Reads the events queued (waiting for one), and records which files
    /// they change. Cancel-safe: nothing is awaited after the read.
    async fn hear(&mut self) -> io::Result<()> {
        let ConfigWatch {
            inotify,
            pending,
            points,
            dirs,
            ..
        } = self;
        let mut heard = false;
        let mut moved = Vec::new();
        inotify
            .read(|event| {
                let flags = event.events();
                if flags.contains(ReadFlags::QUEUE_OVERFLOW) {
                    pending.fill(true);
                    heard = !pending.is_empty();
                    return;
                }
                let wd = event.wd();
                let gone = flags
                    .intersects(ReadFlags::DELETE_SELF | ReadFlags::MOVE_SELF | ReadFlags::IGNORED);
                let name = event.file_name().map(|n| n.to_bytes());
                // Two paths to one directory share a watch: look at them all.
                for dir in dirs.iter_mut().filter(|d| d.wd == Some(wd)) {
                    if gone {
                        // Its files are gone from their paths with it.
                        dir.wd = None;
                    }
                    for point in points.iter().filter(|p| p.dir == dir.path) {
                        if gone || name == Some(point.name.as_bytes()) {
                            pending[point.file] = true;
                            heard = true;
                        }
                    }
                }
                if flags.contains(ReadFlags::MOVE_SELF) {
                    moved.push(wd);
                }
            })
            .await?;
        // A moved directory is watched at its new path: not ours any more.
        for wd in moved {
            self.inotify.unwatch(wd);
        }
        if heard {
            let now = Instant::now();
            let first = self.batch.map_or(now, |(first, _)| first);
            self.batch = Some((first, now));
            // Links may lead elsewhere now, a directory may be back.
            self.watch(points_of(&self.files), false)?;
        }
        Ok(())
    }

    /// Listens for `points` from now on: watches their directories, and
    /// drops the watches no longer needed. `strict`: a file's own directory
    /// that cannot be watched is an error (and nothing changes); otherwise
    /// it is warned about, once.
    fn watch(&mut self, points: Vec<Point>, strict: bool) -> io::Result<()> {
        let mut dirs: Vec<Dir> = Vec::new();
        // The files' own directories first: one of them may be another's
        // link's directory, and its failure is the error.
        let (own, links): (Vec<&Point>, Vec<&Point>) = points.iter().partition(|p| p.own);
        for point in own.into_iter().chain(links) {
            if dirs.iter().any(|d| d.path == point.dir) {
                continue;
            }
            let before = self.dirs.iter().find(|d| d.path == point.dir);
            let warned = before.is_some_and(|d| d.warned);
            let (wd, warned) = match self.inotify.watch_dir(&point.dir) {
                Ok(wd) => (Some(wd), false),
                Err(e) if strict && point.own => {
                    self.unwatch_added(&dirs);
                    let dir = point.dir.display();
                    return Err(io::Error::new(
                        e.kind(),
                        format!("cannot watch directory {dir}: {e}"),
                    ));
                }
                Err(e) => {
                    if !warned {
                        tracing::warn!(dir = %point.dir.display(), error = %e,
                            "cannot watch the directory {} of a configuration file: changes in it \
                             are not heard until it is watched again, at the next change heard",
                            point.dir.display());
                    }
                    (None, true)
                }
            };
            dirs.push(Dir {
                path: point.dir.clone(),
                wd,
                warned,
            });
        }
        for old in self.dirs.iter().filter_map(|d| d.wd) {
            if !dirs.iter().any(|d| d.wd == Some(old)) {
                self.inotify.unwatch(old);
            }
        }
        self.dirs = dirs;
        self.points = points;
        Ok(())
    }

    /// Drops the watches in `added` that were not ours before.
    fn unwatch_added(&self, added: &[Dir]) {
        for wd in added.iter().filter_map(|d| d.wd) {
            if !self.dirs.iter().any(|d| d.wd == Some(wd)) {
                self.inotify.unwatch(wd);
            }
        }
    }
}

/// Where changes of `files` are heard.
fn points_of(files: &[PathBuf]) -> Vec<Point> {
    let mut points: Vec<Point> = Vec::new();
    for (file, path) in files.iter().enumerate() {
        // Relative to the current directory, as it was given.
        let path = std::path::absolute(path).unwrap_or_else(|_| path.clone());
        for (i, (dir, name)) in names_of(&path).into_iter().enumerate() {
            let point = Point {
                file,
                dir,
                name,
                own: i == 0,
            };
            if !points.contains(&point) {
                points.push(point);
            }
        }
    }
    points
}

/// The names whose change changes the file at the absolute `path`: its own
/// name in its directory first, then each symbolic link met resolving it
/// (as `realpath` does, component by component), then the file it leads
/// to. A name that does not exist ends no resolution: it may appear.
fn names_of(path: &Path) -> Vec<(PathBuf, OsString)> {
    let mut names: Vec<(PathBuf, OsString)> = Vec::new();
    let mut add = |at: &Path| {
        if let (Some(dir), Some(name)) = (at.parent(), at.file_name()) {
            let entry = (dir.to_path_buf(), name.to_os_string());
            if !names.contains(&entry) {
                names.push(entry);
            }
        }
    };
    add(path);
    let mut at = PathBuf::from("/");
    let mut rest = path.to_path_buf();
    let mut links = 0;
    loop {
        let mut components = rest.components();
        let Some(component) = components.next() else {
            break;
        };
        let tail = components.as_path().to_path_buf();
        match component {
            Component::Prefix(_) | Component::RootDir => at = PathBuf::from("/"),
            Component::CurDir => {}
            Component::ParentDir => {
                at.pop();
            }
            Component::Normal(name) => {
                let next = at.join(name);
                match std::fs::read_link(&next) {
                    Ok(target) if links < MAX_LINKS => {
                        links += 1;
                        add(&next);
                        // Relative to the link's directory, which `at` is.
                        rest = target.join(tail);
                        continue;
                    }
                    _ => at = next,
                }
            }
        }
        rest = tail;
    }
    add(&at);
    names
}

#[cfg(test)]
#[path = "tests/config_watch.rs"]
mod tests;
