//! `procman run --watch-config`: a reload whenever the config file, or an
//! `env_file` it names, changes (inotify on their directories, debounced;
//! see `platform::config_watch`). After each reload the watched set
//! follows the config in effect.

use std::path::PathBuf;
use std::time::Duration;

use procman_core::config::Config;
use procman_core::manager::Control;
use procman_core::platform::config_watch::ConfigWatch;

/// Quiet time after the last change before the reload starts.
const QUIET: Duration = Duration::from_millis(500);

/// The files whose change reloads `config`: the file itself and every
/// `env_file`.
fn watched(config: &Config) -> Vec<PathBuf> {
    let mut files = vec![config.source.clone()];
    for p in &config.processes {
        if let Some(f) = &p.control.env_file {
            if !files.contains(f) {
                files.push(f.clone());
            }
        }
    }
    files
}

/// Sets up the watch (an error at start, so that `--watch-config` is never
/// silently without effect).
pub fn start(config: &Config) -> std::io::Result<ConfigWatch> {
    ConfigWatch::new(&watched(config), QUIET)
}

/// Reloads on every change until the runtime ends.
pub fn spawn(mut watch: ConfigWatch, control: Control) {
    tokio::spawn(async move {
        loop {
            let changed = match watch.changed().await {
                Ok(files) => files,
                Err(e) => {
                    tracing::error!(error = %e, "the config watch failed; changes of the file are no longer reloaded (SIGHUP or `procman reload` still work)");
                    return;
                }
            };
            let names: Vec<String> = changed.iter().map(|f| f.display().to_string()).collect();
            tracing::info!(files = %names.join(", "), "config changed; reloading");
            // The plan, or a refusal with every error, is logged by the
            // reload itself.
            let _ = crate::server::reload::reload(&control, false).await;
            if let Err(e) = watch.set_files(&watched(&control.config())) {
                tracing::warn!(error = %e, "cannot watch every env_file of the reloaded config");
            }
        }
    });
}
