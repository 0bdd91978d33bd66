//! The command line: one file per subcommand.

mod logs;
mod run;
mod validate;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::exit::Failure;

#[derive(Debug, Parser)]
#[command(
    name = "procman",
    version,
    about = "A process manager for the HSU YAML format"
)]
pub struct Args {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Run the manager in the foreground: start every enabled process of
    /// the config and keep it alive until SIGINT, SIGTERM or SIGQUIT.
    Run(run::RunArgs),
    /// Check a config file and report every error at once.
    Validate(ConfigArg),
    /// Print the log of a process, or of all of them merged by time, from
    /// the log files (no running manager needed); `-f` follows them.
    Logs(logs::LogsArgs),
}

#[derive(Debug, clap::Args)]
pub struct ConfigArg {
    /// The config file (HSU YAML format).
    #[arg(short, long, default_value = "procman.yaml", env = "PROCMAN_CONFIG")]
    pub config: PathBuf,
}

pub fn dispatch(args: Args) -> Result<(), Failure> {
    match args.command {
        Cmd::Run(a) => run::run(a),
        Cmd::Validate(a) => validate::validate(a),
        Cmd::Logs(a) => logs::logs(a),
    }
}

/// Loads a config, turning every error into the exit-2 failure.
pub fn load(path: &std::path::Path) -> Result<procman_core::config::Config, Failure> {
    procman_core::config::load_file(path).map_err(|e| Failure::Config(e.to_string()))
}
