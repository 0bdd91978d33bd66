//! New settings for a process that keeps its run (a reload's "changed in
//! place"): the restart policy, stop settings and success codes are read
//! at the next decision; what the running process is held to (a limit's
//! new value, the health check, the startup timeout) is applied now.

use std::sync::Arc;
use std::time::Instant;

use super::launch;
use super::monitor::Monitor;
use super::run::HealthWatch;
use super::state::{Cause, Lifecycle, Phase};
use super::task::Task;
use crate::config::ProcessConfig;

impl Task {
    pub(super) fn reconfigure(&mut self, cfg: Arc<ProcessConfig>) {
        let old = std::mem::replace(&mut self.cfg, cfg);
        *self.cfg_digest.get_mut() = 0;
        tracing::info!(process = %self.id(), "settings changed in place by a reload");
        self.leader.set_signal(self.cfg.control.shutdown_signal);
        if self.run.is_none() {
            return;
        }
        if old.resource_limits != self.cfg.resource_limits {
            self.relimit();
        }
        if launch::health_check(&old) != launch::health_check(&self.cfg) {
            self.new_health_check();
        } else if old.control.startup_timeout != self.cfg.control.startup_timeout {
            if let (Some(run), Some(_)) = (&self.run, self.startup_deadline) {
                self.startup_deadline = Some(run.started + self.cfg.control.startup_timeout);
            }
        }
        // The state file names the config the run follows now.
        self.save_record(self.held_pipes.clone(), self.port);
    }

    /// New values of limits already set: written into the run's cgroups
    /// (what the kernel refuses, such as a memory limit below what is in
    /// use on cgroup v1, goes to the monitor with a warning).
    fn relimit(&mut self) {
        let limits = self.cfg.resource_limits.clone();
        let enforcement = self.tree.limit(&limits.kernel());
        if let Some(run) = self.run.as_mut() {
            run.monitor = Monitor::new(&limits, &enforcement).map(Box::new);
        }
        self.status.send_modify(|s| s.enforcement = enforcement);
    }

    /// A new health check (or none) for the running process. One that was
    /// ready stays `running`, its new check's failures counting from the
    /// first; one still `starting` waits for the new check's first pass,
    /// within `startup_timeout` from its spawn, or is ready at once when
    /// it no longer has a check.
    fn new_health_check(&mut self) {
        let Some(run) = self.run.as_mut() else { return };
        let (pid, started) = (run.pid(), run.started);
        let env = launch::spec(&self.cfg, &self.ctx.config_dir, self.port)
            .map(|s| s.env)
            .unwrap_or_default();
        let watch = launch::health_check(&self.cfg).and_then(|hc| {
            let target = launch::probe_target(
                &self.cfg,
                &self.ctx.config_dir,
                run.child.id(),
                self.port,
                env,
            );
            HealthWatch::start(&self.cfg.id, hc, &target)
        });
        let starting = self.status.borrow().phase() == Phase::Starting;
        run.health = watch.map(|mut w| {
            if !starting {
                w.assume_ready();
            }
            w
        });
        let checked = run.health.is_some();
        if !checked {
            self.status.send_modify(|s| s.health = None);
        }
        if starting {
            if checked {
                self.startup_deadline = Some(started + self.cfg.control.startup_timeout);
                if self.startup_deadline.is_some_and(|d| d < Instant::now()) {
                    self.startup_deadline = Some(Instant::now());
                }
            } else {
                self.startup_deadline = None;
                self.go(Lifecycle::Running { pid }, Cause::Ready);
            }
        }
    }
}
