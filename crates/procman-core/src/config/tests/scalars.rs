//! The scalar parsers and `${VAR}` expansion on their own.

use std::time::Duration;

use crate::config::expand::{expand, ExpandError};
use crate::config::scalar;
use crate::config::validate::check_id;

#[test]
fn durations() {
    let ms = Duration::from_millis;
    let cases: &[(&str, Duration)] = &[
        ("300ms", ms(300)),
        ("1.5s", ms(1500)),
        ("2m", ms(120_000)),
        ("1h30m", ms(5_400_000)),
        ("1h 30m", ms(5_400_000)),
        ("0.5h", ms(1_800_000)),
        ("5", ms(5000)),
        ("0.25", ms(250)),
        (".5s", ms(500)),
        ("0s", Duration::ZERO),
        ("1d", ms(86_400_000)),
        ("10 s", ms(10_000)),
        ("250us", Duration::from_micros(250)),
        ("7ns", Duration::from_nanos(7)),
        (" 3s ", ms(3000)),
    ];
    for &(text, want) in cases {
        assert_eq!(scalar::duration(text), Ok(want), "{text}");
    }
}

#[test]
fn bad_durations_name_the_value() {
    let cases: &[(&str, &str)] = &[
        ("-1s", "duration `-1s` must not be negative"),
        ("-3", "must not be negative"),
        ("soon", "invalid duration `soon`"),
        ("", "invalid duration"),
        ("5x", "unknown unit `x` in duration `5x`"),
        ("1h30", "missing unit after `30` in duration `1h30`"),
        ("1..5s", "invalid duration `1..5s`"),
        ("99999999999999999999999h", "is too long (at most 100 years"),
    ];
    for &(text, want) in cases {
        match scalar::duration(text) {
            Ok(d) => panic!("{text}: parsed as {d:?}"),
            Err(message) => assert!(message.contains(want), "{text}: {message}"),
        }
    }
}

#[test]
fn numbers_fractions_and_bools() {
    assert_eq!(scalar::uint("42", 0, 100), Ok(42));
    assert_eq!(scalar::uint("+7", 0, 100), Ok(7));
    assert!(scalar::uint("4.5", 0, 100).is_err());
    assert!(scalar::uint("101", 0, 100).is_err());
    assert!(scalar::uint("0", 1, 100).is_err());
    assert_eq!(scalar::float("1.5"), Ok(1.5));
    assert!(scalar::float("NaN").is_err());
    assert!(scalar::float("inf").is_err());
    assert_eq!(scalar::fraction("10%"), Ok(0.1));
    assert_eq!(scalar::fraction("0.1"), Ok(0.1));
    assert_eq!(scalar::percent("80%"), Ok(80.0));
    assert_eq!(scalar::boolean("True"), Ok(true));
    assert!(scalar::boolean("yes").is_err());
}

#[test]
fn endpoints() {
    for ok in [
        "localhost:80",
        "10.0.0.1:5432",
        "[::1]:50051",
        "db.internal:1",
    ] {
        assert_eq!(scalar::host_port(ok), Ok(()), "{ok}");
    }
    for bad in [
        "localhost",
        ":80",
        "host:0",
        "host:99999",
        "host:http",
        "a b:1",
    ] {
        assert!(scalar::host_port(bad).is_err(), "{bad}");
    }
    for ok in [
        "http://localhost:8080/health",
        "https://example.com",
        "HTTP://[::1]:80/x?y=1",
        "http://user@host/",
    ] {
        assert_eq!(scalar::http_url(ok), Ok(()), "{ok}");
    }
    for bad in [
        "localhost:8080/health",
        "ftp://x/",
        "http://",
        "http://:80/",
        "http://h:port/",
        "http://a b/",
    ] {
        assert!(scalar::http_url(bad).is_err(), "{bad}");
    }
}

#[test]
fn ids() {
    for ok in ["a", "my-service", "worker_2", &"x".repeat(64)] {
        assert_eq!(check_id(ok), Ok(()), "{ok}");
    }
    for bad in ["", "my service", "a.b", "ü", &"x".repeat(65)] {
        assert!(check_id(bad).is_err(), "{bad}");
    }
}

#[test]
fn expansion() {
    let env = |name: &str| match name {
        "HOME" => Some("/home/me".to_string()),
        "EMPTY" => Some(String::new()),
        _ => None,
    };
    let ok: &[(&str, &str)] = &[
        ("plain", "plain"),
        ("${HOME}/bin", "/home/me/bin"),
        ("${UNSET:-/tmp}", "/tmp"),
        ("${EMPTY:-fallback}", "fallback"),
        ("[${EMPTY}]", "[]"),
        ("${UNSET:-${HOME}}", "/home/me"),
        ("${UNSET:-}", ""),
        ("$$HOME", "$HOME"),
        ("$$$$", "$$"),
        ("cost: $5", "cost: $5"),
        ("trailing $", "trailing $"),
    ];
    for &(text, want) in ok {
        assert_eq!(expand(text, &env), Ok(want.to_string()), "{text}");
    }
    assert_eq!(
        expand("${NOPE}", &env),
        Err(ExpandError::Unset("NOPE".into()))
    );
    assert_eq!(expand("${HOME", &env), Err(ExpandError::Unterminated));
    assert_eq!(
        expand("${HOME-x}", &env),
        Err(ExpandError::BadName("HOME-x".into()))
    );
    assert_eq!(
        ExpandError::Unset("FOO".into()).to_string(),
        "environment variable FOO is not set and has no default (`${NAME:-default}`)"
    );
}
