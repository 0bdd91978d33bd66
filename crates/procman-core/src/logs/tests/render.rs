//! `-o json`: plain and raw records converted to JSON objects, losslessly.

use std::fs;
use std::path::PathBuf;

use super::*;
use crate::logs::support::{json, merged, plain, set};

#[test]
fn json_output_converts_plain_and_raw_records_losslessly() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let p = set(dir.path(), "p", ProcessLogFormat::Plain);
    let mut text = b"2026-11-30T07:37:15.000001Z ----- run 3 pid 1234 -----\n".to_vec();
    text.extend_from_slice(plain(2, "hello \"you\"").as_bytes());
    text.extend_from_slice(b"2026-11-30T07:37:15.000003Z stderr+ bad \xff\n");
    fs::write(&p.path, &text)?;
    let r = set(dir.path(), "r", ProcessLogFormat::Raw);
    fs::write(&r.path, "raw line\n")?;
    let j = set(dir.path(), "j", ProcessLogFormat::Json);
    fs::write(&j.path, json(4, "j", "as stored"))?;
    let out = merged(&[p, r, j], 0, Style::Json);
    let objects: Vec<serde_json::Value> = out
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    assert_eq!(
        objects[0],
        serde_json::json!({"id": "r", "line": "raw line"})
    );
    assert_eq!(
        objects[1],
        serde_json::json!({"ts": "2026-11-30T07:37:15.000001Z", "id": "p", "pid": 1234, "run": 3, "event": "start"})
    );
    assert_eq!(
        objects[2],
        serde_json::json!({"ts": "2026-11-30T07:37:15.000002Z", "id": "p", "stream": "stdout", "line": "hello \"you\""})
    );
    assert_eq!(
        objects[3],
        serde_json::json!({"ts": "2026-11-30T07:37:15.000003Z", "id": "p", "stream": "stderr",
            "line": "bad \u{FFFD}", "line_base64": "YmFkIP8=", "continues": true})
    );
    assert_eq!(
        format!("{}\n", out.lines().nth(4).unwrap_or("")),
        json(4, "j", "as stored")
    );
    Ok(())
}

#[test]
fn invalid_utf8_is_carried_in_standard_base64_with_padding() -> anyhow::Result<()> {
    let raw = LogSet {
        id: "r".to_string(),
        path: PathBuf::from("r.log"),
        format: ProcessLogFormat::Raw,
    };
    // RFC 4648 vectors, each made invalid UTF-8 by a leading 0xff, and the
    // two characters in which the standard and URL-safe alphabets differ.
    let cases: [(&[u8], &str); 5] = [
        (b"\xff", "/w=="),
        (b"\xfff", "/2Y="),
        (b"\xfffo", "/2Zv"),
        (b"\xfffoobar", "/2Zvb2Jhcg=="),
        (b"\xfb\xff\xbf", "+/+/"),
    ];
    for (bytes, encoded) in cases {
        let piece = Piece {
            key: [0; TS_LEN],
            bytes: bytes.to_vec(),
            starts: true,
            ends: true,
        };
        let mut out = Vec::new();
        write_piece(&raw, &piece, Style::Json, &mut out)?;
        let object: serde_json::Value = serde_json::from_slice(&out)?;
        assert_eq!(object["line_base64"], encoded, "{bytes:?}");
    }
    Ok(())
}

#[test]
fn the_record_that_ends_a_run_becomes_an_end_event() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let p = set(dir.path(), "p", ProcessLogFormat::Plain);
    fs::write(
        &p.path,
        "2026-11-30T07:37:15.000001Z ----- run 3 pid 1234 ended: killed by SIGKILL (stop requested) after 2s 5ms -----\n",
    )?;
    let out = merged(&[p], 0, Style::Json);
    let object: serde_json::Value = serde_json::from_str(out.trim())?;
    assert_eq!(
        object,
        serde_json::json!({"ts": "2026-11-30T07:37:15.000001Z", "id": "p", "pid": 1234, "run": 3,
            "event": "end", "line": "killed by SIGKILL (stop requested) after 2s 5ms"})
    );
    Ok(())
}
