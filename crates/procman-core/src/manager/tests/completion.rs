//! When a manager's work is over, judged from states alone.

use std::path::Path;

use super::{judge, Completion};
use crate::config::{self, Config};
use crate::outcome::ProcessEnd;
use crate::supervisor::{Lifecycle, ProcessStatus};

/// A config from `managed_processes` entries written as YAML lines.
fn config(entries: &str) -> Config {
    let yaml = format!("process_manager:\n  port: 0\nmanaged_processes:\n{entries}");
    config::load_str(&yaml, Path::new("/tmp/procman.yaml"), &|_| None)
        .unwrap_or_else(|e| panic!("{e}\n{yaml}"))
}

fn entry(id: &str, extra: &str) -> String {
    format!("  - id: {id}\n{extra}    management:\n      control: {{executable: /bin/true}}\n")
}

fn state(id: &str, lifecycle: Lifecycle) -> ProcessStatus {
    let mut s = ProcessStatus::new(id);
    s.lifecycle = lifecycle;
    s
}

fn exited(code: i32) -> Lifecycle {
    Lifecycle::Exited {
        end: ProcessEnd::Exited(code),
    }
}

fn failed() -> Lifecycle {
    Lifecycle::Failed {
        reason: "exit code 1".into(),
    }
}

fn running() -> Lifecycle {
    Lifecycle::Running { pid: 42 }
}

fn waiting() -> Lifecycle {
    Lifecycle::Waiting {
        reason: "for a".into(),
    }
}

#[test]
fn every_end_waits_for_each_managed_process() {
    let c = config(&(entry("a", "") + &entry("b", "")));
    let some = [state("a", exited(0)), state("b", running())];
    assert_eq!(judge(&c, &some, true), None);
    let all = [state("a", exited(0)), state("b", Lifecycle::Stopped)];
    assert_eq!(
        judge(&c, &all, true),
        Some(Completion::AllEnded { failed: vec![] })
    );
    // Without the flag, nothing ends the manager.
    assert_eq!(judge(&c, &all, false), None);
}

#[test]
fn a_failure_or_an_unsuccessful_exit_fails_the_whole() {
    let c = config(&(entry("a", "") + &entry("b", "") + &entry("c", "")));
    let states = [
        state("a", failed()),
        state("b", exited(0)),
        state("c", exited(3)),
    ];
    let done = judge(&c, &states, true).expect("all ended");
    assert_eq!(
        done,
        Completion::AllEnded {
            failed: vec!["a".into(), "c".into()]
        }
    );
    assert!(!done.success());
}

#[test]
fn success_codes_decide_what_succeeded() {
    let c = config(&entry("a", "").replace(
        "{executable: /bin/true}",
        "{executable: /bin/true, success_exit_codes: [0, 3]}",
    ));
    let done = judge(&c, &[state("a", exited(3))], true).expect("ended");
    assert!(done.success(), "{done}");
}

#[test]
fn disabled_and_unmanaged_processes_are_not_waited_for() {
    let yaml = entry("a", "")
        + &entry("off", "    enabled: false\n")
        + "  - id: ext\n    type: unmanaged\n    management:\n      discovery: {pid: 1}\n";
    let c = config(&yaml);
    let states = [
        state("a", exited(0)),
        state("off", Lifecycle::Registered),
        state("ext", running()),
    ];
    assert_eq!(
        judge(&c, &states, true),
        Some(Completion::AllEnded { failed: vec![] })
    );
    // An enabled process not started yet is not final.
    let c = config(&(entry("a", "") + &entry("b", "")));
    let early = [state("a", exited(0)), state("b", Lifecycle::Registered)];
    assert_eq!(judge(&c, &early, true), None);
}

#[test]
fn a_process_that_can_never_start_counts_as_failed() {
    // b waits for a to complete successfully, and a failed; c waits for
    // b to be started, which it never will be.
    let yaml = entry("a", "    profile_type: batch\n")
        + &entry(
            "b",
            "    depends_on: [{a: {condition: completed_successfully}}]\n",
        )
        + &entry("c", "    depends_on: [b]\n");
    let c = config(&yaml);
    let states = [
        state("a", failed()),
        state("b", waiting()),
        state("c", waiting()),
    ];
    assert_eq!(
        judge(&c, &states, true),
        Some(Completion::AllEnded {
            failed: vec!["a".into(), "b".into(), "c".into()]
        })
    );
    // While a may still succeed (it runs), b waits and nothing is over.
    let states = [
        state("a", running()),
        state("b", waiting()),
        state("c", waiting()),
    ];
    assert_eq!(judge(&c, &states, true), None);
}

#[test]
fn shutdown_on_exit_ends_at_its_process_whatever_the_rest() {
    let yaml = entry("main", "    shutdown_on_exit: true\n") + &entry("side", "");
    let c = config(&yaml);
    let states = [state("main", exited(0)), state("side", running())];
    assert_eq!(
        judge(&c, &states, false),
        Some(Completion::ProcessEnded {
            id: "main".into(),
            success: true
        })
    );
    let states = [state("main", failed()), state("side", running())];
    let done = judge(&c, &states, true).expect("ended");
    assert!(!done.success());
    assert_eq!(
        done.to_string(),
        "`main` (shutdown_on_exit) ended without success"
    );
    // Stopped on purpose, or running: the manager goes on.
    for l in [
        Lifecycle::Stopped,
        running(),
        Lifecycle::Backoff {
            until: std::time::SystemTime::now(),
        },
    ] {
        let states = [state("main", l), state("side", running())];
        assert_eq!(judge(&c, &states, false), None);
    }
}
