//! The values inside arguments: durations, byte counts, numbers, exit
//! codes and signals, each parsed into a usage error that names the value.

use std::ffi::OsStr;
use std::time::Duration;

use libc::c_int;

use crate::cli::Usage;

pub fn text<'a>(arg: &'a OsStr, what: &str) -> Result<&'a str, Usage> {
    arg.to_str()
        .ok_or_else(|| format!("{what} is not valid UTF-8: {arg:?}"))
}

pub fn number<T: std::str::FromStr>(arg: &OsStr, what: &str) -> Result<T, Usage> {
    let s = text(arg, what)?;
    s.parse().map_err(|_| format!("invalid {what}: {s:?}"))
}

/// Parses `1.5s`, `100ms`, `250us`, `10ns`, `2m`, `1h` or a bare `0`.
pub fn duration(arg: &OsStr) -> Result<Duration, Usage> {
    let s = text(arg, "duration")?;
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| format!("invalid duration: {s:?}"))?;
    let scale = match unit {
        "ns" => 1e-9,
        "us" => 1e-6,
        "ms" => 1e-3,
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        "" if value == 0.0 => 0.0,
        _ => {
            return Err(format!(
                "invalid duration {s:?} (use a unit: ns, us, ms, s, m, h)"
            ))
        }
    };
    Duration::try_from_secs_f64(value * scale).map_err(|_| format!("invalid duration: {s:?}"))
}

/// Parses a byte count: a plain integer, or one with a `K`/`M`/`G` (or
/// `KiB`/`MiB`/`GiB`) suffix meaning powers of 1024.
pub fn size(arg: &OsStr) -> Result<u64, Usage> {
    let s = text(arg, "byte count")?;
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let shift = match unit {
        "" => 0,
        "K" | "KiB" => 10,
        "M" | "MiB" => 20,
        "G" | "GiB" => 30,
        _ => return Err(format!("invalid byte count: {s:?}")),
    };
    let value: u64 = num
        .parse()
        .map_err(|_| format!("invalid byte count: {s:?}"))?;
    value
        .checked_mul(1 << shift)
        .ok_or_else(|| format!("byte count too large: {s:?}"))
}

pub fn exit_code(arg: &OsStr) -> Result<u8, Usage> {
    number(arg, "exit code (0-255)")
}

const SIGNALS: &[(&str, c_int)] = &[
    ("HUP", libc::SIGHUP),
    ("INT", libc::SIGINT),
    ("QUIT", libc::SIGQUIT),
    ("ILL", libc::SIGILL),
    ("TRAP", libc::SIGTRAP),
    ("ABRT", libc::SIGABRT),
    ("BUS", libc::SIGBUS),
    ("FPE", libc::SIGFPE),
    ("KILL", libc::SIGKILL),
    ("USR1", libc::SIGUSR1),
    ("SEGV", libc::SIGSEGV),
    ("USR2", libc::SIGUSR2),
    ("PIPE", libc::SIGPIPE),
    ("ALRM", libc::SIGALRM),
    ("TERM", libc::SIGTERM),
    ("CHLD", libc::SIGCHLD),
    ("CONT", libc::SIGCONT),
    ("STOP", libc::SIGSTOP),
    ("TSTP", libc::SIGTSTP),
    ("TTIN", libc::SIGTTIN),
    ("TTOU", libc::SIGTTOU),
    ("URG", libc::SIGURG),
    ("XCPU", libc::SIGXCPU),
    ("XFSZ", libc::SIGXFSZ),
    ("VTALRM", libc::SIGVTALRM),
    ("PROF", libc::SIGPROF),
    ("WINCH", libc::SIGWINCH),
    ("IO", libc::SIGIO),
    ("SYS", libc::SIGSYS),
];

/// `SIGSEGV`, `SEGV`, `segv` or `11`.
pub fn signal(arg: &OsStr) -> Result<c_int, Usage> {
    let s = text(arg, "signal")?;
    if let Ok(n) = s.parse::<c_int>() {
        return if (1..=64).contains(&n) {
            Ok(n)
        } else {
            Err(format!("invalid signal number: {n}"))
        };
    }
    let upper = s.to_ascii_uppercase();
    let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
    SIGNALS
        .iter()
        .find(|(name, _)| *name == bare)
        .map(|&(_, n)| n)
        .ok_or_else(|| format!("unknown signal: {s:?}"))
}

/// `SIGTERM` for the signals we know by name, `SIG34` otherwise.
pub fn signal_name(sig: c_int) -> String {
    match SIGNALS.iter().find(|&&(_, n)| n == sig) {
        Some((name, _)) => format!("SIG{name}"),
        None => format!("SIG{sig}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration("100ms".as_ref()), Ok(Duration::from_millis(100)));
        assert_eq!(duration("1.5s".as_ref()), Ok(Duration::from_millis(1500)));
        assert_eq!(duration("0".as_ref()), Ok(Duration::ZERO));
        assert!(duration("5".as_ref()).is_err());
        assert!(duration("ms".as_ref()).is_err());
        assert!(duration("-1s".as_ref()).is_err());
    }

    #[test]
    fn sizes_and_signals() {
        assert_eq!(size("1G".as_ref()), Ok(1 << 30));
        assert_eq!(size("64KiB".as_ref()), Ok(64 << 10));
        assert_eq!(signal("SEGV".as_ref()), Ok(libc::SIGSEGV));
        assert_eq!(signal("sigkill".as_ref()), Ok(libc::SIGKILL));
        assert_eq!(signal("6".as_ref()), Ok(6));
        assert!(signal("NOPE".as_ref()).is_err());
    }
}
