//! Finding unmanaged processes: the name matching table, and real
//! processes found by pid, pid file and name.

use std::time::{Duration, Instant};

use super::*;
use crate::outcome::Signal;
use crate::platform::{self, Spawned, TreeRoot};
use crate::testing::sh;

/// (name, argument_match, comm, cmdline, matches)
type Row<'a> = (&'a str, Option<&'a str>, &'a [u8], &'a [u8], bool);

#[test]
fn matching_by_name_and_arguments() {
    let nginx = b"/usr/sbin/nginx\0-c\0/etc/nginx/nginx.conf\0";
    let long = b"/opt/bin/procman-testchild\0--stamp\0/tmp/x\0run\0";
    let titled = b"nginx: worker process\0";
    let table: &[Row] = &[
        ("nginx", None, b"nginx\n", nginx, true),
        // By argv[0]'s last part when the name is longer than comm's 15.
        ("procman-testchild", None, b"procman-testchi\n", long, true),
        ("procman-testchi", None, b"procman-testchi\n", long, true),
        // No prefixes, no substrings of the name.
        ("ngin", None, b"nginx\n", nginx, false),
        ("procman", None, b"procman-testchi\n", long, false),
        // A process that renamed itself (prctl) matches by its comm.
        ("worker", None, b"worker\n", nginx, true),
        // The arguments, joined by spaces, contain the match.
        ("nginx", Some("-c /etc/nginx"), b"nginx\n", nginx, true),
        ("nginx", Some("--stamp"), b"nginx\n", nginx, false),
        (
            "procman-testchild",
            Some("/tmp/x run"),
            b"procman-testchi\n",
            long,
            true,
        ),
        // A title set with setproctitle is one argument with spaces.
        ("nginx", Some("worker process"), b"nginx\n", titled, true),
        ("nginx:", None, b"nginx\n", titled, false),
        // A kernel thread (or a zombie) has no command line.
        ("kworker/0:1", None, b"kworker/0:1\n", b"", false),
        ("kthreadd", None, b"kthreadd\n", b"", false),
    ];
    for &(name, args, comm, cmdline, want) in table {
        assert_eq!(
            matches(name, args, comm, cmdline),
            want,
            "{name} {args:?} against comm {:?}, cmdline {:?}",
            String::from_utf8_lossy(comm),
            String::from_utf8_lossy(cmdline)
        );
    }
}

/// A shell of ours running `sleep` as its child (so the sleep's parent is
/// not the manager): the shell, and the sleep's pid once it shows.
fn shell_with_sleep(tag: &str) -> (Spawned, u32) {
    let tree = TreeRoot::without_cgroups().tree("discovery");
    let script = format!("/bin/sleep 1000.{tag} & wait");
    let shell = platform::spawn_blocking(sh(&script), &tree).expect("spawn sh");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let kids = proctree::descendants(&[shell.child.pid()]);
        if let Some(&(pid, _)) = kids.first() {
            let argv = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            if argv.starts_with(b"/bin/sleep") {
                return (shell, pid);
            }
        }
        assert!(Instant::now() < deadline, "the sleep did not start");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Kills the shell and its sleep, and waits until the sleep has ended.
fn end(shell: Spawned, sleep: Identity) {
    let _ = shell.child.signal_group(Signal::KILL);
    let _ = shell.exit.blocking_recv();
    let deadline = Instant::now() + Duration::from_secs(20);
    while sleep.is_running() {
        assert!(Instant::now() < deadline, "the sleep outlived its kill");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn unique() -> String {
    format!("{}{}", std::process::id(), fastrand::u32(..))
}

#[test]
fn found_by_name_and_arguments_is_the_process_held_by_identity() {
    let tag = unique();
    let (shell, sleep) = shell_with_sleep(&tag);
    let by_name = Discovery::ProcessName {
        name: "sleep".into(),
        argument_match: Some(format!("1000.{tag}")),
    };
    let found = find(&by_name).expect("found");
    assert_eq!(found.identity.pid, sleep);
    assert_eq!(found.matches, 1);
    assert!(found.identity.is_running());
    assert_eq!(found.identity.tree(), [sleep]);
    let started = found.identity.started_at().expect("a start time");
    let age = SystemTime::now()
        .duration_since(started)
        .unwrap_or_default();
    assert!(age < Duration::from_secs(120), "started {age:?} ago");
    assert!(found.identity.sample(true).processes == 1);

    // The shell is the manager's own child: never matched.
    let own = Discovery::ProcessName {
        name: "sh".into(),
        argument_match: Some(format!("1000.{tag}")),
    };
    let err = find(&own).expect_err("own child");
    assert!(
        err.contains("no process named `sh` whose command line contains"),
        "{err}"
    );

    end(shell, found.identity);
    assert!(found.member.has_exited());
    assert!(found.identity.tree().is_empty());
    let err = find(&by_name).expect_err("gone");
    assert!(err.starts_with("no process named `sleep`"), "{err}");
}

#[test]
fn found_by_pid_and_by_pid_file() {
    let tag = unique();
    let (shell, sleep) = shell_with_sleep(&tag);
    let found = find(&Discovery::Pid(sleep)).expect("by pid");
    assert_eq!(found.identity.pid, sleep);

    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("s.pid");
    std::fs::write(&file, format!("{sleep}\n")).expect("write");
    let found = find(&Discovery::PidFile(file.clone())).expect("by pid file");
    assert_eq!(found.identity.pid, sleep);

    end(shell, found.identity);
    let err = find(&Discovery::PidFile(file.clone())).expect_err("gone");
    assert!(
        err.ends_with(&format!(
            "names pid {sleep}, but no process with pid {sleep} is running"
        )),
        "{err}"
    );
    std::fs::write(&file, "garbage").expect("write");
    let err = find(&Discovery::PidFile(file)).expect_err("garbage");
    assert!(err.ends_with("holds `garbage`, not a pid"), "{err}");

    let me = find(&Discovery::Pid(std::process::id())).expect_err("self");
    assert!(me.ends_with("is procman itself"), "{me}");
}
