//! The circuit breaker and the backoff exponent.
//!
//! `max_attempts` restarts within `window` are allowed; the failure that
//! would need one more opens the breaker. A run that stayed up for
//! `reset_after` forgives everything before it. A manual start closes the
//! breaker again.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::config::RestartPolicy;

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

#[derive(Debug, Clone, Default)]
pub struct Breaker {
    /// When each restart within the window was granted.
    recent: VecDeque<Instant>,
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
        self.recent.len() as u32
    }

    /// A manual start: forget everything.
    pub fn reset(&mut self) {
        *self = Breaker::default();
    }

    /// A run that needs a restart ended at `now` after `uptime`.
    pub fn on_failure(&mut self, policy: &RestartPolicy, uptime: Duration, now: Instant) -> RunEnd {
        if uptime >= policy.reset_after {
            self.recent.clear();
            self.attempt = 0;
        }
        while let Some(&t) = self.recent.front() {
            if now.saturating_duration_since(t) >= policy.window {
                self.recent.pop_front();
            } else {
                break;
            }
        }
        if policy.max_attempts > 0 && self.recent.len() as u32 >= policy.max_attempts {
            self.open = true;
            return RunEnd::Open {
                restarts: self.recent.len() as u32,
                window: policy.window,
            };
        }
        self.recent.push_back(now);
        let attempt = self.attempt;
        self.attempt = self.attempt.saturating_add(1);
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
