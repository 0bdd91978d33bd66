//! The roster: the processes a manager supervises now, with the config
//! they came from. A reload replaces it as a whole; readers take the
//! current one (a cheap `Arc`) and never see half a reload.

use std::sync::{Arc, Mutex, RwLock};

use tokio::task::JoinHandle;

use crate::config::{Config, ProcessConfig};
use crate::logs::sink::ProcessLog;
use crate::logs::LogSetup;
use crate::supervisor::{self, Context, Handle, Resume};

/// One config and the supervisors of its processes, in config order.
#[derive(Debug)]
pub(super) struct Lineup {
    pub(super) config: Arc<Config>,
    pub(super) procs: Arc<[Handle]>,
}

#[derive(Debug)]
pub(super) struct Roster {
    now: RwLock<Arc<Lineup>>,
    /// Every supervisor task not yet ended, by process id.
    tasks: Mutex<Vec<(String, JoinHandle<()>)>>,
    pub(super) ctx: Arc<Context>,
    /// The log directory, aggregation targets and reopen requests.
    pub(super) logs: LogSetup,
    /// One reload at a time; a shutdown waits for the one under way.
    pub(super) reloading: tokio::sync::Mutex<()>,
}

impl Roster {
    pub(super) fn new(config: Arc<Config>, ctx: Arc<Context>, logs: LogSetup) -> Roster {
        Roster {
            now: RwLock::new(Arc::new(Lineup {
                config,
                procs: Arc::from(Vec::new()),
            })),
            tasks: Mutex::new(Vec::new()),
            ctx,
            logs,
            reloading: tokio::sync::Mutex::new(()),
        }
    }

    /// The current lineup.
    pub(super) fn lineup(&self) -> Arc<Lineup> {
        self.now.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(super) fn replace(&self, lineup: Lineup) {
        *self.now.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(lineup);
    }

    /// The log of process `p`, checked now (an unwritable file is an
    /// error before anything starts) and opened when it runs.
    pub(super) fn log(&self, p: &ProcessConfig) -> Result<Arc<ProcessLog>, crate::logs::LogError> {
        ProcessLog::new(p, &self.logs).map(Arc::new)
    }

    /// Starts the supervisor of `p` (it waits in `registered`).
    pub(super) fn spawn(
        &self,
        p: &Arc<ProcessConfig>,
        log: Arc<ProcessLog>,
        resume: Option<Resume>,
    ) -> Handle {
        let (handle, task) = supervisor::spawn(p.clone(), self.ctx.clone(), log, resume);
        self.tasks().push((p.id.clone(), task));
        handle
    }

    /// The task of process `id`, no longer the roster's to wait for.
    pub(super) fn take_task(&self, id: &str) -> Option<JoinHandle<()>> {
        let mut tasks = self.tasks();
        let at = tasks.iter().position(|(t, _)| t == id)?;
        Some(tasks.swap_remove(at).1)
    }

    /// Every task, for a shutdown to wait for.
    pub(super) fn take_tasks(&self) -> Vec<JoinHandle<()>> {
        self.tasks().drain(..).map(|(_, t)| t).collect()
    }

    pub(super) fn has_tasks(&self) -> bool {
        !self.tasks().is_empty()
    }

    fn tasks(&self) -> std::sync::MutexGuard<'_, Vec<(String, JoinHandle<()>)>> {
        self.tasks.lock().unwrap_or_else(|e| e.into_inner())
    }
}
