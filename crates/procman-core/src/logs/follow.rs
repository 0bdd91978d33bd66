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
mod tests {
    use std::fs::{self, OpenOptions};
    use std::io::Write;
    use std::sync::mpsc;
    use std::thread;
    use std::time::Duration;

    use super::*;
    use crate::config::ProcessLogFormat;
    use crate::logs::reader::{write_merged, Cursor, LogSet, Source, Style};

    const DEADLINE: Duration = Duration::from_secs(30);

    fn set(dir: &Path, id: &str) -> LogSet {
        LogSet {
            id: id.to_string(),
            path: dir.join(format!("{id}.log")),
            format: ProcessLogFormat::Plain,
        }
    }

    fn line(i: usize) -> String {
        format!("2026-11-30T07:37:15.{i:06}Z stdout line {i}\n")
    }

    fn append(path: &Path, bytes: &[u8]) {
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .expect("open for append");
        f.write_all(bytes).expect("append");
    }

    /// What the manager does: `.k` → `.k+1` from the oldest, then the live
    /// file → `.1` (the writer opens a new live file after).
    fn rotate(set: &LogSet) {
        let mut k = 1;
        while set.rotated(k).exists() {
            k += 1;
        }
        for j in (1..k).rev() {
            fs::rename(set.rotated(j), set.rotated(j + 1)).expect("shift");
        }
        fs::rename(&set.path, set.rotated(1)).expect("rotate");
    }

    /// Writes lines `from..to`, rotating every `every` lines and writing
    /// every third line in two halves (a reader may see half a record).
    fn write_rotating(set: &LogSet, from: usize, to: usize, every: usize) {
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&set.path)
            .expect("open");
        for i in from..to {
            if i % every == 0 {
                rotate(set);
                file = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&set.path)
                    .expect("reopen");
            }
            let l = line(i);
            if i % 3 == 0 {
                let (a, b) = l.as_bytes().split_at(l.len() / 2);
                file.write_all(a).expect("write");
                file.write_all(b).expect("write");
            } else {
                file.write_all(l.as_bytes()).expect("write");
            }
        }
    }

    /// Follows `paths` on a thread, `read` appending what is new to the
    /// output, until the output holds `want` bytes. `writer` starts once the
    /// first read is done (so after the watches are in place). Fails the
    /// test after `DEADLINE`.
    fn follow_until(
        paths: Vec<PathBuf>,
        want: usize,
        mut read: impl FnMut(&mut Vec<u8>) -> Result<(), ReadError> + Send + 'static,
        writer: impl FnOnce() + Send + 'static,
    ) -> Vec<u8> {
        let cancel = Cancel::new().expect("cancel token");
        let (done_tx, done) = mpsc::channel();
        let token = cancel.clone();
        let follower = thread::spawn(move || {
            let mut out = Vec::new();
            let mut writer = Some(writer);
            let mut writing = None;
            let ended = follow(&paths, &token, None, || {
                read(&mut out)?;
                if let Some(w) = writer.take() {
                    writing = Some(thread::spawn(w));
                }
                if out.len() >= want {
                    token.cancel();
                }
                Ok(())
            });
            let _ = done_tx.send(());
            if let Some(w) = writing {
                w.join().expect("writer");
            }
            (out, ended)
        });
        let in_time = done.recv_timeout(DEADLINE).is_ok();
        cancel.cancel();
        let (out, ended) = follower.join().expect("follower");
        assert_eq!(ended.expect("follow"), Ended::Cancelled);
        assert!(
            in_time,
            "follow saw {} of {want} bytes in {DEADLINE:?}",
            out.len()
        );
        out
    }

    #[test]
    fn follow_sees_appended_lines() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let s = set(dir.path(), "web");
        append(&s.path, (0..3).map(line).collect::<String>().as_bytes());
        let want: String = (2..10).map(line).collect();
        let mut cursor = Cursor::tail(&s, 1)?;
        let path = s.path.clone();
        let out = follow_until(
            vec![s.path.clone()],
            want.len(),
            move |out| cursor.copy_to(out).map(drop),
            move || (3..10).for_each(|i| append(&path, line(i).as_bytes())),
        );
        assert_eq!(String::from_utf8(out)?, want);
        Ok(())
    }

    #[test]
    fn follow_across_rotation_loses_and_repeats_nothing() -> anyhow::Result<()> {
        for round in 0..20 {
            let dir = tempfile::tempdir()?;
            let s = set(dir.path(), "web");
            append(&s.path, line(0).as_bytes());
            let want: String = (0..400).map(line).collect();
            let every = 5 + round % 7;

            // Bytes, as `procman logs ID -f` copies them.
            let mut cursor = Cursor::tail(&s, 0)?;
            let writing = s.clone();
            let out = follow_until(
                vec![s.path.clone()],
                want.len(),
                move |out| cursor.copy_to(out).map(drop),
                move || write_rotating(&writing, 1, 400, every),
            );
            assert_eq!(String::from_utf8(out)?, want, "round {round}, bytes");

            // Records, as `procman logs -f` merges them.
            let dir = tempfile::tempdir()?;
            let s = set(dir.path(), "web");
            append(&s.path, line(0).as_bytes());
            let mut sources = vec![Source::tail(&s, 0)?];
            let writing = s.clone();
            let out = follow_until(
                vec![s.path.clone()],
                want.len(),
                move |out| write_merged(&mut sources, Style::Stored, false, out),
                move || write_rotating(&writing, 1, 400, every),
            );
            assert_eq!(String::from_utf8(out)?, want, "round {round}, records");
        }
        Ok(())
    }

    #[test]
    fn follow_merges_two_growing_logs_line_by_line() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let (a, b) = (set(dir.path(), "a"), set(dir.path(), "b"));
        let mut sources = vec![Source::tail(&a, 0)?, Source::tail(&b, 0)?];
        let (wa, wb) = (a.clone(), b.clone());
        let want = 2 * (0..300).map(|i| line(i).len() + 4).sum::<usize>();
        let out = follow_until(
            vec![a.path.clone(), b.path.clone()],
            want,
            move |out| write_merged(&mut sources, Style::Prefixed, false, out),
            move || {
                let other = thread::spawn(move || write_rotating(&wb, 0, 300, 50));
                write_rotating(&wa, 0, 300, 70);
                other.join().expect("writer b");
            },
        );
        let out = String::from_utf8(out)?;
        for id in ["a", "b"] {
            let prefix = format!("{id} | ");
            let mine: String = out
                .lines()
                .filter_map(|l| l.strip_prefix(&prefix))
                .map(|l| format!("{l}\n"))
                .collect();
            assert_eq!(mine, (0..300).map(line).collect::<String>(), "process {id}");
        }
        Ok(())
    }

    #[test]
    fn follow_waits_for_a_log_whose_directory_does_not_exist_yet() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let s = set(&dir.path().join("state/logs"), "late");
        let mut cursor = Cursor::tail(&s, 50)?;
        let want: String = (0..20).map(line).collect();
        let writing = s.clone();
        let out = follow_until(
            vec![s.path.clone()],
            want.len(),
            move |out| cursor.copy_to(out).map(drop),
            move || {
                if let Some(parent) = writing.path.parent() {
                    fs::create_dir_all(parent).expect("mkdir");
                }
                append(&writing.path, line(0).as_bytes());
                write_rotating(&writing, 1, 20, 8);
            },
        );
        assert_eq!(String::from_utf8(out)?, want);
        Ok(())
    }

    #[test]
    fn follow_stops_on_cancel() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let s = set(dir.path(), "idle");
        append(&s.path, line(0).as_bytes());
        let cancel = Cancel::new()?;
        let (pumped_tx, pumped) = mpsc::channel();
        let (done_tx, done) = mpsc::channel();
        let token = cancel.clone();
        let follower = thread::spawn(move || {
            let mut cursor = Cursor::tail(&s, 0)?;
            let ended = follow(std::slice::from_ref(&s.path), &token, None, || {
                cursor.copy_to(&mut std::io::sink())?;
                let _ = pumped_tx.send(());
                Ok(())
            });
            let _ = done_tx.send(());
            ended
        });
        pumped.recv_timeout(DEADLINE)?;
        assert!(!cancel.is_cancelled());
        cancel.cancel();
        let stopped = done.recv_timeout(DEADLINE);
        cancel.cancel(); // idempotent
        let ended = follower
            .join()
            .map_err(|_| anyhow::anyhow!("follower panicked"))??;
        stopped?;
        assert_eq!(ended, Ended::Cancelled);
        Ok(())
    }

    #[test]
    fn follow_stops_when_the_reader_of_its_output_goes_away() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let s = set(dir.path(), "idle");
        let (read_end, write_end) = rustix::pipe::pipe()?;
        drop(read_end);
        let cancel = Cancel::new()?;
        let ended = follow(&[s.path], &cancel, Some(write_end.as_fd()), || Ok(()))?;
        assert_eq!(ended, Ended::HungUp);
        Ok(())
    }
}
