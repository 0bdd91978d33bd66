//! The JSON bodies of the REST API. The shapes are stable: a field may be
//! added, none is renamed or removed without a new API version.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Every error body: a stable code and a sentence for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ApiError {
    /// `not_found`, `bad_request`, `unauthorized`, `method_not_allowed`,
    /// `payload_too_large`, `conflict`, `dependencies_down`,
    /// `invalid_config`, `unavailable`, `internal`.
    pub code: String,
    pub message: String,
    /// With `dependencies_down`: the processes the start needs that are
    /// down, each with its state. Absent otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dependencies: Vec<DependencyState>,
}

impl ApiError {
    /// An error body without dependencies.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> ApiError {
        ApiError {
            code: code.into(),
            message: message.into(),
            dependencies: Vec::new(),
        }
    }
}

/// A process a start depends on, and the state it is in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DependencyState {
    pub id: String,
    /// `registered`, `stopped`, `failed` or `exited`.
    pub state: String,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Exit {
    /// Set when the process exited.
    pub code: Option<i32>,
    /// Set when a signal killed it: `SIGKILL`, `SIGSEGV`, ...
    pub signal: Option<String>,
    pub core_dumped: bool,
    /// `exited with code 1`, `killed by SIGKILL`.
    pub description: String,
}

/// One process, as a row of `procman status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Process {
    pub id: String,
    /// `standard_managed`, `integrated_managed` or `unmanaged`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `registered`, `waiting`, `starting`, `running`, `stopping`,
    /// `stopped`, `backoff`, `failed` or `exited`.
    pub state: String,
    pub enabled: bool,
    pub pid: Option<u32>,
    /// When the current (or last) run was spawned.
    pub started_at: Option<String>,
    /// How long the current run has been up (only while one is).
    pub uptime_seconds: Option<f64>,
    /// Runs spawned so far.
    pub runs: u32,
    /// Restarts made by the restart policy.
    pub restarts: u32,
    /// `starting`, `healthy` or `unhealthy`; absent without a health check,
    /// and while no run is under way.
    pub health: Option<String>,
    pub last_exit: Option<Exit>,
    pub last_error: Option<String>,
    /// While `waiting`: what the process waits for, and why (`waiting for
    /// db to be healthy (db is starting)`). Absent in every other state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_reason: Option<String>,
    /// Only in a list asked with `?usage=true`, for a run under way: what
    /// it uses now (as `usage` of a process's detail). Absent otherwise,
    /// and when the reading took over 2 s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<ResourceUsage>,
}

/// A state change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Transition {
    pub from: String,
    pub to: String,
    /// What happened, in words.
    pub cause: String,
    /// A stable name: `start_requested`, `policy_restart`,
    /// `dependency_changed`, `ready`, `exit`, `spawn_failed`,
    /// `startup_timeout`, `health_check`, `stop_requested`,
    /// `restart_requested`, `breaker_open`, ... (see docs/cli.md).
    pub cause_kind: String,
    pub at: String,
}

/// The health check of the current (or last) run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HealthCheck {
    /// `http`, `grpc`, `tcp`, `exec` or `process`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `starting`, `healthy` or `unhealthy`.
    pub state: String,
    pub last_check: Option<String>,
    pub last_latency_seconds: Option<f64>,
    /// What the last check saw: `HTTP 200`, `NOT_SERVING`, `timed out after 1s`.
    pub last_result: String,
    pub consecutive_failures: u32,
    /// The last failed check's result, while it is the latest.
    pub last_error: Option<String>,
}

/// One process with its diagnostics, as `procman status ID`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ProcessDetail {
    pub process: Process,
    /// The transition into the current state: since when, and why.
    pub last_transition: Option<Transition>,
    /// The main process first, then every other process of its tree.
    pub pids: Vec<u32>,
    /// `closed` or `open`.
    pub breaker: String,
    pub health_check: Option<HealthCheck>,
    /// The process's log file, if it has one.
    pub log_file: Option<String>,
    /// Bytes of output read from the process so far.
    pub log_bytes: u64,
    /// Log records lost so far (a full disk).
    pub log_dropped: u64,
    /// Restarts made by the policy, by why the run before ended.
    pub restarts_by_cause: BTreeMap<String, u32>,
    /// Each resource limit the config sets, in the order of its keys
    /// (empty without any).
    pub limits: Vec<ResourceLimit>,
    /// `log`, `restart` or `stop`: what happens to a run that exceeds a
    /// limit the manager watches (`enforced_by: monitor`) for
    /// `violation_grace_seconds`. Set when any limit is.
    pub on_violation: Option<String>,
    /// `violation_grace` of the config. Set when any limit is.
    pub violation_grace_seconds: Option<f64>,
    /// `sample_interval` of the config: how often the manager reads the
    /// usage of a run whose limits it watches. Set when any limit is.
    pub sample_interval_seconds: Option<f64>,
    /// What the run uses now, read for this answer; null while no run is
    /// under way (or when the reading took over 2 s).
    pub usage: Option<ResourceUsage>,
    /// Runs ended by the kernel's OOM killer (`max_memory_mb`), so far.
    pub oom_kills: u32,
    /// Violations of a limit the manager watches, each sustained for
    /// `violation_grace_seconds`, so far (whatever `on_violation` did).
    pub violations: u32,
}

/// One resource limit of a process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ResourceLimit {
    /// The config key: `max_memory_mb`, `max_cpu_percent`,
    /// `max_file_descriptors` or `max_processes`.
    pub limit: String,
    /// The value as the config sets it, in the key's unit: MiB, percent
    /// of one core (250 = two and a half cores), open files, processes.
    pub value: f64,
    /// What enforces it: `cgroup v2`, `cgroup v1`, `rlimit` (always for
    /// `max_file_descriptors`) or `monitor` (the manager samples the usage
    /// and applies `on_violation`); as of the current or last run, null
    /// before the first.
    pub enforced_by: Option<String>,
}

/// What a running process's tree uses, as one reading sees it. A figure
/// that could not be read is null, never a guess.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ResourceUsage {
    /// Memory charged to its cgroup (page cache included), or the sum of
    /// the members' resident sets.
    pub memory_bytes: Option<u64>,
    /// CPU time of the tree during this run.
    pub cpu_seconds: Option<f64>,
    /// Percent of one core since the previous reading (by any client, or
    /// a scrape of `/metrics`), or since the run started.
    pub cpu_percent: Option<f64>,
    /// Processes in the tree.
    pub processes: u32,
    /// Descriptors open across the tree.
    pub open_files: Option<u64>,
    /// `cgroup` when the figures come from its cgroup files, `proc` when
    /// from `/proc`.
    pub source: String,
}

/// The manager itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ManagerInfo {
    /// `created`, `starting`, `running`, `stopping` or `stopped`.
    pub state: String,
    pub pid: u32,
    pub version: String,
    pub started_at: String,
    pub uptime_seconds: f64,
    pub config_file: String,
    pub state_dir: String,
    /// Whether process trees are tracked by cgroup (else by `/proc`).
    pub cgroups: bool,
    pub processes: u32,
    /// How many processes are in each state.
    pub by_state: BTreeMap<String, u32>,
}

/// The body of `POST /processes/{id}/signal`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignalRequest {
    /// A name in upper or lower case, with or without `SIG` (`TERM`,
    /// `SIGTERM`, `hup`), or a number from 1 to 64 (`15`).
    #[schema(
        pattern = "^(SIG)?(HUP|INT|QUIT|ILL|TRAP|ABRT|BUS|FPE|KILL|USR1|SEGV|USR2|PIPE|ALRM|TERM|STKFLT|CHLD|CONT|STOP|TSTP|TTIN|TTOU|URG|XCPU|XFSZ|VTALRM|PROF|WINCH|IO|PWR|SYS)$|^(sig)?(hup|int|quit|ill|trap|abrt|bus|fpe|kill|usr1|segv|usr2|pipe|alrm|term|stkflt|chld|cont|stop|tstp|ttin|ttou|urg|xcpu|xfsz|vtalrm|prof|winch|io|pwr|sys)$|^([1-9]|[1-5][0-9]|6[0-4])$"
    )]
    pub signal: String,
    /// To every process of the tree, not only the main one.
    #[serde(default)]
    pub tree: bool,
}

/// A transition of one process, as kept in the journal and streamed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Event {
    /// Numbers the events of one manager run, from 1.
    pub seq: u64,
    pub process: String,
    pub from: String,
    pub to: String,
    pub cause: String,
    pub cause_kind: String,
    pub pid: Option<u32>,
    /// The run this transition belongs to (0 before the first).
    pub run: u32,
    pub at: String,
}

/// What a reload did or, with `dry_run`, would do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReloadPlan {
    /// Only planned: nothing was changed.
    pub dry_run: bool,
    /// New processes (started when `enabled`).
    pub added: Vec<String>,
    /// Processes gone from the file (stopped).
    pub removed: Vec<String>,
    /// Processes restarted with their new settings, and the keys that
    /// changed.
    pub changed: Vec<ProcessChange>,
    /// Processes whose new settings apply without a restart (same PID).
    pub changed_in_place: Vec<ProcessChange>,
    /// Processes left as they are: same PID, log file and counters.
    pub unchanged: Vec<String>,
    /// Changes of the manager section and of log collection.
    pub manager: Vec<ManagerChange>,
    /// Whether some change takes effect only when the manager restarts.
    pub manager_restart_needed: bool,
}

/// One process's changed keys, as key paths of the config file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ProcessChange {
    pub id: String,
    pub keys: Vec<String>,
}

/// A changed key outside the processes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ManagerChange {
    /// e.g. `process_manager.port`.
    pub key: String,
    /// Applied by the reload; `false`: takes effect when the manager is
    /// restarted.
    pub applied: bool,
}

/// The answer to a request that is carried out later (shutdown).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Accepted {
    pub message: String,
}
