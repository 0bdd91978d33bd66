//! The gate's verdicts and the reasons a `waiting` process shows, for
//! every state a dependency can be in, without processes.

use std::time::SystemTime;

use super::{reason, Upstream};
use crate::config::DependencyCondition::{self, *};
use crate::health::verdict::Health;
use crate::outcome::ProcessEnd;
use crate::supervisor::bulletin::bulletin;
use crate::supervisor::state::{Cause, HealthStatus, Lifecycle, Phase, ProcessStatus, Transition};

fn status(id: &str, lifecycle: Lifecycle) -> ProcessStatus {
    let mut s = ProcessStatus::new(id);
    s.lifecycle = lifecycle;
    s
}

fn healthy(mut s: ProcessStatus, health: Health) -> ProcessStatus {
    s.health = Some(HealthStatus {
        health,
        last_check: None,
        last_latency: None,
        last_result: String::new(),
        consecutive_failures: 0,
        last_error: None,
    });
    s
}

fn upstream(s: ProcessStatus, condition: DependencyCondition, enabled: bool) -> Upstream {
    Upstream {
        id: s.id.clone(),
        condition,
        status: bulletin(s).1,
        enabled,
        success_exit_codes: vec![0],
        gone: false,
        unmanaged: false,
    }
}

fn unmet(s: ProcessStatus, condition: DependencyCondition) -> Option<String> {
    upstream(s, condition, true).unmet()
}

#[test]
fn started_holds_once_the_dependency_runs() {
    let running = status("db", Lifecycle::Running { pid: 7 });
    assert_eq!(unmet(running, Started), None);
    let starting = status("db", Lifecycle::Starting { pid: 7 });
    assert_eq!(
        unmet(starting, Started).as_deref(),
        Some("db (db is starting)")
    );
    assert_eq!(
        unmet(status("db", Lifecycle::Stopped), Started).as_deref(),
        Some("db (db is stopped)")
    );
    assert_eq!(
        unmet(status("db", Lifecycle::Registered), Started).as_deref(),
        Some("db (db has not been started)")
    );
}

#[test]
fn healthy_needs_a_passing_check() {
    let run = || status("db", Lifecycle::Running { pid: 7 });
    assert_eq!(unmet(healthy(run(), Health::Healthy), Healthy), None);
    assert_eq!(
        unmet(healthy(run(), Health::Unhealthy), Healthy).as_deref(),
        Some("db to be healthy (db is running but unhealthy)")
    );
    assert_eq!(
        unmet(status("db", Lifecycle::Starting { pid: 7 }), Healthy).as_deref(),
        Some("db to be healthy (db is starting)")
    );
    // Healthy in a run that is not running (stopping) does not count.
    let stopping = healthy(
        status("db", Lifecycle::Stopping { pid: Some(7) }),
        Health::Healthy,
    );
    assert!(unmet(stopping, Healthy).is_some());
}

#[test]
fn completed_successfully_counts_the_success_exit_codes() {
    let exited = |code| {
        status(
            "migrate",
            Lifecycle::Exited {
                end: ProcessEnd::Exited(code),
            },
        )
    };
    assert_eq!(unmet(exited(0), CompletedSuccessfully), None);
    // A code that success_exit_codes does not list is no success.
    let mut up = upstream(exited(3), CompletedSuccessfully, true);
    assert_eq!(
        up.unmet().as_deref(),
        Some("migrate to complete successfully (migrate exited with code 3)")
    );
    up.success_exit_codes = vec![0, 3];
    assert_eq!(up.unmet(), None);
    // A job that still runs is not complete; nor is one that ended while
    // no manager watched it (its status is unknown).
    assert_eq!(
        unmet(
            status("migrate", Lifecycle::Running { pid: 9 }),
            CompletedSuccessfully
        )
        .as_deref(),
        Some("migrate to complete successfully (migrate is running)")
    );
    let unknown = status(
        "migrate",
        Lifecycle::Exited {
            end: ProcessEnd::Unknown,
        },
    );
    assert!(unmet(unknown, CompletedSuccessfully).is_some());
}

#[test]
fn a_failed_dependency_says_how_its_run_ended() {
    let mut s = status(
        "migrate",
        Lifecycle::Failed {
            reason: "exited with code 1 (restart strategy never)".into(),
        },
    );
    s.last_transition = Some(Transition {
        from: Phase::Running,
        to: Phase::Failed,
        cause: Cause::Exit(ProcessEnd::Exited(1)),
        at: SystemTime::now(),
    });
    assert_eq!(
        unmet(s.clone(), CompletedSuccessfully).as_deref(),
        Some("migrate to complete successfully (migrate exited with code 1)")
    );
    // A failure without a run (a spawn that failed) says why.
    s.lifecycle = Lifecycle::Failed {
        reason: "no such file".into(),
    };
    s.last_transition = None;
    assert_eq!(
        unmet(s, Started).as_deref(),
        Some("migrate (migrate failed: no such file)")
    );
}

#[test]
fn a_disabled_dependency_asks_to_be_started() {
    let up = upstream(status("db", Lifecycle::Registered), Started, false);
    assert_eq!(
        up.unmet().as_deref(),
        Some("db (db is not enabled; start it)")
    );
    // Started by hand, it counts like any other.
    let up = upstream(status("db", Lifecycle::Running { pid: 1 }), Started, false);
    assert_eq!(up.unmet(), None);
}

#[test]
fn the_reason_names_every_unmet_dependency_in_order() {
    let ups = [
        upstream(status("db", Lifecycle::Starting { pid: 1 }), Healthy, true),
        upstream(
            status("cache", Lifecycle::Running { pid: 2 }),
            Started,
            true,
        ),
        upstream(status("queue", Lifecycle::Stopped), Started, true),
    ];
    assert_eq!(
        reason(&ups).as_deref(),
        Some("waiting for db to be healthy (db is starting) and for queue (queue is stopped)")
    );
    assert_eq!(reason(&ups[1..2]), None);
    assert_eq!(reason(&[]), None);
}

#[tokio::test]
async fn changed_wakes_for_the_dependency_that_changed() {
    let (tx_a, rx_a) = bulletin(status("a", Lifecycle::Stopped));
    let (tx_b, rx_b) = bulletin(status("b", Lifecycle::Stopped));
    let mut ups: Vec<Upstream> = [rx_a, rx_b]
        .into_iter()
        .zip(["a", "b"])
        .map(|(rx, id)| Upstream {
            id: id.into(),
            condition: Started,
            status: rx,
            enabled: true,
            success_exit_codes: vec![0],
            gone: false,
            unmanaged: false,
        })
        .collect();
    tx_b.send_modify(|s| *s = status("b", Lifecycle::Running { pid: 3 }));
    assert_eq!(super::changed(&mut ups).await, 1);
    tx_a.send_modify(|s| *s = status("a", Lifecycle::Running { pid: 4 }));
    assert_eq!(super::changed(&mut ups).await, 0);
    // A supervisor that ended is heard once, then no more.
    drop(tx_a);
    assert_eq!(super::changed(&mut ups).await, 0);
    assert!(ups[0].gone);
    let quiet = tokio::time::timeout(
        std::time::Duration::from_millis(50),
        super::changed(&mut ups),
    );
    assert!(quiet.await.is_err(), "nothing changed");
    drop(tx_b);
}
