//! One aggregation target's queue: bounded in bytes, never waited for by
//! the pumps that fill it, drained by the target's writer thread; and the
//! target's counters of what it dropped.
//!
//! The lock is only held to move a batch in or out, never across I/O.
//! Dropping is counted and reported once per episode: a warning when the
//! first batch is dropped, an info line with the count when a batch fits
//! again.

use std::collections::VecDeque;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};

/// What a target has lost so far, and what it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetStats {
    /// `file PATH`, `process_manager_stdout` or `process_manager_stderr`.
    pub name: String,
    /// Records dropped: the queue was full, or writing failed.
    pub dropped_records: u64,
    pub dropped_bytes: u64,
    /// Bytes (allocated) of the batches waiting in the queue now.
    pub queued_bytes: u64,
}

/// Formatted records for one target, from one chunk.
#[derive(Debug)]
pub(super) struct Batch {
    pub(super) bytes: Vec<u8>,
    pub(super) records: u64,
}

#[derive(Debug, Default)]
struct Line {
    batches: VecDeque<Batch>,
    /// Allocated bytes of the queued batches (what the memory bound counts).
    queued: usize,
    /// Length of the batch the writer is writing now.
    in_flight: usize,
    closed: bool,
}

/// One target's queue and counters, shared by the pumps and its thread.
#[derive(Debug)]
pub(super) struct Queue {
    pub(super) name: String,
    cap: usize,
    line: Mutex<Line>,
    wake: Condvar,
    dropped_records: AtomicU64,
    dropped_bytes: AtomicU64,
    /// Set while batches are being dropped; with the counts at its start.
    dropping: AtomicBool,
    episode: Mutex<(u64, u64)>,
}

impl Queue {
    pub(super) fn new(name: String, cap: usize) -> Queue {
        Queue {
            name,
            cap,
            line: Mutex::new(Line::default()),
            wake: Condvar::new(),
            dropped_records: AtomicU64::new(0),
            dropped_bytes: AtomicU64::new(0),
            dropping: AtomicBool::new(false),
            episode: Mutex::new((0, 0)),
        }
    }

    /// The lock is only ever held to move a batch in or out, never across
    /// I/O, so a poisoned one (a panic elsewhere) is still consistent.
    fn line(&self) -> MutexGuard<'_, Line> {
        self.line.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `batch`, or drops and counts it when the queue is full or
    /// closed. Never waits.
    pub(super) fn push(&self, batch: Batch) {
        let size = batch.bytes.capacity();
        let mut line = self.line();
        let fits = line.batches.is_empty() || line.queued + size <= self.cap;
        if line.closed {
            // Only a pump the drain gave up on can still push: count it.
            drop(line);
            self.count_drop(batch.records, batch.bytes.len());
            return;
        }
        if !fits {
            drop(line);
            // Counted first: the episode starts after this batch's drop.
            let before = self.dropped();
            self.count_drop(batch.records, batch.bytes.len());
            if !self.dropping.swap(true, Ordering::Relaxed) {
                *self.episode.lock().unwrap_or_else(|p| p.into_inner()) = before;
                tracing::warn!(log_target = %self.name, queue_bytes = self.cap,
                    "log target falls behind; dropping its lines until it catches up (each process's own file still gets every line)");
            }
            return;
        }
        line.queued += size;
        line.batches.push_back(batch);
        drop(line);
        self.wake.notify_one();
        if self.dropping.load(Ordering::Relaxed) && self.dropping.swap(false, Ordering::Relaxed) {
            let (records, bytes) = *self.episode.lock().unwrap_or_else(|p| p.into_inner());
            let (now_records, now_bytes) = self.dropped();
            tracing::info!(log_target = %self.name, dropped_records = now_records - records,
                dropped_bytes = now_bytes - bytes, "log target caught up");
        }
    }

    pub(super) fn count_drop(&self, records: u64, bytes: usize) {
        self.dropped_records.fetch_add(records, Ordering::Relaxed);
        self.dropped_bytes
            .fetch_add(bytes as u64, Ordering::Relaxed);
    }

    fn dropped(&self) -> (u64, u64) {
        (
            self.dropped_records.load(Ordering::Relaxed),
            self.dropped_bytes.load(Ordering::Relaxed),
        )
    }

    /// The next batch to write; `None` once closed and empty. Blocks (on
    /// the writer thread only).
    pub(super) fn next(&self) -> Option<Batch> {
        let mut line = self.line();
        line.in_flight = 0;
        loop {
            if let Some(b) = line.batches.pop_front() {
                line.queued -= b.bytes.capacity();
                line.in_flight = b.bytes.len();
                return Some(b);
            }
            if line.closed {
                return None;
            }
            line = self.wake.wait(line).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Bytes not written yet: the batch being written and the queue.
    pub(super) fn held(&self) -> u64 {
        let line = self.line();
        let queued: usize = line.batches.iter().map(|b| b.bytes.len()).sum();
        (line.in_flight + queued) as u64
    }

    pub(super) fn close(&self) {
        self.line().closed = true;
        self.wake.notify_all();
    }

    pub(super) fn stats(&self) -> TargetStats {
        let (dropped_records, dropped_bytes) = self.dropped();
        TargetStats {
            name: self.name.clone(),
            dropped_records,
            dropped_bytes,
            queued_bytes: self.line().queued as u64,
        }
    }
}

/// A writer thread's loop: every batch, in order; a failed write is
/// counted as dropped and reported once until a write succeeds again.
pub(super) fn write_queued(q: &Queue, mut out: Box<dyn Write + Send>) {
    let mut failing = false;
    while let Some(batch) = q.next() {
        match out.write_all(&batch.bytes).and_then(|()| out.flush()) {
            Ok(()) if failing => {
                failing = false;
                tracing::info!(log_target = %q.name, "log target writable again");
            }
            Ok(()) => {}
            Err(e) => {
                q.count_drop(batch.records, batch.bytes.len());
                if !failing {
                    failing = true;
                    tracing::error!(log_target = %q.name, error = %e,
                        "cannot write a log target; counting what is lost until it works again");
                }
            }
        }
    }
}
