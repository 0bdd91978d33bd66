//! A reaped pid handed to a stranger is never signalled through the handles
//! that named the old process.
//!
//! This happens for real: in a new pid namespace (where nothing else takes
//! pids), `/proc/sys/kernel/ns_last_pid` makes the kernel give the next
//! process exactly the pid of one that was just reaped. The outer test runs
//! this test binary again as the namespace's init, with only the inner test
//! selected. Needs root and `unshare` (util-linux); without them it says
//! why it skips, and fails when `CI` is set.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::outcome::{ProcessEnd, Signal};
use crate::platform::procstat::Stat;
use crate::platform::{self, Member, Reaping, SpawnSpec, Spawned, Stdio, TreeRoot};

use crate::testing::sh;

/// Spawns `script` so that it gets exactly `pid` (which must be free).
fn spawn_at(pid: u32, script: &str) -> Spawned {
    let tree = TreeRoot::without_cgroups().tree("stranger");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open("/proc/sys/kernel/ns_last_pid")
        .expect("open ns_last_pid");
    write!(f, "{}", pid - 1).expect("write ns_last_pid");
    drop(f);
    let s = platform::spawn_blocking(sh(script), &tree).expect("spawn the stranger");
    assert_eq!(
        s.child.pid(),
        pid,
        "the stranger did not get the reused pid"
    );
    s
}

/// The stranger lives: not ended, not a zombie, after the signals had time
/// to arrive.
fn assert_alive(s: &Spawned) {
    std::thread::sleep(Duration::from_millis(300));
    let stat = Stat::read(s.child.pid())
        .expect("read stat")
        .expect("exists");
    assert!(!stat.is_zombie(), "the stranger was killed: {stat:?}");
    assert!(!s.child.has_exited());
}

fn kill_and_reap(s: Spawned) -> ProcessEnd {
    s.child.signal(Signal::KILL).expect("kill");
    s.exit.blocking_recv().expect("reaped")
}

#[test]
#[ignore = "run by reaped_pids_reused_by_strangers_are_never_signalled, inside a pid namespace"]
fn inner() {
    assert_eq!(
        std::process::id(),
        1,
        "must run as init of a new pid namespace"
    );
    platform::reaper::start(Reaping::All).expect("reaper");
    let tree = TreeRoot::without_cgroups().tree("reuse");

    // A child of ours ends and is reaped; a stranger (leading its own
    // session and group, as every service does) gets its pid.
    let gone = platform::spawn_blocking(sh("exit 3"), &tree).expect("spawn");
    let old = gone.child.pid();
    assert_eq!(
        gone.exit.blocking_recv().expect("reaped"),
        ProcessEnd::Exited(3)
    );
    let stranger = spawn_at(old, "exec sleep 1000");
    assert_eq!(
        Stat::read(old).unwrap().map(|s| s.pgrp),
        Some(old),
        "the stranger leads a group with the old number"
    );
    assert!(
        !gone.child.signal(Signal::KILL).expect("signal"),
        "not delivered"
    );
    assert!(!gone.child.signal_group(Signal::KILL).expect("signal group"));
    assert!(!gone.child.group_alive());
    assert!(gone.child.has_exited());
    assert_alive(&stranger);
    // The number does name a live process: a bare kill(old) would have
    // killed the stranger.
    assert!(rustix::process::test_kill_process(
        rustix::process::Pid::from_raw(old as i32).unwrap()
    )
    .is_ok());
    kill_and_reap(stranger);

    // A descendant held as a member ends; a stranger gets its pid.
    let d = platform::spawn_blocking(sh("exec sleep 1000"), &tree).expect("spawn");
    let dpid = d.child.pid();
    let member = Member::open(dpid, |_, _| true).expect("open the member");
    assert!(
        Member::open(dpid, |_, s| s.ppid == 4_000_000).is_none(),
        "a failed check drops it"
    );
    kill_and_reap(d);
    let stranger = spawn_at(dpid, "exec sleep 1000");
    assert!(member.has_exited());
    assert!(
        !member.signal(Signal::KILL).expect("signal"),
        "not delivered"
    );
    assert_alive(&stranger);
    kill_and_reap(stranger);

    // An exec check's group is killed by the reaper before its leader is
    // reaped: its leftovers die, and nothing signals the number after.
    let probe = sh("sleep 1000 & exit 0");
    let probe = SpawnSpec {
        hold: Vec::new(),
        kill_group_on_exit: true,
        ..probe
    };
    let p = platform::spawn_blocking(probe, &tree).expect("spawn the check");
    let ppid = p.child.pid();
    assert_eq!(
        p.exit.blocking_recv().expect("reaped"),
        ProcessEnd::Exited(0)
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::fs::read_dir("/proc")
        .expect("/proc")
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| Stat::read(pid).ok().flatten())
        .any(|s| s.pgrp == ppid && !s.is_zombie())
    {
        assert!(Instant::now() < deadline, "the check's leftover still runs");
        std::thread::sleep(Duration::from_millis(20));
    }
    println!("reuse: all checks passed");
}

#[test]
fn reaped_pids_reused_by_strangers_are_never_signalled() {
    let skip = crate::testing::skip_or_fail;
    if !rustix::process::geteuid().is_root() {
        return skip("not root: a pid namespace and ns_last_pid need CAP_SYS_ADMIN");
    }
    let Ok(unshare) = platform::resolve_program(
        "unshare",
        &PathBuf::from("/"),
        std::env::var_os("PATH").as_ref(),
    ) else {
        return skip("no `unshare` (util-linux) in PATH");
    };
    let exe = std::env::current_exe().expect("current exe");
    let tree = TreeRoot::without_cgroups().tree("unshare");
    let out = tempfile::NamedTempFile::new().expect("temp file");
    let file = out.reopen().expect("reopen");
    let err = file.try_clone().expect("clone");
    let spec = SpawnSpec {
        program: unshare,
        args: vec![
            "--pid".into(),
            "--fork".into(),
            "--mount-proc".into(),
            exe.display().to_string(),
            "platform::reuse_tests::inner".into(),
            "--exact".into(),
            "--ignored".into(),
            "--nocapture".into(),
            "--test-threads=1".into(),
        ],
        stdout: Stdio::Fd(file.into()),
        stderr: Stdio::Fd(err.into()),
        ..sh("")
    };
    let s = platform::spawn_blocking(spec, &tree).expect("run unshare");
    let end = s.exit.blocking_recv().expect("reaped");
    let text = std::fs::read_to_string(out.path()).unwrap_or_default();
    assert_eq!(end, ProcessEnd::Exited(0), "inner test failed:\n{text}");
    assert!(
        text.contains("reuse: all checks passed") && text.contains("1 passed"),
        "the inner test did not run:\n{text}"
    );
}
