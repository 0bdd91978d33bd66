//! `procman run -c FILE`: the manager in the foreground (also as PID 1).
//!
//! SIGINT or SIGTERM stops every process gracefully and exits 0; a second
//! one kills them all at once. SIGHUP is reserved for reload (a later
//! release) and is logged and ignored rather than ending the manager.

use anyhow::Context as _;
use procman_core::manager::Manager;
use tokio::signal::unix::{signal, SignalKind};

use super::ConfigArg;
use crate::exit::Failure;
use crate::telemetry;

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    config: ConfigArg,
}

pub fn run(args: RunArgs) -> Result<(), Failure> {
    let config = super::load(&args.config.config)?;
    telemetry::init(config.manager.log_level, config.manager.log_format);
    for warning in &config.warnings {
        tracing::warn!("{}", warning.display(&args.config.config));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
        .map_err(Failure::Runtime)?;
    runtime.block_on(serve(config)).map_err(Failure::Runtime)
}

async fn serve(config: procman_core::config::Config) -> anyhow::Result<()> {
    // Signal handlers first: a signal that arrives while processes start
    // must not kill the manager with its default action.
    let mut term = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    let mut hup = signal(SignalKind::hangup()).context("cannot handle SIGHUP")?;

    let source = config.source.clone();
    let manager = Manager::new(config)?;
    // The YAML tree is gone: hand its memory back before the spawns, which
    // copy the page tables of whatever the manager still maps.
    procman_core::platform::release_free_memory();
    tracing::info!(config = %source.display(), state_dir = %manager.state_dir().display(),
        pid = std::process::id(), cgroups = manager.uses_cgroups(), "procman started");
    manager.start().await;
    // Start-up's garbage (the YAML tree, spawn buffers) is not needed again.
    procman_core::platform::release_free_memory();

    let first = loop {
        tokio::select! {
            _ = term.recv() => break "SIGTERM",
            _ = int.recv() => break "SIGINT",
            _ = hup.recv() => tracing::warn!("SIGHUP: reload is not available yet; ignored"),
        }
    };
    tracing::info!(
        signal = first,
        "shutting down; a second signal kills every process at once"
    );
    {
        let shutdown = manager.stop();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                _ = term.recv() => manager.kill_all(),
                _ = int.recv() => manager.kill_all(),
                _ = hup.recv() => {}
            }
        }
    }
    manager.shutdown().await;
    tracing::info!("procman stopped");
    Ok(())
}
