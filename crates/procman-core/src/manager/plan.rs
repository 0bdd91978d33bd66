//! The plan of a reload: what a new config changes, process by process,
//! and how each change is applied. A pure comparison of two valid
//! configs; [`super::reload`] carries it out.
//!
//! A process is *changed* when its next run must differ from the current
//! one in a way only a new run can give: what is executed and how
//! (command, arguments, environment and `env_file` contents, user,
//! working directory, type), its log file and format (set when a run's
//! output is first read), a limit added or removed (the run must join or
//! leave a cgroup) or `max_file_descriptors` (an rlimit set at exec). It is
//! *changed in place* when the running process can keep going under the
//! new settings: restart policy, health check, stop settings, startup
//! timeout, success exit codes, dependencies, a new value for a limit that
//! is already set (written into its cgroup), and the monitor's policy.

use crate::config::{Config, ManagerConfig, ProcessConfig, ProcessKind, ResourceLimits};

/// What a reload does.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Plan {
    /// New processes, started when `enabled`.
    pub added: Vec<String>,
    /// Processes gone from the file, stopped.
    pub removed: Vec<String>,
    /// Processes restarted with their new settings (started only when
    /// `enabled`), with the keys that changed.
    pub changed: Vec<Change>,
    /// Processes whose new settings apply without a restart.
    pub changed_in_place: Vec<Change>,
    /// Processes left as they are: same PID, log file and counters.
    pub unchanged: Vec<String>,
    /// Changes outside the processes (the manager section, log
    /// collection), each applied or waiting for a restart of the manager.
    pub manager: Vec<ManagerChange>,
}

/// One process's changed keys, as key paths of the config file.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Change {
    pub id: String,
    pub keys: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ManagerChange {
    /// The key path, e.g. `process_manager.port`.
    pub key: String,
    /// Applied by the reload; `false`: takes effect when the manager is
    /// restarted.
    pub applied: bool,
}

impl Plan {
    /// What turning `old` into `new` takes.
    pub fn between(old: &Config, new: &Config) -> Plan {
        let mut plan = Plan::default();
        let by_id = |c: &'_ Config| -> std::collections::HashMap<String, usize> {
            c.processes
                .iter()
                .enumerate()
                .map(|(i, p)| (p.id.clone(), i))
                .collect()
        };
        let (olds, news) = (by_id(old), by_id(new));
        for p in &new.processes {
            match olds.get(&p.id).map(|&i| &old.processes[i]) {
                None => plan.added.push(p.id.clone()),
                Some(before) => {
                    let (mut restart, mut live) = compare(before, p);
                    // An unmanaged process has no run to keep: its
                    // supervisor is replaced, and it is looked for anew
                    // (procman never signals it either way).
                    if p.kind == ProcessKind::Unmanaged && restart.is_empty() {
                        restart = live;
                        live = Vec::new();
                    }
                    if !restart.is_empty() {
                        plan.changed.push(Change {
                            id: p.id.clone(),
                            keys: restart.into_iter().chain(live).collect(),
                        });
                    } else if !live.is_empty() {
                        plan.changed_in_place.push(Change {
                            id: p.id.clone(),
                            keys: live,
                        });
                    } else {
                        plan.unchanged.push(p.id.clone());
                    }
                }
            }
        }
        plan.removed = old
            .processes
            .iter()
            .filter(|p| !news.contains_key(&p.id))
            .map(|p| p.id.clone())
            .collect();
        plan.manager = manager_changes(old, new);
        plan
    }

    /// Process `id` needs a new run after all (`key` changed outside the
    /// config file: the contents of its `env_file`).
    pub(super) fn needs_new_run(&mut self, id: &str, key: &str) {
        let mut keys = vec![key.to_string()];
        if let Some(at) = self.changed_in_place.iter().position(|c| c.id == id) {
            keys.extend(self.changed_in_place.remove(at).keys);
        } else if let Some(at) = self.unchanged.iter().position(|u| u == id) {
            self.unchanged.remove(at);
        } else {
            return;
        }
        self.changed.push(Change {
            id: id.to_string(),
            keys,
        });
    }

    /// Whether the reload changes nothing at all.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty()
            && self.removed.is_empty()
            && self.changed.is_empty()
            && self.changed_in_place.is_empty()
            && self.manager.is_empty()
    }

    /// Whether some change waits for a restart of the manager.
    pub fn needs_manager_restart(&self) -> bool {
        self.manager.iter().any(|c| !c.applied)
    }
}

/// The keys that differ: those that need a new run, those that do not.
fn compare(a: &ProcessConfig, b: &ProcessConfig) -> (Vec<String>, Vec<String>) {
    let mut restart = Vec::new();
    let mut live = Vec::new();
    let mut check = |differs: bool, key: &str, needs_run: bool| {
        if differs {
            let list = if needs_run { &mut restart } else { &mut live };
            list.push(key.to_string());
        }
    };
    let (ca, cb) = (&a.control, &b.control);
    check(a.kind != b.kind, "type", true);
    check(a.profile != b.profile, "profile_type", true);
    check(a.enabled != b.enabled, "enabled", true);
    // `management.control` keys: (differs, key, needs a new run).
    let control = [
        (ca.executable != cb.executable, "executable", true),
        (ca.arguments != cb.arguments, "arguments", true),
        (
            ca.working_directory != cb.working_directory,
            "working_directory",
            true,
        ),
        (ca.environment != cb.environment, "environment", true),
        (ca.env_file != cb.env_file, "env_file", true),
        (ca.user != cb.user, "user", true),
        (ca.group != cb.group, "group", true),
        (ca.port != cb.port, "port", true),
        (
            ca.startup_timeout != cb.startup_timeout,
            "startup_timeout",
            false,
        ),
        (
            ca.shutdown_timeout != cb.shutdown_timeout,
            "shutdown_timeout",
            false,
        ),
        (
            ca.shutdown_signal != cb.shutdown_signal,
            "shutdown_signal",
            false,
        ),
        (
            ca.success_exit_codes != cb.success_exit_codes,
            "success_exit_codes",
            false,
        ),
    ];
    for (differs, key, needs_run) in control {
        check(differs, &format!("management.control.{key}"), needs_run);
    }
    check(a.discovery != b.discovery, "management.discovery", true);
    check(a.logging != b.logging, "management.logging", true);
    limits(&a.resource_limits, &b.resource_limits, &mut check);
    check(a.restart != b.restart, "management.restart_policy", false);
    check(
        a.health_check != b.health_check,
        "management.health_check",
        false,
    );
    check(a.depends_on != b.depends_on, "depends_on", false);
    check(
        a.shutdown_on_exit != b.shutdown_on_exit,
        "shutdown_on_exit",
        false,
    );
    check(a.export != b.export, "export", false);
    (restart, live)
}

/// Limits: a value changed where one was set is written live; one added
/// or removed needs a new run (it joins or leaves a cgroup); the
/// descriptor limit is set at exec.
fn limits(a: &ResourceLimits, b: &ResourceLimits, check: &mut impl FnMut(bool, &str, bool)) {
    let base = "management.resource_limits";
    let kernel = [
        (
            "max_memory_mb",
            a.max_memory_mb.is_some(),
            b.max_memory_mb.is_some(),
            a.max_memory_mb != b.max_memory_mb,
        ),
        (
            "max_cpu_percent",
            a.max_cpu_percent.is_some(),
            b.max_cpu_percent.is_some(),
            a.max_cpu_percent != b.max_cpu_percent,
        ),
        (
            "max_processes",
            a.max_processes.is_some(),
            b.max_processes.is_some(),
            a.max_processes != b.max_processes,
        ),
    ];
    for (key, was, is, differs) in kernel {
        check(differs, &format!("{base}.{key}"), was != is);
    }
    check(
        a.max_file_descriptors != b.max_file_descriptors,
        &format!("{base}.max_file_descriptors"),
        true,
    );
    check(
        a.on_violation != b.on_violation
            || a.violation_grace != b.violation_grace
            || a.sample_interval != b.sample_interval,
        &format!("{base} (on_violation, violation_grace, sample_interval)"),
        false,
    );
}

/// The manager section and log collection: only `force_shutdown_timeout`
/// is read after start; the rest waits for a restart of the manager.
fn manager_changes(old: &Config, new: &Config) -> Vec<ManagerChange> {
    let (a, b): (&ManagerConfig, &ManagerConfig) = (&old.manager, &new.manager);
    let keys = [
        ("process_manager.port", a.port != b.port, false),
        ("process_manager.bind", a.bind != b.bind, false),
        (
            "process_manager.log_level",
            a.log_level != b.log_level,
            false,
        ),
        (
            "process_manager.log_format",
            a.log_format != b.log_format,
            false,
        ),
        (
            "process_manager.force_shutdown_timeout",
            a.force_shutdown_timeout != b.force_shutdown_timeout,
            true,
        ),
        (
            "process_manager.state_dir",
            a.state_dir != b.state_dir,
            false,
        ),
        ("process_manager.log_dir", a.log_dir != b.log_dir, false),
        (
            "process_manager.api_token",
            a.api_token != b.api_token || a.api_token_file != b.api_token_file,
            false,
        ),
        (
            "log_collection",
            old.log_collection != new.log_collection,
            false,
        ),
    ];
    keys.into_iter()
        .filter(|(_, differs, _)| *differs)
        .map(|(key, _, applied)| ManagerChange {
            key: key.to_string(),
            applied,
        })
        .collect()
}
