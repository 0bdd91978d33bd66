//! The lifecycle of one supervised process: one enum with its data in the
//! variants, one table of legal transitions, and the snapshot that the
//! supervisor publishes after every transition.

use std::time::SystemTime;

pub use crate::health::verdict::Health;
use crate::outcome::ProcessEnd;
use crate::platform::Enforcement;
use crate::policy::BreakerState;

/// Where a process is in its life.
#[derive(Debug, Clone, PartialEq)]
pub enum Lifecycle {
    /// Known, never started (or `enabled: false`).
    Registered,
    /// Asked to start (or restart), held back until its `depends_on`
    /// conditions hold; the reason names what it waits for, and why.
    Waiting {
        reason: String,
    },
    /// Spawned, not yet ready (until its first passing health check, when it
    /// has one; a process without a check is ready once spawned).
    Starting {
        pid: u32,
    },
    Running {
        pid: u32,
    },
    /// Stop signal sent; SIGKILL follows at the deadline.
    Stopping {
        pid: Option<u32>,
    },
    /// Stopped on purpose; nothing restarts it until it is started again.
    Stopped,
    /// Waiting to restart.
    Backoff {
        until: SystemTime,
    },
    /// Given up: breaker open, or start impossible.
    Failed {
        reason: String,
    },
    /// A run ended and the policy does not restart it (a finished batch job,
    /// or `on_failure` after a success).
    Exited {
        end: ProcessEnd,
    },
}

/// The name of a [`Lifecycle`] variant, without its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    Registered,
    Waiting,
    Starting,
    Running,
    Stopping,
    Stopped,
    Backoff,
    Failed,
    Exited,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Registered => "registered",
            Phase::Waiting => "waiting",
            Phase::Starting => "starting",
            Phase::Running => "running",
            Phase::Stopping => "stopping",
            Phase::Stopped => "stopped",
            Phase::Backoff => "backoff",
            Phase::Failed => "failed",
            Phase::Exited => "exited",
        }
    }

    /// A phase in which a process of this run is (or may be) alive.
    pub fn is_active(self) -> bool {
        matches!(self, Phase::Starting | Phase::Running | Phase::Stopping)
    }

    /// The transition table. Anything not listed is a bug in the caller.
    pub fn can_become(self, to: Phase) -> bool {
        use Phase::*;
        matches!(
            (self, to),
            (Registered | Stopped | Failed | Exited | Backoff | Waiting, Starting)
                | (Registered | Backoff | Failed | Exited | Waiting, Stopped)
                | (Registered | Stopped | Failed | Exited | Backoff | Waiting, Failed)
                // Held back by its dependencies; a new reason is a new
                // `waiting` (published only when its text changes).
                | (Registered | Stopped | Failed | Exited | Backoff | Waiting, Waiting)
                | (Starting, Running)
                | (Starting | Running, Stopping)
                | (Starting | Running, Backoff | Failed | Exited)
                // A spawn that failed for a passing reason (a process or
                // descriptor limit) is a failed run without a process.
                | (Registered | Stopped | Failed | Exited | Backoff | Waiting, Backoff)
                | (Stopping, Stopped)
                // Re-attached to a process an earlier manager started, or
                // found ended while no manager ran (a finished batch job).
                | (Registered, Running | Exited)
        )
    }

    /// The transition table of an unmanaged process, which procman never
    /// starts or stops: it is found (`registered` → `running`), it ends
    /// (`running` → `exited`), it is found again (`exited` → `running`),
    /// and a pid file that comes to name another live process moves it
    /// from one `running` to the next. A table of its own, so that these
    /// do not become legal for a managed process (which reaches `running`
    /// through `starting`, or at once only when re-attached).
    pub fn can_become_unmanaged(self, to: Phase) -> bool {
        use Phase::*;
        matches!(
            (self, to),
            (Registered | Exited | Running, Running) | (Running, Exited)
        )
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Lifecycle {
    pub fn phase(&self) -> Phase {
        match self {
            Lifecycle::Registered => Phase::Registered,
            Lifecycle::Waiting { .. } => Phase::Waiting,
            Lifecycle::Starting { .. } => Phase::Starting,
            Lifecycle::Running { .. } => Phase::Running,
            Lifecycle::Stopping { .. } => Phase::Stopping,
            Lifecycle::Stopped => Phase::Stopped,
            Lifecycle::Backoff { .. } => Phase::Backoff,
            Lifecycle::Failed { .. } => Phase::Failed,
            Lifecycle::Exited { .. } => Phase::Exited,
        }
    }

    pub fn pid(&self) -> Option<u32> {
        match self {
            Lifecycle::Starting { pid } | Lifecycle::Running { pid } => Some(*pid),
            Lifecycle::Stopping { pid } => *pid,
            _ => None,
        }
    }
}

/// Why a transition happened.
#[derive(Debug, Clone, PartialEq)]
pub enum Cause {
    /// Started by the manager at boot or by a user.
    StartRequested,
    /// Spawned as a restart by the policy.
    PolicyRestart,
    /// A dependency of a `waiting` process changed state (its id), and
    /// the reason for waiting with it.
    DependencyChanged(String),
    /// Ready (spawned, or first health check passed).
    Ready,
    /// The run ended on its own.
    Exit(ProcessEnd),
    SpawnFailed(String),
    /// `startup_timeout` expired; what the last health check saw, if one ran.
    StartupTimeout(Option<String>),
    /// `failure_threshold` consecutive failed checks; the last one's result.
    HealthCheck(String),
    StopRequested,
    RestartRequested,
    BreakerOpen,
    /// The kernel's OOM killer killed a process of the tree (the limit
    /// `max_memory_mb`); the tree is ended and the policy applies.
    Oom,
    /// A limit the manager watches was exceeded for `violation_grace`
    /// (`on_violation: restart` or `stop`); what was seen.
    ResourceViolation(String),
    /// A process an earlier manager started, found running and adopted by
    /// this one; `config_changed`: its configuration is not the one it was
    /// started with.
    Reattached {
        config_changed: bool,
    },
    /// The process ended while no manager was running (found gone, or its
    /// pid held by another process, when this manager started); how, when
    /// it could still be read, else [`ProcessEnd::Unknown`].
    EndedUnsupervised(ProcessEnd),
    /// An unmanaged process was found; how (`pid_file /run/x.pid`).
    Discovered(String),
    /// An unmanaged process ended. It is not our child, so the kernel told
    /// us (through its pidfd) that it ended, never how.
    Gone,
}

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Cause::StartRequested => f.write_str("start requested"),
            Cause::PolicyRestart => f.write_str("restart policy"),
            Cause::DependencyChanged(id) => write!(f, "what it waits for changed: {id}"),
            Cause::Ready => f.write_str("ready"),
            Cause::Exit(end) => write!(f, "{end}"),
            Cause::SpawnFailed(why) => write!(f, "spawn failed: {why}"),
            Cause::StartupTimeout(None) => f.write_str("startup_timeout expired before any check"),
            Cause::StartupTimeout(Some(last)) => {
                write!(f, "startup_timeout expired; last check: {last}")
            }
            Cause::HealthCheck(last) => write!(f, "health_check failed ({last})"),
            Cause::StopRequested => f.write_str("stop requested"),
            Cause::RestartRequested => f.write_str("restart requested"),
            Cause::BreakerOpen => f.write_str("circuit breaker open"),
            Cause::Oom => f.write_str("killed by the kernel's OOM killer (max_memory_mb)"),
            Cause::ResourceViolation(what) => write!(f, "resource limit exceeded: {what}"),
            Cause::Reattached {
                config_changed: false,
            } => f.write_str("re-attached by a new manager"),
            Cause::Reattached {
                config_changed: true,
            } => f.write_str(
                "re-attached by a new manager; its configuration changed since it started \
                 (restart it to apply the new one)",
            ),
            Cause::EndedUnsupervised(ProcessEnd::Unknown) => {
                f.write_str("ended while no manager was running (exit status unknown)")
            }
            Cause::EndedUnsupervised(end) => {
                write!(f, "ended while no manager was running ({end})")
            }
            Cause::Discovered(how) => write!(f, "found by {how}"),
            Cause::Gone => write!(f, "the process {}", ProcessEnd::Unknown),
        }
    }
}

impl Cause {
    /// A stable name for the kind of cause (for logs and metrics).
    pub fn kind(&self) -> &'static str {
        match self {
            Cause::StartRequested => "start_requested",
            Cause::PolicyRestart => "policy_restart",
            Cause::DependencyChanged(_) => "dependency_changed",
            Cause::Ready => "ready",
            Cause::Exit(_) => "exit",
            Cause::SpawnFailed(_) => "spawn_failed",
            Cause::StartupTimeout(_) => "startup_timeout",
            Cause::HealthCheck(_) => "health_check",
            Cause::StopRequested => "stop_requested",
            Cause::RestartRequested => "restart_requested",
            Cause::BreakerOpen => "breaker_open",
            Cause::Oom => "oom",
            Cause::ResourceViolation(_) => "resource_violation",
            Cause::Reattached { .. } => "reattached",
            Cause::EndedUnsupervised(_) => "ended_unsupervised",
            Cause::Discovered(_) => "discovered",
            Cause::Gone => "gone",
        }
    }

    /// The `&'static` kind named `name`, for counters read back from a
    /// state file (an unknown name, from another version, is `None`).
    pub(crate) fn kind_named(name: &str) -> Option<&'static str> {
        const KINDS: &[&str] = &[
            "start_requested",
            "policy_restart",
            "dependency_changed",
            "ready",
            "exit",
            "spawn_failed",
            "startup_timeout",
            "health_check",
            "stop_requested",
            "restart_requested",
            "breaker_open",
            "oom",
            "resource_violation",
            "reattached",
            "ended_unsupervised",
            "discovered",
            "gone",
        ];
        KINDS.iter().copied().find(|k| *k == name)
    }
}

/// One recorded transition.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    pub from: Phase,
    pub to: Phase,
    pub cause: Cause,
    pub at: SystemTime,
}

/// Restarts counted by the [`Cause::kind`] of the end they followed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RestartCauses(Vec<(&'static str, u32)>);

impl RestartCauses {
    pub(crate) fn add(&mut self, kind: &'static str) {
        match self.0.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, n)) => *n += 1,
            None => self.0.push((kind, 1)),
        }
    }

    /// Counters read back from a state file.
    pub(crate) fn restore(pairs: &[(String, u32)]) -> RestartCauses {
        RestartCauses(
            pairs
                .iter()
                .filter_map(|(k, n)| Some((Cause::kind_named(k)?, *n)))
                .collect(),
        )
    }

    /// `(cause kind, restarts)`, in the order the causes first happened.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u32)> + '_ {
        self.0.iter().copied()
    }
}

/// The health of a run, for diagnostics.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthStatus {
    pub health: Health,
    pub last_check: Option<SystemTime>,
    pub last_latency: Option<std::time::Duration>,
    /// What the last check saw: `HTTP 200`, `NOT_SERVING`, `timed out after 1s`.
    pub last_result: String,
    pub consecutive_failures: u32,
    /// The last failed check's result, while it is the latest.
    pub last_error: Option<String>,
}

/// A process's state with diagnostics: what `Handle::status` returns.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessStatus {
    pub id: String,
    pub lifecycle: Lifecycle,
    /// When the current (or last) run was spawned.
    pub started_at: Option<SystemTime>,
    /// Runs spawned so far (the first run is 1).
    pub runs: u32,
    /// Restarts made by the policy (manual restarts not counted).
    pub restarts: u32,
    /// The same restarts, by why the run before ended.
    pub restart_causes: RestartCauses,
    pub last_exit: Option<ProcessEnd>,
    pub last_error: Option<String>,
    pub breaker: BreakerState,
    pub last_transition: Option<Transition>,
    /// The health check of the current (or last) run, when it has one.
    pub health: Option<HealthStatus>,
    /// Log records that could not be written (a full disk), so far. Exact
    /// from `Handle::status`; as of the last transition in a published state.
    pub log_dropped: u64,
    /// What enforces each resource limit of the current (or last) run.
    pub enforcement: Enforcement,
    /// Runs ended by the kernel's OOM killer, so far.
    pub oom_kills: u32,
    /// Violations of a limit the manager watches, so far (each one
    /// sustained for `violation_grace`, whatever `on_violation` did).
    pub violations: u32,
    /// A digest of the `env_file` the last run read (`None`: no file, no
    /// run yet, or a run re-attached to): a reload compares it with the
    /// file's contents now.
    pub env_file_digest: Option<u64>,
}

/// What a running process's tree uses, as one reading sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ResourceUsage {
    /// Memory charged to its cgroup, or the members' resident sets.
    pub memory_bytes: Option<u64>,
    /// CPU time of the tree during this run.
    pub cpu_seconds: Option<f64>,
    /// Percent of one CPU since the previous reading (or the run's start).
    pub cpu_percent: Option<f64>,
    pub processes: u32,
    pub open_files: Option<u64>,
    /// The figures come from cgroup files (else from `/proc`).
    pub from_cgroup: bool,
}

impl ProcessStatus {
    pub fn new(id: &str) -> ProcessStatus {
        ProcessStatus {
            id: id.to_string(),
            lifecycle: Lifecycle::Registered,
            started_at: None,
            runs: 0,
            restarts: 0,
            restart_causes: RestartCauses::default(),
            last_exit: None,
            last_error: None,
            breaker: BreakerState::Closed,
            last_transition: None,
            health: None,
            log_dropped: 0,
            enforcement: Enforcement::default(),
            oom_kills: 0,
            violations: 0,
            env_file_digest: None,
        }
    }

    pub fn phase(&self) -> Phase {
        self.lifecycle.phase()
    }

    pub fn pid(&self) -> Option<u32> {
        self.lifecycle.pid()
    }
}

#[cfg(test)]
mod tests {
    use super::Phase::*;

    #[test]
    fn transition_table() {
        let legal = [
            (Registered, Starting),
            (Starting, Running),
            (Running, Stopping),
            (Stopping, Stopped),
            (Stopped, Starting),
            (Running, Backoff),
            (Backoff, Starting),
            (Backoff, Stopped),
            (Running, Failed),
            (Failed, Starting),
            (Running, Exited),
            (Exited, Starting),
            (Starting, Failed),
            (Registered, Failed),
            (Registered, Backoff),
            (Backoff, Backoff),
            // Re-attached, or found ended, by a new manager.
            (Registered, Running),
            (Registered, Exited),
            // Held back by its dependencies, from wherever a start can
            // begin; out of it by a launch, a stop, or a failed spawn.
            (Registered, Waiting),
            (Stopped, Waiting),
            (Failed, Waiting),
            (Exited, Waiting),
            (Backoff, Waiting),
            (Waiting, Waiting),
            (Waiting, Starting),
            (Waiting, Stopped),
            (Waiting, Failed),
            (Waiting, Backoff),
        ];
        let illegal = [
            (Stopped, Running),
            (Stopping, Running),
            (Stopping, Backoff),
            (Backoff, Running),
            (Exited, Running),
            (Failed, Running),
            (Running, Starting),
            (Running, Stopped),
            // A process that runs is never sent back to wait: a dependency
            // that stops later leaves its dependents alone.
            (Starting, Waiting),
            (Running, Waiting),
            (Stopping, Waiting),
            (Waiting, Running),
            (Waiting, Exited),
            (Waiting, Stopping),
        ];
        for (a, b) in legal {
            assert!(a.can_become(b), "{a} -> {b} must be legal");
        }
        for (a, b) in illegal {
            assert!(!a.can_become(b), "{a} -> {b} must be illegal");
        }
    }

    #[test]
    fn waiting_is_not_active() {
        assert!(!Waiting.is_active());
        assert_eq!(Waiting.as_str(), "waiting");
    }

    #[test]
    fn unmanaged_transition_table() {
        let legal = [
            (Registered, Running),
            (Running, Exited),
            (Exited, Running),
            (Running, Running),
        ];
        let all = [
            Registered, Waiting, Starting, Running, Stopping, Stopped, Backoff, Failed, Exited,
        ];
        for a in all {
            for b in all {
                let want = legal.contains(&(a, b));
                assert_eq!(a.can_become_unmanaged(b), want, "unmanaged {a} -> {b}");
            }
        }
        // Those it adds stay illegal for a managed process.
        for (a, b) in [(Exited, Running), (Running, Running)] {
            assert!(!a.can_become(b), "managed {a} -> {b} must stay illegal");
        }
    }
}
