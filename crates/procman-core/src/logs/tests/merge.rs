//! Records of one or several logs, merged by time, long lines in pieces,
//! bytes passed through unchanged.

use std::fs;

use super::*;
use crate::config::ProcessLogFormat;
use crate::logs::support::{append, json, merged, plain, set, tail_bytes};

#[test]
fn a_200_kb_line_is_one_record() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let s = set(dir.path(), "big", ProcessLogFormat::Plain);
    let long = "x".repeat(200_000);
    let text = plain(1, "first") + &plain(2, &long) + &plain(3, "last");
    fs::write(&s.path, &text)?;
    let want = plain(2, &long) + &plain(3, "last");
    assert_eq!(String::from_utf8(tail_bytes(&s, 2))?, want);
    let prefixed = format!("big | {}big | {}", plain(2, &long), plain(3, "last"));
    assert_eq!(merged(&[s], 2, Style::Prefixed), prefixed);
    Ok(())
}

#[test]
fn a_line_longer_than_a_piece_is_prefixed_once_and_kept_whole() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let s = set(dir.path(), "huge", ProcessLogFormat::Raw);
    let long = "y".repeat(MAX_PIECE * 2 + 5);
    fs::write(&s.path, format!("a\n{long}\nb\n"))?;
    let want = format!("huge | a\nhuge | {long}\nhuge | b\n");
    assert_eq!(merged(&[s], 0, Style::Prefixed), want);
    Ok(())
}

#[test]
fn invalid_utf8_passes_through_unchanged() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let s = set(dir.path(), "bin", ProcessLogFormat::Plain);
    let mut text = plain(1, "ok").into_bytes();
    text.extend_from_slice(b"2026-11-30T07:37:15.000002Z stderr \xff\xfe\x00\x80 end\n");
    fs::write(&s.path, &text)?;
    assert_eq!(tail_bytes(&s, 0), text);
    let mut sources = merged_tail(std::slice::from_ref(&s), 1)?;
    let mut out = Vec::new();
    write_merged(&mut sources, Style::Prefixed, true, &mut out)?;
    assert_eq!(
        out,
        b"bin | 2026-11-30T07:37:15.000002Z stderr \xff\xfe\x00\x80 end\n"
    );
    Ok(())
}

#[test]
fn two_processes_merge_by_timestamp() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let a = set(dir.path(), "a", ProcessLogFormat::Json);
    let b = set(dir.path(), "b", ProcessLogFormat::Plain);
    fs::write(a.rotated(1), json(1, "a", "a1") + &json(4, "a", "a4"))?;
    fs::write(&a.path, json(5, "a", "a5") + &json(9, "a", "a9"))?;
    fs::write(&b.path, plain(2, "b2") + &plain(5, "b5") + &plain(7, "b7"))?;
    let all = merged(&[a.clone(), b.clone()], 0, Style::Prefixed);
    let order: Vec<&str> = all
        .lines()
        .map(|l| l.trim_end_matches("\"}"))
        .map(|l| &l[l.len() - 2..])
        .collect();
    // Equal times (a5, b5): the first set first.
    assert_eq!(order, ["a1", "b2", "a4", "a5", "b5", "b7", "a9"]);
    assert!(all.starts_with("a | {\"ts\""), "{all}");
    let last3 = merged(&[a, b], 3, Style::Prefixed);
    assert_eq!(
        last3,
        format!(
            "b | {}b | {}a | {}",
            plain(5, "b5"),
            plain(7, "b7"),
            json(9, "a", "a9")
        )
    );
    Ok(())
}

#[test]
fn raw_output_without_a_final_newline_counts_as_a_record() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let s = set(dir.path(), "r", ProcessLogFormat::Raw);
    fs::write(&s.path, "a\nprompt> ")?;
    assert_eq!(String::from_utf8(tail_bytes(&s, 1))?, "prompt> ");
    // A snapshot ends it with a newline; a follow waits for its rest.
    assert_eq!(
        merged(std::slice::from_ref(&s), 0, Style::Prefixed),
        "r | a\nr | prompt> \n"
    );
    let mut sources = merged_tail(std::slice::from_ref(&s), 0)?;
    let mut out = Vec::new();
    write_merged(&mut sources, Style::Prefixed, false, &mut out)?;
    append(&s.path, "yes\n")?;
    write_merged(&mut sources, Style::Prefixed, false, &mut out)?;
    assert_eq!(String::from_utf8(out)?, "r | a\nr | prompt> yes\n");
    Ok(())
}
