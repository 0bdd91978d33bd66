//! `procman logs [ID] [-n N] [-f] [-o plain|json]`: the log of a process,
//! or of every process merged by time.
//!
//! Through the manager's API when one answers on the socket of the
//! config's state directory (or at `--url`): [`api`]. Otherwise from the
//! log files the config points to: [`files`], which needs no manager. Both
//! print the same records, plain or as one JSON object each, and both end
//! quietly with 0 when their output is closed or on SIGINT / SIGTERM while
//! following.

mod api;
mod files;

pub use api::plain;

use super::endpoint::{locate, ManagerArgs};
use super::output::FormatArg;
use crate::exit::Failure;

#[derive(Debug, clap::Args)]
pub struct LogsArgs {
    /// The process whose log to print; without it, the logs of every
    /// process, merged by time.
    id: Option<String>,
    #[command(flatten)]
    manager: ManagerArgs,
    /// How many records to print, from the end (of the merged records
    /// when there is no ID); 0 prints them all.
    #[arg(short = 'n', long = "lines", value_name = "N", default_value_t = 50)]
    lines: usize,
    /// Then print records as they are written, until SIGINT or SIGTERM
    /// (from the files: across rotations; through the manager: until it
    /// shuts down).
    #[arg(short, long)]
    follow: bool,
    #[command(flatten)]
    format: FormatArg,
}

pub fn logs(args: LogsArgs) -> Result<(), Failure> {
    let located = locate(&args.manager)?;
    match api::logs(&located, &args)? {
        api::Through::Manager => Ok(()),
        api::Through::Nobody => {
            if args.manager.url.is_some() {
                return Err(Failure::NoManager(located.missing));
            }
            match (&located.config, &args.manager.config) {
                (Some(config), _) => files::logs(config, &config.source, &args),
                _ => Err(Failure::NoManager(format!(
                    "{}; without its config (-c FILE) the log files cannot be found",
                    located.missing
                ))),
            }
        }
    }
}
