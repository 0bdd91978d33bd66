//! What the config's resource limits need from the host, and the one
//! warning at start when the host cannot give it.

use crate::config::{Config, ProcessConfig, ProcessKind};
use crate::platform::{Controller, Controllers};

/// The controllers the limits of the config's managed processes need
/// (an unmanaged process is never started, so never confined).
pub(super) fn needed(config: &Config) -> Vec<Controller> {
    Controller::ALL
        .into_iter()
        .filter(|&c| managed(config).any(|p| p.resource_limits.kernel().is_set(c)))
        .collect()
}

fn managed(config: &Config) -> impl Iterator<Item = &ProcessConfig> {
    config
        .processes
        .iter()
        .filter(|p| p.kind != ProcessKind::Unmanaged)
        .map(|p| p.as_ref())
}

/// Logs once, at start, which limits the kernel cannot enforce here, why,
/// and what still works: the manager samples them and applies
/// `on_violation`.
pub(super) fn report(config: &Config, controllers: &Controllers) {
    let mut missing = Vec::new();
    for ctrl in needed(config) {
        if controllers.on_v2(ctrl) || controllers.v1_root(ctrl).is_some() {
            continue;
        }
        let why = controllers
            .missing()
            .iter()
            .find(|(c, _)| *c == ctrl)
            .map_or("cgroups are not used by this manager", |(_, w)| w.as_str());
        let ids: Vec<&str> = managed(config)
            .filter(|p| p.resource_limits.kernel().is_set(ctrl))
            .map(|p| p.id.as_str())
            .collect();
        missing.push(format!("{} of {} ({why})", ctrl.key(), ids.join(", ")));
    }
    if missing.is_empty() {
        return;
    }
    tracing::warn!(
        "the kernel cannot enforce {} on this host; the manager samples their usage \
         every sample_interval and applies on_violation after violation_grace instead. \
         Still enforced by the kernel: max_file_descriptors (rlimit) and every other limit",
        missing.join("; ")
    );
}
