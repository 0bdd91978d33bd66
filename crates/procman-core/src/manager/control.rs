//! [`Control`]: a cloneable view of a running manager for its clients
//! (the API server, a host program's own tasks). It reaches each process
//! through its supervisor's handle and sees every transition; it cannot
//! shut the manager down, which stays with the owner of the [`Manager`].
//!
//! [`Manager`]: super::Manager

use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::{broadcast, watch};

use super::order;
use super::registry::{ManagerError, ManagerState};
use super::roster::Roster;
use crate::config::Config;
use crate::outcome::Signal;
use crate::supervisor::{Event, Events, Handle, ProcessStatus, Ticket};

#[derive(Debug, Clone)]
pub struct Control {
    pub(super) roster: Arc<Roster>,
    pub(super) state_dir: Arc<Path>,
    pub(super) state: watch::Receiver<ManagerState>,
    pub(super) events: Arc<Events>,
    pub(super) started_at: SystemTime,
    pub(super) uses_cgroups: bool,
}

impl Control {
    /// The config in effect (the last one a reload applied).
    pub fn config(&self) -> Arc<Config> {
        self.roster.lineup().config.clone()
    }

    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// When the manager was created.
    pub fn started_at(&self) -> SystemTime {
        self.started_at
    }

    /// Whether process trees are tracked by cgroup (else by `/proc`).
    pub fn uses_cgroups(&self) -> bool {
        self.uses_cgroups
    }

    pub fn handle(&self, id: &str) -> Result<Handle, ManagerError> {
        self.roster
            .lineup()
            .procs
            .iter()
            .find(|h| h.id() == id)
            .cloned()
            .ok_or_else(|| ManagerError::UnknownProcess(id.to_string()))
    }

    /// The config in effect and its processes' handles (in config order),
    /// taken together: a reload cannot come between them.
    pub fn lineup(&self) -> (Arc<Config>, Arc<[Handle]>) {
        let now = self.roster.lineup();
        (now.config.clone(), now.procs.clone())
    }

    /// Every process's handle, in config order.
    pub fn handles(&self) -> Arc<[Handle]> {
        self.roster.lineup().procs.clone()
    }

    /// Starts the process (closing its circuit breaker); returns once it
    /// is spawned, waits for its dependencies (`waiting`), or has failed
    /// to start. Refused ([`ManagerError::DependenciesDown`]) when a
    /// process it depends on, directly or not, is down (never started,
    /// stopped, failed, or exited without meeting its condition).
    pub async fn start_process(&self, id: &str) -> Result<(), ManagerError> {
        Ok(self.request_start(id, false)?.await?)
    }

    /// Starts every process `id` depends on, directly or not, then `id`
    /// (all at once: each waits for its own dependencies); returns as
    /// [`Control::start_process`] does.
    pub async fn start_with_deps(&self, id: &str) -> Result<(), ManagerError> {
        Ok(self.request_start(id, true)?.await?)
    }

    /// Sends the start of `id` (with `with_deps`, of its dependencies
    /// first) and returns its ticket, or the refusal of
    /// [`Control::start_process`].
    pub fn request_start(&self, id: &str, with_deps: bool) -> Result<Ticket, ManagerError> {
        let (config, procs) = self.lineup();
        let handle = self.handle(id)?;
        order::prepare_start(&procs, &config, id, with_deps)?;
        Ok(handle.start())
    }

    /// Stops the process; returns once its whole tree is gone.
    pub async fn stop_process(&self, id: &str) -> Result<(), ManagerError> {
        Ok(self.handle(id)?.stop().await?)
    }

    /// Stops the process if it runs, then starts it.
    pub async fn restart_process(&self, id: &str) -> Result<(), ManagerError> {
        Ok(self.handle(id)?.restart().await?)
    }

    /// Sends `signal` to the process's main process, or (`tree`) to every
    /// process of its tree.
    pub async fn signal_process(
        &self,
        id: &str,
        signal: Signal,
        tree: bool,
    ) -> Result<(), ManagerError> {
        Ok(self.handle(id)?.signal(signal, tree).await?)
    }

    pub fn manager_state(&self) -> ManagerState {
        *self.state.borrow()
    }

    /// A receiver that sees every manager state change.
    pub fn subscribe(&self) -> watch::Receiver<ManagerState> {
        self.state.clone()
    }

    /// A receiver of every process transition from now on.
    pub fn events(&self) -> broadcast::Receiver<Arc<Event>> {
        self.events.subscribe()
    }

    /// [`Control::events`], with the number of the last event sent before
    /// the receiver was made (0: none yet).
    pub fn events_after(&self) -> (broadcast::Receiver<Arc<Event>>, u64) {
        self.events.subscribe_after()
    }

    /// Every process's state with diagnostics, in config order.
    pub fn process_states(&self) -> Vec<ProcessStatus> {
        self.handles().iter().map(Handle::status).collect()
    }
}
