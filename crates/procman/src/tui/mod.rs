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
mod session;
mod view;

use std::io::{self, IsTerminal as _, Stdout};
use std::path::PathBuf;
use std::time::Duration;

use crossterm::cursor::Show;
use crossterm::execute;
use crossterm::terminal::{
    disable_raw_mode, enable_raw_mode, Clear, ClearType, EnterAlternateScreen, LeaveAlternateScreen,
};
use ratatui::backend::CrosstermBackend;
use ratatui::Terminal;

use crate::cli::endpoint::{block_on, locate, ManagerArgs};
use crate::cli::output::color_wanted;
use crate::exit::Failure;

#[derive(Debug, clap::Args)]
pub struct TuiArgs {
    #[command(flatten)]
    manager: ManagerArgs,
    /// How often CPU, memory and health are read again (states need no
    /// reading: they come as they change); `0` only after events.
    #[arg(long, value_name = "DURATION", default_value = "2s",
          value_parser = humantime::parse_duration)]
    interval: Duration,
    /// Writes, per event shown, its number, the microseconds from its
    /// arrival to the end of the draw that showed it, and that end on
    /// CLOCK_MONOTONIC (µs): `benches/tui.py` reads it.
    #[arg(long, value_name = "FILE", hide = true)]
    trace: Option<PathBuf>,
}

pub fn tui(args: TuiArgs) -> Result<(), Failure> {
    let located = locate(&args.manager)?;
    let client = located.client.clone();
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
        let mut screen = Screen::take().map_err(|e| runtime(e, "set up the terminal"))?;
        let end = session::run(&mut screen.terminal, client, app, first, interval, trace).await;
        screen.give_back();
        match end {
            session::End::Quit => Ok(()),
            session::End::Terminal(e) => Err(runtime(e, "use the terminal")),
        }
    })
}

fn runtime(e: io::Error, doing: &str) -> Failure {
    Failure::Runtime(anyhow::Error::new(e).context(format!("cannot {doing}")))
}

/// The terminal in raw mode on its alternate screen, given back when
/// dropped, and by the panic hook.
struct Screen {
    terminal: Terminal<CrosstermBackend<Stdout>>,
}

impl Screen {
    fn take() -> io::Result<Screen> {
        hook_panics();
        enable_raw_mode()?;
        let mut screen = Screen {
            terminal: Terminal::new(CrosstermBackend::new(io::stdout()))?,
        };
        // Cleared by hand: ratatui's `clear` asks the terminal where its
        // cursor is, and a terminal that does not answer (a pty nobody
        // reads) would fail the start after 2 s.
        execute!(io::stdout(), EnterAlternateScreen, Clear(ClearType::All))?;
        screen.terminal.hide_cursor()?;
        Ok(screen)
    }

    fn give_back(&mut self) {
        restore();
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        restore();
    }
}

/// Cooked mode, the main screen, the cursor; safe to do twice.
fn restore() {
    let _ = disable_raw_mode();
    let _ = execute!(io::stdout(), LeaveAlternateScreen, Show);
}

/// A panic anywhere (the loop, a task) gives the terminal back, prints
/// through the hook before it, and ends the view with Rust's code for a
/// panic (a task's panic would otherwise leave the view drawing over a
/// restored terminal).
fn hook_panics() {
    let before = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore();
        before(info);
        std::process::exit(101);
    }));
}

#[cfg(test)]
mod tests {
    mod keys;
    mod screens;
}
