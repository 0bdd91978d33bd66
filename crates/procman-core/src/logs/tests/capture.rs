//! The pumps never make the async runtime wait for a file.

use std::io::Write;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::*;
use crate::logs::sink::LogSetup;

/// A process `svc` whose log goes to `<dir>/svc.log`.
fn log_in(dir: &std::path::Path) -> Arc<ProcessLog> {
    let yaml = format!(
        "process_manager:\n  state_dir: {d}/state\n  log_dir: {d}/logs\nmanaged_processes:\n  - id: svc\n    management:\n      control: {{executable: svc}}\n",
        d = dir.display()
    );
    let config = crate::config::load_str(&yaml, &dir.join("pm.yaml"), &|_| None).expect("config");
    let setup = LogSetup::start(&config).expect("setup");
    Arc::new(ProcessLog::new(&config.processes[0], &setup).expect("log"))
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
    rt.block_on(async {
        for p in pumps {
            tokio::time::timeout(Duration::from_secs(30), p)
                .await
                .expect("the pump ends once the write goes through")
                .unwrap();
        }
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
    rt.block_on(async {
        for p in pumps {
            tokio::time::timeout(Duration::from_secs(30), p)
                .await
                .expect("the pump ends at the end of the pipe")
                .expect("the pump does not panic");
        }
    });
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
