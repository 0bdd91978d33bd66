//! The container of a process: command, arguments, working directory,
//! environment, port, limits, probes, stop signal and user; a warning for
//! each setting of `control`, `resource_limits` and `logging` that a
//! container cannot hold.

use procman_core::config::{
    LogFile, ProcessKind, ProcessLogFormat, ResourceLimits, ViolationAction,
};
use procman_core::outcome::Signal;

use super::yaml::{strings, Map, Node};
use super::{probe, shell_word, verbatim, Notes, Process};

const CONTROL: &str = "management.control";
const LIMITS: &str = "management.resource_limits";
const LOGGING: &str = "management.logging";

/// The container named after the process.
pub(super) fn container(x: &Process<'_>, notes: &mut Notes<'_>) -> Node {
    let c = &x.p.control;
    let mut args = c.arguments.clone();
    let mut env = c.environment.clone();
    if let (ProcessKind::IntegratedManaged, Some(port)) = (x.p.kind, x.port) {
        // As procman runs it: `--port N` after its arguments, and
        // PROCMAN_PORT over its environment.
        args.extend(["--port".to_string(), port.to_string()]);
        env.push(("PROCMAN_PORT".to_string(), port.to_string()));
        if c.port.is_none() {
            notes.warn(
                &format!("{CONTROL}.port"),
                format!("procman gives the process a free port at each start; in its pod it is always {port} (`--port {port}`, PROCMAN_PORT)"),
            );
        }
    }
    executable(x, notes);
    let args: Vec<String> = args.iter().map(|a| verbatim(a)).collect();
    let mut container = Map::new()
        .with("name", x.name)
        .with("image", x.image)
        .with("command", strings(&[verbatim(&c.executable)]))
        .with_some("args", (!args.is_empty()).then(|| strings(&args)))
        .with_some("workingDir", working_directory(x, notes))
        .with_some("env", environment(&env, notes))
        .with_some("envFrom", env_file(x, notes))
        .with_some(
            "ports",
            x.port.map(|port| {
                Node::Seq(vec![Map::new()
                    .with("containerPort", port)
                    .with("protocol", "TCP")
                    .into()])
            }),
        )
        .with_some("resources", resources(&x.p.resource_limits, notes));
    for (key, probe) in probe::probes(x, notes) {
        container = container.with(key, probe);
    }
    let container = container
        .with_some(
            "lifecycle",
            stop_signal(x.p.control.shutdown_signal, notes)
                .map(|name| Map::new().with("stopSignal", name)),
        )
        .with_some("securityContext", security_context(x, notes));
    logging(x, notes);
    container.into()
}

/// The signal's name as `lifecycle.stopSignal` takes it, when it is not
/// SIGTERM (the runtime's default), with the warning that goes with it.
fn stop_signal(signal: Signal, notes: &mut Notes<'_>) -> Option<String> {
    if signal == Signal::TERM {
        return None;
    }
    let name = signal_name(signal);
    notes.warn(
        &format!("{CONTROL}.shutdown_signal"),
        format!("written as `lifecycle.stopSignal: {name}` (with `os.name: linux`), a field that only clusters with the ContainerStopSignals feature gate keep (alpha since Kubernetes 1.33); elsewhere it is dropped and the container gets its image's STOPSIGNAL (SIGTERM unless the image says otherwise). procman signals the process group, the kubelet only the container's first process"),
    );
    Some(name)
}

/// Kubernetes' name of a signal: `SIGINT`, `SIGRTMIN+3`, `SIGRTMAX-2`.
pub(super) fn signal_name(signal: Signal) -> String {
    let (rtmin, rtmax) = (34, 64);
    match signal.0 {
        n if n == rtmin => "SIGRTMIN".to_string(),
        n if n == rtmax => "SIGRTMAX".to_string(),
        n if n > rtmin && n <= rtmin + 15 => format!("SIGRTMIN+{}", n - rtmin),
        n if n > rtmin + 15 && n < rtmax => format!("SIGRTMAX-{}", rtmax - n),
        _ => signal.name(),
    }
}

/// `workingDir`, when the config names one. The config has made a
/// relative one absolute, against the config file's directory: a path
/// under that directory is likely one of this host, with a warning.
fn working_directory(x: &Process<'_>, notes: &mut Notes<'_>) -> Option<String> {
    let dir = x.p.control.working_directory.as_ref()?;
    let base = x.config.source.parent().filter(|b| b.parent().is_some());
    if let Some(base) = base.filter(|b| dir.starts_with(b)) {
        notes.warn(
            &format!("{CONTROL}.working_directory"),
            format!("`{}` is under the config file's directory, `{}` (where a relative working_directory is resolved): a path of this host, which the container looks for in its image's filesystem; make sure the image has it, or write the path the image uses", dir.display(), base.display()),
        );
    }
    Some(dir.to_string_lossy().into_owned())
}

/// A warning for an executable the image cannot find as procman would.
fn executable(x: &Process<'_>, notes: &mut Notes<'_>) {
    let c = &x.p.control;
    if c.executable.contains('/') && !c.executable.starts_with('/') && c.working_directory.is_none()
    {
        notes.warn(
            &format!("{CONTROL}.executable"),
            format!("`{}` is relative to the config file's directory for procman; in the container it is relative to the image's working directory (set `working_directory`, or write an absolute path)", c.executable),
        );
    }
}

/// How the API server takes an environment variable's name.
#[derive(Debug, PartialEq)]
pub(super) enum EnvName {
    /// Every version: `[-._a-zA-Z][-._a-zA-Z0-9]*`.
    Valid,
    /// Kubernetes 1.32 and later only: printable ASCII but `=`.
    Relaxed,
    /// No version: a character that is not printable ASCII.
    Refused,
}

pub(super) fn env_name(name: &str) -> EnvName {
    let strict = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_');
    if name.starts_with(|c: char| !c.is_ascii_digit()) && name.chars().all(strict) {
        EnvName::Valid
    } else if !name.is_empty() && name.chars().all(|c| matches!(c, ' '..='~') && c != '=') {
        EnvName::Relaxed
    } else {
        EnvName::Refused
    }
}

/// `env:` in order, the last value of a name that is set twice; a name
/// no API server takes is left out, with a warning (it would refuse the
/// whole object).
fn environment(env: &[(String, String)], notes: &mut Notes<'_>) -> Option<Node> {
    let key = format!("{CONTROL}.environment");
    let mut names: Vec<&str> = Vec::new();
    for (name, _) in env {
        if names.contains(&name.as_str()) {
            continue;
        }
        match env_name(name) {
            EnvName::Valid => {}
            EnvName::Relaxed => notes.warn(
                &key,
                format!("the variable name {name:?} is taken by Kubernetes 1.32 and later only (printable ASCII but `=`); an older API server refuses the whole object (its rule: letters, digits, `_`, `-` and `.`, not starting with a digit)"),
            ),
            EnvName::Refused => {
                notes.warn(
                    &key,
                    format!("the variable name {name:?} is left out: Kubernetes takes only printable ASCII characters in a variable's name, and would refuse the whole object"),
                );
                continue;
            }
        }
        names.push(name);
    }
    let items: Vec<Node> = names
        .iter()
        .filter_map(|name| {
            let (_, value) = env.iter().rev().find(|(n, _)| n == name)?;
            Some(
                Map::new()
                    .with("name", *name)
                    .with("value", verbatim(value))
                    .into(),
            )
        })
        .collect();
    (!items.is_empty()).then_some(Node::Seq(items))
}

/// `envFrom` a Secret to be made from `env_file`, which is read on this
/// host at each spawn and so cannot be written into the manifest.
fn env_file(x: &Process<'_>, notes: &mut Notes<'_>) -> Option<Node> {
    let file = x.p.control.env_file.as_ref()?;
    let secret = format!("{}-env", x.name);
    notes.warn(
        &format!("{CONTROL}.env_file"),
        format!("read on this host at each start by procman; the container takes its variables from the Secret `{secret}` instead, which you make from the file: `kubectl create secret generic {secret} --from-env-file={}` (`environment` still wins over it)", shell_word(&file.to_string_lossy())),
    );
    Some(Node::Seq(vec![Map::new()
        .with("secretRef", Map::new().with("name", secret))
        .into()]))
}

/// `resources.limits` from `max_memory_mb` and `max_cpu_percent`; a
/// warning for each limit or setting a container has no field for.
fn resources(limits: &ResourceLimits, notes: &mut Notes<'_>) -> Option<Node> {
    let cpu = limits
        .max_cpu_percent
        .map(|percent| format!("{}m", ((percent * 10.0).round() as u64).max(1)));
    let memory = limits.max_memory_mb.map(|mb| format!("{mb}Mi"));
    if limits.max_file_descriptors.is_some() {
        notes.warn(
            &format!("{LIMITS}.max_file_descriptors"),
            "a container has no per-container open-file limit: it gets the container runtime's (often 1048576)",
        );
    }
    if limits.max_processes.is_some() {
        notes.warn(
            &format!("{LIMITS}.max_processes"),
            "a container has no per-container process limit: the PID limit is the node's (the kubelet's `podPidsLimit`)",
        );
    }
    let defaults = ResourceLimits::default();
    let watched = [
        ("on_violation", limits.on_violation != ViolationAction::Log),
        (
            "violation_grace",
            limits.violation_grace != defaults.violation_grace,
        ),
        (
            "sample_interval",
            limits.sample_interval != defaults.sample_interval,
        ),
    ];
    for (key, _) in watched.iter().filter(|(_, differs)| *differs) {
        notes.warn(
            &format!("{LIMITS}.{key}"),
            "no procman watches the limits in a pod: the kernel enforces them (memory by an OOM kill, which restarts the container; CPU by throttling)",
        );
    }
    if cpu.is_none() && memory.is_none() {
        return None;
    }
    let limits = Map::new().with_some("cpu", cpu).with_some("memory", memory);
    Some(Map::new().with("limits", limits).into())
}

/// `runAsUser`/`runAsGroup` for numeric ids; names only warn.
fn security_context(x: &Process<'_>, notes: &mut Notes<'_>) -> Option<Node> {
    let c = &x.p.control;
    let mut context = Map::new();
    for (key, field, value) in [
        ("user", "runAsUser", &c.user),
        ("group", "runAsGroup", &c.group),
    ] {
        let Some(value) = value else { continue };
        match value.parse::<u32>() {
            Ok(id) => context = context.with(field, i64::from(id)),
            Err(_) => notes.warn(
                &format!("{CONTROL}.{key}"),
                format!("Kubernetes takes numeric ids only (`securityContext.{field}`), and the name `{value}` means what the image's own account files say: the container runs as its image's user; set `{field}` to the id by hand"),
            ),
        }
    }
    (!context.is_empty()).then(|| context.into())
}

/// Warnings for the logging settings: a container's output is the
/// runtime's (`kubectl logs`), kept and rotated by the kubelet.
fn logging(x: &Process<'_>, notes: &mut Notes<'_>) {
    let l = &x.p.logging;
    let differs = [
        ("capture_stdout", !l.capture_stdout),
        ("capture_stderr", !l.capture_stderr),
        ("buffer_size", l.buffer_size != 8192),
        ("file", l.file != LogFile::Default),
        ("format", l.format != ProcessLogFormat::Plain),
        ("rotation", l.rotation.is_some()),
    ];
    for (key, _) in differs.iter().filter(|(_, differs)| *differs) {
        notes.warn(
            &format!("{LOGGING}.{key}"),
            "a container's stdout and stderr are kept by the container runtime, as they are (`kubectl logs`), and rotated by the kubelet (`containerLogMaxSize`): procman's log settings do not apply",
        );
    }
}
