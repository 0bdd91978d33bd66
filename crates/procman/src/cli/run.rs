//! `procman run -c FILE`: the manager in the foreground (also as PID 1).
//!
//! Signals (the table is in `signals.rs`): SIGINT, SIGTERM or SIGQUIT stop
//! every process gracefully and exit 0; a second one kills every process
//! at once (the shutdown still ends in order, exit 0); a third kills
//! whatever is left, synchronously, and exits 1 at once without cleaning
//! up. SIGHUP reloads the config (as does a change of the file with
//! `--watch-config`), SIGUSR1 reopens the log files,
//! SIGUSR2 logs every process's state; no other catchable signal ends the
//! manager. The control API (`server/`) serves from before the first
//! process starts until the shutdown begins; its shutdown request acts as
//! a first shutdown signal. A run also ends by itself, as on a first
//! shutdown signal, when a `shutdown_on_exit` process ends or (with
//! `--exit-on-end`) every process is final; it then exits 1 unless that
//! end was a success. With `--exit-on-end`, a shutdown asked for before
//! that (a signal, the API) exits 1 too: the work was cut short.

use std::time::{Duration, Instant, SystemTime};

use anyhow::Context as _;
use procman_core::config::Config;
use procman_core::manager::{Completion, Manager};

use super::ConfigArg;
use crate::exit::Failure;
use crate::server::{Server, Shutdown};
use crate::signals::{Disposition, Received, Signals};
use crate::{console, runtime, telemetry};

/// How long the runtime waits for its threads once the manager is done.
const RUNTIME_GRACE: Duration = Duration::from_secs(1);

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// Reload when the config file, or an env_file it names, changes.
    #[arg(long)]
    watch_config: bool,
    /// Exit once every process has reached a final state (exited,
    /// failed, stopped): 0 if all succeeded, 1 otherwise. For CI jobs and
    /// one-shot containers.
    #[arg(long)]
    exit_on_end: bool,
}

/// What began the shutdown.
enum Request {
    Signal(Received),
    /// `POST /api/v1/manager/shutdown` or the gRPC `Shutdown`.
    Api,
    /// The same with `keep_processes`: exit, leaving every process running.
    Detach,
    /// The work is over by itself: a `shutdown_on_exit` process ended, or
    /// (`--exit-on-end`) every process did.
    Completed(Completion),
}

/// How a run ended (errors aside).
enum Ending {
    /// Everything stopped and cleaned up; with why the run failed, when
    /// it ended by itself without success.
    Stopped(Option<String>),
    /// A third shutdown signal: everything killed (state files removed), the shutdown not finished.
    Forced(Received),
}

pub fn run(args: RunArgs) -> Result<(), Failure> {
    // Before anything else: a signal during start-up waits for its handler.
    let held = crate::signals::hold();
    // Before any thread exists: arenas are made per thread.
    procman_core::platform::limit_allocator_arenas();
    let mut config = super::load(&args.config.config)?;
    console::start()
        .with_context(|| {
            format!(
                "cannot create the thread that writes the manager's log ({})",
                runtime::nproc_limit()
            )
        })
        .map_err(Failure::Runtime)?;
    telemetry::init(config.manager.log_level, config.manager.log_format);
    // Said once, then let go: the config is kept for the whole run, and a
    // warning per process (a loop restart without a delay) adds up.
    // (`warnings` is dropped here, not at the end of the run.)
    let warnings = std::mem::take(&mut config.warnings);
    for line in procman_core::config::warning_lines(&warnings, &args.config.config) {
        tracing::warn!("{line}");
    }
    drop(warnings);
    if let Err(e) = held {
        tracing::warn!(error = %e, "cannot hold signals during start-up");
    }
    let threads = log_targets(&config) + crate::server::THREADS;
    let runtime = runtime::build(threads).map_err(Failure::Runtime)?;
    let ending = runtime.block_on(serve(config, args.watch_config, args.exit_on_end));
    match ending {
        Ok(Ending::Stopped(None)) => {
            runtime.shutdown_timeout(RUNTIME_GRACE);
            Ok(())
        }
        Ok(Ending::Stopped(Some(failure))) => {
            runtime.shutdown_timeout(RUNTIME_GRACE);
            Err(Failure::Runtime(anyhow::anyhow!(failure)))
        }
        Ok(Ending::Forced(got)) => {
            // Whatever still runs in the runtime is abandoned, not awaited.
            runtime.shutdown_background();
            Err(Failure::Runtime(anyhow::anyhow!(
                "exited at once on a third shutdown signal ({}), without finishing the shutdown",
                got.name()
            )))
        }
        Err(e) => {
            runtime.shutdown_timeout(RUNTIME_GRACE);
            Err(Failure::Runtime(e))
        }
    }
}

/// Threads the engine creates for `log_collection`: one per target (the
/// API server's are counted by the caller).
fn log_targets(config: &Config) -> usize {
    let c = &config.log_collection;
    if c.enabled && c.aggregation_enabled {
        c.targets.len()
    } else {
        0
    }
}

async fn serve(config: Config, watch_config: bool, exit_on_end: bool) -> anyhow::Result<Ending> {
    // Signal handlers first: a signal that arrives while processes start
    // must not kill the manager with its default action.
    let mut signals = Signals::install()?;

    let source = config.source.clone();
    let watch = match watch_config {
        true => Some(super::watch::start(&config).context("cannot watch the config file")?),
        false => None,
    };
    let manager = Manager::new(config)?;
    signals.halt_spawns_on_shutdown(&manager.spawn_halt())?;
    // Before any process starts: a port in use ends the run here, with
    // nothing started.
    let (server, mut requests) = Server::start(manager.control().clone()).await?;
    if let Some(watch) = watch {
        super::watch::spawn(watch, manager.control().clone());
    }
    // The YAML tree is gone: hand its memory back before the spawns, which
    // copy the page tables of whatever the manager still maps.
    procman_core::platform::release_free_memory();
    tracing::info!(config = %source.display(), state_dir = %manager.state_dir().display(),
        pid = std::process::id(), cgroups = manager.uses_cgroups(), "procman started");

    // A shutdown signal during start-up ends the start (the tickets of
    // processes not yet up are dropped) and stops what did start.
    let first = {
        let start = manager.start();
        tokio::pin!(start);
        let control = manager.control().clone();
        let completion = control.completion(exit_on_end);
        tokio::pin!(completion);
        let mut starting = true;
        loop {
            tokio::select! {
                () = &mut start, if starting => {
                    starting = false;
                    // Start-up's garbage (spawn buffers) is not needed again.
                    procman_core::platform::release_free_memory();
                }
                got = signals.next() => match got.disposition {
                    Disposition::Shutdown => break Request::Signal(got),
                    _ => act(&manager, got),
                },
                Some(how) = requests.recv() => break match how {
                    Shutdown::Stop => Request::Api,
                    Shutdown::KeepProcesses => Request::Detach,
                },
                done = &mut completion => break Request::Completed(done),
            }
        }
    };
    if matches!(first, Request::Detach) {
        return Ok(detach(manager, server, signals, requests).await);
    }
    match &first {
        Request::Signal(got) => tracing::info!(signal = %got.name(),
            "shutting down; a second signal kills every process at once, a third exits at once"),
        Request::Api => tracing::info!(
            "shutting down at the API's request; a shutdown signal kills every process at once, a second exits at once"),
        Request::Completed(done) => tracing::info!(
            "{done}: shutting down; a shutdown signal kills every process at once, a second exits at once"),
        Request::Detach => {}
    }
    // With --exit-on-end, work cut short is no success: a one-shot
    // container stopped (a pod evicted) before its jobs ended exits 1.
    let failure = match &first {
        Request::Completed(done) if !done.success() => Some(done.to_string()),
        Request::Signal(got) if exit_on_end => Some(format!(
            "stopped by {} before every process had ended (--exit-on-end)",
            got.name()
        )),
        Request::Api if exit_on_end => {
            Some("shut down through the API before every process had ended (--exit-on-end)".into())
        }
        _ => None,
    };
    server.begin_shutdown().await;

    let mut shutdowns = Shutdowns::after(&first);
    let forced = {
        let stop = manager.stop();
        tokio::pin!(stop);
        loop {
            tokio::select! {
                () = &mut stop => break None,
                got = signals.next() => match got.disposition {
                    Disposition::Shutdown => {
                        let Some(extra) = shutdowns.repeat(got) else {
                            continue;
                        };
                        if extra >= 2 {
                            break Some(got);
                        }
                        tracing::warn!(signal = %got.name(),
                            "second shutdown signal: killing every process at once");
                        manager.kill_all();
                    }
                    _ => act(&manager, got),
                },
                Some(_) = requests.recv() => ignore_request(),
            }
        }
    };
    if let Some(got) = forced {
        return Ok(exit_at_once(manager, got));
    }

    // Every process has stopped; what is left (ending the supervisors,
    // removing the cgroups, draining the log targets) is bounded by the
    // engine, but a third signal still ends it.
    let shutdown = manager.shutdown();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            got = signals.next() => match got.disposition {
                Disposition::Shutdown => {
                    let Some(extra) = shutdowns.repeat(got) else {
                        continue;
                    };
                    if extra >= 2 {
                        tracing::error!(signal = %got.name(),
                            "third shutdown signal: exiting at once");
                        return Ok(Ending::Forced(got));
                    }
                    tracing::warn!(signal = %got.name(),
                        "second shutdown signal: every process has already stopped");
                }
                _ => tracing::debug!(signal = %got.name(), "signal ignored while shutting down"),
            },
            Some(_) = requests.recv() => ignore_request(),
        }
    }
    server.finish().await;
    tracing::info!(lost_manager_log_lines = console::lost(), "procman stopped");
    Ok(Ending::Stopped(failure))
}

/// `shutdown --keep-processes`: the supervisors let go of their processes
/// (each writes what it read and its state file), the server stops, and
/// the manager exits 0, leaving every process running for the next
/// manager on the same state directory. A shutdown signal meanwhile is
/// logged and ignored (the detach is bounded); a third exits at once.
async fn detach(
    manager: Manager,
    server: Server,
    mut signals: Signals,
    mut requests: crate::server::ShutdownRequests,
) -> Ending {
    tracing::info!("detaching at the API's request: every process keeps running");
    server.begin_shutdown().await;
    let mut extra = 0;
    let detach = manager.detach();
    tokio::pin!(detach);
    loop {
        tokio::select! {
            () = &mut detach => break,
            got = signals.next() => match got.disposition {
                Disposition::Shutdown => {
                    extra += 1;
                    if extra >= 3 {
                        tracing::error!(signal = %got.name(), "exiting at once while detaching");
                        return Ending::Forced(got);
                    }
                    tracing::warn!(signal = %got.name(), "detaching already; the processes keep running");
                }
                _ => tracing::debug!(signal = %got.name(), "signal ignored while detaching"),
            },
            Some(_) = requests.recv() => ignore_request(),
        }
    }
    server.finish().await;
    tracing::info!(lost_manager_log_lines = console::lost(), "procman detached");
    Ending::Stopped(None)
}

/// Two deliveries of one signal closer than this are one request: `timeout
/// -s INT`, and other tools, signal the process and then its group.
const ECHO: Duration = Duration::from_millis(100);

/// The shutdown signals after the first, counted once each.
struct Shutdowns {
    extra: u32,
    last: (i32, Instant),
}

impl Shutdowns {
    fn after(first: &Request) -> Shutdowns {
        // After the API's request, no signal is an echo (0 is no signal).
        let number = match first {
            Request::Signal(got) => got.number,
            Request::Api | Request::Detach | Request::Completed(_) => 0,
        };
        Shutdowns {
            extra: 0,
            last: (number, Instant::now()),
        }
    }

    /// How many shutdown signals came after the first, with `got`; `None`
    /// when `got` is the echo of the last one (the same signal within
    /// [`ECHO`]), which does not count.
    fn repeat(&mut self, got: Received) -> Option<u32> {
        let (number, at) = self.last;
        if got.number == number && at.elapsed() < ECHO {
            tracing::debug!(signal = %got.name(), "the same signal again at once; counted once");
            return None;
        }
        self.last = (got.number, Instant::now());
        self.extra += 1;
        Some(self.extra)
    }
}

/// The third shutdown signal: SIGKILL to everything now (the manager's
/// `Drop` kills every process tree synchronously, by `cgroup.kill` or by
/// process group), and no more waiting.
fn exit_at_once(manager: Manager, got: Received) -> Ending {
    tracing::error!(signal = %got.name(),
        "third shutdown signal: killing every process and exiting at once");
    drop(manager);
    Ending::Forced(got)
}

/// A shutdown request through the API while shutting down: it is under
/// way already (unlike a second signal, it does not hurry anything).
fn ignore_request() {
    tracing::debug!("shutdown requested through the API: already shutting down");
}

/// A signal that is not a shutdown request.
fn act(manager: &Manager, got: Received) {
    match got.disposition {
        Disposition::Reload => {
            tracing::info!("SIGHUP: reloading the config");
            reload_in_background(manager.control().clone());
        }
        Disposition::ReopenLogs => {
            tracing::info!("SIGUSR1: reopening the log files");
            manager.reopen_logs();
        }
        Disposition::DumpStates => dump_states(manager),
        Disposition::Harmless => tracing::debug!(signal = %got.name(), "signal ignored"),
        Disposition::Shutdown | Disposition::Default => {}
    }
}

/// Reloads the config on a task of its own, so that signals (a shutdown)
/// are still heard while processes stop and start; reloads queue up one
/// after the other. The outcome is in the manager log either way.
fn reload_in_background(control: procman_core::manager::Control) {
    tokio::spawn(async move {
        // The plan, or a refusal with every error, is logged by the
        // reload itself.
        let _ = crate::server::reload::reload(&control, false).await;
    });
}

/// SIGUSR2: one info line per process, in config order.
fn dump_states(manager: &Manager) {
    let now = SystemTime::now();
    let states = manager.process_states();
    tracing::info!(
        processes = states.len(),
        lost_manager_log_lines = console::lost(),
        "SIGUSR2: the state of every process"
    );
    for s in states {
        let pid = s.pid().map_or_else(|| "-".to_string(), |p| p.to_string());
        let uptime = match s.started_at {
            Some(at) if s.phase().is_active() => format!(
                "{:.1}s",
                now.duration_since(at).unwrap_or_default().as_secs_f64()
            ),
            _ => "-".to_string(),
        };
        let last_exit = s
            .last_exit
            .map_or_else(|| "-".to_string(), |e| e.to_string());
        let last_error = s.last_error.as_deref().unwrap_or("-");
        tracing::info!(process = %s.id, state = %s.phase(), pid = %pid, uptime = %uptime, runs = s.runs,
            restarts = s.restarts, last_exit, last_error, "process state");
    }
}
