//! Log capture on real processes, as a user sees it in the files: every
//! line once and in order under a flood, long lines split and marked,
//! a last line without newline, invalid UTF-8, both streams, aggregation
//! targets, rotation, restart separators, uncaptured streams, an
//! unwritable log directory, a full disk, and the flush at a stop.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use procman_core::manager::Manager;
use procman_core::outcome::ProcessEnd;
use procman_core::supervisor::{Handle, Phase, ProcessStatus};

use crate::support::*;

/// How long a child that floods the pipe may take (debug builds, a loaded
/// machine): the watchdog is the real bound.
const FLOOD: Duration = Duration::from_secs(80);
/// For anything that is not a flood.
const SHORT: Duration = Duration::from_secs(20);

/// Digits of the number that starts each `flood` line.
const NUMBER_DIGITS: usize = 9;

// ---------------------------------------------------------------- config

/// `restart_policy: strategy: never`: a run that ends is left alone.
const NEVER: &str = "      restart_policy:\n        strategy: never\n";

/// A `management.logging` mapping; `lines` are its keys, one per line, a
/// nested key indented by two more spaces than its parent.
fn logging(lines: &str) -> String {
    let mut s = String::from("      logging:\n");
    for l in lines.lines().map(str::trim_end).filter(|l| !l.is_empty()) {
        s.push_str("        ");
        s.push_str(l);
        s.push('\n');
    }
    s
}

/// One `managed_processes` entry running `sh -c SCRIPT`.
fn sh_entry(id: &str, script: &str, management_extra: &str) -> String {
    format!(
        "  - id: \"{id}\"\n    management:\n      control:\n        executable: \"sh\"\n        arguments: [\"-c\", {script:?}]\n{management_extra}"
    )
}

/// The test child's path, for scripts.
fn child_s() -> String {
    child().display().to_string()
}

/// A process's default log file: `<state_dir>/logs/<id>.log`.
fn log_file(t: &Scratch, id: &str) -> PathBuf {
    t.path("state").join("logs").join(format!("{id}.log"))
}

/// The scratch header with `process_manager.log_dir` set.
fn header_with_log_dir(t: &Scratch, log_dir: &Path) -> String {
    t.header().replacen(
        "managed_processes:\n",
        &format!("  log_dir: \"{}\"\nmanaged_processes:\n", log_dir.display()),
        1,
    )
}

/// Waits until the process's run ended and nothing restarts it (`exited`
/// or `failed`).
async fn wait_ended(h: &Handle, within: Duration) -> ProcessStatus {
    wait_status(h, within, "the run to end", |s| {
        matches!(s.phase(), Phase::Exited | Phase::Failed)
    })
    .await
}

/// Waits for a clean end (`exited` with code 0). Returns `Handle::status`
/// (the statuses on the watch channel do not carry `log_dropped`).
async fn wait_exited_ok(h: &Handle, within: Duration) -> ProcessStatus {
    wait_ended(h, within).await;
    let s = h.status();
    assert_eq!(s.phase(), Phase::Exited, "{s:#?}");
    assert_eq!(s.last_exit, Some(ProcessEnd::Exited(0)), "{s:#?}");
    s
}

// --------------------------------------------------------------- parsing

/// `2026-11-30T07:37:15.123456Z`
fn is_ts(b: &[u8]) -> bool {
    b.len() == 27
        && b.iter().enumerate().all(|(i, &c)| match i {
            4 | 7 => c == b'-',
            10 => c == b'T',
            13 | 16 => c == b':',
            19 => c == b'.',
            26 => c == b'Z',
            _ => c.is_ascii_digit(),
        })
}

/// One line of a per-process plain file, without its newline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Plain {
    /// `<ts> ----- run N pid P -----`
    Sep { run: u32, pid: u32 },
    /// `<ts> ----- run N pid P ended: <how> after <duration> -----`
    End { run: u32, pid: u32, how: String },
    /// `<ts> stdout <bytes>`, `<ts> stderr+ <bytes>`, …
    Rec {
        stream: String,
        continues: bool,
        bytes: Vec<u8>,
    },
}

/// Parses a plain line, or panics saying why it is malformed.
fn parse_plain(line: &[u8]) -> Plain {
    let show = || String::from_utf8_lossy(line).into_owned();
    assert!(
        line.len() > 28 && is_ts(&line[..27]) && line[27] == b' ',
        "no timestamp: {:?}",
        show()
    );
    let rest = &line[28..];
    if let Some(sep) = rest.strip_prefix(b"----- run ") {
        return parse_sep(sep).unwrap_or_else(|| panic!("bad separator: {:?}", show()));
    }
    let sp = rest
        .iter()
        .position(|&c| c == b' ')
        .unwrap_or_else(|| panic!("no stream marker: {:?}", show()));
    let (marker, bytes) = (&rest[..sp], &rest[sp + 1..]);
    let (stream, continues) = match marker {
        b"stdout" => ("stdout", false),
        b"stdout+" => ("stdout", true),
        b"stderr" => ("stderr", false),
        b"stderr+" => ("stderr", true),
        _ => panic!("bad stream marker: {:?}", show()),
    };
    Plain::Rec {
        stream: stream.into(),
        continues,
        bytes: bytes.to_vec(),
    }
}

/// `N pid P -----` or `N pid P ended: <how> -----` (what follows
/// `----- run `).
fn parse_sep(s: &[u8]) -> Option<Plain> {
    let s = std::str::from_utf8(s).ok()?;
    let mut w = s.splitn(4, ' ');
    let run = w.next()?.parse().ok()?;
    (w.next()? == "pid").then_some(())?;
    let pid = w.next()?.parse().ok()?;
    match w.next()? {
        "-----" => Some(Plain::Sep { run, pid }),
        end => {
            let how = end.strip_prefix("ended: ")?.strip_suffix(" -----")?;
            Some(Plain::End {
                run,
                pid,
                how: how.to_string(),
            })
        }
    }
}

/// A small file's lines (without newlines) and whether it ended with one.
fn file_lines(path: &Path) -> (Vec<Vec<u8>>, bool) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let ends_nl = bytes.last() == Some(&b'\n');
    let mut lines: Vec<Vec<u8>> = bytes.split(|&c| c == b'\n').map(<[u8]>::to_vec).collect();
    if ends_nl || bytes.is_empty() {
        lines.pop();
    }
    (lines, ends_nl)
}

/// A small plain file, parsed, without the records that end each run.
pub(crate) fn plain_file(path: &Path) -> Vec<Plain> {
    plain_file_with_ends(path)
        .into_iter()
        .filter(|p| !matches!(p, Plain::End { .. }))
        .collect()
}

/// A small plain file, parsed, every line.
fn plain_file_with_ends(path: &Path) -> Vec<Plain> {
    let (lines, ends_nl) = file_lines(path);
    assert!(
        ends_nl || lines.is_empty(),
        "{} ends inside a record",
        path.display()
    );
    lines.iter().map(|l| parse_plain(l)).collect()
}

/// The stdout (or stderr) records of a parsed plain file, as text.
fn records(parsed: &[Plain], want: &str) -> Vec<String> {
    parsed
        .iter()
        .filter_map(|p| match p {
            Plain::Rec { stream, bytes, .. } if stream == want => {
                Some(String::from_utf8_lossy(bytes).into_owned())
            }
            _ => None,
        })
        .collect()
}

/// Standard base64 (with padding) to bytes.
fn base64_decode(s: &str) -> Vec<u8> {
    fn val(c: u8) -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("not base64: {c:?}"),
        }
    }
    let s = s.as_bytes();
    assert_eq!(s.len() % 4, 0, "base64 length");
    let mut out = Vec::new();
    for q in s.chunks(4) {
        let pad = q.iter().filter(|&&c| c == b'=').count();
        let n = q
            .iter()
            .map(|&c| if c == b'=' { 0 } else { val(c) })
            .fold(0u32, |acc, v| acc << 6 | v);
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..3 - pad]);
    }
    out
}

/// A file of JSON objects, one a line.
fn json_file(path: &Path) -> Vec<serde_json::Value> {
    let (lines, ends_nl) = file_lines(path);
    assert!(ends_nl, "{} ends inside a record", path.display());
    lines
        .iter()
        .map(|l| {
            serde_json::from_slice::<serde_json::Value>(l).unwrap_or_else(|e| {
                panic!(
                    "not JSON ({e}) in {}: {:?}",
                    path.display(),
                    String::from_utf8_lossy(l)
                )
            })
        })
        // Every object is valid JSON; the ones that end a run (their own
        // test says what they hold) are left out here.
        .filter(|o| o["event"] != "end")
        .collect()
}

// ------------------------------------------------------- flood checking

/// How a flood's lines are written in the files being checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Layout {
    /// `<ts> stdout <line>` records plus run separators.
    Plain,
    /// Exactly the child's bytes.
    Raw,
}

/// What the check of a flood found.
#[derive(Debug)]
pub(crate) struct FloodSeen {
    /// Output bytes of the child accounted for.
    bytes: u64,
    /// Records (lines, and the last partial one) seen.
    lines: u64,
    separators: u64,
}

/// Checks that `files`, read in order and streamed (never whole in memory),
/// hold the `flood BYTES --line-len LEN` output exactly once and in order:
/// the first BYTES bytes of `000000001 xxx…x\n`, `000000002 …`.
/// In `Raw` the files are byte-identical to the output. No file may end
/// inside a record (rotation never splits one), except a raw last line that
/// the child left without newline.
pub(crate) fn check_flood(
    files: &[PathBuf],
    layout: Layout,
    bytes: u64,
    line_len: usize,
) -> FloodSeen {
    let mut seen = FloodSeen {
        bytes: 0,
        lines: 0,
        separators: 0,
    };
    let mut line = Vec::with_capacity(line_len + 64);
    for (fi, path) in files.iter().enumerate() {
        let last_file = fi + 1 == files.len();
        let file = File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut r = BufReader::with_capacity(1 << 20, file);
        loop {
            line.clear();
            let n = r.read_until(b'\n', &mut line).expect("read log");
            if n == 0 {
                break;
            }
            let where_ = || format!("{} after {} output bytes", path.display(), seen.bytes);
            let has_nl = line.last() == Some(&b'\n');
            if has_nl {
                line.pop();
            }
            let payload: &[u8] = match layout {
                Layout::Raw => &line,
                Layout::Plain => {
                    assert!(has_nl, "a record without newline at {}", where_());
                    assert!(
                        line.len() > 28 && is_ts(&line[..27]) && line[27] == b' ',
                        "no timestamp at {}: {:?}",
                        where_(),
                        String::from_utf8_lossy(&line[..line.len().min(200)])
                    );
                    let rest = &line[28..];
                    if let Some(sep) = rest.strip_prefix(b"----- run ") {
                        match parse_sep(sep) {
                            Some(Plain::Sep { .. }) => seen.separators += 1,
                            Some(_) => {}
                            None => panic!("bad separator at {}", where_()),
                        }
                        continue;
                    }
                    rest.strip_prefix(b"stdout ").unwrap_or_else(|| {
                        panic!(
                            "not a whole stdout record at {}: {:?}",
                            where_(),
                            String::from_utf8_lossy(&rest[..rest.len().min(200)])
                        )
                    })
                }
            };
            // The record must be line number `seen.lines + 1`, whole, or
            // the cut-short last one.
            let want_n = seen.lines + 1;
            let left = bytes - seen.bytes;
            let full = left >= line_len as u64;
            let want_len = if full { line_len - 1 } else { left as usize };
            let ok = payload.len() == want_len
                && number_is(&payload[..want_len.min(NUMBER_DIGITS)], want_n)
                && payload.get(NUMBER_DIGITS).is_none_or(|&c| c == b' ')
                && payload.iter().skip(NUMBER_DIGITS + 1).all(|&c| c == b'x');
            assert!(
                ok,
                "expected line {want_n} ({want_len} bytes) at {}, found {} bytes: {:?}",
                where_(),
                payload.len(),
                String::from_utf8_lossy(&payload[..payload.len().min(120)])
            );
            if layout == Layout::Raw {
                // A whole line has its newline; only the cut-short last one
                // (at the very end of the last file) may lack it.
                assert_eq!(has_nl, full, "newline of line {want_n} at {}", where_());
                assert!(has_nl || last_file, "{}", where_());
            }
            seen.bytes += if full { line_len as u64 } else { left };
            seen.lines += 1;
        }
    }
    assert_eq!(
        seen.bytes, bytes,
        "the files hold {} of the {bytes} bytes ({} lines)",
        seen.bytes, seen.lines
    );
    seen
}

/// Whether `digits` (a prefix of a 9-digit number) is how `n` starts.
fn number_is(digits: &[u8], n: u64) -> bool {
    let full = format!("{n:0NUMBER_DIGITS$}");
    full.as_bytes().starts_with(digits) && digits.iter().all(u8::is_ascii_digit)
}

fn mib_per_s(bytes: u64, took: Duration) -> f64 {
    bytes as f64 / (1024.0 * 1024.0) / took.as_secs_f64()
}

/// Runs `flood BYTES` alone in `format`, waits for its clean end, and
/// checks the file.
async fn flood_once(format: &str, bytes: u64) {
    let t = Scratch::new();
    let yaml = t.header()
        + &child_entry(
            "flood",
            &["flood", &bytes.to_string()],
            &(logging(&format!("format: {format}")) + NEVER),
        );
    let m = t.manager(&yaml);
    let began = Instant::now();
    m.start().await;
    let h = m.handle("flood").unwrap();
    let s = wait_exited_ok(&h, FLOOD).await;
    let took = began.elapsed();
    assert_eq!(s.log_dropped, 0, "{s:#?}");
    let file = log_file(&t, "flood");
    let size = std::fs::metadata(&file).unwrap().len();
    println!(
        "flood {} MiB, {format}: captured in {took:.2?}: {:.0} MiB/s of output ({:.0} MiB/s written)",
        bytes >> 20,
        mib_per_s(bytes, took),
        mib_per_s(size, took),
    );
    let layout = if format == "raw" {
        assert_eq!(size, bytes, "raw: the file is exactly the output");
        Layout::Raw
    } else {
        Layout::Plain
    };
    let checked = Instant::now();
    let seen = check_flood(&[file], layout, bytes, 100);
    assert_eq!(seen.lines, bytes.div_ceil(100));
    if layout == Layout::Plain {
        assert_eq!(seen.separators, 1, "one run");
    }
    println!(
        "  checked {} lines in {:.2?}",
        seen.lines,
        checked.elapsed()
    );
    m.shutdown().await;
}

// ----------------------------------------------------------------- tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_200_mib_flood_is_in_the_plain_file_whole_once_and_in_order() {
    tokio::time::timeout(WATCHDOG, flood_once("plain", 200 << 20))
        .await
        .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_200_mib_flood_is_in_the_raw_file_byte_for_byte() {
    tokio::time::timeout(WATCHDOG, flood_once("raw", 200 << 20))
        .await
        .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_longer_than_buffer_size_is_split_into_marked_pieces() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        // One line of 200 KiB (204800 bytes) plus its newline: 25 pieces of
        // 8192 bytes.
        const LEN: usize = 200 * 1024;
        let len = (LEN + 1).to_string();
        let args = ["flood", len.as_str(), "--line-len", len.as_str()];
        let yaml = t.header()
            + &child_entry(
                "plain",
                &args,
                &(logging("buffer_size: 8192\nformat: plain") + NEVER),
            )
            + &child_entry(
                "json",
                &args,
                &(logging("buffer_size: 8192\nformat: json") + NEVER),
            );
        let m = t.manager(&yaml);
        m.start().await;
        for id in ["plain", "json"] {
            wait_exited_ok(&m.handle(id).unwrap(), SHORT).await;
        }
        let mut want = format!("{:0NUMBER_DIGITS$} ", 1).into_bytes();
        want.resize(LEN, b'x');

        let parsed = plain_file(&log_file(&t, "plain"));
        assert!(
            matches!(parsed[0], Plain::Sep { run: 1, .. }),
            "{:?}",
            parsed[0]
        );
        let pieces = &parsed[1..];
        assert_eq!(pieces.len(), 25, "25 records of 8192 bytes");
        let mut joined = Vec::new();
        for (i, p) in pieces.iter().enumerate() {
            let Plain::Rec {
                stream,
                continues,
                bytes,
            } = p
            else {
                panic!("piece {i} is not a record: {p:?}")
            };
            assert_eq!(stream, "stdout");
            assert_eq!(
                *continues,
                i > 0,
                "piece {i}: `stdout` first, then `stdout+`"
            );
            assert_eq!(bytes.len(), 8192, "piece {i}");
            joined.extend_from_slice(bytes);
        }
        assert!(joined == want, "the pieces make the line");

        let objs = json_file(&log_file(&t, "json"));
        assert_eq!(objs[0]["event"], "start", "{}", objs[0]);
        let pieces = &objs[1..];
        assert_eq!(pieces.len(), 25);
        let mut joined = String::new();
        for (i, o) in pieces.iter().enumerate() {
            assert_eq!(o["stream"], "stdout", "{o}");
            // `partial`: the line goes on; `continues`: it went on from the
            // previous record.
            assert_eq!(o.get("partial").is_some(), i < 24, "piece {i}: {o}");
            assert_eq!(o.get("continues").is_some(), i > 0, "piece {i}: {o}");
            if i < 24 {
                assert_eq!(o["partial"], true);
            }
            if i > 0 {
                assert_eq!(o["continues"], true);
            }
            let line = o["line"].as_str().expect("line");
            assert_eq!(line.len(), 8192, "piece {i}");
            joined.push_str(line);
        }
        assert!(
            joined.as_bytes() == want.as_slice(),
            "the pieces make the line"
        );
        m.shutdown().await;
    })
    .await
    .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_last_line_without_newline_is_kept_and_raw_keeps_it_unterminated() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let args = ["lines", "3", "--no-newline-last"];
        let yaml = t.header()
            + &child_entry("plain", &args, &(logging("format: plain") + NEVER))
            + &child_entry("raw", &args, &(logging("format: raw") + NEVER));
        let m = t.manager(&yaml);
        m.start().await;
        for id in ["plain", "raw"] {
            wait_exited_ok(&m.handle(id).unwrap(), SHORT).await;
        }
        let parsed = plain_file(&log_file(&t, "plain"));
        assert_eq!(records(&parsed, "stdout"), ["line 1", "line 2", "line 3"]);
        assert_eq!(parsed.len(), 4, "the separator and three lines: {parsed:?}");
        let raw = std::fs::read(log_file(&t, "raw")).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&raw),
            "line 1\nline 2\nline 3",
            "raw: exactly the bytes, no newline added"
        );
        m.shutdown().await;
    })
    .await
    .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_utf8_is_kept_exactly_in_plain_and_as_base64_in_json() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let script = r"printf '\377\376abc\n'";
        let yaml = t.header()
            + &sh_entry("plain", script, &(logging("format: plain") + NEVER))
            + &sh_entry("json", script, &(logging("format: json") + NEVER));
        let m = t.manager(&yaml);
        m.start().await;
        for id in ["plain", "json"] {
            wait_exited_ok(&m.handle(id).unwrap(), SHORT).await;
        }
        let want: &[u8] = b"\xff\xfeabc";
        let parsed = plain_file(&log_file(&t, "plain"));
        assert_eq!(parsed.len(), 2, "{parsed:?}");
        assert_eq!(
            parsed[1],
            Plain::Rec {
                stream: "stdout".into(),
                continues: false,
                bytes: want.to_vec()
            }
        );

        let objs = json_file(&log_file(&t, "json"));
        assert_eq!(objs.len(), 2, "{objs:?}");
        let o = &objs[1];
        assert_eq!(o["stream"], "stdout", "{o}");
        assert_eq!(o["id"], "json", "{o}");
        assert_eq!(
            o["line"].as_str(),
            Some(String::from_utf8_lossy(want).as_ref()),
            "U+FFFD for each invalid byte: {o}"
        );
        let b64 = o["line_base64"].as_str().expect("line_base64");
        assert_eq!(base64_decode(b64), want, "{o}");
        m.shutdown().await;
    })
    .await
    .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdout_and_stderr_both_land_with_their_stream_markers() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let yaml = t.header()
            + &child_entry("errs", &["lines", "50", "--stderr"], NEVER)
            + &sh_entry("both", "echo out; echo err >&2", NEVER);
        let m = t.manager(&yaml);
        m.start().await;
        for id in ["errs", "both"] {
            wait_exited_ok(&m.handle(id).unwrap(), SHORT).await;
        }
        let parsed = plain_file(&log_file(&t, "errs"));
        let want: Vec<String> = (1..=50).map(|n| format!("line {n}")).collect();
        assert_eq!(records(&parsed, "stderr"), want);
        assert!(records(&parsed, "stdout").is_empty(), "{parsed:?}");

        let parsed = plain_file(&log_file(&t, "both"));
        assert_eq!(records(&parsed, "stdout"), ["out"]);
        assert_eq!(records(&parsed, "stderr"), ["err"]);
        assert_eq!(parsed.len(), 3, "{parsed:?}");
        m.shutdown().await;
    })
    .await
    .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aggregation_targets_get_every_line_of_every_process() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let json = t.path("agg/all.jsonl");
        let plain = t.path("agg/all.log");
        let yaml = t.header()
            + &child_entry("alpha", &["lines", "20"], NEVER)
            + &child_entry("beta", &["lines", "20", "--stderr"], NEVER)
            + &format!(
                "log_collection:\n  enabled: true\n  global_aggregation:\n    enabled: true\n    targets:\n      - type: file\n        path: \"{}\"\n        format: json\n      - type: file\n        path: \"{}\"\n        format: plain\n",
                json.display(),
                plain.display()
            );
        let m = t.manager(&yaml);
        m.start().await;
        let mut pids = std::collections::HashMap::new();
        for id in ["alpha", "beta"] {
            let h = m.handle(id).unwrap();
            wait_exited_ok(&h, SHORT).await;
            let pid = match parse_plain(&file_lines(&log_file(&t, id)).0[0]) {
                Plain::Sep { pid, .. } => pid,
                other => panic!("{other:?}"),
            };
            pids.insert(id, pid);
        }
        // The targets' writer threads have written everything once the
        // manager is shut down.
        m.shutdown().await;
        let want: Vec<String> = (1..=20).map(|n| format!("line {n}")).collect();

        let objs = json_file(&json);
        let mut lines: std::collections::HashMap<&str, Vec<String>> = Default::default();
        let mut starts = Vec::new();
        for o in &objs {
            let ts = o["ts"].as_str().unwrap_or_else(|| panic!("ts: {o}"));
            assert!(is_ts(ts.as_bytes()), "{o}");
            let id = o["id"].as_str().unwrap_or_else(|| panic!("id: {o}"));
            let id = ["alpha", "beta"]
                .into_iter()
                .find(|&k| k == id)
                .unwrap_or_else(|| panic!("unknown id: {o}"));
            assert_eq!(o["pid"].as_u64(), Some(u64::from(pids[id])), "{o}");
            assert_eq!(o["run"].as_u64(), Some(1), "{o}");
            if o.get("event").is_some() {
                assert_eq!(o["event"], "start", "{o}");
                starts.push(id);
                continue;
            }
            let stream = if id == "alpha" { "stdout" } else { "stderr" };
            assert_eq!(o["stream"], stream, "{o}");
            let line = o["line"].as_str().unwrap_or_else(|| panic!("line: {o}"));
            lines.entry(id).or_default().push(line.to_string());
        }
        starts.sort_unstable();
        assert_eq!(starts, ["alpha", "beta"], "one start event each");
        assert_eq!(lines["alpha"], want, "alpha in the JSON target");
        assert_eq!(lines["beta"], want, "beta in the JSON target");

        // `<ts> <id> <stream> <line>`, and `<ts> <id> ----- run … -----`.
        let (text, ends_nl) = file_lines(&plain);
        assert!(ends_nl);
        let mut lines: std::collections::HashMap<String, Vec<String>> = Default::default();
        for l in &text {
            let l = String::from_utf8(l.clone()).expect("UTF-8");
            let (ts, rest) = l.split_at(27);
            assert!(is_ts(ts.as_bytes()), "{l:?}");
            let mut f = rest[1..].splitn(3, ' ');
            let (id, stream, line) = (f.next().unwrap(), f.next().unwrap(), f.next().unwrap());
            if stream == "-----" {
                let start = format!("run 1 pid {} -----", pids[id]);
                let end = format!("run 1 pid {} ended: ", pids[id]);
                assert!(line == start || line.starts_with(&end), "{l:?}");
                continue;
            }
            let want_stream = match id {
                "alpha" => "stdout",
                "beta" => "stderr",
                _ => panic!("unknown id: {l:?}"),
            };
            assert_eq!(stream, want_stream, "{l:?}");
            lines.entry(id.to_string()).or_default().push(line.to_string());
        }
        assert_eq!(lines["alpha"], want, "alpha in the plain target");
        assert_eq!(lines["beta"], want, "beta in the plain target");
    })
    .await
    .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_keeps_every_line_once_and_never_splits_one() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        const BYTES: u64 = 5 << 20;
        let yaml = t.header()
            + &child_entry(
                "rot",
                &["flood", &BYTES.to_string()],
                &(logging("format: plain\nrotation:\n  max_size_mb: 1\n  max_files: 50") + NEVER),
            );
        let m = t.manager(&yaml);
        m.start().await;
        let s = wait_exited_ok(&m.handle("rot").unwrap(), FLOOD).await;
        assert_eq!(s.log_dropped, 0);
        m.shutdown().await;

        let live = log_file(&t, "rot");
        let numbered = |n: u32| PathBuf::from(format!("{}.{n}", live.display()));
        let rotated = (1..=50).take_while(|&n| numbered(n).exists()).count() as u32;
        assert!(
            !numbered(rotated + 1).exists() && !numbered(51).exists(),
            "no gap in the numbers"
        );
        // ~6.7 MiB of plain text in files of at most 1 MiB.
        assert!(rotated >= 6, "only {rotated} rotated files");
        let mut files: Vec<PathBuf> = (1..=rotated).rev().map(numbered).collect();
        files.push(live);
        for f in &files {
            let len = std::fs::metadata(f).unwrap().len();
            assert!(len <= 1 << 20, "{} is {len} bytes", f.display());
            assert!(len > 0, "{} is empty", f.display());
        }
        // `check_flood` also fails on a record cut at the end of a file.
        let seen = check_flood(&files, Layout::Plain, BYTES, 100);
        assert_eq!(seen.separators, 1);
        assert_eq!(seen.lines, BYTES.div_ceil(100));
    })
    .await
    .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_restart_gets_a_separator_with_its_run_and_pid() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        // Four runs (the first and three restarts), then the breaker opens.
        let yaml = t.header()
            + &sh_entry(
                "crasher",
                // `$$$$` is `$$` once the config has expanded `$$`.
                "echo \"my pid=$$$$\"; exit 1",
                "      restart_policy:\n        strategy: on_failure\n        max_attempts: 3\n        restart_delay: 100ms\n        backoff_multiplier: 1.0\n        jitter: 0\n        window: 10m\n",
            );
        let m = t.manager(&yaml);
        m.start().await;
        let s = wait_ended(&m.handle("crasher").unwrap(), SHORT).await;
        assert_eq!(s.phase(), Phase::Failed, "{s:#?}");
        assert_eq!(s.runs, 4, "{s:#?}");
        m.shutdown().await;

        let parsed = plain_file_with_ends(&log_file(&t, "crasher"));
        assert_eq!(
            parsed.len(),
            12,
            "a separator, a line and an end per run: {parsed:#?}"
        );
        let mut pids = Vec::new();
        for (i, pair) in parsed.chunks(3).enumerate() {
            let run = i as u32 + 1;
            let Plain::Sep { run: r, pid } = pair[0] else {
                panic!("run {run}: no separator first: {pair:?}")
            };
            assert_eq!(r, run, "{pair:?}");
            assert_eq!(
                pair[1],
                Plain::Rec {
                    stream: "stdout".into(),
                    continues: false,
                    bytes: format!("my pid={pid}").into_bytes(),
                },
                "run {run}: its own line, from the pid of its separator"
            );
            match &pair[2] {
                Plain::End { run: r, pid: p, how } => {
                    assert_eq!((*r, *p), (run, pid), "{pair:?}");
                    assert!(how.starts_with("exited with code "), "{how}");
                }
                other => panic!("run {run}: no end record last: {other:?}"),
            }
            pids.push(pid);
        }
        let mut distinct = pids.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), 4, "a new pid per run: {pids:?}");
    })
    .await
    .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_uncaptured_stream_never_blocks_the_child_and_stays_out_of_the_file() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        // 10 MiB to stdout (far more than any pipe holds), then one line on
        // stderr, which is still captured.
        let script = format!("{} flood 10485760 && echo done >&2", child_s());
        let yaml = t.header()
            + &sh_entry(
                "quiet",
                &script,
                &(logging("capture_stdout: false") + NEVER),
            );
        let m = t.manager(&yaml);
        m.start().await;
        wait_exited_ok(&m.handle("quiet").unwrap(), FLOOD).await;
        m.shutdown().await;
        let parsed = plain_file(&log_file(&t, "quiet"));
        assert!(
            records(&parsed, "stdout").is_empty(),
            "{:?}",
            &parsed[..parsed.len().min(5)]
        );
        assert_eq!(records(&parsed, "stderr"), ["done"], "{parsed:?}");
        assert_eq!(parsed.len(), 2, "{parsed:?}");
    })
    .await
    .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unwritable_log_dir_is_an_error_naming_the_path() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        std::fs::write(t.path("file"), "a regular file\n").unwrap();
        let log_dir = t.path("file").join("logs");
        let log_dir_s = log_dir.display().to_string();
        let yaml = header_with_log_dir(&t, &log_dir) + &child_entry("svc", &["run"], "");
        match Manager::new(t.config(&yaml)) {
            Ok(m) => {
                m.shutdown().await;
                panic!("Manager::new accepted log_dir {log_dir_s}");
            }
            Err(e) => {
                let msg = e.to_string();
                assert!(
                    msg.contains(&log_dir_s),
                    "the error names {log_dir_s}: {msg}"
                );
            }
        }

        let file_s = t.path("procman.yaml").display().to_string();
        let _cleanup = KillOnDrop(t.dir.path().display().to_string());
        let (pid, exit, out) = start(Path::new(procman()), &["run", "-c", &file_s], &[]);
        let end = match tokio::time::timeout(SHORT, exit).await {
            Ok(end) => end.expect("exit status"),
            Err(_) => {
                let _ = procman_core::platform::signal_process(
                    pid,
                    procman_core::outcome::Signal::KILL,
                );
                panic!("procman run did not exit");
            }
        };
        let text = std::fs::read_to_string(out.path()).unwrap_or_default();
        assert_eq!(end, ProcessEnd::Exited(1), "{text}");
        assert!(
            text.lines()
                .any(|l| l.starts_with("procman:") && l.contains(&log_dir_s)),
            "the error on stderr names {log_dir_s}:\n{text}"
        );
        assert!(
            procs_mentioning(&t.dir.path().display().to_string()).is_empty(),
            "nothing was started"
        );
    })
    .await
    .expect("watchdog");
}

/// Mounts a 2 MiB tmpfs on `dir` (created). None, with the reason
/// printed, when that is impossible here (not root, no `mount`).
async fn tiny_disk(dir: &Path) -> Option<Unmount> {
    if !is_root() {
        skip_or_fail("mounting a small tmpfs needs root");
        return None;
    }
    std::fs::create_dir(dir).unwrap();
    let dir_s = dir.display().to_string();
    let (end, out) = run(
        Path::new("/bin/mount"),
        &["-t", "tmpfs", "-o", "size=2m", "tmpfs", &dir_s],
        &[],
    )
    .await;
    if end != ProcessEnd::Exited(0) {
        skip_or_fail(&format!("cannot mount a tmpfs ({end}): {out}"));
        return None;
    }
    Some(Unmount(dir.to_path_buf()))
}

/// Unmounts `dir` when dropped (lazily if it is still busy), from a plain
/// thread so that it works while a test unwinds.
struct Unmount(PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let dir = self.0.display().to_string();
        let done = std::thread::spawn(move || {
            for args in [vec![dir.as_str()], vec!["-l", dir.as_str()]] {
                let (_, exit, out) = start(Path::new("/bin/umount"), &args, &[]);
                if exit.blocking_recv() == Ok(ProcessEnd::Exited(0)) {
                    return;
                }
                eprintln!(
                    "umount {args:?} failed: {}",
                    std::fs::read_to_string(out.path()).unwrap_or_default()
                );
            }
        })
        .join();
        if done.is_err() {
            eprintln!("unmounting {} panicked", self.0.display());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_is_counted_and_logging_resumes_when_there_is_room() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let disk = t.path("disk");
        let Some(_unmount) = tiny_disk(&disk).await else {
            return;
        };

        let log_dir = disk.join("logs");
        let second = t.path("second-run");
        let c = child_s();
        let script = format!(
            "if [ -e {second} ]; then exec {c} lines 5; else exec {c} flood 8388608; fi",
            second = second.display()
        );
        let yaml = header_with_log_dir(&t, &log_dir) + &sh_entry("full", &script, NEVER);
        let m = t.manager(&yaml);
        m.start().await;
        let h = m.handle("full").unwrap();
        // The manager goes on supervising: the run ends as it should.
        let s = wait_exited_ok(&h, FLOOD).await;
        assert!(s.log_dropped > 0, "the lost records are counted: {s:#?}");
        let dropped = s.log_dropped;

        // What did get written is whole records, in order.
        let file = log_file_in(&log_dir, "full");
        let size = std::fs::metadata(&file).unwrap().len();
        assert!(size > 0 && size <= 2 << 20, "{size}");
        let mut last = 0u64;
        let mut records = 0u64;
        for p in plain_file(&file) {
            if let Plain::Rec { stream, bytes, .. } = p {
                assert_eq!(stream, "stdout");
                // Whole 100-byte lines, or the last one, cut short by the
                // child itself: 8388608 = 83886 lines and 8 bytes.
                let n = if bytes.len() == 8 {
                    assert_eq!(bytes, b"00008388", "the cut-short last line");
                    83887
                } else {
                    assert_eq!(bytes.len(), 99, "{:?}", String::from_utf8_lossy(&bytes));
                    assert!(bytes[10..].iter().all(|&c| c == b'x'));
                    std::str::from_utf8(&bytes[..NUMBER_DIGITS])
                        .unwrap()
                        .parse()
                        .unwrap()
                };
                assert!(n > last, "line {n} after line {last}");
                last = n;
                records += 1;
            }
        }
        // 8 MiB are 83887 lines (the last cut short): each one is either
        // in the file or counted as dropped.
        println!("full disk: {records} records kept, {dropped} counted as dropped");
        assert!(records > 0, "some lines fitted");
        assert_eq!(
            records + dropped,
            83887,
            "kept {records} + dropped {dropped} records"
        );

        // Free the space, run again: the new lines are written.
        File::options()
            .write(true)
            .open(&file)
            .unwrap()
            .set_len(0)
            .unwrap();
        std::fs::write(&second, "").unwrap();
        m.start_process("full").await.expect("start again");
        let s = wait_status(&h, SHORT, "the second run to end", |s| {
            s.runs == 2 && matches!(s.phase(), Phase::Exited | Phase::Failed)
        })
        .await;
        assert_eq!(s.phase(), Phase::Exited, "{s:#?}");
        assert_eq!(h.status().log_dropped, dropped, "nothing more lost");
        let parsed = plain_file(&file);
        assert!(
            matches!(parsed.first(), Some(Plain::Sep { run: 2, .. })),
            "{parsed:?}"
        );
        let want: Vec<String> = (1..=5).map(|n| format!("line {n}")).collect();
        assert_eq!(records_of(&parsed), want);
        m.shutdown().await;
    })
    .await
    .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]

async fn the_published_status_carries_log_dropped_too() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let disk = t.path("disk");
        let Some(_unmount) = tiny_disk(&disk).await else {
            return;
        };
        let log_dir = disk.join("logs");
        let yaml =
            header_with_log_dir(&t, &log_dir) + &child_entry("full", &["flood", "8388608"], NEVER);
        let m = t.manager(&yaml);
        m.start().await;
        let h = m.handle("full").unwrap();
        wait_exited_ok(&h, FLOOD).await;
        let polled = h.status().log_dropped;
        assert!(polled > 0, "the disk was full");
        // A watcher (an API client, `wait_status`) sees the same number.
        let published = h.subscribe().borrow().log_dropped;
        m.shutdown().await;
        assert_eq!(
            published, polled,
            "Handle::subscribe() and Handle::status() disagree on log_dropped"
        );
    })
    .await
    .expect("watchdog");
}

fn log_file_in(dir: &Path, id: &str) -> PathBuf {
    dir.join(format!("{id}.log"))
}

fn records_of(parsed: &[Plain]) -> Vec<String> {
    records(parsed, "stdout")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_stop_returns_with_every_line_in_the_file() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let ready = t.path("ready");
        // 1000 lines from the test child, then the shell itself waits for
        // SIGTERM and prints one more line on its way out. `ready` says the
        // lines are written and the trap is set (the log file is not looked
        // at before the stop).
        let script = format!(
            "{} lines 1000; trap 'echo got TERM; exit 0' TERM; : > {}; while :; do sleep 0.05; done",
            child_s(),
            ready.display()
        );
        let yaml = t.header() + &sh_entry("svc", &script, "");
        let m = t.manager(&yaml);
        m.start().await;
        wait_path(&ready, SHORT).await;
        m.stop_process("svc").await.expect("stop");
        // No waiting: right after the stop, everything is in the file,
        // down to the line printed as the process went.
        let parsed = plain_file(&log_file(&t, "svc"));
        let mut want: Vec<String> = (1..=1000).map(|n| format!("line {n}")).collect();
        want.push("got TERM".into());
        assert_eq!(records(&parsed, "stdout"), want);
        assert_eq!(m.handle("svc").unwrap().status().phase(), Phase::Stopped);
        m.shutdown().await;
    })
    .await
    .expect("watchdog");
}

/// Waits until `path` exists.
async fn wait_path(path: &Path, within: Duration) {
    let deadline = Instant::now() + within;
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "timed out after {within:?} waiting for {}",
            path.display()
        );
        // A file made by another process has no event to await.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ------------------------------------------- stuck targets, drain, reopen

/// `procman run -c procman.yaml` with its stdout on `stdout` and its stderr
/// (the manager's log) in a temp file: (pid, exit, stderr file).
fn run_procman_with_stdout(
    t: &Scratch,
    stdout: std::os::fd::OwnedFd,
) -> (
    u32,
    tokio::sync::oneshot::Receiver<ProcessEnd>,
    tempfile::NamedTempFile,
) {
    use procman_core::platform::Stdio;
    let err = tempfile::NamedTempFile::new().expect("temp file");
    let config = t.path("procman.yaml").display().to_string();
    let (pid, exit) = start_with(
        Path::new(procman()),
        &["run", "-c", &config],
        &[],
        Stdio::Fd(stdout),
        Stdio::Fd(err.reopen().expect("reopen").into()),
    );
    (pid, exit, err)
}

/// Waits until `file` is at least `size` bytes long.
async fn wait_size(file: &Path, size: u64, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let now = std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
        if now >= size {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{} stayed at {now} of {size} bytes for {within:?}",
            file.display()
        );
        // A file another process writes has no event to await.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_stdout_target_loses_only_its_own_lines() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let fifo = t.path("stdout.fifo");
        let (end, out) = run(Path::new("mkfifo"), &[&fifo.display().to_string()], &[]).await;
        assert_eq!(end, ProcessEnd::Exited(0), "mkfifo: {out}");
        // Opened read-write, the fifo always has a reader (this test, which
        // never reads): the manager's writes block once its 64 KiB are full
        // rather than fail with EPIPE, as with a paused terminal.
        let held = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&fifo)
            .expect("open fifo");
        const BYTES: u64 = 64 << 20;
        let pidfile = t.path("svc.pid");
        let pidfile_s = pidfile.display().to_string();
        let yaml = t
            .header()
            .replace("force_shutdown_timeout: \"30s\"", "force_shutdown_timeout: \"5s\"")
            + &child_entry("flood", &["flood", &BYTES.to_string()], NEVER)
            + &child_entry(
                "svc",
                &["--pidfile", &pidfile_s, "run"],
                "      restart_policy:\n        strategy: always\n        restart_delay: 100ms\n",
            )
            + "log_collection:\n  enabled: true\n  global_aggregation:\n    enabled: true\n    targets:\n      - type: process_manager_stdout\n        format: plain\n";
        std::fs::write(t.path("procman.yaml"), &yaml).unwrap();
        let _cleanup = KillOnDrop(t.dir.path().display().to_string());
        let (pid, exit, err) = run_procman_with_stdout(&t, held.try_clone().unwrap().into());

        // The flood's own file gets every line: 671088 whole lines of
        // `<ts> stdout <99 bytes>` (135 bytes each), while the target took
        // 64 KiB and stopped.
        let file = log_file(&t, "flood");
        wait_size(&file, (BYTES / 100) * 135, FLOOD).await;
        let seen = check_flood(&[file], Layout::Plain, BYTES, 100);
        assert_eq!(seen.lines, BYTES.div_ceil(100));

        // Supervision goes on: a killed process is restarted.
        let first = wait_pidfile(&pidfile, SHORT, |_| true).await;
        procman_core::platform::signal_process(first, procman_core::outcome::Signal::KILL)
            .expect("kill svc");
        let second = wait_pidfile(&pidfile, SHORT, |p| p != first).await;
        assert!(alive(second));

        let manager_log = || std::fs::read_to_string(err.path()).unwrap_or_default();
        let dropping = "log target falls behind";
        let deadline = Instant::now() + SHORT;
        while !manager_log().contains(dropping) {
            assert!(Instant::now() < deadline, "no drop reported:\n{}", manager_log());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }

        // Shutdown is bounded: the stop (5 s at most here), then 3 s for
        // the targets, whatever the fifo's reader does.
        let began = Instant::now();
        procman_core::platform::signal_process(pid, procman_core::outcome::Signal::TERM)
            .expect("SIGTERM");
        let end = tokio::time::timeout(Duration::from_secs(40), exit)
            .await
            .expect("procman exits although its stdout is stuck")
            .expect("exit status");
        let took = began.elapsed();
        let text = manager_log();
        assert_eq!(end, ProcessEnd::Exited(0), "{text}");
        assert!(took < Duration::from_secs(20), "shutdown took {took:?}");
        assert_eq!(text.matches(dropping).count(), 1, "one warning:\n{text}");
        assert!(
            text.contains("still blocked in a write at shutdown") && text.contains("lost_bytes="),
            "the bytes left behind are reported:\n{text}"
        );
        assert!(
            text.contains("log target lost lines during this run"),
            "the run's drops are summed up:\n{text}"
        );
        drop(held);
    })
    .await
    .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipe_held_outside_the_tree_is_closed_once_the_drain_gives_up() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let pidfile = t.path("svc.pid");
        let yaml = t.header()
            + &child_entry(
                "svc",
                &["--pidfile", &pidfile.display().to_string(), "run"],
                NEVER,
            );
        let m = t.manager(&yaml);
        m.start().await;
        let pid = wait_pidfile(&pidfile, SHORT, |_| true).await;
        // This test process takes the child's stdout: a writer the process
        // tree does not contain, like a daemon that escaped it.
        let mut escaped = std::fs::OpenOptions::new()
            .write(true)
            .open(format!("/proc/{pid}/fd/1"))
            .expect("open the child's stdout");
        use std::io::Write;
        escaped.write_all(b"from outside the tree\n").unwrap();
        let began = Instant::now();
        m.stop_process("svc").await.expect("stop");
        let took = began.elapsed();
        assert!(took < Duration::from_secs(20), "the stop took {took:?}");
        // The pumps were aborted: the pipe has no reader any more.
        let deadline = Instant::now() + SHORT;
        loop {
            match escaped.write_all(b"still there?\n") {
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => break,
                Err(e) => panic!("unexpected error: {e}"),
                Ok(()) => {}
            }
            assert!(
                Instant::now() < deadline,
                "the pipe is still read {took:?} after the stop began"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let text = std::fs::read_to_string(log_file(&t, "svc")).unwrap();
        assert!(text.contains("from outside the tree"), "{text}");
        m.shutdown().await;
    })
    .await
    .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reopen_logs_sends_new_lines_to_a_new_file_after_an_external_rename() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        const BYTES: u64 = 20 << 20;
        let c = child_s();
        // 200 lines, then a flood that waits for SIGUSR1.
        let script = format!("{c} lines 200; exec {c} flood {BYTES} --wait-usr1");
        let yaml = t.header() + &sh_entry("svc", &script, NEVER);
        let m = t.manager(&yaml);
        m.start().await;
        let live = log_file(&t, "svc");
        let text = wait_file(&live, "ready pid=", SHORT).await;
        let pid: u32 = text
            .lines()
            .find_map(|l| l.split_once(" stdout ready pid=")?.1.trim().parse().ok())
            .expect("the flood's pid");
        // What logrotate does: rename, then ask the writer to reopen.
        let renamed = t.path("state/logs/svc.log.1");
        std::fs::rename(&live, &renamed).unwrap();
        m.reopen_logs();
        procman_core::platform::signal_process(
            pid,
            procman_core::outcome::Signal::parse("USR1").expect("SIGUSR1"),
        )
        .expect("SIGUSR1");
        wait_exited_ok(&m.handle("svc").unwrap(), FLOOD).await;
        m.shutdown().await;

        let before = plain_file(&renamed);
        let mut want: Vec<String> = (1..=200).map(|n| format!("line {n}")).collect();
        want.push(format!("ready pid={pid}"));
        assert_eq!(
            records(&before, "stdout"),
            want,
            "every line before the reopen"
        );
        assert!(matches!(before[0], Plain::Sep { run: 1, .. }));
        // The new file at the original path: the whole flood, no line cut.
        let seen = check_flood(std::slice::from_ref(&live), Layout::Plain, BYTES, 100);
        assert_eq!((seen.separators, seen.lines), (0, BYTES.div_ceil(100)));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&live).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o640);
    })
    .await
    .expect("watchdog");
}
