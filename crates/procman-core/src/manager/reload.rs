//! Hot reload: the config file is loaded and validated again; if it is
//! valid, the [`Plan`] between the config in effect and the new one is
//! carried out. An invalid file changes nothing.
//!
//! Order: the processes that are removed or changed are stopped first
//! (dependents before what they depend on); the changes in place are
//! applied; the new supervisors are created; the new lineup replaces the
//! old one at once; then the added and changed processes that are
//! `enabled` are started (their dependencies order them). Unchanged
//! processes are never touched: same PID, log file and counters.

use std::sync::Arc;
use std::time::Duration;

use super::control::Control;
use super::plan::Plan;
use super::registry::ManagerState;
use super::roster::Lineup;
use crate::config::{self, Config, ConfigErrors, ProcessKind};
use crate::supervisor::{Handle, Phase};

/// How long a supervisor may take to end once its process is stopped.
const TASK_END: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The file is not valid: nothing was changed.
    #[error("{0}")]
    Config(ConfigErrors),
    /// A new log file cannot be used: nothing was changed.
    #[error("{0}")]
    Log(String),
    /// An `env_file` that a process started by the reload would read
    /// cannot be read: nothing was changed.
    #[error("{0}")]
    EnvFile(String),
    #[error("the manager is shutting down")]
    ShuttingDown,
    #[error("cannot load the config: {0}")]
    Load(String),
}

impl Control {
    /// Loads the config file the manager runs (its path as given at
    /// start) and applies it; `dry_run`: only says what it would do.
    pub async fn reload(&self, dry_run: bool) -> Result<Plan, ReloadError> {
        let source = self.config().source.clone();
        let loaded = tokio::task::spawn_blocking(move || config::load_file(&source))
            .await
            .map_err(|e| ReloadError::Load(e.to_string()))?;
        self.reload_with(loaded.map_err(ReloadError::Config)?, dry_run)
            .await
    }

    /// Applies `new` (already loaded and valid); `dry_run`: only says what
    /// it would do.
    pub async fn reload_with(&self, new: Config, dry_run: bool) -> Result<Plan, ReloadError> {
        // Refused at once during a shutdown, not after it.
        if self.shutting_down() {
            return Err(ReloadError::ShuttingDown);
        }
        let _one = self.roster.reloading.lock().await;
        if self.shutting_down() {
            return Err(ReloadError::ShuttingDown);
        }
        let before = self.roster.lineup();
        let mut plan = Plan::between(&before.config, &new);
        for id in env_files_changed(&before, &new).await {
            plan.needs_new_run(&id, "management.control.env_file (its contents)");
        }
        let effective = effective(&before.config, new);
        // What a process started by this reload reads at its spawn must
        // be there: a missing env_file refuses the reload rather than
        // stop a running process that could not start again.
        env_files_readable(&effective, &plan).await?;
        if dry_run {
            return Ok(plan);
        }
        // Every new log file is checked before anything changes.
        let renewed: Vec<&str> = plan
            .added
            .iter()
            .chain(plan.changed.iter().map(|c| &c.id))
            .map(String::as_str)
            .collect();
        let mut logs = Vec::with_capacity(renewed.len());
        let mut unusable = Vec::new();
        for id in &renewed {
            if let Some(p) = effective.process(id) {
                match self.roster.log(p) {
                    Ok(log) => logs.push((p.id.clone(), log)),
                    Err(e) => unusable.push(format!("process {}: management.logging: {e}", p.id)),
                }
            }
        }
        if !unusable.is_empty() {
            return Err(ReloadError::Log(unusable.join("\n")));
        }
        for line in crate::config::warning_lines(&effective.warnings, &effective.source) {
            tracing::warn!("{line}");
        }
        // A process stopped on purpose stays stopped when it is replaced.
        let kept_stopped: Vec<String> = plan
            .changed
            .iter()
            .filter(|c| {
                before
                    .procs
                    .iter()
                    .any(|h| h.id() == c.id && stopped_on_purpose(&h.status()))
            })
            .map(|c| c.id.clone())
            .collect();
        // Stopped: what leaves and what is replaced.
        let leaving: Vec<&str> = plan
            .removed
            .iter()
            .chain(plan.changed.iter().map(|c| &c.id))
            .map(String::as_str)
            .collect();
        self.retire(&before, &leaving).await;
        // Applied to running processes.
        for change in &plan.changed_in_place {
            if let (Some(h), Some(p)) = (
                before.procs.iter().find(|h| h.id() == change.id),
                effective.process(&change.id),
            ) {
                h.reconfigure(p.clone()).await;
            }
        }
        // The new lineup, in the new file's order.
        let kept: std::collections::HashMap<&str, &Handle> =
            before.procs.iter().map(|h| (h.id(), h)).collect();
        let mut fresh: Vec<Handle> = Vec::new();
        let procs: Vec<Handle> = effective
            .processes
            .iter()
            .filter_map(|p| {
                if let Some(at) = logs.iter().position(|(id, _)| *id == p.id) {
                    let (_, log) = logs.swap_remove(at);
                    let h = self.roster.spawn(p, log, None);
                    fresh.push(h.clone());
                    Some(h)
                } else {
                    kept.get(p.id.as_str()).map(|h| (*h).clone())
                }
            })
            .collect();
        let config = Arc::new(effective);
        // Every task gets its dependencies anew: handles were replaced,
        // and `depends_on` may have changed.
        super::order::wire(&procs, &config);
        self.roster.replace(Lineup {
            config: config.clone(),
            procs: procs.into(),
        });
        let starts: Vec<_> = fresh
            .iter()
            .filter_map(|h| {
                let p = config.process(h.id())?;
                let ticket = if kept_stopped.contains(&p.id) {
                    h.stop()
                } else if !p.enabled {
                    return None;
                } else if p.kind == ProcessKind::Unmanaged {
                    // Looked for, never started.
                    h.monitor()
                } else {
                    h.start()
                };
                Some((p.id.clone(), ticket))
            })
            .collect();
        for (id, ticket) in starts {
            if let Err(e) = ticket.await {
                tracing::warn!(process = %id, error = %e, "did not start after the reload");
            }
        }
        summarize(&plan);
        Ok(plan)
    }

    fn shutting_down(&self) -> bool {
        matches!(
            self.manager_state(),
            ManagerState::Stopping | ManagerState::Stopped
        )
    }

    /// Ends the supervisors of the processes `ids` of `lineup`, each after
    /// every listed process that depends on it. Each is told to exit: what
    /// runs gets its graceful stop, and a stop already under way (a
    /// user's, a restart's, a failed health check's) keeps its grace
    /// rather than being hurried into a SIGKILL.
    async fn retire(&self, lineup: &Lineup, ids: &[&str]) {
        let handles: Vec<Handle> = lineup
            .procs
            .iter()
            .filter(|h| ids.contains(&h.id()))
            .cloned()
            .collect();
        let tasks: std::collections::HashMap<String, (tokio::task::JoinHandle<()>, Duration)> =
            handles
                .iter()
                .filter_map(|h| {
                    let grace = lineup
                        .config
                        .process(h.id())
                        .map_or(Duration::ZERO, |p| p.control.shutdown_timeout);
                    // A stop under way, then the stop of what runs after it.
                    let bound = grace * 2 + TASK_END;
                    Some((h.id().to_string(), (self.roster.take_task(h.id())?, bound)))
                })
                .collect();
        let tasks = std::sync::Arc::new(std::sync::Mutex::new(tasks));
        super::order::in_stop_order(&handles, &lineup.config, None, move |h| {
            let task = tasks
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(h.id());
            async move {
                h.exit();
                let Some((task, bound)) = task else { return };
                let abort = task.abort_handle();
                if tokio::time::timeout(bound, task).await.is_err() {
                    tracing::error!(process = %h.id(), "its supervisor did not end after the reload stopped it; abandoning it");
                    abort.abort();
                }
            }
        })
        .await;
    }
}

/// Refuses the reload when a process it would start (added or changed,
/// and enabled) could not read its `env_file`.
async fn env_files_readable(config: &Config, plan: &Plan) -> Result<(), ReloadError> {
    let started: Vec<Arc<crate::config::ProcessConfig>> = plan
        .added
        .iter()
        .chain(plan.changed.iter().map(|c| &c.id))
        .filter_map(|id| config.process(id))
        .filter(|p| p.enabled && p.control.env_file.is_some())
        .cloned()
        .collect();
    if started.is_empty() {
        return Ok(());
    }
    let source = config.source.display().to_string();
    let problems = tokio::task::spawn_blocking(move || {
        started
            .iter()
            .filter_map(|p| {
                crate::supervisor::env_file_readable(p).err().map(|why| {
                    format!(
                        "{source}: managed_processes.{}.management.control.env_file: {why}",
                        p.id
                    )
                })
            })
            .collect::<Vec<_>>()
    })
    .await
    .map_err(|e| ReloadError::Load(e.to_string()))?;
    match problems.is_empty() {
        true => Ok(()),
        false => Err(ReloadError::EnvFile(problems.join("\n"))),
    }
}

/// The processes whose `env_file` (the same path in both configs) no
/// longer holds what their run read.
async fn env_files_changed(before: &Lineup, new: &Config) -> Vec<String> {
    let handles: std::collections::HashMap<&str, &Handle> =
        before.procs.iter().map(|h| (h.id(), h)).collect();
    let old: std::collections::HashMap<&str, (&crate::config::ProcessConfig, &Handle)> = before
        .config
        .processes
        .iter()
        .filter_map(|p| Some((p.id.as_str(), (p.as_ref(), *handles.get(p.id.as_str())?))))
        .collect();
    let files: Vec<(String, std::path::PathBuf, u64)> = new
        .processes
        .iter()
        .filter_map(|p| {
            let file = p.control.env_file.clone()?;
            let (old, h) = old.get(p.id.as_str())?;
            let used = h.status().env_file_digest?;
            (old.control.env_file.as_ref() == Some(&file)).then(|| (p.id.clone(), file, used))
        })
        .collect();
    if files.is_empty() {
        return Vec::new();
    }
    tokio::task::spawn_blocking(move || {
        files
            .into_iter()
            .filter(|(_, file, used)| crate::supervisor::file_digest(file) != Some(*used))
            .map(|(id, _, _)| id)
            .collect()
    })
    .await
    .unwrap_or_default()
}

/// Stopped, or being stopped, at a user's request (not by a restart or a
/// failed health check).
fn stopped_on_purpose(s: &crate::supervisor::ProcessStatus) -> bool {
    match s.phase() {
        Phase::Stopped => true,
        Phase::Stopping => s
            .last_transition
            .as_ref()
            .is_some_and(|t| t.cause == crate::supervisor::Cause::StopRequested),
        _ => false,
    }
}

/// The config a reload puts in effect: the new processes, and of the rest
/// only what applies without a restart of the manager
/// (`force_shutdown_timeout`); the listening address, token, directories,
/// manager log settings and log collection stay as they are until then.
fn effective(old: &Config, mut new: Config) -> Config {
    let timeout = new.manager.force_shutdown_timeout;
    new.manager = old.manager.clone();
    new.manager.force_shutdown_timeout = timeout;
    new.log_collection = old.log_collection.clone();
    new
}

fn summarize(plan: &Plan) {
    let ids = |v: &[String]| v.join(", ");
    let changed: Vec<String> = plan.changed.iter().map(|c| c.id.clone()).collect();
    let in_place: Vec<String> = plan.changed_in_place.iter().map(|c| c.id.clone()).collect();
    tracing::info!(
        added = %ids(&plan.added),
        removed = %ids(&plan.removed),
        changed = %ids(&changed),
        changed_in_place = %ids(&in_place),
        unchanged = plan.unchanged.len(),
        "config reloaded"
    );
    for c in plan.manager.iter().filter(|c| !c.applied) {
        tracing::warn!(key = %c.key, "changed in the file; takes effect when the manager is restarted");
    }
}
