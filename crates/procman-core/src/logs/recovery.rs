//! A process log's side for spools: opening them with the file at the
//! start of a run (repairing the file the first time after the manager
//! started), writing what they hold of an earlier run, and raw output
//! spliced straight into the file. See the parent module and
//! [`journal`](crate::logs::journal).

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::Ordering;
use std::sync::{Arc, MutexGuard};

use super::ProcessLog;
use crate::logs::feed;
use crate::logs::journal;
use crate::logs::ledger::Ledger;
use crate::logs::record::Stream;
use crate::logs::repair;
use crate::logs::rotate::{Relay, RotatingFile, RunStream};

impl ProcessLog {
    /// Raw format without rotation: moves up to `max` bytes from `pipe`
    /// straight into the file, relayed when the pipe holds a flood (see
    /// [`RotatingFile::splice_from`] and [`RotatingFile::relay_from`];
    /// the relay in `relay`, a scratch set's, is made then); with
    /// `readback`, reads them back into `bufs.0`. A round a crash
    /// interrupted is settled first (with the buffers). Blocking.
    pub(crate) fn splice_file(
        &self,
        pipe: BorrowedFd<'_>,
        max: usize,
        who: RunStream,
        relay: &mut Option<std::io::Result<Relay>>,
        bufs: (&mut Vec<u8>, &mut Vec<u8>),
        readback: bool,
    ) -> std::io::Result<usize> {
        let file = self.file.as_ref().ok_or(std::io::ErrorKind::Unsupported)?;
        let mut open = file.lock();
        let Some(f) = open.as_mut() else {
            return Err(std::io::ErrorKind::Unsupported.into());
        };
        if f.unsettled().is_some() {
            let armed = self.take_armed();
            let pipe = armed.as_deref().map(AsFd::as_fd);
            if let Err(e) = f.settle(pipe, Relay::lazy(relay), (&mut *bufs.0, &mut *bufs.1)) {
                tracing::warn!(process = %self.id, error = %e,
                    "cannot settle the round a crash interrupted; its bytes may appear twice");
            }
        }
        let readback = readback.then_some(bufs.0);
        if let Some(j) = self.journal.as_ref().filter(|_| f.relays(pipe)) {
            if let Some(relay) = Relay::lazy(relay) {
                f.relaying(|| Ledger::new(j.ledger_path(&self.id)));
                return f.relay_from(pipe, relay, who, readback);
            }
        }
        f.splice_from(pipe, max, readback)
    }

    /// The spool of `stream` for this run, when output goes through one.
    pub(crate) fn spool(&self, stream: Stream) -> Option<journal::Shared> {
        self.journal.as_ref()?.spool(stream)
    }

    /// Counts a stream that reads its pipe directly from now on.
    pub(crate) fn fall_back(&self, what: &str, error: &dyn std::fmt::Display) {
        match &self.journal {
            Some(j) => j.fall_back(&self.id, what, error, &self.counters),
            None => {
                self.counters
                    .spool_fallbacks
                    .fetch_add(1, Ordering::Relaxed);
                tracing::warn!(process = %self.id, %error, "{what}; reading the output directly");
            }
        }
    }

    /// Opens what a run writes to: the file (at its first write) and the
    /// spools, repairing the file first if this is the first time since
    /// the manager started; `resume`: the run re-attached, if it is. Blocking.
    pub(super) fn open_run(&self, resume: Option<(u32, u32)>) {
        let Some(file) = &self.file else { return };
        let mut open = file.lock();
        let mut interrupted = None;
        if let Some(j) = &self.journal {
            interrupted = j.interrupted(&self.id, resume);
            let rotation = file.rotation.map(|(_, n)| n);
            j.open(
                &self.id,
                [self.capture_stdout, self.capture_stderr],
                |last| repair::repair(&file.path, rotation, last),
                &self.counters,
            );
        }
        if open.is_none() {
            let mut f = RotatingFile::lazy(&file.path, file.rotation).with_reopen(&file.reopen);
            if self.raw_unrotated() {
                f = f.positioned();
                // A round a crash interrupted is settled by the first
                // round; without one, the ledger is made at the first flood.
                if let (Some(j), Some(_)) = (&self.journal, interrupted) {
                    f = f.relayed(Ledger::new(j.ledger_path(&self.id)), interrupted);
                }
                self.want_armed(interrupted.map(|r| r.stream));
            }
            *open = Some(f);
        }
    }

    /// Writes what the spools hold of an earlier run (as its last lines)
    /// unless it is run `keep`, and says that what they take from now on
    /// is run `now`. Blocking.
    pub(super) fn settle_spools(
        &self,
        keep: Option<(u32, u32)>,
        now: Option<(u32, u32)>,
    ) -> Option<(u32, u32)> {
        let journal = self.journal.as_ref()?;
        let mut found = None;
        for stream in [Stream::Stdout, Stream::Stderr] {
            let Some(shared) = journal.spool(stream) else {
                continue;
            };
            let held = {
                let spool = journal::lock(&shared);
                let cp = spool.checkpoint();
                Some((cp.pid, cp.run))
            };
            if keep.is_none() || held != keep {
                match feed::finish_backlog(self, stream, &shared) {
                    Ok(Some(run)) => found = found.or(Some(run)),
                    Ok(None) => {}
                    Err(e) => {
                        tracing::warn!(process = %self.id, stream = stream.as_str(), error = %e,
                        "cannot write what the log spool holds")
                    }
                }
            }
            if let Some((pid, run)) = now {
                if let Err(e) = journal::lock(&shared).set_run(pid, run) {
                    self.fall_back("cannot write a log spool's checkpoint", &e);
                }
            }
        }
        found
    }

    /// After a crash of the manager, for a process that will not be
    /// re-attached: opens its file and writes what its spools still hold,
    /// as the last lines of the run they came from. Returns that run's
    /// `(pid, run)` if there was anything. Blocking.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn recover_blocking(&self) -> Option<(u32, u32)> {
        self.open_run(None);
        self.settle_spools(None, None)
    }

    fn armed(&self) -> MutexGuard<'_, Armed> {
        self.armed.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The round a crash interrupted came from `stream` (or none did).
    pub(super) fn want_armed(&self, stream: Option<Stream>) {
        *self.armed() = stream.map_or(Armed::None, Armed::Wanted);
    }

    /// A re-attached run's pipe of `stream`: kept for settling when the
    /// round a crash interrupted came from it.
    pub(crate) fn arm(&self, stream: Stream, pipe: &Arc<OwnedFd>) {
        let mut armed = self.armed();
        if matches!(*armed, Armed::Wanted(s) if s == stream) {
            *armed = Armed::Found(pipe.clone());
        }
    }

    /// The pipe kept for settling, if one was found; none is kept after.
    pub(super) fn take_armed(&self) -> Option<Arc<OwnedFd>> {
        match std::mem::take(&mut *self.armed()) {
            Armed::Found(pipe) => Some(pipe),
            _ => None,
        }
    }
}

/// The pipe of a round a crash interrupted: wanted (its stream), found
/// (re-attached), or not needed.
#[derive(Debug, Default)]
pub(super) enum Armed {
    #[default]
    None,
    Wanted(Stream),
    Found(Arc<OwnedFd>),
}
