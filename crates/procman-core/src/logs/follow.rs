//! Following log files as they grow: wait until one of them changes, then
//! let the caller read (with a [`Cursor`](super::reader::Cursor) or
//! [`Source`](super::reader::Source)), until cancelled.
//!
//! Waiting is event-driven: inotify on the *directories* of the files, so
//! that appends, renames (rotation) and newly created files all wake us,
//! and a log whose file, or even directory, does not exist yet is picked up
//! when it appears (the nearest existing ancestor is watched meanwhile).
//! There is no timer: an idle log costs nothing.
//!
//! Invariants and pitfalls:
//! - Nothing is missed between a read and the wait after it: the watches
//!   are in place before each read, and inotify queues every change made
//!   after that, so a change during the read wakes the next wait at once.
//! - A wake-up reads everything there is (the queue of events is drained
//!   first), so a burst of appends costs one read pass, not one per event.
//! - Events of other files in the same directory are ignored by name.
//! - Linux only (inotify), like the rest of the engine today; a kqueue or
//!   `ReadDirectoryChangesW` version would export the same [`follow`].

use std::ffi::OsString;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use rustix::fs::inotify::{self, CreateFlags, ReadFlags, WatchFlags};
use rustix::io::Errno;

use super::reader::ReadError;

/// A cloneable "stop following" signal, safe to trigger from any thread.
///
/// It is a pipe nobody reads: [`Cancel::cancel`] writes a byte, and from
/// then on its read end is readable, which wakes the wait in [`follow`].
#[derive(Debug, Clone)]
pub struct Cancel(Arc<CancelPipe>);

#[derive(Debug)]
struct CancelPipe {
    read: OwnedFd,
    write: OwnedFd,
    done: AtomicBool,
}

impl Cancel {
    pub fn new() -> io::Result<Cancel> {
        let (read, write) = rustix::pipe::pipe_with(
            rustix::pipe::PipeFlags::CLOEXEC | rustix::pipe::PipeFlags::NONBLOCK,
        )?;
        Ok(Cancel(Arc::new(CancelPipe {
            read,
            write,
            done: AtomicBool::new(false),
        })))
    }

    /// Stops every [`follow`] given this token (or a clone), now or later.
    pub fn cancel(&self) {
        if !self.0.done.swap(true, Ordering::SeqCst) {
            // Cannot fail but for a full pipe, and one byte never fills it.
            let _ = rustix::io::write(&self.0.write, &[1]);
        }
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.done.load(Ordering::SeqCst)
    }
}

/// Why [`follow`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// [`Cancel::cancel`] was called.
    Cancelled,
    /// The `hangup` descriptor reported an error or a hang-up: the reader
    /// of our output has gone.
    HungUp,
}

/// Calls `pump` once, then again each time one of the log files at `paths`
/// (or a rotated file of theirs) changes or appears, until `cancel` is
/// triggered or `hangup` (typically stdout) reports that its reader is
/// gone. `pump` reads and writes whatever is new; its error ends the
/// follow (a broken pipe included: see [`ReadError::is_broken_pipe`]).
pub fn follow(
    paths: &[PathBuf],
    cancel: &Cancel,
    hangup: Option<BorrowedFd<'_>>,
    mut pump: impl FnMut() -> Result<(), ReadError>,
) -> Result<Ended, ReadError> {
    let mut watcher = Watcher::new(paths)?;
    loop {
        watcher.refresh()?;
        pump()?;
        loop {
            match watcher.wait(cancel, hangup)? {
                Wake::Cancelled => return Ok(Ended::Cancelled),
                Wake::HungUp => return Ok(Ended::HungUp),
                Wake::Changed => break,
                Wake::Unrelated => {}
            }
        }
    }
}

enum Wake {
    Cancelled,
    HungUp,
    /// A file we follow (or a directory we wait for) changed.
    Changed,
    /// Only other files changed.
    Unrelated,
}

/// One directory holding followed files.
struct Dir {
    path: PathBuf,
    /// The file names followed in it; `<name>.N` are theirs too.
    names: Vec<OsString>,
    /// Its watch, once it exists.
    wd: Option<i32>,
}

struct Watcher {
    fd: OwnedFd,
    dirs: Vec<Dir>,
    /// Watches on ancestors of directories that do not exist yet.
    ancestors: Vec<i32>,
    buf: Vec<MaybeUninit<u8>>,
}

fn dir_events() -> WatchFlags {
    WatchFlags::MODIFY
        | WatchFlags::CREATE
        | WatchFlags::MOVED_FROM
        | WatchFlags::MOVED_TO
        | WatchFlags::DELETE
        | WatchFlags::DELETE_SELF
        | WatchFlags::MOVE_SELF
        | WatchFlags::ONLYDIR
        // An ancestor watch on the same directory must not narrow it.
        | WatchFlags::MASK_ADD
}

fn watch_err(path: &Path, e: Errno) -> ReadError {
    ReadError::Watch {
        path: path.to_path_buf(),
        source: e.into(),
    }
}

impl Watcher {
    fn new(paths: &[PathBuf]) -> Result<Watcher, ReadError> {
        let fd = inotify::init(CreateFlags::CLOEXEC | CreateFlags::NONBLOCK)
            .map_err(|e| watch_err(Path::new("(inotify)"), e))?;
        let mut dirs: Vec<Dir> = Vec::new();
        for path in paths {
            let dir = match path.parent() {
                Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                _ => PathBuf::from("."),
            };
            let name = path.file_name().unwrap_or_default().to_os_string();
            match dirs.iter_mut().find(|d| d.path == dir) {
                Some(d) => d.names.push(name),
                None => dirs.push(Dir {
                    path: dir,
                    names: vec![name],
                    wd: None,
                }),
            }
        }
        Ok(Watcher {
            fd,
            dirs,
            ancestors: Vec::new(),
            // Room for many events of the longest name (16 + 256 bytes).
            buf: vec![MaybeUninit::uninit(); 16 * 1024],
        })
    }

    /// Watches every directory that exists now; for one that does not, the
    /// nearest ancestor that does, to learn when it appears.
    fn refresh(&mut self) -> Result<(), ReadError> {
        for dir in self.dirs.iter_mut().filter(|d| d.wd.is_none()) {
            let mut watched_ancestor: Option<PathBuf> = None;
            loop {
                match inotify::add_watch(&self.fd, &dir.path, dir_events()) {
                    Ok(wd) => {
                        dir.wd = Some(wd);
                        break;
                    }
                    Err(Errno::NOENT | Errno::NOTDIR) => {}
                    Err(e) => return Err(watch_err(&dir.path, e)),
                }
                let Some(ancestor) = existing_ancestor(&dir.path) else {
                    break;
                };
                // Watched once already and still the nearest: anything
                // created below it from now on wakes us.
                if watched_ancestor.as_ref() == Some(&ancestor) {
                    break;
                }
                let flags = WatchFlags::CREATE
                    | WatchFlags::MOVED_TO
                    | WatchFlags::ONLYDIR
                    | WatchFlags::MASK_ADD;
                let wd = inotify::add_watch(&self.fd, &ancestor, flags)
                    .map_err(|e| watch_err(&ancestor, e))?;
                if !self.ancestors.contains(&wd) {
                    self.ancestors.push(wd);
                }
                // Look again: the directory (or a level of it) may have
                // appeared before the watch was in place.
                watched_ancestor = Some(ancestor);
            }
        }
        if self.dirs.iter().all(|d| d.wd.is_some()) {
            for wd in self.ancestors.drain(..) {
                if !self.dirs.iter().any(|d| d.wd == Some(wd)) {
                    // Gone already if the ancestor was removed.
                    let _ = inotify::remove_watch(&self.fd, wd);
                }
            }
        }
        Ok(())
    }

    fn wait(&mut self, cancel: &Cancel, hangup: Option<BorrowedFd<'_>>) -> Result<Wake, ReadError> {
        let mut fds = [
            pollfd(self.fd.as_raw_fd(), libc::POLLIN),
            pollfd(cancel.0.read.as_raw_fd(), libc::POLLIN),
            // Errors and hang-ups are always reported; a negative fd is skipped.
            pollfd(hangup.map_or(-1, |fd| fd.as_raw_fd()), 0),
        ];
        loop {
            // SAFETY: `fds` is an initialised array of `pollfd` that lives
            // across the call, and its exact length is passed with it.
            let rc = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) };
            if rc >= 0 {
                break;
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(ReadError::Watch {
                    path: PathBuf::from("(poll)"),
                    source: e,
                });
            }
        }
        if fds[1].revents != 0 {
            return Ok(Wake::Cancelled);
        }
        // POLLNVAL: stdout was closed before we started.
        if fds[2].revents & (libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) != 0 {
            return Ok(Wake::HungUp);
        }
        if fds[0].revents == 0 {
            return Ok(Wake::Unrelated);
        }
        self.drain_events()
    }

    /// Reads every queued event; tells whether one concerns us.
    fn drain_events(&mut self) -> Result<Wake, ReadError> {
        let Watcher { fd, dirs, buf, .. } = self;
        let mut changed = false;
        let mut moved = Vec::new();
        let mut events = inotify::Reader::new(fd.as_fd(), buf);
        loop {
            let event = match events.next() {
                Ok(event) => event,
                Err(Errno::AGAIN) => break,
                Err(Errno::INTR) => continue,
                Err(e) => return Err(watch_err(Path::new("(inotify)"), e)),
            };
            let flags = event.events();
            let gone = flags
                .intersects(ReadFlags::DELETE_SELF | ReadFlags::MOVE_SELF | ReadFlags::IGNORED);
            let name = event.file_name().map(|n| n.to_bytes());
            // Two paths to one directory share a watch: look at them all.
            let mut ours = false;
            for dir in dirs.iter_mut().filter(|d| d.wd == Some(event.wd())) {
                ours = true;
                if gone {
                    // The directory went away: watch its path again.
                    dir.wd = None;
                    changed = true;
                } else if let Some(name) = name {
                    changed |= dir.names.iter().any(|n| name.starts_with(n.as_bytes()));
                }
            }
            if gone && flags.contains(ReadFlags::MOVE_SELF) {
                moved.push(event.wd());
            }
            // Not a directory of ours: an ancestor (a directory we wait for
            // may exist now), a watch already dropped, or an overflow.
            changed |= !ours;
        }
        for wd in moved {
            let _ = inotify::remove_watch(&self.fd, wd);
        }
        Ok(if changed {
            Wake::Changed
        } else {
            Wake::Unrelated
        })
    }
}

fn pollfd(fd: i32, events: libc::c_short) -> libc::pollfd {
    libc::pollfd {
        fd,
        events,
        revents: 0,
    }
}

/// The nearest ancestor of `path` that is a directory.
fn existing_ancestor(path: &Path) -> Option<PathBuf> {
    let mut at = path.parent();
    while let Some(p) = at {
        if p.as_os_str().is_empty() {
            // The top of a relative path.
            return Path::new(".").is_dir().then(|| PathBuf::from("."));
        }
        if p.is_dir() {
            return Some(p.to_path_buf());
        }
        at = p.parent();
    }
    None
}

#[cfg(test)]
#[path = "tests/follow.rs"]
mod tests;
