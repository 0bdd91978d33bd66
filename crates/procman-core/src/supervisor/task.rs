//! The supervisor task: one per process. It owns the child, its timers and
//! its state; it hears commands on its own channel and publishes every
//! state on a `watch` channel. Decisions come from [`crate::policy`]; this
//! file only does the I/O around them.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::handle::Handle;
use super::launch;
use super::messages::{Command, CommandError, Reply};
use super::run::{drain, exit_of, next_event, Ended, HealthWatch, Run, RunEvent};
use super::state::{Cause, Lifecycle, Phase, ProcessStatus, Transition};
use crate::config::{ProcessConfig, ProcessKind, RestartStrategy};
use crate::health::probe::ProbeOutcome;
use crate::health::verdict::Change;
use crate::logs::capture;
use crate::logs::sink::ProcessLog;
use crate::outcome::ProcessEnd;
use crate::platform::{self, Tree, TreeRoot};
use crate::policy::{self, Breaker, RunEnd};

/// How long processes may survive a SIGKILL (uninterruptible sleep) before
/// the supervisor reports them and moves on.
const AFTER_KILL: Duration = Duration::from_secs(5);

/// What every supervisor of one manager shares.
#[derive(Debug)]
pub struct Context {
    /// Directory of the config file: the default working directory.
    pub config_dir: PathBuf,
    pub trees: TreeRoot,
}

/// Starts the supervisor of `cfg`, whose log is `log`. It waits in
/// `registered` until started.
pub(crate) fn spawn(
    cfg: Arc<ProcessConfig>,
    ctx: Arc<Context>,
    log: Arc<ProcessLog>,
) -> (Handle, JoinHandle<()>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let (status_tx, status_rx) = watch::channel(ProcessStatus::new(&cfg.id));
    let handle = Handle::new(&cfg.id, tx, status_rx, log.counters.clone());
    let tree = ctx.trees.tree(&cfg.id);
    let task = Task {
        cfg,
        ctx,
        tree,
        log,
        status: status_tx,
        rx,
        run: None,
        backoff: None,
        startup_deadline: None,
        breaker: Breaker::default(),
        pending_stop: Vec::new(),
        pending_start: Vec::new(),
    };
    (handle, tokio::spawn(task.main()))
}

struct Task {
    cfg: Arc<ProcessConfig>,
    ctx: Arc<Context>,
    tree: Tree,
    log: Arc<ProcessLog>,
    status: watch::Sender<ProcessStatus>,
    rx: mpsc::UnboundedReceiver<Command>,
    run: Option<Run>,
    /// When the pending restart is due.
    backoff: Option<Instant>,
    /// When a run that is still `starting` fails (`startup_timeout`).
    startup_deadline: Option<Instant>,
    breaker: Breaker,
    /// Requests that arrived while a tree was being terminated.
    pending_stop: Vec<Reply>,
    pending_start: Vec<Reply>,
}

async fn until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}

impl Task {
    async fn main(mut self) {
        loop {
            tokio::select! {
                cmd = self.rx.recv() => match cmd {
                    Some(cmd) => self.on_command(cmd).await,
                    None => break,
                },
                event = next_event(&mut self.run) => match event {
                    RunEvent::Exit(end) => self.on_exit(end).await,
                    RunEvent::Health(outcome) => self.on_health(outcome).await,
                },
                () = until(self.startup_deadline) => {
                    self.startup_deadline = None;
                    if self.phase() == Phase::Starting {
                        self.fail_run(Cause::StartupTimeout).await;
                    }
                }
                () = until(self.backoff) => {
                    self.backoff = None;
                    let _ = self.launch(Cause::PolicyRestart).await;
                }
            }
        }
        // Every handle is gone: the manager is done with this process.
        if self.run.is_some() {
            self.stop(Cause::StopRequested).await;
        }
        self.tree.remove();
    }

    fn id(&self) -> &str {
        &self.cfg.id
    }

    fn phase(&self) -> Phase {
        self.status.borrow().phase()
    }

    /// Applies a transition if the table allows it, records and logs it.
    fn go(&mut self, to: Lifecycle, cause: Cause) {
        let from = self.phase();
        if !from.can_become(to.phase()) {
            tracing::error!(process = %self.cfg.id, %from, to = %to.phase(), %cause,
                "illegal state transition refused");
            debug_assert!(false, "illegal transition {from} -> {}", to.phase());
            return;
        }
        let pid = to.pid().or(self.run.as_ref().map(|r| r.pid));
        match &to {
            Lifecycle::Failed { reason } => {
                tracing::error!(process = %self.cfg.id, pid, %from, to = "failed", %cause, %reason)
            }
            _ => tracing::info!(process = %self.cfg.id, pid, %from, to = %to.phase(), %cause),
        }
        let transition = Transition {
            from,
            to: to.phase(),
            cause,
            at: SystemTime::now(),
        };
        let breaker = self.breaker.state();
        let log_dropped = self.log.counters.dropped();
        self.status.send_modify(|s| {
            s.log_dropped = log_dropped;
            if let Lifecycle::Failed { reason } = &to {
                s.last_error = Some(reason.clone());
            }
            s.lifecycle = to;
            s.breaker = breaker;
            s.last_transition = Some(transition);
        });
    }

    async fn on_command(&mut self, cmd: Command) {
        if self.cfg.kind == ProcessKind::Unmanaged {
            if let Command::Start(r) | Command::Stop(r) | Command::Restart(r) = cmd {
                let _ = r.send(Err(CommandError::Unmanaged(self.cfg.id.clone())));
            }
            return;
        }
        match cmd {
            Command::Start(reply) => {
                let result = if self.phase().is_active() {
                    Ok(())
                } else {
                    self.breaker.reset();
                    self.launch(Cause::StartRequested).await
                };
                let _ = reply.send(result);
            }
            Command::Restart(reply) => {
                if self.run.is_some() {
                    self.stop(Cause::RestartRequested).await;
                }
                self.breaker.reset();
                self.pending_start.push(reply);
                self.start_pending(Cause::RestartRequested).await;
            }
            Command::Stop(reply) => {
                if self.run.is_some() {
                    self.pending_stop.push(reply);
                    self.stop(Cause::StopRequested).await;
                } else {
                    self.backoff = None;
                    if self.phase() != Phase::Stopped {
                        self.go(Lifecycle::Stopped, Cause::StopRequested);
                    }
                    let _ = reply.send(Ok(()));
                }
            }
            Command::Kill => {
                if let Some(run) = &self.run {
                    let pid = run.pid;
                    self.tree.kill_all(Some(pid));
                }
            }
        }
    }

    /// Spawns a run. A failure to spawn is a state (`failed`), not an error
    /// of the manager.
    async fn launch(&mut self, cause: Cause) -> Result<(), CommandError> {
        self.backoff = None;
        let mut readers = Vec::new();
        let port = match launch::port(&self.cfg) {
            Ok(p) => p,
            Err(reason) => {
                let cause = Cause::SpawnFailed(reason.clone());
                self.go(
                    Lifecycle::Failed {
                        reason: reason.clone(),
                    },
                    cause,
                );
                return Err(CommandError::StartFailed(self.cfg.id.clone(), reason));
            }
        };
        let mut child_env = Vec::new();
        let spawned = launch::spec(&self.cfg, &self.ctx.config_dir, port).and_then(|mut spec| {
            child_env = spec.env.clone();
            let pipes = capture::pipes(&self.log)
                .map_err(|e| format!("cannot create output pipes: {e}"))?;
            spec.stdout = pipes.stdout;
            spec.stderr = pipes.stderr;
            readers = pipes.readers;
            platform::spawn(spec, &self.tree).map_err(|e| e.to_string())
        });
        let spawned = match spawned {
            Ok(s) => s,
            Err(reason) => {
                self.go(
                    Lifecycle::Failed {
                        reason: reason.clone(),
                    },
                    Cause::SpawnFailed(reason.clone()),
                );
                return Err(CommandError::StartFailed(self.cfg.id.clone(), reason));
            }
        };
        let pid = spawned.pid;
        let restart = cause == Cause::PolicyRestart;
        self.status.send_modify(|s| {
            s.runs += 1;
            s.restarts += u32::from(restart);
            s.started_at = Some(SystemTime::now());
        });
        let run = self.status.borrow().runs;
        // The separator goes first: the pumps only start reading after it.
        self.log.run_started(pid, run).await;
        let pumps = capture::start(&self.log, readers, pid, run);
        let health = launch::health_check(&self.cfg).and_then(|hc| {
            let target =
                launch::probe_target(&self.cfg, &self.ctx.config_dir, pid, port, child_env);
            HealthWatch::start(&self.cfg.id, hc, &target)
        });
        let gated = health.is_some();
        self.run = Some(Run {
            pid,
            exit: spawned.exit,
            started: Instant::now(),
            pumps,
            health,
        });
        self.go(Lifecycle::Starting { pid }, cause);
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

    /// The run ended on its own: clean up what it left, then ask the policy.
    async fn on_exit(&mut self, end: ProcessEnd) {
        let Some(run) = self.run.take() else { return };
        let outcome = policy::classify(end, &self.cfg.control.success_exit_codes);
        let ended = (run.pid, run.started, run.pumps);
        self.conclude(ended, Some(end), Cause::Exit(end), outcome)
            .await;
    }

    /// The run must end for `cause` (a failed health check, a startup
    /// timeout): stop its tree, then ask the policy, as for a failure.
    async fn fail_run(&mut self, cause: Cause) {
        let Some(mut run) = self.run.take() else {
            return;
        };
        tracing::warn!(process = %self.id(), pid = run.pid, %cause, "ending the run");
        let pumps = std::mem::take(&mut run.pumps);
        let (pid, started) = (run.pid, run.started);
        let end = self.terminate(Some(run), pid).await;
        self.conclude((pid, started, pumps), end, cause, policy::Outcome::Failure)
            .await;
    }

    /// After a run: stop what it left, read all it wrote, then apply the
    /// restart policy to `outcome`.
    async fn conclude(
        &mut self,
        (pid, started, pumps): Ended,
        end: Option<ProcessEnd>,
        cause: Cause,
        outcome: policy::Outcome,
    ) {
        self.startup_deadline = None;
        let uptime = started.elapsed();
        if end.is_some() {
            self.status.send_modify(|s| s.last_exit = end);
        }
        if !self.tree.is_empty(Some(pid)) {
            tracing::info!(process = %self.id(), pid,
                "the process exited and left descendants; stopping them");
            self.terminate(None, pid).await;
        }
        drain(&self.cfg.id, pumps).await;
        self.log.run_ended(false).await;
        if !self.pending_stop.is_empty() {
            // A stop arrived while we cleaned up: it wins over any restart.
            self.go(Lifecycle::Stopping { pid: None }, Cause::StopRequested);
            self.finish_stop();
            return;
        }
        let restart_cfg = &self.cfg.restart;
        let what = cause.to_string();
        if !policy::should_restart(restart_cfg.strategy, self.cfg.profile, outcome) {
            match (outcome, end) {
                (policy::Outcome::Success, Some(end)) => {
                    self.go(Lifecycle::Exited { end }, cause);
                }
                _ => {
                    let reason = format!("{what} (restart strategy never)");
                    self.go(Lifecycle::Failed { reason }, cause);
                }
            }
            self.start_pending(Cause::StartRequested).await;
            return;
        }
        match self.breaker.on_failure(restart_cfg, uptime, Instant::now()) {
            RunEnd::Open { restarts, window } => {
                let reason = format!(
                    "{what}; {restarts} restarts within {}: circuit breaker open",
                    humantime::format_duration(window)
                );
                self.go(Lifecycle::Failed { reason }, Cause::BreakerOpen);
                self.start_pending(Cause::StartRequested).await;
            }
            RunEnd::Restart { attempt } => {
                let delay = policy::delay(restart_cfg, attempt, fastrand::f64());
                let until = SystemTime::now() + delay;
                self.go(Lifecycle::Backoff { until }, cause);
                if !self.pending_start.is_empty() {
                    self.start_pending(Cause::StartRequested).await;
                } else if delay.is_zero() {
                    let _ = self.launch(Cause::PolicyRestart).await;
                } else {
                    tracing::debug!(process = %self.id(), attempt, ?delay, "restart scheduled");
                    self.backoff = Some(Instant::now() + delay);
                }
            }
        }
    }

    /// A health check finished: update the diagnostics, then act on what
    /// the verdict says.
    async fn on_health(&mut self, outcome: ProbeOutcome) {
        let Some(run) = self.run.as_mut() else { return };
        let Some(watch) = run.health.as_mut() else {
            return;
        };
        let (pid, change) = (run.pid, watch.record(&outcome));
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
    async fn stop(&mut self, cause: Cause) {
        self.backoff = None;
        self.startup_deadline = None;
        let mut run = self.run.take();
        let pid = run.as_ref().map(|r| r.pid);
        let pumps = run
            .as_mut()
            .map(|r| std::mem::take(&mut r.pumps))
            .unwrap_or_default();
        self.go(Lifecycle::Stopping { pid }, cause);
        if let Some(end) = self.terminate(run, pid.unwrap_or(0)).await {
            self.status.send_modify(|s| s.last_exit = Some(end));
        }
        // Every line the tree wrote is read, written, and on disk.
        drain(&self.cfg.id, pumps).await;
        self.log.run_ended(true).await;
        self.finish_stop();
        self.start_pending(Cause::StartRequested).await;
    }

    fn finish_stop(&mut self) {
        self.go(Lifecycle::Stopped, Cause::StopRequested);
        for reply in self.pending_stop.drain(..) {
            let _ = reply.send(Ok(()));
        }
    }

    /// Starts a run for the start or restart requests that arrived while
    /// the task was busy, and answers them.
    async fn start_pending(&mut self, cause: Cause) {
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

    /// Ends every process of the tree: `shutdown_signal` to the group and
    /// every member, SIGKILL to all that is left after `shutdown_timeout`.
    /// A second stop (or a kill) during the grace period kills at once.
    /// Returns how the leader (`run`) ended, if it was still running.
    async fn terminate(&mut self, mut run: Option<Run>, pgid: u32) -> Option<ProcessEnd> {
        let leader = (pgid != 0).then_some(pgid);
        let ctl = &self.cfg.control;
        self.tree.signal_all(leader, ctl.shutdown_signal);
        let mut deadline = Instant::now() + ctl.shutdown_timeout;
        let mut killed = false;
        let mut end = None;
        loop {
            if run.is_none() && self.tree.is_empty(leader) {
                break;
            }
            let leader_gone = run.is_none();
            tokio::select! {
                e = exit_of(&mut run) => {
                    end = Some(e);
                    run = None;
                }
                _ = self.tree.wait_empty(leader, deadline), if leader_gone => {}
                () = until(Some(deadline)) => {
                    if killed {
                        tracing::error!(process = %self.cfg.id, pgid,
                            "processes survived SIGKILL; giving up on them");
                        break;
                    }
                    tracing::warn!(process = %self.cfg.id, pgid,
                        timeout = ?self.cfg.control.shutdown_timeout,
                        "still running after shutdown_timeout; sending SIGKILL");
                    self.tree.kill_all(leader);
                    killed = true;
                    deadline = Instant::now() + AFTER_KILL;
                }
                cmd = self.rx.recv() => {
                    let kill_now = match cmd {
                        Some(Command::Stop(reply)) => { self.pending_stop.push(reply); true }
                        Some(Command::Kill) => true,
                        Some(Command::Start(reply) | Command::Restart(reply)) => {
                            self.pending_start.push(reply);
                            false
                        }
                        None => false,
                    };
                    if kill_now && !killed {
                        tracing::info!(process = %self.cfg.id, pgid, "second stop: killing now");
                        self.tree.kill_all(leader);
                        killed = true;
                        deadline = Instant::now() + AFTER_KILL;
                    }
                }
            }
        }
        end
    }
}
