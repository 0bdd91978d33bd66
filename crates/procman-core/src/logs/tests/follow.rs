//! Following logs as they grow: appends, rotations, two logs at once, a
//! directory that appears later, and the two ways a follow ends.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use super::*;
use crate::config::ProcessLogFormat;
use crate::logs::reader::{write_merged, Cursor, LogSet, Source, Style};
use crate::logs::support::{self, append};

const DEADLINE: Duration = Duration::from_secs(30);

/// A plain log: the format the manager writes by default.
fn set(dir: &Path, id: &str) -> LogSet {
    support::set(dir, id, ProcessLogFormat::Plain)
}

fn line(i: usize) -> String {
    format!("2026-11-30T07:37:15.{i:06}Z stdout line {i}\n")
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
    append(&s.path, (0..3).map(line).collect::<String>())?;
    let want: String = (2..10).map(line).collect();
    let mut cursor = Cursor::tail(&s, 1)?;
    let path = s.path.clone();
    let out = follow_until(
        vec![s.path.clone()],
        want.len(),
        move |out| cursor.copy_to(out).map(drop),
        move || (3..10).for_each(|i| append(&path, line(i)).expect("append")),
    );
    assert_eq!(String::from_utf8(out)?, want);
    Ok(())
}

#[test]
fn follow_across_rotation_loses_and_repeats_nothing() -> anyhow::Result<()> {
    for round in 0..20 {
        let dir = tempfile::tempdir()?;
        let s = set(dir.path(), "web");
        append(&s.path, line(0))?;
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
        append(&s.path, line(0))?;
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
            append(&writing.path, line(0)).expect("append");
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
    append(&s.path, line(0))?;
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
