//! One process as a Nomad `task`: its driver and `config`, `user`, `env`,
//! `env_file` as a `template`, stop signal and grace, and what becomes of
//! its logging settings.

use std::time::Duration;

use procman_core::config::{Config, LogFile, ProcessConfig, ProcessKind, ProcessLogFormat};
use procman_core::outcome::Signal;

use super::hcl::{self, Block, Value};
use super::placement::{Hook, JobType};
use super::service::{self, Ports};
use super::{policy, Driver, INTERPOLATED};
use crate::export::{duration_text, executable_path, process_path, Options, Warning};

/// The longest `kill_timeout` a Nomad client honours unless its
/// `max_kill_timeout` says otherwise.
const MAX_KILL_TIMEOUT_SECS: u64 = 30;

/// The image process `p` runs from: its `export.image`, else `--image`.
pub fn image<'a>(p: &'a ProcessConfig, opts: &'a Options) -> Option<&'a str> {
    p.export
        .as_ref()
        .and_then(|e| e.image.as_deref())
        .or(opts.image.as_deref())
}

/// Where a task goes in its group, and what the group gives it.
pub struct Slot<'a> {
    pub hook: Hook,
    pub ports: &'a Ports,
    /// The name of its service, unique in the job; `None` when it has no
    /// service.
    pub service: Option<&'a str>,
}

/// The `task` block of process `i`.
pub fn task(
    config: &Config,
    opts: &Options,
    i: usize,
    job_type: JobType,
    slot: &Slot<'_>,
    warnings: &mut Vec<Warning>,
) -> Block {
    let (hook, ports) = (slot.hook, slot.ports);
    let p = &config.processes[i];
    let control = |k: &str| format!("{}.management.control.{k}", process_path(i));
    let image = image(p, opts);
    let driver = if image.is_some() {
        Driver::Docker
    } else {
        Driver::RawExec
    };
    let mut task = Block::new("task", &[&p.id]);
    task.str(
        "driver",
        match driver {
            Driver::Docker => "docker",
            Driver::RawExec => "raw_exec",
        },
    );
    user(p, driver, &control, &mut task, warnings);
    stop(p, &control, &mut task, warnings);
    if hook != Hook::Main {
        let mut lifecycle = Block::new("lifecycle", &[]);
        lifecycle.str(
            "hook",
            if hook == Hook::Prestart {
                "prestart"
            } else {
                "poststart"
            },
        );
        lifecycle.bool("sidecar", false);
        task.block(lifecycle);
    }

    // The port procman gives an integrated_managed process, as it does:
    // `--port N` after its arguments and PROCMAN_PORT.
    let port_text = match (p.kind, &ports.service) {
        (ProcessKind::IntegratedManaged, Some(port)) => Some(match port.value {
            Some(n) => Value::Str(n.to_string()),
            None => Value::Interpolated(format!("${{NOMAD_PORT_{}}}", port.label)),
        }),
        _ => None,
    };
    let mut args: Vec<Value> = p.control.arguments.iter().map(Value::str).collect();
    if let Some(port) = &port_text {
        args.extend([Value::str("--port"), port.clone()]);
    }
    if p.control
        .arguments
        .iter()
        .any(|a| hcl::runtime_interpolated(a))
    {
        warnings.push(Warning::new(control("arguments"), INTERPOLATED));
    }

    let mut cfg = Block::new("config", &[]);
    let command = match image {
        // As written: a container has its own filesystem and PATH.
        Some(image) => {
            cfg.str("image", image);
            cfg.attr("entrypoint", Value::strings(&[&p.control.executable]));
            p.control.executable.clone()
        }
        None => {
            let command = match executable_path(config, p) {
                Some(path) => path.to_string_lossy().into_owned(),
                None => {
                    warnings.push(Warning::new(
                        control("executable"),
                        format!(
                            "`{}` is not in PATH here: written as it is (Nomad looks it up in the task directory, then in the client's PATH)",
                            p.control.executable
                        ),
                    ));
                    p.control.executable.clone()
                }
            };
            cfg.str("command", command.as_str());
            command
        }
    };
    if hcl::runtime_interpolated(&command) {
        warnings.push(Warning::new(control("executable"), INTERPOLATED));
    }
    if !args.is_empty() {
        cfg.attr("args", Value::List(args));
    }
    match &p.control.working_directory {
        Some(dir) => {
            let dir = dir.to_string_lossy();
            if hcl::runtime_interpolated(&dir) {
                warnings.push(Warning::new(control("working_directory"), INTERPOLATED));
            }
            cfg.str("work_dir", dir);
        }
        None if driver == Driver::RawExec => warnings.push(Warning::new(
            control("working_directory"),
            "not set: procman runs the process in the config file's directory, Nomad in the task's own directory; set working_directory to keep one",
        )),
        None => {}
    }
    if driver == Driver::Docker {
        let labels: Vec<&str> = ports.labels().map(|port| port.label.as_str()).collect();
        if !labels.is_empty() {
            cfg.attr("ports", Value::strings(&labels));
        }
        policy::docker_limits(p, &mut cfg);
    }
    task.block(cfg);

    env(p, port_text, &control, &mut task, warnings);
    if let Some(file) = &p.control.env_file {
        let mut template = Block::new("template", &[]);
        template.str("source", file.to_string_lossy());
        template.str("destination", "secrets/env_file.env");
        template.bool("env", true);
        task.block(template);
        warnings.push(Warning::new(
            control("env_file"),
            "read as a template on the Nomad client that runs the task: a path outside the task directory needs the client's template { disable_file_sandbox = true }, `{{` in the file is template syntax, and its variables win over `env` (procman: `environment` wins)",
        ));
    }

    if p.control.success_exit_codes != [0] {
        let codes: Vec<String> = p
            .control
            .success_exit_codes
            .iter()
            .map(i32::to_string)
            .collect();
        warnings.push(Warning::new(
            control("success_exit_codes"),
            format!(
                "[{}] is not carried: Nomad counts only exit code 0 as success",
                codes.join(", ")
            ),
        ));
    }

    task.block(policy::restart(config, i, job_type, hook, warnings));
    if let Some(resources) = policy::resources(i, p, driver, warnings) {
        task.block(resources);
    }
    if let Some(logs) = logs(i, p, warnings) {
        task.block(logs);
    }
    if let Some(service) = slot
        .service
        .and_then(|name| service::service(i, p, ports, name, driver, warnings))
    {
        task.block(service);
    }
    if p.shutdown_on_exit {
        warnings.push(Warning::new(
            format!("{}.shutdown_on_exit", process_path(i)),
            "Nomad has no job-wide equivalent: when the task ends, the rest of the job keeps running",
        ));
    }
    task
}

/// `kill_signal` (when not SIGTERM) and `kill_timeout` (always: Nomad's
/// default is 5s, procman's 10s).
fn stop(
    p: &ProcessConfig,
    control: &dyn Fn(&str) -> String,
    task: &mut Block,
    warnings: &mut Vec<Warning>,
) {
    let signal = p.control.shutdown_signal;
    if signal != Signal::TERM {
        let name = signal.name();
        if name[3..].bytes().all(|b| b.is_ascii_digit()) {
            warnings.push(Warning::new(
                control("shutdown_signal"),
                format!(
                    "signal {} has no name Nomad knows: Nomad sends SIGTERM",
                    signal.0
                ),
            ));
        } else {
            task.str("kill_signal", name);
        }
    }
    task.str("kill_timeout", duration_text(p.control.shutdown_timeout));
    if p.control.shutdown_timeout > Duration::from_secs(MAX_KILL_TIMEOUT_SECS) {
        warnings.push(Warning::new(
            control("shutdown_timeout"),
            format!("Nomad clients cap kill_timeout at their max_kill_timeout ({MAX_KILL_TIMEOUT_SECS}s unless set higher)"),
        ));
    }
}

/// The log storage Nomad keeps for the task, in MB: `max_files` ×
/// `max_file_size` (10 × 10 by default).
pub fn log_storage_mb(p: &ProcessConfig) -> u64 {
    p.logging.rotation.map_or(100, |r| {
        u64::from(r.max_files).saturating_mul(r.max_size_mb)
    })
}

fn user(
    p: &ProcessConfig,
    driver: Driver,
    control: &dyn Fn(&str) -> String,
    task: &mut Block,
    warnings: &mut Vec<Warning>,
) {
    match (&p.control.user, &p.control.group, driver) {
        (Some(user), Some(group), Driver::Docker) => {
            task.str("user", format!("{user}:{group}"));
        }
        (Some(user), group, _) => {
            task.str("user", user.as_str());
            if group.is_some() {
                warnings.push(Warning::new(
                    control("group"),
                    "raw_exec has no group setting: the task runs with the user's primary group",
                ));
            }
        }
        (None, Some(_), _) => warnings.push(Warning::new(
            control("group"),
            "Nomad sets a group only together with a user: not carried",
        )),
        (None, None, _) => {}
    }
}

/// `env { }` (or `env = { }` when a name is not an HCL identifier): the
/// config's `environment`, the last of a name winning, and PROCMAN_PORT.
fn env(
    p: &ProcessConfig,
    port: Option<Value>,
    control: &dyn Fn(&str) -> String,
    task: &mut Block,
    warnings: &mut Vec<Warning>,
) {
    let mut vars: Vec<(String, Value)> = Vec::new();
    for (name, value) in &p.control.environment {
        match vars.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = Value::str(value),
            None => vars.push((name.clone(), Value::str(value))),
        }
    }
    if let Some(port) = port {
        vars.retain(|(n, _)| n != "PROCMAN_PORT");
        vars.push(("PROCMAN_PORT".to_string(), port));
    }
    if p.control
        .environment
        .iter()
        .any(|(_, v)| hcl::runtime_interpolated(v))
    {
        warnings.push(Warning::new(control("environment"), INTERPOLATED));
    }
    if vars.is_empty() {
        return;
    }
    if vars.iter().all(|(n, _)| hcl::is_identifier(n)) {
        let mut block = Block::new("env", &[]);
        for (name, value) in vars {
            block.attr(&name, value);
        }
        task.block(block);
    } else {
        task.attr("env", Value::Map(vars));
    }
}

/// `logs { }` from `logging.rotation`, and the warnings about the rest of
/// `logging`: Nomad keeps each task's stdout and stderr, as written, in
/// files of its own (`nomad alloc logs`).
fn logs(i: usize, p: &ProcessConfig, warnings: &mut Vec<Warning>) -> Option<Block> {
    let key = |k: &str| format!("{}.management.logging.{k}", process_path(i));
    let l = &p.logging;
    for (captured, name) in [
        (l.capture_stdout, "capture_stdout"),
        (l.capture_stderr, "capture_stderr"),
    ] {
        if !captured {
            warnings.push(Warning::new(
                key(name),
                "Nomad always keeps the task's output in its log files",
            ));
        }
    }
    if l.buffer_size != 8192 {
        warnings.push(Warning::new(
            key("buffer_size"),
            "not carried: Nomad keeps the bytes as written, whatever the length of a line",
        ));
    }
    match &l.file {
        LogFile::Default => {}
        LogFile::Path(path) => warnings.push(Warning::new(
            key("file"),
            format!("{} is not written: Nomad keeps the task's output in the allocation's log files (nomad alloc logs)", path.display()),
        )),
        LogFile::Off => warnings.push(Warning::new(
            key("file"),
            "false is not carried: Nomad keeps the task's output in the allocation's log files",
        )),
    }
    if l.format == ProcessLogFormat::Json {
        warnings.push(Warning::new(
            key("format"),
            "json is not carried: Nomad's log files hold the output as written (as format raw)",
        ));
    }
    let rotation = l.rotation?;
    let mut logs = Block::new("logs", &[]);
    logs.int("max_files", rotation.max_files);
    logs.int(
        "max_file_size",
        i64::try_from(rotation.max_size_mb).unwrap_or(i64::MAX),
    );
    Some(logs)
}
