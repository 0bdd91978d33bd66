//! Supervision: one tokio task per process, reached through a [`Handle`].
//!
//! The task owns its child, its timers and its [`Lifecycle`]; callers send
//! it commands and read its [`ProcessStatus`] from a [`bulletin`]. The
//! restart decisions themselves are pure functions in [`crate::policy`].
//! An unmanaged process has a task of its own (`unmanaged.rs`) behind the
//! same handle: it finds and watches the process, and refuses every
//! command that would act on it.

mod bulletin;
mod context;
mod ending;
mod event;
mod gate;
mod handle;
mod inbox;
mod launch;
mod leader;
mod messages;
mod monitor;
mod persist;
mod reattach;
mod reconfigure;
mod resources;
mod run;
mod spawning;
mod state;
mod task;
mod unmanaged;

pub use bulletin::{Closed, Receiver as StatusReceiver, Ref as StatusRef};
pub use context::Context;
pub use event::{Event, Events};
pub(crate) use gate::Upstream;
pub use handle::{Handle, Ticket};
pub(crate) use launch::env_file_readable;
pub use messages::CommandError;
pub(crate) use persist::file_digest;
pub(crate) use reattach::Resume;
pub use state::{
    Cause, HealthStatus, Lifecycle, Phase, ProcessStatus, ResourceUsage, RestartCauses, Transition,
};
pub use unmanaged::LOOK_INTERVAL;

/// Starts the supervisor of `cfg`: the task of a managed process (taking
/// up `resume` first), or the watcher of an unmanaged one (which has
/// nothing to resume). Either waits in `registered` until the manager
/// starts it.
pub(crate) fn spawn(
    cfg: std::sync::Arc<crate::config::ProcessConfig>,
    ctx: std::sync::Arc<Context>,
    log: std::sync::Arc<crate::logs::sink::ProcessLog>,
    resume: Option<Resume>,
) -> (Handle, tokio::task::JoinHandle<()>) {
    match cfg.kind {
        crate::config::ProcessKind::Unmanaged => unmanaged::spawn(cfg, ctx, log),
        _ => task::spawn(cfg, ctx, log, resume),
    }
}

#[cfg(test)]
#[path = "tests/pressure.rs"]
mod pressure_tests;

#[cfg(test)]
#[path = "tests/orphaned.rs"]
mod orphaned_tests;

#[cfg(test)]
#[path = "tests/violations.rs"]
mod violation_tests;
