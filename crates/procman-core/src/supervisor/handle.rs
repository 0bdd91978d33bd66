//! The cheap, cloneable way to reach one supervisor task.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::sync::oneshot;

use super::bulletin;
use super::inbox;
use super::leader::Leader;
use super::messages::{Command, CommandError};
use super::state::ProcessStatus;
use crate::logs::LogCounters;
use crate::outcome::Signal;

/// Verbs mirror `systemctl`: `start`, `stop`, `restart`, plus `kill`.
/// Each returns a [`Ticket`] to await, or to drop when the outcome does
/// not matter.
#[derive(Clone, Debug)]
pub struct Handle {
    id: Arc<str>,
    tx: inbox::Sender<Command>,
    status: bulletin::Receiver<ProcessStatus>,
    log: Arc<LogCounters>,
    /// The current run's leader, for the manager's stop pass.
    leader: Arc<Leader>,
}

impl Handle {
    pub(crate) fn new(
        id: &str,
        tx: inbox::Sender<Command>,
        status: bulletin::Receiver<ProcessStatus>,
        log: Arc<LogCounters>,
    ) -> Handle {
        Handle {
            id: id.into(),
            tx,
            status,
            log,
            leader: Arc::default(),
        }
    }

    /// A handle for the task of process `id`, and what that task keeps:
    /// the receiver of the commands and the sender of its status (which
    /// starts `registered`).
    pub(crate) fn with_task(
        id: &str,
        log: Arc<LogCounters>,
    ) -> (
        Handle,
        inbox::Receiver<Command>,
        bulletin::Sender<ProcessStatus>,
    ) {
        let (tx, rx) = inbox::inbox();
        let (status_tx, status_rx) = bulletin::bulletin(ProcessStatus::new(id));
        (Handle::new(id, tx, status_rx, log), rx, status_tx)
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn start(&self) -> Ticket {
        self.send(Command::Start)
    }

    pub fn stop(&self) -> Ticket {
        self.send(Command::Stop)
    }

    /// From the manager's stop of every process, just before
    /// [`Handle::stop`]: the stop signal to the running leader now, from
    /// the caller, unless it was sent already (see `leader.rs`); the task
    /// does the rest once the stop command reaches it.
    pub(crate) fn stop_now(&self) {
        self.leader.stop_now();
    }

    /// What the task shares with its handles of its run's leader.
    pub(super) fn leader(&self) -> &Arc<Leader> {
        &self.leader
    }

    pub fn restart(&self) -> Ticket {
        self.send(Command::Restart)
    }

    /// Sends `signal` to the running process, or (`tree`) to every process
    /// of its tree, as `systemctl kill` does; an error when none runs.
    pub fn signal(&self, signal: Signal, tree: bool) -> Ticket {
        let (tx, rx) = oneshot::channel();
        self.post(Command::Signal {
            signal,
            tree,
            reply: tx,
        });
        Ticket {
            id: self.id.clone(),
            rx,
        }
    }

    /// The pids of the running tree, the main process first (empty when
    /// nothing runs, or the supervisor has ended).
    pub async fn pids(&self) -> Vec<u32> {
        let (tx, rx) = oneshot::channel();
        self.post(Command::Pids(tx));
        rx.await.unwrap_or_default()
    }

    /// What the running tree uses now, read from its cgroups or `/proc`
    /// (`None` when nothing runs, or the supervisor has ended).
    pub async fn usage(&self) -> Option<super::ResourceUsage> {
        let (tx, rx) = oneshot::channel();
        self.post(Command::Usage(tx));
        rx.await.ok().flatten()
    }

    /// What the process has written and lost to its log so far.
    pub fn log_counters(&self) -> &LogCounters {
        &self.log
    }

    /// SIGKILL to the whole tree, at once.
    pub fn kill(&self) {
        self.post(Command::Kill);
    }

    /// Starts looking for an unmanaged process (the manager has started);
    /// resolves after the first look. Does nothing for a managed one.
    pub(crate) fn monitor(&self) -> Ticket {
        self.send(Command::Monitor)
    }

    /// Gives the process the dependencies each of its launches waits for
    /// (replacing any it had).
    pub(crate) fn depend_on(&self, upstreams: Vec<super::Upstream>) {
        self.post(Command::DependOn(upstreams));
    }

    /// Ends the supervisor task, after stopping what runs.
    pub(crate) fn exit(&self) {
        self.post(Command::Exit);
    }

    /// New settings that apply without a new run (see `reconfigure.rs`);
    /// returns once applied.
    pub(crate) async fn reconfigure(&self, cfg: std::sync::Arc<crate::config::ProcessConfig>) {
        let (tx, rx) = oneshot::channel();
        if self.post(Command::Reconfigure(cfg, tx)) {
            let _ = rx.await;
        }
    }

    /// Lets go of the running process without stopping it (its state
    /// file written, for the next manager to re-attach) and ends the
    /// supervisor; returns when done.
    pub(crate) async fn detach(&self) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self.post(Command::Detach(tx)) {
            let _ = rx.await;
        }
    }

    /// The current state with diagnostics.
    pub fn status(&self) -> ProcessStatus {
        let mut s = self.status.borrow().clone();
        s.log_dropped = self.log.dropped();
        s
    }

    /// A receiver that sees every state this process publishes.
    pub fn subscribe(&self) -> bulletin::Receiver<ProcessStatus> {
        self.status.clone()
    }

    /// Queues `cmd` for the task; `false` when the task is gone.
    fn post(&self, cmd: Command) -> bool {
        self.tx.send(cmd)
    }

    fn send(&self, make: fn(oneshot::Sender<Result<(), CommandError>>) -> Command) -> Ticket {
        let (tx, rx) = oneshot::channel();
        // If the task is gone the ticket resolves to `Gone`.
        self.post(make(tx));
        Ticket {
            id: self.id.clone(),
            rx,
        }
    }
}

/// The pending outcome of a command.
#[derive(Debug)]
pub struct Ticket {
    id: Arc<str>,
    rx: oneshot::Receiver<Result<(), CommandError>>,
}

impl Future for Ticket {
    type Output = Result<(), CommandError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let id = self.id.clone();
        Pin::new(&mut self.rx)
            .poll(cx)
            .map(|r| r.unwrap_or_else(|_| Err(CommandError::Gone(id.to_string()))))
    }
}
