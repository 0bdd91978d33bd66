//! `restart_policy` as `Restart=`, `RestartSec=`, the growth of the delay
//! (`RestartSteps=`, `RestartMaxDelaySec=`, systemd 254) and the start
//! limit (`StartLimitBurst=`, `StartLimitIntervalSec=`).

use std::time::Duration;

use procman_core::config::{ProcessConfig, Profile, RestartPolicy, RestartStrategy};

use super::span;
use crate::export::Warning;

/// The restart settings of one unit: lines for `[Unit]` and `[Service]`.
#[derive(Debug, Default)]
pub struct Restart {
    pub unit: Vec<String>,
    pub service: Vec<String>,
    pub warnings: Vec<Warning>,
}

/// How systemd grows the delay: `RestartSec=` to `RestartMaxDelaySec=`
/// in `RestartSteps=` steps, each multiplying it by
/// `(max / first)^(1 / steps)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Steps {
    pub steps: u32,
    /// The factor systemd applies per restart.
    pub factor: f64,
}

/// The steps that come nearest procman's `restart_delay ×
/// backoff_multiplier^n` capped by `max_delay`, or `None` when the delay
/// does not grow (multiplier 1, a cap no longer than the first delay, or
/// a first delay of 0, which systemd does not grow either).
pub fn steps(policy: &RestartPolicy) -> Option<Steps> {
    let first = policy.restart_delay.as_secs_f64();
    let cap = policy.max_delay.as_secs_f64();
    let m = policy.backoff_multiplier;
    if first <= 0.0 || cap <= first || m <= 1.0 {
        return None;
    }
    let ratio = cap / first;
    // Restarts until procman's delay reaches the cap.
    let exact = libm::log(ratio) / libm::log(m);
    let steps = libm::round(exact).clamp(1.0, f64::from(u32::MAX)) as u32;
    let factor = libm::pow(ratio, 1.0 / f64::from(steps));
    Some(Steps { steps, factor })
}

/// Whether systemd's factor is procman's multiplier (to a millionth).
pub fn exact(s: Steps, multiplier: f64) -> bool {
    (s.factor - multiplier).abs() <= multiplier * 1e-6
}

/// The settings for `p`; `path` is its key path.
pub fn settings(p: &ProcessConfig, path: &str) -> Restart {
    let policy = &p.restart;
    let key = |k: &str| format!("{path}.management.restart_policy.{k}");
    let mut out = Restart::default();
    let restart = match (policy.strategy, p.profile) {
        (RestartStrategy::Never, _) => "no",
        // A batch run that succeeded is finished whatever the strategy,
        // and systemd refuses `always` for a oneshot: the same thing.
        (RestartStrategy::OnFailure, _) | (RestartStrategy::Always, Profile::Batch) => "on-failure",
        (RestartStrategy::Always, Profile::LongRunning) => "always",
    };
    out.service.push(format!("Restart={restart}"));
    if policy.strategy == RestartStrategy::Never {
        // procman limits restarts, never starts by hand.
        out.unit.push("StartLimitIntervalSec=0".to_string());
        return out;
    }
    if restart == "on-failure" && p.profile != Profile::Batch {
        // procman counts as failures what systemd calls clean: a death by
        // one of these signals and, when it is not a success code, exit 0.
        // (systemd refuses RestartForceExitStatus= for a oneshot.)
        let mut forced = vec!["SIGHUP SIGINT SIGTERM SIGPIPE"];
        if !p.control.success_exit_codes.contains(&0) {
            forced.push("0");
        }
        out.service
            .push(format!("RestartForceExitStatus={}", forced.join(" ")));
    }
    out.service
        .push(format!("RestartSec={}", span(policy.restart_delay)));
    if let Some(s) = steps(policy) {
        out.service.push(format!(
            "# procman: each delay is the last × {}, up to {}; systemd 254 and later: × {:.3} over \
             {} steps (older versions keep RestartSec=).",
            policy.backoff_multiplier,
            span(policy.max_delay),
            s.factor,
            s.steps
        ));
        out.service.push(format!("RestartSteps={}", s.steps));
        out.service
            .push(format!("RestartMaxDelaySec={}", span(policy.max_delay)));
        if !exact(s, policy.backoff_multiplier) {
            out.warnings.push(Warning::new(
                key("backoff_multiplier"),
                format!(
                    "systemd grows the delay by the same factor at each of RestartSteps={} steps, \
                     × {:.3} here for × {}: delays {} (procman: {})",
                    s.steps,
                    s.factor,
                    policy.backoff_multiplier,
                    sequence(|i| systemd_delay(policy, s, i), s.steps),
                    sequence(|i| procman_delay(policy, i), s.steps),
                ),
            ));
        }
    }
    // What a long run resets under procman: the count of restarts and
    // the grown delay.
    let mut kept = Vec::new();
    if policy.max_attempts > 0 {
        kept.push("forgets a start only once it is older than StartLimitIntervalSec=");
    }
    if steps(policy).is_some() {
        kept.push("keeps a grown delay until the unit is started by hand");
    }
    if policy.reset_after != RestartPolicy::default().reset_after && !kept.is_empty() {
        out.warnings.push(Warning::new(
            key("reset_after"),
            format!(
                "systemd has no equivalent: a long run forgives nothing, systemd {}",
                kept.join(" and ")
            ),
        ));
    }
    if policy.jitter != RestartPolicy::default().jitter {
        out.warnings.push(Warning::new(
            key("jitter"),
            "systemd waits exactly RestartSec= (and the steps above it): the delay is not spread",
        ));
    }
    if policy.max_attempts == 0 {
        out.unit.push("StartLimitIntervalSec=0".to_string());
    } else {
        out.unit.push(
            "# procman: at most max_attempts restarts within window; systemd counts starts, the \
             first one too."
                .to_string(),
        );
        out.unit
            .push(format!("StartLimitIntervalSec={}", span(policy.window)));
        // systemd reads at most u32::MAX.
        out.unit.push(format!(
            "StartLimitBurst={}",
            policy.max_attempts.saturating_add(1)
        ));
        if policy.max_attempts == u32::MAX {
            out.warnings.push(Warning::new(
                key("max_attempts"),
                format!(
                    "systemd counts at most {} starts (StartLimitBurst=), the first one included: one restart fewer",
                    u32::MAX
                ),
            ));
        }
    }
    out
}

/// The delay before restart `i` (0-based) under procman, without jitter.
fn procman_delay(policy: &RestartPolicy, i: u32) -> Duration {
    procman_core::policy::delay(policy, i, 0.5)
}

/// The delay before restart `i` (0-based) under systemd 254.
fn systemd_delay(policy: &RestartPolicy, s: Steps, i: u32) -> Duration {
    if i >= s.steps {
        return policy.max_delay;
    }
    let grown = policy.restart_delay.as_secs_f64() * libm::pow(s.factor, f64::from(i));
    Duration::from_secs_f64(grown.min(policy.max_delay.as_secs_f64()))
}

/// The first delays, to the cap (at most 8 shown): `1s, 2s, 3.9s, …`.
fn sequence(delay: impl Fn(u32) -> Duration, steps: u32) -> String {
    let shown = steps.min(7);
    let mut parts: Vec<String> = (0..shown).map(|i| approx(delay(i))).collect();
    if steps > shown {
        parts.push("…".to_string());
    }
    parts.push(approx(delay(steps)));
    parts.join(", ")
}

/// A delay to three significant digits: `3.94s`, `15.2s`, `120s`.
fn approx(d: Duration) -> String {
    let s = d.as_secs_f64();
    let text = if s >= 100.0 {
        format!("{s:.0}")
    } else if s >= 10.0 {
        format!("{s:.1}")
    } else {
        format!("{s:.2}")
    };
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        &text
    };
    format!("{text}s")
}
