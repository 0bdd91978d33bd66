//! `depends_on` as init containers: one per dependency that has a
//! Service, waiting until a connection to the Service succeeds. A Service
//! sends connections only to ready pods (those whose readiness probe, the
//! dependency's health check, passes), so a connection means the
//! dependency is `started` and, having a check, `healthy`. Kubernetes has
//! no wait for a Job's completion, nor for a pod without a Service: those
//! are warnings, and README.md says in what order to apply the files.

use std::collections::HashSet;

use procman_core::config::{Config, DependencyCondition, Profile};

use super::yaml::{strings, Map, Node};
use super::{Notes, Process, Target};
use crate::export::{dns_label, unique_name};

/// The image of the init containers that wait (its `sh` and `nc`).
pub(super) const WAIT_IMAGE: &str = "busybox:1.36";

/// The init containers of `x`, one per dependency it can wait for, in
/// `depends_on` order.
pub(super) fn init_containers(x: &Process<'_>, notes: &mut Notes<'_>) -> Vec<Node> {
    let mut containers = Vec::new();
    // Container names are unique in a pod, the process's own included.
    let mut taken = HashSet::from([x.name.to_string()]);
    for (j, dep) in x.p.depends_on.iter().enumerate() {
        let key = format!("depends_on[{j}]");
        let Some(index) = x.config.processes.iter().position(|q| q.id == dep.id) else {
            continue;
        };
        // Only an unmanaged process has no target.
        let Some(target) = &x.targets[index] else {
            notes.warn(
                &key,
                format!("`{}` is unmanaged, so nothing is exported for it: this pod starts without waiting for it", dep.id),
            );
            continue;
        };
        if dep.condition == DependencyCondition::CompletedSuccessfully {
            let then = if x.config.processes[index].profile == Profile::Batch {
                format!("; apply {name}.yaml and wait for its Job (`kubectl wait --for=condition=complete job/{name}`) before this process's file (README.md of `-o DIR` gives the order)", name = target.name)
            } else {
                String::new()
            };
            notes.warn(
                &key,
                format!("Kubernetes cannot make a pod wait for another one to complete: this pod starts without waiting for `{}`{then}", dep.id),
            );
            continue;
        }
        let Some(port) = target.port else {
            notes.warn(
                &key,
                format!("`{}` serves no port, so it has no Service to wait for: this pod starts without waiting for it", dep.id),
            );
            continue;
        };
        let service = &target.name;
        let script = format!(
            "until nc -z -w 2 {service} {port}; do echo waiting for {service}; sleep 2; done"
        );
        let name = unique_name(dns_label(&format!("wait-for-{service}"), 63), &taken, 63);
        taken.insert(name.clone());
        containers.push(
            Map::new()
                .with("name", name)
                .with("image", WAIT_IMAGE)
                .with("command", strings(&["sh", "-c", &script]))
                .into(),
        );
    }
    containers
}

/// One step of applying the files: these files, then a wait for each of
/// these Jobs (with the processes that need it complete).
#[derive(Debug, PartialEq)]
pub(super) struct Stage<'a> {
    pub files: Vec<&'a str>,
    pub jobs: Vec<(&'a str, Vec<&'a str>)>,
}

/// The order of applying the files when processes wait for Jobs to
/// complete: a process goes in the stage after the last Job it waits for;
/// one stage when none does.
pub(super) fn stages<'a>(config: &'a Config, targets: &'a [Option<Target>]) -> Vec<Stage<'a>> {
    // The Jobs each exported process waits for, by config index.
    let waits: Vec<Vec<usize>> = config
        .processes
        .iter()
        .map(|p| {
            p.depends_on
                .iter()
                .filter(|d| d.condition == DependencyCondition::CompletedSuccessfully)
                .filter_map(|d| config.processes.iter().position(|q| q.id == d.id))
                .filter(|&k| targets[k].is_some() && config.processes[k].profile == Profile::Batch)
                .collect()
        })
        .collect();
    // Dependencies have no cycle: each pass settles at least one more
    // step of the longest chain, so there are at most as many as processes.
    let mut level = vec![0_usize; waits.len()];
    let mut changed = true;
    for _ in 0..=waits.len() {
        if !changed {
            break;
        }
        changed = false;
        for (i, jobs) in waits.iter().enumerate() {
            let wanted = jobs.iter().map(|&k| level[k] + 1).max().unwrap_or(0);
            if wanted > level[i] {
                level[i] = wanted;
                changed = true;
            }
        }
    }
    let mut stages: Vec<Stage<'a>> = Vec::new();
    for (i, target) in targets.iter().enumerate() {
        let Some(t) = target else { continue };
        while stages.len() <= level[i] {
            stages.push(Stage {
                files: Vec::new(),
                jobs: Vec::new(),
            });
        }
        stages[level[i]].files.push(&t.name);
        for &k in &waits[i] {
            let Some(job) = &targets[k] else { continue };
            let stage = &mut stages[level[k]];
            match stage.jobs.iter_mut().find(|(name, _)| *name == job.name) {
                Some((_, waiters)) => waiters.push(&t.name),
                None => stage.jobs.push((&job.name, vec![&t.name])),
            }
        }
    }
    stages
}
