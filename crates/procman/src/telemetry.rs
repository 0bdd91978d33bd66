//! The manager's own log, through `tracing`: plain or JSON lines on
//! stderr, filtered by `log_level` (or `PROCMAN_LOG`, which takes the
//! `tracing` filter syntax and overrides it).

use std::io::IsTerminal;

use procman_core::config::{LogFormat, LogLevel};
use tracing_subscriber::EnvFilter;

pub fn init(level: LogLevel, format: LogFormat) {
    let filter = std::env::var("PROCMAN_LOG")
        .ok()
        .and_then(|f| EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| EnvFilter::new(level.as_str()));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false);
    let result = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Plain => builder.try_init(),
    };
    // A subscriber already set (only possible in tests) is fine.
    let _ = result;
}
