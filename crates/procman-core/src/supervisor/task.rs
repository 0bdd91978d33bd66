//! The supervisor task: one per process. It owns the child, its timers and
//! its state; it hears commands on its own channel and publishes every
//! state on its bulletin. Decisions come from [`crate::policy`]; this
//! file only does the I/O around them.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use tokio::task::JoinHandle;

use super::bulletin;
use super::context::{spawn_watched, Context};
use super::gate::{self, Held, Upstream};
use super::handle::Handle;
use super::messages::{Command, CommandError, Reply};
use super::persist::StateFile;
use super::reattach::Resume;
use super::run::{next_event, Run, RunEvent};
use super::state::{Cause, Lifecycle, Phase, ProcessStatus, Transition};
use crate::config::ProcessConfig;
use crate::logs::sink::ProcessLog;
use crate::platform::Tree;
use crate::policy::Breaker;
use crate::state::record::HeldPipe;

/// Starts the supervisor of `cfg`, whose log is `log`. It waits in
/// `registered` until started.
/// `resume`: what an earlier manager left of this process (see
/// `reattach.rs`), taken up before anything else.
pub(crate) fn spawn(
    cfg: Arc<ProcessConfig>,
    ctx: Arc<Context>,
    log: Arc<ProcessLog>,
    resume: Option<Resume>,
) -> (Handle, JoinHandle<()>) {
    let (handle, rx, status_tx) = Handle::with_task(&cfg.id, log.counters.clone());
    let tree = if resume.as_ref().is_some_and(Resume::adopts) {
        ctx.trees.adopt_tree(&cfg.id)
    } else {
        ctx.trees.tree(&cfg.id)
    };
    let id = cfg.id.clone();
    let state_file = StateFile::new(ctx.records.clone(), &cfg.id);
    let task = Task {
        leader: handle.leader().clone(),
        state_file,
        resume: resume.map(Box::new),
        held_pipes: Vec::new(),
        port: None,
        detached: false,
        name: cfg.id.as_str().into(),
        cfg,
        cfg_digest: std::sync::atomic::AtomicU64::new(0),
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
        closed: false,
        exiting: false,
        stops_requested: 0,
        pass_stop: false,
        upstreams: Vec::new(),
        held: None,
    };
    (handle, spawn_watched(id, Box::new(task).main()))
}

pub(super) struct Task {
    /// The current run's leader, as the manager's stop pass reaches it.
    pub(super) leader: Arc<super::leader::Leader>,
    pub(super) state_file: StateFile,
    /// Taken up when the task starts (boxed: a record, and gone after).
    pub(super) resume: Option<Box<Resume>>,
    /// The output pipes the current run holds (see `adopt.rs`).
    pub(super) held_pipes: Vec<HeldPipe>,
    /// The port the current run was given (`integrated_managed`).
    pub(super) port: Option<u16>,
    /// The manager detached: what runs is left running.
    pub(super) detached: bool,
    /// The process's id, shared with every event it publishes.
    pub(super) name: Arc<str>,
    pub(super) cfg: Arc<ProcessConfig>,
    /// The digest of `cfg` for the state file, once asked for (see
    /// [`Task::config_digest`]; 0 until then).
    pub(super) cfg_digest: std::sync::atomic::AtomicU64,
    pub(super) ctx: Arc<Context>,
    pub(super) tree: Tree,
    pub(super) log: Arc<ProcessLog>,
    pub(super) status: bulletin::Sender<ProcessStatus>,
    pub(super) rx: super::inbox::Receiver<Command>,
    pub(super) run: Option<Run>,
    /// When the pending restart is due.
    pub(super) backoff: Option<Instant>,
    /// When a run that is still `starting` fails (`startup_timeout`).
    pub(super) startup_deadline: Option<Instant>,
    pub(super) breaker: Breaker,
    /// Requests that arrived while a tree was being terminated.
    pub(super) pending_stop: Vec<Reply>,
    pub(super) pending_start: Vec<Reply>,
    /// Every handle is gone: nothing more will arrive on `rx`.
    pub(super) closed: bool,
    /// Asked to end (while it was busy stopping a tree).
    pub(super) exiting: bool,
    /// Stop requests that arrived while a tree was being terminated, so
    /// far: a restart that sees it change gives way to the stop.
    pub(super) stops_requested: u64,
    /// A stop begun on an exit that the manager's stop pass caused (see
    /// `leader.rs`): the pass's stop command, still to come, is this stop,
    /// not a second one that would kill at once.
    pub(super) pass_stop: bool,
    /// The dependencies every launch waits for (`depends_on`).
    pub(super) upstreams: Vec<Upstream>,
    /// The launch held back while `waiting`.
    pub(super) held: Option<Held>,
}

/// Resolves at `deadline`; never without one. The timer is boxed, made
/// only when there is a deadline: every supervisor waits on a few of
/// these at all times, mostly with none.
pub(super) async fn until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => Box::pin(tokio::time::sleep_until(d.into())).await,
        None => std::future::pending().await,
    }
}

impl Task {
    /// Boxed: an `async fn` keeps its arguments beside the locals it moves
    /// them into, so a `Task` taken by value would be held twice for the
    /// supervisor's whole life; the handlers it awaits are boxed for the
    /// same reason (only the one under way takes room).
    async fn main(mut self: Box<Self>) {
        while !self.exiting {
            // A restart due now (`restart_delay: 0s`) starts here, not on
            // the timer: tokio's timers have a 1 ms grain, most of an
            // immediate restart's cost.
            if self.backoff.is_some_and(|due| due <= Instant::now()) {
                self.backoff = None;
                let _ = Box::pin(self.launch(Cause::PolicyRestart)).await;
                continue;
            }
            tokio::select! {
                cmd = self.rx.recv() => match cmd {
                    Some(Command::Exit) | None => break,
                    Some(cmd) => Box::pin(self.on_command(cmd)).await,
                },
                event = next_event(&mut self.run) => match event {
                    RunEvent::Exit(end) => Box::pin(self.on_exit(end)).await,
                    RunEvent::Health(outcome) => Box::pin(self.on_health(outcome)).await,
                    RunEvent::Oom => Box::pin(self.on_oom()).await,
                    RunEvent::SampleDue => Box::pin(self.on_sample()).await,
                },
                () = until(self.startup_deadline) => {
                    self.startup_deadline = None;
                    if self.phase() == Phase::Starting {
                        let last = self.run.as_ref().and_then(Run::last_check).map(str::to_string);
                        Box::pin(self.fail_run(Cause::StartupTimeout(last))).await;
                    }
                }
                () = until(self.backoff) => {
                    self.backoff = None;
                    let _ = Box::pin(self.launch(Cause::PolicyRestart)).await;
                }
                i = gate::changed(&mut self.upstreams), if self.phase() == Phase::Waiting => {
                    let id = self.upstreams[i].id.clone();
                    Box::pin(self.recheck(Cause::DependencyChanged(id))).await;
                }
            }
        }
        // Asked to end, or every handle is gone: the manager is done with
        // this process (unless it detached: then it is the next one's).
        if self.detached {
            return;
        }
        // Ended before it was started: what an earlier manager left is
        // taken up, to be stopped like the rest.
        if let Some(resume) = self.resume.take() {
            Box::pin(self.resume(*resume)).await;
        }
        if self.run.is_some() {
            Box::pin(self.stop(Cause::StopRequested)).await;
        }
        self.tree.remove();
    }

    pub(super) fn id(&self) -> &str {
        &self.cfg.id
    }

    pub(super) fn phase(&self) -> Phase {
        self.status.borrow().phase()
    }

    /// Applies a transition if the table allows it, records and logs it.
    pub(super) fn go(&mut self, to: Lifecycle, cause: Cause) {
        self.transition(to, cause, true);
    }

    /// [`Task::go`]; without `drop_record` the state file is kept when the
    /// process stops running (a restart launched at once replaces it).
    pub(super) fn transition(&mut self, to: Lifecycle, cause: Cause, drop_record: bool) {
        let from = self.phase();
        if !from.can_become(to.phase()) {
            tracing::error!(process = %self.cfg.id, %from, to = %to.phase(), %cause,
                "illegal state transition refused");
            debug_assert!(false, "illegal transition {from} -> {}", to.phase());
            return;
        }
        // The run's pid, also for the transition that ends it (the run is
        // gone by then; the state it leaves still names it).
        let pid = to
            .pid()
            .or(self.run.as_ref().map(Run::pid))
            .or_else(|| self.status.borrow().pid());
        // A process that is not running has nothing to re-attach to.
        if drop_record && from.is_active() && !to.phase().is_active() {
            self.state_file.remove();
        }
        match &to {
            // The reason says what the cause says, and more: said once.
            Lifecycle::Failed { reason } => tracing::error!(process = %self.cfg.id, pid, %from,
                to = "failed", cause = cause.kind(), %reason),
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
        let run = self.status.borrow().runs;
        self.ctx
            .events
            .publish(&self.name, transition.clone(), pid, run);
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
        // The manager wires the dependencies before it starts anything:
        // that is not the first command the comment below means.
        let cmd = match cmd {
            Command::DependOn(upstreams) => return self.depend_on(upstreams).await,
            cmd => cmd,
        };
        // What an earlier manager left is taken up at the first command
        // (the manager's start, once every observer, such as the event
        // journal, is listening), before anything else.
        if let Some(resume) = self.resume.take() {
            Box::pin(self.resume(*resume)).await;
            if let Command::Start(reply) = cmd {
                let _ = reply.send(Ok(()));
                return;
            }
        }
        match cmd {
            Command::Start(reply) => {
                let result = if self.phase().is_active() {
                    Ok(())
                } else if self.phase() == Phase::Waiting {
                    // It starts as soon as its dependencies are ready.
                    self.breaker.reset();
                    Ok(())
                } else {
                    self.breaker.reset();
                    self.launch(Cause::StartRequested).await
                };
                let _ = reply.send(result);
            }
            Command::Restart(reply) => {
                let stops = self.stops_requested;
                if self.run.is_some() {
                    self.stop(Cause::RestartRequested).await;
                }
                if self.stops_requested != stops {
                    // A stop arrived while this restart was stopping the
                    // process: the stop wins (a start after it still runs).
                    let _ = reply.send(Err(CommandError::Superseded(self.cfg.id.clone())));
                    self.start_pending(Cause::StartRequested).await;
                    return;
                }
                self.breaker.reset();
                self.pending_start.push(reply);
                self.start_pending(Cause::RestartRequested).await;
            }
            Command::Stop(reply) => {
                // The pass's command after its stop is over: answered below.
                self.pass_stop = false;
                if self.run.is_some() {
                    self.pending_stop.push(reply);
                    self.stop(Cause::StopRequested).await;
                } else {
                    self.backoff = None;
                    self.held = None;
                    if self.phase() != Phase::Stopped {
                        self.go(Lifecycle::Stopped, Cause::StopRequested);
                    }
                    let _ = reply.send(Ok(()));
                }
            }
            Command::Signal {
                signal,
                tree,
                reply,
            } => {
                let sent = match &self.run {
                    None => Err(CommandError::NotRunning(self.cfg.id.clone())),
                    Some(run) if tree => {
                        self.tree.signal_all(Some(&run.child), signal).await;
                        Ok(())
                    }
                    Some(run) => match run.child.signal(signal) {
                        Ok(true) => Ok(()),
                        Ok(false) => Err(CommandError::NotRunning(self.cfg.id.clone())),
                        Err(e) => Err(CommandError::SignalFailed(
                            self.cfg.id.clone(),
                            e.to_string(),
                        )),
                    },
                };
                let _ = reply.send(sent);
            }
            Command::Pids(reply) => {
                let pids = match &self.run {
                    Some(run) => self.tree.pids(Some(&run.child)).await,
                    None => Vec::new(),
                };
                let _ = reply.send(pids);
            }
            Command::Usage(reply) => {
                let usage = self.usage().await;
                let _ = reply.send(usage);
            }
            Command::Kill => {
                if let Some(run) = &self.run {
                    self.tree.kill_all(Some(&run.child)).await;
                }
            }
            Command::Exit => self.exiting = true,
            Command::Detach(reply) => {
                self.detach().await;
                self.exiting = true;
                let _ = reply.send(());
            }
            Command::Reconfigure(cfg, reply) => {
                self.reconfigure(cfg);
                let _ = reply.send(());
            }
            // Unmanaged processes have their own task (`unmanaged.rs`).
            Command::Monitor(reply) => drop(reply.send(Ok(()))),
            // Taken at the top.
            Command::DependOn(_) => {}
        }
    }
}
