//! Where the client commands print: stdout, as a table or text for people
//! or as JSON (`-o json`), with colour only on a terminal.
//!
//! A closed stdout (`procman status | head -1`) is not an error: the first
//! write that fails with EPIPE ends the command with [`Failure::OutputClosed`]
//! (exit 0, nothing said). A command that waits for something to print
//! (`events -f`) would only notice at its next write, so it also watches
//! stdout with [`closed`], which returns once the reader has gone.

use std::ffi::OsString;
use std::io::{self, BufWriter, IsTerminal, Stdout, Write};

use crate::console;
use crate::exit::Failure;

/// How a client command prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// For people: a table or lines of text.
    #[default]
    Plain,
    /// Stable JSON (see docs/cli.md for each command's shape).
    Json,
}

/// `-o plain|json`, for every client command.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct FormatArg {
    /// Output format.
    #[arg(short, long = "output", value_enum, default_value_t = Format::Plain)]
    pub output: Format,
}

/// Whether to colour: stdout is a terminal and `NO_COLOR` is unset or
/// empty (<https://no-color.org>), and `TERM` is not `dumb`.
pub fn color_wanted(is_tty: bool, no_color: Option<OsString>, term: Option<OsString>) -> bool {
    is_tty && no_color.is_none_or(|v| v.is_empty()) && term.is_none_or(|t| t != "dumb")
}

/// Buffered stdout that turns a closed pipe into [`Failure::OutputClosed`].
pub struct Out {
    inner: BufWriter<Stdout>,
    /// Colour the output (a terminal, and no `NO_COLOR`).
    pub color: bool,
}

impl Out {
    pub fn new() -> Out {
        let stdout = io::stdout();
        let color = color_wanted(
            stdout.is_terminal(),
            std::env::var_os("NO_COLOR"),
            std::env::var_os("TERM"),
        );
        Out {
            inner: BufWriter::with_capacity(64 * 1024, stdout),
            color,
        }
    }

    /// Writes `text` as it is (no newline added).
    pub fn text(&mut self, text: &str) -> Result<(), Failure> {
        self.bytes(text.as_bytes())
    }

    /// Writes `line` and a newline.
    pub fn line(&mut self, line: &str) -> Result<(), Failure> {
        self.bytes(line.as_bytes())?;
        self.bytes(b"\n")
    }

    pub fn bytes(&mut self, bytes: &[u8]) -> Result<(), Failure> {
        self.inner.write_all(bytes).map_err(failed)
    }

    /// `value` as one line of JSON.
    pub fn json<T: serde::Serialize>(&mut self, value: &T) -> Result<(), Failure> {
        serde_json::to_writer(&mut self.inner, value).map_err(|e| match e.io_error_kind() {
            Some(kind) => failed(kind.into()),
            None => Failure::Runtime(anyhow::Error::new(e).context("cannot write JSON")),
        })?;
        self.bytes(b"\n")
    }

    /// Writes out what is buffered (before waiting, and at the end).
    pub fn flush(&mut self) -> Result<(), Failure> {
        self.inner.flush().map_err(failed)
    }
}

/// An error writing stdout: a reader that went away ends the command
/// quietly; anything else is a failure.
pub fn failed(e: io::Error) -> Failure {
    match e.kind() {
        io::ErrorKind::BrokenPipe => Failure::OutputClosed,
        _ => Failure::Runtime(anyhow::Error::new(e).context("cannot write to stdout")),
    }
}

/// Says `procman: <message>` on stderr (through [`console`], which
/// never fails nor blocks on a closed or stuck stderr).
pub fn warn(message: &str) {
    console::write(format!("procman: {message}\n").as_bytes());
}

/// Returns once stdout reports an error or a hang-up (the reader of the
/// pipe has gone, the terminal closed); never, if it does neither (a
/// file). A thread of its own waits in `poll(2)`, which reports both
/// without asking for any event.
pub async fn closed() {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let spawned = std::thread::Builder::new()
        .name("stdout-watch".into())
        .spawn(move || {
            let fd = rustix::stdio::stdout();
            loop {
                let mut fds = [rustix::event::PollFd::new(
                    &fd,
                    rustix::event::PollFlags::empty(),
                )];
                match rustix::event::poll(&mut fds, None) {
                    Ok(_) if !fds[0].revents().is_empty() => break,
                    Ok(_) | Err(rustix::io::Errno::INTR) => {}
                    // Nothing to watch: never report.
                    Err(_) => return,
                }
            }
            let _ = tx.send(());
        });
    match spawned {
        Ok(_) => {
            // A sender dropped without sending means "never".
            if rx.await.is_err() {
                std::future::pending::<()>().await;
            }
        }
        Err(_) => std::future::pending::<()>().await,
    }
}

/// Returns at the first SIGINT or SIGTERM (a follower ends with 0 then).
pub async fn interrupted() {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(mut int), Ok(mut term)) => {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
        }
        // Without handlers the default action ends the process anyway.
        _ => std::future::pending::<()>().await,
    }
}

/// "1 event was skipped", "3 events were skipped".
pub fn skipped(n: u64, one: &str, many: &str) -> String {
    match n {
        1 => format!("1 {one} was skipped"),
        n => format!("{n} {many} were skipped"),
    }
}

/// Whether a followed stream that failed mid-way was cut by the manager's
/// exit (a reader that drained slowly, as the manager shut down, finds the
/// connection gone mid-message): true when the manager no longer answers.
pub async fn stream_cut_by_exit(
    client: &procman_api::client::Client,
    e: &procman_api::client::ClientError,
) -> bool {
    matches!(e, procman_api::client::ClientError::Http { .. }) && client.manager().await.is_err()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        let os = |s: &str| Some(OsString::from(s));
        assert!(color_wanted(true, None, os("xterm-256color")));
        assert!(color_wanted(true, os(""), None));
        assert!(!color_wanted(false, None, os("xterm")));
        assert!(!color_wanted(true, os("1"), os("xterm")));
        assert!(!color_wanted(true, None, os("dumb")));
    }
}
