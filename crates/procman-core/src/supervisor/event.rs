//! The transitions of every process of a manager, in the order they
//! happened, for whoever listens (the API's event stream, its journal).

use std::sync::{Arc, Mutex};

use tokio::sync::broadcast;

use super::state::Transition;

/// How many events a slow listener may fall behind before it misses some
/// (it is told how many: `RecvError::Lagged`). The channel holds this many
/// slots from the start, each an `Arc` (an `Event` in each would be
/// 0.4 MiB whether anyone listens or not).
const BACKLOG: usize = 4096;

/// One state transition of one process.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Numbers every event of this manager, from 1, without gaps.
    pub seq: u64,
    pub process: Arc<str>,
    pub transition: Transition,
    /// The process of the run this transition belongs to, if one runs.
    pub pid: Option<u32>,
    /// The number of that run (0 before the first).
    pub run: u32,
}

/// The sender every supervisor of one manager shares.
#[derive(Debug)]
pub struct Events {
    tx: broadcast::Sender<Arc<Event>>,
    /// The last number given, held while its event is sent: two
    /// supervisors publishing at once send in the order of their numbers.
    seq: Mutex<u64>,
}

impl Default for Events {
    fn default() -> Self {
        Events {
            tx: broadcast::channel(BACKLOG).0,
            seq: Mutex::new(0),
        }
    }
}

impl Events {
    /// A receiver of every event from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.tx.subscribe()
    }

    /// A receiver of every event from now on, and the number of the last
    /// event sent before it (0: none): the receiver gets exactly the events
    /// numbered after it.
    pub fn subscribe_after(&self) -> (broadcast::Receiver<Arc<Event>>, u64) {
        let last = self.seq.lock().unwrap_or_else(|p| p.into_inner());
        (self.tx.subscribe(), *last)
    }

    /// Numbers and sends one event; nobody listening is fine.
    pub(crate) fn publish(
        &self,
        process: &Arc<str>,
        transition: Transition,
        pid: Option<u32>,
        run: u32,
    ) {
        let mut last = self.seq.lock().unwrap_or_else(|p| p.into_inner());
        *last += 1;
        let _ = self.tx.send(Arc::new(Event {
            seq: *last,
            process: process.clone(),
            transition,
            pid,
            run,
        }));
    }
}

#[cfg(test)]
#[path = "tests/event.rs"]
mod tests;
