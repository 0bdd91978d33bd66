//! How a run ends: on its own (an exit), because its health check or
//! `startup_timeout` says so, or because it was asked to stop; what is left
//! of its tree is stopped, everything it wrote is read, and the restart
//! policy decides what comes next.

use std::time::{Duration, Instant, SystemTime};

use super::messages::{Command, CommandError};
use super::run::{drain, exit_of, Ended, Run};
use super::spawning::Previous;
use super::state::{Cause, Lifecycle};
use super::task::{until, Task};
use crate::config::RestartStrategy;
use crate::health::probe::ProbeOutcome;
use crate::health::verdict::Change;
use crate::logs::record::Ending;
use crate::outcome::ProcessEnd;
use crate::policy::{self, RunEnd};

/// What the restart policy says of a run that ended.
enum Verdict {
    /// No restart: `exited` or `failed`, by the outcome.
    Stay(policy::Outcome),
    /// Too many restarts within the breaker's window: `failed`.
    BreakerOpen { restarts: u32, window: Duration },
    /// `backoff`, for `delay` (zero: at once).
    Restart { attempt: u32, delay: Duration },
}

/// What follows the end of a run.
enum After {
    /// The restart policy judges the outcome.
    Policy(policy::Outcome),
    /// A state decided already (`on_violation: stop`).
    Go(Lifecycle),
}

/// How long processes may survive a SIGKILL (uninterruptible sleep) before
/// the supervisor reports them and moves on.
const AFTER_KILL: Duration = Duration::from_secs(5);

/// The shortest wait before retrying a spawn that failed (systemd's
/// default `RestartSec`), whatever `restart_delay` says.
const SPAWN_RETRY_MIN: Duration = Duration::from_millis(100);

impl Task {
    /// The run ended on its own: clean up what it left, then ask the policy.
    pub(super) async fn on_exit(&mut self, end: ProcessEnd) {
        let Some(mut run) = self.run.take() else {
            return;
        };
        if self.leader.stopped(run.number) {
            // The manager's stop pass signalled it and its stop command is
            // on its way: a stop, heard first as this exit. The run goes
            // back with its end, for the stop to find.
            let (tx, rx) = tokio::sync::oneshot::channel();
            let _ = tx.send(end);
            run.exit = rx;
            self.run = Some(run);
            self.pass_stop = true;
            return self.stop(Cause::StopRequested).await;
        }
        // A kill by the OOM killer is a failure with its own cause, even
        // when the exit is heard before the cgroup's event.
        let (cause, outcome) = if run.oom_killed() {
            self.status.send_modify(|s| s.oom_kills += 1);
            (Cause::Oom, policy::Outcome::Failure)
        } else {
            let outcome = policy::classify(end, &self.cfg.control.success_exit_codes);
            (Cause::Exit(end), outcome)
        };
        let ended = run.ended();
        drop(run);
        self.conclude(ended, Some(end), cause, After::Policy(outcome))
            .await;
    }

    /// The run must end for `cause` (a failed health check, a startup
    /// timeout, an OOM kill in its tree): stop its tree, then ask the
    /// policy, as for a failure.
    pub(super) async fn fail_run(&mut self, cause: Cause) {
        self.end_run(cause, None).await;
    }

    /// Stops the run's tree for `cause`, then goes to `then`, or (`None`)
    /// asks the policy as for a failure.
    pub(super) async fn end_run(&mut self, cause: Cause, then: Option<Lifecycle>) {
        let Some(mut run) = self.run.take() else {
            return;
        };
        tracing::warn!(process = %self.id(), pid = run.pid(), %cause, "ending the run");
        let ended = run.ended();
        let end = self.terminate(Some(run)).await;
        let after = match then {
            Some(state) => After::Go(state),
            None => After::Policy(policy::Outcome::Failure),
        };
        self.conclude(ended, end, cause, after).await;
    }

    /// After a run: stop what it left, read all it wrote, say how it ended,
    /// then apply the restart policy to `outcome`.
    async fn conclude(
        &mut self,
        ended: Ended,
        end: Option<ProcessEnd>,
        cause: Cause,
        after: After,
    ) {
        self.startup_deadline = None;
        let uptime = ended.started.elapsed();
        if end.is_some() {
            self.status.send_modify(|s| s.last_exit = end);
        }
        if !self.tree.is_empty(None).await {
            tracing::info!(process = %self.id(), pid = ended.pid,
                "the process exited and left descendants; stopping them");
            self.terminate(None).await;
        }
        // The policy's verdict first (a stop that arrived meanwhile wins
        // over any restart, and no start request waits).
        let verdict = match after {
            After::Policy(outcome) if self.pending_stop.is_empty() => {
                Some(self.verdict(&cause, outcome, uptime))
            }
            _ => None,
        };
        if let Some(Verdict::Restart { delay, .. }) = &verdict {
            if delay.is_zero() && self.pending_start.is_empty() {
                // Restarted from here, at once: the old run is drained and
                // its end recorded right after the clone (`spawning.rs`).
                // Its state file is kept until the new run's replaces it.
                self.apply_verdict(verdict, end, cause.clone(), false);
                self.backoff = None;
                let previous = Previous {
                    ended,
                    end,
                    cause,
                    uptime,
                };
                let _ = self
                    .launch_after(Cause::PolicyRestart, Some(previous))
                    .await;
                return;
            }
        }
        drain(&self.cfg.id, ended.pumps).await;
        self.record_end(ended.pid, ended.number, end, &cause, uptime, false)
            .await;
        if !self.pending_stop.is_empty() {
            // A stop arrived while we cleaned up: it wins over any restart.
            self.go(Lifecycle::Stopping { pid: None }, Cause::StopRequested);
            self.finish_stop();
            return;
        }
        match after {
            After::Policy(_) => self.apply_verdict(verdict, end, cause, true),
            After::Go(state) => self.go(state, cause),
        }
        if !self.pending_start.is_empty() {
            self.start_pending(Cause::StartRequested).await;
        }
    }

    /// Says how a run ended, with its duration, in the process's log (and
    /// the targets), which it then closes (after an fsync with `sync`), and
    /// in the manager's log.
    pub(super) async fn record_end(
        &self,
        pid: u32,
        number: u32,
        end: Option<ProcessEnd>,
        cause: &Cause,
        uptime: Duration,
        sync: bool,
    ) {
        let ours = |s: crate::outcome::Signal| {
            s == self.cfg.control.shutdown_signal || s == crate::outcome::Signal::KILL
        };
        let how = match (end, cause) {
            (Some(end), Cause::Exit(_)) => end.to_string(),
            // A death by a signal the stop did not send (a crash while
            // stopping) is not the stop's doing.
            (Some(end), Cause::StopRequested) if end.signal().is_some_and(|s| !ours(s)) => {
                format!("{end} (while stopping)")
            }
            (Some(end), cause) => format!("{end} ({cause})"),
            (None, cause) => cause.to_string(),
        };
        let signal = end.and_then(ProcessEnd::signal).map(|s| s.name());
        let ending = Ending {
            how: &how,
            code: end.and_then(ProcessEnd::code),
            signal: signal.as_deref(),
            after: uptime,
        };
        self.log.run_ended(Some((pid, number, ending)), sync).await;
        let after = humantime::format_duration(round_ms(uptime));
        tracing::info!(process = %self.id(), pid, run = number, %after, "run ended: {how}");
    }

    /// The restart policy's verdict on a run that ended (or a spawn that
    /// failed for a passing reason): `exited`, `failed` or `backoff`. A
    /// restart is only ever scheduled here (on the backoff timer, at once
    /// for a zero delay), never started, so this never recurses into a
    /// spawn.
    pub(super) async fn apply_policy(
        &mut self,
        end: Option<ProcessEnd>,
        cause: Cause,
        outcome: policy::Outcome,
        uptime: Duration,
    ) {
        let verdict = self.verdict(&cause, outcome, uptime);
        self.apply_verdict(Some(verdict), end, cause, true);
    }

    /// What the restart policy says of a run that ended: the circuit
    /// breaker counts it here.
    fn verdict(&mut self, cause: &Cause, outcome: policy::Outcome, uptime: Duration) -> Verdict {
        let restart_cfg = &self.cfg.restart;
        if !policy::should_restart(restart_cfg.strategy, self.cfg.profile, outcome) {
            return Verdict::Stay(outcome);
        }
        // Its end ends the manager: a run that ended by itself is not
        // restarted (one ended by a check or a limit still is).
        let by_itself = matches!(
            cause,
            Cause::Exit(_) | Cause::Oom | Cause::SpawnFailed(_) | Cause::EndedUnsupervised(_)
        );
        if self.cfg.shutdown_on_exit && by_itself {
            return Verdict::Stay(outcome);
        }
        match self.breaker.on_failure(restart_cfg, uptime, Instant::now()) {
            RunEnd::Open { restarts, window } => Verdict::BreakerOpen { restarts, window },
            RunEnd::Restart { attempt } => {
                let mut delay = policy::delay(restart_cfg, attempt, fastrand::f64());
                // A spawn that failed made no process: retrying it with no
                // delay at all would only spin.
                if matches!(cause, Cause::SpawnFailed(_)) {
                    delay = delay.max(SPAWN_RETRY_MIN);
                }
                Verdict::Restart { attempt, delay }
            }
        }
    }

    /// Goes to the state `verdict` says (`None`: nothing to apply). With
    /// `drop_record` the state file goes, as always when no process runs;
    /// without, a restart launched at once replaces it.
    fn apply_verdict(
        &mut self,
        verdict: Option<Verdict>,
        end: Option<ProcessEnd>,
        cause: Cause,
        drop_record: bool,
    ) {
        let what = cause.to_string();
        let Some(verdict) = verdict else { return };
        match verdict {
            Verdict::Stay(outcome) => match (outcome, end) {
                (policy::Outcome::Success, Some(end)) => {
                    self.go(Lifecycle::Exited { end }, cause);
                }
                _ => {
                    let why = match self.cfg.restart.strategy {
                        RestartStrategy::Never => "restart strategy never",
                        _ => "shutdown_on_exit: not restarted",
                    };
                    let reason = format!("{what} ({why})");
                    self.go(Lifecycle::Failed { reason }, cause);
                }
            },
            Verdict::BreakerOpen { restarts, window } => {
                let plural = if restarts == 1 { "" } else { "s" };
                let reason = format!(
                    "{what}; {restarts} restart{plural} within {}: circuit breaker open",
                    humantime::format_duration(window)
                );
                self.go(Lifecycle::Failed { reason }, Cause::BreakerOpen);
            }
            Verdict::Restart { attempt, delay } => {
                let until = SystemTime::now() + delay;
                self.transition(Lifecycle::Backoff { until }, cause, drop_record);
                if !delay.is_zero() {
                    tracing::info!(process = %self.id(), attempt = attempt + 1,
                        delay = %humantime::format_duration(round_ms(delay)), "restarting after a delay");
                }
                self.backoff = Some(Instant::now() + delay);
            }
        }
    }

    /// A health check finished: update the diagnostics, then act on what
    /// the verdict says.
    pub(super) async fn on_health(&mut self, outcome: ProbeOutcome) {
        let Some(run) = self.run.as_mut() else { return };
        let pid = run.pid();
        let Some(watch) = run.health.as_mut() else {
            return;
        };
        let change = watch.record(&outcome);
        let diag = watch.diagnostics(&outcome);
        self.status.send_modify(|s| s.health = Some(diag));
        match change {
            Change::Ready => {
                self.startup_deadline = None;
                self.go(Lifecycle::Running { pid }, Cause::Ready);
            }
            // Strategy `never` restarts nothing: the process keeps running,
            // marked unhealthy, and `success_threshold` passes recover it.
            Change::BecameUnhealthy if self.cfg.restart.strategy == RestartStrategy::Never => {
                tracing::warn!(process = %self.id(), pid, detail = %outcome.detail,
                    "unhealthy; restart strategy never: left running");
            }
            Change::BecameUnhealthy => {
                self.fail_run(Cause::HealthCheck(outcome.detail)).await;
            }
            Change::Recovered => {
                tracing::info!(process = %self.id(), pid, "healthy again");
            }
            Change::None => {}
        }
    }

    /// Stops the current run for good: signal, grace, SIGKILL, whole tree.
    pub(super) async fn stop(&mut self, cause: Cause) {
        self.backoff = None;
        self.startup_deadline = None;
        let mut run = self.run.take();
        let ended = run.as_mut().map(Run::ended);
        // The signal first, the transition (logged, published) after: when
        // every process stops at once, each signal leaves without waiting
        // for the bookkeeping of the processes told before it.
        self.send_stop(run.as_ref()).await;
        self.go(
            Lifecycle::Stopping {
                pid: ended.as_ref().map(|e| e.pid),
            },
            cause,
        );
        // The tree's cgroup goes as soon as it is empty (see `await_end`).
        let end = self.await_end(run, true).await;
        if let Some(end) = end {
            self.status.send_modify(|s| s.last_exit = Some(end));
        }
        match ended {
            Some(ended) => {
                let uptime = ended.started.elapsed();
                // Every line the tree wrote is read, written, and on disk.
                drain(&self.cfg.id, ended.pumps).await;
                let cause = Cause::StopRequested;
                self.record_end(ended.pid, ended.number, end, &cause, uptime, true)
                    .await;
            }
            None => self.log.run_ended(None, true).await,
        }
        self.finish_stop();
        self.start_pending(Cause::StartRequested).await;
    }

    pub(super) fn finish_stop(&mut self) {
        self.go(Lifecycle::Stopped, Cause::StopRequested);
        for reply in self.pending_stop.drain(..) {
            let _ = reply.send(Ok(()));
        }
    }

    /// Ends every process of the tree: `shutdown_signal` to the group and
    /// every member, SIGKILL to all that is left after `shutdown_timeout`.
    /// A second stop (or a kill) during the grace period kills at once.
    /// Returns how the leader (`run`) ended, if it was still running.
    pub(super) async fn terminate(&mut self, run: Option<Run>) -> Option<ProcessEnd> {
        self.send_stop(run.as_ref()).await;
        self.await_end(run, false).await
    }

    /// `shutdown_signal` (then SIGCONT) to the leader `run`, its group and
    /// every member of the tree: the first half of [`Task::terminate`].
    async fn send_stop(&mut self, run: Option<&Run>) {
        let signal = self.cfg.control.shutdown_signal;
        // The manager's stop pass may have signalled the leader already.
        let signalled = run.is_some_and(|r| !self.leader.claim(r.number));
        self.tree
            .signal_stop(run.map(|r| &r.child), signal, signalled)
            .await;
    }

    /// Waits until the tree signalled by [`Task::send_stop`] is gone,
    /// killing it after `shutdown_timeout`: the second half of
    /// [`Task::terminate`].
    ///
    /// `release` (a stop): the tree's cgroup is removed as soon as it is
    /// empty, which is also how its emptiness is found (the kernel refuses
    /// to remove a cgroup that holds a process): one read of
    /// `cgroup.events` fewer per process.
    async fn await_end(&mut self, mut run: Option<Run>, release: bool) -> Option<ProcessEnd> {
        let pid = run.as_ref().map(Run::pid);
        let grace = self.cfg.control.shutdown_timeout;
        let mut deadline = Instant::now() + grace;
        let mut killed = false;
        let mut end = None;
        loop {
            if run.is_none()
                && ((release && self.tree.release().await) || self.tree.is_empty(None).await)
            {
                break;
            }
            let leader_gone = run.is_none();
            let kill_now = tokio::select! {
                e = exit_of(&mut run) => {
                    end = Some(e);
                    run = None;
                    false
                }
                _ = self.tree.wait_empty(None, deadline), if leader_gone => false,
                () = until(Some(deadline)) => {
                    if killed {
                        tracing::error!(process = %self.cfg.id, pid,
                            "processes survived SIGKILL; giving up on them");
                        break;
                    }
                    tracing::warn!(process = %self.cfg.id, pid,
                        timeout = %humantime::format_duration(grace),
                        "still running after shutdown_timeout; sending SIGKILL");
                    true
                }
                cmd = self.rx.recv(), if !self.closed => match cmd {
                    // The stop command of the manager's pass, for this
                    // very stop (begun on the exit the pass caused).
                    Some(Command::Stop(reply)) if std::mem::take(&mut self.pass_stop) => {
                        self.pending_stop.push(reply);
                        false
                    }
                    Some(Command::Stop(reply)) => {
                        // The last request wins: a start or restart asked
                        // before this stop will not run.
                        for start in self.pending_start.drain(..) {
                            let _ = start.send(Err(CommandError::Superseded(self.cfg.id.clone())));
                        }
                        self.stops_requested += 1;
                        self.pending_stop.push(reply);
                        true
                    }
                    Some(Command::Kill) => true,
                    Some(Command::Exit) => { self.exiting = true; false }
                    // Stopping already: the stop goes on, and nothing is
                    // left for the next manager.
                    Some(Command::Detach(reply)) => {
                        self.exiting = true;
                        let _ = reply.send(());
                        false
                    }
                    Some(Command::Signal { signal, reply, .. }) => {
                        let sent = match run.as_ref().map(|r| r.child.signal(signal)) {
                            Some(Ok(true)) => Ok(()),
                            Some(Err(e)) => Err(CommandError::SignalFailed(self.cfg.id.clone(), e.to_string())),
                            Some(Ok(false)) | None => Err(CommandError::NotRunning(self.cfg.id.clone())),
                        };
                        let _ = reply.send(sent);
                        false
                    }
                    Some(Command::Pids(reply)) => {
                        let _ = reply.send(self.tree.pids(run.as_ref().map(|r| &r.child)).await);
                        false
                    }
                    Some(Command::Usage(reply)) => {
                        let _ = reply.send(None);
                        false
                    }
                    Some(Command::Start(reply) | Command::Restart(reply)) => {
                        self.pending_start.push(reply);
                        false
                    }
                    Some(Command::Monitor(reply)) => { let _ = reply.send(Ok(())); false }
                    // Stopping: the new settings are for the next run.
                    Some(Command::Reconfigure(cfg, reply)) => {
                        self.reconfigure(cfg);
                        let _ = reply.send(());
                        false
                    }
                    // For the next launch.
                    Some(Command::DependOn(upstreams)) => { self.upstreams = upstreams; false }
                    None => { self.closed = true; false }
                },
            };
            if kill_now && !killed {
                if !deadline_passed(deadline) {
                    tracing::info!(process = %self.cfg.id, pid, "second stop: killing now");
                }
                self.tree.kill_all(run.as_ref().map(|r| &r.child)).await;
                killed = true;
                deadline = Instant::now() + AFTER_KILL;
            }
        }
        end
    }
}

fn deadline_passed(deadline: Instant) -> bool {
    Instant::now() >= deadline
}

/// Durations in logs: milliseconds are enough.
fn round_ms(d: Duration) -> Duration {
    Duration::from_millis(d.as_millis().min(u128::from(u64::MAX)) as u64)
}

// Spawns that fail, and the starts that waited for a stop to finish.
impl Task {
    /// A spawn failed with `reason`: `failed` for good, or (`retry`) a
    /// failed run that the restart policy may retry.
    pub(super) async fn spawn_failed(
        &mut self,
        reason: String,
        retry: bool,
    ) -> Result<(), CommandError> {
        let cause = Cause::SpawnFailed(reason.clone());
        if retry {
            tracing::warn!(process = %self.id(), %reason, "spawn failed; the restart policy decides");
            self.apply_policy(
                None,
                cause,
                policy::Outcome::Failure,
                std::time::Duration::ZERO,
            )
            .await;
        } else {
            self.go(
                Lifecycle::Failed {
                    reason: reason.clone(),
                },
                cause,
            );
        }
        Err(CommandError::StartFailed(self.cfg.id.clone(), reason))
    }

    /// Starts a run for the start or restart requests that arrived while
    /// the task was busy, and answers them.
    pub(super) async fn start_pending(&mut self, cause: Cause) {
        if self.pending_start.is_empty() {
            return;
        }
        self.breaker.reset();
        let result = if self.run.is_some() {
            Ok(())
        } else {
            self.launch(cause).await
        };
        for reply in self.pending_start.drain(..) {
            let _ = reply.send(result.clone());
        }
    }
}
