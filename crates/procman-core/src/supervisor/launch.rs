//! Turning a process's `control` config into a [`SpawnSpec`]: working
//! directory, the user and groups to run as, the environment (the user's
//! login variables, `env_file`, then `environment`), and the program
//! looked up in the child's `PATH`.

use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::config::{Control, HealthCheck, HealthCheckKind, ProcessConfig, ProcessKind};
use crate::health::probe::{Liveness, ProbeTarget};
use crate::platform::{resolve_program, Credentials, SpawnSpec, Stdio, User};

/// The port an `integrated_managed` process is given: `control.port`, or
/// a free one on the loopback interface. `None` for the other types.
pub(crate) fn port(cfg: &ProcessConfig) -> Result<Option<u16>, String> {
    if cfg.kind != ProcessKind::IntegratedManaged {
        return Ok(None);
    }
    if let Some(p) = cfg.control.port {
        return Ok(Some(p));
    }
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0))
        .map_err(|e| format!("cannot find a free port: {e}"))?;
    let port = listener
        .local_addr()
        .map_err(|e| format!("cannot find a free port: {e}"))?
        .port();
    Ok(Some(port))
}

/// The health check to run: the configured one, or, for an
/// `integrated_managed` process without one, the gRPC health protocol on
/// its port with the default timings.
pub(crate) fn health_check(cfg: &ProcessConfig) -> Option<HealthCheck> {
    match (&cfg.health_check, cfg.kind) {
        (Some(hc), _) => Some(HealthCheck::clone(hc)),
        (None, ProcessKind::IntegratedManaged) => {
            Some(HealthCheck::with_defaults(HealthCheckKind::Grpc))
        }
        (None, _) => None,
    }
}

/// What a probe needs to know about the run it checks. An exec check runs
/// with the process's own environment (`env` is the run's: login
/// variables, `env_file`, `environment`, `PROCMAN_PORT`), working
/// directory, user and groups.
pub(crate) fn probe_target(
    cfg: &ProcessConfig,
    config_dir: &Path,
    process: impl Into<Liveness>,
    port: Option<u16>,
    env: Vec<(String, String)>,
) -> ProbeTarget {
    // Looked up again rather than carried from the spawn a moment ago:
    // should the database have changed since, the check fails with the
    // reason instead of running as the manager.
    ProbeTarget {
        process: Some(process.into()),
        port,
        cwd: working_directory(&cfg.control, config_dir),
        env,
        credentials: credentials(&cfg.control).map(|(c, _)| c),
    }
}

/// The user, group and supplementary groups of `user`/`group`, and the
/// user's entry.
fn credentials(control: &Control) -> Result<(Credentials, Option<User>), String> {
    Credentials::resolve(control.user.as_deref(), control.group.as_deref())
        .map_err(|e| e.to_string())
}

/// What `su -` and systemd's `User=` give a process: the user's `HOME`,
/// `USER`, `LOGNAME` and `SHELL`, not the manager's.
fn login_environment(user: &User) -> Vec<(String, String)> {
    let home = user.home.to_string_lossy().into_owned();
    let shell = user.shell.to_string_lossy().into_owned();
    vec![
        ("HOME".to_string(), home),
        ("USER".to_string(), user.name.clone()),
        ("LOGNAME".to_string(), user.name.clone()),
        ("SHELL".to_string(), shell),
    ]
}

/// One value per variable, the last one given: an environment with two
/// `HOME=` entries would give whichever a program's `getenv` finds first.
fn last_wins(vars: Vec<(String, String)>) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::with_capacity(vars.len());
    for (k, v) in vars {
        out.retain(|(seen, _)| *seen != k);
        out.push((k, v));
    }
    out
}

fn working_directory(control: &Control, config_dir: &Path) -> PathBuf {
    control
        .working_directory
        .clone()
        .unwrap_or_else(|| config_dir.to_path_buf())
}

/// Whether the process's `env_file` (if any) can be read now, as its
/// spawn would read it; else why not, in one line.
pub(crate) fn env_file_readable(cfg: &ProcessConfig) -> Result<(), String> {
    let Some(file) = &cfg.control.env_file else {
        return Ok(());
    };
    let (credentials, _) = credentials(&cfg.control)?;
    read_env_file(file, credentials.uid).map(|_| ())
}

/// Builds the spawn spec, or says in one line why it cannot. An
/// `integrated_managed` process gets its `port` as `--port N` and in
/// `PROCMAN_PORT`.
pub(crate) fn spec(
    cfg: &ProcessConfig,
    config_dir: &Path,
    port: Option<u16>,
) -> Result<SpawnSpec, String> {
    let control = &cfg.control;
    let cwd = working_directory(control, config_dir);
    // Resolved here, before the spawn: nothing between fork and exec may
    // read the account database.
    let (credentials, user) = credentials(control)?;
    let mut env = user.as_ref().map(login_environment).unwrap_or_default();
    if let Some(file) = &control.env_file {
        env.extend(read_env_file(file, credentials.uid)?);
    }
    env.extend(control.environment.iter().cloned());
    let mut args = control.arguments.clone();
    if let Some(p) = port {
        env.push(("PROCMAN_PORT".to_string(), p.to_string()));
        args.extend(["--port".to_string(), p.to_string()]);
    }
    let env = last_wins(env);
    // The directory first: a relative executable is looked up in it, and
    // "no such executable" would blame the wrong thing.
    crate::platform::check_working_directory(&cwd).map_err(|e| e.to_string())?;
    let path_var = crate::platform::child_path(&env);
    let program =
        resolve_program(&control.executable, &cwd, path_var.as_ref()).map_err(|e| e.to_string())?;
    Ok(SpawnSpec {
        program,
        args,
        cwd,
        env,
        // The supervisor replaces these with its capture pipes.
        stdout: Stdio::Inherit,
        stderr: Stdio::Inherit,
        uid: credentials.uid,
        gid: credentials.gid,
        groups: credentials.groups,
        // `max_file_descriptors` is both limits, as systemd's LimitNOFILE=N.
        nofile: cfg
            .resource_limits
            .max_file_descriptors
            .map(|n| (n, n))
            .or_else(crate::platform::child_nofile),
        hold: Vec::new(),
        kill_group_on_exit: false,
    })
}

/// `KEY=VALUE` lines; blank lines and `#` comments skipped; an optional
/// `export ` prefix and matching surrounding quotes removed. As root, the
/// file must be safe to trust (see [`check_env_file`]); `user` is the uid
/// the process runs as.
fn read_env_file(path: &Path, user: Option<u32>) -> Result<Vec<(String, String)>, String> {
    let failed = |e: std::io::Error| format!("env_file {}: {e}", path.display());
    // Followed if it is a symlink: what is checked and read is the file it
    // leads to, through the one descriptor (no swap in between). Opened
    // non-blocking so that a FIFO cannot stall the supervisor.
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(failed)?;
    let meta = file.metadata().map_err(failed)?;
    if !meta.is_file() {
        return Err(format!("env_file {} is not a regular file", path.display()));
    }
    if rustix::process::geteuid().is_root() {
        check_env_file(path, &meta, user)?;
    }
    let mut text = String::new();
    file.read_to_string(&mut text).map_err(failed)?;
    parse_env_file(&text)
        .map_err(|(line, why)| format!("env_file {}:{line}: {why}", path.display()))
}

/// Refuses, when the manager is root, an env_file that someone other than
/// root (or the process's own user) could write: whoever writes it
/// chooses `LD_PRELOAD` and `PATH` for a process root starts. A manager
/// that is not root can only give away its own rights, so it trusts its
/// files as any program does.
fn check_env_file(path: &Path, meta: &std::fs::Metadata, user: Option<u32>) -> Result<(), String> {
    let shown = path.display();
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(format!(
            "env_file {shown} is writable by group or others (mode {mode:04o}), so anyone \
             who can write it could inject variables such as LD_PRELOAD; fix: chmod go-w {shown}"
        ));
    }
    let owner = meta.uid();
    if owner != 0 && Some(owner) != user {
        return Err(format!(
            "env_file {shown} is owned by uid {owner}, neither root nor the process's user, \
             who could inject variables such as LD_PRELOAD; fix: chown root {shown}"
        ));
    }
    Ok(())
}

fn parse_env_file(text: &str) -> Result<Vec<(String, String)>, (usize, &'static str)> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let (k, v) = line.split_once('=').ok_or((i + 1, "expected KEY=VALUE"))?;
        let k = k.trim();
        if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err((i + 1, "invalid variable name"));
        }
        let v = v.trim();
        let v = [('"', '"'), ('\'', '\'')]
            .iter()
            .find_map(|&(a, b)| v.strip_prefix(a).and_then(|s| s.strip_suffix(b)))
            .unwrap_or(v);
        out.push((k.to_string(), v.to_string()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_file_lines() {
        let got = parse_env_file("# c\n\nA=1\nexport B = two \nC=\"q v\"\nD='x'\nE=\n").unwrap();
        let want: Vec<(String, String)> = [
            ("A", "1"),
            ("B", "two"),
            ("C", "q v"),
            ("D", "x"),
            ("E", ""),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(got, want);
        assert_eq!(
            parse_env_file("A=1\nnope\n"),
            Err((2, "expected KEY=VALUE"))
        );
    }

    #[test]
    fn a_variable_given_twice_keeps_its_last_value_only() {
        let vars = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let got = last_wins(vars(&[
            ("HOME", "/from/passwd"),
            ("A", "1"),
            ("HOME", "/from/environment"),
        ]));
        assert_eq!(got, vars(&[("A", "1"), ("HOME", "/from/environment")]));
    }
}
