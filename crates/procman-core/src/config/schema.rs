//! The validated configuration: what the rest of the engine reads.
//!
//! Every value here has already been checked and has its default filled in;
//! relative paths are already resolved against the config file's directory.
//! The raw YAML never leaves the `config` module.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::error::Diagnostic;
use crate::outcome::Signal;

/// A whole, valid configuration file.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The file it was loaded from (absolute).
    pub source: PathBuf,
    pub manager: ManagerConfig,
    /// In file order. Shared: a process's supervisor holds the same
    /// `Arc` as the config the manager keeps (no second copy per process).
    pub processes: Vec<Arc<ProcessConfig>>,
    pub log_collection: LogCollection,
    /// Settings that load but are likely mistakes, sorted by position
    /// (each a [`Diagnostic`] of [`Severity::Warning`](super::Severity::Warning)).
    pub warnings: Vec<Diagnostic>,
}

impl Config {
    /// The process with this id, if the config has one.
    pub fn process(&self, id: &str) -> Option<&Arc<ProcessConfig>> {
        self.processes.iter().find(|p| p.id == id)
    }
}

/// `process_manager:`
#[derive(Debug, Clone, PartialEq)]
pub struct ManagerConfig {
    /// TCP port of the management API; 0 disables TCP. Default 50055.
    pub port: u16,
    /// Address the TCP API binds to. Default `127.0.0.1`.
    pub bind: String,
    pub log_level: LogLevel,
    pub log_format: LogFormat,
    /// Deadline for the whole shutdown. Default 30s.
    pub force_shutdown_timeout: Duration,
    /// Resolved state directory, if the config names one (else the
    /// environment or the platform default decides, see `state::dir`).
    pub state_dir: Option<PathBuf>,
    pub log_dir: Option<PathBuf>,
    pub api_token: Option<String>,
    pub api_token_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

impl LogLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Plain,
    Json,
}

/// One entry of `managed_processes:`.
#[derive(Clone, PartialEq)]
pub struct ProcessConfig {
    /// `[A-Za-z0-9_-]{1,64}`, unique in the file.
    pub id: String,
    pub kind: ProcessKind,
    pub profile: Profile,
    pub enabled: bool,
    pub control: Control,
    /// `None` when the key is absent or `enabled: false`. Boxed: most
    /// processes have none, and each config is held for the manager's life.
    pub health_check: Option<Box<HealthCheck>>,
    pub resource_limits: ResourceLimits,
    pub restart: RestartPolicy,
    pub logging: Logging,
    pub depends_on: Vec<Dependency>,
    /// How an `unmanaged` process is found (`management.discovery`).
    pub discovery: Option<Discovery>,
    /// When a run of this process ends on its own, the manager shuts
    /// down (managed processes only). Default false.
    pub shutdown_on_exit: bool,
    /// `export:`, read only by `procman export`. Boxed: most processes
    /// have none.
    pub export: Option<Box<ExportHints>>,
}

/// Formatted as derived, except that `shutdown_on_exit` and `export` are
/// left out at their defaults: the state records hold a digest of this
/// text, and a config that does not use them must keep the digest it had
/// before they existed (or every process re-attached after an upgrade
/// would be reported as changed).
impl std::fmt::Debug for ProcessConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("ProcessConfig");
        d.field("id", &self.id)
            .field("kind", &self.kind)
            .field("profile", &self.profile)
            .field("enabled", &self.enabled)
            .field("control", &self.control)
            .field("health_check", &self.health_check)
            .field("resource_limits", &self.resource_limits)
            .field("restart", &self.restart)
            .field("logging", &self.logging)
            .field("depends_on", &self.depends_on)
            .field("discovery", &self.discovery);
        if self.shutdown_on_exit {
            d.field("shutdown_on_exit", &self.shutdown_on_exit);
        }
        if let Some(export) = &self.export {
            d.field("export", export);
        }
        d.finish()
    }
}

/// `export:` of a process: what `procman export` needs that running it
/// here does not.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ExportHints {
    /// The container image for Kubernetes and Nomad's docker driver.
    pub image: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessKind {
    StandardManaged,
    IntegratedManaged,
    Unmanaged,
}

impl ProcessKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProcessKind::StandardManaged => "standard_managed",
            ProcessKind::IntegratedManaged => "integrated_managed",
            ProcessKind::Unmanaged => "unmanaged",
        }
    }
}

/// `profile_type`: upstream names other than `batch` all mean long-running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    LongRunning,
    Batch,
}

/// `management.control:`
#[derive(Debug, Clone, PartialEq)]
pub struct Control {
    /// As written (after `${VAR}` expansion): a bare name is looked up in
    /// `PATH` at spawn time; a name with a slash is relative to
    /// `working_directory`.
    pub executable: String,
    pub arguments: Vec<String>,
    /// Resolved against the config file's directory; `None` means the
    /// config file's directory.
    pub working_directory: Option<PathBuf>,
    /// Overrides on top of the manager's environment, in file order
    /// (`env_file` entries first, then `environment`).
    pub environment: Vec<(String, String)>,
    pub env_file: Option<PathBuf>,
    /// Default 60s.
    pub startup_timeout: Duration,
    /// Default 10s.
    pub shutdown_timeout: Duration,
    /// Default SIGTERM.
    pub shutdown_signal: Signal,
    pub user: Option<String>,
    pub group: Option<String>,
    /// Exit codes that count as success. Default `[0]`.
    pub success_exit_codes: Vec<i32>,
    /// `integrated_managed` only.
    pub port: Option<u16>,
}

/// `management.health_check:`; probes arrive in a later issue, the
/// fields are parsed and validated now so existing configs load.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthCheck {
    pub kind: HealthCheckKind,
    pub interval: Duration,
    pub timeout: Duration,
    pub failure_threshold: u32,
    pub success_threshold: u32,
    pub initial_delay: Duration,
    pub http_endpoint: Option<String>,
    pub grpc_endpoint: Option<String>,
    pub grpc_service: Option<String>,
    pub tcp_endpoint: Option<String>,
    pub command: Vec<String>,
    pub expected_status: Vec<u16>,
    /// `https://` endpoints only: accept any certificate for any name.
    /// Default false.
    pub tls_skip_verify: bool,
}

impl HealthCheck {
    /// A check of `kind` with the documented defaults and no endpoint.
    pub fn with_defaults(kind: HealthCheckKind) -> HealthCheck {
        HealthCheck {
            kind,
            interval: Duration::from_secs(10),
            timeout: Duration::from_secs(1),
            failure_threshold: 3,
            success_threshold: 1,
            initial_delay: Duration::ZERO,
            http_endpoint: None,
            grpc_endpoint: None,
            grpc_service: None,
            tcp_endpoint: None,
            command: Vec::new(),
            expected_status: Vec::new(),
            tls_skip_verify: false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthCheckKind {
    Http,
    Grpc,
    Tcp,
    Exec,
    Process,
}

/// `management.resource_limits:` (see `docs/limits.md`).
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceLimits {
    /// MiB (`512` = 512 × 2^20 bytes).
    pub max_memory_mb: Option<u64>,
    /// Percent of one core (250 = two and a half cores).
    pub max_cpu_percent: Option<f64>,
    pub max_file_descriptors: Option<u64>,
    pub max_processes: Option<u64>,
    /// What to do about a limit only the manager watches (the kernel
    /// cannot enforce it here), once exceeded for `violation_grace`.
    pub on_violation: ViolationAction,
    pub violation_grace: Duration,
    /// How often usage is sampled for the limits the manager watches.
    pub sample_interval: Duration,
}

impl Default for ResourceLimits {
    fn default() -> Self {
        ResourceLimits {
            max_memory_mb: None,
            max_cpu_percent: None,
            max_file_descriptors: None,
            max_processes: None,
            on_violation: ViolationAction::Log,
            violation_grace: Duration::ZERO,
            sample_interval: ResourceLimits::SAMPLE_INTERVAL,
        }
    }
}

impl ResourceLimits {
    pub const SAMPLE_INTERVAL: Duration = Duration::from_secs(5);

    /// The limits that a cgroup enforces where the host allows.
    pub fn kernel(&self) -> crate::platform::Limits {
        crate::platform::Limits {
            memory_bytes: self.max_memory_mb.map(|mb| mb.saturating_mul(1 << 20)),
            cpu_percent: self.max_cpu_percent,
            processes: self.max_processes,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ViolationAction {
    #[default]
    Log,
    Restart,
    Stop,
}

impl ViolationAction {
    pub fn as_str(self) -> &'static str {
        match self {
            ViolationAction::Log => "log",
            ViolationAction::Restart => "restart",
            ViolationAction::Stop => "stop",
        }
    }
}

/// `management.restart_policy:`
#[derive(Debug, Clone, PartialEq)]
pub struct RestartPolicy {
    pub strategy: RestartStrategy,
    /// Restarts allowed within `window` before the breaker opens; 0 = no limit.
    pub max_attempts: u32,
    pub restart_delay: Duration,
    pub backoff_multiplier: f64,
    pub max_delay: Duration,
    /// Fraction of the delay (0.1 = ±10%).
    pub jitter: f64,
    pub reset_after: Duration,
    pub window: Duration,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        RestartPolicy {
            strategy: RestartStrategy::OnFailure,
            max_attempts: 5,
            restart_delay: Duration::from_secs(1),
            backoff_multiplier: 2.0,
            max_delay: Duration::from_secs(60),
            jitter: 0.1,
            reset_after: Duration::from_secs(600),
            window: Duration::from_secs(600),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartStrategy {
    Never,
    OnFailure,
    Always,
}

/// `management.logging:`; files and rotation arrive in a later issue.
#[derive(Debug, Clone, PartialEq)]
pub struct Logging {
    pub capture_stdout: bool,
    pub capture_stderr: bool,
    /// Longest line kept whole. Default 8192.
    pub buffer_size: usize,
    /// `Default` = `<log_dir>/<id>.log`; `Path` = that path; `Off` = `file: false`.
    pub file: LogFile,
    pub format: ProcessLogFormat,
    pub rotation: Option<Rotation>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum LogFile {
    Default,
    Path(PathBuf),
    Off,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessLogFormat {
    Plain,
    Raw,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rotation {
    pub max_size_mb: u64,
    pub max_files: u32,
}

/// `depends_on:` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Dependency {
    pub id: String,
    pub condition: DependencyCondition,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DependencyCondition {
    Started,
    Healthy,
    CompletedSuccessfully,
}

/// How an `unmanaged` process is found.
#[derive(Debug, Clone, PartialEq)]
pub enum Discovery {
    PidFile(PathBuf),
    Pid(u32),
    /// A process whose name (`/proc/<pid>/comm`, or the basename of its
    /// `argv[0]`) is `name`, and whose command line (arguments joined by
    /// spaces) contains `argument_match` when one is given.
    ProcessName {
        name: String,
        argument_match: Option<String>,
    },
}

/// `log_collection:`
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LogCollection {
    pub enabled: bool,
    pub aggregation_enabled: bool,
    pub targets: Vec<LogTarget>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum LogTarget {
    File {
        path: PathBuf,
        format: TargetFormat,
        rotation: Option<Rotation>,
    },
    ManagerStdout {
        format: TargetFormat,
    },
    ManagerStderr {
        format: TargetFormat,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetFormat {
    Plain,
    Json,
}
