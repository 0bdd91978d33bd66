//! The transitions of every process of a manager, in the order they
//! happened, for whoever listens (the API's event stream, its journal).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

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
    seq: AtomicU64,
}

impl Default for Events {
    fn default() -> Self {
        Events {
            tx: broadcast::channel(BACKLOG).0,
            seq: AtomicU64::new(0),
        }
    }
}

impl Events {
    /// A receiver of every event from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.tx.subscribe()
    }

    /// Numbers and sends one event; nobody listening is fine.
    pub(crate) fn publish(
        &self,
        process: &Arc<str>,
        transition: Transition,
        pid: Option<u32>,
        run: u32,
    ) {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
        let _ = self.tx.send(Arc::new(Event {
            seq,
            process: process.clone(),
            transition,
            pid,
            run,
        }));
    }
}
