//! `procman export --format kubernetes`: per managed process a Deployment
//! (a Job for a `batch` one) and, when it serves a port, a Service, as one
//! file of YAML documents per process (`<name>.yaml`).
//!
//! The manifests hold the process as the config says it (command as
//! written, its environment, limits, probes, grace period); what
//! Kubernetes cannot express is a warning. `workload` writes the objects,
//! `container` the container, `probe` the probes, `dependency` the init
//! containers that wait for dependencies, `yaml` the text.

mod container;
mod dependency;
mod probe;
mod workload;
mod yaml;

use std::time::Duration;

use procman_core::config::{Config, ProcessConfig, ProcessKind};

use super::{
    distinct_names, dns_label, exported, manager_warnings, process_path, service_port,
    unmanaged_warnings, ExportError, File, Options, Rendered, Warning,
};
use yaml::Map;

/// The port an `integrated_managed` process without `control.port` gets
/// in its pod (procman picks a free one at each start; a pod has its own
/// network, so a fixed one is free).
const INTEGRATED_PORT: u16 = 50051;

/// The value of `app.kubernetes.io/managed-by`.
const MANAGED_BY: &str = "procman-export";

/// What a process's objects are called, and the port of its Service.
#[derive(Debug, Clone)]
struct Target {
    name: String,
    port: Option<u16>,
}

/// One exported process and what its objects need.
struct Process<'a> {
    config: &'a Config,
    p: &'a ProcessConfig,
    /// Its objects' and container's name.
    name: &'a str,
    /// The port it serves (its Service's), if any.
    port: Option<u16>,
    image: &'a str,
    /// `app.kubernetes.io/name` and `part-of`: the selector.
    selector: Map,
    /// The selector and `managed-by`: the labels of objects and pods.
    labels: Map,
    /// Every process's target by config index (`None`: unmanaged).
    targets: &'a [Option<Target>],
}

/// The warnings about one process, each at a key under its path.
struct Notes<'a> {
    path: String,
    list: &'a mut Vec<Warning>,
}

impl Notes<'_> {
    /// A warning at `key` under the process (`""`: the process itself).
    fn warn(&mut self, key: &str, message: impl Into<String>) {
        let path = if key.is_empty() {
            self.path.clone()
        } else {
            format!("{}.{key}", self.path)
        };
        self.list.push(Warning::new(path, message));
    }

    /// `d` in whole seconds, with a warning at `key` when it had a
    /// fraction (Kubernetes counts these in seconds).
    fn seconds(&mut self, key: &str, d: Duration) -> i64 {
        let whole = int32(super::seconds(d));
        if d.subsec_nanos() != 0 {
            self.warn(
                key,
                format!("Kubernetes counts it in whole seconds: {whole}s"),
            );
        }
        whole
    }
}

/// A count as Kubernetes' int32 fields take it (larger is cut to the
/// largest).
fn int32(n: u64) -> i64 {
    i64::try_from(n.min(i32::MAX as u64)).unwrap_or(i64::from(i32::MAX))
}

/// Text the kubelet reads as it is: in `command`, `args`, `env` values
/// and exec probes it expands `$(VAR)` and turns `$$` into `$`, so each
/// `$` is written `$$`.
fn verbatim(text: &str) -> String {
    text.replace('$', "$$")
}

/// `text` as one word of a POSIX shell command (in README.md and the
/// warnings): bare when it is only safe characters, else single-quoted.
fn shell_word(text: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "/._-=:,+@%".contains(c);
    if !text.is_empty() && text.chars().all(safe) {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}

pub fn render(config: &Config, opts: &Options) -> Result<Rendered, ExportError> {
    let images = images(config, opts)?;
    let mut warnings = manager_warnings(config, "Kubernetes");
    let log_collection = warnings
        .iter()
        .position(|w| w.path.starts_with("log_collection"))
        .map(|at| warnings.split_off(at))
        .unwrap_or_default();
    let part_of = label_value(&opts.name);
    if part_of != opts.name {
        warnings.push(Warning::new(
            "--name",
            format!("`{}` is not a Kubernetes label value: the `app.kubernetes.io/part-of` label is `{part_of}`", opts.name),
        ));
    }
    let targets = targets(config);
    let mut unmanaged = unmanaged_warnings(config, "Kubernetes").into_iter();
    let mut files = Vec::new();
    let mut kinds: Vec<&'static str> = Vec::new();
    for (i, p) in config.processes.iter().enumerate() {
        let (Some(target), Some(image)) = (&targets[i], &images[i]) else {
            warnings.extend(unmanaged.next());
            continue;
        };
        let selector = Map::new()
            .with("app.kubernetes.io/name", target.name.as_str())
            .with("app.kubernetes.io/part-of", part_of.as_str());
        let process = Process {
            config,
            p,
            name: &target.name,
            port: target.port,
            image,
            labels: selector
                .clone()
                .with("app.kubernetes.io/managed-by", MANAGED_BY),
            selector,
            targets: &targets,
        };
        let mut notes = Notes {
            path: process_path(i),
            list: &mut warnings,
        };
        let first = notes.list.len();
        if target.name != p.id {
            let own = object_name(&p.id);
            let taken = if own == target.name {
                String::new()
            } else {
                format!(" (`{own}` is another process's)")
            };
            notes.warn(
                "id",
                format!("`{}` is not a Kubernetes object name (lowercase letters, digits and `-`, starting with a letter, at most 63): its objects are named `{}`{taken}", p.id, target.name),
            );
        }
        let objects = workload::objects(&process, &mut notes);
        // In the order of the keys in a config.
        let under = process_path(i).len();
        notes.list[first..].sort_by_key(|w| key_rank(w.path.get(under..).unwrap_or_default()));
        kinds.extend(objects.iter().map(|(kind, _)| *kind));
        files.push(File {
            name: format!("{}.yaml", target.name),
            text: objects
                .iter()
                .map(|(_, node)| yaml::document(node))
                .collect(),
        });
    }
    warnings.extend(log_collection);
    let readme = workload::readme(config, &part_of, &targets, &warnings);
    Ok(Rendered {
        files,
        readme: Some(readme),
        warnings,
        summary: summary(&kinds),
    })
}

/// Where a key (the path under its process) comes in a config, for the
/// order of warnings.
fn key_rank(key: &str) -> usize {
    const ORDER: [&str; 9] = [
        ".id",
        ".depends_on",
        ".management.control",
        ".management.health_check",
        ".management.resource_limits",
        ".management.restart_policy",
        ".management.logging",
        ".shutdown_on_exit",
        ".export",
    ];
    ORDER
        .iter()
        .position(|prefix| key.starts_with(prefix))
        .unwrap_or(ORDER.len())
}

/// Each exported process's image (`None` for the others): `export.image`,
/// else `--image`; an error naming every process that has neither.
fn images(config: &Config, opts: &Options) -> Result<Vec<Option<String>>, ExportError> {
    let fallback = opts.image.as_deref().filter(|s| !s.is_empty());
    let mut images = vec![None; config.processes.len()];
    let mut missing = Vec::new();
    for (i, p) in exported(config) {
        let own = p.export.as_ref().and_then(|e| e.image.as_deref());
        match own.filter(|s| !s.is_empty()).or(fallback) {
            Some(image) => images[i] = Some(image.to_string()),
            None => missing.push(format!("`{}`", p.id)),
        }
    }
    if missing.is_empty() {
        return Ok(images);
    }
    Err(ExportError::Incomplete(format!(
        "no container image for {}: give each an `export.image` (`export: {{image: registry.example/app:1.0}}`), or pass `--image IMAGE` for every process without one",
        missing.join(", ")
    )))
}

/// Each managed process's object name and Service port, by config index.
fn targets(config: &Config) -> Vec<Option<Target>> {
    let ids: Vec<Option<&str>> = config
        .processes
        .iter()
        .map(|p| (p.kind != ProcessKind::Unmanaged).then_some(p.id.as_str()))
        .collect();
    let names = distinct_names(&ids, 63, object_name);
    config
        .processes
        .iter()
        .zip(names)
        .map(|(p, name)| {
            let port = match p.control.port {
                Some(port) => Some(port),
                None => service_port(p).filter(|_| !probe::asks_elsewhere(p)),
            }
            .or((p.kind == ProcessKind::IntegratedManaged).then_some(INTEGRATED_PORT));
            Some(Target { name: name?, port })
        })
        .collect()
}

/// `id` as a DNS-1035 label, which every object kind accepts (a Service
/// name must start with a letter): `p-` before one that does not.
fn object_name(id: &str) -> String {
    let label = dns_label(id, 63);
    if label.starts_with(|c: char| c.is_ascii_lowercase()) {
        label
    } else {
        dns_label(&format!("p-{label}"), 63)
    }
}

/// `text` as a label value: letters, digits, `-`, `_` and `.`, starting
/// and ending with a letter or digit, at most 63.
fn label_value(text: &str) -> String {
    let mut out: String = text
        .chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '-' | '_' | '.' => c,
            _ => '-',
        })
        .collect();
    out.truncate(63);
    let trimmed = out.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    if trimmed.is_empty() {
        "procman".to_string()
    } else {
        trimmed.to_string()
    }
}

/// `4 Deployments, a Job and 3 Services`.
fn summary(kinds: &[&str]) -> String {
    let mut parts = Vec::new();
    for kind in ["Deployment", "Job", "Service"] {
        match kinds.iter().filter(|k| **k == kind).count() {
            0 => {}
            1 => parts.push(format!("a {kind}")),
            n => parts.push(format!("{n} {kind}s")),
        }
    }
    match parts.len() {
        0 => "no objects".to_string(),
        1 => parts.remove(0),
        n => {
            let last = parts.remove(n - 1);
            format!("{} and {last}", parts.join(", "))
        }
    }
}

#[cfg(test)]
#[path = "../tests/kubernetes.rs"]
mod tests;

#[cfg(test)]
#[path = "../tests/kubernetes_yaml.rs"]
mod yaml_tests;

#[cfg(test)]
#[path = "../tests/kubernetes_pod.rs"]
mod pod_tests;
