//! `procman events [-f] [-n N] [ID]`: the last transitions from the
//! manager's journal (every process's, or one's), oldest first; with `-f`,
//! then each new one as it happens, until SIGINT or SIGTERM, until the
//! manager shuts down, or until the reader of stdout goes away.

use procman_api::client::ClientError;
use procman_api::Event;

use super::endpoint::{block_on, locate, ManagerArgs};
use super::output::{self, Format, FormatArg, Out};
use super::table::state_paint;
use crate::exit::Failure;

#[derive(Debug, clap::Args)]
pub struct EventsArgs {
    /// Only this process's transitions.
    id: Option<String>,
    /// How many past transitions to print first.
    #[arg(short = 'n', long = "lines", value_name = "N", default_value_t = 20)]
    lines: usize,
    /// Then print each new transition as it happens.
    #[arg(short, long)]
    follow: bool,
    #[command(flatten)]
    manager: ManagerArgs,
    #[command(flatten)]
    format: FormatArg,
}

pub fn events(args: EventsArgs) -> Result<(), Failure> {
    let located = locate(&args.manager)?;
    let client = &located.client;
    let id = args.id.as_deref();
    let doing = match id {
        Some(id) => format!("read the events of `{id}`"),
        None => "read the events".to_string(),
    };
    let refused = |e| located.failure_for(&doing, e);
    let json = args.format.output == Format::Json;
    block_on(async {
        let mut out = Out::new();
        if !args.follow {
            let events = client.events(id, args.lines).await.map_err(refused)?;
            for e in &events {
                print(&mut out, e, json)?;
            }
            return out.flush();
        }
        let mut stream = client
            .follow_events(id, args.lines)
            .await
            .map_err(refused)?;
        let closed = output::closed();
        let interrupted = output::interrupted();
        tokio::pin!(closed, interrupted);
        loop {
            tokio::select! {
                item = stream.next() => match item {
                    Some(Ok(e)) => {
                        print(&mut out, &e, json)?;
                        out.flush()?;
                    }
                    Some(Err(ClientError::Lagged { missed })) => {
                        out.flush()?;
                        output::warn(&format!(
                            "{}: this output was read too slowly \
                             (`procman events` shows the journal)",
                            output::skipped(missed, "event", "events")
                        ));
                    }
                    Some(Err(e)) if output::stream_cut_by_exit(client, &e).await => {
                        output::warn("the manager ended the stream (it is shutting down)");
                        return out.flush();
                    }
                    Some(Err(e)) => return Err(located.failure("read the events", e)),
                    None => {
                        output::warn("the manager ended the stream (it is shutting down)");
                        return out.flush();
                    }
                },
                () = &mut closed => return Err(Failure::OutputClosed),
                () = &mut interrupted => return out.flush(),
            }
        }
    })
}

fn print(out: &mut Out, e: &Event, json: bool) -> Result<(), Failure> {
    match json {
        true => out.json(e),
        false => {
            let line = line(e, out.color);
            out.line(&line)
        }
    }
}

/// `2026-12-02T09:15:00.123Z web running -> stopping (stop requested) pid 42 run 1`.
pub fn line(e: &Event, color: bool) -> String {
    let to = state_paint(&e.to).map_or(e.to.clone(), |c| c.apply(&e.to, color));
    let pid = e.pid.map(|p| format!(" pid {p}")).unwrap_or_default();
    format!(
        "{} {} {} -> {to} ({}){pid} run {}",
        e.at, e.process, e.from, e.cause, e.run
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_is_one_line_with_its_cause_pid_and_run() {
        let e = Event {
            seq: 3,
            process: "web".into(),
            from: "running".into(),
            to: "stopping".into(),
            cause: "stop requested".into(),
            cause_kind: "stop_requested".into(),
            pid: Some(42),
            run: 1,
            at: "2026-12-02T09:15:00.123Z".into(),
        };
        assert_eq!(
            line(&e, false),
            "2026-12-02T09:15:00.123Z web running -> stopping (stop requested) pid 42 run 1"
        );
        assert!(line(&e, true).contains("\x1b[33mstopping\x1b[0m"));
    }
}
