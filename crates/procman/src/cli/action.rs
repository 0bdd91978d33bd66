//! `procman start|stop|restart ID… | --all [--no-wait]`: one request per
//! process, sent together, each waiting until its process is done (running,
//! waiting for its dependencies, or stopped) unless `--no-wait`. Each
//! process's outcome is printed, in the order given; if any failed, the
//! command fails (exit 1) after saying why for each. A start is refused
//! when a process it depends on is down, unless `--with-deps` (which
//! `--all` implies) starts those too.

use std::sync::Arc;

use procman_api::client::{Action, ClientError};
use procman_api::{ApiError, Process};
use serde::Serialize;

use super::endpoint::{block_on, locate, Located, ManagerArgs};
use super::output::{warn, Format, FormatArg, Out};
use super::table::state_paint;
use crate::exit::Failure;

/// Requests in flight at once (each holds a connection).
const IN_FLIGHT: usize = 32;

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["ids", "all"])))]
pub struct ActionArgs {
    /// The processes, by ID.
    ids: Vec<String>,
    /// Every process it applies to: for start, every enabled managed process
    /// not running; for stop, every managed process running or on its way;
    /// for restart, every managed process enabled or running.
    #[arg(long, conflicts_with = "ids")]
    all: bool,
    /// Return once each request is accepted, without waiting until done.
    #[arg(long)]
    no_wait: bool,
    /// For start: start every process it depends on (directly or not)
    /// too, instead of refusing when one of them is down. Implied by
    /// `--all`.
    #[arg(long)]
    with_deps: bool,
    #[command(flatten)]
    manager: ManagerArgs,
    #[command(flatten)]
    format: FormatArg,
}

/// One process's outcome, as `-o json` prints it.
#[derive(Debug, Serialize)]
struct Outcome {
    id: String,
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    process: Option<Process>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ApiError>,
}

pub fn act(action: Action, args: ActionArgs) -> Result<(), Failure> {
    let located = locate(&args.manager)?;
    block_on(run(action, &args, &located))
}

async fn run(action: Action, args: &ActionArgs, located: &Located) -> Result<(), Failure> {
    let client = &located.client;
    let ids = match args.all {
        false => args.ids.clone(),
        true => {
            let list = client
                .processes()
                .await
                .map_err(|e| located.failure("list the processes", e))?;
            list.into_iter()
                .filter(|p| applies(action, p))
                .map(|p| p.id)
                .collect()
        }
    };
    let gate = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
    let pending: Vec<_> = ids
        .iter()
        .map(|id| {
            let (client, gate, id) = (client.clone(), gate.clone(), id.clone());
            let wait = !args.no_wait;
            // Everything starts with --all: what a process depends on too
            // (each waits for its own dependencies).
            let with_deps = args.with_deps || args.all;
            tokio::spawn(async move {
                let _permit = gate.acquire_owned().await;
                client.act_with_deps(&id, action, wait, with_deps).await
            })
        })
        .collect();
    let mut out = Out::new();
    let mut outcomes = Vec::with_capacity(ids.len());
    let mut nobody = 0;
    // Said after the successes, and not at all if nobody answered.
    let mut errors = Vec::new();
    for (id, task) in ids.iter().zip(pending) {
        let result = task.await.unwrap_or_else(|e| {
            Err(ClientError::Request(format!(
                "the request task failed: {e}"
            )))
        });
        let outcome = match result {
            Ok(process) => {
                if args.format.output == Format::Plain {
                    out.line(&done(action, &process, args.no_wait, out.color))?;
                    out.flush()?;
                }
                Outcome {
                    id: id.clone(),
                    ok: true,
                    process: Some(process),
                    error: None,
                }
            }
            Err(e) => {
                nobody += usize::from(e.is_no_manager());
                let error = api_error(&e);
                errors.push(match e.api() {
                    // Says already what cannot start, and why.
                    Some(api) if api.code == "dependencies_down" => api.message.clone(),
                    _ => format!("cannot {} {id}: {e}", action.as_str()),
                });
                Outcome {
                    id: id.clone(),
                    ok: false,
                    process: None,
                    error: Some(error),
                }
            }
        };
        outcomes.push(outcome);
    }
    if nobody > 0 && nobody == outcomes.len() {
        return Err(Failure::NoManager(located.missing.clone()));
    }
    for e in &errors {
        warn(e);
    }
    if outcomes.is_empty() && args.format.output == Format::Plain {
        warn(&format!("no process to {}", action.as_str()));
    }
    if args.format.output == Format::Json {
        #[derive(Serialize)]
        struct Results<'a> {
            results: &'a [Outcome],
        }
        out.json(&Results { results: &outcomes })?;
    }
    out.flush()?;
    let failed = outcomes.iter().filter(|o| !o.ok).count();
    match failed {
        0 => Ok(()),
        n => Err(Failure::Runtime(anyhow::anyhow!(
            "{n} of {} process{} failed to {}",
            outcomes.len(),
            if outcomes.len() == 1 { "" } else { "es" },
            action.as_str()
        ))),
    }
}

/// Whether `--all` includes `p` for `action`.
fn applies(action: Action, p: &Process) -> bool {
    let managed = p.kind != "unmanaged";
    let active = matches!(
        p.state.as_str(),
        "waiting" | "starting" | "running" | "backoff" | "stopping"
    );
    managed
        && match action {
            Action::Start => {
                p.enabled && !matches!(p.state.as_str(), "waiting" | "starting" | "running")
            }
            Action::Stop => active,
            Action::Restart => p.enabled || active,
        }
}

/// `web: running (pid 1234)`; without waiting, `web: stop requested; now
/// stopping (pid 1234)` (the state when the request was taken: a restart's
/// pid is the old run's); held back, `api: waiting for db (db is stopped)`.
fn done(action: Action, p: &Process, no_wait: bool, color: bool) -> String {
    let state = state_paint(&p.state).map_or(p.state.clone(), |c| c.apply(&p.state, color));
    let pid = match (&p.waiting_reason, p.pid) {
        (Some(reason), _) => reason
            .strip_prefix("waiting")
            .map_or_else(|| format!(" ({reason})"), str::to_string),
        (None, Some(n)) => format!(" (pid {n})"),
        (None, None) => String::new(),
    };
    match no_wait {
        true => format!("{}: {} requested; now {state}{pid}", p.id, action.as_str()),
        false => format!("{}: {state}{pid}", p.id),
    }
}

/// The error a result carries: the manager's, or one named for what went
/// wrong on the way.
fn api_error(e: &ClientError) -> ApiError {
    if let Some(api) = e.api() {
        return api.clone();
    }
    let code = match e {
        ClientError::NoManager { .. } => "no_manager",
        ClientError::Timeout { .. } => "timeout",
        _ => "client_error",
    };
    ApiError::new(code, e.to_string())
}
