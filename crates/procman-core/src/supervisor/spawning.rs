//! Spawning a run: the spec, the output pipes, the state file, the clone,
//! then the run's log and pumps.
//!
//! The state file names the run before the child exists and again as soon
//! as it does: first a record without a pid but with the inodes of the
//! pipes the child will hold (a manager killed during the clone leaves a
//! child the next one finds by them), then, right after the clone and
//! before anything that can be slow (the log file, the exec report), the
//! record with its pid and start time.
//!
//! A restart that is due at once is launched from where the last run's end
//! is handled, before that run's output is drained and its end recorded:
//! that bookkeeping ([`Previous`]) is done right after the clone, still
//! before the new run's first log line, so the old run's lines and end come
//! first in its file.

use std::time::{Duration, Instant, SystemTime};

use super::launch;
use super::messages::CommandError;
use super::monitor::Monitor;
use super::persist::{self, RunFacts};
use super::run::{drain, Ended, HealthWatch, Run};
use super::state::{Cause, Lifecycle, ProcessStatus};
use super::task::Task;
use crate::logs::capture;
use crate::outcome::ProcessEnd;
use crate::platform;

/// A run that ended, whose output is still to be drained and whose end is
/// still to be recorded when the next run is launched.
pub(super) struct Previous {
    pub(super) ended: Ended,
    pub(super) end: Option<ProcessEnd>,
    pub(super) cause: Cause,
    pub(super) uptime: Duration,
}

/// Why a launch made no run.
enum NoRun {
    /// Held back by the gate, or told to end: nothing failed.
    Held(Result<(), CommandError>),
    /// The spawn failed; `retry`: the restart policy may try again.
    Failed { reason: String, retry: bool },
}

impl Task {
    /// Spawns a run, once the gate of its dependencies lets it (see
    /// `gate.rs`): until then the process is `waiting`, and this returns
    /// `Ok` at once. A spawn that fails is a failed run, for the restart
    /// policy to judge, when it fails for a passing reason (a process or
    /// descriptor limit reached) or when it is a restart of a process that
    /// ran before (a deploy may be replacing its executable this very
    /// moment, as systemd's `Restart=always` assumes too). Otherwise (a
    /// first start, by the manager or a user, that cannot work as
    /// configured: a missing executable, a bad directory) the process is
    /// `failed` at once, with the reason. Neither is an error of the
    /// manager.
    pub(super) async fn launch(&mut self, cause: Cause) -> Result<(), CommandError> {
        self.launch_after(cause, None).await
    }

    /// [`Task::launch`] right after the end of a run whose bookkeeping
    /// (`previous`) is still to be done: it is done right after the clone
    /// (or, when no run is spawned, before anything is said of that).
    pub(super) async fn launch_after(
        &mut self,
        cause: Cause,
        mut previous: Option<Previous>,
    ) -> Result<(), CommandError> {
        let outcome = self.spawn_run(&cause, &mut previous).await;
        let kept_record = previous.is_some();
        if let Some(p) = previous {
            self.finish_previous(p).await;
        }
        match outcome {
            Ok(()) => Ok(()),
            Err(no_run) => {
                // The last run's state file was kept for this launch, or
                // this one's was written before a clone that did not
                // happen: no run, nothing to re-attach to.
                if kept_record || !matches!(no_run, NoRun::Held(Ok(()))) {
                    self.state_file.remove();
                }
                match no_run {
                    NoRun::Held(result) => result,
                    NoRun::Failed { reason, retry } => self.spawn_failed(reason, retry).await,
                }
            }
        }
    }

    /// Drains what the run wrote and records how it ended.
    pub(super) async fn finish_previous(&self, p: Previous) {
        drain(&self.cfg.id, p.ended.pumps).await;
        self.record_end(
            p.ended.pid,
            p.ended.number,
            p.end,
            &p.cause,
            p.uptime,
            false,
        )
        .await;
    }

    async fn spawn_run(
        &mut self,
        cause: &Cause,
        previous: &mut Option<Previous>,
    ) -> Result<(), NoRun> {
        self.backoff = None;
        // Told to end (a reload retiring it, the manager's shutdown), or
        // the shutdown has begun (its trees take no more spawns): a start
        // or restart that was under way does not start a run any more.
        if self.exiting || self.tree.is_closed() {
            return Err(NoRun::Held(Err(CommandError::Gone(self.cfg.id.clone()))));
        }
        if self.hold(cause) {
            return Err(NoRun::Held(Ok(())));
        }
        // Why the run before ended, when the gate held this restart.
        let after = self.held.take().and_then(|h| h.after);
        let retry = |transient: bool| transient || *cause == Cause::PolicyRestart;
        let failed = |reason: String, retry: bool| NoRun::Failed { reason, retry };
        let port = launch::port(&self.cfg).map_err(|r| failed(r, retry(false)))?;
        // Read before the spawn reads it: a change in between is seen by
        // the next reload (a restart too many, never one too few).
        let env_file_digest = self
            .cfg
            .control
            .env_file
            .as_deref()
            .and_then(persist::file_digest);
        let mut spec = launch::spec(&self.cfg, &self.ctx.config_dir, port)
            .map_err(|r| failed(r, retry(false)))?;
        let child_env = spec.env.clone();
        let pipes = capture::pipes(&self.log).map_err(|e| {
            let transient = matches!(
                e.raw_os_error(),
                Some(libc::EMFILE | libc::ENFILE | libc::ENOMEM)
            );
            let mut reason = format!("cannot create output pipes: {e}");
            if e.raw_os_error() == Some(libc::EMFILE) {
                reason.push_str(&platform::nofile_hint());
            }
            failed(reason, retry(transient))
        })?;
        spec.stdout = pipes.stdout;
        spec.stderr = pipes.stderr;
        // The child holds the read ends too, so that its pipes outlive the
        // manager (see `adopt.rs`).
        let (copies, held) = persist::held_pipes(&pipes.readers);
        spec.hold = copies;
        // The limits go into the cgroups before the child exists; it joins
        // them before it execs.
        let limits = &self.cfg.resource_limits;
        let enforcement = self.tree.limit(&limits.kernel());
        let oom = self.tree.oom_watch();
        let cpu_base = self.tree.cpu_usec().unwrap_or(0);
        let restart = *cause == Cause::PolicyRestart;
        let next_run = |s: &mut ProcessStatus| {
            s.runs += 1;
            // The last run's checks say nothing of this one.
            s.health = None;
            if restart {
                s.restarts += 1;
                // The transition to `backoff` (or the one before an
                // immediate restart) says why the last run ended.
                let why = after.unwrap_or_else(|| {
                    s.last_transition
                        .as_ref()
                        .map_or("exit", |t| t.cause.kind())
                });
                s.restart_causes.add(why);
            }
            s.started_at = Some(SystemTime::now());
            s.enforcement = enforcement.clone();
            s.env_file_digest = env_file_digest;
        };
        // The record of the run about to be spawned, first without its pid.
        let mut record = {
            let mut next = self.status.borrow().clone();
            next_run(&mut next);
            let facts = RunFacts {
                pid: None,
                cgroup: self.tree.cgroup(),
                pipes: held.clone(),
                port,
            };
            persist::record(&self.cfg, self.config_digest(), &next, &self.breaker, facts)
        };
        self.state_file.save(&record);
        let state_file = &self.state_file;
        let spawned = platform::spawn_then(spec, &self.tree, |pid| {
            record.pid = Some(pid);
            record.start_time = platform::adopt::start_time(pid);
            state_file.save(&record);
        })
        .await
        .map_err(|e| match e {
            // The shutdown began meanwhile: not a failure of the process.
            platform::SpawnError::Closed => {
                NoRun::Held(Err(CommandError::Gone(self.cfg.id.clone())))
            }
            e => failed(e.to_string(), retry(e.is_transient())),
        })?;
        let started = Instant::now();
        // The last run's lines and end go to the log before this run's.
        if let Some(p) = previous.take() {
            self.finish_previous(p).await;
        }
        let (pid, id) = (spawned.child.pid(), spawned.child.id());
        self.status.send_modify(next_run);
        let number = self.status.borrow().runs;
        // Without a cgroup the task lists the tree before any signal: the
        // manager's pass must leave such a run to it.
        match spawned.child.shared_pidfd() {
            Some(fd) if self.tree.cgroup().is_some() => {
                self.leader
                    .started(number, fd, self.cfg.control.shutdown_signal)
            }
            _ => self.leader.clear(),
        }
        // The separator goes first: the pumps only start reading after it.
        self.log.run_started(pid, number).await;
        let pumps = capture::start(&self.log, pipes.readers, pid, number);
        let health = launch::health_check(&self.cfg).and_then(|hc| {
            let target = launch::probe_target(&self.cfg, &self.ctx.config_dir, id, port, child_env);
            HealthWatch::start(&self.cfg.id, hc, &target)
        });
        let gated = health.is_some();
        self.run = Some(Run {
            child: spawned.child,
            number,
            exit: spawned.exit,
            started,
            pumps,
            health,
            oom: oom.map(Box::new),
            monitor: Monitor::new(limits, &enforcement).map(Box::new),
            cpu_base,
            cpu_last: (started, cpu_base),
        });
        self.go(Lifecycle::Starting { pid }, cause.clone());
        self.held_pipes = held;
        self.port = port;
        // Readiness gate: a process with a health check stays `starting`
        // until its first passing check, bounded by `startup_timeout`; one
        // without a check is ready once spawned.
        if gated {
            self.startup_deadline = Some(Instant::now() + self.cfg.control.startup_timeout);
        } else {
            self.go(Lifecycle::Running { pid }, Cause::Ready);
        }
        Ok(())
    }
}
