//! systemd's quoting and escaping rules, one test per rule, and the
//! time spans and restart steps the units hold.

use std::time::Duration;

use procman_core::config::RestartPolicy;

use super::super::quote::{
    environment, environment_name_ok, exec_argument, exec_path, plain, shown,
};
use super::super::restart::{exact, steps};
use super::super::span;

#[test]
fn plain_words_stay_bare() {
    assert_eq!(exec_argument("--port"), "--port");
    assert_eq!(exec_argument("listen_addresses=*"), "listen_addresses=*");
    assert_eq!(exec_argument("http://x:80/a?b=c&d"), "http://x:80/a?b=c&d");
}

#[test]
fn spaces_and_empty_words_are_quoted() {
    assert_eq!(exec_argument("a b"), r#""a b""#);
    assert_eq!(
        exec_argument("while sleep 60; do date; done"),
        r#""while sleep 60; do date; done""#
    );
    assert_eq!(exec_argument(""), r#""""#);
    // A lone `;` separates commands unless quoted.
    assert_eq!(exec_argument(";"), r#"";""#);
}

#[test]
fn quotes_are_escaped_inside_double_quotes() {
    assert_eq!(exec_argument(r#"say "hi""#), r#""say \"hi\"""#);
    assert_eq!(exec_argument("it's"), r#""it's""#);
}

#[test]
fn dollars_are_doubled_in_arguments_only() {
    assert_eq!(exec_argument("$HOME"), "$$HOME");
    assert_eq!(exec_argument("${A} $B"), r#""$${A} $$B""#);
    // The executable is not expanded: `$$` would stay two dollars.
    assert_eq!(exec_path("/opt/a$b").as_deref(), Ok("/opt/a$b"));
    // Nor is Environment=.
    assert_eq!(environment("A", "$HOME"), r#""A=$HOME""#);
}

#[test]
fn percent_signs_are_doubled_everywhere() {
    assert_eq!(exec_argument("100%"), "100%%");
    assert_eq!(exec_path("/opt/100%/run").as_deref(), Ok("/opt/100%%/run"));
    assert_eq!(environment("P", "%h"), r#""P=%%h""#);
    assert_eq!(plain("/srv/100%").as_deref(), Ok("/srv/100%%"));
}

#[test]
fn backslashes_are_doubled() {
    assert_eq!(exec_argument(r"C:\dir"), r#""C:\\dir""#);
    assert_eq!(exec_argument(r"trailing\"), r#""trailing\\""#);
    assert_eq!(environment("B", r"a\nb"), r#""B=a\\nb""#);
}

#[test]
fn control_characters_become_c_escapes() {
    assert_eq!(exec_argument("a\nb"), r#""a\nb""#);
    assert_eq!(exec_argument("a\tb\rc"), r#""a\tb\rc""#);
    assert_eq!(exec_argument("\u{7}\u{8}\u{b}\u{c}"), r#""\a\b\v\f""#);
    assert_eq!(exec_argument("\u{1}\u{7f}"), r#""\x01\x7f""#);
    assert_eq!(exec_argument("\u{85}"), r#""\u0085""#);
    assert_eq!(environment("NL", "one\ntwo"), r#""NL=one\ntwo""#);
}

#[test]
fn non_ascii_passes_as_utf8() {
    assert_eq!(exec_argument("héllo"), "héllo");
    assert_eq!(exec_argument("grüße aus köln ✓"), r#""grüße aus köln ✓""#);
    assert_eq!(environment("GREET", "¡hola!"), r#""GREET=¡hola!""#);
    assert_eq!(exec_path("/opt/café/bin").as_deref(), Ok("/opt/café/bin"));
}

#[test]
fn executables_systemd_refuses_are_errors() {
    assert_eq!(exec_path("/opt/my app").as_deref(), Ok(r#""/opt/my app""#));
    for bad in [r"/opt/a\b", r#"/opt/a"b"#, "/opt/a'b", "/opt/a\nb"] {
        assert!(exec_path(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn environment_assignments_are_quoted_whole() {
    assert_eq!(
        environment("GREETING", r#"it's "quoted" $HOME and 100%"#),
        r#""GREETING=it's \"quoted\" $HOME and 100%%""#
    );
    assert_eq!(environment("E", ""), r#""E=""#);
    assert_eq!(environment("S", "a = b"), r#""S=a = b""#);
    assert!(environment_name_ok("RUST_LOG"));
    assert!(environment_name_ok("_x1"));
    for bad in ["MY-VAR", "1X", "a.b", "é", ""] {
        assert!(!environment_name_ok(bad), "{bad:?}");
    }
}

#[test]
fn plain_values_cannot_hold_line_breaks_or_outer_blanks() {
    assert_eq!(plain("/srv/my app").as_deref(), Ok("/srv/my app"));
    assert!(plain("/srv/a\nb").is_err());
    assert!(plain("/srv/a ").is_err());
    assert!(plain(" /srv/a").is_err());
}

#[test]
fn comments_show_text_escaped() {
    assert_eq!(
        shown("a\nExecStart=/bin/evil"),
        r#""a\nExecStart=/bin/evil""#
    );
    assert_eq!(shown(r"ends\"), r#""ends\\""#);
}

#[test]
fn spans_are_exact() {
    assert_eq!(span(Duration::ZERO), "0");
    assert_eq!(span(Duration::from_secs(90)), "90s");
    assert_eq!(span(Duration::from_secs(600)), "10min");
    assert_eq!(span(Duration::from_secs(7200)), "2h");
    assert_eq!(span(Duration::from_millis(1500)), "1500ms");
    assert_eq!(span(Duration::from_micros(250)), "250us");
    assert_eq!(span(Duration::from_nanos(1)), "1us");
}

#[test]
fn restart_steps_approach_procmans_backoff() {
    let policy = |first: u64, m: f64, cap: u64| RestartPolicy {
        restart_delay: Duration::from_millis(first),
        backoff_multiplier: m,
        max_delay: Duration::from_millis(cap),
        ..RestartPolicy::default()
    };
    // 1s doubling to 64s: 6 steps of exactly × 2.
    let s = steps(&policy(1000, 2.0, 64_000)).expect("grows");
    assert_eq!(s.steps, 6);
    assert!(exact(s, 2.0));
    // The default, 1s doubling to 60s: 6 steps of × 1.979.
    let s = steps(&policy(1000, 2.0, 60_000)).expect("grows");
    assert_eq!(s.steps, 6);
    assert!((s.factor - 1.979).abs() < 0.001, "{}", s.factor);
    assert!(!exact(s, 2.0));
    // A cap reached in less than a step still takes one.
    assert_eq!(steps(&policy(1000, 10.0, 2000)).map(|s| s.steps), Some(1));
    // No growth: multiplier 1, cap at the first delay, or no delay.
    assert_eq!(steps(&policy(1000, 1.0, 60_000)), None);
    assert_eq!(steps(&policy(5000, 2.0, 5000)), None);
    assert_eq!(steps(&policy(0, 2.0, 60_000)), None);
}
