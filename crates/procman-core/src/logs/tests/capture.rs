//! The pumps never make the async runtime wait for a file.

use std::io::Write;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use std::sync::atomic::Ordering;

use super::*;
use crate::logs::checkpoint::HEADER;
use crate::logs::sink::LogSetup;
use crate::logs::spool::Spool;

/// A process `svc` whose log goes to `<dir>/svc.log`.
fn log_in(dir: &std::path::Path) -> Arc<ProcessLog> {
    let (config, setup) = setup_in(dir);
    Arc::new(ProcessLog::new(&config.processes[0], &setup).expect("log"))
}

/// The same, with its output through spools in `<dir>/state/spool`.
fn spooled_log_in(dir: &std::path::Path) -> Arc<ProcessLog> {
    let (config, setup) = setup_in(dir);
    let setup = setup.with_spool(&dir.join("state"));
    Arc::new(ProcessLog::new(&config.processes[0], &setup).expect("log"))
}

fn setup_in(dir: &std::path::Path) -> (crate::config::Config, LogSetup) {
    std::fs::create_dir_all(dir.join("state")).unwrap();
    let yaml = format!(
        "process_manager:\n  state_dir: {d}/state\n  log_dir: {d}/logs\nmanaged_processes:\n  - id: svc\n    management:\n      control: {{executable: svc}}\n",
        d = dir.display()
    );
    let config = crate::config::load_str(&yaml, &dir.join("pm.yaml"), &|_| None).expect("config");
    let setup = LogSetup::start(&config).expect("setup");
    (config, setup)
}

/// The stdout spool of `svc` as a crash left it: `bytes` taken from the
/// pipe for run `run` of pid 7, none of them recorded as written.
fn crashed_spool(dir: &std::path::Path, bytes: &[u8], run: u32) {
    let spool_dir = dir.join("state/spool");
    crate::state::files::ensure_dir(&spool_dir, crate::state::files::DirKind::Spool).unwrap();
    let mut spool = Spool::open(&spool_dir.join("svc.stdout")).unwrap();
    spool.set_run(7, run).unwrap();
    let (r, w) = pipe_pair().unwrap();
    std::fs::File::from(w).write_all(bytes).unwrap();
    assert_eq!(
        spool.fill(std::os::fd::AsFd::as_fd(&r), 1 << 20),
        Ok(bytes.len())
    );
}

/// The lines of `svc.log` after the timestamp.
fn logged(dir: &std::path::Path) -> Vec<String> {
    let text = std::fs::read_to_string(dir.join("logs/svc.log")).unwrap_or_default();
    text.lines().map(|l| l[28..].to_string()).collect()
}

/// Waits for the pump to end.
async fn ended(pump: Option<JoinHandle<()>>) {
    let pump = pump.expect("a pump for the pipes");
    tokio::time::timeout(Duration::from_secs(30), pump)
        .await
        .expect("the pump ends at the end of the pipes")
        .expect("the pump does not panic");
}

/// A runtime with a single worker thread.
fn one_worker() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn a_file_write_that_hangs_never_stalls_the_runtime() {
    let dir = tempfile::tempdir().unwrap();
    // One worker: if a pump blocked it, nothing else could run.
    let rt = one_worker();
    let log = log_in(dir.path());
    rt.block_on(log.run_started(7, 1));
    let (r, w) = pipe_pair().unwrap();
    // As if the disk hung in the middle of a write: the file's lock is
    // held, by this thread, until the end of the test.
    let held = log.hold_file();
    let pumps = rt.block_on(async { start(&log, vec![(Stream::Stdout, r)], 7, 1) });
    let mut w = std::fs::File::from(w);
    for n in 1..=100 {
        writeln!(w, "line {n}").unwrap();
    }
    // The runtime's only worker still runs other tasks, again and again.
    let began = Instant::now();
    while began.elapsed() < Duration::from_secs(1) {
        let (tx, rx) = mpsc::channel();
        rt.spawn(async move {
            let _ = tx.send(());
        });
        assert!(
            rx.recv_timeout(Duration::from_secs(10)).is_ok(),
            "the runtime stalled behind a file write"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(held);
    drop(w);
    let pump = pumps.expect("a pump for the pipe");
    rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(30), pump)
            .await
            .expect("the pump ends once the write goes through")
            .unwrap();
    });
    let text = std::fs::read_to_string(dir.path().join("logs/svc.log")).unwrap();
    let lines: Vec<&str> = text.lines().skip(1).map(|l| &l[35..]).collect();
    let want: Vec<String> = (1..=100).map(|n| format!("line {n}")).collect();
    assert_eq!(lines, want, "every line, once the write went through");
}

/// A steady stream whose every write ends in the middle of a line: each
/// write finishes the line the last one began. No line waits 200 ms for its
/// end, so none is cut, however long the stream goes on.
#[test]
fn a_stream_of_writes_ending_mid_line_cuts_no_line() {
    let dir = tempfile::tempdir().unwrap();
    let rt = one_worker();
    let log = log_in(dir.path());
    rt.block_on(log.run_started(7, 1));
    let (r, w) = pipe_pair().unwrap();
    let pumps = rt.block_on(async { start(&log, vec![(Stream::Stdout, r)], 7, 1) });
    let mut w = std::fs::File::from(w);
    // 40 writes 25 ms apart (a second in all, five times PARTIAL_AFTER),
    // each "…end of line N\nstart of line N+1".
    write!(w, "line 0 begins").unwrap();
    for n in 1..=40 {
        std::thread::sleep(Duration::from_millis(25));
        write!(w, " and ends\nline {n} begins").unwrap();
    }
    writeln!(w, " and ends").unwrap();
    drop(w);
    rt.block_on(ended(pumps));
    let text = std::fs::read_to_string(dir.path().join("logs/svc.log")).unwrap();
    let lines: Vec<&str> = text.lines().filter(|l| l.contains(" stdout")).collect();
    assert_eq!(lines.len(), 41, "{text}");
    for (n, l) in lines.iter().enumerate() {
        assert!(
            l.ends_with(&format!(" stdout line {n} begins and ends")),
            "line {n} was cut: {text}"
        );
    }
}

#[test]
fn recover_writes_what_a_dead_run_left_in_its_spool() {
    let dir = tempfile::tempdir().unwrap();
    crashed_spool(dir.path(), b"one\ntwo\nthr", 2);
    let rt = one_worker();
    let log = spooled_log_in(dir.path());
    let found = rt.block_on(recover(&log));
    assert_eq!(found, Some((7, 2)), "the run the spool names");
    rt.block_on(log.run_ended(None, true));
    assert_eq!(
        logged(dir.path()),
        ["stdout one", "stdout two", "stdout thr"]
    );
    // Written once: a second recovery finds nothing.
    let log = spooled_log_in(dir.path());
    assert_eq!(rt.block_on(recover(&log)), None);
    rt.block_on(log.run_ended(None, true));
    assert_eq!(logged(dir.path()).len(), 3);
    let spool = dir.path().join("state/spool/svc.stdout");
    assert_eq!(std::fs::metadata(spool).unwrap().len(), HEADER, "emptied");
}

#[test]
fn a_new_run_writes_the_last_runs_spool_before_its_separator() {
    let dir = tempfile::tempdir().unwrap();
    crashed_spool(dir.path(), b"last words\n", 1);
    let rt = one_worker();
    let log = spooled_log_in(dir.path());
    rt.block_on(log.run_started(8, 2));
    let (r, w) = pipe_pair().unwrap();
    let pumps = rt.block_on(async { start(&log, vec![(Stream::Stdout, r)], 8, 2) });
    writeln!(std::fs::File::from(w), "first words").unwrap();
    rt.block_on(ended(pumps));
    rt.block_on(log.run_ended(None, true));
    assert_eq!(
        logged(dir.path()),
        [
            "stdout last words",
            "----- run 2 pid 8 -----",
            "stdout first words"
        ]
    );
}

#[test]
fn a_reattached_run_goes_on_with_the_line_it_held() {
    let dir = tempfile::tempdir().unwrap();
    crashed_spool(dir.path(), b"whole\nhalf a ", 3);
    let rt = one_worker();
    let log = spooled_log_in(dir.path());
    rt.block_on(log.run_resumed(7, 3));
    let (r, w) = pipe_pair().unwrap();
    let pumps = rt.block_on(async { start(&log, vec![(Stream::Stdout, r)], 7, 3) });
    writeln!(std::fs::File::from(w), "line").unwrap();
    rt.block_on(ended(pumps));
    rt.block_on(log.run_ended(None, true));
    assert_eq!(logged(dir.path()), ["stdout whole", "stdout half a line"]);
}

#[test]
fn a_spool_that_cannot_be_opened_falls_back_to_reading_and_counts_it() {
    let dir = tempfile::tempdir().unwrap();
    // A directory where the spool file goes.
    std::fs::create_dir_all(dir.path().join("state/spool/svc.stdout")).unwrap();
    let rt = one_worker();
    let log = spooled_log_in(dir.path());
    rt.block_on(log.run_started(7, 1));
    let (r, w) = pipe_pair().unwrap();
    let pumps = rt.block_on(async { start(&log, vec![(Stream::Stdout, r)], 7, 1) });
    writeln!(std::fs::File::from(w), "still captured").unwrap();
    rt.block_on(ended(pumps));
    rt.block_on(log.run_ended(None, true));
    assert_eq!(
        logged(dir.path()),
        ["----- run 1 pid 7 -----", "stdout still captured"]
    );
    assert_eq!(log.counters.spool_fallbacks.load(Ordering::Relaxed), 1);
}

#[test]
fn through_the_spool_every_line_is_written_once_and_the_spool_empties() {
    let dir = tempfile::tempdir().unwrap();
    let rt = one_worker();
    let log = spooled_log_in(dir.path());
    rt.block_on(log.run_started(7, 1));
    let (r, w) = pipe_pair().unwrap();
    let pumps = rt.block_on(async { start(&log, vec![(Stream::Stdout, r)], 7, 1) });
    let mut w = std::fs::File::from(w);
    // More than a spool holds before it is reset.
    for n in 0..40_000 {
        writeln!(w, "line {n} {}", "x".repeat(n % 64)).unwrap();
    }
    drop(w);
    rt.block_on(ended(pumps));
    rt.block_on(log.run_ended(None, true));
    let lines = logged(dir.path());
    assert_eq!(lines.len(), 40_001);
    for (n, l) in lines[1..].iter().enumerate() {
        assert_eq!(*l, format!("stdout line {n} {}", "x".repeat(n % 64)));
    }
    let spool = dir.path().join("state/spool/svc.stdout");
    assert_eq!(
        std::fs::metadata(spool).unwrap().len(),
        HEADER,
        "emptied at the end"
    );
    assert_eq!(log.counters.spool_fallbacks.load(Ordering::Relaxed), 0);
}

/// Polls the log until it has `line` (after the timestamp).
fn wait_logged(dir: &std::path::Path, line: &str) -> Vec<String> {
    let began = Instant::now();
    loop {
        let lines = logged(dir);
        if lines.iter().any(|l| l == line) {
            return lines;
        }
        assert!(
            began.elapsed() < Duration::from_secs(30),
            "no {line:?} in {lines:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// One task reads both streams: stderr ending first (its last line without
/// a newline) is finished at once, while stdout goes on being read until
/// it ends too.
#[test]
fn a_stream_that_ends_early_is_finished_while_the_other_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let rt = one_worker();
    let log = spooled_log_in(dir.path());
    rt.block_on(log.run_started(7, 1));
    let (out, out_w) = pipe_pair().unwrap();
    let (err, err_w) = pipe_pair().unwrap();
    let pump = rt.block_on(async {
        start(
            &log,
            vec![(Stream::Stdout, out), (Stream::Stderr, err)],
            7,
            1,
        )
    });
    let pump = pump.expect("a pump for the two streams");
    let mut err_w = std::fs::File::from(err_w);
    err_w.write_all(b"err 1\nerr tail").unwrap();
    drop(err_w);
    wait_logged(dir.path(), "stderr err tail");
    assert!(!pump.is_finished(), "the pump ended with stdout still open");
    let mut out_w = std::fs::File::from(out_w);
    out_w.write_all(b"out 1\n").unwrap();
    wait_logged(dir.path(), "stdout out 1");
    out_w.write_all(b"out 2\n").unwrap();
    drop(out_w);
    rt.block_on(ended(Some(pump)));
    rt.block_on(log.run_ended(None, true));
    let lines = logged(dir.path());
    assert_eq!(
        lines[1..],
        [
            "stderr err 1",
            "stderr err tail",
            "stdout out 1",
            "stdout out 2"
        ],
        "{lines:?}"
    );
    for stream in ["stdout", "stderr"] {
        let spool = dir.path().join(format!("state/spool/svc.{stream}"));
        assert_eq!(std::fs::metadata(spool).unwrap().len(), HEADER, "{stream}");
    }
}

/// A process `svc` whose raw output goes straight into `<dir>/logs/svc.log`.
fn raw_log_in(dir: &std::path::Path) -> Arc<ProcessLog> {
    std::fs::create_dir_all(dir.join("state")).unwrap();
    let yaml = format!(
        "process_manager:\n  state_dir: {d}/state\n  log_dir: {d}/logs\nmanaged_processes:\n  - id: svc\n    management:\n      control: {{executable: svc}}\n      logging: {{format: raw}}\n",
        d = dir.display()
    );
    let config = crate::config::load_str(&yaml, &dir.join("pm.yaml"), &|_| None).expect("config");
    let setup = LogSetup::start(&config)
        .expect("setup")
        .with_spool(&dir.join("state"));
    Arc::new(ProcessLog::new(&config.processes[0], &setup).expect("log"))
}

#[test]
fn a_raw_run_that_writes_nothing_creates_no_file_and_one_that_does_keeps_every_byte() {
    let dir = tempfile::tempdir().unwrap();
    let rt = one_worker();
    let log = raw_log_in(dir.path());
    let file = dir.path().join("logs/svc.log");
    // Both pipes end without a byte: nothing to open, flush or sync.
    rt.block_on(log.run_started(7, 1));
    let (out, out_w) = pipe_pair().unwrap();
    let (err, err_w) = pipe_pair().unwrap();
    let pumps = rt.block_on(async {
        start(
            &log,
            vec![(Stream::Stdout, out), (Stream::Stderr, err)],
            7,
            1,
        )
    });
    drop((out_w, err_w));
    rt.block_on(ended(pumps));
    rt.block_on(log.run_ended(None, true));
    assert!(!file.exists(), "a file for a run that wrote nothing");
    // The next run writes, and ends in the middle of a line.
    rt.block_on(log.run_started(8, 2));
    let (out, out_w) = pipe_pair().unwrap();
    let pumps = rt.block_on(async { start(&log, vec![(Stream::Stdout, out)], 8, 2) });
    let mut w = std::fs::File::from(out_w);
    w.write_all(b"one\ntwo").unwrap();
    drop(w);
    rt.block_on(ended(pumps));
    rt.block_on(log.run_ended(None, true));
    assert_eq!(std::fs::read(&file).unwrap(), b"one\ntwo");
}

#[test]
fn pipe_now_tells_an_empty_pipe_from_bytes_and_from_its_end() {
    use crate::logs::rotate::{pipe_now, PipeNow};
    use std::os::fd::AsFd;
    let (r, w) = pipe_pair().unwrap();
    assert_eq!(pipe_now(r.as_fd()), PipeNow::Empty);
    let mut w = std::fs::File::from(w);
    w.write_all(b"x").unwrap();
    assert_eq!(pipe_now(r.as_fd()), PipeNow::Bytes);
    drop(w);
    assert_eq!(
        pipe_now(r.as_fd()),
        PipeNow::Bytes,
        "a byte left at the end"
    );
    let mut byte = [0u8; 1];
    assert_eq!(rustix::io::read(&r, &mut byte), Ok(1));
    assert_eq!(pipe_now(r.as_fd()), PipeNow::Ended);
}
