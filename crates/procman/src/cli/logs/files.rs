//! `procman logs` from the log files the config points to
//! (`procman_core::logs::reader`), with no manager needed; with `-f`, waits
//! for them to grow (`procman_core::logs::follow`) until SIGINT or SIGTERM,
//! or until its output is closed (`procman logs -f | head` ends quietly,
//! with 0).

use std::io::{self, BufWriter, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use procman_core::config::{Config, ProcessLogFormat};
use procman_core::logs::follow::{follow, Cancel};
use procman_core::logs::reader::{
    merged_tail, write_merged, Cursor, LogSet, ReadError, Source, Style,
};
use tokio::signal::unix::{signal, SignalKind};

use super::LogsArgs;
use crate::cli::output::Format;
use crate::exit::Failure;

/// Prints the logs from the files of `config` (read from `config_file`).
pub fn logs(config: &Config, config_file: &Path, args: &LogsArgs) -> Result<(), Failure> {
    let single = match &args.id {
        Some(id) => Some(log_of(config, config_file, id)?),
        None => None,
    };
    let cancel = match args.follow {
        true => Some(on_signals().map_err(Failure::Runtime)?),
        false => None,
    };
    let stdout = io::stdout();
    let mut out = BufWriter::with_capacity(64 * 1024, stdout.lock());
    let printed = match single {
        Some(set) => one(&set, args, cancel.as_ref(), &mut out),
        None => all(config, args, cancel.as_ref(), &mut out),
    };
    match printed.and_then(|()| out.flush().map_err(ReadError::Output)) {
        Err(e) if e.is_broken_pipe() => Ok(()),
        Err(e) => Err(Failure::Runtime(
            anyhow::Error::new(e).context("cannot print the logs"),
        )),
        Ok(()) => Ok(()),
    }
}

/// The log of process `id`: an unknown id is a usage error (exit 2), a
/// process without a log file a failure (exit 1).
fn log_of(config: &Config, config_file: &Path, id: &str) -> Result<LogSet, Failure> {
    let Some(process) = config.process(id) else {
        let known: Vec<&str> = config.processes.iter().map(|p| p.id.as_str()).collect();
        return Err(Failure::Config(format!(
            "procman: no process `{id}` in {} (its processes: {})",
            config_file.display(),
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            },
        )));
    };
    LogSet::of(config, process)
        .map_err(|e| Failure::Runtime(e.into()))?
        .ok_or_else(|| {
            Failure::Runtime(anyhow::anyhow!(
                "process `{id}` has no log file (`logging.file: false`)"
            ))
        })
}

/// One process: its records as stored, byte for byte (or as JSON).
fn one(
    set: &LogSet,
    args: &LogsArgs,
    cancel: Option<&Cancel>,
    out: &mut dyn Write,
) -> Result<(), ReadError> {
    let paths = [set.path.clone()];
    if args.format.output == Format::Json {
        let mut sources = [Source::tail(set, args.lines)?];
        write_merged(&mut sources, Style::Json, cancel.is_none(), out)?;
        return keep_following(&paths, cancel, || {
            write_merged(&mut sources, Style::Json, false, out)?;
            out.flush().map_err(ReadError::Output)
        });
    }
    let mut cursor = Cursor::tail(set, args.lines)?;
    cursor.copy_to(out)?;
    keep_following(&paths, cancel, || {
        cursor.copy_to(out)?;
        out.flush().map_err(ReadError::Output)
    })
}

/// Every process with a log file, merged by time; raw logs, which have no
/// time to merge by, after the others in a block each.
fn all(
    config: &Config,
    args: &LogsArgs,
    cancel: Option<&Cancel>,
    out: &mut dyn Write,
) -> Result<(), ReadError> {
    let mut sets: Vec<LogSet> = Vec::new();
    for p in &config.processes {
        sets.extend(LogSet::of(config, p)?);
    }
    let (raw, timed): (Vec<LogSet>, Vec<LogSet>) = sets
        .iter()
        .cloned()
        .partition(|s| s.format == ProcessLogFormat::Raw);
    if !raw.is_empty() {
        let ids: Vec<&str> = raw.iter().map(|s| s.id.as_str()).collect();
        eprintln!(
            "procman: raw logs have no timestamps to merge by; printed after the others: {}",
            ids.join(", ")
        );
    }
    let style = match args.format.output {
        Format::Plain => Style::Prefixed,
        Format::Json => Style::Json,
    };
    let at_end = cancel.is_none();
    let mut sources = merged_tail(&timed, args.lines)?;
    write_merged(&mut sources, style, at_end, out)?;
    for set in &raw {
        let mut source = Source::tail(set, args.lines)?;
        write_merged(std::slice::from_mut(&mut source), style, at_end, out)?;
        sources.push(source);
    }
    let paths: Vec<PathBuf> = sets.iter().map(|s| s.path.clone()).collect();
    keep_following(&paths, cancel, || {
        write_merged(&mut sources, style, false, out)?;
        out.flush().map_err(ReadError::Output)
    })
}

/// With `-f` (a cancel token), runs `pump` each time the logs change,
/// until a signal or until the reader of our stdout is gone.
fn keep_following(
    paths: &[PathBuf],
    cancel: Option<&Cancel>,
    pump: impl FnMut() -> Result<(), ReadError>,
) -> Result<(), ReadError> {
    let Some(cancel) = cancel else {
        return Ok(());
    };
    let stdout = io::stdout();
    follow(paths, cancel, Some(stdout.as_fd()), pump).map(drop)
}

/// A token that the first SIGINT or SIGTERM cancels. The handlers are in
/// place when this returns; a thread of its own waits for the signals.
fn on_signals() -> anyhow::Result<Cancel> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .context("cannot start the async runtime")?;
    let (mut int, mut term) = {
        let _entered = runtime.enter();
        (
            signal(SignalKind::interrupt()).context("cannot handle SIGINT")?,
            signal(SignalKind::terminate()).context("cannot handle SIGTERM")?,
        )
    };
    let cancel = Cancel::new().context("cannot create a pipe")?;
    let token = cancel.clone();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            runtime.block_on(async {
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                }
            });
            token.cancel();
        })
        .context("cannot start the signal thread")?;
    Ok(cancel)
}
