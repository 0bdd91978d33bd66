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
    let mut out = Vec::new();
    loop {
        let n = cursor.read_with(&mut buf, &mut || {
            if let Some(w) = writer.take() {
                w().expect("writer");
            }
        })?;
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    assert_eq!(String::from_utf8(out)?, "b\nc\n");
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
