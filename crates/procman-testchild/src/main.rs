//! `procman-testchild`: a purpose-built misbehaving child process for
//! hsu-procman's tests and benchmarks.
//!
//! # Theory of operation
//!
//! Each subcommand is one behaviour a supervisor has to cope with: exiting,
//! crashing, ignoring SIGTERM, leaking grandchildren, flooding a pipe,
//! serving (then failing) a health endpoint. Whatever a test needs to know
//! is printed as one fact per line on stdout (`ready pid=123`), each with a
//! single `write(2)`, so assertions wait on facts instead of guessing with
//! sleeps.
//!
//! This file is the one place that decides exit statuses: 2 for a usage
//! error, 100 for a runtime failure (`error: ...` on stderr), otherwise
//! whatever the behaviour asked for. Signals are only ever handled by
//! setting a bit (see `signals`), and we never busy-wait (except `spin`,
//! whose whole point it is).

mod cli;
mod environment;
mod health;
mod lifecycle;
mod out;
mod output;
mod resources;
mod signals;
mod stamp;
mod tree;
mod values;

use std::io::{self, Write};
use std::path::Path;
use std::process::ExitCode;

use cli::Command;

const USAGE: &str = "\
usage: procman-testchild [--stamp FILE] [--pidfile FILE] COMMAND [ARGS...]

A misbehaving child process for hsu-procman's tests. Facts are printed on
stdout, one per line, e.g. \"ready pid=123\".

global options (before COMMAND):
  --stamp FILE    append \"S <CLOCK_MONOTONIC ns> <pid>\" at start and
                  \"E <ns> <pid>\" when a command exits by itself
  --pidfile FILE  write our pid to FILE (atomically, via rename)

commands:
  exit CODE [--after DUR]            exit with CODE (0-255)
  crash SIGNAL [--after DUR] [--core]
                                     die by SIGNAL (SEGV, SIGABRT, 9, ...);
                                     core dumps are off unless --core
  run [--term-exit CODE] [--term-delay DUR]
                                     \"ready pid=N\", then wait; SIGTERM: \"got SIGTERM\",
                                     exit CODE (default 0) after DUR; SIGINT: exit 130;
                                     SIGHUP/SIGUSR1/SIGUSR2: \"got SIGHUP\", keep running
  ignore-term                        \"ready pid=N\"; SIGTERM/SIGINT print \"got SIGTERM\"
                                     and are otherwise ignored
  grandchildren [--daemon] [--ignore-term]
                                     \"grandchild pid=N kind=group|setsid|daemon\" per
                                     grandchild, \"ready pid=N\", then \"reaped pid=N\"
                                     whenever a grandchild of ours dies
  flood BYTES [--line-len N] [--stderr] [--wait-usr1]
                                     write BYTES bytes of \"000000001 xxx...\\n\" lines
                                     (N bytes each, default 100), then exit 0
  lines COUNT [--interval DUR] [--stderr] [--no-newline-last]
                                     write \"line 1\" .. \"line COUNT\", then exit 0
  env [--stay] [--] [ARG...]         print env, cwd, args, ids, fds, stdin, signal
                                     state; --stay: \"ready pid=N\" and block
  spawn-storm N [--no-reap]          fork N children that exit at once, reap them,
                                     \"spawned N\", block
  http-health PORT [--fail-after N] [--hang]
                                     \"listening port=N\"; GET /health: 200 \"ok\" N times,
                                     then 500; --hang: accept, never answer
  sleep DUR                          sleep, then exit 0
  hog MB [--step MB] [--interval DUR]
                                     allocate MB MiB, --step MiB (default 8) at a time,
                                     writing every page; \"allocated N\" per step (N: MiB
                                     so far), then \"ready pid=N\" and block
  spin                               \"ready pid=N\", then a busy loop forever
  fork-loop N                        try to fork N children that sleep; \"fork failed
                                     errno=E\" at the first failure (all N are tried),
                                     \"forked K\", block
  rlimits [--stay]                   \"nofile soft=S hard=H\" (RLIMIT_NOFILE), exit 0;
                                     --stay: \"ready pid=N\" and block
  help                               this text

DUR is a number with a unit: 100ms, 1.5s, 250us, 2m, 1h (or 0).
BYTES may end in K, M or G (powers of 1024).
Exit status: 2 for bad arguments, 100 for runtime errors (see stderr).
";

fn main() -> ExitCode {
    // The Rust runtime ignores SIGPIPE; a test child should die of it like
    // an ordinary program when its reader goes away. First thing, so that
    // even the usage text obeys it.
    if let Err(e) = signals::default(libc::SIGPIPE) {
        return fail(e);
    }
    let invocation = match cli::parse(std::env::args_os().skip(1).collect()) {
        Ok(invocation) => invocation,
        Err(message) => {
            let _ = write!(io::stderr(), "error: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    if let Command::Help = invocation.command {
        let _ = io::stdout().write_all(USAGE.as_bytes());
        return ExitCode::SUCCESS;
    }
    let stamp = invocation.stamp.as_deref();
    match start(stamp, invocation.pidfile.as_deref()).and_then(|()| dispatch(invocation.command)) {
        Ok(code) => match stamp.map(|path| stamp::append(path, 'E')).transpose() {
            Ok(_) => ExitCode::from(code),
            Err(e) => fail(e),
        },
        Err(e) => fail(e),
    }
}

fn fail(e: io::Error) -> ExitCode {
    let _ = writeln!(io::stderr(), "error: {e}");
    ExitCode::from(100)
}

fn start(stamp: Option<&Path>, pidfile: Option<&Path>) -> io::Result<()> {
    if let Some(path) = stamp {
        stamp::append(path, 'S')?;
    }
    if let Some(path) = pidfile {
        stamp::write_pidfile(path)?;
    }
    Ok(())
}

/// Runs one behaviour; `Ok` carries the exit status it chose.
fn dispatch(command: Command) -> io::Result<u8> {
    Ok(match command {
        Command::Help => 0,
        Command::Exit { code, after } => lifecycle::exit(code, after)?,
        Command::Crash {
            signal,
            after,
            core,
        } => lifecycle::crash(signal, after, core)?,
        Command::Run {
            term_exit,
            term_delay,
        } => lifecycle::run(term_exit, term_delay)?,
        Command::IgnoreTerm => lifecycle::ignore_term()?,
        Command::Grandchildren {
            daemon,
            ignore_term,
        } => tree::grandchildren(daemon, ignore_term)?,
        Command::Flood {
            bytes,
            line_len,
            stream,
            wait_usr1,
        } => output::flood(bytes, line_len, stream, wait_usr1)?,
        Command::Lines {
            count,
            interval,
            stream,
            no_newline_last,
        } => output::lines(count, interval, stream, no_newline_last)?,
        Command::Env { stay, args } => environment::env(stay, &args)?,
        Command::SpawnStorm { count, reap } => tree::spawn_storm(count, reap)?,
        Command::HttpHealth {
            port,
            fail_after,
            hang,
        } => health::http_health(port, fail_after, hang)?,
        Command::Sleep { duration } => lifecycle::sleep(duration)?,
        Command::Hog {
            mib,
            step,
            interval,
        } => resources::hog(mib, step, interval)?,
        Command::Spin => resources::spin()?,
        Command::ForkLoop { count } => tree::fork_loop(count)?,
        Command::Rlimits { stay } => resources::rlimits(stay)?,
    })
}
