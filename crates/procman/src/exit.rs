//! The one place that decides the exit code.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success; for `run`: stopped by SIGINT, SIGTERM or SIGQUIT (a second one, which kills every process at once, still ends in an orderly shutdown), (with `--exit-on-end`, only once every process has ended), or ended by itself with success (`--exit-on-end`, `shutdown_on_exit`); for every command: the reader of stdout went away (`procman status \| head -1`) |
//! | 1 | failure at run time: the state directory is locked, a thread or the async runtime cannot be created, or `run` was ended by a third shutdown signal (every process killed and its state file removed, the shutdown not finished), or ended by itself without success (or, with `--exit-on-end`, was shut down before every process had ended); for `export`: a file could not be written; for the client commands: the manager refused a request or could not be reached for another reason than "nobody there", an action failed for one of the processes, a deadline passed |
//! | 2 | invalid configuration or usage (clap also exits 2 on bad usage); for the client commands also: no process with that ID |
//! | 3 | no manager running: nothing answers on the socket of the config's state directory (or at `--url`) |
//! | 101 | never on purpose: a panic in the main thread (Rust's code for it) |
//!
//! The message goes through [`console`], so a closed or stuck stderr
//! cannot turn exit code 1 or 2 into a panic (101) or a hang.

use std::process::ExitCode;

use crate::console;

/// What a subcommand can end with, besides success.
#[derive(Debug)]
pub enum Failure {
    /// The config is invalid; the message lists every error.
    Config(String),
    /// Anything that went wrong at run time.
    Runtime(anyhow::Error),
    /// No manager answers where the client looked; the message says where.
    NoManager(String),
    /// The reader of stdout went away: not an error (`procman status |
    /// head -1`), so nothing is said and the exit code is 0.
    OutputClosed,
}

pub fn report(outcome: Result<(), Failure>) -> ExitCode {
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Config(mut msg)) => {
            if !msg.ends_with('\n') {
                msg.push('\n');
            }
            console::write(msg.as_bytes());
            ExitCode::from(2)
        }
        Err(Failure::Runtime(e)) => {
            console::write(format!("procman: {}\n", chain(&e)).as_bytes());
            ExitCode::from(1)
        }
        Err(Failure::NoManager(msg)) => {
            console::write(format!("procman: {msg}\n").as_bytes());
            ExitCode::from(3)
        }
        Err(Failure::OutputClosed) => ExitCode::SUCCESS,
    }
}

/// `outer: inner: root`, leaving out a cause whose text the message before
/// it already says (errors that print their source and also return it
/// would otherwise say it two or three times).
fn chain(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cause_already_said_is_not_said_again() {
        let root = std::io::Error::from_raw_os_error(13);
        let said = root.to_string();
        let e = anyhow::Error::new(root)
            .context(format!("cannot open log file /x: {said}"))
            .context("cannot start the manager");
        assert_eq!(
            chain(&e),
            format!("cannot start the manager: cannot open log file /x: {said}")
        );
    }
}
