//! `procman`: a thin binary over `procman-core`. Parses the command line,
//! runs one subcommand, and turns its result into an exit code in exactly
//! one place (`exit.rs`).

mod cli;
mod exit;
mod telemetry;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let args = cli::Args::parse();
    let outcome = cli::dispatch(args);
    exit::report(outcome)
}
