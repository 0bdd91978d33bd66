use super::*;

fn rec(json: &str) -> LogRecord {
    serde_json::from_str(json).expect("a record")
}

fn text(json: &str, prefixed: bool) -> String {
    String::from_utf8(plain(&rec(json), prefixed)).expect("utf-8")
}

const TS: &str = "2026-12-02T09:15:00.123456Z";

#[test]
fn output_lines_read_as_in_a_plain_file() {
    let j =
        format!(r#"{{"ts":"{TS}","id":"web","pid":7,"run":2,"stream":"stderr","line":"oops"}}"#);
    assert_eq!(text(&j, false), format!("{TS} stderr oops\n"));
    assert_eq!(text(&j, true), format!("web | {TS} stderr oops\n"));
    let cont =
        format!(r#"{{"ts":"{TS}","id":"web","stream":"stdout","line":"more","continues":true}}"#);
    assert_eq!(text(&cont, true), format!("web | {TS} stdout+ more\n"));
}

#[test]
fn run_starts_and_ends_read_as_their_separators() {
    let start = format!(r#"{{"ts":"{TS}","id":"w","pid":42,"run":3,"event":"start"}}"#);
    assert_eq!(
        text(&start, false),
        format!("{TS} ----- run 3 pid 42 -----\n")
    );
    let converted = format!(
        r#"{{"ts":"{TS}","id":"w","pid":42,"run":3,"line":"exited with code 1 after 2s","event":"end"}}"#
    );
    assert_eq!(
        text(&converted, false),
        format!("{TS} ----- run 3 pid 42 ended: exited with code 1 after 2s -----\n")
    );
    let json_log = format!(
        r#"{{"ts":"{TS}","id":"w","pid":42,"run":3,"event":"end","end":"killed by SIGKILL","signal":"SIGKILL","duration_ms":1500}}"#
    );
    assert_eq!(
        text(&json_log, false),
        format!("{TS} ----- run 3 pid 42 ended: killed by SIGKILL after 1s 500ms -----\n")
    );
}

#[test]
fn raw_lines_and_invalid_utf8_come_back_byte_for_byte() {
    assert_eq!(text(r#"{"id":"r","line":"as is"}"#, true), "r | as is\n");
    let bytes = plain(
        &rec(r#"{"id":"r","line":"a\ufffd","line_base64":"Yf8="}"#),
        false,
    );
    assert_eq!(bytes, b"a\xff\n");
    // A piece of a long raw line: the next piece goes on on the same line.
    let piece = plain(&rec(r#"{"id":"r","line":"abc","partial":true}"#), true);
    assert_eq!(piece, b"r | abc");
    let next = plain(&rec(r#"{"id":"r","line":"def","continues":true}"#), true);
    assert_eq!(next, b"def\n");
}

#[test]
fn a_record_of_another_shape_is_printed_as_its_json() {
    assert_eq!(text(r#"[1,2]"#, false), "[1,2]\n");
}
