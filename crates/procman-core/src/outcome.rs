//! Portable outcome types: how a process ended, and signals by name.
//!
//! An exit code and a signal death are never folded together: "exited
//! with 137" and "killed by SIGKILL" are different facts.

use std::fmt;

/// A Unix signal, by number, with its conventional name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signal(pub i32);

const NAMES: &[(&str, i32)] = &[
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
    ("STKFLT", libc::SIGSTKFLT),
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
    ("PWR", libc::SIGPWR),
    ("SYS", libc::SIGSYS),
];

impl Signal {
    pub const TERM: Signal = Signal(libc::SIGTERM);
    pub const KILL: Signal = Signal(libc::SIGKILL);
    pub const INT: Signal = Signal(libc::SIGINT);
    pub const CONT: Signal = Signal(libc::SIGCONT);

    /// Parses `SIGTERM`, `TERM`, `term` or `15`.
    pub fn parse(s: &str) -> Option<Signal> {
        let t = s.trim();
        if let Ok(n) = t.parse::<i32>() {
            return (1..=64).contains(&n).then_some(Signal(n));
        }
        let upper = t.to_ascii_uppercase();
        let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
        NAMES
            .iter()
            .find(|(name, _)| *name == bare)
            .map(|&(_, n)| Signal(n))
    }

    /// `SIGTERM`, or `SIG42` for one without a name.
    pub fn name(self) -> String {
        match NAMES.iter().find(|&&(_, n)| n == self.0) {
            Some((name, _)) => format!("SIG{name}"),
            None => format!("SIG{}", self.0),
        }
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// How a run of a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessEnd {
    /// It called `exit(code)`.
    Exited(i32),
    /// A signal ended it; `core` when it dumped core.
    Signaled { signal: Signal, core: bool },
    /// It ended while it was not our child (it was adopted from an earlier
    /// manager, or is an unmanaged process), so the kernel told us only
    /// that it ended, not how: a parent's `wait` is the one source of an
    /// exit status.
    Unknown,
}

impl ProcessEnd {
    pub fn from_std(status: std::process::ExitStatus) -> ProcessEnd {
        use std::os::unix::process::ExitStatusExt;
        match (status.code(), status.signal()) {
            (Some(code), _) => ProcessEnd::Exited(code),
            (None, Some(sig)) => ProcessEnd::Signaled {
                signal: Signal(sig),
                core: status.core_dumped(),
            },
            // Neither code nor signal only happens for stopped/continued
            // states, which `wait` does not report to us.
            (None, None) => ProcessEnd::Exited(-1),
        }
    }

    /// The exit code, when it exited.
    pub fn code(self) -> Option<i32> {
        match self {
            ProcessEnd::Exited(c) => Some(c),
            ProcessEnd::Signaled { .. } | ProcessEnd::Unknown => None,
        }
    }

    /// The signal, when one killed it.
    pub fn signal(self) -> Option<Signal> {
        match self {
            ProcessEnd::Exited(_) | ProcessEnd::Unknown => None,
            ProcessEnd::Signaled { signal, .. } => Some(signal),
        }
    }
}

impl fmt::Display for ProcessEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProcessEnd::Exited(code) => write!(f, "exited with code {code}"),
            ProcessEnd::Signaled { signal, core: true } => {
                write!(f, "killed by {signal} (core dumped)")
            }
            ProcessEnd::Signaled { signal, .. } => write!(f, "killed by {signal}"),
            ProcessEnd::Unknown => f.write_str("ended (exit status unknown: not our child)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_names_parse_every_spelling() {
        for s in ["SIGTERM", "TERM", "term", "15"] {
            assert_eq!(Signal::parse(s), Some(Signal::TERM), "{s}");
        }
        assert_eq!(Signal::parse("SIGNOPE"), None);
        assert_eq!(Signal::parse("0"), None);
        assert_eq!(Signal::KILL.to_string(), "SIGKILL");
    }

    #[test]
    fn exit_code_and_signal_stay_apart() {
        let code = ProcessEnd::Exited(137);
        let sig = ProcessEnd::Signaled {
            signal: Signal::KILL,
            core: false,
        };
        assert_ne!(code, sig);
        assert_eq!(code.signal(), None);
        assert_eq!(sig.code(), None);
        assert_eq!(sig.to_string(), "killed by SIGKILL");
    }
}
