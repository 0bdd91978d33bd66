//! The watch on limits the kernel does not enforce for a run (no cgroup
//! controller on this host, or one that refused the value): usage sampled
//! every `sample_interval`, and a violation once a limit has been exceeded
//! for `violation_grace`. A run whose limits are all in the kernel has no
//! monitor, so no timer: an idle manager stays idle.

use std::time::{Duration, Instant};

use crate::config::ResourceLimits;
use crate::platform::usage::Sample;
use crate::platform::{Controller, Enforcement, Limits};

pub(super) struct Monitor {
    limits: Limits,
    watched: Vec<Controller>,
    interval: Duration,
    grace: Duration,
    /// When the next sample is due.
    pub(super) next: Instant,
    /// The last CPU reading, for the percentage over the interval.
    last_cpu: Option<(Instant, u64)>,
    /// Since when each watched limit has been exceeded.
    over_since: Vec<(Controller, Instant)>,
    /// Limits whose violation was acted on, until usage is back under.
    acted: Vec<Controller>,
}

impl Monitor {
    /// A monitor for the limits of `cfg` that `enforcement` leaves to the
    /// manager; `None` when there are none.
    pub(super) fn new(cfg: &ResourceLimits, enforcement: &Enforcement) -> Option<Monitor> {
        let watched: Vec<Controller> = enforcement.monitored().collect();
        if watched.is_empty() {
            return None;
        }
        Some(Monitor {
            limits: cfg.kernel(),
            watched,
            interval: cfg.sample_interval,
            grace: cfg.violation_grace,
            next: Instant::now() + cfg.sample_interval,
            last_cpu: None,
            over_since: Vec::new(),
            acted: Vec::new(),
        })
    }

    /// Judges a sample taken at `now`; the violation to act on, once per
    /// episode (usage must go back under the limit before the next one).
    pub(super) fn judge(&mut self, sample: &Sample, now: Instant) -> Option<String> {
        self.next = now + self.interval;
        let cpu = self.cpu_percent(sample, now);
        let mut due = None;
        for ctrl in self.watched.clone() {
            let over = match ctrl {
                Controller::Memory => {
                    over(sample.memory_bytes, self.limits.memory_bytes).then(|| {
                        format!(
                            "memory {} over max_memory_mb {}",
                            mib(sample.memory_bytes.unwrap_or(0)),
                            self.limits.memory_bytes.unwrap_or(0) >> 20
                        )
                    })
                }
                Controller::Cpu => match (cpu, self.limits.cpu_percent) {
                    (Some(used), Some(max)) if used > max => {
                        Some(format!("CPU {used:.0}% over max_cpu_percent {max}"))
                    }
                    _ => None,
                },
                Controller::Pids => over(Some(u64::from(sample.processes)), self.limits.processes)
                    .then(|| {
                        format!(
                            "{} processes over max_processes {}",
                            sample.processes,
                            self.limits.processes.unwrap_or(0)
                        )
                    }),
            };
            let Some(what) = over else {
                self.over_since.retain(|(c, _)| *c != ctrl);
                self.acted.retain(|c| *c != ctrl);
                continue;
            };
            let since = match self.over_since.iter().find(|(c, _)| *c == ctrl) {
                Some((_, t)) => *t,
                None => {
                    self.over_since.push((ctrl, now));
                    now
                }
            };
            let lasted = now.duration_since(since);
            if lasted >= self.grace && !self.acted.contains(&ctrl) && due.is_none() {
                self.acted.push(ctrl);
                let after = humantime::format_duration(Duration::from_secs(lasted.as_secs()));
                due = Some(if lasted.as_secs() > 0 {
                    format!("{what} for {after}")
                } else {
                    what
                });
            }
        }
        due
    }

    /// CPU percent of one core since the last sample (none at the first).
    fn cpu_percent(&mut self, sample: &Sample, now: Instant) -> Option<f64> {
        let usec = sample.cpu_usec?;
        let last = self.last_cpu.replace((now, usec));
        let (then, before) = last?;
        let wall = now.duration_since(then).as_micros() as f64;
        (wall > 0.0 && usec >= before).then(|| (usec - before) as f64 * 100.0 / wall)
    }
}

fn over(used: Option<u64>, max: Option<u64>) -> bool {
    matches!((used, max), (Some(u), Some(m)) if u > m)
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / f64::from(1 << 20))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::Enforcer;

    fn monitor(grace: Duration) -> Monitor {
        let cfg = ResourceLimits {
            max_memory_mb: Some(10),
            max_cpu_percent: Some(50.0),
            violation_grace: grace,
            ..ResourceLimits::default()
        };
        let enforcement = Enforcement(vec![
            (Controller::Memory, Enforcer::Monitor),
            (Controller::Cpu, Enforcer::Monitor),
        ]);
        Monitor::new(&cfg, &enforcement).expect("limits to watch")
    }

    fn sample(mb: u64, cpu_usec: u64) -> Sample {
        Sample {
            memory_bytes: Some(mb << 20),
            cpu_usec: Some(cpu_usec),
            processes: 1,
            ..Sample::default()
        }
    }

    #[test]
    fn limits_in_the_kernel_need_no_monitor() {
        let cfg = ResourceLimits {
            max_memory_mb: Some(10),
            ..ResourceLimits::default()
        };
        let enforced = Enforcement(vec![(Controller::Memory, Enforcer::CgroupV1)]);
        assert!(Monitor::new(&cfg, &enforced).is_none());
    }

    #[test]
    fn a_violation_counts_once_it_lasts_the_grace_and_once_per_episode() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut m = monitor(Duration::from_secs(3));
        assert_eq!(m.judge(&sample(5, 0), t0), None, "under the limit");
        assert_eq!(m.judge(&sample(20, 0), t0 + s), None, "over, not for long");
        assert_eq!(m.judge(&sample(20, 0), t0 + 3 * s), None);
        let v = m.judge(&sample(20, 0), t0 + 4 * s).expect("sustained");
        assert!(
            v.starts_with("memory 20.0 MiB over max_memory_mb 10"),
            "{v}"
        );
        assert_eq!(m.judge(&sample(20, 0), t0 + 5 * s), None, "acted on once");
        assert_eq!(m.judge(&sample(5, 0), t0 + 6 * s), None, "back under");
        assert_eq!(m.judge(&sample(20, 0), t0 + 7 * s), None, "a new episode");
        assert!(m.judge(&sample(20, 0), t0 + 10 * s).is_some());
    }

    #[test]
    fn cpu_is_judged_over_the_interval_between_samples() {
        let t0 = Instant::now();
        let mut m = monitor(Duration::ZERO);
        assert_eq!(m.judge(&sample(1, 0), t0), None, "no interval yet");
        // 0.4 s of CPU in 1 s: 40 %, under 50 %.
        let s = Duration::from_secs(1);
        assert_eq!(m.judge(&sample(1, 400_000), t0 + s), None);
        // Then 0.9 s in 1 s: 90 %.
        let v = m.judge(&sample(1, 1_300_000), t0 + 2 * s).expect("over");
        assert_eq!(v, "CPU 90% over max_cpu_percent 50");
    }
}
