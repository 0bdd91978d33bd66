//! The manager's own log, through `tracing`: plain or JSON lines on
//! stderr, filtered by `log_level` (or `PROCMAN_LOG`, which takes the
//! `tracing` filter syntax and overrides it).
//!
//! Events go to [`console::Stderr`], which never fails and never blocks
//! (see `console.rs`), and tracing-subscriber's own error reports are off:
//! they would go to stderr with `eprintln!`, which panics when stderr is a
//! closed pipe, inside whichever task logged.
//!
//! Panics are logged here too: [`install_panic_hook`] turns a panic in any
//! thread or task into an error event with its message and location.

use std::any::Any;
use std::cell::Cell;
use std::io::IsTerminal;
use std::panic::{self, AssertUnwindSafe, PanicHookInfo};

use procman_core::config::{LogFormat, LogLevel};
use tracing_subscriber::EnvFilter;

use crate::console;

pub fn init(level: LogLevel, format: LogFormat) {
    let custom = std::env::var("PROCMAN_LOG").ok();
    let mut invalid = None;
    let filter = match custom.as_deref().map(EnvFilter::try_new) {
        Some(Ok(f)) => f,
        Some(Err(e)) => {
            invalid = Some(e);
            EnvFilter::new(level.as_str())
        }
        None => EnvFilter::new(level.as_str()),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(console::Stderr)
        .log_internal_errors(false)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false);
    let result = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Plain => builder.try_init(),
    };
    // A subscriber already set (only possible in tests) is fine.
    let _ = result;
    if let (Some(text), Some(e)) = (custom, invalid) {
        tracing::warn!(PROCMAN_LOG = %text, error = %e,
            "PROCMAN_LOG is not a valid filter; using log_level");
    }
}

thread_local! {
    /// Set while [`catch_quietly`] runs on this thread.
    static QUIET: Cell<bool> = const { Cell::new(false) };
}

/// Replaces the default panic hook (which writes to stderr) with one that
/// logs the panic at error level: a panicked supervisor task shows up in
/// the manager's log like any other error, and nothing is written to a
/// stderr that may be closed. Before `tracing` is set up (a failure while
/// parsing the command line), the default hook still prints the panic; it
/// ignores write errors, so it never panics either. Installed once; later
/// calls wait for the first and do nothing (replacing the hook while
/// another thread panics would hand that panic to the default hook).
pub fn install_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(install);
}

fn install() {
    let default = panic::take_hook();
    panic::set_hook(Box::new(move |info| {
        if QUIET.with(Cell::get) {
            return;
        }
        // No subscriber (before `init`, or a panic inside the subscriber
        // itself, where tracing hands out none): the default hook prints.
        let subscribed =
            tracing::dispatcher::get_default(|d| !d.is::<tracing::subscriber::NoSubscriber>());
        if subscribed {
            log_panic(info);
        } else {
            default(info);
        }
    }));
}

fn log_panic(info: &PanicHookInfo<'_>) {
    let message = payload_text(info.payload());
    let location = info
        .location()
        .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()))
        .unwrap_or_default();
    let thread = std::thread::current();
    let thread = thread.name().unwrap_or("unnamed");
    tracing::error!(thread, location, "panic: {message}");
}

/// Runs `f`, turning a panic into `Err(message)` without logging it: for
/// library calls whose only way to report a failure is a panic (tokio
/// panics when the OS refuses a thread), which the caller reports as an
/// ordinary error instead.
pub fn catch_quietly<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    let was = QUIET.with(|q| q.replace(true));
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    QUIET.with(|q| q.set(was));
    result.map_err(|payload| payload_text(payload.as_ref()).to_string())
}

/// A panic's message (`panic!` makes it a `&str` or a `String`).
fn payload_text(payload: &(dyn Any + Send)) -> &str {
    payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or("(a panic without a message)")
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::{Arc, Mutex};

    use super::*;

    /// A `tracing` writer into a shared buffer.
    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Capture {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// Runs `f` with a subscriber on this thread; returns what it logged.
    fn logged(f: impl FnOnce()) -> String {
        let capture = Capture::default();
        let writer = capture.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, f);
        let bytes = capture.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn a_panic_is_logged_at_error_level_with_its_message_and_location() {
        install_panic_hook();
        let mut line = 0;
        let out = logged(|| {
            line = line!() + 1;
            let caught = panic::catch_unwind(|| panic!("boom {}", 42));
            assert!(caught.is_err());
        });
        assert!(out.contains("ERROR"), "{out}");
        assert!(out.contains("panic: boom 42"), "{out}");
        assert!(out.contains(&format!("{}:{line}:", file!())), "{out}");
    }

    #[test]
    fn catch_quietly_returns_the_message_and_logs_nothing() {
        install_panic_hook();
        let mut result = Ok(());
        let out = logged(|| result = catch_quietly(|| panic!("no threads")));
        assert_eq!(result, Err("no threads".to_string()));
        assert!(out.is_empty(), "{out}");
        assert_eq!(catch_quietly(|| 7), Ok(7));
    }
}
