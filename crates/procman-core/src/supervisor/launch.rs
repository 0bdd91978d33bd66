//! Turning a process's `control` config into a [`SpawnSpec`]: working
//! directory, environment (`env_file`, then `environment`), the program
//! looked up in the child's `PATH`, and the user and group to run as.

use std::path::{Path, PathBuf};

use crate::config::{Control, HealthCheck, HealthCheckKind, ProcessConfig, ProcessKind};
use crate::health::probe::ProbeTarget;
use crate::platform::{resolve_program, ChildId, SpawnSpec, Stdio};

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
        (Some(hc), _) => Some(hc.clone()),
        (None, ProcessKind::IntegratedManaged) => {
            Some(HealthCheck::with_defaults(HealthCheckKind::Grpc))
        }
        (None, _) => None,
    }
}

/// What a probe needs to know about the run it checks. An exec check runs
/// with the process's own environment (`env_file`, `environment`,
/// `PROCMAN_PORT`) and working directory.
pub(crate) fn probe_target(
    cfg: &ProcessConfig,
    config_dir: &Path,
    process: ChildId,
    port: Option<u16>,
    env: Vec<(String, String)>,
) -> ProbeTarget {
    ProbeTarget {
        process: Some(process),
        port,
        cwd: working_directory(&cfg.control, config_dir),
        env,
    }
}

fn working_directory(control: &Control, config_dir: &Path) -> PathBuf {
    control
        .working_directory
        .clone()
        .unwrap_or_else(|| config_dir.to_path_buf())
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
    let mut env = Vec::new();
    if let Some(file) = &control.env_file {
        env.extend(read_env_file(file)?);
    }
    env.extend(control.environment.iter().cloned());
    let mut args = control.arguments.clone();
    if let Some(p) = port {
        env.push(("PROCMAN_PORT".to_string(), p.to_string()));
        args.extend(["--port".to_string(), p.to_string()]);
    }
    let path_var = crate::platform::child_path(&env);
    let program =
        resolve_program(&control.executable, &cwd, path_var.as_ref()).map_err(|e| e.to_string())?;
    let uid = control.user.as_deref().map(lookup_user).transpose()?;
    let gid = match control.group.as_deref() {
        Some(g) => Some(lookup_group(g)?),
        // Running as a user means running with that user's primary group.
        None => uid.map(|(_, gid)| gid),
    };
    Ok(SpawnSpec {
        program,
        args,
        cwd,
        env,
        // The supervisor replaces these with its capture pipes.
        stdout: Stdio::Inherit,
        stderr: Stdio::Inherit,
        uid: uid.map(|(uid, _)| uid),
        gid,
        // Running as a user means with that user's group only, until the
        // user's own supplementary groups are looked up.
        groups: gid.map(|g| vec![g]),
        nofile: crate::platform::child_nofile(),
        kill_group_on_exit: false,
    })
}

/// `KEY=VALUE` lines; blank lines and `#` comments skipped; an optional
/// `export ` prefix and matching surrounding quotes removed.
fn read_env_file(path: &PathBuf) -> Result<Vec<(String, String)>, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("env_file {}: {e}", path.display()))?;
    parse_env_file(&text)
        .map_err(|(line, why)| format!("env_file {}:{line}: {why}", path.display()))
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

/// A user name or numeric uid → (uid, primary gid).
fn lookup_user(name: &str) -> Result<(u32, u32), String> {
    let c = std::ffi::CString::new(name).map_err(|_| format!("bad user name {name:?}"))?;
    let mut buf = vec![0u8; 16 * 1024];
    // SAFETY: passwd is plain data; zeroed is valid before getpwnam_r fills it.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: all pointers are valid for the given sizes for this call.
    let rc = unsafe {
        libc::getpwnam_r(
            c.as_ptr(),
            &mut pwd,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut result,
        )
    };
    if rc == 0 && !result.is_null() {
        return Ok((pwd.pw_uid, pwd.pw_gid));
    }
    match name.parse::<u32>() {
        Ok(uid) => Ok((uid, uid)),
        Err(_) => Err(format!("user {name:?} does not exist")),
    }
}

/// A group name or numeric gid.
fn lookup_group(name: &str) -> Result<u32, String> {
    let c = std::ffi::CString::new(name).map_err(|_| format!("bad group name {name:?}"))?;
    let mut buf = vec![0u8; 16 * 1024];
    // SAFETY: group is plain data; zeroed is valid before getgrnam_r fills it.
    let mut grp: libc::group = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::group = std::ptr::null_mut();
    // SAFETY: all pointers are valid for the given sizes for this call.
    let rc = unsafe {
        libc::getgrnam_r(
            c.as_ptr(),
            &mut grp,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut result,
        )
    };
    if rc == 0 && !result.is_null() {
        return Ok(grp.gr_gid);
    }
    name.parse::<u32>()
        .map_err(|_| format!("group {name:?} does not exist"))
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
    fn users_and_groups_resolve() {
        assert_eq!(lookup_user("root"), Ok((0, 0)));
        assert_eq!(lookup_user("0"), Ok((0, 0)));
        assert!(lookup_user("no-such-user-procman").is_err());
        assert_eq!(lookup_group("0"), Ok(0));
    }
}
