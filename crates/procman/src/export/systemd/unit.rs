//! The `.service` unit of one process.

use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use procman_core::config::{
    Config, DependencyCondition, ProcessConfig, ProcessKind, Profile, RestartStrategy,
};

use procman_core::outcome::Signal;

use super::{notes, quote, restart, span, Names};
use crate::export::{executable_path, process_path, working_directory, Warning};

/// A unit's text and warnings, or the values a unit file cannot hold.
pub struct Service {
    pub text: String,
    pub warnings: Vec<Warning>,
    pub problems: Vec<String>,
}

/// What is gathered while one unit is written.
struct Draft {
    /// `managed_processes[i]`.
    path: String,
    warnings: Vec<Warning>,
    problems: Vec<String>,
}

impl Draft {
    /// A warning at `key`, under the process's path.
    fn warn(&mut self, key: &str, message: impl Into<String>) {
        let path = if key.is_empty() {
            self.path.clone()
        } else {
            format!("{}.{key}", self.path)
        };
        self.warnings.push(Warning::new(path, message));
    }

    /// A value read to the end of the line; a problem when it cannot be.
    fn plain(&mut self, key: &str, value: &str) -> String {
        quote::plain(value).unwrap_or_else(|why| {
            self.problems
                .push(format!("{}.{key}: {why}: {value:?}", self.path));
            String::new()
        })
    }

    /// A path as systemd wants it (normalized), `..` resolved by its text
    /// with a warning.
    fn path_value(&mut self, key: &str, path: &Path) -> String {
        let (path, dotdot) = lexical(path);
        if dotdot {
            self.warn(
                key,
                "systemd refuses `..` in a path: resolved by its text (a symbolic link before \
                 `..` would lead elsewhere)",
            );
        }
        self.plain(key, &path.display().to_string())
    }
}

/// The unit of process `index`.
pub fn service(config: &Config, index: usize, p: &ProcessConfig, names: &Names) -> Service {
    let mut d = Draft {
        path: process_path(index),
        warnings: Vec::new(),
        problems: Vec::new(),
    };
    let unit = names.service(&p.id);
    let mut head = vec![format!(
        "# {unit}: process `{}` of {}, written by `procman export`.",
        p.id, names.source
    )];
    if !p.enabled {
        head.push(format!(
            "# `enabled: false`: {} does not want this unit, so it does not start with the \
             others;",
            names.target()
        ));
        head.push(format!("# start it by hand: systemctl start {unit}"));
    }

    let mut u = vec![
        "[Unit]".to_string(),
        format!("Description={}: {}", names.prefix, p.id),
        format!("PartOf={}", names.target()),
    ];
    dependencies(config, p, names, &mut u, &mut d);
    let restarts = restart::settings(p, &d.path);
    u.extend(restarts.unit);
    d.warnings.extend(restarts.warnings);

    let mut s = vec!["[Service]".to_string()];
    execution(config, p, &mut s, &mut d);
    s.extend(restarts.service);
    stopping(p, &mut s, &mut d);
    limits(p, &mut s, &mut d);
    if let Some(h) = notes::health_check(p) {
        if let Some(lines) = notes::probe_comment(p, &h) {
            s.extend(lines);
            d.warnings.push(notes::probe_warning(p, &d.path, &h, &unit));
        }
    }
    d.warnings
        .extend(notes::logging(&p.logging, &d.path, &unit));
    d.warnings
        .extend(notes::limit_watch(&p.resource_limits, &d.path));
    if p.export.as_ref().is_some_and(|e| e.image.is_some()) {
        d.warn(
            "export.image",
            "a systemd unit runs the executable on the host: the image is not used",
        );
    }

    let mut sections = vec![head.join("\n"), u.join("\n"), s.join("\n")];
    if p.enabled {
        sections.push(format!("[Install]\nWantedBy={}", names.target()));
    }
    let mut text = sections.join("\n\n");
    text.push('\n');
    Service {
        text,
        warnings: d.warnings,
        problems: d.problems,
    }
}

/// `Type=`, what runs (`ExecStart=`), where, with which environment, as
/// whom.
fn execution(config: &Config, p: &ProcessConfig, s: &mut Vec<String>, d: &mut Draft) {
    if p.profile == Profile::Batch {
        s.push("Type=oneshot".to_string());
        if p.shutdown_on_exit {
            s.push("# shutdown_on_exit: inactive once finished, so that the target stops.".into());
        } else {
            s.push("# Active once finished, so that dependents do not run it again.".into());
            s.push("RemainAfterExit=yes".to_string());
        }
    } else {
        s.push("Type=exec".to_string());
    }
    let control = "management.control";
    let exe = match executable_path(config, p) {
        // `.` dropped; `..` kept, which systemd accepts here.
        Some(path) => path.components().collect::<PathBuf>().display().to_string(),
        None => {
            d.warn(
                &format!("{control}.executable"),
                format!(
                    "`{}` is not in PATH here: written as it is, for systemd to look up in its \
                     own search path (/usr/local/bin, /usr/bin, ...)",
                    p.control.executable
                ),
            );
            p.control.executable.clone()
        }
    };
    let mut exec = quote::exec_path(&exe).unwrap_or_else(|why| {
        let key = format!("{}.{control}.executable", d.path);
        d.problems.push(format!("{key}: {why}: {exe:?}"));
        String::new()
    });
    let mut args = p.control.arguments.clone();
    let mut environment = p.control.environment.clone();
    if p.kind == ProcessKind::IntegratedManaged {
        match p.control.port {
            Some(port) => {
                args.extend(["--port".to_string(), port.to_string()]);
                environment.push(("PROCMAN_PORT".to_string(), port.to_string()));
            }
            None => d.warn(
                "type",
                "integrated_managed without control.port: procman gives the process a free port \
                 at each start (`--port N`, PROCMAN_PORT); a unit cannot, so neither is passed: \
                 set control.port",
            ),
        }
    }
    for a in &args {
        exec.push(' ');
        exec.push_str(&quote::exec_argument(a));
    }
    s.push(format!("ExecStart={exec}"));
    let dir = working_directory(config, p);
    let dir = d.path_value(&format!("{control}.working_directory"), &dir);
    s.push(format!("WorkingDirectory={dir}"));
    for (name, value) in &environment {
        if quote::environment_name_ok(name) {
            s.push(format!("Environment={}", quote::environment(name, value)));
        } else {
            d.warn(
                &format!("{control}.environment"),
                format!(
                    "systemd ignores the variable `{name}`: its names are ASCII letters, digits \
                     and `_`, not starting with a digit"
                ),
            );
        }
    }
    if let Some(file) = &p.control.env_file {
        let key = format!("{control}.env_file");
        let file = d.path_value(&key, file);
        s.push(format!("EnvironmentFile={file}"));
        if !p.control.environment.is_empty() {
            d.warn(
                &key,
                "systemd lets EnvironmentFile= override Environment=, procman lets environment \
                 override env_file: a variable set in both takes the file's value here",
            );
        }
    }
    if let Some(user) = &p.control.user {
        s.push(format!(
            "User={}",
            d.plain(&format!("{control}.user"), user)
        ));
    }
    if let Some(group) = &p.control.group {
        s.push(format!(
            "Group={}",
            d.plain(&format!("{control}.group"), group)
        ));
    }
    if !p.logging.capture_stdout {
        s.push("StandardOutput=null".to_string());
    }
    if !p.logging.capture_stderr {
        s.push("StandardError=null".to_string());
    }
    let codes = &p.control.success_exit_codes;
    let others: Vec<String> = codes
        .iter()
        .filter(|&&c| c != 0)
        .map(i32::to_string)
        .collect();
    if !others.is_empty() {
        s.push(format!("SuccessExitStatus={}", others.join(" ")));
    }
    if !codes.contains(&0) {
        let restarts = match (p.profile, p.restart.strategy) {
            (_, RestartStrategy::Never) => "",
            (Profile::Batch, _) => {
                ", and systemd refuses RestartForceExitStatus= for a oneshot (Type=oneshot), so \
                 exit 0 is not restarted either: the unit has finished, and units that need it \
                 start (procman restarts the process as its restart_policy says, and its \
                 dependents wait)"
            }
            (Profile::LongRunning, RestartStrategy::OnFailure) => {
                " (RestartForceExitStatus=0 still restarts it)"
            }
            (Profile::LongRunning, RestartStrategy::Always) => " (Restart=always restarts it)",
        };
        d.warn(
            &format!("{control}.success_exit_codes"),
            format!(
                "systemd always counts exit 0 as a success: the unit does not fail on it{restarts}"
            ),
        );
    }
}

/// The start and stop timeouts and how the unit is stopped.
fn stopping(p: &ProcessConfig, s: &mut Vec<String>, d: &mut Draft) {
    let c = &p.control;
    if p.profile == Profile::Batch {
        s.push("# A oneshot's start is its whole run, which procman does not bound.".into());
        s.push("TimeoutStartSec=infinity".to_string());
        if c.startup_timeout != Duration::from_secs(60) {
            d.warn(
                "management.control.startup_timeout",
                "a batch process is ready once spawned, but a oneshot unit's start lasts its \
                 whole run: TimeoutStartSec=infinity, startup_timeout is not carried over",
            );
        }
    } else {
        s.push(format!("TimeoutStartSec={}", span(c.startup_timeout)));
    }
    if c.shutdown_timeout.is_zero() {
        s.push(
            "# shutdown_timeout 0s: SIGKILL right after the stop signal (0 is no limit).".into(),
        );
        s.push("TimeoutStopSec=1ms".to_string());
    } else {
        s.push(format!("TimeoutStopSec={}", span(c.shutdown_timeout)));
    }
    s.push("KillMode=control-group".to_string());
    s.push(format!("KillSignal={}", kill_signal(c.shutdown_signal)));
}

/// A signal as `KillSignal=` takes it: its name, or for one without a
/// name (a real-time signal, `SIG34`) its number, which systemd reads as
/// the kernel's (where `SIGRTMIN+n` would be the C library's count).
pub fn kill_signal(signal: Signal) -> String {
    let name = signal.name();
    if name.bytes().skip(3).all(|b| b.is_ascii_digit()) {
        signal.0.to_string()
    } else {
        name
    }
}

/// `depends_on` as `Wants=`/`Requires=` and `After=`.
fn dependencies(
    config: &Config,
    p: &ProcessConfig,
    names: &Names,
    u: &mut Vec<String>,
    d: &mut Draft,
) {
    for (k, dep) in p.depends_on.iter().enumerate() {
        let key = format!("depends_on[{k}]");
        let id = &dep.id;
        let Some(other) = config.process(id) else {
            continue;
        };
        if other.kind == ProcessKind::Unmanaged {
            u.push(format!(
                "# depends_on {id}: unmanaged, no unit written for it; add its own unit here."
            ));
            d.warn(
                &key,
                format!(
                    "`{id}` is unmanaged: no unit is written for it, so this dependency is left \
                     out (add Wants=/After= on the unit that runs it)"
                ),
            );
            continue;
        }
        let batch = other.profile == Profile::Batch;
        let (verb, condition, note) = match dep.condition {
            DependencyCondition::Started if batch => (
                "Wants",
                "started",
                Some(format!(
                    "`{id}` is a oneshot: After= waits until it has finished, where procman \
                     waits only for it to run"
                )),
            ),
            DependencyCondition::Started => ("Wants", "started", None),
            DependencyCondition::Healthy => (
                "Requires",
                "healthy",
                Some(format!(
                    "systemd has no health gate: After= waits until `{id}` has started (its \
                     program runs), not until its check passes"
                )),
            ),
            DependencyCondition::CompletedSuccessfully if batch => (
                "Requires",
                "completed_successfully: a oneshot, so After= waits until it has finished \
                 and Requires= fails this start if it failed",
                None,
            ),
            DependencyCondition::CompletedSuccessfully => (
                "Requires",
                "completed_successfully",
                Some(format!(
                    "`{id}` is not batch: After= waits only until it has started, not until it \
                     has exited with success"
                )),
            ),
        };
        u.push(format!("# depends_on {id} ({condition})"));
        if let Some(note) = note {
            u.push(format!("# {note}."));
            d.warn(&key, note);
        }
        if p.enabled && !other.enabled {
            d.warn(
                &key,
                format!(
                    "`{id}` is not enabled: procman waits until it is started by hand, systemd \
                     starts it with this unit ({verb}=)"
                ),
            );
        }
        let target = names.service(id);
        u.push(format!("{verb}={target}"));
        u.push(format!("After={target}"));
    }
}

/// `resource_limits` as the unit's cgroup and rlimit settings.
fn limits(p: &ProcessConfig, s: &mut Vec<String>, d: &mut Draft) {
    let r = &p.resource_limits;
    if let Some(mb) = r.max_memory_mb {
        s.push(format!("MemoryMax={mb}M"));
        s.push("MemorySwapMax=0".to_string());
    }
    if let Some(cpu) = r.max_cpu_percent {
        // systemd reads a percentage to two decimals.
        let hundredths = libm::round(cpu * 100.0).max(1.0);
        let text = format!("{:.2}", hundredths / 100.0);
        let text = text.trim_end_matches('0').trim_end_matches('.');
        if (hundredths / 100.0 - cpu).abs() > 1e-9 {
            d.warn(
                "management.resource_limits.max_cpu_percent",
                format!("systemd reads CPUQuota= to two decimals: {cpu} is written {text}%"),
            );
        }
        s.push(format!("CPUQuota={text}%"));
    }
    if let Some(n) = r.max_file_descriptors {
        s.push(format!("LimitNOFILE={n}"));
    }
    if let Some(n) = r.max_processes {
        s.push(format!("TasksMax={n}"));
    }
}

/// `path` without `.` and, by their text, `..` components; whether it
/// had `..`.
fn lexical(path: &Path) -> (PathBuf, bool) {
    let mut out = PathBuf::new();
    let mut dotdot = false;
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                dotdot = true;
                out.pop();
            }
            other => out.push(other),
        }
    }
    (out, dotdot)
}
