//! A spawn under way: see [`Flight`].

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, MutexGuard};

use super::reaper::{lock, state, Table};

/// One spawn under way, from the check that its tree takes spawns to the
/// registration of its child, without the table lock held in between: a
/// shared clone returns only once the child has exec'd, and holding the
/// lock that long made every spawn wait for the one before it.
///
/// The clone writes the child's pid into [`Flight::slot`]
/// (`CLONE_PARENT_SETTID`, before the child can run), so the reaper that
/// finds an exit nobody registered can tell a spawn's child, which it
/// leaves until registered, from an orphan.
pub(crate) struct Flight {
    slot: Arc<AtomicI32>,
    landed: bool,
}

impl Flight {
    /// Starts a spawn, unless `refused` (asked under the lock, as
    /// [`wait_for_flights`] is) says the tree takes none.
    pub(crate) fn depart(refused: impl FnOnce() -> bool) -> Option<Flight> {
        let mut table = lock();
        if refused() {
            return None;
        }
        let slot = Arc::new(AtomicI32::new(0));
        table.in_flight.push(slot.clone());
        Some(Flight {
            slot,
            landed: false,
        })
    }

    /// Where the clone writes the child's pid.
    pub(crate) fn slot(&self) -> *mut i32 {
        self.slot.as_ptr()
    }

    /// For a clone that cannot write the pid itself (the legacy `clone`
    /// system call, whose `parent_tid` is the pidfd's): call with the
    /// table lock held from before the clone, so the reaper cannot see
    /// the child's exit before its pid is here.
    pub(crate) fn set(&self, pid: i32) {
        self.slot.store(pid, Ordering::Release);
    }

    /// Ends the flight: the table lock, under which the caller registers
    /// the child (the reaper waits for that before it looks again).
    pub(crate) fn land(mut self) -> MutexGuard<'static, Table> {
        self.landed = true;
        let table = lock();
        finish(table, &self.slot)
    }
}

impl Drop for Flight {
    fn drop(&mut self) {
        if !self.landed {
            drop(finish(lock(), &self.slot));
        }
    }
}

fn finish(
    mut table: MutexGuard<'static, Table>,
    slot: &Arc<AtomicI32>,
) -> MutexGuard<'static, Table> {
    table.in_flight.retain(|s| !Arc::ptr_eq(s, slot));
    if table.awaiting_landing > 0 {
        state().landed.notify_all();
    }
    table
}

/// Waits on the table lock until a flight lands.
pub(super) fn await_landing(mut table: MutexGuard<'static, Table>) -> MutexGuard<'static, Table> {
    table.awaiting_landing += 1;
    let mut table = state()
        .landed
        .wait(table)
        .unwrap_or_else(|p| p.into_inner());
    table.awaiting_landing -= 1;
    table
}

/// Returns once no spawn is under way: with a tree closed first, every
/// child its spawns will ever make is registered by then.
pub(crate) fn wait_for_flights() {
    let mut table = lock();
    while !table.in_flight.is_empty() {
        table = await_landing(table);
    }
}
