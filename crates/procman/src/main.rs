//! `procman`: a thin binary over `procman-core`. Parses the command line,
//! runs one subcommand, and turns its result into an exit code in exactly
//! one place (`exit.rs`).

mod cli;
mod console;
mod exit;
mod export;
mod runtime;
mod server;
mod signals;
mod telemetry;
#[cfg(feature = "tui")]
mod tui;

use std::time::Duration;

use clap::Parser;

/// How long the last messages may take to reach a slow stderr at exit; a
/// stuck one loses them rather than keeping the process alive.
const FLUSH_AT_EXIT: Duration = Duration::from_secs(2);

fn main() -> std::process::ExitCode {
    // `procman run` holds its signals from its first instruction, before
    // the command line is parsed: a SIGTERM a millisecond after the exec
    // must wait for its handler, not end the manager. (`run` holds them
    // again, for any other way in; a failure is reported there.)
    if std::env::args_os().nth(1).is_some_and(|a| a == "run") {
        let _ = signals::hold();
    }
    telemetry::install_panic_hook();
    let args = cli::Args::parse();
    let outcome = cli::dispatch(args);
    let code = exit::report(outcome);
    console::flush(FLUSH_AT_EXIT);
    code
}
