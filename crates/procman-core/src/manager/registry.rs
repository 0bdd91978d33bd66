use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::control::Control;
use super::resources;
use super::roster::{Lineup, Roster};
use crate::config::{Config, ProcessKind};
use crate::logs::{LogError, LogSetup};
use crate::platform::{self, Reaping, TreeRoot};
use crate::state::slots::Records;
use crate::state::{self, LockError, StateLock};
use crate::supervisor::{self, CommandError, Context, Events, Handle, ProcessStatus, Ticket};

/// How long everything left may take to end after `force_shutdown_timeout`
/// (when whatever still ran was SIGKILLed): the supervisors finishing, the
/// log targets writing what they hold. Past it the manager gives up on
/// them: [`Manager::shutdown`] never takes longer than
/// `force_shutdown_timeout` plus this.
pub const SHUTDOWN_MARGIN: Duration = Duration::from_secs(5);
/// How long the log targets may take to write what they hold at shutdown
/// (within [`SHUTDOWN_MARGIN`]).
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
    #[error("{0}")]
    Platform(std::io::Error),
    #[error("invalid options: {0}")]
    Options(&'static str),
    /// The records of the processes an earlier manager left running
    /// cannot be read or kept: starting would run a second copy of them.
    #[error("cannot use the processes' state records in {}: {source}; processes of an earlier manager on this state directory may still be running, and starting would run them twice: fix the file's permissions, or stop those processes and remove it", dir.display())]
    Records {
        dir: PathBuf,
        source: std::io::Error,
    },
    /// A user's start of `id` refused: processes it depends on (directly
    /// or not) are down; each with its state.
    #[error("{}", super::order::down_message(id, down))]
    DependenciesDown {
        id: String,
        down: Vec<(String, String)>,
    },
}

/// Choices an embedder (or a test) can make beyond the config file.
#[derive(Debug, Clone)]
pub struct Options {
    /// Track process trees in cgroup v2 when possible (default). `false`
    /// forces the process-group and `/proc` fallback.
    pub cgroups: bool,
    /// Become a child subreaper, so that orphaned descendants are
    /// re-parented to the manager and reaped by it (default). Needs
    /// [`Reaping::All`].
    pub subreaper: bool,
    /// How children are reaped (default [`Reaping::All`]: every child of
    /// the process). A program that embeds the engine and has children of
    /// its own uses [`Options::embedded`].
    pub reaping: Reaping,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            cgroups: true,
            subreaper: true,
            reaping: Reaping::All,
        }
    }
}

impl Options {
    /// For a host program with children of its own: not a subreaper, and
    /// only the manager's own children reaped (through their pidfds), so
    /// the host's children and their exit statuses are left alone.
    pub fn embedded() -> Options {
        Options {
            cgroups: true,
            subreaper: false,
            reaping: Reaping::OwnChildren,
        }
    }
}

/// Managers alive in this process (a program runs one; tests run many).
static LIVE: AtomicUsize = AtomicUsize::new(0);

/// A running manager. Create it inside a tokio runtime.
pub struct Manager {
    control: Control,
    trees: TreeRoot,
    state: watch::Sender<ManagerState>,
    /// `shutdown` or `detach` ran: nothing is left to kill when dropped.
    finished: bool,
    /// Per process (config order): taken up from an earlier manager's
    /// state (re-attached, or judged by its restart policy) when
    /// [`Manager::start`] starts it, even if it is not `enabled`.
    resumed: Vec<bool>,
    /// The processes' state files (`None`: they could not be opened).
    records: Option<Arc<Records>>,
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
        if options.subreaper && options.reaping != Reaping::All {
            return Err(ManagerError::Options(
                "a subreaper must reap every child (Reaping::All)",
            ));
        }
        // Threads first: a machine out of threads is a clean error here,
        // not a panic later.
        platform::reaper::start(options.reaping).map_err(ManagerError::Platform)?;
        platform::worker::start().map_err(ManagerError::Platform)?;
        let state_dir = state::dir(config.manager.state_dir.as_deref(), &config.source)?;
        let lock = StateLock::acquire(&state_dir)?;
        platform::raise_fd_limit();
        if options.subreaper {
            if let Err(e) = platform::become_subreaper() {
                tracing::warn!(error = %e, "cannot become a child subreaper; orphaned grandchildren go to init");
            }
        }
        // `log_dir`, else `<state_dir>/logs`: the `state_dir` found above;
        // output goes through spools in `<state_dir>/spool`.
        let setup = LogSetup::start(&config)?.with_spool(&state_dir);
        // Every log file is checked now (and opened only when its process
        // runs): an unwritable one is an error before anything starts.
        let logs = config
            .processes
            .iter()
            .map(|p| crate::logs::sink::ProcessLog::new(p, &setup).map(Arc::new))
            .collect::<Result<Vec<_>, _>>()?;
        // What an earlier manager on this state directory left: runs to
        // re-attach to (their trees are kept), runs that ended meanwhile.
        let records = Records::open(&state_dir).map_err(|source| ManagerError::Records {
            dir: crate::state::record::dir(&state_dir),
            source,
        })?;
        let records = Some(Arc::new(records));
        let resumes = records
            .as_deref()
            .map(|r| super::resume::find(r, &config))
            .unwrap_or_else(|| config.processes.iter().map(|_| None).collect());
        let keep: Vec<String> = config
            .processes
            .iter()
            .zip(&resumes)
            .filter(|(_, r)| r.as_ref().is_some_and(supervisor::Resume::adopts))
            .map(|(p, _)| p.id.clone())
            .collect();
        let resumed: Vec<bool> = resumes.iter().map(Option::is_some).collect();
        let trees = if options.cgroups {
            let need = resources::needed(&config);
            TreeRoot::create(&format!("procman-{}", state::tag(&state_dir)), &need, &keep)
        } else {
            TreeRoot::without_cgroups()
        };
        resources::report(&config, trees.controllers());
        let config_dir = config
            .source
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("/"));
        let events = Arc::new(Events::default());
        let ctx = Arc::new(Context {
            config_dir,
            trees: trees.clone(),
            events: events.clone(),
            records: records.clone(),
        });
        let config = Arc::new(config);
        let roster = Arc::new(Roster::new(config.clone(), ctx, setup));
        let procs: Vec<Handle> = config
            .processes
            .iter()
            .zip(logs)
            .zip(resumes)
            .map(|((p, log), resume)| roster.spawn(p, log, resume))
            .collect();
        super::order::wire(&procs, &config);
        roster.replace(Lineup {
            config,
            procs: procs.into(),
        });
        LIVE.fetch_add(1, Ordering::Relaxed);
        let state = watch::channel(ManagerState::Created).0;
        let control = Control {
            roster,
            state_dir: state_dir.into(),
            state: state.subscribe(),
            events,
            started_at: SystemTime::now(),
            uses_cgroups: trees.uses_cgroups(),
        };
        Ok(Manager {
            control,
            trees,
            state,
            finished: false,
            resumed,
            records,
            _lock: lock,
        })
    }

    /// A cloneable view of this manager for its clients.
    pub fn control(&self) -> &Control {
        &self.control
    }

    /// The config in effect (the last one a reload applied).
    pub fn config(&self) -> Arc<Config> {
        self.control.config()
    }

    pub fn state_dir(&self) -> &Path {
        &self.control.state_dir
    }

    /// A handle that refuses every spawn from the moment it is used, safe
    /// in a signal handler: what a shutdown signal does first, so that a
    /// large start stops at once (see [`platform::SpawnHalt`]).
    pub fn spawn_halt(&self) -> platform::SpawnHalt {
        self.trees.spawn_halt()
    }

    /// Whether process trees are tracked by cgroup (else by `/proc`).
    pub fn uses_cgroups(&self) -> bool {
        self.trees.uses_cgroups()
    }

    /// Starts every enabled managed process, all at once, and returns when
    /// each is running or has failed to spawn (a spawn failure is that
    /// process's `failed` state, not an error of the manager). Enabled
    /// unmanaged processes are looked for, once each before this returns.
    pub async fn start(&self) {
        self.state.send_replace(ManagerState::Starting);
        let lineup = self.control.roster.lineup();
        let tickets: Vec<(String, Ticket)> = lineup
            .config
            .processes
            .iter()
            .zip(lineup.procs.iter())
            .zip(&self.resumed)
            .filter(|((p, _), resumed)| p.enabled || **resumed)
            .map(|((p, h), _)| match p.kind {
                // Looked for, never started.
                ProcessKind::Unmanaged => (p.id.clone(), h.monitor()),
                _ => (p.id.clone(), h.start()),
            })
            .collect();
        for (id, ticket) in tickets {
            if let Err(e) = ticket.await {
                tracing::debug!(process = %id, error = %e, "did not start");
            }
        }
        self.state.send_replace(ManagerState::Running);
    }

    /// Stops every process, dependents before what they depend on (each
    /// level of `depends_on` in parallel). Whatever still runs when
    /// `force_shutdown_timeout` expires is SIGKILLed, and the stop returns
    /// at most [`SHUTDOWN_MARGIN`] later whatever the supervisors do.
    ///
    /// The shutdown begins here: from now on no process of this manager
    /// starts again (a start under way, a restart after its backoff, a
    /// launch a dependency held back, a reload's new process: each is
    /// refused).
    pub async fn stop(&self) {
        let force = Instant::now() + self.config().manager.force_shutdown_timeout;
        self.stop_until(force).await;
    }

    async fn stop_until(&self, force: Instant) {
        self.state.send_replace(ManagerState::Stopping);
        self.trees.close();
        // A reload under way finishes first (its stops are bounded too).
        let reload = self.control.roster.reloading.lock();
        let _reload = tokio::time::timeout_at(force.into(), reload).await.ok();
        let (config, procs) = self.control.lineup();
        let pending = super::order::stop_in_order(&procs, &config, force).await;
        if !pending.is_empty() {
            tracing::warn!(timeout = %humantime::format_duration(self.config().manager.force_shutdown_timeout),
                "force_shutdown_timeout expired; killing every process left");
            self.kill_all();
            let rest = async {
                for t in pending {
                    let _ = t.await;
                }
            };
            let hard = force + SHUTDOWN_MARGIN;
            if tokio::time::timeout_at(hard.into(), rest).await.is_err() {
                tracing::error!("some supervisors did not finish their stop; giving up on them");
            }
        }
        // Orphans adopted as a subreaper that no tree held go too: without
        // cgroups, a daemon that escaped before it was seen; with them, one
        // that moved itself out of its cgroup (root can). Only when this is
        // the process's one manager: all its adopted orphans are then ours.
        if LIVE.load(Ordering::Relaxed) == 1 {
            let grace = Instant::now() + std::time::Duration::from_secs(2);
            self.trees
                .stop_adopted(
                    crate::outcome::Signal::TERM,
                    grace.min(force.max(Instant::now())),
                )
                .await;
        }
        self.state.send_replace(ManagerState::Stopped);
    }

    /// SIGKILL to every process tree at once (a second shutdown signal):
    /// every cgroup and every unreaped child's group now, from this thread,
    /// and each supervisor told to finish its stop without waiting. No
    /// process starts again after it (see [`Manager::stop`]).
    pub fn kill_all(&self) {
        self.trees.kill_everything();
        for h in self.control.handles().iter() {
            h.kill();
        }
    }

    /// Stops everything, ends the supervisors and removes the cgroups,
    /// within `force_shutdown_timeout` plus [`SHUTDOWN_MARGIN`].
    pub async fn shutdown(mut self) {
        let force = Instant::now() + self.config().manager.force_shutdown_timeout;
        self.stop_until(force).await;
        // One bound for the whole shutdown, whatever the stop above used.
        let hard = force + SHUTDOWN_MARGIN;
        // Every supervisor ends now, whoever else still holds its handle.
        for h in self.control.handles().iter() {
            h.exit();
        }
        self.finished = true;
        for t in self.control.roster.take_tasks() {
            let abort = t.abort_handle();
            if tokio::time::timeout_at(hard.into(), t).await.is_err() {
                tracing::error!("a supervisor did not end in time; abandoning it");
                abort.abort();
            }
        }
        self.trees.remove();
        // The supervisors (and their pumps) are gone: the targets write
        // what they hold, within a bound whatever their readers do, and
        // within the margin (a shutdown that used it up gives them none).
        let deadline = (Instant::now() + LOG_TARGETS_FINISH).min(hard);
        self.control.roster.logs.targets.finish(deadline).await;
    }

    /// Detaches from every process without stopping any (for an upgrade
    /// of the manager): each supervisor lets its run go, having written
    /// what it read and the process's state file; the cgroups stay; the
    /// next manager on this state directory re-attaches. Bounded like
    /// [`Manager::shutdown`].
    pub async fn detach(mut self) {
        self.state.send_replace(ManagerState::Stopping);
        let hard = Instant::now() + self.config().manager.force_shutdown_timeout + SHUTDOWN_MARGIN;
        self.finished = true;
        let detaching: Vec<JoinHandle<()>> = self
            .control
            .handles()
            .iter()
            .map(|h| {
                let h = h.clone();
                tokio::spawn(async move { h.detach().await })
            })
            .chain(self.control.roster.take_tasks())
            .collect();
        for t in detaching {
            let abort = t.abort_handle();
            if tokio::time::timeout_at(hard.into(), t).await.is_err() {
                tracing::error!("a supervisor did not detach in time; abandoning it");
                abort.abort();
            }
        }
        let deadline = (Instant::now() + LOG_TARGETS_FINISH).min(hard.max(Instant::now()));
        self.control.roster.logs.targets.finish(deadline).await;
        self.state.send_replace(ManagerState::Stopped);
        tracing::info!("detached: every process keeps running for the next manager");
    }

    /// Every log file (per process, and file targets) reopens its path
    /// before its next write, creating it anew: for an external
    /// `logrotate` that renamed it (SIGUSR1). What was written before stays
    /// in the renamed file; no line is split between the two.
    pub fn reopen_logs(&self) {
        self.control.roster.logs.reopen();
    }

    pub fn handle(&self, id: &str) -> Result<Handle, ManagerError> {
        self.control.handle(id)
    }

    pub async fn start_process(&self, id: &str) -> Result<(), ManagerError> {
        self.control.start_process(id).await
    }

    pub async fn stop_process(&self, id: &str) -> Result<(), ManagerError> {
        self.control.stop_process(id).await
    }

    pub async fn restart_process(&self, id: &str) -> Result<(), ManagerError> {
        self.control.restart_process(id).await
    }

    pub fn manager_state(&self) -> ManagerState {
        self.control.manager_state()
    }

    /// A receiver that sees every manager state change.
    pub fn subscribe(&self) -> watch::Receiver<ManagerState> {
        self.control.subscribe()
    }

    /// Every process's state with diagnostics, in config order.
    pub fn process_states(&self) -> Vec<ProcessStatus> {
        self.control.process_states()
    }
}

impl Drop for Manager {
    /// A manager dropped without `shutdown` (a panic, an embedder's early
    /// return) must not leave its processes running: kill every tree now,
    /// through the cgroups and the groups of the children not yet reaped
    /// (never by a pid remembered from an old status).
    fn drop(&mut self) {
        LIVE.fetch_sub(1, Ordering::Relaxed);
        if self.finished || !self.control.roster.has_tasks() {
            return; // `shutdown` ran.
        }
        self.trees
            .kill_and_remove(std::time::Duration::from_secs(1));
        // Every process was killed on purpose: no record is left for the
        // next manager to take for processes that ended while none ran.
        let Some(records) = &self.records else {
            return;
        };
        for id in records.ids() {
            if let Err(e) = records.remove(&id) {
                tracing::warn!(process = %id, error = %e, "cannot remove the process's state file");
            }
        }
    }
}
