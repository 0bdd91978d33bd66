//! `procman shutdown [--keep-processes] [--no-wait]`: asks the manager to
//! stop every process and exit (or, with `--keep-processes`, to exit and
//! leave every process running for the next manager on the same state
//! directory), then waits until it has: on this machine until its process
//! is gone (a pidfd tells), for a remote one until its address no longer
//! answers. The wait is bounded by `--timeout` (default 5 minutes).

use std::time::Duration;

use procman_api::client::Client;
use procman_core::platform::Member;
use serde::Serialize;

use super::endpoint::{block_on, locate, ManagerArgs};
use super::output::{Format, FormatArg, Out};
use crate::exit::Failure;

/// How often to ask a remote manager whether it is gone.
const POLL: Duration = Duration::from_millis(100);

#[derive(Debug, clap::Args)]
pub struct ShutdownArgs {
    /// Return once the manager accepted, without waiting until it exits.
    #[arg(long)]
    no_wait: bool,
    /// Exit without stopping any process: the manager writes its state
    /// and exits 0; `procman run` on the same config (state directory)
    /// re-attaches to every process. For upgrading procman itself.
    #[arg(long)]
    keep_processes: bool,
    #[command(flatten)]
    manager: ManagerArgs,
    #[command(flatten)]
    format: FormatArg,
}

/// What `-o json` prints.
#[derive(Debug, Serialize)]
struct Report {
    /// The manager's answer.
    message: String,
    /// The manager's pid.
    pid: u32,
    /// Whether the manager was seen gone (false with `--no-wait`).
    stopped: bool,
}

pub fn shutdown(args: ShutdownArgs) -> Result<(), Failure> {
    let located = locate(&args.manager)?;
    let client = &located.client;
    let within = client.timeouts().action;
    block_on(async {
        let info = client
            .manager()
            .await
            .map_err(|e| located.failure("reach the manager", e))?;
        // A manager on this machine is watched through a pidfd, opened
        // before it is asked to go (its pid cannot be taken by another
        // process while the pidfd is held).
        let watch = client
            .socket()
            .and_then(|_| Member::open(info.pid, |pid, s| s.state != 'Z' && is_procman(pid)));
        let asked = if args.keep_processes {
            client.detach().await
        } else {
            client.shutdown().await
        };
        let accepted = asked.map_err(|e| located.failure("shut the manager down", e))?;
        let mut out = Out::new();
        let plain = args.format.output == Format::Plain;
        if plain {
            out.line(&format!(
                "shutting down the manager (pid {}): {}",
                info.pid, accepted.message
            ))?;
            out.flush()?;
        }
        let mut report = Report {
            message: accepted.message,
            pid: info.pid,
            stopped: false,
        };
        if !args.no_wait {
            let gone = async {
                match &watch {
                    // The kernel says when its process ends.
                    Some(m) => {
                        if m.exited().await.is_err() {
                            socket_silent(client).await;
                        }
                    }
                    // A remote manager (or one in another pid namespace):
                    // nothing tells us but its socket going silent.
                    None => socket_silent(client).await,
                }
            };
            if tokio::time::timeout(within, gone).await.is_err() {
                return Err(still_running(info.pid, within));
            }
            report.stopped = true;
            if plain {
                out.line(if args.keep_processes {
                    "the manager has exited; every process keeps running"
                } else {
                    "the manager has stopped"
                })?;
            }
        }
        if !plain {
            out.json(&report)?;
        }
        out.flush()
    })
}

/// Returns once nothing answers at the manager's address any more.
async fn socket_silent(client: &Client) {
    loop {
        match client.manager().await {
            Err(e) if e.is_no_manager() => return,
            // Still there, or answering badly while it stops.
            _ => tokio::time::sleep(POLL).await,
        }
    }
}

fn still_running(pid: u32, within: Duration) -> Failure {
    Failure::Runtime(anyhow::anyhow!(
        "the manager (pid {pid}) is still running after {}",
        humantime::format_duration(within)
    ))
}

/// Whether `pid` is a live process of the same program as this one (the
/// manager seen through its socket is a `procman` of this machine; a pid
/// reused by another program, or one of another pid namespace, is not it).
fn is_procman(pid: u32) -> bool {
    let stat = |p: &str| std::fs::read_to_string(format!("/proc/{p}/stat")).ok();
    let comm = |s: &str| -> Option<(String, String)> {
        let open = s.find('(')?;
        let close = s.rfind(')')?;
        let state = s.get(close + 1..)?.split_whitespace().next()?.to_string();
        Some((s.get(open + 1..close)?.to_string(), state))
    };
    let (Some(theirs), Some(ours)) = (stat(&pid.to_string()), stat("self")) else {
        return false;
    };
    match (comm(&theirs), comm(&ours)) {
        (Some((name, state)), Some((me, _))) => name == me && state != "Z" && state != "X",
        _ => false,
    }
}
