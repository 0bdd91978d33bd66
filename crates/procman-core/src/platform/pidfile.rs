//! Pid files of processes procman did not start: reading one, and hearing
//! when it changes.
//!
//! The watch is inotify on the file's *directory*, not on the file: a
//! daemon that writes a new file and renames it over the old one (the
//! atomic way), or deletes and creates it, replaces the inode a watch on
//! the file would hold, and a file that does not exist yet has no inode to
//! watch at all. Events for other names in the directory are skipped.
//! Nothing is polled: an unchanged pid file costs nothing.

use std::ffi::OsString;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::inotify::ReadFlags;

use super::inotify::Inotify;
use crate::config::cut;

/// The most of a pid file that is read: a pid is at most 10 digits.
const MAX_READ: u64 = 256;

/// The pid `path` holds (its first line, blanks around it ignored), or why
/// there is none, worded for the process's diagnostics.
pub fn read(path: &Path) -> Result<u32, String> {
    let shown = path.display();
    let mut text = Vec::new();
    let read = std::fs::File::open(path).and_then(|f| f.take(MAX_READ).read_to_end(&mut text));
    match read {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(format!("pid file {shown} does not exist"))
        }
        Err(e) => return Err(format!("cannot read pid file {shown}: {e}")),
    }
    parse(&text).map_err(|what| format!("pid file {shown} {what}"))
}

/// The pid in a pid file's bytes, or what is wrong with them (a fragment
/// that follows the file's name).
pub(crate) fn parse(bytes: &[u8]) -> Result<u32, String> {
    let text = String::from_utf8_lossy(bytes);
    let line = text.lines().next().unwrap_or("").trim();
    if line.is_empty() {
        return Err("is empty".to_string());
    }
    match line.parse::<u32>() {
        Ok(pid) if pid > 0 => Ok(pid),
        _ => Err(format!("holds `{}`, not a pid", cut(line))),
    }
}

/// What [`PidFileWatch::changed`] heard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileEvent {
    /// The file was created, written, replaced or removed (or the kernel's
    /// event queue overflowed, so it may have been).
    Changed,
    /// The directory itself was removed or moved: the watch is dead.
    DirectoryGone,
}

/// Hears changes of one pid file through an inotify watch on its directory.
#[derive(Debug)]
pub struct PidFileWatch {
    inotify: Inotify,
    name: OsString,
}

impl PidFileWatch {
    /// Watches the directory of `file`; an error when it does not exist
    /// (yet) or cannot be watched. Needs a tokio runtime.
    pub fn new(file: &Path) -> io::Result<PidFileWatch> {
        let dir = match file.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let name = file
            .file_name()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?
            .to_os_string();
        let inotify = Inotify::new()?;
        inotify.watch_dir(dir)?;
        Ok(PidFileWatch { inotify, name })
    }

    /// Waits until an event concerns the file (or its directory). Every
    /// queued event is read at once, so a burst of writes wakes this once
    /// per read; events only become an answer after they are all read, so
    /// dropping the wait (another branch of a `select!` won) loses none.
    pub async fn changed(&mut self) -> io::Result<FileEvent> {
        loop {
            let mut heard = None;
            let name = self.name.as_bytes();
            self.inotify
                .read(|event| {
                    let flags = event.events();
                    if flags.intersects(
                        ReadFlags::DELETE_SELF | ReadFlags::MOVE_SELF | ReadFlags::IGNORED,
                    ) {
                        heard = Some(FileEvent::DirectoryGone);
                    } else if flags.contains(ReadFlags::QUEUE_OVERFLOW)
                        || event.file_name().map(|n| n.to_bytes()) == Some(name)
                    {
                        heard = heard.or(Some(FileEvent::Changed));
                    }
                })
                .await?;
            if let Some(event) = heard {
                return Ok(event);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_pid_file_holds_one_positive_pid_on_its_first_line() {
        assert_eq!(parse(b"4242\n"), Ok(4242));
        assert_eq!(parse(b"  17  \nport 80\n"), Ok(17));
        assert_eq!(parse(b""), Err("is empty".to_string()));
        assert_eq!(parse(b"\n\n"), Err("is empty".to_string()));
        assert_eq!(parse(b"0\n"), Err("holds `0`, not a pid".to_string()));
        assert_eq!(parse(b"-5"), Err("holds `-5`, not a pid".to_string()));
        assert_eq!(
            parse(b"nginx 12\n"),
            Err("holds `nginx 12`, not a pid".to_string())
        );
        assert_eq!(
            parse(b"99999999999"),
            Err("holds `99999999999`, not a pid".to_string())
        );
    }

    #[test]
    fn a_missing_file_is_said_plainly() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("x.pid");
        let err = read(&file).expect_err("missing");
        assert!(err.ends_with("x.pid does not exist"), "{err}");
        std::fs::write(&file, "123\n").expect("write");
        assert_eq!(read(&file), Ok(123));
    }

    /// Within a deadline: the event is sure to come, or the test fails.
    async fn heard(w: &mut PidFileWatch) -> FileEvent {
        tokio::time::timeout(Duration::from_secs(10), w.changed())
            .await
            .expect("an event within 10 s")
            .expect("read events")
    }

    #[tokio::test]
    async fn creation_rename_and_rewrite_are_heard_and_other_files_are_not() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("app.pid");
        let mut w = PidFileWatch::new(&file).expect("watch");

        std::fs::write(dir.path().join("other.pid"), "1").expect("write");
        std::fs::write(&file, "1\n").expect("create");
        assert_eq!(heard(&mut w).await, FileEvent::Changed);

        let tmp = dir.path().join(".app.pid.tmp");
        std::fs::write(&tmp, "2\n").expect("write tmp");
        std::fs::rename(&tmp, &file).expect("rename");
        assert_eq!(heard(&mut w).await, FileEvent::Changed);
        assert_eq!(read(&file), Ok(2));

        std::fs::write(&file, "3\n").expect("rewrite");
        assert_eq!(heard(&mut w).await, FileEvent::Changed);

        // Only another file changes: no answer.
        std::fs::write(dir.path().join("other.pid"), "4").expect("write");
        let quiet = tokio::time::timeout(Duration::from_millis(200), w.changed()).await;
        assert!(quiet.is_err(), "another file's change is not ours");

        // Removing the directory removes the file first: that may come
        // as a change before the directory's own end.
        drop(dir);
        while heard(&mut w).await != FileEvent::DirectoryGone {}
    }
}
