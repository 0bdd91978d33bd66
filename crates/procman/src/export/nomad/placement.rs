//! Where each process goes in the job: the job's type, the group each
//! process is a task of, and the task's lifecycle hook; and which
//! `depends_on` entries that layout carries.
//!
//! A Nomad job has one type. With any enabled long-running process it is
//! a `service` job, where a main task is restarted even after exit 0, so
//! a batch process cannot be a main task: it becomes a lifecycle task,
//! which runs to completion once and is not restarted after exit 0:
//!
//! - a `prestart` task (not a sidecar) in the group of the first process
//!   that depends on it with `completed_successfully`: Nomad starts that
//!   group's main task only once every such task has exited 0, which is
//!   that condition exactly;
//! - else a `poststart` task in the group of the first long-running
//!   process it depends on (or of the first long-running process), which
//!   runs once that group's main task has started.
//!
//! When every enabled process is batch the job is a `batch` job: each
//! process is a main task of its own group, except those another process
//! waits for with `completed_successfully` (prestart tasks, as above).
//! A disabled process is a group of its own, with `count = 0`.

use procman_core::config::{
    Config, DependencyCondition, HealthCheckKind, ProcessConfig, ProcessKind, Profile,
};

use crate::export::{process_path, Warning};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobType {
    Service,
    Batch,
}

impl JobType {
    pub fn as_str(self) -> &'static str {
        match self {
            JobType::Service => "service",
            JobType::Batch => "batch",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    Main,
    Prestart,
    Poststart,
}

/// A process's place: the index (in `config.processes`) of the process
/// whose group holds it, and its hook there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Place {
    pub group: usize,
    pub hook: Hook,
}

#[derive(Debug)]
pub struct Layout {
    pub job_type: JobType,
    /// By index in `config.processes`; `None` for unmanaged processes.
    places: Vec<Option<Place>>,
}

impl Layout {
    pub fn new(config: &Config) -> Layout {
        let exported = |p: &ProcessConfig| p.kind != ProcessKind::Unmanaged;
        let long_running =
            |p: &ProcessConfig| exported(p) && p.enabled && p.profile != Profile::Batch;
        let job_type = if config.processes.iter().any(|p| long_running(p)) {
            JobType::Service
        } else {
            JobType::Batch
        };
        let mut layout = Layout {
            job_type,
            places: vec![None; config.processes.len()],
        };
        for i in 0..config.processes.len() {
            layout.place(config, i);
        }
        layout
    }

    pub fn place_of(&self, index: usize) -> Option<Place> {
        self.places.get(index).copied().flatten()
    }

    /// The processes that own a group, in config order.
    pub fn groups(&self) -> impl Iterator<Item = usize> + '_ {
        self.places
            .iter()
            .enumerate()
            .filter(|(i, place)| place.is_some_and(|p| p.group == *i))
            .map(|(i, _)| i)
    }

    /// The processes in group `owner`, in config order.
    pub fn members(&self, owner: usize) -> impl Iterator<Item = (usize, Place)> + '_ {
        self.places
            .iter()
            .enumerate()
            .filter_map(move |(i, place)| place.filter(|p| p.group == owner).map(|p| (i, p)))
    }

    fn place(&mut self, config: &Config, i: usize) -> Option<Place> {
        if let Some(place) = self.places[i] {
            return Some(place);
        }
        let p = &config.processes[i];
        if p.kind == ProcessKind::Unmanaged {
            return None;
        }
        let own = Place {
            group: i,
            hook: Hook::Main,
        };
        let place = if p.profile != Profile::Batch || !p.enabled {
            own
        } else if let Some(d) = first_waiting(config, &p.id) {
            // The dependency graph has no cycle: this recursion ends.
            match self.place(config, d) {
                // Before the host's main task; among the poststart tasks
                // when the process waiting for it is one.
                Some(host) => Place {
                    group: host.group,
                    hook: match host.hook {
                        Hook::Poststart => Hook::Poststart,
                        Hook::Main | Hook::Prestart => Hook::Prestart,
                    },
                },
                None => own,
            }
        } else if self.job_type == JobType::Service {
            let host = p
                .depends_on
                .iter()
                .filter_map(|dep| config.processes.iter().position(|q| q.id == dep.id))
                .chain(0..config.processes.len())
                .find(|&h| {
                    let q = &config.processes[h];
                    q.kind != ProcessKind::Unmanaged && q.enabled && q.profile != Profile::Batch
                });
            match host {
                Some(group) => Place {
                    group,
                    hook: Hook::Poststart,
                },
                None => own,
            }
        } else {
            own
        };
        self.places[i] = Some(place);
        Some(place)
    }

    /// The warnings about process `i`'s place and its `depends_on`
    /// entries that the layout does not carry.
    pub fn warnings(&self, config: &Config, i: usize) -> Vec<Warning> {
        let mut out = Vec::new();
        let Some(place) = self.place_of(i) else {
            return out;
        };
        let p = &config.processes[i];
        let group = |place: Place| config.processes[place.group].id.as_str();
        if place.hook == Hook::Poststart {
            out.push(Warning::new(
                process_path(i),
                format!(
                    "a batch process in a service job: `{}` runs once as a poststart task of group `{}` (after its main task has started); if it fails, Nomad stops that group too",
                    p.id,
                    group(place)
                ),
            ));
        }
        for (k, dep) in p.depends_on.iter().enumerate() {
            let path = format!("{}.depends_on[{k}]", process_path(i));
            let Some(d) = config.processes.iter().position(|q| q.id == dep.id) else {
                continue;
            };
            let what = match dep.condition {
                DependencyCondition::Started => "start",
                DependencyCondition::Healthy => "be healthy",
                DependencyCondition::CompletedSuccessfully => "complete successfully",
            };
            let Some(dplace) = self.place_of(d) else {
                out.push(Warning::new(
                    path,
                    format!(
                        "`{}` is unmanaged (not in the job): Nomad starts `{}` without waiting for it to {what}",
                        dep.id, p.id
                    ),
                ));
                continue;
            };
            if carried(config, place, dplace, d, dep.condition) {
                continue;
            }
            let message = if place.group != dplace.group {
                format!(
                    "Nomad has no ordering between groups: `{}` (group `{}`) starts without waiting for `{}` (group `{}`) to {what}",
                    p.id,
                    group(place),
                    dep.id,
                    group(dplace)
                )
            } else if place.hook == Hook::Poststart && dplace.hook == Hook::Main {
                format!(
                    "a poststart task starts once the main task runs: `{}` does not wait for `{}` to {what}",
                    p.id, dep.id
                )
            } else {
                format!(
                    "`{}` and `{}` are tasks of group `{}` that Nomad starts together: `{}` does not wait for `{}` to {what}",
                    p.id,
                    dep.id,
                    group(place),
                    p.id,
                    dep.id
                )
            };
            out.push(Warning::new(path, message));
        }
        out
    }
}

/// The first enabled exported process that depends on `id` with
/// `completed_successfully`.
fn first_waiting(config: &Config, id: &str) -> Option<usize> {
    config.processes.iter().position(|q| {
        q.kind != ProcessKind::Unmanaged
            && q.enabled
            && q.depends_on
                .iter()
                .any(|d| d.id == id && d.condition == DependencyCondition::CompletedSuccessfully)
    })
}

/// Whether the layout carries "the process at `place` waits for process
/// `d` (at `dplace`) to meet `condition`": a main task after its group's
/// prestart tasks completed, or a poststart task after the main task of a
/// process without a health check started.
fn carried(
    config: &Config,
    place: Place,
    dplace: Place,
    d: usize,
    condition: DependencyCondition,
) -> bool {
    if place.group != dplace.group {
        return false;
    }
    match (place.hook, dplace.hook, condition) {
        (Hook::Main, Hook::Prestart, DependencyCondition::CompletedSuccessfully) => true,
        (Hook::Poststart, Hook::Main, DependencyCondition::Started) => {
            let q = &config.processes[d];
            q.kind != ProcessKind::IntegratedManaged
                && q.health_check
                    .as_deref()
                    .is_none_or(|h| h.kind == HealthCheckKind::Process)
        }
        _ => false,
    }
}
