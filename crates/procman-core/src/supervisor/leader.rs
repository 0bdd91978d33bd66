//! The leader of a process's current run, as the manager's stop reaches it
//! from outside the supervisor task.
//!
//! When every process stops at once, the manager sends each its stop
//! signal itself, in one tight pass ([`Leader::stop_now`]), before it tells
//! any supervisor task: those tasks would hear the exits of the processes
//! signalled before, and their bookkeeping would hold back the signals
//! still to send. The stop command follows at once; the task then does the
//! rest of the stop (the other members of the tree, the grace period, the
//! SIGKILL) as usual. A run whose exit the task hears before that command
//! ends as a stop all the same ([`Leader::stopped`]), never restarted.
//!
//! Each run's leader gets its stop signal once, whoever sends it: the
//! manager's pass and the task both claim the run under one lock, and
//! only the one that claims it first signals (a shell in a TERM trap that
//! got TERM twice would run the trap twice). A run is only offered here
//! when its tree is a cgroup: without one, the task must list the tree's
//! members before its leader is signalled (see `platform/tree.rs`).

use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use crate::outcome::Signal;
use crate::platform::signal_pidfd;

/// The current run's leader, shared by a supervisor task and its handles.
#[derive(Debug, Default)]
pub(crate) struct Leader(Mutex<Option<Run>>);

#[derive(Debug)]
struct Run {
    /// Which run of the process (the task's run number).
    number: u32,
    /// Held weakly: the run's descriptor closes with the run, not later.
    pidfd: Weak<OwnedFd>,
    signal: Signal,
    /// The stop signal was sent to it.
    stopped: bool,
}

impl Leader {
    fn lock(&self) -> MutexGuard<'_, Option<Run>> {
        // Nothing panics while holding it; a poisoned lock is still right.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Run `number` started: its leader (by its pidfd) and its stop signal.
    pub(crate) fn started(&self, number: u32, pidfd: &Arc<OwnedFd>, signal: Signal) {
        *self.lock() = Some(Run {
            number,
            pidfd: Arc::downgrade(pidfd),
            signal,
            stopped: false,
        });
    }

    /// No run to offer (it ended, or its tree cannot be stopped this way).
    pub(crate) fn clear(&self) {
        *self.lock() = None;
    }

    /// The stop signal changed (a reload): for the current run too.
    pub(crate) fn set_signal(&self, signal: Signal) {
        if let Some(run) = self.lock().as_mut() {
            run.signal = signal;
        }
    }

    /// The manager's pass: sends the stop signal (then SIGCONT, as every
    /// stop does) to the current run's leader, unless it was sent already.
    /// The stop command must follow.
    pub(crate) fn stop_now(&self) {
        let mut slot = self.lock();
        let Some(run) = slot.as_mut().filter(|r| !r.stopped) else {
            return;
        };
        run.stopped = true;
        // Gone with its run: nothing to signal.
        let Some(fd) = run.pidfd.upgrade() else {
            return;
        };
        let _ = signal_pidfd(&*fd, run.signal);
        if run.signal != Signal::KILL {
            let _ = signal_pidfd(&*fd, Signal::CONT);
        }
    }

    /// Whether the stop signal went to run `number` (its exit is then the
    /// stop's doing, whoever sent it).
    pub(crate) fn stopped(&self, number: u32) -> bool {
        self.lock()
            .as_ref()
            .is_some_and(|r| r.number == number && r.stopped)
    }

    /// The task's stop of run `number`: true if the task is to signal the
    /// leader itself, false if the manager's pass did already. Either way
    /// the run counts as signalled from now on.
    pub(crate) fn claim(&self, number: u32) -> bool {
        match self.lock().as_mut() {
            Some(run) if run.number == number => !std::mem::replace(&mut run.stopped, true),
            _ => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::ProcessEnd;
    use crate::platform::{spawn_blocking, Spawned, TreeRoot};

    fn sleeper() -> Spawned {
        let tree = TreeRoot::without_cgroups().tree("leader");
        spawn_blocking(crate::testing::sh("exec sleep 30"), &tree).expect("spawn sleep")
    }

    #[test]
    fn the_pass_signals_the_run_and_the_task_leaves_its_leader_alone() {
        let spawned = sleeper();
        let leader = Leader::default();
        let fd = spawned.child.shared_pidfd().expect("a pidfd");
        leader.started(1, fd, Signal::TERM);
        assert!(!leader.stopped(1));
        leader.stop_now();
        assert!(leader.stopped(1));
        assert!(!leader.claim(1), "signalled by the pass: not again");
        let end = spawned.exit.blocking_recv().expect("its end");
        assert_eq!(
            end,
            ProcessEnd::Signaled {
                signal: Signal::TERM,
                core: false
            }
        );
    }

    #[test]
    fn each_run_is_claimed_once_and_only_the_current_run_is_offered() {
        let spawned = sleeper();
        let leader = Leader::default();
        let fd = spawned.child.shared_pidfd().expect("a pidfd");
        leader.started(2, fd, Signal::TERM);
        assert!(leader.claim(2), "the task signals it");
        assert!(!leader.claim(2), "and only once");
        assert!(leader.stopped(2));
        assert!(leader.claim(3), "another run is not this one");
        assert!(!leader.stopped(3));
        leader.clear();
        assert!(!leader.stopped(2));
        assert!(leader.claim(2), "nothing offered: the task signals");
        let _ = spawned.child.signal(Signal::KILL);
        let _ = spawned.exit.blocking_recv();
    }

    #[test]
    fn the_descriptor_stays_the_runs_and_a_run_gone_is_not_signalled() {
        let spawned = sleeper();
        let leader = Leader::default();
        let fd = spawned.child.shared_pidfd().expect("a pidfd");
        leader.started(1, fd, Signal::TERM);
        assert_eq!(
            Arc::strong_count(fd),
            1,
            "held weakly: it closes with the run"
        );
        let Spawned { child, exit } = spawned;
        let _ = child.signal(Signal::KILL);
        drop(child);
        leader.stop_now();
        assert_eq!(
            exit.blocking_recv().expect("its end"),
            ProcessEnd::Signaled {
                signal: Signal::KILL,
                core: false
            }
        );
    }
}
