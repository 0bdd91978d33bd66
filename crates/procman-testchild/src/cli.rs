//! Hand-rolled argument parsing: `argv` becomes one [`Invocation`], or a
//! usage error that `main` turns into exit status 2.
//!
//! Options may come before, between or after a subcommand's positional
//! arguments, as `--flag VALUE` or `--flag=VALUE`. Global options are only
//! accepted before the subcommand, so a subcommand never has to guess whose
//! flag it is looking at.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use libc::c_int;

use crate::values::{duration, exit_code, number, signal, size, text};

/// Line numbers are printed as nine zero-padded digits.
pub const NUMBER_DIGITS: usize = 9;
/// Shortest line `flood` can make: the number, a space and the newline.
pub const MIN_LINE_LEN: usize = NUMBER_DIGITS + 2;
const MAX_LINE_NUMBER: u64 = 999_999_999;

/// Everything one run of the binary was asked to do.
pub struct Invocation {
    pub stamp: Option<PathBuf>,
    pub pidfile: Option<PathBuf>,
    pub command: Command,
}

#[derive(Clone, Copy)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub fn fd(self) -> c_int {
        match self {
            Stream::Stdout => libc::STDOUT_FILENO,
            Stream::Stderr => libc::STDERR_FILENO,
        }
    }
}

/// One variant per behaviour, carrying its parsed options.
pub enum Command {
    Help,
    Exit {
        code: u8,
        after: Option<Duration>,
    },
    Crash {
        signal: c_int,
        after: Option<Duration>,
        core: bool,
    },
    Run {
        term_exit: u8,
        term_delay: Option<Duration>,
    },
    IgnoreTerm,
    Grandchildren {
        daemon: bool,
        ignore_term: bool,
    },
    Flood {
        bytes: u64,
        line_len: usize,
        stream: Stream,
        wait_usr1: bool,
    },
    Lines {
        count: u64,
        interval: Option<Duration>,
        stream: Stream,
        no_newline_last: bool,
    },
    Env {
        stay: bool,
        args: Vec<OsString>,
    },
    SpawnStorm {
        count: u32,
        reap: bool,
    },
    HttpHealth {
        port: u16,
        fail_after: Option<u64>,
        hang: bool,
    },
    Sleep {
        duration: Duration,
    },
    Hog {
        /// MiB to allocate, in all.
        mib: u64,
        /// MiB per step.
        step: u64,
        interval: Option<Duration>,
    },
    Spin,
    ForkLoop {
        count: u32,
    },
    Rlimits {
        stay: bool,
    },
}

/// A usage error; the message reads well after "error: ".
pub type Usage = String;

enum Tok {
    /// `--name` or `--name=value`.
    Flag {
        name: String,
        inline: Option<OsString>,
    },
    Pos(OsString),
}

struct Args {
    rest: std::vec::IntoIter<OsString>,
}

impl Args {
    fn next(&mut self) -> Option<Tok> {
        let arg = self.rest.next()?;
        let Some(text) = arg.to_str() else {
            return Some(Tok::Pos(arg));
        };
        if !text.starts_with("--") || text == "--" {
            return Some(Tok::Pos(arg));
        }
        Some(match text.split_once('=') {
            Some((name, value)) => Tok::Flag {
                name: name.into(),
                inline: Some(value.into()),
            },
            None => Tok::Flag {
                name: text.into(),
                inline: None,
            },
        })
    }

    /// The value of a flag that takes one, from `--flag=VALUE` or the next argument.
    fn value(&mut self, name: &str, inline: Option<OsString>) -> Result<OsString, Usage> {
        inline
            .or_else(|| self.rest.next())
            .ok_or_else(|| format!("{name} needs a value"))
    }
}

fn switch(name: &str, inline: Option<OsString>) -> Result<bool, Usage> {
    match inline {
        None => Ok(true),
        Some(_) => Err(format!("{name} takes no value")),
    }
}

fn unexpected(tok: Tok, command: &str) -> Usage {
    match tok {
        Tok::Flag { name, .. } => format!("unknown option {name} for {command}"),
        Tok::Pos(arg) => format!("unexpected argument {arg:?} for {command}"),
    }
}

fn required<T>(value: Option<T>, what: &str, command: &str) -> Result<T, Usage> {
    value.ok_or_else(|| format!("{command} needs {what}"))
}

/// Parses everything after the program name.
pub fn parse(argv: Vec<OsString>) -> Result<Invocation, Usage> {
    let mut args = Args {
        rest: argv.into_iter(),
    };
    let mut stamp = None;
    let mut pidfile = None;
    let name = loop {
        match args.next() {
            None => return Err("no command given".into()),
            Some(Tok::Flag { name, inline }) => match name.as_str() {
                "--stamp" => stamp = Some(args.value(&name, inline)?.into()),
                "--pidfile" => pidfile = Some(args.value(&name, inline)?.into()),
                "--help" => {
                    return Ok(Invocation {
                        stamp,
                        pidfile,
                        command: Command::Help,
                    })
                }
                _ => return Err(format!("unknown global option {name}")),
            },
            Some(Tok::Pos(arg)) => break arg,
        }
    };
    let name = text(&name, "command")?.to_owned();
    let command = match name.as_str() {
        "help" | "-h" => Command::Help,
        "env" => parse_env(&mut args),
        _ => parse_command(&name, &mut args)?,
    };
    Ok(Invocation {
        stamp,
        pidfile,
        command,
    })
}

/// `env` echoes its arguments, so only `--stay` and `--` are special.
fn parse_env(args: &mut Args) -> Command {
    let mut stay = false;
    let mut rest = Vec::new();
    while let Some(arg) = args.rest.next() {
        match arg.to_str() {
            Some("--stay") => stay = true,
            Some("--") => {
                rest.extend(args.rest.by_ref());
                break;
            }
            _ => rest.push(arg),
        }
    }
    Command::Env { stay, args: rest }
}

/// Options shared by the table of subcommands below; each subcommand accepts
/// only the ones it lists.
#[derive(Default)]
struct Opts {
    positional: Vec<OsString>,
    after: Option<Duration>,
    interval: Option<Duration>,
    term_delay: Option<Duration>,
    term_exit: Option<u8>,
    line_len: Option<usize>,
    fail_after: Option<u64>,
    step: Option<u64>,
    flags: Vec<String>,
}

fn parse_command(command: &str, args: &mut Args) -> Result<Command, Usage> {
    let (max_positional, valued, switches): (usize, &[&str], &[&str]) = match command {
        "exit" => (1, &["--after"], &[]),
        "crash" => (1, &["--after"], &["--core"]),
        "run" => (0, &["--term-exit", "--term-delay"], &[]),
        "ignore-term" => (0, &[], &[]),
        "grandchildren" => (0, &[], &["--daemon", "--ignore-term"]),
        "flood" => (1, &["--line-len"], &["--stderr", "--wait-usr1"]),
        "lines" => (1, &["--interval"], &["--stderr", "--no-newline-last"]),
        "spawn-storm" => (1, &[], &["--no-reap"]),
        "http-health" => (1, &["--fail-after"], &["--hang"]),
        "sleep" => (1, &[], &[]),
        "hog" => (1, &["--step", "--interval"], &[]),
        "spin" => (0, &[], &[]),
        "fork-loop" => (1, &[], &[]),
        "rlimits" => (0, &[], &["--stay"]),
        _ => return Err(format!("unknown command {command:?}")),
    };
    let mut o = Opts::default();
    while let Some(tok) = args.next() {
        match tok {
            Tok::Flag { name, inline } if valued.contains(&name.as_str()) => {
                let v = args.value(&name, inline)?;
                match name.as_str() {
                    "--after" => o.after = Some(duration(&v)?),
                    "--interval" => o.interval = Some(duration(&v)?),
                    "--term-delay" => o.term_delay = Some(duration(&v)?),
                    "--term-exit" => o.term_exit = Some(exit_code(&v)?),
                    "--line-len" => o.line_len = Some(number(&v, "line length")?),
                    "--fail-after" => o.fail_after = Some(number(&v, "request count")?),
                    "--step" => o.step = Some(number(&v, "step in MiB")?),
                    _ => unreachable!("every valued flag is handled above"),
                }
            }
            Tok::Flag { name, inline } if switches.contains(&name.as_str()) => {
                switch(&name, inline)?;
                o.flags.push(name);
            }
            Tok::Pos(arg) if o.positional.len() < max_positional => o.positional.push(arg),
            tok => return Err(unexpected(tok, command)),
        }
    }
    build(command, o)
}

fn build(command: &str, o: Opts) -> Result<Command, Usage> {
    let flag = |name: &str| o.flags.iter().any(|f| f == name);
    let stream = if flag("--stderr") {
        Stream::Stderr
    } else {
        Stream::Stdout
    };
    let pos = o.positional.first().map(OsString::as_os_str);
    Ok(match command {
        "exit" => Command::Exit {
            code: exit_code(required(pos, "an exit code", command)?)?,
            after: o.after,
        },
        "crash" => Command::Crash {
            signal: signal(required(pos, "a signal", command)?)?,
            after: o.after,
            core: flag("--core"),
        },
        "run" => Command::Run {
            term_exit: o.term_exit.unwrap_or(0),
            term_delay: o.term_delay,
        },
        "ignore-term" => Command::IgnoreTerm,
        "grandchildren" => Command::Grandchildren {
            daemon: flag("--daemon"),
            ignore_term: flag("--ignore-term"),
        },
        "flood" => {
            let bytes = size(required(pos, "a byte count", command)?)?;
            let line_len = o.line_len.unwrap_or(100);
            if line_len < MIN_LINE_LEN {
                return Err(format!("--line-len must be at least {MIN_LINE_LEN}"));
            }
            if bytes.div_ceil(line_len as u64) > MAX_LINE_NUMBER {
                return Err(format!(
                    "flood would need more than {MAX_LINE_NUMBER} lines"
                ));
            }
            Command::Flood {
                bytes,
                line_len,
                stream,
                wait_usr1: flag("--wait-usr1"),
            }
        }
        "lines" => Command::Lines {
            count: number(required(pos, "a line count", command)?, "line count")?,
            interval: o.interval,
            stream,
            no_newline_last: flag("--no-newline-last"),
        },
        "spawn-storm" => Command::SpawnStorm {
            count: number(required(pos, "a child count", command)?, "child count")?,
            reap: !flag("--no-reap"),
        },
        "http-health" => Command::HttpHealth {
            port: number(required(pos, "a port", command)?, "port")?,
            fail_after: o.fail_after,
            hang: flag("--hang"),
        },
        "sleep" => Command::Sleep {
            duration: duration(required(pos, "a duration", command)?)?,
        },
        "hog" => {
            let mib: u64 = number(required(pos, "a size in MiB", command)?, "size in MiB")?;
            let step = o.step.unwrap_or(8);
            if step == 0 {
                return Err("--step must be at least 1 MiB".into());
            }
            // Sizes in bytes must fit a `usize` on every platform we run on.
            if mib.max(step) > 1 << 20 {
                return Err(format!("hog is limited to {} MiB", 1u64 << 20));
            }
            Command::Hog {
                mib,
                step,
                interval: o.interval,
            }
        }
        "spin" => Command::Spin,
        "fork-loop" => Command::ForkLoop {
            count: number(required(pos, "a child count", command)?, "child count")?,
        },
        "rlimits" => Command::Rlimits {
            stay: flag("--stay"),
        },
        _ => unreachable!("parse_command rejects unknown commands"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &str) -> Vec<OsString> {
        s.split_whitespace().map(OsString::from).collect()
    }

    #[test]
    fn options_anywhere_and_globals_first() {
        let inv = parse(argv("--stamp /tmp/s exit --after=2s 3")).unwrap();
        assert_eq!(inv.stamp, Some(PathBuf::from("/tmp/s")));
        assert!(
            matches!(inv.command, Command::Exit { code: 3, after: Some(d) } if d.as_secs() == 2)
        );
        assert!(parse(argv("exit 3 --stamp /tmp/s")).is_err());
        assert!(parse(argv("exit 3 4")).is_err());
        assert!(parse(argv("exit 256")).is_err());
        assert!(parse(argv("run --term-exit")).is_err());
        assert!(parse(argv("bogus")).is_err());
    }

    #[test]
    fn resource_commands() {
        let inv = parse(argv("hog 200 --step 4 --interval=10ms")).unwrap();
        assert!(matches!(
            inv.command,
            Command::Hog { mib: 200, step: 4, interval: Some(d) } if d.as_millis() == 10
        ));
        let inv = parse(argv("hog 16")).unwrap();
        assert!(matches!(
            inv.command,
            Command::Hog {
                mib: 16,
                step: 8,
                interval: None
            }
        ));
        assert!(parse(argv("hog")).is_err());
        assert!(parse(argv("hog 16 --step 0")).is_err());
        assert!(matches!(
            parse(argv("spin")).unwrap().command,
            Command::Spin
        ));
        assert!(parse(argv("spin 3")).is_err());
        assert!(matches!(
            parse(argv("fork-loop 100")).unwrap().command,
            Command::ForkLoop { count: 100 }
        ));
        assert!(matches!(
            parse(argv("rlimits --stay")).unwrap().command,
            Command::Rlimits { stay: true }
        ));
    }

    #[test]
    fn env_keeps_its_arguments() {
        let inv = parse(argv("env a --stay --x -- --stay")).unwrap();
        let Command::Env { stay, args } = inv.command else {
            panic!("not env")
        };
        assert!(stay);
        assert_eq!(args, argv("a --x --stay"));
    }
}
