//! Splicing from a pipe, reading back, and resets: a crash at any step of
//! a reset leaves a spool that opens with exactly its unwritten bytes.

use std::io::Write;
use std::os::fd::AsFd;

use super::*;
use crate::logs::checkpoint;

fn pipe_with(bytes: &[u8]) -> (std::os::fd::OwnedFd, std::fs::File) {
    let (r, w) = rustix::pipe::pipe().unwrap();
    rustix::io::ioctl_fionbio(&r, true).unwrap();
    let mut w = std::fs::File::from(w);
    w.write_all(bytes).unwrap();
    (r, w)
}

/// What the spool holds past its checkpoint.
fn backlog(s: &Spool) -> Vec<u8> {
    let mut buf = Vec::new();
    s.read_at(s.checkpoint().done, usize::MAX, &mut buf)
        .unwrap();
    buf
}

#[test]
fn spliced_bytes_are_in_the_spool_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Spool::open(&dir.path().join("svc.stdout")).unwrap();
    assert_eq!((s.end(), s.has_backlog()), (HEADER, false));
    let (r, w) = pipe_with(b"one\ntwo\n");
    assert_eq!(s.fill(r.as_fd(), 1 << 20).unwrap(), 8);
    assert_eq!(s.fill(r.as_fd(), 1 << 20), Err(Errno::AGAIN));
    assert_eq!(backlog(&s), b"one\ntwo\n");
    drop(w);
    assert_eq!(s.fill(r.as_fd(), 1 << 20), Ok(0), "end of file");
    let mode = std::fs::metadata(s.path()).unwrap().permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o600
    );
}

#[test]
fn a_spool_opened_again_holds_what_was_not_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("svc.stdout");
    let mut s = Spool::open(&path).unwrap();
    let (r, _w) = pipe_with(b"one\ntwo\nthr");
    s.fill(r.as_fd(), 1 << 20).unwrap();
    s.set_run(7, 2).unwrap();
    s.commit(HEADER + 4, false, 1, None).unwrap();
    drop(s);
    let s = Spool::open(&path).unwrap();
    assert_eq!(backlog(&s), b"two\nthr");
    assert_eq!((s.checkpoint().pid, s.checkpoint().run), (7, 2));
}

#[test]
fn a_reset_keeps_the_held_line_and_reads_as_reset_at_every_step() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("svc.stdout");
    let mut s = Spool::open(&path).unwrap();
    let (r, _w) = pipe_with(b"0123456789\nheld");
    s.fill(r.as_fd(), 1 << 20).unwrap();
    let done = HEADER + 11;
    s.commit(done, true, 1, None).unwrap();
    // The steps of a reset, each followed by what a new manager finds.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    rustix::io::pwrite(&file, b"held", HEADER).unwrap();
    assert_eq!(
        backlog(&Spool::open(&path).unwrap()),
        b"held",
        "after the copy"
    );
    file.set_len(HEADER + 4).unwrap();
    let cut = Spool::open(&path).unwrap();
    assert_eq!(cut.checkpoint().done, HEADER, "after the cut: reset");
    assert_eq!(backlog(&cut), b"held");
    assert!(cut.checkpoint().continues, "the held line's state is kept");
}

#[test]
fn a_reset_by_the_spool_keeps_the_held_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("svc.stdout");
    let mut s = Spool::open(&path).unwrap();
    let (r, _w) = pipe_with(b"0123456789\nheld");
    s.fill(r.as_fd(), 1 << 20).unwrap();
    s.commit(HEADER + 11, false, 1, None).unwrap();
    assert!(
        !s.compact(b"held", false).unwrap(),
        "small: not worth it yet"
    );
    assert!(s.compact(b"held", true).unwrap());
    assert_eq!((s.end(), s.checkpoint().done), (HEADER + 4, HEADER));
    assert_eq!(std::fs::metadata(&path).unwrap().len(), HEADER + 4);
    drop(s);
    assert_eq!(backlog(&Spool::open(&path).unwrap()), b"held");
}

#[test]
fn a_reset_waits_until_the_spool_is_larger_than_the_held_line() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Spool::open(&dir.path().join("svc.stdout")).unwrap();
    let (r, _w) = pipe_with(b"a\nlonger held");
    s.fill(r.as_fd(), 1 << 20).unwrap();
    s.commit(HEADER + 2, false, 1, None).unwrap();
    // 11 bytes held after 2 done: the copy would cover them.
    assert!(!s.compact(b"longer held", true).unwrap());
    assert_eq!(backlog(&s), b"longer held");
    // Not what lies past the checkpoint: refused.
    assert!(!s.compact(b"other", true).unwrap());
    // Nothing held: reset to empty.
    s.commit(s.end(), false, 2, None).unwrap();
    assert!(s.compact(b"", true).unwrap());
    assert_eq!((s.end(), s.has_backlog()), (HEADER, false));
}

#[test]
fn a_spool_without_a_readable_checkpoint_is_written_again_whole() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("svc.stdout");
    let mut s = Spool::open(&path).unwrap();
    let (r, _w) = pipe_with(b"data\n");
    s.fill(r.as_fd(), 1 << 20).unwrap();
    s.commit(s.end(), false, 1, None).unwrap();
    drop(s);
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    rustix::io::pwrite(&file, &[0u8; 512], 0).unwrap();
    let s = Spool::open(&path).unwrap();
    assert_eq!(backlog(&s), b"data\n");
    assert_eq!(
        checkpoint::read::<Checkpoint>(&file)
            .unwrap()
            .map(|c| c.done),
        Some(HEADER)
    );
}
