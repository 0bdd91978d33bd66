//! The manager: the registry of supervisors and the library API of the
//! spec (`start`, `stop`, `start_process`, `stop_process`,
//! `restart_process`, `manager_state`, `process_states`).
//!
//! It holds the state directory's lock, makes the process a child
//! subreaper, creates the cgroup that holds its processes' trees, starts
//! every enabled process concurrently and stops them all in parallel
//! within `force_shutdown_timeout`.

mod control;
mod order;
mod registry;
mod resources;
mod resume;

pub use control::Control;
pub use registry::{Manager, ManagerError, ManagerState, Options};

#[cfg(test)]
#[path = "tests/embedded.rs"]
mod embedded_tests;

#[cfg(test)]
#[path = "tests/control.rs"]
mod control_tests;
