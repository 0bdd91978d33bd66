//! The status a supervisor publishes, and the readers that follow it.
//!
//! tokio's `watch` would do, but each of its channels holds nine
//! [`Notify`] (eight of them to spread the wakers of many readers over
//! several locks), about 300 bytes beside the value, and a manager holds
//! one channel per process while a process has few readers (its handles,
//! a dependent's gate, an API request waiting for it). This one is the
//! value under a lock, a version and a single [`Notify`].
//!
//! The same contract as `watch`, for what the supervisors use: a reader
//! sees the latest value (`borrow`), and `changed` resolves once a value
//! newer than the last it marked seen was published, or fails once the
//! sender is gone with nothing new. `changed` and `wait_for` are
//! cancel-safe.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use tokio::sync::Notify;

/// A value read from a bulletin; holds its lock: keep it short, and never
/// across an `.await` or a `send_modify` of the same bulletin.
pub type Ref<'a, T> = RwLockReadGuard<'a, T>;

/// The sender is gone, and nothing newer than what was seen is left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Closed;

impl fmt::Display for Closed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the supervisor is gone")
    }
}

impl std::error::Error for Closed {}

/// The low bit of the version: the sender is gone. Each value adds 2.
const CLOSED: u64 = 1;

struct Shared<T> {
    value: RwLock<T>,
    version: AtomicU64,
    /// Woken (every waiter) at each value and when the sender goes.
    notify: Notify,
}

impl<T> Shared<T> {
    fn read(&self) -> Ref<'_, T> {
        self.value.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, T> {
        self.value.write().unwrap_or_else(|e| e.into_inner())
    }
}

/// What the supervisor publishes through.
pub(crate) struct Sender<T>(Arc<Shared<T>>);

/// A reader: the latest value, and a wait for the next one.
pub struct Receiver<T> {
    shared: Arc<Shared<T>>,
    /// The version this reader saw last.
    seen: u64,
}

/// A bulletin holding `value`, which every reader has seen.
pub(crate) fn bulletin<T>(value: T) -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Shared {
        value: RwLock::new(value),
        version: AtomicU64::new(0),
        notify: Notify::new(),
    });
    let rx = Receiver {
        shared: shared.clone(),
        seen: 0,
    };
    (Sender(shared), rx)
}

impl<T> Sender<T> {
    /// Changes the value in place and wakes every reader waiting.
    pub(crate) fn send_modify(&self, modify: impl FnOnce(&mut T)) {
        {
            let mut value = self.0.write();
            modify(&mut value);
            // Under the lock: a reader that reads the value reads the
            // version that goes with it.
            self.0.version.fetch_add(2, Ordering::Release);
        }
        self.0.notify.notify_waiters();
    }

    /// The current value.
    pub(crate) fn borrow(&self) -> Ref<'_, T> {
        self.0.read()
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        self.0.version.fetch_or(CLOSED, Ordering::Release);
        self.0.notify.notify_waiters();
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender").finish_non_exhaustive()
    }
}

impl<T> Receiver<T> {
    /// The latest value, without marking it seen.
    pub fn borrow(&self) -> Ref<'_, T> {
        self.shared.read()
    }

    /// The latest value, marked seen.
    pub fn borrow_and_update(&mut self) -> Ref<'_, T> {
        let Receiver { shared, seen } = self;
        let value = shared.read();
        *seen = shared.version.load(Ordering::Acquire) & !CLOSED;
        value
    }

    /// Resolves once a value newer than the last one seen is published
    /// (and marks it seen); `Err` once the sender is gone with nothing
    /// newer.
    pub async fn changed(&mut self) -> Result<(), Closed> {
        loop {
            // Made before the version is read: a value sent after the
            // read still wakes this wait.
            let notified = self.shared.notify.notified();
            let version = self.shared.version.load(Ordering::Acquire);
            if version & !CLOSED != self.seen {
                self.seen = version & !CLOSED;
                return Ok(());
            }
            if version & CLOSED != 0 {
                return Err(Closed);
            }
            notified.await;
        }
    }

    /// Resolves with the first value, this one or a later one, for which
    /// `ready` is true (and marks it seen); `Err` once the sender is gone
    /// and the last value was not.
    pub async fn wait_for(
        &mut self,
        mut ready: impl FnMut(&T) -> bool,
    ) -> Result<Ref<'_, T>, Closed> {
        let Receiver { shared, seen } = self;
        let shared: &Shared<T> = shared;
        loop {
            let notified = shared.notify.notified();
            let version = {
                let value = shared.read();
                let version = shared.version.load(Ordering::Acquire);
                *seen = version & !CLOSED;
                if ready(&value) {
                    return Ok(value);
                }
                version
            };
            if version & CLOSED != 0 {
                return Err(Closed);
            }
            notified.await;
        }
    }
}

impl<T> Clone for Receiver<T> {
    fn clone(&self) -> Self {
        Receiver {
            shared: self.shared.clone(),
            seen: self.seen,
        }
    }
}

impl<T: fmt::Debug> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver")
            .field("value", &*self.borrow())
            .field("seen", &self.seen)
            .finish()
    }
}

#[cfg(test)]
#[path = "tests/bulletin.rs"]
mod tests;
