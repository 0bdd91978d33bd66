//! A chain of rotated files read oldest first, the walk backwards over it
//! that finds the last `n` records, and where the config puts a log.

use std::fs;
use std::path::{Path, PathBuf};

use super::*;
use crate::logs::reader::Style;
use crate::logs::support::{merged, plain, set, tail_bytes};

/// Lines `from..to`, written to `path`.
fn write_lines(path: &Path, from: u32, to: u32) -> String {
    let text: String = (from..to).map(|i| plain(i, &format!("line {i}"))).collect();
    fs::write(path, &text).expect("write");
    text
}

#[test]
fn tail_reads_across_three_rotated_files_oldest_first() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let s = set(dir.path(), "web", ProcessLogFormat::Plain);
    write_lines(&s.rotated(3), 0, 5);
    write_lines(&s.rotated(2), 5, 10);
    write_lines(&s.rotated(1), 10, 15);
    write_lines(&s.path, 15, 20);
    let want: String = (8..20).map(|i| plain(i, &format!("line {i}"))).collect();
    assert_eq!(String::from_utf8(tail_bytes(&s, 12))?, want);
    // The boundary between two files, exactly.
    let want: String = (10..20).map(|i| plain(i, &format!("line {i}"))).collect();
    assert_eq!(String::from_utf8(tail_bytes(&s, 10))?, want);
    Ok(())
}

#[test]
fn n_larger_than_everything_and_zero_give_everything() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let s = set(dir.path(), "web", ProcessLogFormat::Plain);
    let mut all = write_lines(&s.rotated(1), 0, 3);
    all += &write_lines(&s.path, 3, 6);
    assert_eq!(String::from_utf8(tail_bytes(&s, 1000))?, all);
    assert_eq!(String::from_utf8(tail_bytes(&s, 0))?, all);
    assert_eq!(merged(std::slice::from_ref(&s), 1000, Style::Stored), all);
    Ok(())
}

#[test]
fn a_missing_log_is_empty_not_an_error() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let s = set(
        &dir.path().join("never/created"),
        "web",
        ProcessLogFormat::Plain,
    );
    assert!(tail_bytes(&s, 50).is_empty());
    assert_eq!(merged(&[s], 50, Style::Prefixed), "");
    Ok(())
}

#[test]
fn backwards_scan_matches_a_naive_split_across_blocks() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let s = set(dir.path(), "raw", ProcessLogFormat::Raw);
    // Lines of many lengths, empty ones included, over several blocks,
    // and a last line without its newline.
    let mut text = Vec::new();
    for i in 0..3000usize {
        text.extend(std::iter::repeat_n(b'a' + (i % 26) as u8, (i * 37) % 301));
        text.push(b'\n');
    }
    text.extend_from_slice(b"no newline");
    fs::write(&s.path, &text)?;
    let lines: Vec<&[u8]> = text.split(|&b| b == b'\n').collect();
    for n in [1, 2, 17, 500, 2999, 3000, 3001, 5000] {
        let from = lines.len().saturating_sub(n);
        assert_eq!(tail_bytes(&s, n), lines[from..].join(&b'\n'), "n = {n}");
    }
    Ok(())
}

#[test]
fn log_sets_follow_the_config() -> anyhow::Result<()> {
    let yaml = "
        process_manager:
          log_dir: /var/log/pm
        managed_processes:
          - id: a
            management:
              control: {executable: a}
          - id: b
            management:
              control: {executable: b}
              logging: {file: /tmp/b.txt, format: json}
          - id: c
            management:
              control: {executable: c}
              logging: {file: false}
    ";
    let config = crate::config::load_str(yaml, Path::new("/etc/pm.yaml"), &|_| None)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let sets: Vec<Option<LogSet>> = config
        .processes
        .iter()
        .map(|p| LogSet::of(&config, p))
        .collect::<Result<_, _>>()?;
    assert_eq!(
        sets[0].as_ref().map(|s| s.path.clone()),
        Some(PathBuf::from("/var/log/pm/a.log"))
    );
    assert_eq!(
        sets[1].as_ref().map(|s| (s.path.clone(), s.format)),
        Some((PathBuf::from("/tmp/b.txt"), ProcessLogFormat::Json))
    );
    assert_eq!(sets[2], None);
    assert_eq!(
        LogSet::of(&config, &config.processes[0])?.map(|s| s.rotated(2)),
        Some(PathBuf::from("/var/log/pm/a.log.2"))
    );
    Ok(())
}

/// A whole rotation as the manager does it (`.k` → `.k+1` from the
/// oldest, then the live file → `.1`), then `text` in a new live file.
fn rotate(s: &LogSet, text: &str) {
    let mut k = 1;
    while s.rotated(k).exists() {
        k += 1;
    }
    for j in (1..k).rev() {
        fs::rename(s.rotated(j), s.rotated(j + 1)).expect("shift");
    }
    fs::rename(&s.path, s.rotated(1)).expect("rotate");
    fs::write(&s.path, text).expect("write");
}

/// The bytes of `segs`, in their order, each up to its length.
fn contents(segs: &[Segment]) -> anyhow::Result<String> {
    let mut out = Vec::new();
    for seg in segs {
        let mut bytes = vec![0u8; usize::try_from(seg.len)?];
        seg.file.read_exact_at(&mut bytes, 0)?;
        out.extend_from_slice(&bytes);
    }
    Ok(String::from_utf8(out)?)
}

#[test]
fn a_chain_rotated_while_it_is_opened_comes_out_in_order() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let s = set(dir.path(), "web", ProcessLogFormat::Plain);
    fs::write(&s.path, "a\n")?;
    rotate(&s, "b\n");
    rotate(&s, "c\n");
    // Three rotations between the looks at `.1` ("b") and `.2`, which then
    // holds "d": newer than "b", though found after it.
    let mut writer = Some(|| ["d\n", "e\n", "f\n"].iter().for_each(|t| rotate(&s, t)));
    let mut hook = |step: Step<'_>| {
        if step == Step::Look(&s.rotated(2)) {
            if let Some(w) = writer.take() {
                w();
            }
        }
    };
    let segs = open_chain_with(&s.path, true, &mut Probe::hooked(&mut hook))?;
    assert!(writer.is_none(), "the reader never looked at .2");
    assert_eq!(contents(&segs)?, "a\nb\nc\nd\ne\nf\n");
    Ok(())
}

#[test]
fn a_chain_that_rotates_during_every_look_is_an_error_naming_it() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let s = set(dir.path(), "web", ProcessLogFormat::Plain);
    fs::write(&s.path, "a\n")?;
    // With `max_files: 1`: the live file replaces `.1` at each look there.
    let mut hook = |step: Step<'_>| {
        if step == Step::Look(&s.rotated(1)) {
            fs::rename(&s.path, s.rotated(1)).expect("rotate");
            fs::write(&s.path, "a\n").expect("write");
        }
    };
    let err = open_chain_with(&s.path, true, &mut Probe::hooked(&mut hook))
        .err()
        .ok_or_else(|| anyhow::anyhow!("a chain that never settles was opened"))?;
    assert_eq!(
        err.to_string(),
        format!(
            "log file {} rotated during each of 64 attempts to open its files",
            s.path.display()
        )
    );
    // Once the writer pauses, the same chain opens.
    assert_eq!(contents(&open_chain(&s.path, true)?)?, "a\na\n");
    Ok(())
}
