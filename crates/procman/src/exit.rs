//! The one place that decides the exit code.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success |
//! | 1 | failure at run time (e.g. the state directory is locked) |
//! | 2 | invalid configuration or usage (clap also exits 2 on bad usage) |
//! | 3 | no manager running (for the client subcommands of later releases) |

use std::process::ExitCode;

/// What a subcommand can end with, besides success.
#[derive(Debug)]
pub enum Failure {
    /// The config is invalid; the message lists every error.
    Config(String),
    /// Anything that went wrong at run time.
    Runtime(anyhow::Error),
}

pub fn report(outcome: Result<(), Failure>) -> ExitCode {
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Config(msg)) => {
            eprint!("{msg}");
            if !msg.ends_with('\n') {
                eprintln!();
            }
            ExitCode::from(2)
        }
        Err(Failure::Runtime(e)) => {
            eprintln!("procman: {e:#}");
            ExitCode::from(1)
        }
    }
}
