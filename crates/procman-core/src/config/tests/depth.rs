//! Deep nesting, in the YAML and in `${...}` defaults: an error with a
//! place, never a stack overflow. Each hostile input is loaded on a thread
//! with the 2 MiB stack a spawned thread gets by default, so a recursion
//! that comes back crashes the test binary instead of passing on the main
//! thread's larger stack.

use std::path::Path;

use super::SOURCE;
use crate::config::expand::{expand, ExpandError};
use crate::config::{load_str, ConfigErrors, Diagnostic};

/// Deeper than any stack allows for a recursive parser.
const HOSTILE: usize = 50_000;

/// Loads `text` (unset variables, no defaults) on a 2 MiB thread.
fn load_on_small_stack(text: String) -> Result<crate::config::Config, ConfigErrors> {
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || load_str(&text, Path::new(SOURCE), &|_| None))
        .expect("spawn")
        .join()
        .expect("the loader panicked")
}

fn only_error(text: String) -> Diagnostic {
    match load_on_small_stack(text) {
        Ok(config) => panic!(
            "expected an error, got {} processes",
            config.processes.len()
        ),
        Err(e) => {
            assert_eq!(e.errors.len(), 1, "{e}");
            e.errors[0].clone()
        }
    }
}

fn assert_too_deep(d: &Diagnostic, line: usize, path_start: &str) {
    assert_eq!(d.message, "nested more than 64 levels deep", "{d:?}");
    assert_eq!(d.line, line, "{d:?}");
    assert!(d.column > 0, "{d:?}");
    assert!(d.path.starts_with(path_start), "{d:?}");
    assert!(d.path.len() < 100, "the path is cut: {d:?}");
}

#[test]
fn a_block_sequence_nested_on_one_line_is_an_error() {
    let text = format!("managed_processes:\n  {}x\n", "- ".repeat(HOSTILE));
    let d = only_error(text);
    assert_too_deep(&d, 2, "managed_processes[0][0][0]");
    // The 65th level starts after 63 `- ` inside the top mapping's list.
    assert_eq!(d.column, 3 + 2 * 63);
}

#[test]
fn a_block_sequence_nested_one_line_per_level_is_an_error() {
    let mut text = String::from("managed_processes:\n");
    for level in 0..5_000 {
        text.push_str(&" ".repeat(level + 1));
        text.push_str("-\n");
    }
    let d = only_error(text);
    assert_too_deep(&d, 65, "managed_processes[0][0]");
}

#[test]
fn flow_sequences_and_mappings_nested_deep_are_errors() {
    let lists = format!(
        "process_manager: {}{}\n",
        "[".repeat(HOSTILE),
        "]".repeat(HOSTILE)
    );
    let maps = format!(
        "process_manager: {}1{}\n",
        "{a: ".repeat(HOSTILE),
        "}".repeat(HOSTILE)
    );
    // The scanner looks ahead through flow collections (one may turn out
    // to be a key) and meets its own limit of 255 levels before the tree
    // is 64 deep: the same message, without a key path.
    for text in [lists, maps] {
        let d = only_error(text);
        assert_eq!(d.message, "nested more than 64 levels deep", "{d:?}");
        assert_eq!(d.line, 1, "{d:?}");
        assert!(d.column > 64, "{d:?}");
    }
}

#[test]
fn nesting_is_counted_exactly_64_levels_load() {
    // The top mapping is level 1: 63 lists under it make 64.
    let lists = |n: usize| format!("x: {}{}\n", "[".repeat(n), "]".repeat(n));
    let e = load_on_small_stack(lists(63)).expect_err("an unknown key");
    assert_eq!(e.errors[0].message, "unknown key `x`", "{e}");
    let d = only_error(lists(64));
    assert_too_deep(&d, 1, "x[0]");
    assert_eq!(d.column, 4 + 63, "at the 65th level's `[`");
    // The same with block mappings, one per line.
    let maps = |n: usize| {
        let mut text = String::from("x:\n");
        for level in 1..=n {
            text.push_str(&format!("{}k{level}:\n", " ".repeat(level)));
        }
        text
    };
    let e = load_on_small_stack(maps(63)).expect_err("an unknown key");
    assert_eq!(e.errors[0].message, "unknown key `x`", "{e}");
    let d = only_error(maps(64));
    assert_too_deep(&d, 65, "x.k1.k2.k3");
}

#[test]
fn nested_defaults_are_an_error_at_the_value() {
    let nested = |n: usize| format!("{}info{}", "${A:-".repeat(n), "}".repeat(n));
    let text = format!("process_manager:\n  log_level: \"{}\"\n", nested(HOSTILE));
    let d = only_error(text);
    assert_eq!(
        (d.line, d.column, d.path.as_str()),
        (2, 14, "process_manager.log_level")
    );
    assert_eq!(
        d.message,
        "`${...}` defaults nested more than 16 levels deep"
    );

    // 16 levels are fine, 17 are not.
    let unset = |_: &str| None;
    assert_eq!(expand(&nested(16), &unset), Ok("info".to_string()));
    assert_eq!(expand(&nested(17), &unset), Err(ExpandError::TooDeep));
    // A set variable is not expanded further, however deep its default.
    let set = |_: &str| Some("warn".to_string());
    assert_eq!(expand(&nested(100), &set), Ok("warn".to_string()));
}

#[test]
fn the_deepest_real_config_is_far_below_the_limit() {
    // `command` lists in a health check are the deepest place a real
    // config writes: root, list, process, management, health_check,
    // command = 6 levels.
    let config = super::load_ok(
        "
        managed_processes:
          - id: app
            management:
              control: {executable: app}
              health_check: {command: [test, -f, /tmp/ready]}
        ",
    );
    let check = config.processes[0].health_check.as_ref().expect("check");
    assert_eq!(check.command, ["test", "-f", "/tmp/ready"]);
}
