//! `procman reload [--dry-run]`: asks the manager to load its config file
//! again and apply it, and prints the plan: what was added, removed,
//! changed (restarted), changed in place, left unchanged, and which
//! manager settings wait for a restart of the manager. An invalid file
//! changes nothing: its errors are printed and the exit code is 2.

use procman_api::ReloadPlan;

use super::endpoint::{block_on, locate, ManagerArgs};
use super::output::{Format, FormatArg, Out};
use crate::exit::Failure;
use crate::server::reload::summary;

#[derive(Debug, clap::Args)]
pub struct ReloadArgs {
    #[command(flatten)]
    manager: ManagerArgs,
    /// Only print what the reload would do; change nothing.
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    format: FormatArg,
}

pub fn reload(args: ReloadArgs) -> Result<(), Failure> {
    let json = matches!(args.format.output, Format::Json);
    match run(args) {
        // An invalid file: with `-o json`, an error object on stdout too
        // (the errors, with their locations, also go to stderr, exit 2).
        Err(Failure::Config(message)) if json => {
            let error = procman_api::ApiError {
                code: "invalid_config".to_string(),
                message: message
                    .trim_start_matches("procman: ")
                    .trim_end()
                    .to_string(),
                dependencies: Default::default(),
            };
            let mut out = Out::new();
            out.json(&serde_json::json!({ "error": error }))?;
            out.flush()?;
            Err(Failure::Config(message))
        }
        other => other,
    }
}

fn run(args: ReloadArgs) -> Result<(), Failure> {
    let located = locate(&args.manager)?;
    block_on(async {
        let plan = match located.client.reload(args.dry_run).await {
            Ok(plan) => plan,
            Err(e) => {
                return Err(match e.api() {
                    Some(api) if api.code == "invalid_config" => {
                        Failure::Config(format!("procman: {}", api.message))
                    }
                    _ => located.failure("reload", e),
                })
            }
        };
        let mut out = Out::new();
        match args.format.output {
            Format::Json => out.json(&plan)?,
            Format::Plain => {
                for line in lines(&plan) {
                    out.line(&line)?;
                }
            }
        }
        out.flush()
    })
}

/// The plan for a reader: the summary, then one line per process that is
/// not unchanged and per manager setting.
fn lines(plan: &ReloadPlan) -> Vec<String> {
    let mut out = vec![summary(plan)];
    for id in &plan.added {
        out.push(format!("  added      {id}"));
    }
    for id in &plan.removed {
        out.push(format!("  removed    {id}"));
    }
    for c in &plan.changed {
        out.push(format!("  restart    {}: {}", c.id, c.keys.join(", ")));
    }
    for c in &plan.changed_in_place {
        out.push(format!("  in place   {}: {}", c.id, c.keys.join(", ")));
    }
    for c in &plan.manager {
        let when = if c.applied {
            "applied"
        } else {
            "takes effect when the manager restarts"
        };
        out.push(format!("  manager    {}: {when}", c.key));
    }
    out
}
