//! The verdict as a table: a sequence of results and thresholds in, the
//! change after each result and the final state out. No process, no clock.

use super::*;

use Change::{BecameUnhealthy as Down, None as No, Ready, Recovered as Up};

/// `+` is a passed check, `-` a failed one.
fn results(s: &str) -> Vec<bool> {
    s.chars().map(|c| c == '+').collect()
}

struct Case {
    name: &'static str,
    failure_threshold: u32,
    success_threshold: u32,
    results: &'static str,
    changes: &'static [Change],
    health: Health,
    failures: u32,
}

const CASES: &[Case] = &[
    Case {
        name: "failures before the first success never count",
        failure_threshold: 3,
        success_threshold: 1,
        results: "------",
        changes: &[No, No, No, No, No, No],
        health: Health::Starting,
        failures: 6,
    },
    Case {
        name: "the first success is readiness",
        failure_threshold: 3,
        success_threshold: 1,
        results: "--+",
        changes: &[No, No, Ready],
        health: Health::Healthy,
        failures: 0,
    },
    Case {
        name: "readiness ignores success_threshold",
        failure_threshold: 3,
        success_threshold: 5,
        results: "+",
        changes: &[Ready],
        health: Health::Healthy,
        failures: 0,
    },
    Case {
        name: "exactly failure_threshold failures make it unhealthy, once",
        failure_threshold: 3,
        success_threshold: 1,
        results: "+-----",
        changes: &[Ready, No, No, Down, No, No],
        health: Health::Unhealthy,
        failures: 5,
    },
    Case {
        name: "a success resets the failure count",
        failure_threshold: 3,
        success_threshold: 1,
        results: "+--+--+--",
        changes: &[Ready, No, No, No, No, No, No, No, No],
        health: Health::Healthy,
        failures: 2,
    },
    Case {
        name: "failure_threshold 1 trips on the first failure after readiness",
        failure_threshold: 1,
        success_threshold: 1,
        results: "-+-",
        changes: &[No, Ready, Down],
        health: Health::Unhealthy,
        failures: 1,
    },
    Case {
        name: "one success recovers with success_threshold 1",
        failure_threshold: 2,
        success_threshold: 1,
        results: "+--+",
        changes: &[Ready, No, Down, Up],
        health: Health::Healthy,
        failures: 0,
    },
    Case {
        name: "recovery needs success_threshold consecutive successes",
        failure_threshold: 2,
        success_threshold: 3,
        results: "+--++-+++",
        changes: &[Ready, No, Down, No, No, No, No, No, Up],
        health: Health::Healthy,
        failures: 0,
    },
    Case {
        name: "after recovery it can become unhealthy again",
        failure_threshold: 2,
        success_threshold: 2,
        results: "+--++--",
        changes: &[Ready, No, Down, No, Up, No, Down],
        health: Health::Unhealthy,
        failures: 2,
    },
    Case {
        name: "while unhealthy, a success resets the failure count",
        failure_threshold: 2,
        success_threshold: 3,
        results: "+--+",
        changes: &[Ready, No, Down, No],
        health: Health::Unhealthy,
        failures: 0,
    },
    Case {
        name: "thresholds of 0 act as 1",
        failure_threshold: 0,
        success_threshold: 0,
        results: "+-+",
        changes: &[Ready, Down, Up],
        health: Health::Healthy,
        failures: 0,
    },
];

/// A process already running when found (unmanaged): no start to wait
/// for, so failures count from the first check.
const FROM_START: &[Case] = &[
    Case {
        name: "failure_threshold failures from the start make it unhealthy, once",
        failure_threshold: 3,
        success_threshold: 1,
        results: "-----",
        changes: &[No, No, Down, No, No],
        health: Health::Unhealthy,
        failures: 5,
    },
    Case {
        name: "a first success is still readiness",
        failure_threshold: 3,
        success_threshold: 1,
        results: "--+---",
        changes: &[No, No, Ready, No, No, Down],
        health: Health::Unhealthy,
        failures: 3,
    },
    Case {
        name: "unhealthy from the start recovers by success_threshold",
        failure_threshold: 1,
        success_threshold: 2,
        results: "-++",
        changes: &[Down, No, Up],
        health: Health::Healthy,
        failures: 0,
    },
];

#[test]
fn verdict_table() {
    run(CASES, Verdict::default);
    run(FROM_START, Verdict::from_start);
}

fn run(cases: &[Case], fresh: fn() -> Verdict) {
    for case in cases {
        let mut v = fresh();
        assert_eq!(v.health(), Health::Starting, "{}", case.name);
        let changes: Vec<Change> = results(case.results)
            .into_iter()
            .map(|ok| v.record(ok, case.failure_threshold, case.success_threshold))
            .collect();
        assert_eq!(changes, case.changes, "{}", case.name);
        assert_eq!(v.health(), case.health, "{}", case.name);
        assert_eq!(v.consecutive_failures(), case.failures, "{}", case.name);
    }
}

#[test]
fn counts_do_not_overflow() {
    let mut v = Verdict::default();
    v.record(true, 3, 1);
    v.failures = u32::MAX - 1;
    v.health = Health::Unhealthy;
    for _ in 0..3 {
        assert_eq!(v.record(false, 3, 1), Change::None);
    }
    assert_eq!(v.consecutive_failures(), u32::MAX);
}

#[test]
fn health_names() {
    let names: Vec<&str> = [Health::Starting, Health::Healthy, Health::Unhealthy]
        .iter()
        .map(|h| h.as_str())
        .collect();
    assert_eq!(names, ["starting", "healthy", "unhealthy"]);
}
