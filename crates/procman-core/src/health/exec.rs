//! Exec check: a command that exits 0 when the process is healthy.
//!
//! The command is spawned through [`platform::spawn`] like every child (the
//! reaper owns every exit status), as the leader of a new session and so of
//! its own process group, with output to `/dev/null`, as the process's
//! user and groups with its environment: a check as root would see files
//! and sockets the service cannot, and pass where the service fails. When
//! it overruns the timeout the whole group is SIGKILLed and the leader's exit awaited, so
//! that no probe ever leaves a process or a zombie behind. Whatever the
//! command left running in its group when it exits is killed too, by the
//! reaper just before it reaps the leader (while the group's number is
//! still the leader's): a check must not leave daemons behind at every
//! interval.

use std::path::Path;
use std::time::Duration;

use crate::outcome::{ProcessEnd, Signal};
use crate::platform::{self, Child, Credentials, SpawnSpec, Stdio, TreeRoot};

/// How long to wait for a SIGKILLed group leader to be reaped. A process
/// in uninterruptible sleep can outlast it; the reaper still reaps it later.
const REAP_GRACE: Duration = Duration::from_secs(5);

pub(super) async fn check(
    argv: &[String],
    cwd: &Path,
    env: &[(String, String)],
    run_as: &Credentials,
    timeout: Duration,
) -> (bool, String) {
    let Some((program, args)) = argv.split_first() else {
        return (false, "no command to run".to_string());
    };
    let path_var = crate::platform::child_path(env);
    let program = match platform::resolve_program(program, cwd, path_var.as_ref()) {
        Ok(p) => p,
        Err(e) => return (false, format!("cannot run the check: {e}")),
    };
    let spec = SpawnSpec {
        program,
        args: args.to_vec(),
        cwd: cwd.to_path_buf(),
        env: env.to_vec(),
        stdout: Stdio::Null,
        stderr: Stdio::Null,
        uid: run_as.uid,
        gid: run_as.gid,
        groups: run_as.groups.clone(),
        nofile: platform::child_nofile(),
        hold: Vec::new(),
        kill_group_on_exit: true,
    };
    // Every spawn leads its own session and group already; a cgroup per
    // probe would cost more than it tracks for a short-lived command.
    let tree = TreeRoot::without_cgroups().tree("probe");
    // Should the caller drop this check half-way (a stop, a shutdown), the
    // guard kills the group all the same; the reaper reaps it.
    let (guard, mut exit) = match platform::spawn(spec, &tree).await {
        Ok(spawned) => (KillOnDrop(spawned.child), spawned.exit),
        Err(e) => return (false, format!("cannot run the check: {e}")),
    };
    match tokio::time::timeout(timeout, &mut exit).await {
        Ok(Ok(end)) => judge(end),
        Ok(Err(_)) => (false, "the check's exit status was lost".to_string()),
        Err(_) => {
            let pid = guard.0.pid();
            if let Err(e) = guard.0.signal_group(Signal::KILL) {
                tracing::warn!(pid, error = %e, "cannot kill a health check that timed out");
            }
            if tokio::time::timeout(REAP_GRACE, exit).await.is_err() {
                tracing::warn!(pid, "a killed health check is not reaped yet");
            }
            let limit = humantime::format_duration(timeout);
            (false, format!("killed after timeout ({limit})"))
        }
    }
}

/// SIGKILLs the group of a check while it is unreaped (after it is reaped
/// the reaper has killed what it left, and the signal is not sent).
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.signal_group(Signal::KILL);
    }
}

fn judge(end: ProcessEnd) -> (bool, String) {
    match end {
        ProcessEnd::Exited(0) => (true, "exit code 0".to_string()),
        ProcessEnd::Exited(code) => (false, format!("exit code {code}")),
        signaled => (false, signaled.to_string()),
    }
}

#[cfg(test)]
#[path = "tests/exec.rs"]
mod tests;
