//! What a new manager finds in its state directory: for each configured
//! process, a run to re-attach to, a run that ended while no manager ran,
//! or nothing (a fresh start); and the state files of processes no longer
//! in the config, whose processes are stopped (never left running
//! unsupervised, nor beside a new copy).

use std::time::{Duration, Instant};

use crate::config::{Config, ProcessKind};
use crate::outcome::{ProcessEnd, Signal};
use crate::platform::adopt::{self, Refusal};
use crate::state::record::ProcessRecord;
use crate::state::slots::Records;
use crate::supervisor::Resume;

/// How long a process left by an earlier manager, and no longer in the
/// config, has between SIGTERM and SIGKILL.
const STRAY_GRACE: Duration = Duration::from_secs(5);

/// What to take up for each process of `config`, in config order. Needs a
/// tokio runtime (an adopted process's end is awaited on a task).
pub(super) fn find(records: &Records, config: &Config) -> Vec<Option<Resume>> {
    let found: Vec<Option<Resume>> = config
        .processes
        .iter()
        .map(|p| {
            if p.kind == ProcessKind::Unmanaged {
                return None;
            }
            resume(records, &p.id)
        })
        .collect();
    let adopted = found.iter().flatten().filter(|r| r.adopts()).count();
    let lost = found.iter().flatten().count() - adopted;
    if adopted + lost > 0 {
        tracing::info!(
            reattached = adopted,
            ended_meanwhile = lost,
            "resuming where the earlier manager on this state directory left off"
        );
    }
    stop_strays(records, config);
    records.forget_found();
    found
}

fn resume(records: &Records, id: &str) -> Option<Resume> {
    let mut record = match records.take(id) {
        Some(Ok(r)) => r,
        None => return None,
        Some(Err(e)) => {
            tracing::warn!(process = %id, error = %e,
                "cannot read the process's state file; starting it afresh");
            let _ = records.remove(id);
            return None;
        }
    };
    // A record without a pid: the earlier manager died between the clone
    // and naming the child, before the run's first line in its log.
    let unnamed = record.pid.is_none();
    let Some((pid, start)) = named(&mut record) else {
        if unnamed && record.run > 1 && record.boot_id == adopt::boot_id() {
            // The earlier manager died restarting it, and no process of
            // that restart runs (it already ended, or was never cloned):
            // the run before surely ended, so the restart policy judges
            // it, with the counters and breaker of the record (a crash
            // loop of the manager must not reset one of the process).
            tracing::info!(process = %id, run = record.run,
                "the earlier manager was restarting it, and no process of that restart runs; the restart policy decides");
            return Some(Resume::Lost {
                end: ProcessEnd::Unknown,
                record,
            });
        }
        let _ = records.remove(id);
        return None;
    };
    match adopt::adopt(pid, start, &record.boot_id) {
        Ok(adopted) => Some(Resume::Adopt {
            adopted,
            record,
            unnamed,
        }),
        Err(Refusal::Ended(end)) => Some(Resume::Lost { end, record }),
        Err(why @ (Refusal::Gone | Refusal::Recycled { .. })) => {
            tracing::info!(process = %id, pid, %why, "not re-attached");
            Some(Resume::Lost {
                end: ProcessEnd::Unknown,
                record,
            })
        }
        Err(why) => {
            tracing::info!(process = %id, pid, %why, "not re-attached; starting it afresh");
            let _ = records.remove(id);
            None
        }
    }
}

/// The process `record` names: its pid and start time, or, for a record
/// written before a spawn whose manager died before naming the child (see
/// `supervisor/spawning.rs`), the process that holds the pipes it lists,
/// if there is one (then written into `record`). A record of this boot
/// only: the pipes of another boot name nothing.
fn named(record: &mut ProcessRecord) -> Option<(u32, u64)> {
    if let (Some(pid), Some(start)) = (record.pid, record.start_time) {
        return Some((pid, start));
    }
    if record.pid.is_some() || record.boot_id != adopt::boot_id() {
        return None;
    }
    let pipes: Vec<(i32, u64)> = record.pipes.iter().map(|p| (p.fd, p.inode)).collect();
    let (pid, start) = adopt::holder_of(&pipes)?;
    tracing::info!(process = %record.id, pid,
        "found the process of a spawn the earlier manager had not yet recorded, by its pipes");
    record.pid = Some(pid);
    record.start_time = Some(start);
    Some((pid, start))
}

/// Stops the processes of state files whose id is no longer a managed
/// process of the config (in the background, bounded), and removes the
/// files. With cgroups their trees are stopped by the sweep too; this
/// also covers a manager without them.
fn stop_strays(records: &Records, config: &Config) {
    let managed = |id: &str| {
        config
            .processes
            .iter()
            .any(|p| p.id == id && p.kind != ProcessKind::Unmanaged)
    };
    for id in records.ids() {
        if managed(&id) {
            continue;
        }
        let record = records.take(&id).and_then(Result::ok);
        let _ = records.remove(&id);
        let Some(mut record) = record else { continue };
        let Some((pid, start)) = named(&mut record) else {
            continue;
        };
        let Ok(adopted) = adopt::adopt(pid, start, &record.boot_id) else {
            continue;
        };
        tracing::warn!(process = %id, pid,
            "a process left by an earlier manager is no longer in the config; stopping it");
        tokio::spawn(async move {
            let child = adopted.child;
            let _ = child.signal_group(Signal::TERM);
            let _ = child.signal(Signal::TERM);
            let deadline = Instant::now() + STRAY_GRACE;
            if tokio::time::timeout_at(deadline.into(), adopted.exit)
                .await
                .is_err()
            {
                let _ = child.signal_group(Signal::KILL);
                let _ = child.signal(Signal::KILL);
            }
        });
    }
}
