//! The command line: one file per subcommand.
//!
//! `run` is the manager; `validate` reads a config; the others are clients
//! of a running manager's API ([`endpoint`] finds it), except that `logs`
//! reads the log files itself when no manager answers.

mod action;
pub(crate) mod endpoint;
mod events;
mod export;
pub(crate) mod logs;
pub(crate) mod output;
mod reload;
mod run;
mod shutdown;
mod signal;
pub(crate) mod status;
pub(crate) mod table;
mod validate;
mod watch;

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use procman_api::client::Action;

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
    /// Show every process as a table, or one process in detail.
    Status(status::StatusArgs),
    /// Start processes and wait until they run.
    Start(action::ActionArgs),
    /// Stop processes and wait until they have stopped.
    Stop(action::ActionArgs),
    /// Restart processes and wait until they run again.
    Restart(action::ActionArgs),
    /// Send a signal to a process (or to its whole tree).
    Signal(signal::SignalArgs),
    /// Print the log of a process, or of all of them merged by time:
    /// through the running manager, or from the log files when none runs;
    /// `-f` follows them.
    Logs(logs::LogsArgs),
    /// Print the state transitions of the processes; `-f` follows them.
    Events(events::EventsArgs),
    /// Load the config file again and apply it; `--dry-run` only prints the
    /// plan.
    Reload(reload::ReloadArgs),
    /// Stop every process and the manager, and wait until it has exited.
    Shutdown(shutdown::ShutdownArgs),
    /// Write the config as systemd units, Kubernetes manifests or a Nomad
    /// job; what the target cannot express is a warning on stderr.
    Export(export::ExportArgs),
    /// A live view of the processes, their logs and keys to act on them
    /// (q quits).
    #[cfg(feature = "tui")]
    Tui(crate::tui::TuiArgs),
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
        Cmd::Status(a) => status::status(a),
        Cmd::Start(a) => action::act(Action::Start, a),
        Cmd::Stop(a) => action::act(Action::Stop, a),
        Cmd::Restart(a) => action::act(Action::Restart, a),
        Cmd::Signal(a) => signal::signal(a),
        Cmd::Logs(a) => logs::logs(a),
        Cmd::Events(a) => events::events(a),
        Cmd::Reload(a) => reload::reload(a),
        Cmd::Shutdown(a) => shutdown::shutdown(a),
        Cmd::Export(a) => export::export(a),
        #[cfg(feature = "tui")]
        Cmd::Tui(a) => crate::tui::tui(a),
    }
}

/// Loads a config, turning every error into the exit-2 failure.
pub fn load(path: &std::path::Path) -> Result<procman_core::config::Config, Failure> {
    procman_core::config::load_file(path).map_err(|e| Failure::Config(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        Args::command().debug_assert();
    }
}
