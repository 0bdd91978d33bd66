//! Supervision: one tokio task per process, reached through a [`Handle`].
//!
//! The task owns its child, its timers and its [`Lifecycle`]; callers send
//! it commands and read its [`ProcessStatus`] from a `watch` channel. The
//! restart decisions themselves are pure functions in [`crate::policy`].

mod ending;
mod event;
mod handle;
mod launch;
mod messages;
mod monitor;
mod persist;
mod reattach;
mod resources;
mod run;
mod state;
mod task;

pub use event::{Event, Events};
pub use handle::{Handle, Ticket};
pub use messages::CommandError;
pub(crate) use reattach::Resume;
pub use state::{
    Cause, HealthStatus, Lifecycle, Phase, ProcessStatus, ResourceUsage, RestartCauses, Transition,
};
pub(crate) use task::spawn;
pub use task::Context;

#[cfg(test)]
#[path = "tests/pressure.rs"]
mod pressure_tests;

#[cfg(test)]
#[path = "tests/orphaned.rs"]
mod orphaned_tests;

#[cfg(test)]
#[path = "tests/violations.rs"]
mod violation_tests;
