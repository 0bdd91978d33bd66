//! `procman signal ID SIG [--tree]`: sends a signal, by name (`TERM`,
//! `SIGHUP`, `usr1`) or number, to a process's main pid or (`--tree`) to
//! every process of its tree.

use super::endpoint::{block_on, locate, ManagerArgs};
use super::output::{Format, FormatArg, Out};
use crate::exit::Failure;

#[derive(Debug, clap::Args)]
pub struct SignalArgs {
    /// The process.
    id: String,
    /// The signal: a name (`TERM`, `SIGHUP`, `usr1`) or a number (1 to 64).
    signal: String,
    /// To every process of its tree, not only the main one.
    #[arg(long)]
    tree: bool,
    #[command(flatten)]
    manager: ManagerArgs,
    #[command(flatten)]
    format: FormatArg,
}

pub fn signal(args: SignalArgs) -> Result<(), Failure> {
    let located = locate(&args.manager)?;
    let (id, sig) = (&args.id, &args.signal);
    block_on(async {
        let process = match located.client.signal(id, sig, args.tree).await {
            Ok(p) => p,
            // A signal that is not one is a usage error, like an unknown ID.
            Err(e) if e.api().is_some_and(|a| a.code == "bad_request") => {
                let message = e.api().map(|a| a.message.clone()).unwrap_or_default();
                return Err(Failure::Config(format!("procman: {message}")));
            }
            Err(e) => {
                return Err(located.failure_for(&format!("send {sig} to `{id}`"), e));
            }
        };
        let mut out = Out::new();
        match args.format.output {
            Format::Json => out.json(&process)?,
            Format::Plain => {
                let to = match (args.tree, process.pid) {
                    (true, _) => format!("every process of {id}'s tree"),
                    (false, Some(pid)) => format!("{id} (pid {pid})"),
                    (false, None) => id.clone(),
                };
                out.line(&format!("sent {sig} to {to}"))?;
            }
        }
        out.flush()
    })
}
