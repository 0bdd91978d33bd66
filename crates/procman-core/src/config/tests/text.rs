//! The file as text: bytes that are not text, a byte-order mark, files
//! with nothing in them, more than one document.

use std::path::Path;

use super::{load_err, load_ok, SOURCE};
use crate::config::{load_file, load_str, ConfigErrors, Diagnostic};

/// Writes `bytes` to a temporary file and loads it.
fn load_bytes(bytes: &[u8]) -> Result<crate::config::Config, ConfigErrors> {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("procman.yaml");
    std::fs::write(&file, bytes).expect("write config");
    load_file(&file)
}

fn errors_of(bytes: &[u8]) -> Vec<Diagnostic> {
    match load_bytes(bytes) {
        Ok(config) => panic!("expected errors, got a valid config: {config:#?}"),
        Err(e) => e.errors,
    }
}

fn place(d: &Diagnostic) -> (usize, usize, &str) {
    (d.line, d.column, d.path.as_str())
}

#[test]
fn nul_bytes_are_an_error_at_their_position() {
    // The parser takes NUL for the end of the file: ten of them used to be
    // an empty, valid config.
    let errors = errors_of(&[0u8; 10]);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(place(&errors[0]), (1, 1, ""));
    assert!(errors[0].message.contains("NUL"), "{errors:#?}");

    // One hidden after valid content would have cut the file short there.
    let errors = errors_of(b"process_manager:\n  port: 5\0\nmanaged_processes: {}\n");
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(place(&errors[0]), (2, 10, ""));
    assert_eq!(
        errors[0].message,
        "a NUL byte in the file: a config file is text"
    );
}

#[test]
fn other_control_characters_are_errors_but_tabs_and_crlf_are_not() {
    let errors = errors_of(b"process_manager:\n  log_level: in\x1bfo\n");
    assert_eq!(place(&errors[0]), (2, 16, ""));
    assert!(
        errors[0].message.contains("control character 0x1b"),
        "{errors:#?}"
    );
    let config =
        load_bytes(b"process_manager:\r\n  log_level: \"w\tarn\"\t\r\n  log_level: warn\r\n")
            .expect_err("a tab in a value is kept, so `w<TAB>arn` is no level");
    assert_eq!(config.errors.len(), 2, "{config}");
    assert!(config.errors[0].message.contains("`w\\tarn`"), "{config}");
    let config = load_bytes(b"process_manager:\r\n  log_level: warn\t\r\n").expect("valid");
    assert_eq!(config.manager.log_level, crate::config::LogLevel::Warn);
}

#[test]
fn invalid_utf8_is_an_error_at_its_position() {
    let errors = errors_of(b"process_manager:\n  bind: \"h\xc3\xa9h\xff\"\n");
    assert_eq!(errors.len(), 1, "{errors:#?}");
    // Columns count characters: `é` is one.
    assert_eq!(place(&errors[0]), (2, 13, ""));
    assert_eq!(
        errors[0].message,
        "invalid UTF-8 (byte 0xff): a config file must be UTF-8 text"
    );
    let shown = ConfigErrors {
        file: "x.yaml".into(),
        errors,
    }
    .to_string();
    assert!(shown.starts_with("x.yaml:2:13: invalid UTF-8"), "{shown}");
}

#[test]
fn a_byte_order_mark_is_skipped_and_positions_stay_right() {
    let text = "\u{feff}process_manager:\n  port: 8080\n";
    let config = load_bytes(text.as_bytes()).expect("valid with a BOM");
    assert_eq!(config.manager.port, 8080);

    let errors = errors_of("\u{feff}process_manager: {port: x}\n".as_bytes());
    assert_eq!(
        place(&errors[0]),
        (1, 25, "process_manager.port"),
        "{errors:#?}"
    );
    // load_str too, for embedders that read the file themselves.
    let e = load_str(
        "\u{feff}process_manager: {port: x}\n",
        Path::new(SOURCE),
        &|_| None,
    )
    .expect_err("invalid");
    assert_eq!(place(&e.errors[0]), (1, 25, "process_manager.port"));
}

#[test]
fn an_empty_top_level_is_an_empty_config() {
    // A document marker with nothing after it used to be "the file must
    // be a mapping".
    for text in [
        "",
        "# only a comment\n",
        "---\n",
        "--- # nothing yet\n",
        "~\n",
        "...\n",
    ] {
        let config = match load_str(text, Path::new(SOURCE), &|_| None) {
            Ok(config) => config,
            Err(e) => panic!("{text:?}: {e}"),
        };
        assert!(config.processes.is_empty(), "{text:?}");
    }
    let config = load_ok("managed_processes: []");
    assert!(config.processes.is_empty());
    for text in ["- a\n", "just words\n", "\"quoted\"\n"] {
        let errors = load_err(text);
        assert!(
            errors[0].message.starts_with("the file must be a mapping"),
            "{text:?}: {errors:#?}"
        );
    }
}

#[test]
fn a_process_id_written_as_a_number_is_its_text() {
    let config = load_ok(
        "
        managed_processes:
          - id: 007
            management: {control: {executable: a}}
          - id: 1e3
            management: {control: {executable: b}}
        ",
    );
    let ids: Vec<&str> = config.processes.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, ["007", "1e3"], "kept as written, not as a number");
    let errors = load_err(
        "
        managed_processes:
          - id: 1.5
            management: {control: {executable: a}}
        ",
    );
    assert!(errors[0].message.contains("contains `.`"), "{errors:#?}");
}

#[test]
fn a_second_document_is_reported_with_the_first_documents_errors() {
    let errors = load_err(
        "
        process_manager:
          port: x
        ---
        managed_processes: []
        ",
    );
    let got: Vec<(usize, &str)> = errors.iter().map(|e| (e.line, e.path.as_str())).collect();
    assert_eq!(got, [(2, "process_manager.port"), (3, "")], "{errors:#?}");
    assert!(errors[1].message.contains("a second YAML document"));
}

#[test]
fn anchors_aliases_and_tags_are_reported_with_the_other_errors() {
    let errors = load_err(
        "
        process_manager:
          log_level: &lvl debug
          port: x
          log_format: !plain plain
          bind: *lvl
        ",
    );
    let got: Vec<(usize, &str)> = errors.iter().map(|e| (e.line, e.path.as_str())).collect();
    assert_eq!(
        got,
        [
            (2, "process_manager.log_level"),
            (3, "process_manager.port"),
            (4, "process_manager.log_format"),
            (5, "process_manager.bind"),
        ],
        "{errors:#?}"
    );
    assert!(errors[0].message.contains("anchors and aliases"));
    assert!(errors[2].message.contains("tags"));
}

#[test]
fn a_file_larger_than_64_mib_is_refused_before_it_is_parsed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("procman.yaml");
    let f = std::fs::File::create(&file).expect("create");
    // Sparse: nothing is written, the file reads as NUL bytes.
    f.set_len((64 << 20) + 1).expect("set_len");
    let e = load_file(&file).expect_err("too large");
    assert_eq!(e.errors.len(), 1, "{e}");
    assert_eq!(e.errors[0].line, 0);
    assert_eq!(e.errors[0].message, "the config file is larger than 64 MiB");
}

#[test]
fn a_nul_written_as_an_escape_is_an_error_where_it_is() {
    let yaml = "managed_processes:\n  - id: a\n    management:\n      control:\n        executable: \"/bin/tr\\u0000ue\"\n        arguments: [\"x\\0y\"]\n        environment:\n          K: \"v\\0\"\n";
    let errors = crate::config::load_str(yaml, std::path::Path::new("/t/p.yaml"), &|_| None)
        .expect_err("NULs are refused");
    let text = errors.to_string();
    for at in [
        "5:21: managed_processes[0].management.control.executable",
        "6:21: managed_processes[0].management.control.arguments[0]",
        "8:14: managed_processes[0].management.control.environment.K",
    ] {
        assert!(
            text.contains(at) && text.contains("NUL character"),
            "{at} in\n{text}"
        );
    }
}

#[test]
fn every_problem_with_the_text_is_reported_at_once_in_file_order() {
    let errors = errors_of(
        b"process_manager:\n  log_level: in\x00fo\n  log_levl: x\nmanaged_processes:\n  - id: \"a\x01\"\n    management:\n      control: {executable: \"sl\xffeep\"}\n",
    );
    let places: Vec<(usize, usize)> = errors.iter().map(|d| (d.line, d.column)).collect();
    assert_eq!(places, vec![(2, 16), (5, 11), (7, 32)], "{errors:#?}");
    assert!(errors[0].message.contains("NUL"), "{errors:#?}");
    assert!(errors[1].message.contains("0x01"), "{errors:#?}");
    assert!(errors[2].message.contains("invalid UTF-8"), "{errors:#?}");
}

#[test]
fn a_binary_file_gives_a_bounded_list() {
    let bytes: Vec<u8> = (0..4096u32)
        .map(|i| if i % 2 == 0 { 0xff } else { b'a' })
        .collect();
    let errors = errors_of(&bytes);
    assert_eq!(errors.len(), 21, "{errors:#?}");
    assert!(
        errors[20].message.contains("and 2028 more"),
        "{:#?}",
        errors[20]
    );
}

#[test]
fn a_tab_in_indentation_is_reported_where_it_is() {
    // The parser's own place for these is the line before, or the start
    // of the scalar before; an editor must land on the tab.
    let cases: &[(&[u8], (usize, usize))] = &[
        // A tab that starts a line under a list item.
        (
            b"managed_processes:\n  - id: a\n\tprofile_type: web\n",
            (3, 1),
        ),
        // A tab that starts a line of a mapping.
        (b"process_manager:\n\tport: 5\n", (2, 1)),
        // A tab after spaces in the indentation.
        (b"process_manager:\n  name: t\n  \t port: 3\n", (3, 3)),
        // A tab that indents a block scalar's content.
        (b"process_manager:\n  name: |\n\tabc\n", (3, 1)),
        // Spaces, then a tab, then more spaces before the key.
        (
            b"managed_processes:\n  - id: a\n    management:\n      control:\n  \t    executable: sleep\n",
            (5, 3),
        ),
        // A tab inside a line is a space there: the one that indents counts.
        (b"process_manager: \t\n\tport: 5\n", (2, 1)),
    ];
    assert_one_error_at(cases, "a tab indents this line");
}

#[test]
fn a_tab_after_a_keys_colon_is_reported_where_it_is() {
    let cases: &[(&[u8], (usize, usize))] = &[
        (b"process_manager:\n  port:\t5\n", (2, 8)),
        (
            b"managed_processes:\n  - id: a\n    management:\n      control:\n        executable:\tsleep\n",
            (5, 20),
        ),
    ];
    assert_one_error_at(cases, "a tab separates this key's `:` from its value");
}

/// Each text has one error, at its place, saying `what`.
fn assert_one_error_at(cases: &[(&[u8], (usize, usize))], what: &str) {
    for (text, at) in cases {
        let shown = String::from_utf8_lossy(text);
        let errors = errors_of(text);
        assert_eq!(errors.len(), 1, "{shown:?}: {errors:#?}");
        assert_eq!(
            place(&errors[0]),
            (at.0, at.1, ""),
            "{shown:?}: {errors:#?}"
        );
        assert!(errors[0].message.contains(what), "{shown:?}: {errors:#?}");
    }
}
