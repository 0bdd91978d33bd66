//! The supervisor of an unmanaged process: one tokio task that finds the
//! process (`management.discovery`), watches it, and reports it, and never
//! starts, stops, restarts or signals it.
//!
//! It answers the same [`Command`]s through the same [`Handle`] as a
//! managed process's task, and publishes the same [`ProcessStatus`]:
//!
//! - `registered` until the process is found; `last_error` says why it is
//!   not (`pid file /run/x.pid does not exist`).
//! - `running {pid}` once found (cause `discovered`). The process is held
//!   by a pidfd, opened first and checked after (see
//!   `platform::discovery`), and its end is heard through that pidfd:
//!   nothing is polled while it runs.
//! - `exited {end: unknown}` when it ends (cause `gone`): it is not our
//!   child, so its exit status is the kernel's secret.
//! - `running` again when it is found again. A pid file is watched with
//!   inotify all along (a daemon restarted elsewhere rewrites it); while
//!   nothing is found, a pid file or a name is looked for again every
//!   [`LOOK_INTERVAL`] (or the health check's interval, if shorter). A bare
//!   `pid` is looked for once: a pid never comes back as the same process.
//!
//! Health checks run against it while it runs, from its first check
//! ([`HealthWatch::for_found`]); an unhealthy process is reported and left
//! alone. Usage comes from `/proc`, over the process and its descendants.
//!
//! The manager starts looking when it starts (`Command::Monitor`), not
//! when it is created: the event journal and the API's streams subscribe
//! in between, and should see the first `running`.

use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::io::unix::AsyncFd;
use tokio::task::JoinHandle;

use super::bulletin;
use super::context::{spawn_watched, Context};
use super::handle::Handle;
use super::launch;
use super::messages::{Command, CommandError};
use super::resources::reading;
use super::run::HealthWatch;
use super::state::{Cause, Lifecycle, ProcessStatus, ResourceUsage, Transition};
use super::task::until;
use crate::config::{Discovery, ProcessConfig};
use crate::health::probe::{Liveness, ProbeOutcome};
use crate::health::verdict::Change;
use crate::logs::sink::ProcessLog;
use crate::outcome::ProcessEnd;
use crate::platform::discovery::{self, Found, Identity};
use crate::platform::pidfile::{FileEvent, PidFileWatch};
use crate::platform::{worker, Member};

/// How often a process not found is looked for again (a pid file whose
/// pid is not alive, or a name), at most.
pub const LOOK_INTERVAL: Duration = Duration::from_secs(2);

/// How long a pid file must stay unchanged before it is read: a writer's
/// truncate and write arrive as two events, and the read must see both.
const SETTLE: Duration = Duration::from_millis(20);

/// Starts the supervisor of the unmanaged process `cfg`. It looks for the
/// process once the manager sends `Command::Monitor`.
pub(super) fn spawn(
    cfg: Arc<ProcessConfig>,
    ctx: Arc<Context>,
    log: Arc<ProcessLog>,
) -> (Handle, JoinHandle<()>) {
    let (handle, rx, status_tx) = Handle::with_task(&cfg.id, log.counters.clone());
    let id = cfg.id.clone();
    let task = Unmanaged {
        name: cfg.id.as_str().into(),
        how: cfg.discovery.clone(),
        cfg,
        ctx,
        status: status_tx,
        rx,
        monitoring: false,
        watched: None,
        pid_file: None,
        next_look: None,
        reread: None,
    };
    (handle, spawn_watched(id, task.main()))
}

struct Unmanaged {
    name: Arc<str>,
    cfg: Arc<ProcessConfig>,
    ctx: Arc<Context>,
    /// `None` only if validation let a process without one through.
    how: Option<Discovery>,
    status: bulletin::Sender<ProcessStatus>,
    rx: super::inbox::Receiver<Command>,
    /// The manager has started: look for the process.
    monitoring: bool,
    watched: Option<Watched>,
    /// The watch on the pid file's directory (`pid_file` only).
    pid_file: Option<PidFileWatch>,
    /// When to look again, while nothing is found.
    next_look: Option<Instant>,
    /// When to read the changed pid file (once it has settled).
    reread: Option<Instant>,
}

/// The process found, and what watches it.
struct Watched {
    /// Holds the process (its pid is not reused while we hold this).
    _member: Member,
    identity: Identity,
    /// The pidfd on the runtime: readable once the process has exited.
    exit: AsyncFd<OwnedFd>,
    health: Option<HealthWatch>,
    /// The last CPU reading for the usage API: `(when, microseconds)`.
    cpu_last: (Instant, u64),
}

/// What the watched process did: ended, or a health check finished.
enum Heard {
    Ended,
    Checked(ProbeOutcome),
}

async fn heard(watched: &mut Option<Watched>) -> Heard {
    let Some(Watched { exit, health, .. }) = watched else {
        return std::future::pending().await;
    };
    let checks = async {
        match health.as_mut() {
            Some(h) => h.next().await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        // An error here means the runtime is shutting down: the task ends.
        _ = exit.readable() => Heard::Ended,
        Some(outcome) = checks => Heard::Checked(outcome),
    }
}

async fn changed(watch: &mut Option<PidFileWatch>) -> std::io::Result<FileEvent> {
    match watch {
        Some(w) => w.changed().await,
        None => std::future::pending().await,
    }
}

impl Unmanaged {
    async fn main(mut self) {
        loop {
            tokio::select! {
                cmd = self.rx.recv() => match cmd {
                    Some(Command::Exit) | None => break,
                    // Nothing to hand over: the next manager finds it anew.
                    Some(Command::Detach(reply)) => {
                        let _ = reply.send(());
                        break;
                    }
                    Some(cmd) => self.on_command(cmd).await,
                },
                heard = heard(&mut self.watched) => match heard {
                    Heard::Ended => self.on_gone().await,
                    Heard::Checked(outcome) => self.on_health(outcome),
                },
                event = changed(&mut self.pid_file) => self.on_pid_file(event),
                () = until(self.reread) => {
                    self.reread = None;
                    self.look().await;
                }
                () = until(self.next_look) => {
                    self.next_look = None;
                    self.look().await;
                }
            }
        }
        // The process is let go: the pidfd closes, nothing is sent to it.
    }

    async fn on_command(&mut self, cmd: Command) {
        let refused = || Err(CommandError::Unmanaged(self.cfg.id.clone()));
        match cmd {
            Command::Start(reply) | Command::Stop(reply) | Command::Restart(reply) => {
                let _ = reply.send(refused());
            }
            Command::Signal { reply, .. } => {
                let _ = reply.send(refused());
            }
            Command::Pids(reply) => {
                let pids = match &self.watched {
                    Some(w) => {
                        let identity = w.identity;
                        worker::run(move || identity.tree())
                            .await
                            .unwrap_or_default()
                    }
                    None => Vec::new(),
                };
                let _ = reply.send(pids);
            }
            Command::Usage(reply) => {
                let usage = self.usage().await;
                let _ = reply.send(usage);
            }
            // The manager's second shutdown signal kills what it started;
            // this process it did not.
            Command::Kill => {}
            Command::Monitor(reply) => {
                if !self.monitoring && self.cfg.enabled {
                    self.monitoring = true;
                    self.look().await;
                }
                let _ = reply.send(Ok(()));
            }
            // A reload replaces the supervisor of an unmanaged process
            // whose settings changed; nothing runs here to keep.
            Command::Reconfigure(cfg, reply) => {
                self.cfg = cfg;
                let _ = reply.send(());
            }
            // Never started by procman: nothing to wait for.
            Command::Exit | Command::Detach(_) | Command::DependOn(_) => {}
        }
    }

    /// Looks for the process now, and adopts what is found.
    async fn look(&mut self) {
        let Some(how) = self.how.clone() else {
            return;
        };
        if let Discovery::PidFile(path) = &how {
            // The watch goes in before the read: a change made after the
            // read is then heard. A directory that does not exist (yet) is
            // tried again at the next look.
            if self.pid_file.is_none() {
                self.pid_file = PidFileWatch::new(path).ok();
            }
        }
        let looked = worker::run(move || discovery::find(&how)).await;
        match looked {
            Some(Ok(found)) => self.adopt(found),
            Some(Err(reason)) => self.not_found(reason),
            None => self.not_found("the search failed (a bug: see the manager log)".into()),
        }
        self.schedule();
    }

    /// Watches `found`, unless it is the process already watched.
    fn adopt(&mut self, found: Found) {
        let identity = found.identity;
        if self
            .watched
            .as_ref()
            .is_some_and(|w| w.identity == identity)
        {
            return;
        }
        let pid = identity.pid;
        if found.matches > 1 {
            tracing::warn!(process = %self.name, pid, matches = found.matches,
                "{} processes match process_name; watching the oldest", found.matches);
        }
        let exit = match found.member.exit_fd() {
            Ok(fd) => fd,
            Err(e) => return self.not_found(format!("cannot watch process {pid}: {e}")),
        };
        let health = launch::health_check(&self.cfg).map(|hc| {
            let process = Liveness::Found(identity);
            let target =
                launch::probe_target(&self.cfg, &self.ctx.config_dir, process, None, Vec::new());
            HealthWatch::for_found(&self.cfg.id, hc, &target)
        });
        let started_at = identity.started_at();
        // The first CPU percent is the average over the process's life,
        // as `ps` shows it.
        let age = started_at
            .and_then(|at| SystemTime::now().duration_since(at).ok())
            .unwrap_or_default();
        let since = Instant::now().checked_sub(age).unwrap_or_else(Instant::now);
        self.watched = Some(Watched {
            _member: found.member,
            identity,
            exit,
            health,
            cpu_last: (since, 0),
        });
        self.status.send_modify(|s| {
            s.runs += 1;
            s.health = None;
            s.started_at = started_at.or_else(|| Some(SystemTime::now()));
            s.last_error = None;
        });
        let how = describe(self.how.as_ref(), pid);
        self.go(Lifecycle::Running { pid }, Cause::Discovered(how));
    }

    /// Nothing (new) was found, for `reason`.
    fn not_found(&mut self, reason: String) {
        if let Some(w) = &self.watched {
            // A pid file rewritten with nothing usable in it (yet): the
            // process watched is still the one to watch.
            tracing::debug!(process = %self.name, pid = w.identity.pid, %reason,
                "pid file changed; keeping the process watched");
            return;
        }
        if self.status.borrow().last_error.as_deref() != Some(reason.as_str()) {
            tracing::info!(process = %self.name, %reason, "unmanaged process not found");
            self.status.send_modify(|s| s.last_error = Some(reason));
        }
    }

    /// When to look again: only while nothing is found, and never for a
    /// bare pid.
    fn schedule(&mut self) {
        let again = self.monitoring
            && self.watched.is_none()
            && !matches!(self.how, Some(Discovery::Pid(_)) | None);
        self.next_look = again.then(|| {
            let interval = match &self.cfg.health_check {
                Some(hc) => hc.interval.min(LOOK_INTERVAL),
                None => LOOK_INTERVAL,
            };
            Instant::now() + interval
        });
    }

    async fn on_gone(&mut self) {
        let Some(w) = self.watched.take() else { return };
        tracing::debug!(process = %self.name, pid = w.identity.pid, "the pidfd says the process ended");
        drop(w);
        self.status
            .send_modify(|s| s.last_exit = Some(ProcessEnd::Unknown));
        self.go(
            Lifecycle::Exited {
                end: ProcessEnd::Unknown,
            },
            Cause::Gone,
        );
        // Another instance may be there already (a pid file rewritten
        // before the old process ended, a second process of that name).
        self.look().await;
    }

    fn on_pid_file(&mut self, event: std::io::Result<FileEvent>) {
        match event {
            Ok(FileEvent::Changed) => self.reread = Some(Instant::now() + SETTLE),
            Ok(FileEvent::DirectoryGone) | Err(_) => {
                // Watched again at the next look, once the directory is
                // back (looks happen while the process is not found).
                tracing::info!(process = %self.name,
                    "the pid file's directory is gone; it is watched again once it is back");
                self.pid_file = None;
                self.reread = Some(Instant::now() + SETTLE);
            }
        }
    }

    /// A health check's result: reported, never acted on.
    fn on_health(&mut self, outcome: ProbeOutcome) {
        let Some(w) = self.watched.as_mut() else {
            return;
        };
        let Some(health) = w.health.as_mut() else {
            return;
        };
        let change = health.record(&outcome);
        let diag = health.diagnostics(&outcome);
        self.status.send_modify(|s| s.health = Some(diag));
        let pid = w.identity.pid;
        match change {
            Change::BecameUnhealthy => tracing::warn!(process = %self.name, pid,
                detail = %outcome.detail,
                "unhealthy; an unmanaged process is only reported, never restarted or signalled"),
            Change::Recovered => tracing::info!(process = %self.name, pid, "healthy again"),
            Change::Ready | Change::None => {}
        }
    }

    /// What the process and its descendants use now; `None` when nothing
    /// is watched.
    async fn usage(&mut self) -> Option<ResourceUsage> {
        let w = self.watched.as_mut()?;
        let identity = w.identity;
        let sample = worker::run(move || identity.sample(true)).await?;
        // CPU time over the process's whole life, like its uptime.
        Some(reading(&sample, 0, &mut w.cpu_last))
    }

    /// Applies a transition if the unmanaged table allows it, records and
    /// logs it (as `Task::go` does for a managed process).
    fn go(&mut self, to: Lifecycle, cause: Cause) {
        let (from, run, last_pid) = {
            let s = self.status.borrow();
            (s.phase(), s.runs, s.pid())
        };
        if !from.can_become_unmanaged(to.phase()) {
            tracing::error!(process = %self.name, %from, to = %to.phase(), %cause,
                "illegal state transition refused");
            debug_assert!(false, "illegal transition {from} -> {}", to.phase());
            return;
        }
        let pid = to.pid().or(last_pid);
        tracing::info!(process = %self.name, pid, %from, to = %to.phase(), %cause);
        let transition = Transition {
            from,
            to: to.phase(),
            cause,
            at: SystemTime::now(),
        };
        self.ctx
            .events
            .publish(&self.name, transition.clone(), pid, run);
        self.status.send_modify(|s| {
            s.lifecycle = to;
            s.last_transition = Some(transition);
        });
    }
}

/// How a process was found, for the cause of its `running`:
/// `pid_file /run/app.pid (pid 42)`.
fn describe(how: Option<&Discovery>, pid: u32) -> String {
    match how {
        Some(Discovery::PidFile(path)) => format!("pid_file {} (pid {pid})", path.display()),
        Some(Discovery::ProcessName {
            name,
            argument_match: None,
        }) => format!("process_name {name} (pid {pid})"),
        Some(Discovery::ProcessName {
            name,
            argument_match: Some(args),
        }) => format!("process_name {name} and argument_match `{args}` (pid {pid})"),
        Some(Discovery::Pid(_)) | None => format!("pid {pid}"),
    }
}
