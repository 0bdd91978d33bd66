//! `procman tui`: a live view of a running manager, as `procman status`
//! would be if it never ended, with the log of the selected process under
//! it and keys for the client commands.
//!
//! - [`board`]: the table's rows, filters and selection; [`pane`]: the
//!   log lines and their search; [`app`]: what keys and news do to both.
//! - [`view`]: drawing (ratatui); [`feed`]: the tasks that talk to the
//!   manager; [`session`]: the loop that joins them.
//!
//! States come from the manager's event stream, as they happen; CPU,
//! memory and health have no events, so the rows in view are read again
//! (with their usage) every `--interval`, when the view scrolls, and
//! after each burst of events.
//!
//! The terminal is given back as it was (main screen, cooked mode, cursor
//! shown) on every way out: `q`, Ctrl-C, SIGINT/SIGTERM/SIGHUP/SIGQUIT, an
//! error, and a panic (whose message then prints on the restored screen).
//! A signal ends the view within [`deadline`]'s grace even when the
//! terminal stopped reading.

mod app;
mod board;
mod deadline;
mod feed;
mod pane;
mod screen;
mod session;
mod view;

use std::io::{self, IsTerminal as _};
use std::path::PathBuf;
use std::time::Duration;

use procman_api::client::{Client, Timeouts};

use crate::cli::endpoint::{block_on, locate, ManagerArgs};
use crate::cli::output::color_wanted;
use crate::exit::Failure;

/// How long a request may take (`--timeout` sets it).
const REQUEST: Duration = Duration::from_secs(5);

#[derive(Debug, clap::Args)]
pub struct TuiArgs {
    #[command(flatten)]
    manager: ManagerArgs,
    /// How often CPU, memory and health are read again (states need no
    /// reading: they come as they change); `0` only after events.
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = interval)]
    interval: Duration,
    /// Writes, per event shown, its number, the microseconds from its
    /// arrival to the end of the draw that showed it, and that end on
    /// CLOCK_MONOTONIC (µs): `benches/tui.py` reads it.
    #[arg(long, value_name = "FILE", hide = true)]
    trace: Option<PathBuf>,
}

pub fn tui(args: TuiArgs) -> Result<(), Failure> {
    if args.manager.timeout.is_some_and(|t| t.is_zero()) {
        return Err(Failure::Config(
            "procman tui: --timeout 0 would fail every request; give a duration such as 5s"
                .to_string(),
        ));
    }
    let located = locate(&args.manager)?;
    // A view must say soon that a manager does not answer (a frozen one):
    // 5 s for a request unless `--timeout` says otherwise.
    let request = args.manager.timeout.unwrap_or(REQUEST);
    let client = with_request(located.client.clone(), request);
    let relocate: feed::Relocate = {
        let manager = args.manager.clone();
        Box::new(move || Some(with_request(locate(&manager).ok()?.client, request)))
    };
    block_on(async {
        // Before the screen is taken: "no manager" is said on a normal
        // terminal, with exit code 3.
        let first = client
            .processes()
            .await
            .map_err(|e| located.failure("list the processes", e))?;
        if !io::stdout().is_terminal() {
            return Err(Failure::Config(
                "procman tui: stdout is not a terminal (for a pipe or a file, use \
                 `procman status` or `procman events -f`)"
                    .to_string(),
            ));
        }
        let trace = match &args.trace {
            Some(path) => Some(io::BufWriter::new(
                std::fs::File::create(path).map_err(|e| runtime(e, "create the trace file"))?,
            )),
            None => None,
        };
        let color = color_wanted(true, std::env::var_os("NO_COLOR"), std::env::var_os("TERM"));
        let app = app::App::new(client.endpoint(), color);
        let interval = (!args.interval.is_zero()).then_some(args.interval);
        deadline::arm().map_err(|e| runtime(e, "watch the signals that end the view"))?;
        let mut screen = screen::Screen::take().map_err(|e| match e.raw_os_error() {
            Some(libc::ENXIO) => Failure::Runtime(anyhow::anyhow!(
                "cannot set up the terminal: there is none to read keys from \
                 (stdin is not a terminal and the process has no controlling terminal)"
            )),
            _ => runtime(e, "set up the terminal"),
        })?;
        let end = session::run(&mut screen, client, app, first, interval, relocate, trace).await;
        screen.give_back();
        match end {
            session::End::Quit => Ok(()),
            session::End::Terminal(e) => Err(runtime(e, "use the terminal")),
        }
    })
}

/// `client` with `request` as its deadline for a request.
fn with_request(client: Client, request: Duration) -> Client {
    let t = Timeouts {
        request,
        ..client.timeouts()
    };
    client.with_timeouts(t)
}

/// The shortest `--interval` but 0: a faster one costs the manager and the
/// view CPU, and shows nothing more.
const SHORTEST: Duration = Duration::from_millis(100);

/// `--interval`: `0`, or a duration of at least [`SHORTEST`].
fn interval(text: &str) -> Result<Duration, String> {
    let d = match text.trim() {
        "0" => Duration::ZERO,
        t => humantime::parse_duration(t).map_err(|_| {
            "expected a duration such as 2s, 500ms or 1m (or 0: only after events)".to_string()
        })?,
    };
    match d.is_zero() || d >= SHORTEST {
        true => Ok(d),
        false => Err("at least 100ms (or 0: only after events)".to_string()),
    }
}

fn runtime(e: io::Error, doing: &str) -> Failure {
    Failure::Runtime(anyhow::Error::new(e).context(format!("cannot {doing}")))
}

#[cfg(test)]
mod tests {
    mod keys;
    mod screens;

    #[test]
    fn the_interval_is_0_or_at_least_100ms_and_a_bad_one_says_what_is_wanted() {
        use std::time::Duration;
        assert_eq!(super::interval("0"), Ok(Duration::ZERO));
        assert_eq!(super::interval("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(super::interval("100ms"), Ok(Duration::from_millis(100)));
        assert!(super::interval("1ms").is_err_and(|e| e.contains("at least 100ms")));
        assert!(super::interval("foo").is_err_and(|e| e.contains("such as 2s")));
        assert!(super::interval("0.1").is_err_and(|e| e.contains("such as 2s")));
    }
}
