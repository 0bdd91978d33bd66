//! The circuit breaker and the backoff exponent.
//!
//! `max_attempts` restarts within `window` are allowed; the failure that
//! would need one more opens the breaker. A run that stayed up for
//! `reset_after` forgives everything before it. A manual start closes the
//! breaker again.
//!
//! Memory is constant whatever the restart rate and window: restarts are
//! counted in [`BUCKETS`] slices of the window rather than remembered one
//! by one (a process restarting hundreds of times a second for ten minutes
//! would otherwise hold every instant). The price is resolution: a restart
//! leaves the count up to `window / BUCKETS` early.

use std::time::{Duration, Instant};

use crate::config::RestartPolicy;

/// Slices of the window the restarts are counted in.
pub const BUCKETS: usize = 64;

/// What the breaker says after a failed run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunEnd {
    /// Restart, as restart number `attempt` (0-based, the backoff exponent).
    Restart { attempt: u32 },
    /// Give up: `restarts` restarts already happened within `window`.
    Open { restarts: u32, window: Duration },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    Open,
}

/// Restarts counted per slice of the window, in a ring.
#[derive(Debug, Clone, Default)]
struct Counts {
    /// When slice 0 began (the first restart counted).
    origin: Option<Instant>,
    /// The newest slice seen, as a number since `origin`.
    latest: u64,
    /// Made at the first restart counted: most processes never restart,
    /// and every supervisor holds a breaker.
    ring: Option<Box<[u32; BUCKETS]>>,
}

impl Counts {
    fn slice(&self, now: Instant, width: Duration) -> u64 {
        let origin = self.origin.unwrap_or(now);
        let nanos = now.saturating_duration_since(origin).as_nanos();
        (nanos / width.as_nanos().max(1)).min(u128::from(u64::MAX)) as u64
    }

    /// Forgets the slices that are now out of the window.
    fn advance(&mut self, now: Instant, width: Duration) {
        if self.origin.is_none() {
            return;
        }
        let slice = self.slice(now, width);
        if slice > self.latest {
            if let Some(ring) = self.ring.as_mut() {
                let stale = (slice - self.latest).min(BUCKETS as u64);
                for k in 1..=stale {
                    ring[((self.latest + k) % BUCKETS as u64) as usize] = 0;
                }
            }
            self.latest = slice;
        }
    }

    fn add(&mut self, now: Instant, width: Duration) {
        if self.origin.is_none() {
            self.origin = Some(now);
            self.latest = 0;
        }
        self.advance(now, width);
        let at = (self.latest % BUCKETS as u64) as usize;
        let ring = self.ring.get_or_insert_with(|| Box::new([0; BUCKETS]));
        ring[at] = ring[at].saturating_add(1);
    }

    fn total(&self) -> u32 {
        self.ring
            .iter()
            .flat_map(|r| r.iter())
            .fold(0u32, |a, &c| a.saturating_add(c))
    }
}

#[derive(Debug, Clone, Default)]
pub struct Breaker {
    /// Restarts granted within the window.
    recent: Counts,
    /// Consecutive failures since the last forgiveness: the backoff exponent.
    attempt: u32,
    open: bool,
}

impl Breaker {
    pub fn state(&self) -> BreakerState {
        if self.open {
            BreakerState::Open
        } else {
            BreakerState::Closed
        }
    }

    /// Restarts granted within the window as of the last decision.
    pub fn recent_restarts(&self) -> u32 {
        self.recent.total()
    }

    /// The backoff exponent of the next restart.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// A breaker carried over from a state file: `recent` restarts within
    /// the window, counted as if they had just happened (so a crash of the
    /// manager never forgives a crash loop), and the backoff exponent.
    pub fn restore(recent: u32, attempt: u32, policy: &RestartPolicy, now: Instant) -> Breaker {
        let mut b = Breaker {
            attempt,
            ..Breaker::default()
        };
        if policy.max_attempts > 0 {
            let width = policy.window / BUCKETS as u32;
            for _ in 0..recent.min(policy.max_attempts) {
                b.recent.add(now, width);
            }
        }
        b
    }

    /// A manual start: forget everything.
    pub fn reset(&mut self) {
        *self = Breaker::default();
    }

    /// A run that needs a restart ended at `now` after `uptime`.
    pub fn on_failure(&mut self, policy: &RestartPolicy, uptime: Duration, now: Instant) -> RunEnd {
        if uptime >= policy.reset_after {
            self.recent = Counts::default();
            self.attempt = 0;
        }
        let width = policy.window / BUCKETS as u32;
        let attempt = self.attempt;
        self.attempt = self.attempt.saturating_add(1);
        // No limit: nothing to count.
        if policy.max_attempts == 0 {
            return RunEnd::Restart { attempt };
        }
        self.recent.advance(now, width);
        let restarts = self.recent.total();
        if restarts >= policy.max_attempts {
            self.attempt = attempt;
            self.open = true;
            return RunEnd::Open {
                restarts,
                window: policy.window,
            };
        }
        self.recent.add(now, width);
        RunEnd::Restart { attempt }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(max_attempts: u32, window_s: u64, reset_after_s: u64) -> RestartPolicy {
        RestartPolicy {
            max_attempts,
            window: Duration::from_secs(window_s),
            reset_after: Duration::from_secs(reset_after_s),
            ..RestartPolicy::default()
        }
    }

    /// Feeds (seconds since start, uptime seconds) failures; returns decisions.
    fn run(p: &RestartPolicy, failures: &[(u64, u64)]) -> Vec<RunEnd> {
        let t0 = Instant::now();
        let mut b = Breaker::default();
        failures
            .iter()
            .map(|&(at, up)| b.on_failure(p, Duration::from_secs(up), t0 + Duration::from_secs(at)))
            .collect()
    }

    fn restart(attempt: u32) -> RunEnd {
        RunEnd::Restart { attempt }
    }

    #[test]
    fn max_attempts_three_allows_four_runs() {
        let p = policy(3, 600, 600);
        let got = run(&p, &[(1, 1), (2, 1), (3, 1), (4, 1)]);
        assert_eq!(
            got,
            [
                restart(0),
                restart(1),
                restart(2),
                RunEnd::Open {
                    restarts: 3,
                    window: Duration::from_secs(600)
                }
            ]
        );
    }

    #[test]
    fn restarts_older_than_the_window_no_longer_count() {
        let p = policy(2, 10, 600);
        let got = run(&p, &[(0, 1), (5, 1), (11, 1), (16, 1), (17, 1)]);
        assert_eq!(got[..4], [restart(0), restart(1), restart(2), restart(3)]);
        assert!(matches!(got[4], RunEnd::Open { restarts: 2, .. }));
    }

    #[test]
    fn a_long_healthy_run_forgives_past_failures() {
        let p = policy(2, 600, 30);
        // Two quick failures, then a run of 30 s: counts start over.
        let got = run(&p, &[(0, 1), (1, 1), (40, 30), (41, 1), (42, 1)]);
        assert_eq!(got[..4], [restart(0), restart(1), restart(0), restart(1)]);
        assert!(matches!(got[4], RunEnd::Open { .. }));
    }

    #[test]
    fn zero_max_attempts_never_opens() {
        let p = policy(0, 600, 600);
        let failures: Vec<(u64, u64)> = (0..1000).map(|i| (i, 0)).collect();
        assert!(run(&p, &failures)
            .iter()
            .all(|d| matches!(d, RunEnd::Restart { .. })));
    }

    #[test]
    fn memory_is_constant_whatever_the_restart_rate() {
        let p = policy(0, 600, 600);
        let t0 = Instant::now();
        let mut b = Breaker::default();
        for i in 0..200_000u64 {
            b.on_failure(&p, Duration::ZERO, t0 + Duration::from_micros(i));
        }
        assert_eq!(b.recent_restarts(), 0, "no limit: nothing counted");
        let p = policy(1_000_000, 600, 600);
        let mut b = Breaker::default();
        for i in 0..200_000u64 {
            assert!(matches!(
                b.on_failure(&p, Duration::ZERO, t0 + Duration::from_micros(i)),
                RunEnd::Restart { .. }
            ));
        }
        assert_eq!(b.recent_restarts(), 200_000);
        // The whole state is a fixed-size value: nothing grew per restart.
        assert!(std::mem::size_of::<Breaker>() < 400);
    }

    #[test]
    fn reset_closes_an_open_breaker() {
        let p = policy(1, 600, 600);
        let t0 = Instant::now();
        let mut b = Breaker::default();
        b.on_failure(&p, Duration::ZERO, t0);
        assert!(matches!(
            b.on_failure(&p, Duration::ZERO, t0),
            RunEnd::Open { .. }
        ));
        assert_eq!(b.state(), BreakerState::Open);
        b.reset();
        assert_eq!(b.state(), BreakerState::Closed);
        assert_eq!(b.on_failure(&p, Duration::ZERO, t0), restart(0));
    }
}
