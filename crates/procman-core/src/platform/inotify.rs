//! One inotify instance on the async runtime, watching files through their
//! *directories*: the shared part of [`PidFileWatch`] and [`ConfigWatch`].
//!
//! A watch on a file holds its inode, so it misses what writers of whole
//! files do: write a new file and rename it over the old one, copy over,
//! delete and create again, or swap a symbolic link. A watch on the
//! directory hears all of these as events naming the file, and also hears a
//! file that does not exist yet being created. Whoever reads the events
//! filters them by name.
//!
//! Reading is cancel-safe: the only wait is for the descriptor to become
//! readable; the queued events are then all read and handed over at once,
//! with no await in between, so a read dropped by a `select!` loses none.
//!
//! [`PidFileWatch`]: super::pidfile::PidFileWatch
//! [`ConfigWatch`]: super::config_watch::ConfigWatch

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use rustix::fs::inotify::{self, CreateFlags, Event, WatchFlags};
use rustix::io::Errno;
use tokio::io::unix::AsyncFd;

/// An inotify descriptor registered with the runtime's reactor, and the
/// buffer its events are read into.
#[derive(Debug)]
pub(crate) struct Inotify {
    fd: AsyncFd<OwnedFd>,
    buf: Vec<MaybeUninit<u8>>,
}

impl Inotify {
    /// A new instance, watching nothing yet. Needs a tokio runtime.
    pub(crate) fn new() -> io::Result<Inotify> {
        let fd = inotify::init(CreateFlags::CLOEXEC | CreateFlags::NONBLOCK)?;
        let fd = super::readable_fd(fd).map_err(|(_, e)| e)?;
        Ok(Inotify {
            fd,
            // Room for many events of the longest name (16 + 256 bytes).
            buf: vec![MaybeUninit::uninit(); 8 * 1024],
        })
    }

    /// Watches the directory `dir` for every change of a name in it, and
    /// for its own removal or move. Returns the watch descriptor, which is
    /// the same for every path to one directory.
    pub(crate) fn watch_dir(&self, dir: &Path) -> io::Result<i32> {
        let events = WatchFlags::CREATE
            | WatchFlags::CLOSE_WRITE
            | WatchFlags::MODIFY
            | WatchFlags::MOVED_TO
            | WatchFlags::MOVED_FROM
            | WatchFlags::DELETE
            | WatchFlags::DELETE_SELF
            | WatchFlags::MOVE_SELF
            | WatchFlags::ONLYDIR;
        Ok(inotify::add_watch(self.fd.get_ref(), dir, events)?)
    }

    /// Drops the watch `wd`. One already gone (its directory was removed)
    /// is no error.
    pub(crate) fn unwatch(&self, wd: i32) {
        let _ = inotify::remove_watch(self.fd.get_ref(), wd);
    }

    /// Waits until events are queued, then reads every one of them, giving
    /// each to `each`. An overflow of the kernel's queue comes as an event
    /// with [`ReadFlags::QUEUE_OVERFLOW`](inotify::ReadFlags::QUEUE_OVERFLOW)
    /// and no watch.
    pub(crate) async fn read(&mut self, mut each: impl FnMut(&Event<'_>)) -> io::Result<()> {
        let mut guard = self.fd.readable().await?;
        let mut events = inotify::Reader::new(self.fd.get_ref().as_fd(), &mut self.buf);
        loop {
            match events.next() {
                Ok(event) => each(&event),
                Err(Errno::AGAIN) => break,
                Err(Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        guard.clear_ready();
        Ok(())
    }
}
