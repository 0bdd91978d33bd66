//! Going on where an earlier manager left off: re-attaching to the run it
//! started (the same process, its pipes, its cgroup), or applying the
//! restart policy to a run that ended while no manager was running; and
//! detaching, so that the next manager can do so.

use std::os::fd::OwnedFd;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::launch;
use super::monitor::Monitor;
use super::persist::{self, RunFacts};
use super::run::{HealthWatch, Run};
use super::state::{Cause, Lifecycle, RestartCauses};
use super::task::Task;
use crate::logs::{capture, Stream};
use crate::outcome::ProcessEnd;
use crate::platform::adopt::{self, Adopted};
use crate::policy::{self, Breaker};
use crate::state::record::{HeldPipe, ProcessRecord};

/// What a new manager found of a process in its state file.
pub(crate) enum Resume {
    /// Its run is still going: adopt it.
    Adopt {
        adopted: Adopted,
        record: ProcessRecord,
        /// Found by its pipes (see `manager/resume.rs`): its log has no
        /// line of this run yet, not even the separator.
        unnamed: bool,
    },
    /// Its run ended while no manager ran: how, if it could be read.
    Lost {
        end: ProcessEnd,
        record: ProcessRecord,
    },
}

impl Resume {
    pub(crate) fn adopts(&self) -> bool {
        matches!(self, Resume::Adopt { .. })
    }
}

impl Task {
    /// Restores the counters of the state file, then re-attaches, or lets
    /// the restart policy judge the run that ended unseen.
    pub(super) async fn resume(&mut self, resume: Resume) {
        let record = match &resume {
            Resume::Adopt { record, .. } | Resume::Lost { record, .. } => record,
        };
        let breaker = &record.breaker;
        self.breaker = Breaker::restore(
            breaker.recent_restarts,
            breaker.attempt,
            &self.cfg.restart,
            Instant::now(),
        );
        let started_at = record
            .started_at_ms
            .map(|ms| UNIX_EPOCH + Duration::from_millis(ms));
        let causes = RestartCauses::restore(&record.restart_causes);
        let (runs, restarts) = (record.run, record.restarts);
        self.status.send_modify(|s| {
            s.runs = runs;
            s.restarts = restarts;
            s.restart_causes = causes;
            s.started_at = started_at;
        });
        let uptime = started_at
            .and_then(|t| SystemTime::now().duration_since(t).ok())
            .unwrap_or_default();
        match resume {
            Resume::Adopt {
                adopted,
                record,
                unnamed,
            } => self.reattach(adopted, record, uptime, unnamed).await,
            Resume::Lost { end, record } => {
                tracing::warn!(process = %self.id(), pid = record.pid, %end,
                    "the process ended while no manager was running; the restart policy decides");
                self.state_file.remove();
                // What the run wrote that the last manager had taken from
                // its pipes but not yet written goes to its log now.
                if let Some((pid, run)) = capture::recover(&self.log).await {
                    let cause = Cause::EndedUnsupervised(end);
                    self.record_end(pid, run, Some(end), &cause, uptime, false)
                        .await;
                }
                let outcome = policy::classify(end, &self.cfg.control.success_exit_codes);
                self.status.send_modify(|s| s.last_exit = Some(end));
                self.apply_policy(Some(end), Cause::EndedUnsupervised(end), outcome, uptime)
                    .await;
            }
        }
    }

    /// Supervises the run an earlier manager started, as if this manager
    /// had spawned it: its exit (through its pidfd), its output (the pipes
    /// it holds), its health checks and limits.
    async fn reattach(
        &mut self,
        adopted: Adopted,
        record: ProcessRecord,
        uptime: Duration,
        unnamed: bool,
    ) {
        let Adopted { child, exit } = adopted;
        let pid = child.pid();
        let mut readers: Vec<(Stream, OwnedFd)> = Vec::new();
        for held in &record.pipes {
            let Some(stream) = Stream::parse(&held.stream) else {
                continue;
            };
            match adopt::reopen_pipe(pid, held.fd, held.inode) {
                Ok(fd) => readers.push((stream, fd)),
                Err(e) => tracing::warn!(process = %self.id(), pid, stream = %held.stream,
                    error = %e, "cannot find the process's output pipe again; that output is no longer captured"),
            }
        }
        let limits = &self.cfg.resource_limits;
        let enforcement = self.tree.limit(&limits.kernel());
        let oom = self.tree.oom_watch();
        let cpu_base = self.tree.cpu_usec().unwrap_or(0);
        self.status
            .send_modify(|s| s.enforcement = enforcement.clone());
        let number = record.run;
        if unnamed {
            // The earlier manager died before the run's separator: this
            // run begins in the log here, as a spawn's does.
            self.log.run_started(pid, number).await;
        } else {
            self.log.run_resumed(pid, number).await;
        }
        let pumps = capture::start(&self.log, readers, pid, number);
        let port = record.port;
        let env = launch::spec(&self.cfg, &self.ctx.config_dir, port)
            .map(|s| s.env)
            .unwrap_or_default();
        let health = launch::health_check(&self.cfg).and_then(|hc| {
            let target =
                launch::probe_target(&self.cfg, &self.ctx.config_dir, child.id(), port, env);
            let mut watch = HealthWatch::start(&self.cfg.id, hc, &target)?;
            watch.assume_ready();
            Some(watch)
        });
        let now = Instant::now();
        self.run = Some(Run {
            child,
            number,
            exit,
            started: now.checked_sub(uptime).unwrap_or(now),
            pumps,
            health,
            oom: oom.map(Box::new),
            monitor: Monitor::new(limits, &enforcement).map(Box::new),
            cpu_base,
            cpu_last: (now, cpu_base),
        });
        let config_changed = record.config_hash != persist::hash_text(self.config_digest());
        if config_changed {
            tracing::warn!(process = %self.id(), pid,
                "re-attached, but its configuration changed since it started; restart it to apply the new one");
        }
        self.go(
            Lifecycle::Running { pid },
            Cause::Reattached { config_changed },
        );
        // What this run holds, for the state file this manager writes (at
        // once, and again if it detaches in turn).
        self.held_pipes = record.pipes;
        self.port = port;
        self.save_record(self.held_pipes.clone(), port);
    }

    /// Writes the state file of the current run.
    pub(super) fn save_record(&self, pipes: Vec<HeldPipe>, port: Option<u16>) {
        if let Some(record) = self.current_record(pipes, port) {
            self.state_file.save(&record);
        }
    }

    fn current_record(&self, pipes: Vec<HeldPipe>, port: Option<u16>) -> Option<ProcessRecord> {
        let run = self.run.as_ref()?;
        let status = self.status.borrow();
        Some(persist::record(
            &self.cfg,
            self.config_digest(),
            &status,
            &self.breaker,
            RunFacts {
                pid: Some(run.pid()),
                cgroup: self.tree.cgroup(),
                pipes,
                port,
            },
        ))
    }

    /// Lets go of the run without stopping it (the manager detaches for an
    /// upgrade): every line read so far is written, the state file is on
    /// disk, and the process, its pipes and its cgroup are left as they
    /// are for the next manager.
    pub(super) async fn detach(&mut self) {
        self.backoff = None;
        self.startup_deadline = None;
        let record = self.current_record(self.held_pipes.clone(), self.port);
        // Dropped without a signal: the child is not ours to stop now.
        let Some(mut run) = self.run.take() else {
            return;
        };
        // The pumps stop between two reads: what they have not read stays
        // in the pipes (or in the spool), for the next manager.
        if let Some(pump) = run.pumps.take() {
            pump.abort();
            let _ = pump.await;
        }
        drop(run);
        if let Some(record) = record {
            self.state_file.save_now(record).await;
        }
        self.log.run_ended(None, true).await;
        self.detached = true;
        tracing::info!(process = %self.id(), "detached; the process keeps running");
    }
}
