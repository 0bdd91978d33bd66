//! Log records of a real manager's processes: a tail of one log or of all,
//! the refusals, and a follow that sees new records and ends once its
//! receiver is dropped, idle or blocked on a slow reader.

use std::time::Duration;

use procman_core::supervisor::Phase;
use serde_json::Value;

use super::*;
use crate::server::test_support::{self as support, sh};

/// Records as the JSON values a client reads.
fn parsed(records: Vec<Record>) -> Vec<Value> {
    records
        .iter()
        .map(|r| serde_json::from_str(r.as_str()).expect("a record is JSON"))
        .collect()
}

fn lines(records: &[Value]) -> Vec<&str> {
    records.iter().filter_map(|r| r["line"].as_str()).collect()
}

/// Tails `id` until it holds `want` records with a `line`.
async fn tail_until(control: &Control, id: Option<&str>, want: usize) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + support::DEADLINE;
    loop {
        let records = parsed(tail(control, id, 0).await.expect("tail"));
        if lines(&records).len() >= want {
            return records;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never {want} lines: {records:#?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn next(rx: &mut mpsc::Receiver<Record>) -> Value {
    let record = tokio::time::timeout(support::DEADLINE, rx.recv())
        .await
        .expect("a record within the deadline")
        .expect("the follow goes on");
    serde_json::from_str(record.as_str()).expect("a record is JSON")
}

async fn until_no_follower() {
    support::until("every follower ended", || {
        FOLLOWERS.load(Ordering::Acquire) == 0
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tail_of_one_log_or_all_of_them_merged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let work = format!("        working_directory: \"{}\"\n", dir.path().display());
    let processes = [
        sh("a", "echo one; echo two; echo three; exec sleep 100", ""),
        // Writes once told to, so after every line of `a`.
        sh(
            "b",
            "while [ ! -e go ]; do sleep 0.02; done; echo four >&2; exec sleep 100",
            &work,
        ),
        sh(
            "quiet",
            "exec sleep 100",
            "      logging:\n        file: false\n",
        ),
        sh("idle", "exec sleep 100", "    enabled: false\n"),
    ]
    .concat();
    let m = support::manager(dir.path(), &processes);
    let control = m.control().clone();
    m.start().await;
    // Never run: no file yet, no record.
    assert_eq!(
        tail(&control, Some("idle"), 10).await.expect("tail"),
        Vec::<Record>::new()
    );
    let a = tail_until(&control, Some("a"), 3).await;
    assert_eq!(lines(&a), ["one", "two", "three"]);
    assert_eq!(a[0]["event"], "start", "the run separator first: {a:#?}");
    assert_eq!(a[0]["run"], 1);
    assert_eq!(a[1]["stream"], "stdout");
    assert!(a.iter().all(|r| r["id"] == "a" && r["ts"].is_string()));
    std::fs::write(dir.path().join("go"), "").expect("go");
    let last = parsed(tail(&control, Some("a"), 2).await.expect("tail"));
    assert_eq!(lines(&last), ["two", "three"]);

    let all = tail_until(&control, None, 4).await;
    assert_eq!(lines(&all), ["one", "two", "three", "four"], "{all:#?}");
    let times: Vec<&str> = all.iter().filter_map(|r| r["ts"].as_str()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "merged by time");
    let last = parsed(tail(&control, None, 1).await.expect("tail"));
    assert_eq!(lines(&last), ["four"]);
    assert_eq!(
        (&last[0]["id"], &last[0]["stream"]),
        (&"b".into(), &"stderr".into())
    );

    match tail(&control, Some("nope"), 10).await {
        Err(Refusal::NotFound(m)) => assert!(m.contains("nope"), "{m}"),
        other => panic!("{other:?}"),
    }
    match tail(&control, Some("quiet"), 10).await {
        Err(Refusal::Conflict(m)) => assert!(m.contains("no log file"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        follow(&control, Some("quiet"), 1),
        Err(Refusal::Conflict(_))
    ));
    m.shutdown().await;
}

#[test]
fn the_newest_records_are_kept_within_the_bounds() {
    assert_eq!(bounded(0), MAX_RECORDS);
    assert_eq!(bounded(usize::MAX), MAX_RECORDS);
    assert_eq!(bounded(7), 7);
    let mut kept = Newest::new(3);
    for i in 0..10 {
        kept.push(format!("{{\"line\":\"{i}\"}}").as_bytes());
    }
    kept.push(b"not json");
    let texts: Vec<&str> = kept.records.iter().map(Record::as_str).collect();
    assert_eq!(
        texts,
        [r#"{"line":"7"}"#, r#"{"line":"8"}"#, r#"{"line":"9"}"#]
    );
    // Big records: only as many as fit in MAX_BYTES, and always the last.
    let mut kept = Newest::new(MAX_RECORDS);
    let big = format!("{{\"line\":\"{}\"}}", "x".repeat(MAX_BYTES / 3));
    for _ in 0..5 {
        kept.push(big.as_bytes());
    }
    assert_eq!(kept.records.len(), 2);
    assert!(kept.bytes <= MAX_BYTES);
    let mut kept = Newest::new(MAX_RECORDS);
    kept.push(format!("{{\"line\":\"{}\"}}", "x".repeat(MAX_BYTES)).as_bytes());
    assert_eq!(
        kept.records.len(),
        1,
        "one record too big is still the newest"
    );
}

#[test]
fn lines_are_cut_at_newlines_across_writes() {
    let mut got: Vec<Vec<u8>> = Vec::new();
    let mut out = Lines::new(|l: &[u8]| {
        got.push(l.to_vec());
        Ok(())
    });
    out.write_all(b"ab").expect("write");
    out.write_all(b"c\nd\n\nef").expect("write");
    out.write_all(b"\n").expect("write");
    drop(out);
    assert_eq!(
        got,
        [b"abc".to_vec(), b"d".to_vec(), b"".to_vec(), b"ef".to_vec()]
    );
}

// The only test that follows: it counts the followers of the whole binary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follow_sees_new_records_and_ends_when_dropped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let work = dir.path().display().to_string();
    let processes = [
        sh(
            "a",
            "echo first; while [ ! -e go ]; do sleep 0.05; done; echo second; exec sleep 100",
            &format!("        working_directory: \"{work}\"\n"),
        ),
        sh(
            "flood",
            "exec seq 1 200000",
            "      restart_policy:\n        strategy: never\n",
        ),
    ]
    .concat();
    let m = support::manager(dir.path(), &processes);
    let control = m.control().clone();
    m.start().await;
    tail_until(&control, Some("a"), 1).await;
    let mut rx = follow(&control, Some("a"), 10).expect("follow");
    assert_eq!(next(&mut rx).await["event"], "start");
    assert_eq!(next(&mut rx).await["line"], "first");
    std::fs::write(dir.path().join("go"), "").expect("go");
    assert_eq!(next(&mut rx).await["line"], "second");
    assert_eq!(FOLLOWERS.load(Ordering::Acquire), 1);
    // Idle: the follower waits in poll, and the drop wakes it.
    drop(rx);
    until_no_follower().await;

    // A reader that stops reading: the follower waits on the channel (a
    // bounded backlog), and the drop wakes it too.
    support::wait_for(&control, "flood", Phase::Exited, 1).await;
    let mut rx = follow(&control, None, 0).expect("follow");
    next(&mut rx).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rx.len(), FOLLOW_BACKLOG, "the backlog is full, and no more");
    assert_eq!(FOLLOWERS.load(Ordering::Acquire), 1);
    drop(rx);
    until_no_follower().await;
    m.shutdown().await;
}
