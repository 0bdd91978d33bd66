//! The manager: the registry of supervisors and the library API of the
//! spec (`start`, `stop`, `start_process`, `stop_process`,
//! `restart_process`, `manager_state`, `process_states`).
//!
//! It holds the state directory's lock, makes the process a child
//! subreaper, creates the cgroup that holds its processes' trees, starts
//! every enabled process concurrently and stops them all in parallel
//! within `force_shutdown_timeout`.

mod completion;
mod control;
mod order;
mod plan;
mod registry;
mod reload;
mod resources;
mod resume;
mod roster;

pub use completion::{judge, Completion};
pub use control::Control;
pub use plan::{Change, ManagerChange, Plan};
pub use registry::{Manager, ManagerError, ManagerState, Options};
pub use reload::ReloadError;

#[cfg(test)]
#[path = "tests/embedded.rs"]
mod embedded_tests;

#[cfg(test)]
#[path = "tests/control.rs"]
mod control_tests;

#[cfg(test)]
#[path = "tests/plan.rs"]
mod plan_tests;
