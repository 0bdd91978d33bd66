//! Targets never make anyone wait: a stuck one drops (and counts) its own
//! batches, the others get everything, and `finish` is bounded.

use std::io::{self, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::*;

/// A writer into memory that the test can read.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The write end of a pipe whose read end is held and never read: writes
/// block once the pipe buffer (64 KiB) is full. Dropping the read end (at
/// the end of the test) lets the blocked thread go, with EPIPE.
fn stuck_pipe() -> (std::os::fd::OwnedFd, Box<dyn Write + Send>) {
    let (r, w) = rustix::pipe::pipe().unwrap();
    (r, Box::new(std::fs::File::from(w)))
}

const BATCH: usize = 64 * 1024;
const PLAIN: Kind = Kind::Prefixed { color: false };

/// `n` batches of `BATCH` bytes, each `BATCH / 64` records of 64 bytes.
fn batches(n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            let mut b = Vec::with_capacity(BATCH);
            for j in 0..BATCH / 64 {
                b.extend_from_slice(format!("{i:06} {j:06} {}\n", "x".repeat(49)).as_bytes());
            }
            b
        })
        .collect()
}

#[test]
fn a_stuck_target_drops_only_its_own_batches_and_never_waits() {
    let (_reader, stuck) = stuck_pipe();
    let good = Shared::default();
    let targets = Targets::with_writers(vec![
        ("stuck".into(), PLAIN, stuck, 4 * BATCH),
        ("good".into(), PLAIN, Box::new(good.clone()), 1 << 30),
    ])
    .unwrap();
    let all = batches(200);
    let began = Instant::now();
    for b in &all {
        targets.push_all(vec![b.clone(), b.clone()], (BATCH / 64) as u64);
    }
    // 12.5 MiB into a target that takes 64 KiB: only a push that never
    // waits gets through this at all.
    let pushed_in = began.elapsed();
    assert!(pushed_in < Duration::from_secs(20), "{pushed_in:?}");

    let stats = targets.stats();
    let stuck = &stats[0];
    assert_eq!(stuck.name, "stuck");
    assert!(stuck.queued_bytes <= (4 * BATCH) as u64, "{stuck:?}");
    // The pipe holds one batch, the writer is stuck in a second, the
    // queue holds at most four: everything else was dropped and counted.
    assert!(
        stuck.dropped_bytes >= ((200 - 6) * BATCH) as u64,
        "{stuck:?}"
    );
    assert_eq!(stuck.dropped_records, stuck.dropped_bytes / 64, "{stuck:?}");

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let began = Instant::now();
    let lost = rt.block_on(targets.finish(Instant::now() + Duration::from_millis(300)));
    assert!(
        began.elapsed() < Duration::from_secs(10),
        "finish is bounded"
    );
    assert!(
        lost >= BATCH as u64,
        "the stuck writer's bytes are lost: {lost}"
    );
    let good_stats = &targets.stats()[1];
    assert_eq!(
        (good_stats.dropped_records, good_stats.dropped_bytes),
        (0, 0)
    );
    assert_eq!(
        *good.0.lock().unwrap(),
        all.concat(),
        "the other target got everything"
    );
}

#[test]
fn a_target_that_catches_up_takes_batches_again() {
    let (reader, stuck) = stuck_pipe();
    let targets = Targets::with_writers(vec![("slow".into(), PLAIN, stuck, 2 * BATCH)]).unwrap();
    let first = batches(40);
    for b in &first {
        targets.push_all(vec![b.clone()], (BATCH / 64) as u64);
    }
    let dropped = targets.stats()[0].dropped_records;
    assert!(dropped > 0);
    // The reader wakes up and drains everything the target writes.
    let drained = std::thread::spawn(move || {
        let mut r = std::fs::File::from(reader);
        let mut all = Vec::new();
        io::Read::read_to_end(&mut r, &mut all).map(|_| all)
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    while targets.stats()[0].queued_bytes > 0 {
        assert!(Instant::now() < deadline, "the queue never emptied");
        std::thread::sleep(Duration::from_millis(5));
    }
    let late = batches(1).remove(0);
    targets.push_all(vec![late.clone()], (BATCH / 64) as u64);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let lost = rt.block_on(targets.finish(Instant::now() + Duration::from_secs(20)));
    assert_eq!(lost, 0);
    assert_eq!(
        targets.stats()[0].dropped_records,
        dropped,
        "nothing more dropped"
    );
    drop(targets);
    let got = drained.join().unwrap().unwrap();
    assert!(
        got.ends_with(&late),
        "the batch after the recovery was written"
    );
    assert_eq!(
        got.len() as u64 + dropped * 64,
        (41 * BATCH) as u64,
        "every byte written or counted"
    );
}
