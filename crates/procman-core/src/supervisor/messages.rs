//! The vocabulary between a [`Handle`](super::Handle) and its task.

use tokio::sync::oneshot;

use crate::outcome::Signal;

/// Why a command could not be carried out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error("process {0} could not be started: {1}")]
    StartFailed(String, String),
    #[error("process {0} is unmanaged: procman only monitors it, and never starts, stops, restarts or signals it")]
    Unmanaged(String),
    #[error("the supervisor of process {0} has ended")]
    Gone(String),
    #[error("a stop of process {0} arrived while it was restarting; it stays stopped")]
    Superseded(String),
    #[error("process {0} is not running")]
    NotRunning(String),
    #[error("cannot signal process {0}: {1}")]
    SignalFailed(String, String),
}

pub(crate) type Reply = oneshot::Sender<Result<(), CommandError>>;

pub(crate) enum Command {
    /// Start (closing the breaker); replies once spawned or failed.
    Start(Reply),
    /// Stop for good; replies once the whole tree is gone. A second stop
    /// while stopping kills at once.
    Stop(Reply),
    /// Stop, then start; replies once the new run is spawned.
    Restart(Reply),
    /// Send a signal to the running process (`tree`: to every process of
    /// its tree); `NotRunning` when no run is under way.
    Signal {
        signal: Signal,
        tree: bool,
        reply: Reply,
    },
    /// The pids of the running tree, the main process first.
    Pids(oneshot::Sender<Vec<u32>>),
    /// What the running tree uses now (`None` when nothing runs).
    Usage(oneshot::Sender<Option<super::ResourceUsage>>),
    /// SIGKILL the whole tree now (the manager's second signal).
    Kill,
    /// The manager has started: an unmanaged process is looked for from
    /// now on; replies after the first look. Nothing for a managed one.
    Monitor(Reply),
    /// Stop what runs and end the task (the manager's shutdown), whoever
    /// still holds a handle.
    Exit,
    /// New settings that apply to the running process without a new run
    /// (a reload's "changed in place"); replies once applied.
    Reconfigure(
        std::sync::Arc<crate::config::ProcessConfig>,
        oneshot::Sender<()>,
    ),
    /// The dependencies every launch waits for, replacing any before (the
    /// manager wires them after creating every handle, and again after a
    /// reload); a `waiting` process checks them at once.
    DependOn(Vec<super::gate::Upstream>),
    /// Let go of what runs without stopping it, write the state file, and
    /// end the task (the manager detaches); replies when done.
    Detach(oneshot::Sender<()>),
}
