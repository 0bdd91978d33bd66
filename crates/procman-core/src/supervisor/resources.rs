//! A run's resources: the OOM kills the kernel reports, the violations of
//! limits the manager watches, and the usage readings of the API.

use std::time::Instant;

use super::state::{Cause, Lifecycle, ResourceUsage};
use super::task::Task;
use crate::config::ViolationAction;
use crate::platform::usage::Sample;

impl Task {
    /// The kernel's OOM killer killed a process of the tree while the main
    /// process lives on: the run ends (as systemd's `OOMPolicy=stop`),
    /// and the restart policy decides.
    pub(super) async fn on_oom(&mut self) {
        let Some(run) = self.run.as_ref() else { return };
        tracing::warn!(process = %self.id(), pid = run.pid(),
            "the kernel's OOM killer killed a process of the tree (max_memory_mb); ending the run");
        self.status.send_modify(|s| s.oom_kills += 1);
        self.fail_run(Cause::Oom).await;
    }

    /// The monitor's sample is due: read the tree's usage and act on a
    /// violation that has lasted `violation_grace`.
    pub(super) async fn on_sample(&mut self) {
        let Some(run) = self.run.as_mut() else { return };
        let sample = self.tree.sample(Some(&run.child), false).await;
        let Some(monitor) = run.monitor.as_mut() else {
            return;
        };
        let Some(what) = monitor.judge(&sample, Instant::now()) else {
            return;
        };
        let pid = run.pid();
        let action = self.cfg.resource_limits.on_violation;
        self.status.send_modify(|s| s.violations += 1);
        tracing::warn!(process = %self.id(), pid, on_violation = action.as_str(),
            "resource limit exceeded: {what}");
        let cause = Cause::ResourceViolation(what);
        match action {
            ViolationAction::Log => {}
            ViolationAction::Restart => self.fail_run(cause).await,
            ViolationAction::Stop => self.fail_run_for_good(cause).await,
        }
    }

    /// What the running tree uses now; `None` when nothing runs.
    pub(super) async fn usage(&mut self) -> Option<ResourceUsage> {
        let run = self.run.as_mut()?;
        let sample = self.tree.sample(Some(&run.child), true).await;
        Some(reading(&sample, run.cpu_base, &mut run.cpu_last))
    }

    /// `on_violation: stop`: the run ends and the process is `failed`,
    /// whatever the restart policy says, until a user starts it again.
    async fn fail_run_for_good(&mut self, cause: Cause) {
        let reason = format!("{cause} (on_violation: stop)");
        self.end_run(cause, Some(Lifecycle::Failed { reason }))
            .await;
    }
}

/// A sample as the API shows it: the CPU time since `base` (microseconds),
/// and the percent of one CPU since the previous reading `last` (`(when,
/// microseconds)`), which it updates.
pub(super) fn reading(sample: &Sample, base: u64, last: &mut (Instant, u64)) -> ResourceUsage {
    let now = Instant::now();
    // Never backwards within a run: without a cgroup the time is the
    // live members', and one reaped outside the tree takes its own.
    let (then, before) = *last;
    let usec = sample.cpu_usec.map(|u| u.max(before));
    let cpu_seconds = usec.map(|u| u.saturating_sub(base) as f64 / 1e6);
    let cpu_percent = usec.and_then(|usec| {
        *last = (now, usec);
        let wall = now.duration_since(then).as_micros() as f64;
        (wall > 0.0).then(|| (usec - before) as f64 * 100.0 / wall)
    });
    ResourceUsage {
        memory_bytes: sample.memory_bytes,
        cpu_seconds,
        cpu_percent,
        processes: sample.processes,
        open_files: sample.open_files,
        from_cgroup: sample.from_cgroup,
    }
}
