use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::{Config, ProcessKind};
use crate::logs::sink::ProcessLog;
use crate::logs::{LogError, LogSetup};
use crate::platform::{self, TreeRoot};
use crate::state::{self, LockError, StateLock};
use crate::supervisor::{self, CommandError, Context, Handle, ProcessStatus, Ticket};

/// How long stops may take after everything was SIGKILLed at the
/// `force_shutdown_timeout` deadline.
const AFTER_FORCE: Duration = Duration::from_secs(10);
/// How long the log targets may take to write what they hold at shutdown.
const LOG_TARGETS_FINISH: Duration = Duration::from_secs(3);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManagerState {
    Created,
    Starting,
    Running,
    Stopping,
    Stopped,
}

impl ManagerState {
    pub fn as_str(self) -> &'static str {
        match self {
            ManagerState::Created => "created",
            ManagerState::Starting => "starting",
            ManagerState::Running => "running",
            ManagerState::Stopping => "stopping",
            ManagerState::Stopped => "stopped",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ManagerError {
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error("no process with id `{0}`")]
    UnknownProcess(String),
    #[error(transparent)]
    Command(#[from] CommandError),
    #[error(transparent)]
    Log(#[from] LogError),
}

/// Choices an embedder (or a test) can make beyond the config file.
#[derive(Debug, Clone)]
pub struct Options {
    /// Track process trees in cgroup v2 when possible (default). `false`
    /// forces the process-group and `/proc` fallback.
    pub cgroups: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options { cgroups: true }
    }
}

/// A running manager. Create it inside a tokio runtime.
pub struct Manager {
    config: Arc<Config>,
    state_dir: PathBuf,
    trees: TreeRoot,
    procs: Vec<Handle>,
    tasks: Vec<JoinHandle<()>>,
    state: watch::Sender<ManagerState>,
    /// The log directory, aggregation targets and reopen requests.
    logs: LogSetup,
    _lock: StateLock,
}

impl Manager {
    /// Takes the state directory's lock and registers every process (none
    /// is started yet). Fails if another manager holds the directory.
    pub fn new(config: Config) -> Result<Manager, ManagerError> {
        Manager::with_options(config, Options::default())
    }

    /// [`Manager::new`] with explicit [`Options`].
    pub fn with_options(config: Config, options: Options) -> Result<Manager, ManagerError> {
        let state_dir = state::dir(config.manager.state_dir.as_deref(), &config.source)?;
        let lock = StateLock::acquire(&state_dir)?;
        platform::raise_fd_limit();
        if let Err(e) = platform::become_subreaper() {
            tracing::warn!(error = %e, "cannot become a child subreaper; orphaned grandchildren go to init");
        }
        // `log_dir`, else `<state_dir>/logs`: the `state_dir` found above.
        let setup = LogSetup::start(&config)?;
        // Every log file is checked now (and opened only when its process
        // runs): an unwritable one is an error before anything starts.
        let logs = config
            .processes
            .iter()
            .map(|p| ProcessLog::new(p, &setup).map(Arc::new))
            .collect::<Result<Vec<_>, _>>()?;
        let trees = if options.cgroups {
            TreeRoot::create(&format!("procman-{}", state::tag(&state_dir)))
        } else {
            TreeRoot::without_cgroups()
        };
        let config_dir = config
            .source
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("/"));
        let ctx = Arc::new(Context {
            config_dir,
            trees: trees.clone(),
        });
        let config = Arc::new(config);
        let (procs, tasks) = config
            .processes
            .iter()
            .zip(logs)
            .map(|(p, log)| supervisor::spawn(Arc::new(p.clone()), ctx.clone(), log))
            .unzip();
        Ok(Manager {
            config,
            state_dir,
            trees,
            procs,
            tasks,
            state: watch::channel(ManagerState::Created).0,
            logs: setup,
            _lock: lock,
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// Whether process trees are tracked by cgroup (else by `/proc`).
    pub fn uses_cgroups(&self) -> bool {
        self.trees.uses_cgroups()
    }

    /// Starts every enabled managed process, all at once, and returns when
    /// each is running or has failed to spawn (a spawn failure is that
    /// process's `failed` state, not an error of the manager).
    pub async fn start(&self) {
        self.state.send_replace(ManagerState::Starting);
        let tickets: Vec<(String, Ticket)> = self
            .config
            .processes
            .iter()
            .zip(&self.procs)
            .filter(|(p, _)| p.enabled && p.kind != ProcessKind::Unmanaged)
            .map(|(p, h)| (p.id.clone(), h.start()))
            .collect();
        for (id, ticket) in tickets {
            if let Err(e) = ticket.await {
                tracing::debug!(process = %id, error = %e, "did not start");
            }
        }
        self.state.send_replace(ManagerState::Running);
    }

    /// Stops every process in parallel. Whatever still runs when
    /// `force_shutdown_timeout` expires is SIGKILLed.
    pub async fn stop(&self) {
        self.state.send_replace(ManagerState::Stopping);
        let deadline = Instant::now() + self.config.manager.force_shutdown_timeout;
        let tickets: Vec<Ticket> = self.procs.iter().map(Handle::stop).collect();
        let mut pending = tickets.into_iter();
        let all = async {
            for t in pending.by_ref() {
                let _ = t.await;
            }
        };
        if tokio::time::timeout_at(deadline.into(), all).await.is_err() {
            tracing::warn!(timeout = ?self.config.manager.force_shutdown_timeout,
                "force_shutdown_timeout expired; killing every process left");
            self.kill_all();
            let rest = async {
                for t in pending {
                    let _ = t.await;
                }
            };
            if tokio::time::timeout(AFTER_FORCE, rest).await.is_err() {
                tracing::error!("some processes did not stop even after SIGKILL");
            }
        }
        self.state.send_replace(ManagerState::Stopped);
    }

    /// SIGKILL to every process tree at once (a second shutdown signal).
    pub fn kill_all(&self) {
        for h in &self.procs {
            h.kill();
        }
    }

    /// Stops everything, ends the supervisors and removes the cgroups.
    pub async fn shutdown(mut self) {
        self.stop().await;
        self.procs.clear();
        for t in self.tasks.drain(..) {
            let _ = t.await;
        }
        self.trees.remove();
        // The supervisors (and their pumps) are gone: the targets write
        // what they hold, within a bound whatever their readers do.
        let deadline = Instant::now() + LOG_TARGETS_FINISH;
        self.logs.targets.finish(deadline).await;
    }

    /// Every log file (per process, and file targets) reopens its path
    /// before its next write, creating it anew: for an external
    /// `logrotate` that renamed it (SIGUSR1). What was written before stays
    /// in the renamed file; no line is split between the two.
    pub fn reopen_logs(&self) {
        self.logs.reopen();
    }

    pub fn handle(&self, id: &str) -> Result<&Handle, ManagerError> {
        self.procs
            .iter()
            .find(|h| h.id() == id)
            .ok_or_else(|| ManagerError::UnknownProcess(id.to_string()))
    }

    pub async fn start_process(&self, id: &str) -> Result<(), ManagerError> {
        Ok(self.handle(id)?.start().await?)
    }

    pub async fn stop_process(&self, id: &str) -> Result<(), ManagerError> {
        Ok(self.handle(id)?.stop().await?)
    }

    pub async fn restart_process(&self, id: &str) -> Result<(), ManagerError> {
        Ok(self.handle(id)?.restart().await?)
    }

    pub fn manager_state(&self) -> ManagerState {
        *self.state.borrow()
    }

    /// A receiver that sees every manager state change.
    pub fn subscribe(&self) -> watch::Receiver<ManagerState> {
        self.state.subscribe()
    }

    /// Every process's state with diagnostics, in config order.
    pub fn process_states(&self) -> Vec<ProcessStatus> {
        self.procs.iter().map(Handle::status).collect()
    }
}

impl Drop for Manager {
    /// A manager dropped without `shutdown` (a panic, an embedder's early
    /// return) must not leave its processes running: kill every tree now.
    /// Without cgroups, the groups of the known pids are killed instead.
    fn drop(&mut self) {
        if self.tasks.is_empty() {
            return; // `shutdown` ran.
        }
        self.trees.kill_everything();
        for status in self.process_states() {
            if let Some(pid) = status.pid() {
                let _ = platform::signal_group(pid, crate::outcome::Signal::KILL);
            }
        }
    }
}
