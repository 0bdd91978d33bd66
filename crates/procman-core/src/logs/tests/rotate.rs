//! Rotation at record boundaries, every record once and in order across
//! the rotated files, reopening, and writes that fail on a full disk.

use std::io::ErrorKind;

use super::*;

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_default()
}

/// What a reader gets: `.N` … `.1`, then the live file.
fn read_all(path: &Path, max_files: u32) -> Vec<u8> {
    let mut all = Vec::new();
    for p in rotated_paths(path, max_files) {
        all.extend(read(&p));
    }
    all.extend(read(path));
    all
}

/// Every call goes straight to the OS, as when the caller flushes after
/// each batch.
fn unbuffered(mut f: RotatingFile) -> RotatingFile {
    f.buf_cap = 0;
    f
}

/// Numbered records of varying length, so that batches rarely fit exactly.
fn records(n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| format!("record {i:05} {}\n", "x".repeat(i * 7 % 61)).into_bytes())
        .collect()
}

/// Writes the records in batches of 1 to 17 records.
fn write_batches(f: &mut RotatingFile, recs: &[Vec<u8>]) {
    let mut i = 0;
    let mut batch = Vec::new();
    while i < recs.len() {
        let n = (i * 13 % 17 + 1).min(recs.len() - i);
        batch.clear();
        recs[i..i + n]
            .iter()
            .for_each(|r| batch.extend_from_slice(r));
        f.write_records(&batch).expect("write");
        i += n;
    }
    f.flush().expect("flush");
}

/// Every existing file ends at a record boundary and respects the limit.
fn check_files(path: &Path, max_files: u32, max_bytes: u64) -> usize {
    let mut count = 0;
    for p in rotated_paths(path, max_files)
        .iter()
        .chain([&path.to_path_buf()])
    {
        if let Ok(bytes) = std::fs::read(p) {
            assert!(bytes.len() as u64 <= max_bytes, "{} too big", p.display());
            assert!(
                bytes.is_empty() || bytes.ends_with(b"\n"),
                "{} cut",
                p.display()
            );
            count += 1;
        }
    }
    count
}

#[test]
fn every_record_once_in_order_across_rotations() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("web.log");
    let recs = records(10_000);
    let mut f = RotatingFile::open(&path, Some((4096, 1000))).expect("open");
    write_batches(&mut f, &recs);
    drop(f);
    assert_eq!(read_all(&path, 1000), recs.concat());
    let files = check_files(&path, 1000, 4096);
    assert!(files > 100, "rotated into {files} files");
    // Files are filled, not rotated early: all but the live one are close
    // to the limit (within one record).
    for p in rotated_paths(&path, 1000) {
        if let Ok(m) = std::fs::metadata(&p) {
            assert!(m.len() > 4096 - 80, "{} has {}", p.display(), m.len());
        }
    }
}

#[test]
fn few_files_keep_a_contiguous_tail() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("web.log");
    let recs = records(2_000);
    let mut f = RotatingFile::open(&path, Some((2048, 3))).expect("open");
    write_batches(&mut f, &recs);
    drop(f);
    let kept = read_all(&path, 3);
    let all = recs.concat();
    assert!(all.ends_with(&kept), "the newest records, contiguous");
    assert!(kept.len() > 3 * 1900 && kept.starts_with(b"record "));
    assert!(!numbered(&path, 4).exists(), "nothing past max_files");
    assert_eq!(check_files(&path, 3, 2048), 4);
}

#[test]
fn unbuffered_writes_rotate_the_same_way() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("web.log");
    let recs = records(3_000);
    let mut f = unbuffered(RotatingFile::open(&path, Some((1000, 500))).expect("open"));
    write_batches(&mut f, &recs);
    assert_eq!(read_all(&path, 500), recs.concat());
    check_files(&path, 500, 1000);
}

#[test]
fn rotation_happens_at_a_record_boundary() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a.log");
    let mut f = RotatingFile::open(&path, Some((10, 5))).expect("open");
    // "aaaa\n" fits, "bbbb\n" fills the file to 10, "cc\n" goes to a new one.
    f.write_records(b"aaaa\nbbbb\ncc\n").expect("write");
    f.flush().expect("flush");
    assert_eq!(read(&numbered(&path, 1)), b"aaaa\nbbbb\n");
    assert_eq!(read(&path), b"cc\n");
    // 3 + 8 > 10: rotate before the record, never split it.
    f.write_records(b"ddddddd\n").expect("write");
    f.flush().expect("flush");
    assert_eq!(read(&numbered(&path, 2)), b"aaaa\nbbbb\n");
    assert_eq!(read(&numbered(&path, 1)), b"cc\n");
    assert_eq!(read(&path), b"ddddddd\n");
}

#[test]
fn a_record_longer_than_the_limit_gets_a_file_of_its_own() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a.log");
    let mut f = RotatingFile::open(&path, Some((10, 5))).expect("open");
    f.write_records(b"ab\n0123456789abcdef\ncd\n")
        .expect("write");
    f.flush().expect("flush");
    assert_eq!(read(&numbered(&path, 2)), b"ab\n");
    assert_eq!(read(&numbered(&path, 1)), b"0123456789abcdef\n");
    assert_eq!(read(&path), b"cd\n");
}

#[test]
fn max_files_zero_keeps_no_old_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a.log");
    let mut f = RotatingFile::open(&path, Some((10, 0))).expect("open");
    f.write_records(b"aaaa\nbbbb\ncc\n").expect("write");
    f.flush().expect("flush");
    assert_eq!(read(&path), b"cc\n");
    assert!(!numbered(&path, 1).exists());
}

#[test]
fn reopening_appends_and_counts_the_existing_size() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a.log");
    std::fs::write(&path, b"old1\nold2\n").expect("seed");
    let mut f = RotatingFile::open(&path, None).expect("open");
    assert_eq!(f.size, 10);
    f.write_records(b"new\n").expect("write");
    drop(f); // flushes
    assert_eq!(read(&path), b"old1\nold2\nnew\n");
    // With a limit: the existing 14 bytes count, so this rotates first.
    let mut f = RotatingFile::open(&path, Some((16, 2))).expect("open");
    f.write_records(b"more\n").expect("write");
    f.flush().expect("flush");
    assert_eq!(read(&numbered(&path, 1)), b"old1\nold2\nnew\n");
    assert_eq!(read(&path), b"more\n");
}

#[test]
fn buffered_bytes_reach_the_file_on_flush() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a.log");
    let mut f = RotatingFile::open(&path, None).expect("open");
    f.write_records(b"one\n").expect("write");
    assert_eq!(read(&path), b"", "small writes wait in the buffer");
    f.flush().expect("flush");
    assert_eq!(read(&path), b"one\n");
    f.write_records(b"two\n").expect("write");
    f.sync().expect("sync");
    assert_eq!(read(&path), b"one\ntwo\n");
    // A batch bigger than the buffer goes straight out, after the buffer.
    let big = vec![b'z'; 2 * DEFAULT_BUFFER];
    f.write_records(b"three\n").expect("write");
    f.write_records(&big).expect("write");
    assert_eq!(read(&path).len(), 8 + 6 + big.len());
}

#[test]
fn full_disk_drops_that_write_and_recovers() {
    if !Path::new("/dev/full").exists() {
        return crate::testing::skip_or_fail("no /dev/full on this system");
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("full.log");
    // The path itself would refuse a device: hand the file in.
    let full = || {
        std::fs::OpenOptions::new()
            .append(true)
            .open("/dev/full")
            .expect("/dev/full")
    };
    let mut f = RotatingFile::with_file(&path, full());
    f.write_records(b"lost\n").expect("buffered");
    let e = f.flush().expect_err("ENOSPC");
    assert_eq!(e.kind(), ErrorKind::StorageFull);
    let msg = e.to_string();
    assert!(
        msg.starts_with("cannot write to log file ") && msg.contains("full.log"),
        "{msg}"
    );
    let inner = e
        .get_ref()
        .and_then(|i| i.downcast_ref::<LogFileError>())
        .expect("a LogFileError inside");
    assert_eq!(
        (inner.op, inner.path.as_path()),
        (LogFileOp::Write, path.as_path())
    );

    // Unbuffered, the error comes from the call itself.
    let mut g = unbuffered(RotatingFile::with_file(&path, full()));
    assert!(g.write_records(b"lost too\n").is_err());

    // Space returns: the path names a real file, and the next call
    // (which reopens the path) works; the lost records are not replayed.
    std::fs::write(&path, b"").expect("real file");
    f.write_records(b"kept\n").expect("works again");
    f.flush().expect("flush");
    g.write_records(b"kept too\n").expect("works again");
    assert_eq!(read(&path), b"kept\nkept too\n");
}

#[test]
fn failed_rotation_keeps_writing_rather_than_lose_records() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a.log");
    // `.1` is a non-empty directory: renaming the live file onto it fails.
    std::fs::create_dir_all(numbered(&path, 1).join("x")).expect("blocker");
    let mut f = RotatingFile::open(&path, Some((10, 1))).expect("open");
    f.write_records(b"aaaa\nbbbb\ncc\ndd\n")
        .expect("kept despite rotation");
    f.flush().expect("flush");
    assert_eq!(read(&path), b"aaaa\nbbbb\ncc\ndd\n");
    // Once the blocker is gone, rotation resumes (after the retry step).
    std::fs::remove_dir_all(numbered(&path, 1)).expect("unblock");
    let mut big = vec![b'y'; 70 * 1024];
    big.push(b'\n');
    f.write_records(&big).expect("write");
    f.write_records(b"ee\n").expect("write");
    f.flush().expect("flush");
    assert_eq!(read(&path), b"ee\n");
    assert!(read(&numbered(&path, 1)).starts_with(b"aaaa\nbbbb\ncc\ndd\nyyy"));
}

#[test]
fn rotated_paths_are_oldest_first() {
    let p = Path::new("/var/log/procman/web.log");
    assert_eq!(
        rotated_paths(p, 3),
        [
            PathBuf::from("/var/log/procman/web.log.3"),
            PathBuf::from("/var/log/procman/web.log.2"),
            PathBuf::from("/var/log/procman/web.log.1"),
        ]
    );
    assert!(rotated_paths(p, 0).is_empty());
}

#[test]
fn open_error_names_the_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("missing-dir").join("a.log");
    let e = RotatingFile::open(&path, None).expect_err("no directory");
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert!(e.to_string().contains("cannot open log file"), "{e}");
    assert!(e.to_string().contains("missing-dir"), "{e}");
}

/// A writer that takes `room` bytes, then fails like a full disk.
struct Filling {
    room: usize,
    got: Vec<u8>,
}

impl Write for Filling {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        if self.room == 0 {
            return Err(ErrorKind::StorageFull.into());
        }
        let n = b.len().min(self.room).min(3);
        self.room -= n;
        self.got.extend_from_slice(&b[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn short_writes_are_retried_and_a_failure_says_how_much_got_through() {
    let mut w = Filling {
        room: 100,
        got: Vec::new(),
    };
    let (n, r) = write_whole(&mut w, b"0123456789");
    assert_eq!((n, r.is_ok()), (10, true));
    w.room = 4;
    let (n, r) = write_whole(&mut w, b"abcdefgh");
    assert_eq!(n, 4);
    assert_eq!(r.expect_err("full").kind(), ErrorKind::StorageFull);
}

#[test]
fn a_reopen_request_sends_later_records_to_a_new_file_at_the_path() {
    use std::sync::mpsc;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.log");
    let moved = dir.path().join("x.log.old");
    let reopen = Reopen::default();
    let recs = records(3000);
    // The writer pauses after 1000 records (the file is renamed), and
    // after 2000 (a reopen is requested): records 1000..2000 are written
    // after the rename but before the request, so they still go to the
    // renamed file, as an external logrotate expects.
    let (paused_tx, paused) = mpsc::channel();
    let (go, go_rx) = mpsc::channel::<()>();
    let writer = {
        let (path, reopen, recs) = (path.clone(), reopen.clone(), recs.clone());
        std::thread::spawn(move || {
            let mut f = RotatingFile::open(&path, None)
                .unwrap()
                .with_reopen(&reopen);
            for part in recs.chunks(1000) {
                write_batches(&mut f, part);
                paused_tx.send(()).unwrap();
                go_rx.recv().unwrap();
            }
        })
    };
    paused.recv().unwrap();
    std::fs::rename(&path, &moved).unwrap();
    go.send(()).unwrap();
    paused.recv().unwrap();
    reopen.request();
    go.send(()).unwrap();
    paused.recv().unwrap();
    go.send(()).unwrap();
    writer.join().unwrap();

    assert_eq!(
        read(&moved),
        recs[..2000].concat(),
        "everything before the request"
    );
    assert_eq!(
        read(&path),
        recs[2000..].concat(),
        "everything after, in a new file"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640);
}

#[test]
fn a_lazy_file_opens_at_its_first_write() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.log");
    let mut f = RotatingFile::lazy(&path, None);
    assert!(!path.exists(), "nothing opened yet");
    f.write_records(b"one\n").unwrap();
    f.flush().unwrap();
    assert_eq!(read(&path), b"one\n");
}

/// 1 GiB of 100-byte lines, split, formatted plain and written through
/// rotation (100 MiB × 5) to a temp file, flushing after each 64 KiB chunk
/// as the pump does. `cargo test --release -p procman-core --lib
/// bench_ -- --ignored --nocapture`
#[test]
#[ignore = "benchmark: run in release mode"]
fn bench_split_plain_and_write_file() {
    use crate::logs::format::{plain_line, Timestamp};
    use crate::logs::record::Stream;
    use crate::logs::splitter::LineSplitter;

    let mut chunk = Vec::new();
    for i in 0..700 {
        chunk.extend_from_slice(format!("{i:08} {}\n", "x".repeat(90)).as_bytes());
    }
    chunk.truncate(64 * 1024);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bench.log");
    let mut f = RotatingFile::open(&path, Some((100 << 20, 5))).expect("open");
    let mut splitter = LineSplitter::new(Stream::Stdout, 8192);
    let mut out = Vec::with_capacity(256 * 1024);
    let total = 1usize << 30;
    let start = std::time::Instant::now();
    for _ in 0..total / chunk.len() {
        let ts = Timestamp::new(std::time::SystemTime::now());
        splitter.feed(&chunk, |r| plain_line(&mut out, &ts, &r));
        f.write_records(&out).expect("write");
        f.flush().expect("flush");
        out.clear();
    }
    let secs = start.elapsed().as_secs_f64();
    let mib_s = total as f64 / (1024.0 * 1024.0) / secs;
    println!("split + plain_line + RotatingFile (1 GiB): {secs:.3} s, {mib_s:.0} MiB/s");
}
