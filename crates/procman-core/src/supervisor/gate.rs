//! The start gate of a process with `depends_on`. Every launch (a start,
//! a restart, the policy's restart on its timer) passes it: when every
//! dependency meets its condition the run is spawned at once; otherwise
//! the process is `waiting`, with a reason people can read, and its task
//! watches its dependencies' published states (no polling) until they do.
//!
//! Only a launch is gated: a dependency that stops or restarts later
//! leaves a process that runs alone (as docker compose does).

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

use super::bulletin;
use super::state::{Cause, Lifecycle, Phase, ProcessStatus};
use super::task::Task;
use crate::config::DependencyCondition;
use crate::health::verdict::Health;
use crate::policy;

/// One dependency of a process, as its supervisor watches it.
#[derive(Debug, Clone)]
pub(crate) struct Upstream {
    pub id: String,
    pub condition: DependencyCondition,
    pub status: bulletin::Receiver<ProcessStatus>,
    /// Its `enabled`: one that is not never starts with the manager, and
    /// the reason says so.
    pub enabled: bool,
    /// Its `success_exit_codes`: what `completed_successfully` counts.
    pub success_exit_codes: Vec<i32>,
    /// Its supervisor has ended: its last state is all there will be.
    pub gone: bool,
    /// It is `unmanaged`: found, never started by procman.
    pub unmanaged: bool,
}

impl Upstream {
    /// What this dependency lacks, in words (`db to be healthy (db is
    /// starting)`); `None` when its condition holds.
    pub(crate) fn unmet(&self) -> Option<String> {
        let s = self.status.borrow();
        if self.holds(&s) {
            return None;
        }
        let id = &self.id;
        let what = match self.condition {
            DependencyCondition::Started => id.clone(),
            DependencyCondition::Healthy => format!("{id} to be healthy"),
            DependencyCondition::CompletedSuccessfully => {
                format!("{id} to complete successfully")
            }
        };
        Some(format!("{what} ({})", self.state_text(&s)))
    }

    /// Whether the condition holds for the state `s`.
    pub(crate) fn holds(&self, s: &ProcessStatus) -> bool {
        match (self.condition, &s.lifecycle) {
            (DependencyCondition::Started, Lifecycle::Running { .. }) => true,
            (DependencyCondition::Healthy, Lifecycle::Running { .. }) => s
                .health
                .as_ref()
                .is_some_and(|h| h.health == Health::Healthy),
            (DependencyCondition::CompletedSuccessfully, Lifecycle::Exited { end }) => {
                policy::classify(*end, &self.success_exit_codes) == policy::Outcome::Success
            }
            _ => false,
        }
    }

    /// Where the dependency is, as the end of a reason.
    fn state_text(&self, s: &ProcessStatus) -> String {
        let id = &self.id;
        match &s.lifecycle {
            Lifecycle::Registered if self.unmanaged => format!("{id} has not been found"),
            Lifecycle::Exited { .. } if self.unmanaged => format!("{id} is gone"),
            Lifecycle::Registered if !self.enabled => format!("{id} is not enabled; start it"),
            Lifecycle::Registered => format!("{id} has not been started"),
            Lifecycle::Running { .. } => match (self.condition, &s.health) {
                (DependencyCondition::Healthy, Some(h)) if h.health == Health::Unhealthy => {
                    format!("{id} is running but unhealthy")
                }
                (DependencyCondition::Healthy, _) => format!("{id} is running, not yet healthy"),
                _ => format!("{id} is running"),
            },
            Lifecycle::Exited { end } => format!("{id} {end}"),
            // A run that ended badly says how; other failures say why.
            Lifecycle::Failed { reason } => match s.last_transition.as_ref().map(|t| &t.cause) {
                Some(Cause::Exit(end)) => format!("{id} {end}"),
                _ => format!("{id} failed: {reason}"),
            },
            other => format!("{id} is {}", other.phase()),
        }
    }
}

/// Why a process with these dependencies cannot start now (`waiting for
/// db to be healthy (db is starting)`); `None`: it can.
pub(crate) fn reason(upstreams: &[Upstream]) -> Option<String> {
    let unmet: Vec<String> = upstreams.iter().filter_map(Upstream::unmet).collect();
    (!unmet.is_empty()).then(|| format!("waiting for {}", unmet.join(" and for ")))
}

/// A wait for one dependency's next state: `false` when its supervisor
/// has ended.
type Change<'u> = Pin<Box<dyn Future<Output = bool> + Send + 'u>>;

/// Resolves when a dependency publishes a new state (or its supervisor
/// ends): its index. Never, when none is left to watch.
pub(super) async fn changed(upstreams: &mut [Upstream]) -> usize {
    let mut watching: Vec<(usize, Change<'_>)> = upstreams
        .iter_mut()
        .enumerate()
        .filter(|(_, u)| !u.gone)
        .map(|(i, u)| {
            let change: Change<'_> = Box::pin(async move {
                let alive = u.status.changed().await.is_ok();
                u.gone = !alive;
                alive
            });
            (i, change)
        })
        .collect();
    if watching.is_empty() {
        return std::future::pending().await;
    }
    std::future::poll_fn(|cx| {
        for (i, change) in watching.iter_mut() {
            if change.as_mut().poll(cx).is_ready() {
                return Poll::Ready(*i);
            }
        }
        Poll::Pending
    })
    .await
}

/// A launch the gate held back: what it was, to be done once it opens.
#[derive(Debug)]
pub(super) struct Held {
    pub(super) cause: Cause,
    /// Why the run before ended (the cause kind of the transition into
    /// `backoff`), for the count of restarts by cause.
    pub(super) after: Option<&'static str>,
}

impl Task {
    /// The gate of a launch for `cause`: `true` when it is held back (the
    /// process is, or stays, `waiting`), `false` when it may go ahead.
    pub(super) fn hold(&mut self, cause: &Cause) -> bool {
        let Some(reason) = reason(&self.upstreams) else {
            return false;
        };
        let after = self
            .status
            .borrow()
            .last_transition
            .as_ref()
            .map(|t| t.cause.kind());
        match &mut self.held {
            // Held already: the latest request is the one carried out.
            Some(held) => held.cause = cause.clone(),
            None => {
                self.held = Some(Held {
                    cause: cause.clone(),
                    after,
                })
            }
        }
        self.wait(reason, cause.clone());
        true
    }

    /// Goes to (or stays) `waiting` for `reason`: a new transition only
    /// when the reason's text changed.
    fn wait(&mut self, reason: String, cause: Cause) {
        if matches!(&self.status.borrow().lifecycle, Lifecycle::Waiting { reason: r } if *r == reason)
        {
            return;
        }
        self.go(Lifecycle::Waiting { reason }, cause);
    }

    /// A dependency changed (`cause` says which), or the dependencies were
    /// replaced: a `waiting` process launches if they are all ready now,
    /// else its reason is brought up to date.
    pub(super) async fn recheck(&mut self, cause: Cause) {
        if self.phase() != Phase::Waiting {
            return;
        }
        match reason(&self.upstreams) {
            Some(reason) => self.wait(reason, cause),
            None => {
                let cause = self
                    .held
                    .as_ref()
                    .map_or(Cause::StartRequested, |h| h.cause.clone());
                let _ = self.launch(cause).await;
            }
        }
    }

    /// New dependencies (the manager wired them, at start or after a
    /// reload): they apply to the next launch, and to a launch held now.
    pub(super) async fn depend_on(&mut self, upstreams: Vec<Upstream>) {
        self.upstreams = upstreams;
        let cause = self
            .held
            .as_ref()
            .map_or(Cause::StartRequested, |h| h.cause.clone());
        self.recheck(cause).await;
    }
}

#[cfg(test)]
#[path = "tests/gate.rs"]
mod tests;
