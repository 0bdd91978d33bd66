//! The wait before restart `n` (0-based): `restart_delay × multiplier^n`,
//! capped by `max_delay`, spread by ± `jitter` of itself.

use std::time::Duration;

use crate::config::RestartPolicy;

/// `unit` is a random number in `[0, 1)`; 0.5 means no jitter.
pub fn delay(policy: &RestartPolicy, n: u32, unit: f64) -> Duration {
    let base = policy.restart_delay.as_secs_f64();
    if base <= 0.0 {
        return Duration::ZERO;
    }
    let cap = policy.max_delay.as_secs_f64().max(base);
    // Exponent capped so the float never overflows; the cap applies anyway.
    let grown = base * policy.backoff_multiplier.max(1.0).powi(n.min(64) as i32);
    let capped = grown.min(cap);
    let spread = policy.jitter.clamp(0.0, 1.0) * (2.0 * unit.clamp(0.0, 1.0) - 1.0);
    let jittered = (capped * (1.0 + spread)).clamp(0.0, cap);
    Duration::from_secs_f64(jittered)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(delay: u64, mult: f64, max: u64, jitter: f64) -> RestartPolicy {
        RestartPolicy {
            restart_delay: Duration::from_millis(delay),
            backoff_multiplier: mult,
            max_delay: Duration::from_millis(max),
            jitter,
            ..RestartPolicy::default()
        }
    }

    #[test]
    fn grows_geometrically_until_the_cap() {
        let p = policy(100, 2.0, 1000, 0.0);
        let got: Vec<u128> = (0..6).map(|n| delay(&p, n, 0.5).as_millis()).collect();
        assert_eq!(got, [100, 200, 400, 800, 1000, 1000]);
    }

    #[test]
    fn multiplier_one_is_constant_and_zero_delay_is_immediate() {
        let p = policy(250, 1.0, 60_000, 0.0);
        assert!((0..10).all(|n| delay(&p, n, 0.9) == Duration::from_millis(250)));
        let z = policy(0, 2.0, 60_000, 0.5);
        assert_eq!(delay(&z, 7, 0.99), Duration::ZERO);
    }

    #[test]
    fn jitter_spreads_within_bounds_and_never_past_the_cap() {
        let p = policy(1000, 2.0, 60_000, 0.1);
        let cases = [(0.0, 900), (0.5, 1000), (0.999_999, 1099)];
        for (unit, want) in cases {
            assert_eq!(delay(&p, 0, unit).as_millis(), want, "unit {unit}");
        }
        let capped = policy(1000, 2.0, 2000, 0.5);
        assert_eq!(delay(&capped, 5, 0.999).as_millis(), 2000);
        assert_eq!(delay(&capped, 5, 0.0).as_millis(), 1000);
    }

    #[test]
    fn huge_attempt_numbers_do_not_overflow() {
        let p = policy(1000, 10.0, 60_000, 0.0);
        assert_eq!(delay(&p, u32::MAX, 0.5), Duration::from_secs(60));
    }
}
