//! The queue of commands from a supervisor's handles to its task.
//!
//! tokio's unbounded channel would do, but every channel of it holds
//! about 800 bytes from its creation (cache-padded ends, a first block of
//! 32 slots), and a manager holds one per process while commands are
//! rare. This one is a locked queue and a [`Notify`]: about 150 bytes, and
//! a few more once a command was ever sent.
//!
//! The same contract: `send` fails once the receiver is gone (and what is
//! queued then is dropped, so that every reply sender in it is dropped
//! too and its ticket resolves); `recv` returns `None` once every sender
//! is gone and the queue is empty. `recv` is cancel-safe: a command is
//! taken only by the poll that returns it.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

struct Shared<T> {
    state: Mutex<State<T>>,
    /// Live senders.
    senders: AtomicUsize,
    /// A command was queued, or the last sender went.
    notify: Notify,
}

struct State<T> {
    queue: VecDeque<T>,
    /// The receiver is gone: nothing is queued any more.
    closed: bool,
}

impl<T> Shared<T> {
    fn state(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub(crate) struct Sender<T>(Arc<Shared<T>>);

pub(crate) struct Receiver<T>(Arc<Shared<T>>);

/// A new, empty queue.
pub(crate) fn inbox<T>() -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            queue: VecDeque::new(),
            closed: false,
        }),
        senders: AtomicUsize::new(1),
        notify: Notify::new(),
    });
    (Sender(shared.clone()), Receiver(shared))
}

impl<T> Sender<T> {
    /// Queues `value`; `false` (and `value` dropped) once the receiver is
    /// gone.
    pub(crate) fn send(&self, value: T) -> bool {
        {
            let mut state = self.0.state();
            if state.closed {
                return false;
            }
            state.queue.push_back(value);
        }
        self.0.notify.notify_one();
        true
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.0.senders.fetch_add(1, Ordering::Relaxed);
        Sender(self.0.clone())
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        if self.0.senders.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.notify.notify_one();
        }
    }
}

impl<T> std::fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender").finish_non_exhaustive()
    }
}

impl<T> Receiver<T> {
    /// The next value; `None` once every sender is gone and nothing is
    /// left.
    pub(crate) async fn recv(&mut self) -> Option<T> {
        loop {
            // A notification after this point is kept for the wait below
            // (`notify_one` leaves a permit when nobody waits yet).
            let notified = self.0.notify.notified();
            if let Some(value) = self.0.state().queue.pop_front() {
                return Some(value);
            }
            if self.0.senders.load(Ordering::Acquire) == 0 {
                // A send cannot come after the last sender: one last look.
                return self.0.state().queue.pop_front();
            }
            notified.await;
        }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let queued = {
            let mut state = self.0.state();
            state.closed = true;
            std::mem::take(&mut state.queue)
        };
        // Dropped outside the lock: a reply sender's drop wakes its ticket.
        drop(queued);
    }
}

#[cfg(test)]
#[path = "tests/inbox.rs"]
mod tests;
