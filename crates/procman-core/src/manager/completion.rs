//! When a manager's work is over by itself: a process with
//! `shutdown_on_exit` reached a final state, or (when asked, `procman run
//! --exit-on-end`) every process did. Heard through the event stream,
//! judged from the processes' states: a missed event (a listener that fell
//! behind) cannot make it miss the end.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use tokio::sync::broadcast::error::RecvError;

use super::control::Control;
use super::order;
use crate::config::{Config, ProcessKind};
use crate::policy;
use crate::supervisor::{Event, Lifecycle, Phase, ProcessStatus};

/// Why the manager's work is over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Completion {
    /// A process with `shutdown_on_exit` ended (`exited`, or `failed`:
    /// `success` is whether its last run succeeded).
    ProcessEnded { id: String, success: bool },
    /// Every process is in a final state; `failed` names those that
    /// failed, and those that can never start because a dependency of
    /// theirs ended without meeting its condition.
    AllEnded { failed: Vec<String> },
}

impl Completion {
    /// Whether the manager should exit 0.
    pub fn success(&self) -> bool {
        match self {
            Completion::ProcessEnded { success, .. } => *success,
            Completion::AllEnded { failed } => failed.is_empty(),
        }
    }
}

impl fmt::Display for Completion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Completion::ProcessEnded { id, success: true } => {
                write!(f, "`{id}` (shutdown_on_exit) ended successfully")
            }
            Completion::ProcessEnded { id, success: false } => {
                write!(f, "`{id}` (shutdown_on_exit) ended without success")
            }
            Completion::AllEnded { failed } if failed.is_empty() => {
                f.write_str("every process has ended, all successfully")
            }
            Completion::AllEnded { failed } => {
                write!(
                    f,
                    "every process has ended; not successful: {}",
                    failed.join(", ")
                )
            }
        }
    }
}

impl Control {
    /// Resolves once the manager's work is over by itself (see
    /// [`Completion`]); with `every_end` false, only a process with
    /// `shutdown_on_exit` can end it, and without one this never resolves.
    /// Wakes on each state transition, and on nothing else; the states are
    /// read only after a transition that can end the work (to a final
    /// state, or to `waiting`), so a start or a restart costs nothing here.
    pub async fn completion(&self, every_end: bool) -> Completion {
        let mut events = self.events();
        let mut look = true;
        loop {
            if look {
                let (config, procs) = self.lineup();
                let states: Vec<ProcessStatus> = procs.iter().map(|h| h.status()).collect();
                if let Some(done) = judge(&config, &states, every_end) {
                    return done;
                }
            }
            look = match events.recv().await {
                Ok(event) if self.may_end(&event, every_end) => {
                    self.caught_up(&event).await;
                    true
                }
                Ok(_) => false,
                // Some events were missed: the states say where things
                // are, once the last transition has been published.
                Err(RecvError::Lagged(_)) => {
                    tokio::time::sleep(SETTLE).await;
                    true
                }
                // The manager is gone: nothing will end by itself now.
                Err(RecvError::Closed) => std::future::pending::<bool>().await,
            };
        }
    }

    /// Whether `event` can be the one that ends the work.
    fn may_end(&self, event: &Event, every_end: bool) -> bool {
        match event.transition.to {
            Phase::Exited | Phase::Failed => {
                every_end
                    || self
                        .config()
                        .process(&event.process)
                        .is_some_and(|p| p.shutdown_on_exit)
            }
            Phase::Stopped | Phase::Waiting => every_end,
            _ => false,
        }
    }
}

/// How long a state may take to show a transition already announced (a
/// supervisor publishes the event, then the state, with nothing between:
/// only a preempted thread takes more than microseconds).
const SETTLE: Duration = Duration::from_millis(100);

impl Control {
    /// Waits until the state of `event`'s process shows its transition
    /// (or a later one), at most [`SETTLE`]: the event is sent first.
    async fn caught_up(&self, event: &Event) {
        let Ok(handle) = self.handle(&event.process) else {
            return;
        };
        let t = &event.transition;
        let mut status = handle.subscribe();
        let shown = status.wait_for(|s| {
            s.last_transition
                .as_ref()
                .is_some_and(|last| last == t || last.at > t.at)
        });
        let _ = tokio::time::timeout(SETTLE, shown).await;
    }
}

/// The end the states show, if any. `states` are in the config's order
/// (a process the config no longer has, during a reload, is ignored).
pub fn judge(config: &Config, states: &[ProcessStatus], every_end: bool) -> Option<Completion> {
    let by_id: HashMap<&str, &ProcessStatus> = states.iter().map(|s| (s.id.as_str(), s)).collect();
    let success = |id: &str| {
        config
            .process(id)
            .map_or(&[0][..], |p| p.control.success_exit_codes.as_slice())
    };
    for p in &config.processes {
        let Some(s) = by_id.get(p.id.as_str()) else {
            continue;
        };
        if !p.shutdown_on_exit {
            continue;
        }
        match &s.lifecycle {
            Lifecycle::Exited { end } => {
                let ok = policy::classify(*end, success(&p.id)) == policy::Outcome::Success;
                return Some(Completion::ProcessEnded {
                    id: p.id.clone(),
                    success: ok,
                });
            }
            Lifecycle::Failed { .. } => {
                return Some(Completion::ProcessEnded {
                    id: p.id.clone(),
                    success: false,
                })
            }
            _ => {}
        }
    }
    if !every_end {
        return None;
    }
    // Final: ended, failed, stopped on purpose, or disabled and never
    // started. Then, until nothing changes, a process waiting for a final
    // dependency that did not meet its condition will never start.
    let mut failed: Vec<&str> = Vec::new();
    let mut open: Vec<&str> = Vec::new();
    // Final processes: `true` when in a final state, `false` when waiting
    // for what will never come.
    let mut done: HashMap<&str, bool> = HashMap::new();
    for p in config
        .processes
        .iter()
        .filter(|p| p.kind != ProcessKind::Unmanaged)
    {
        let Some(s) = by_id.get(p.id.as_str()) else {
            continue;
        };
        let ended = match &s.lifecycle {
            Lifecycle::Exited { end } => {
                let ok = policy::classify(*end, success(&p.id)) == policy::Outcome::Success;
                if !ok {
                    failed.push(&p.id);
                }
                true
            }
            Lifecycle::Failed { .. } => {
                failed.push(&p.id);
                true
            }
            Lifecycle::Stopped => true,
            Lifecycle::Registered => !p.enabled,
            _ => false,
        };
        match ended {
            true => {
                done.insert(&p.id, true);
            }
            false => open.push(&p.id),
        }
    }
    loop {
        let stuck: Vec<&str> = open
            .iter()
            .copied()
            .filter(|id| {
                let waiting = by_id
                    .get(id)
                    .is_some_and(|s| matches!(s.lifecycle, Lifecycle::Waiting { .. }));
                waiting
                    && config.process(id).is_some_and(|p| {
                        p.depends_on.iter().any(|d| match done.get(d.id.as_str()) {
                            // Itself never to start.
                            Some(false) => true,
                            Some(true) => by_id
                                .get(d.id.as_str())
                                .is_some_and(|s| order::is_down(s, &[d.condition], success(&d.id))),
                            None => false,
                        })
                    })
            })
            .collect();
        if stuck.is_empty() {
            break;
        }
        open.retain(|id| !stuck.contains(id));
        for id in stuck {
            done.insert(id, false);
            failed.push(id);
        }
    }
    if !open.is_empty() {
        return None;
    }
    // In the config's order.
    let failed = config
        .processes
        .iter()
        .filter(|p| failed.contains(&p.id.as_str()))
        .map(|p| p.id.clone())
        .collect();
    Some(Completion::AllEnded { failed })
}

#[cfg(test)]
#[path = "tests/completion.rs"]
mod tests;
