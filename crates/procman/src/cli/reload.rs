//! `procman reload`: asks the manager to reload its config. Not supported
//! yet: the manager answers so (501), which is printed, and the exit code
//! is 1.

use super::endpoint::{block_on, locate, ManagerArgs};
use super::output::{Format, FormatArg, Out};
use crate::exit::Failure;

#[derive(Debug, clap::Args)]
pub struct ReloadArgs {
    #[command(flatten)]
    manager: ManagerArgs,
    #[command(flatten)]
    format: FormatArg,
}

pub fn reload(args: ReloadArgs) -> Result<(), Failure> {
    let located = locate(&args.manager)?;
    block_on(async {
        let accepted = located
            .client
            .reload()
            .await
            .map_err(|e| located.failure("reload", e))?;
        let mut out = Out::new();
        match args.format.output {
            Format::Json => out.json(&accepted)?,
            Format::Plain => out.line(&accepted.message)?,
        }
        out.flush()
    })
}
