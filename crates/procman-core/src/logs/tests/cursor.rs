//! A cursor that hands out only whole records of the live file and
//! follows it across rotations, removal and truncation.

use std::fs;
use std::io;

use super::*;
use crate::logs::support::{append, json, plain, set, tail_bytes};

fn read_all(cursor: &mut Cursor) -> Result<String, ReadError> {
    let mut out = Vec::new();
    cursor.copy_to(&mut out)?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// [`read_all`], with `hook` called at each step where the reader looks at
/// the files (where the test puts the writer).
fn read_all_with(cursor: &mut Cursor, hook: &mut dyn FnMut(Step<'_>)) -> Result<String, ReadError> {
    let mut probe = Probe::hooked(hook);
    let mut buf = [0u8; 64];
    let mut out = Vec::new();
    loop {
        let n = cursor.read_with(&mut buf, &mut probe)?;
        if n == 0 {
            return Ok(String::from_utf8_lossy(&out).into_owned());
        }
        out.extend_from_slice(&buf[..n]);
    }
}

/// Renames the file at `.from` (0: the live file) to `.to`.
fn shift(s: &LogSet, from: u32, to: u32) {
    let path = |k| if k == 0 { s.path.clone() } else { s.rotated(k) };
    fs::rename(path(from), path(to)).expect("rename");
}

/// A whole rotation as the manager does it (`.k` → `.k+1` from the
/// oldest, then the live file → `.1`), then `text` in a new live file.
fn rotate(s: &LogSet, text: &str) {
    let mut k = 1;
    while s.rotated(k).exists() {
        k += 1;
    }
    for j in (0..k).rev() {
        shift(s, j, j + 1);
    }
    append(&s.path, text).expect("append");
}

#[test]
fn a_plain_record_being_written_is_read_once_whole() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let s = set(dir.path(), "w", ProcessLogFormat::Plain);
    fs::write(
        &s.path,
        plain(1, "one") + "2026-11-30T07:37:15.000002Z stdout hal",
    )?;
    assert_eq!(String::from_utf8(tail_bytes(&s, 1))?, plain(1, "one"));
    let mut cursor = Cursor::tail(&s, 1)?;
    assert_eq!(read_all(&mut cursor)?, plain(1, "one"));
    append(&s.path, "f\n")?;
    assert_eq!(read_all(&mut cursor)?, plain(2, "half"));
    Ok(())
}

#[test]
fn a_torn_record_truncated_away_by_the_writer_is_never_seen() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let s = set(dir.path(), "w", ProcessLogFormat::Json);
    fs::write(&s.path, json(1, "w", "one"))?;
    let mut cursor = Cursor::tail(&s, 0)?;
    assert_eq!(read_all(&mut cursor)?, json(1, "w", "one"));
    // A write cut short by a full disk, truncated back by the writer,
    // then the record written again whole.
    let boundary = fs::metadata(&s.path)?.len();
    append(&s.path, "{\"ts\":\"2026-11-30T07:3")?;
    assert_eq!(read_all(&mut cursor)?, "");
    fs::OpenOptions::new()
        .write(true)
        .open(&s.path)?
        .set_len(boundary)?;
    append(&s.path, json(2, "w", "two"))?;
    assert_eq!(read_all(&mut cursor)?, json(2, "w", "two"));
    Ok(())
}

#[test]
fn a_rotated_file_is_read_to_its_end_before_the_next() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let s = set(dir.path(), "web", ProcessLogFormat::Plain);
    append(&s.path, "a\n")?;
    let mut cursor = Cursor::tail(&s, 0)?;
    assert_eq!(read_all(&mut cursor)?, "a\n");
    // Written after our last read, then rotated, before we look again.
    append(&s.path, "b\n")?;
    fs::rename(&s.path, s.rotated(1))?;
    append(&s.path, "c\n")?;
    assert_eq!(read_all(&mut cursor)?, "b\nc\n");
    append(&s.path, "d\n")?;
    assert_eq!(read_all(&mut cursor)?, "d\n");
    Ok(())
}

#[test]
fn a_record_written_just_before_the_rename_is_not_lost() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let s = set(dir.path(), "web", ProcessLogFormat::Plain);
    append(&s.path, "a\n")?;
    let mut cursor = Cursor::tail(&s, 0)?;
    let mut buf = [0u8; 64];
    let n = cursor.read(&mut buf)?;
    assert_eq!(&buf[..n], b"a\n");
    // The writer's last record, its rotation and its next record, all
    // between our read that found the end and our look for a rename.
    let mut writer = Some(|| -> io::Result<()> {
        append(&s.path, "b\n")?;
        fs::rename(&s.path, s.rotated(1))?;
        append(&s.path, "c\n")
    });
    let out = read_all_with(&mut cursor, &mut |step| {
        if step == Step::Eof {
            if let Some(w) = writer.take() {
                w().expect("writer");
            }
        }
    })?;
    assert_eq!(out, "b\nc\n");
    Ok(())
}

#[test]
fn several_rotations_between_two_reads_are_followed_in_order() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let s = set(dir.path(), "web", ProcessLogFormat::Plain);
    append(&s.path, "a\n")?;
    let mut cursor = Cursor::tail(&s, 0)?;
    assert_eq!(read_all(&mut cursor)?, "a\n");
    append(&s.path, "b\n")?;
    fs::rename(&s.path, s.rotated(1))?;
    append(&s.path, "c\n")?;
    fs::rename(s.rotated(1), s.rotated(2))?;
    fs::rename(&s.path, s.rotated(1))?;
    append(&s.path, "d\n")?;
    assert_eq!(read_all(&mut cursor)?, "b\nc\nd\n");
    Ok(())
}

#[test]
fn a_renamed_file_without_successor_yet_is_waited_for() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let s = set(dir.path(), "web", ProcessLogFormat::Plain);
    append(&s.path, "a\n")?;
    let mut cursor = Cursor::tail(&s, 0)?;
    append(&s.path, "b\n")?;
    fs::rename(&s.path, s.rotated(1))?;
    assert_eq!(read_all(&mut cursor)?, "a\nb\n");
    append(&s.path, "c\n")?;
    assert_eq!(read_all(&mut cursor)?, "c\n");
    Ok(())
}

#[test]
fn a_removed_or_truncated_live_file_is_read_again_from_its_start() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let s = set(dir.path(), "web", ProcessLogFormat::Plain);
    append(&s.path, "old 1\nold 2\n")?;
    let mut cursor = Cursor::tail(&s, 1)?;
    assert_eq!(read_all(&mut cursor)?, "old 2\n");
    fs::remove_file(&s.path)?;
    append(&s.path, "new\n")?;
    assert_eq!(read_all(&mut cursor)?, "new\n");
    fs::write(&s.path, "")?;
    append(&s.path, "x\n")?;
    assert_eq!(read_all(&mut cursor)?, "x\n");
    Ok(())
}

#[test]
fn a_log_that_appears_later_is_read_from_its_start() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let s = set(dir.path(), "web", ProcessLogFormat::Plain);
    let mut cursor = Cursor::tail(&s, 5)?;
    assert_eq!(read_all(&mut cursor)?, "");
    append(&s.path, "a\n")?;
    fs::rename(&s.path, s.rotated(1))?;
    append(&s.path, "b\n")?;
    assert_eq!(read_all(&mut cursor)?, "a\nb\n");
    Ok(())
}

#[test]
fn a_file_carried_past_the_look_for_it_by_two_rotations_is_still_found() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let s = set(dir.path(), "web", ProcessLogFormat::Plain);
    append(&s.path, "a\n")?;
    let mut cursor = Cursor::tail(&s, 0)?;
    assert_eq!(read_all(&mut cursor)?, "a\n");
    // Ours ("a") at `.2` by now, "b" at `.1`, "c" live.
    rotate(&s, "b\n");
    rotate(&s, "c\n");
    // While the reader looks for ours from `.1` up, the writer leaves a
    // gap at `.1` (the middle of a rotation) when it looks there, and
    // another at `.2` (the middle of the next) when it looks there: two
    // missing numbers in a row, with ours at `.4` beyond them.
    let mut looked_at_1 = false;
    let mut at_2 = Some(|| {
        shift(&s, 0, 1);
        append(&s.path, "d\n").expect("append");
        shift(&s, 3, 4);
        shift(&s, 2, 3);
    });
    let mut out = read_all_with(&mut cursor, &mut |step| {
        let Step::Look(path) = step else { return };
        if path == s.rotated(1) && !looked_at_1 {
            looked_at_1 = true;
            shift(&s, 2, 3);
            shift(&s, 1, 2);
        } else if path == s.rotated(2) && looked_at_1 {
            if let Some(w) = at_2.take() {
                w();
            }
        }
    })?;
    assert!(at_2.is_none(), "the reader never looked at .2");
    // The second rotation ends; then a third, whole.
    shift(&s, 1, 2);
    shift(&s, 0, 1);
    append(&s.path, "e\n")?;
    out += &read_all(&mut cursor)?;
    assert_eq!(out, "b\nc\nd\ne\n");
    Ok(())
}

#[test]
fn a_log_rotated_three_times_while_its_files_are_first_opened_is_read_in_order(
) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let s = set(dir.path(), "web", ProcessLogFormat::Plain);
    // No file yet: the cursor opens the chain when it next reads.
    let mut cursor = Cursor::tail(&s, 0)?;
    append(&s.path, "a\n")?;
    rotate(&s, "b\n");
    rotate(&s, "c\n");
    // Between its look at `.1` ("b") and at `.2`, three more rotations:
    // `.2` then holds "d", newer than the "b" seen before it.
    let mut writer = Some(|| ["d\n", "e\n", "f\n"].iter().for_each(|t| rotate(&s, t)));
    let out = read_all_with(&mut cursor, &mut |step| {
        if step == Step::Look(&s.rotated(2)) {
            if let Some(w) = writer.take() {
                w();
            }
        }
    })?;
    assert!(writer.is_none(), "the reader never looked at .2");
    assert_eq!(out, "a\nb\nc\nd\ne\nf\n");
    Ok(())
}
