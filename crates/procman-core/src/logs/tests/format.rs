//! Every format byte for byte, JSON escapes, invalid UTF-8 kept through
//! `line_base64`, and timestamps for known dates.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use proptest::prelude::*;

use super::*;
use crate::logs::record::Stream;

fn at(secs: u64, micros: u32) -> SystemTime {
    UNIX_EPOCH + Duration::new(secs, micros * 1000)
}

fn ts() -> Timestamp {
    Timestamp::new(at(1_796_024_235, 123_456))
}

fn origin() -> Origin<'static> {
    Origin {
        id: "web",
        pid: 4242,
        run: 3,
        ts: at(1_796_024_235, 123_456),
    }
}

fn rec(bytes: &[u8]) -> Record<'_> {
    Record {
        stream: Stream::Stdout,
        bytes,
        continued: false,
        continues: false,
    }
}

fn text(buf: &[u8]) -> &str {
    std::str::from_utf8(buf).expect("formatted text is UTF-8 here")
}

/// Parses one JSON line, checking it is exactly one object and one `\n`.
fn parse(buf: &[u8]) -> serde_json::Value {
    assert_eq!(buf.last(), Some(&b'\n'));
    assert_eq!(buf.iter().filter(|&&b| b == b'\n').count(), 1);
    serde_json::from_slice(buf).expect("valid JSON")
}

#[test]
fn timestamps_of_known_dates() {
    let cases = [
        (0, 0, "1970-01-01T00:00:00.000000Z"),
        (1_796_024_235, 123_456, "2026-11-30T07:37:15.123456Z"),
        (951_782_400, 1, "2000-02-29T00:00:00.000001Z"), // leap day, /400
        (1_709_164_800, 0, "2024-02-29T00:00:00.000000Z"), // leap day
        (1_709_251_199, 999_999, "2024-02-29T23:59:59.999999Z"),
        (4_107_456_000, 0, "2100-02-28T00:00:00.000000Z"), // 2100: no leap day
        (4_107_542_400, 0, "2100-03-01T00:00:00.000000Z"),
        (1_735_689_599, 500_000, "2024-12-31T23:59:59.500000Z"),
        (253_402_300_799, 999_999, "9999-12-31T23:59:59.999999Z"),
    ];
    for (secs, micros, want) in cases {
        assert_eq!(Timestamp::new(at(secs, micros)).as_str(), want, "{secs}");
    }
}

#[test]
fn timestamps_out_of_range_are_clamped() {
    let before = UNIX_EPOCH - Duration::from_secs(10);
    assert_eq!(
        Timestamp::new(before).as_str(),
        "1970-01-01T00:00:00.000000Z"
    );
    assert_eq!(
        Timestamp::new(at(300_000_000_000, 0)).as_str(),
        "9999-12-31T23:59:59.999999Z"
    );
}

#[test]
fn timestamp_drops_nanoseconds_without_rounding() {
    let t = UNIX_EPOCH + Duration::new(0, 999_999_999);
    assert_eq!(Timestamp::new(t).as_str(), "1970-01-01T00:00:00.999999Z");
}

proptest! {
    #[test]
    fn timestamps_keep_their_shape_whatever_the_time(secs in 0u64..400_000_000_000, nanos in 0u32..1_000_000_000, before in any::<bool>()) {
        let d = Duration::new(secs, nanos);
        let t = if before { UNIX_EPOCH - d } else { UNIX_EPOCH + d };
        let got = Timestamp::new(t);
        let shape = got.as_bytes().iter().enumerate().all(|(i, &c)| match i {
            4 | 7 => c == b'-',
            10 => c == b'T',
            13 | 16 => c == b':',
            19 => c == b'.',
            26 => c == b'Z',
            _ => c.is_ascii_digit(),
        });
        prop_assert!(shape, "{}", got);
        // Never earlier than the epoch, never later than year 9999, and
        // the same instant as humantime reads it back.
        let back = humantime::parse_rfc3339(got.as_str()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let want = t.clamp(UNIX_EPOCH, UNIX_EPOCH + Duration::new(253_402_300_799, 999_999_000));
        let micros = |t: SystemTime| t.duration_since(UNIX_EPOCH).map(|d| d.as_micros()).unwrap_or(0);
        prop_assert_eq!(micros(back), micros(want));
    }

    #[test]
    fn json_line_is_valid_and_lossless(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let mut buf = Vec::new();
        json_line(&mut buf, &ts(), &origin(), &rec(&bytes));
        let v = parse(&buf);
        let line = v["line"].as_str().expect("line is a string");
        prop_assert_eq!(line, String::from_utf8_lossy(&bytes));
        match v.get("line_base64") {
            None => prop_assert_eq!(line.as_bytes(), &bytes[..]),
            Some(b64) => {
                prop_assert!(std::str::from_utf8(&bytes).is_err());
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(b64.as_str().expect("a string"))
                    .expect("valid base64");
                prop_assert_eq!(decoded, bytes);
            }
        }
    }

    #[test]
    fn escaping_matches_serde_json(s in "\\PC*|[\\x00-\\x7f]{0,40}") {
        let mut buf = Vec::new();
        escape_bytes(&mut buf, s.as_bytes());
        let quoted = format!("\"{}\"", text(&buf));
        let back: String = serde_json::from_str(&quoted).expect("valid JSON string");
        prop_assert_eq!(back, s);
    }
}

#[test]
fn word_check_is_exact_for_every_byte_at_every_position() {
    for b in 0..=255u8 {
        for pos in 0..8 {
            let mut w = [b'a'; 8];
            w[pos] = b;
            assert_eq!(
                word_needs_escape(u64::from_le_bytes(w)),
                needs_escape(b),
                "byte {b:#x} at {pos}"
            );
        }
    }
    // High bytes (UTF-8) next to low ones must not cause false hits.
    assert!(!word_needs_escape(u64::from_le_bytes([
        0xff, 0x20, 0x80, 0x21, 0xc3, 0xa9, 0x7f, 0x5d
    ])));
}

#[test]
fn plain_line_format() {
    let mut buf = Vec::new();
    plain_line(&mut buf, &ts(), &rec(b"hello world"));
    let mut r = rec(b"more");
    r.stream = Stream::Stderr;
    plain_line(&mut buf, &ts(), &r);
    assert_eq!(
        text(&buf),
        "2026-11-30T07:37:15.123456Z stdout hello world\n\
         2026-11-30T07:37:15.123456Z stderr more\n"
    );
}

#[test]
fn plain_marks_pieces_that_continue_a_line() {
    let mut buf = Vec::new();
    let pieces = [
        (b"abcd", true, false),
        (b"efgh", true, true),
        (b"ij\0\0", false, true),
    ];
    for (bytes, continued, continues) in pieces {
        let r = Record {
            stream: Stream::Stdout,
            bytes,
            continued,
            continues,
        };
        plain_line(&mut buf, &ts(), &r);
    }
    assert_eq!(
        buf,
        b"2026-11-30T07:37:15.123456Z stdout abcd\n\
          2026-11-30T07:37:15.123456Z stdout+ efgh\n\
          2026-11-30T07:37:15.123456Z stdout+ ij\0\0\n"
    );
}

#[test]
fn plain_keeps_invalid_utf8_and_carriage_returns() {
    let mut buf = Vec::new();
    plain_line(&mut buf, &ts(), &rec(b"\xff\xfe caf\xc3\xa9\r"));
    assert_eq!(
        buf,
        b"2026-11-30T07:37:15.123456Z stdout \xff\xfe caf\xc3\xa9\r\n"
    );
}

#[test]
fn plain_separator_format() {
    let mut buf = Vec::new();
    plain_separator(&mut buf, &ts(), &origin());
    assert_eq!(
        text(&buf),
        "2026-11-30T07:37:15.123456Z ----- run 3 pid 4242 -----\n"
    );
}

#[test]
fn json_line_format() {
    let mut buf = Vec::new();
    json_line(&mut buf, &ts(), &origin(), &rec(b"hello \"world\""));
    assert_eq!(
        text(&buf),
        "{\"ts\":\"2026-11-30T07:37:15.123456Z\",\"id\":\"web\",\"pid\":4242,\"run\":3,\
         \"stream\":\"stdout\",\"line\":\"hello \\\"world\\\"\"}\n"
    );
    parse(&buf);
}

#[test]
fn json_marks_pieces() {
    let mut buf = Vec::new();
    let r = Record {
        stream: Stream::Stderr,
        bytes: b"mid",
        continued: true,
        continues: true,
    };
    json_line(&mut buf, &ts(), &origin(), &r);
    let v = parse(&buf);
    assert_eq!(v["stream"], "stderr");
    assert_eq!(v["partial"], true);
    assert_eq!(v["continues"], true);
    buf.clear();
    json_line(&mut buf, &ts(), &origin(), &rec(b"whole"));
    let v = parse(&buf);
    assert!(v.get("partial").is_none() && v.get("continues").is_none());
}

#[test]
fn json_escapes() {
    let mut buf = Vec::new();
    json_line(
        &mut buf,
        &ts(),
        &origin(),
        &rec(b"q\" b\\ t\t r\r n\n \x00 \x1b[1m \x7f caf\xc3\xa9"),
    );
    let s = text(&buf);
    assert!(
        s.contains(r#""line":"q\" b\\ t\t r\r n\n \u0000 \u001b[1m "#),
        "{s}"
    );
    assert!(!s.contains("line_base64"));
    assert_eq!(
        parse(&buf)["line"],
        "q\" b\\ t\t r\r n\n \0 \x1b[1m \x7f café"
    );
}

#[test]
fn json_invalid_utf8_round_trips_through_base64() {
    let bytes = b"ok \xff\xfe then \xc3 cut \xe2\x82 and \"quote\"";
    let mut buf = Vec::new();
    json_line(&mut buf, &ts(), &origin(), &rec(bytes));
    let v = parse(&buf);
    assert_eq!(v["line"], String::from_utf8_lossy(bytes).as_ref());
    let b64 = v["line_base64"].as_str().expect("line_base64 is present");
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .expect("valid base64");
    assert_eq!(decoded, bytes);
}

#[test]
fn json_escapes_the_id_too() {
    let o = Origin {
        id: "we\"ird\\",
        ..origin()
    };
    let mut buf = Vec::new();
    json_separator(&mut buf, &ts(), &o);
    assert_eq!(parse(&buf)["id"], "we\"ird\\");
}

#[test]
fn json_separator_format() {
    let mut buf = Vec::new();
    json_separator(&mut buf, &ts(), &origin());
    assert_eq!(
        text(&buf),
        "{\"ts\":\"2026-11-30T07:37:15.123456Z\",\"id\":\"web\",\"pid\":4242,\"run\":3,\
         \"event\":\"start\"}\n"
    );
    parse(&buf);
}

#[test]
fn prefixed_line_plain_and_coloured() {
    let mut buf = Vec::new();
    prefixed_line(&mut buf, &origin(), &rec(b"ready"), None);
    assert_eq!(text(&buf), "web | ready\n");
    buf.clear();
    prefixed_line(&mut buf, &origin(), &rec(b"\xffready"), Some(4));
    assert_eq!(buf, b"\x1b[34mweb |\x1b[0m \xffready\n");
}

#[test]
fn colors_are_stable_and_in_range() {
    assert_eq!(color_for("web"), color_for("web"));
    let mut seen = [false; 7];
    for i in 0..100 {
        let c = color_for(&format!("proc-{i}"));
        assert!((1..=6).contains(&c));
        seen[usize::from(c)] = true;
    }
    assert!(seen[1..].iter().all(|&s| s), "all six colours are used");
    // Pinned (FNV-1a 32, mod 6, + 1), so that a process keeps its colour
    // across releases.
    let pinned = [
        ("web", 2),
        ("worker", 6),
        ("queue", 5),
        ("redis", 5),
        ("", 2),
    ];
    for (id, c) in pinned {
        assert_eq!(color_for(id), c, "{id}");
    }
}

/// 64 KiB of 100-byte ASCII lines; the cut at the end falls mid-line, so
/// the splitter's held tail is exercised at every chunk.
fn bench_chunk() -> Vec<u8> {
    let mut chunk = Vec::with_capacity(64 * 1024 + 100);
    let mut i = 0u32;
    while chunk.len() < 64 * 1024 {
        let line = format!("{i:08} GET /api/v1/items?page=3 200 0.0042s user=alice agent=curl/8.5.0 lorem ipsum dolor sit amet, consectetur");
        chunk.extend_from_slice(&line.as_bytes()[..99]);
        chunk.push(b'\n');
        i += 1;
    }
    chunk.truncate(64 * 1024);
    chunk
}

/// Feeds `total` bytes through a splitter, formatting each chunk's records
/// with `format` into one reused buffer; prints and returns MiB/s of input.
fn bench(
    name: &str,
    total: usize,
    mut format: impl FnMut(&mut Vec<u8>, &Timestamp, &Record<'_>),
) -> f64 {
    use crate::logs::splitter::LineSplitter;
    let chunk = bench_chunk();
    let mut splitter = LineSplitter::new(Stream::Stdout, 8192);
    let mut out = Vec::with_capacity(256 * 1024);
    let mut lines = 0u64;
    let start = std::time::Instant::now();
    for _ in 0..total / chunk.len() {
        // Once per chunk, as the pump does.
        let ts = Timestamp::new(SystemTime::now());
        splitter.feed(&chunk, |r| {
            format(&mut out, &ts, &r);
            lines += 1;
        });
        std::hint::black_box(&out);
        out.clear();
    }
    let secs = start.elapsed().as_secs_f64();
    let mib_s = total as f64 / (1024.0 * 1024.0) / secs;
    println!("{name}: {lines} lines, {secs:.3} s, {mib_s:.0} MiB/s");
    mib_s
}

/// `cargo test --release -p procman-core --lib bench_ -- --ignored --nocapture`
#[test]
#[ignore = "benchmark: run in release mode"]
fn bench_split_only() {
    bench("split only (1 GiB)", 1 << 30, |out, _, r| {
        out.push(r.bytes[0])
    });
}

#[test]
#[ignore = "benchmark: run in release mode"]
fn bench_split_and_plain_line() {
    bench("split + plain_line (1 GiB)", 1 << 30, |out, ts, r| {
        plain_line(out, ts, r)
    });
}

#[test]
#[ignore = "benchmark: run in release mode"]
fn bench_split_and_json_line() {
    let o = origin();
    bench("split + json_line (1 GiB)", 1 << 30, |out, ts, r| {
        json_line(out, ts, &o, r)
    });
}

#[test]
#[ignore = "benchmark: run in release mode"]
fn bench_split_and_prefixed_line() {
    let o = origin();
    bench("split + prefixed_line (1 GiB)", 1 << 30, |out, _, r| {
        prefixed_line(out, &o, r, Some(3))
    });
}

#[test]
fn run_end_formats_say_how_and_how_long() {
    let killed = Ending {
        how: "killed by SIGKILL (stop requested)",
        code: None,
        signal: Some("SIGKILL"),
        after: Duration::from_micros(2_005_900),
    };
    let mut buf = Vec::new();
    plain_run_end(&mut buf, &ts(), &origin(), &killed);
    assert_eq!(
        text(&buf),
        "2026-11-30T07:37:15.123456Z ----- run 3 pid 4242 ended: killed by SIGKILL (stop requested) after 2s 5ms -----\n"
    );
    let mut buf = Vec::new();
    json_run_end(&mut buf, &ts(), &origin(), &killed);
    let v = parse(&buf);
    assert_eq!(v["event"], "end");
    assert_eq!(v["end"], "killed by SIGKILL (stop requested)");
    assert_eq!(v["signal"], "SIGKILL");
    assert_eq!(v["duration_ms"], 2005);
    assert!(v.get("code").is_none(), "a signal death has no exit code");
    let exited = Ending {
        how: "exited with code 3",
        code: Some(3),
        signal: None,
        after: Duration::ZERO,
    };
    let mut buf = Vec::new();
    json_run_end(&mut buf, &ts(), &origin(), &exited);
    let v = parse(&buf);
    assert_eq!(
        (v["code"].clone(), v["duration_ms"].clone()),
        (3.into(), 0.into())
    );
    assert!(v.get("signal").is_none());
}
