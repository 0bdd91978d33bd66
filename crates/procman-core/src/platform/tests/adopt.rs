use super::*;

use std::process::Command;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

#[test]
fn wait_statuses_decode_as_exit_codes_and_signals() {
    assert_eq!(decode(3 << 8), ProcessEnd::Exited(3));
    assert_eq!(
        decode(9),
        ProcessEnd::Signaled {
            signal: Signal::KILL,
            core: false
        }
    );
    assert_eq!(
        decode(11 | 0x80),
        ProcessEnd::Signaled {
            signal: Signal(11),
            core: true
        }
    );
}

#[test]
fn a_process_is_adopted_only_with_its_own_start_time() {
    let rt = runtime();
    let mut sleeper = Command::new("sleep").arg("30").spawn().expect("sleep");
    let pid = sleeper.id();
    let start = start_time(pid).expect("start time");
    rt.block_on(async {
        let wrong = adopt(pid, start + 1, boot_id());
        assert!(
            matches!(wrong, Err(Refusal::Recycled { pid: p }) if p == pid),
            "another start time is a stranger"
        );
        assert!(matches!(
            adopt(pid, start, "not-this-boot"),
            Err(Refusal::OtherBoot)
        ));
        let adopted = adopt(pid, start, boot_id()).expect("adopted");
        assert!(adopted.child.is_adopted());
        assert!(!adopted.child.has_exited());
        assert!(adopted.child.id().is_running());
        adopted.child.signal(Signal::KILL).expect("signal");
        // Our own child here: a zombie whose status the stat file holds,
        // unless another test's reaper (one per test process) reaped it
        // first; then the status is unknown, never another one.
        let end = tokio::time::timeout(std::time::Duration::from_secs(30), adopted.exit)
            .await
            .expect("end heard in time")
            .expect("end sent");
        let killed = ProcessEnd::Signaled {
            signal: Signal::KILL,
            core: false,
        };
        assert!(end == killed || end == ProcessEnd::Unknown, "{end:?}");
        assert!(!adopted.child.id().is_running());
    });
    let _ = sleeper.wait();
    assert!(matches!(adopt(pid, start, boot_id()), Err(Refusal::Gone)));
}

#[test]
fn a_held_pipe_is_found_again_by_its_inode_only() {
    let (r, w) = rustix::pipe::pipe().expect("pipe");
    let inode = pipe_inode(&r).expect("inode");
    let me = std::process::id();
    let fd = std::os::fd::AsRawFd::as_raw_fd(&r);
    let again = reopen_pipe(me, fd, inode).expect("reopened");
    rustix::io::write(&w, b"x\n").expect("write");
    let mut buf = [0u8; 8];
    let n = rustix::io::read(&again, &mut buf).expect("read");
    assert_eq!(&buf[..n], b"x\n");
    assert!(reopen_pipe(me, fd, inode + 1).is_err(), "another inode");
}
