//! The journal on a real temporary directory: its bound and rotation,
//! reading back across the rotation, the filter, lines that are not events,
//! a lagging writer, and the events of a real manager.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use procman_core::outcome::ProcessEnd;
use procman_core::supervisor::{Cause, Event, Phase, Transition};
use tokio::sync::broadcast;

use super::*;
use crate::server::feeds;
use crate::server::test_support::{self as support, sh};

/// An event as the manager publishes it (shared, in an `Arc`).
fn event(seq: u64, process: &str) -> Arc<Event> {
    Arc::new(Event {
        seq,
        process: Arc::from(process),
        transition: Transition {
            from: Phase::Running,
            to: Phase::Backoff,
            cause: Cause::Exit(ProcessEnd::Exited(3)),
            at: SystemTime::now(),
        },
        pid: Some(4242),
        run: seq as u32,
    })
}

fn line(seq: u64, process: &str) -> String {
    let mut s = serde_json::to_string(&service::event(&event(seq, process))).expect("json");
    s.push('\n');
    s
}

fn seqs(events: &[api::Event]) -> Vec<u64> {
    events.iter().map(|e| e.seq).collect()
}

/// Every line of a journal file, each a whole event.
fn events_in(path: &Path) -> Vec<api::Event> {
    let text = fs::read_to_string(path).expect("read");
    assert!(text.is_empty() || text.ends_with('\n'), "whole records");
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[test]
fn rotation_keeps_the_bound_at_record_boundaries() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Room for every event: this test is about rotation, not lag.
    let (tx, rx) = broadcast::channel(1 << 15);
    let journal = Journal::start(dir.path(), rx).expect("journal");
    let total = 12_000u64;
    for seq in 1..=total {
        tx.send(event(seq, "a-process-with-a-longer-name"))
            .expect("send");
    }
    drop(tx);
    assert!(journal.finish(support::DEADLINE), "the writer ended");
    let live = path(dir.path());
    let rotated = rotated_path(dir.path());
    let (a, b) = (events_in(&rotated), events_in(&live));
    for p in [&live, &rotated] {
        let meta = fs::metadata(p).expect("metadata");
        assert!(meta.len() <= MAX_BYTES, "{}: {}", p.display(), meta.len());
        assert_eq!(
            meta.permissions().mode() & 0o077 & !0o040,
            0,
            "0640 or stricter"
        );
    }
    assert!(
        !dir.path().join("events.jsonl.2").exists(),
        "one rotated file"
    );
    assert!(fs::metadata(&rotated).expect("rotated").len() > MAX_BYTES - 1024);
    // The two files hold the newest events, in order, without a gap.
    let all: Vec<u64> = seqs(&a).into_iter().chain(seqs(&b)).collect();
    assert!(all[0] > 1, "the oldest were rotated away");
    assert_eq!(all, (all[0]..=total).collect::<Vec<_>>());
    // Read back across the rotation.
    let last = read_last(dir.path(), 0, None).expect("read");
    assert_eq!(seqs(&last), all);
    let n = b.len() + 10;
    let last = read_last(dir.path(), n, None).expect("read");
    assert_eq!(
        seqs(&last),
        ((total - n as u64 + 1)..=total).collect::<Vec<_>>()
    );
    assert_eq!(last[0].process, "a-process-with-a-longer-name");
    assert_eq!(last[0].cause_kind, "exit");
}

#[test]
fn read_last_spans_both_files_and_filters_by_process() {
    let dir = tempfile::tempdir().expect("tempdir");
    let older: String = (1..=5)
        .map(|s| line(s, if s % 2 == 0 { "b" } else { "a" }))
        .collect();
    let newer: String = (6..=8)
        .map(|s| line(s, if s % 2 == 0 { "b" } else { "a" }))
        .collect();
    fs::write(rotated_path(dir.path()), older).expect("write");
    fs::write(path(dir.path()), newer).expect("write");
    assert_eq!(
        seqs(&read_last(dir.path(), 4, None).expect("read")),
        [5, 6, 7, 8]
    );
    assert_eq!(
        seqs(&read_last(dir.path(), 0, None).expect("read")),
        (1..=8).collect::<Vec<_>>()
    );
    assert_eq!(
        seqs(&read_last(dir.path(), 3, Some("a")).expect("read")),
        [3, 5, 7]
    );
    assert_eq!(
        seqs(&read_last(dir.path(), 0, Some("b")).expect("read")),
        [2, 4, 6, 8]
    );
    assert!(read_last(dir.path(), 0, Some("c"))
        .expect("read")
        .is_empty());
    // Only the rotated file (a rotation under way).
    fs::remove_file(path(dir.path())).expect("remove");
    assert_eq!(seqs(&read_last(dir.path(), 2, None).expect("read")), [4, 5]);
}

#[test]
fn garbage_and_a_partial_last_line_are_skipped_and_no_journal_is_empty() {
    let dir = tempfile::tempdir().expect("tempdir");
    assert!(read_last(dir.path(), 10, None)
        .expect("no journal")
        .is_empty());
    let whole = line(2, "a");
    let text = format!(
        "not json at all\n{}\n\n{{\"seq\":1}}\n\u{0}\u{1}binary\n{whole}{}",
        line(1, "a").trim_end(),
        &line(3, "a")[..40],
    );
    fs::write(path(dir.path()), text).expect("write");
    assert_eq!(seqs(&read_last(dir.path(), 0, None).expect("read")), [1, 2]);
}

#[test]
fn a_symbolic_link_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let target = dir.path().join("elsewhere");
    fs::write(&target, line(1, "a")).expect("write");
    std::os::unix::fs::symlink(&target, path(dir.path())).expect("symlink");
    let (_tx, rx) = broadcast::channel(4);
    let e = Journal::start(dir.path(), rx).expect_err("refused");
    assert!(e.to_string().contains("symbolic link"), "{e}");
    assert!(
        read_last(dir.path(), 0, None).is_err(),
        "not followed either"
    );
}

#[test]
fn a_writer_that_lags_writes_only_what_it_received() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (tx, rx) = broadcast::channel(4);
    // Sent before the writer runs: it has missed all but the last 4.
    for seq in 1..=100 {
        tx.send(event(seq, "a")).expect("send");
    }
    let journal = Journal::start(dir.path(), rx).expect("journal");
    drop(tx);
    assert!(journal.finish(support::DEADLINE));
    assert_eq!(seqs(&events_in(&path(dir.path()))), [97, 98, 99, 100]);
}

#[test]
fn finish_is_bounded_while_senders_live() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (tx, rx) = broadcast::channel(4);
    let journal = Journal::start(dir.path(), rx).expect("journal");
    let started = std::time::Instant::now();
    assert!(!journal.finish(Duration::from_millis(100)));
    assert!(started.elapsed() < Duration::from_secs(10));
    // The writer still works, detached.
    tx.send(event(1, "a")).expect("send");
    drop(tx);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_managers_transitions_are_journaled() {
    let dir = tempfile::tempdir().expect("tempdir");
    let m = support::manager(dir.path(), &sh("p", "exec sleep 100", ""));
    let state_dir = m.state_dir().to_path_buf();
    let journal = Journal::start(&state_dir, m.control().events()).expect("journal");
    m.start().await;
    support::wait_for(m.control(), "p", Phase::Running, 1).await;
    m.control().stop_process("p").await.expect("stop");
    m.shutdown().await;
    // Every sender is gone with the manager: the writer ends.
    let finished = tokio::task::spawn_blocking(move || journal.finish(support::DEADLINE))
        .await
        .expect("join");
    assert!(finished, "the writer ended with the manager");
    let events = read_last(&state_dir, 0, Some("p")).expect("read");
    let steps: Vec<(&str, &str, &str)> = events
        .iter()
        .map(|e| (e.from.as_str(), e.to.as_str(), e.cause_kind.as_str()))
        .collect();
    assert_eq!(
        steps,
        [
            ("registered", "starting", "start_requested"),
            ("starting", "running", "ready"),
            ("running", "stopping", "stop_requested"),
            ("stopping", "stopped", "stop_requested"),
        ],
        "{events:#?}"
    );
    assert_eq!(seqs(&events), [1, 2, 3, 4]);
    assert!(events[0].pid.is_some());
    assert_eq!(events[0].run, 1);
}

#[test]
fn the_written_mark_reaches_the_last_event_once_it_is_in_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (tx, rx) = broadcast::channel(256);
    let journal = Journal::start(dir.path(), rx).expect("journal");
    let mut written = journal.written();
    for seq in 1..=50 {
        tx.send(event(seq, "a")).expect("send");
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        tokio::time::timeout(support::DEADLINE, written.wait_for(|&w| w >= 50))
            .await
            .expect("the mark reached 50")
            .expect("the writer is alive");
    });
    // What the mark says is in the file is there.
    let events = read_last(dir.path(), 0, None).expect("read");
    assert_eq!(seqs(&events), (1..=50).collect::<Vec<_>>());
    drop(tx);
    assert!(journal.finish(support::DEADLINE));
}

/// A follower that asks for past events while transitions come fast gets
/// the journal's last ones and then the live ones with no number missing
/// between them (the journal is written in batches, behind the live
/// events).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_gets_past_and_live_events_without_a_gap() {
    let dir = tempfile::tempdir().expect("tempdir");
    let loops: String = (0..4)
        .map(|i| {
            sh(
                &format!("loop{i}"),
                "exit 1",
                "      restart_policy:\n        strategy: always\n        restart_delay: 5ms\n        backoff_multiplier: 1.0\n        max_attempts: 0\n",
            )
        })
        .collect();
    let m = support::manager(dir.path(), &loops);
    let state_dir = m.state_dir().to_path_buf();
    let journal = Journal::start(&state_dir, m.control().events()).expect("journal");
    let written = journal.written();
    m.start().await;
    for round in 0..5 {
        // Transitions keep coming while the follower starts.
        support::wait_for(m.control(), "loop0", Phase::Backoff, 3 + round * 3).await;
        let mut rx = feeds::follow_events(m.control(), &written, Some(20), None)
            .await
            .expect("follow");
        let mut got = Vec::new();
        while got.len() < 60 {
            match tokio::time::timeout(support::DEADLINE, rx.recv()).await {
                Ok(Some(feeds::Item::Event(e))) => got.push(e.seq),
                Ok(Some(other)) => panic!("round {round}: not an event: {other:?}"),
                Ok(None) | Err(_) => panic!("round {round}: the stream ended after {got:?}"),
            }
        }
        let expected: Vec<u64> = (got[0]..got[0] + got.len() as u64).collect();
        assert_eq!(
            got, expected,
            "round {round}: past then live events, in order, none missing"
        );
    }
    m.shutdown().await;
    let _ = tokio::task::spawn_blocking(move || journal.finish(support::DEADLINE)).await;
}
