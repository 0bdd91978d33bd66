//! Relayed rounds on real pipes and files: the bytes move exactly once,
//! and a round a crash interrupted is cut back or kept as the pipe says.

use std::io::{Seek, SeekFrom, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::*;
use crate::logs::ledger;

const WHO: RunStream = RunStream {
    stream: Stream::Stdout,
    pid: 4321,
    run: 2,
};

/// A pipe as large as a child's, holding `bytes`; its read end, non-blocking.
fn pipe_with(bytes: &[u8]) -> (OwnedFd, OwnedFd) {
    let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap();
    rustix::pipe::fcntl_setpipe_size(&w, 1 << 20).unwrap();
    rustix::io::ioctl_fionbio(&r, true).unwrap();
    let mut f = std::fs::File::from(w.try_clone().unwrap());
    f.write_all(bytes).unwrap();
    (r, w)
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i % 251) as u8 ^ seed ^ (i / 251) as u8)
        .collect()
}

fn relayed_file(dir: &Path, unsettled: Option<Relayed>) -> (RotatingFile, PathBuf) {
    let ledger_path = ledger::path(dir, "svc");
    let f = RotatingFile::lazy(&dir.join("svc.log"), None)
        .positioned()
        .relayed(Ledger::new(ledger_path.clone()), unsettled);
    (f, ledger_path)
}

/// Moves everything `pipe` holds into `f`, relayed while it is a flood.
fn drain_into(f: &mut RotatingFile, pipe: &OwnedFd, relay: &Relay) -> usize {
    let mut rounds = 0;
    loop {
        let moved = if f.relays(pipe.as_fd()) {
            rounds += 1;
            f.relay_from(pipe.as_fd(), relay, WHO, None)
        } else {
            f.splice_from(pipe.as_fd(), 1 << 20, None)
        };
        match moved {
            Ok(0) => return rounds,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return rounds,
            Err(e) => panic!("{e}"),
        }
    }
}

/// The round a crash interrupted: `len` bytes written at `at` of the file
/// at `path`.
fn round_at(path: &Path, at: u64, len: usize) -> Relayed {
    let meta = std::fs::metadata(path).unwrap();
    Relayed {
        stream: WHO.stream,
        at: FileId {
            dev: meta.dev(),
            ino: meta.ino(),
            len: at,
        },
        len: len as u64,
        pid: WHO.pid,
        run: WHO.run,
    }
}

#[test]
fn a_flood_is_relayed_into_the_file_exactly_and_the_ledger_left_clear() {
    let dir = tempfile::tempdir().unwrap();
    let data = pattern(900 * 1024, 3);
    let (r, _w) = pipe_with(&data);
    let relay = Relay::new().unwrap();
    let (mut f, ledger_path) = relayed_file(dir.path(), None);
    let rounds = drain_into(&mut f, &r, &relay);
    assert!(rounds >= 1, "a flood of 900 KiB is relayed");
    assert_eq!(std::fs::read(dir.path().join("svc.log")).unwrap(), data);
    assert_eq!(ledger::interrupted(&ledger_path).unwrap(), None);
    assert_eq!(
        rustix::io::ioctl_fionread(&r).unwrap(),
        0,
        "the pipe is empty"
    );
    // The relay is empty between rounds: a second flood comes out whole.
    let more = pattern(300 * 1024, 9);
    std::fs::File::from(_w.try_clone().unwrap())
        .write_all(&more)
        .unwrap();
    drain_into(&mut f, &r, &relay);
    let all = std::fs::read(dir.path().join("svc.log")).unwrap();
    assert_eq!(all.len(), data.len() + more.len());
    assert!(all[data.len()..] == more[..]);
}

#[test]
fn a_trickle_is_spliced_not_relayed() {
    let dir = tempfile::tempdir().unwrap();
    let (r, _w) = pipe_with(b"one line\n");
    let relay = Relay::new().unwrap();
    let (mut f, ledger_path) = relayed_file(dir.path(), None);
    assert!(!f.relays(r.as_fd()));
    assert_eq!(drain_into(&mut f, &r, &relay), 0);
    assert_eq!(
        std::fs::read(dir.path().join("svc.log")).unwrap(),
        b"one line\n"
    );
    assert!(!ledger_path.exists(), "no round, no ledger");
}

/// A file that holds `before` and then `written` of `round`, and a pipe
/// that holds `in_pipe`; settles the round and then drains the pipe.
fn settle_case(written: usize, round: &[u8], in_pipe: &[u8], live: bool) -> (Vec<u8>, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let before = b"earlier output\n".to_vec();
    let log = dir.path().join("svc.log");
    let mut on_disk = before.clone();
    on_disk.extend_from_slice(&round[..written]);
    std::fs::write(&log, &on_disk).unwrap();
    let unsettled = round_at(&log, before.len() as u64, round.len());
    let (r, _w) = pipe_with(in_pipe);
    let relay = Relay::new().unwrap();
    let (mut f, ledger_path) = relayed_file(dir.path(), Some(unsettled));
    let mut l = Ledger::new(ledger_path.clone());
    l.begin(unsettled).unwrap();
    assert_eq!(f.unsettled(), Some(Stream::Stdout));
    let (mut a, mut b) = (Vec::new(), Vec::new());
    f.settle(live.then_some(r.as_fd()), Some(&relay), (&mut a, &mut b))
        .unwrap();
    assert_eq!(f.unsettled(), None);
    assert_eq!(
        ledger::interrupted(&ledger_path).unwrap(),
        None,
        "settled: clear"
    );
    drain_into(&mut f, &r, &relay);
    (std::fs::read(&log).unwrap(), before)
}

#[test]
fn a_round_not_released_is_cut_back_and_written_once() {
    let round = pattern(200 * 1024, 1);
    let mut in_pipe = round.clone();
    in_pipe.extend_from_slice(&pattern(50 * 1024, 2));
    let (file, before) = settle_case(round.len(), &round, &in_pipe, true);
    assert_eq!(file.len(), before.len() + in_pipe.len());
    assert!(
        file[before.len()..] == in_pipe[..],
        "the round once, then the rest"
    );
}

#[test]
fn a_round_half_written_is_cut_back() {
    let round = pattern(200 * 1024, 1);
    let (file, before) = settle_case(77 * 1024, &round, &round, true);
    assert_eq!(file.len(), before.len() + round.len());
    assert!(file[before.len()..] == round[..]);
}

#[test]
fn a_released_round_is_kept() {
    let round = pattern(200 * 1024, 1);
    let next = pattern(300 * 1024, 5);
    let (file, before) = settle_case(round.len(), &round, &next, true);
    assert_eq!(file.len(), before.len() + round.len() + next.len());
    assert!(file[before.len()..before.len() + round.len()] == round[..]);
    assert!(file[before.len() + round.len()..] == next[..]);
}

#[test]
fn a_released_round_followed_by_less_than_a_round_is_kept() {
    let round = pattern(200 * 1024, 1);
    let next = b"a short tail\n".to_vec();
    let (file, before) = settle_case(round.len(), &round, &next, true);
    assert_eq!(file.len(), before.len() + round.len() + next.len());
}

#[test]
fn without_its_pipe_a_round_is_kept_as_the_file_holds_it() {
    let round = pattern(200 * 1024, 1);
    let (file, before) = settle_case(100 * 1024, &round, b"", false);
    assert_eq!(file.len(), before.len() + 100 * 1024);
}

#[test]
fn released_bytes_go_to_dev_null_when_the_discard_is_small_full_or_gone() {
    let pipe = || {
        let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap();
        rustix::io::ioctl_fionbio(&w, true).unwrap();
        (r, w)
    };
    // Small: one page, so rounds never go there.
    let (_small_reader, small) = pipe();
    rustix::pipe::fcntl_setpipe_size(&small, 4096).unwrap();
    // Full: one page nobody reads, but taken as large enough, so a round
    // is split between it and /dev/null (and the ledger follows).
    let (_full_reader, full) = pipe();
    rustix::pipe::fcntl_setpipe_size(&full, 4096).unwrap();
    // Gone: its reader has ended.
    let (gone_reader, gone) = pipe();
    drop(gone_reader);
    for (discard, fits) in [(small, None), (full, Some(true)), (gone, None)] {
        let dir = tempfile::tempdir().unwrap();
        let data = pattern(700 * 1024, 4);
        let (r, _w) = pipe_with(&data);
        let mut relay = Relay::new().unwrap();
        let size = |fd: &OwnedFd| rustix::pipe::fcntl_getpipe_size(fd).unwrap();
        relay.discard_fits = fits.unwrap_or(size(&discard) >= size(&relay.write));
        relay.discard = Some(discard);
        let (mut f, ledger_path) = relayed_file(dir.path(), None);
        assert!(drain_into(&mut f, &r, &relay) >= 1);
        assert!(std::fs::read(dir.path().join("svc.log")).unwrap() == data);
        assert_eq!(ledger::interrupted(&ledger_path).unwrap(), None);
        assert_eq!(rustix::io::ioctl_fionread(&r).unwrap(), 0);
    }
}

/// A file holding `before` and then the first `written` bytes of `round`,
/// as a short write (a full disk) left it; [`short_round`] on it.
fn after_short_write(round: &[u8], written: usize) -> (usize, Vec<u8>, Option<Relayed>) {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("svc.log");
    let before = b"earlier output\n";
    let mut on_disk = before.to_vec();
    on_disk.extend_from_slice(&round[..written]);
    std::fs::write(&log, &on_disk).unwrap();
    let at = before.len() as u64;
    let r = round_at(&log, at, round.len());
    let ledger_path = ledger::path(dir.path(), "svc");
    let mut l = Ledger::new(ledger_path.clone());
    l.begin(r).unwrap();
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&log)
        .unwrap();
    let mut f = &file;
    f.seek(SeekFrom::End(0)).unwrap();
    let kept = short_round(&file, &mut l, r, written, &log);
    // The file's position follows its length: the next write appends.
    f.write_all(b"next\n").unwrap();
    let mut content = std::fs::read(&log).unwrap();
    assert!(content.starts_with(before) && content.ends_with(b"next\n"));
    content.drain(..before.len());
    content.truncate(content.len() - 5);
    (kept, content, ledger::interrupted(&ledger_path).unwrap())
}

#[test]
fn a_short_write_keeps_whole_lines_and_the_ledger_says_how_many() {
    let round = b"first line\nsecond line\nthird li".to_vec();
    let (kept, file, recorded) = after_short_write(&round, 28);
    assert_eq!(kept, 23, "up to the end of the second line");
    assert_eq!(file, b"first line\nsecond line\n");
    assert_eq!(
        recorded.map(|r| r.len),
        Some(23),
        "the record covers what the file keeps"
    );
    // A written part that ends a line is kept whole.
    let (kept, file, _) = after_short_write(&round, 23);
    assert_eq!(
        (kept, file.as_slice()),
        (23, &b"first line\nsecond line\n"[..])
    );
}

#[test]
fn a_short_write_inside_the_first_line_is_cut_back_to_the_rounds_start() {
    let round = b"one long line without its end".to_vec();
    let (kept, file, recorded) = after_short_write(&round, 10);
    assert_eq!(kept, 0);
    assert!(file.is_empty(), "{file:?}");
    assert_eq!(
        recorded.map(|r| r.len),
        Some(round.len() as u64),
        "the record is left as it was"
    );
}

#[test]
fn whole_lines_finds_the_last_newline_across_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("f");
    let mut bytes = vec![b'x'; 200 * 1024];
    bytes[1000] = b'\n';
    std::fs::write(&p, &bytes).unwrap();
    let f = std::fs::File::open(&p).unwrap();
    assert_eq!(whole_lines(&f, 0, bytes.len()).unwrap(), 1001);
    assert_eq!(whole_lines(&f, 1001, bytes.len() - 1001).unwrap(), 0);
    assert_eq!(whole_lines(&f, 500, 501).unwrap(), 501);
}
