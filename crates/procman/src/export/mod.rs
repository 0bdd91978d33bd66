//! `procman export`: a config turned into the units, manifests or job of
//! another engine (systemd, Kubernetes, Nomad).
//!
//! Each format is one module with one function, `render`, from a loaded
//! [`Config`] to the files it writes and the warnings about what the
//! target cannot express. Nothing here touches the host except to look
//! an executable up in `PATH`; writing is the command's (`cli/export.rs`).

mod kubernetes;
mod nomad;
mod systemd;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use procman_core::config::{Config, HealthCheckKind, ProcessConfig, ProcessKind};

/// The formats `procman export` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Systemd,
    Kubernetes,
    Nomad,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Systemd => "systemd",
            Format::Kubernetes => "kubernetes",
            Format::Nomad => "nomad",
        }
    }

    pub fn render(self, config: &Config, opts: &Options) -> Result<Rendered, ExportError> {
        match self {
            Format::Systemd => systemd::render(config, opts),
            Format::Kubernetes => kubernetes::render(config, opts),
            Format::Nomad => nomad::render(config, opts),
        }
    }
}

/// What the command line adds to the config.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The name of the whole: systemd's target and units' prefix,
    /// Kubernetes' `app.kubernetes.io/part-of`, Nomad's job. Default: the
    /// config file's stem.
    pub name: String,
    /// The container image of every process without `export.image`.
    pub image: Option<String>,
}

/// A format's output: its files, in the order written, and what it could
/// not carry over.
#[derive(Debug, Default)]
pub struct Rendered {
    pub files: Vec<File>,
    /// How the files are installed; written (as `README.md`) with `-o DIR`
    /// only.
    pub readme: Option<String>,
    pub warnings: Vec<Warning>,
    /// What the one-line summary calls the files (`3 units and a target`).
    pub summary: String,
}

/// One file of the output.
#[derive(Debug, Clone, PartialEq)]
pub struct File {
    /// A plain file name, no directory.
    pub name: String,
    pub text: String,
}

/// A key the target has no equivalent for, or carries only in part.
#[derive(Debug, Clone, PartialEq)]
pub struct Warning {
    /// The key path in the config (`managed_processes[1].management.health_check`).
    pub path: String,
    pub message: String,
}

impl Warning {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Warning {
        Warning {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// Why nothing was exported.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The config lacks what the format requires (an image); the message
    /// says what to add. Exit 2, like an invalid config.
    #[error("{0}")]
    Incomplete(String),
}

/// The key path of process number `index` (`managed_processes[3]`).
pub fn process_path(index: usize) -> String {
    format!("managed_processes[{index}]")
}

/// A duration in whole seconds, rounded up (every target here counts in
/// seconds; `0` stays `0`).
pub fn seconds(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// A duration as systemd and Nomad both read it: `5s`, or `1500ms` when
/// it is not whole seconds.
pub fn duration_text(d: Duration) -> String {
    if d.subsec_millis() == 0 && d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// The working directory a process runs in: its own, else the config
/// file's directory (as procman runs it).
pub fn working_directory(config: &Config, p: &ProcessConfig) -> PathBuf {
    p.control.working_directory.clone().unwrap_or_else(|| {
        config
            .source
            .parent()
            .map_or_else(|| PathBuf::from("/"), Path::to_path_buf)
    })
}

/// The executable as an absolute path, as procman would find it: a name
/// with a slash relative to the working directory, a bare name looked up
/// in the process's `PATH` (its `environment`, else the exporter's).
/// `None` when a bare name is found nowhere: the caller writes the name
/// as it is, with a warning.
pub fn executable_path(config: &Config, p: &ProcessConfig) -> Option<PathBuf> {
    let exe = &p.control.executable;
    if exe.contains('/') {
        return Some(without_dots(&working_directory(config, p).join(exe)));
    }
    let path = p
        .control
        .environment
        .iter()
        .rev()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.clone())
        .or_else(|| std::env::var("PATH").ok())?;
    // A relative entry is relative to the working directory, as procman
    // reads it at spawn time, wherever the export runs.
    let cwd = working_directory(config, p);
    std::env::split_paths(&path)
        .map(|dir| without_dots(&cwd.join(dir).join(exe)))
        .find(|candidate| is_executable(candidate))
}

/// `/opt/service/./x` → `/opt/service/x` (`..` is kept: it may cross a
/// link).
fn without_dots(path: &Path) -> PathBuf {
    path.components()
        .filter(|c| !matches!(c, std::path::Component::CurDir))
        .collect()
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The port a process serves, as far as the config tells: `control.port`
/// (integrated_managed), else the port of its HTTP, gRPC or TCP check.
pub fn service_port(p: &ProcessConfig) -> Option<u16> {
    if let Some(port) = p.control.port {
        return Some(port);
    }
    let h = p.health_check.as_deref()?;
    let endpoint = match h.kind {
        HealthCheckKind::Http => h.http_endpoint.as_deref()?,
        HealthCheckKind::Grpc => h.grpc_endpoint.as_deref()?,
        HealthCheckKind::Tcp => h.tcp_endpoint.as_deref()?,
        HealthCheckKind::Exec | HealthCheckKind::Process => return None,
    };
    endpoint_port(endpoint)
}

/// The port of `http://host:port/path`, `host:port` or `[::1]:port`; a
/// URL without one has its scheme's (80, 443).
pub fn endpoint_port(endpoint: &str) -> Option<u16> {
    let (scheme, rest) = match endpoint.split_once("://") {
        Some((s, r)) => (Some(s), r),
        None => (None, endpoint),
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let port = match host_port.rsplit_once(':') {
        Some((host, port))
            if !port.contains(']') && (!host.contains(':') || host.ends_with(']')) =>
        {
            Some(port)
        }
        _ => None,
    };
    match (port, scheme) {
        (Some(port), _) => port.parse().ok(),
        (None, Some("http")) => Some(80),
        (None, Some("https")) => Some(443),
        _ => None,
    }
}

/// The processes a format exports: managed ones. An unmanaged process is
/// started elsewhere, so the caller warns and leaves it out.
pub fn exported(config: &Config) -> impl Iterator<Item = (usize, &ProcessConfig)> {
    config
        .processes
        .iter()
        .enumerate()
        .map(|(i, p)| (i, p.as_ref()))
        .filter(|(_, p)| p.kind != ProcessKind::Unmanaged)
}

/// The warning for each unmanaged process, which no format exports.
pub fn unmanaged_warnings(config: &Config, target: &str) -> Vec<Warning> {
    config
        .processes
        .iter()
        .enumerate()
        .filter(|(_, p)| p.kind == ProcessKind::Unmanaged)
        .map(|(i, p)| {
            Warning::new(
                process_path(i),
                format!(
                    "`{}` is unmanaged (started elsewhere): nothing is exported for it to {target}",
                    p.id
                ),
            )
        })
        .collect()
}

/// A name the target accepts for objects (Kubernetes' DNS-1123 label,
/// also fine for systemd and Nomad): lowercase letters, digits and `-`,
/// starting and ending with an alphanumeric, at most `max` long.
pub fn dns_label(text: &str, max: usize) -> String {
    let mut out: String = text
        .chars()
        .map(|c| match c {
            'a'..='z' | '0'..='9' => c,
            'A'..='Z' => c.to_ascii_lowercase(),
            _ => '-',
        })
        .collect();
    out.truncate(max);
    let trimmed = out.trim_matches('-');
    if trimmed.is_empty() {
        "x".to_string()
    } else {
        trimmed.to_string()
    }
}

/// A warning for each `process_manager` key that differs from its
/// default, and for `log_collection` targets: no procman runs in
/// `target`, so none of them applies there.
pub fn manager_warnings(config: &Config, target: &str) -> Vec<Warning> {
    use procman_core::config::{LogFormat, LogLevel};
    let m = &config.manager;
    let own =
        format!("procman's own setting: no procman runs under {target}, so it has no equivalent");
    let differs = [
        ("port", m.port != 50055),
        ("bind", m.bind != "127.0.0.1"),
        ("log_level", m.log_level != LogLevel::Info),
        ("log_format", m.log_format != LogFormat::Plain),
        ("state_dir", m.state_dir.is_some()),
        ("log_dir", m.log_dir.is_some()),
        ("api_token", m.api_token.is_some()),
        ("api_token_file", m.api_token_file.is_some()),
    ];
    let mut warnings: Vec<Warning> = differs
        .iter()
        .filter(|(_, differs)| *differs)
        .map(|(key, _)| Warning::new(format!("process_manager.{key}"), own.clone()))
        .collect();
    if m.force_shutdown_timeout != Duration::from_secs(30) {
        warnings.push(Warning::new(
            "process_manager.force_shutdown_timeout",
            format!("nothing bounds the shutdown of the whole under {target}: each process has its own grace period (from its shutdown_timeout)"),
        ));
    }
    let logs = &config.log_collection;
    if logs.enabled && logs.aggregation_enabled && !logs.targets.is_empty() {
        warnings.push(Warning::new(
            "log_collection",
            format!("procman's log targets are not exported: the output of the processes goes to the logging of {target} instead"),
        ));
    }
    warnings
}

/// Names for processes whose ids are `ids` (config order; `None` for a
/// process that gets no name), made by `name` and unique: an id that is
/// its own name keeps it, whatever comes before it; the others take
/// theirs in config order, or when it is taken `-2`, `-3`... (cut to
/// `max`).
pub fn distinct_names(
    ids: &[Option<&str>],
    max: usize,
    name: impl Fn(&str) -> String,
) -> Vec<Option<String>> {
    let mut taken: HashSet<String> = ids
        .iter()
        .flatten()
        .filter(|id| name(id) == **id)
        .map(|id| (*id).to_string())
        .collect();
    ids.iter()
        .map(|id| {
            let id = (*id)?;
            let own = name(id);
            if own == id {
                return Some(own);
            }
            let unique = unique_name(own, &taken, max);
            taken.insert(unique.clone());
            Some(unique)
        })
        .collect()
}

/// `name`, or `name-2`, `name-3`... (cut to `max`) when it is taken.
pub fn unique_name(name: String, taken: &HashSet<String>, max: usize) -> String {
    if !taken.contains(&name) {
        return name;
    }
    (2..)
        .map(|n| {
            let suffix = format!("-{n}");
            let mut base = name.clone();
            base.truncate(max.saturating_sub(suffix.len()));
            format!("{}{suffix}", base.trim_end_matches('-'))
        })
        .find(|candidate| !taken.contains(candidate))
        .unwrap_or(name)
}

/// The `Authorization` header procman's own HTTP check sends for the
/// `user:password@` of an endpoint's URL, so that an export sends the same.
pub use procman_core::health::basic_authorization;

#[cfg(test)]
#[path = "tests/common.rs"]
mod tests;

#[cfg(test)]
#[path = "tests/golden.rs"]
pub(crate) mod golden;
