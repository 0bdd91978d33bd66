//! The health verdict: a pure function of the probe results so far.
//!
//! No I/O and no clock: the caller feeds each result to
//! [`Verdict::record`] and acts on the [`Change`] it returns. A new run of
//! the process starts from a fresh [`Verdict::default`].

/// Where a process stands, as far as its health checks tell.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Health {
    /// No check has passed yet. Failures here do not count: a slow starter
    /// is judged by `startup_timeout` alone.
    #[default]
    Starting,
    Healthy,
    Unhealthy,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Starting => "starting",
            Health::Healthy => "healthy",
            Health::Unhealthy => "unhealthy",
        }
    }
}

/// What a result changed, for the supervisor to act on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// Nothing to act on.
    None,
    /// The first success of this run: starting → healthy (the process is
    /// ready, whatever `success_threshold` says).
    Ready,
    /// `failure_threshold` consecutive failures after the first success:
    /// healthy → unhealthy. Reported once; the restart policy applies.
    BecameUnhealthy,
    /// `success_threshold` consecutive successes while unhealthy.
    Recovered,
}

/// The running count of one process run's check results.
#[derive(Clone, Debug, Default)]
pub struct Verdict {
    health: Health,
    /// Consecutive failures, counted in every state for the diagnostics;
    /// only those after the first success can make the process unhealthy
    /// (unless `from_start`).
    failures: u32,
    successes: u32,
    /// Failures count from the first check: for a process that was
    /// already running when found (unmanaged), with no start to wait for.
    from_start: bool,
}

impl Verdict {
    /// The verdict on a process known to have been ready already (one
    /// re-attached after a manager restart): failures count at once.
    pub fn ready() -> Verdict {
        Verdict {
            health: Health::Healthy,
            ..Verdict::default()
        }
    }

    /// A verdict for a process that was running before its first check (an
    /// unmanaged process once found): `failure_threshold` failures make it
    /// unhealthy even before any check passed, and the first success
    /// still makes it healthy.
    pub fn from_start() -> Verdict {
        Verdict {
            from_start: true,
            ..Verdict::default()
        }
    }

    /// Records one check result. Thresholds of 0 are taken as 1 (the config
    /// never gives 0).
    pub fn record(
        &mut self,
        healthy: bool,
        failure_threshold: u32,
        success_threshold: u32,
    ) -> Change {
        if healthy {
            self.failures = 0;
            self.successes = self.successes.saturating_add(1);
        } else {
            self.successes = 0;
            self.failures = self.failures.saturating_add(1);
        }
        match (self.health, healthy) {
            (Health::Starting, true) => {
                self.health = Health::Healthy;
                Change::Ready
            }
            (Health::Starting, false)
                if self.from_start && self.failures >= failure_threshold.max(1) =>
            {
                self.health = Health::Unhealthy;
                Change::BecameUnhealthy
            }
            (Health::Healthy, false) if self.failures >= failure_threshold.max(1) => {
                self.health = Health::Unhealthy;
                Change::BecameUnhealthy
            }
            (Health::Unhealthy, true) if self.successes >= success_threshold.max(1) => {
                self.health = Health::Healthy;
                Change::Recovered
            }
            _ => Change::None,
        }
    }

    /// Whether failures count from the first check ([`Verdict::from_start`]).
    pub fn counts_from_start(&self) -> bool {
        self.from_start
    }

    pub fn health(&self) -> Health {
        self.health
    }

    /// Consecutive failed checks up to now (0 after any success).
    pub fn consecutive_failures(&self) -> u32 {
        self.failures
    }

    /// Consecutive passed checks up to now (0 after any failure).
    pub fn consecutive_successes(&self) -> u32 {
        self.successes
    }
}

#[cfg(test)]
#[path = "tests/verdict.rs"]
mod tests;
