//! The shared clone: used where the kernel allows it, and a child of it
//! sees only its own descriptors, however many the manager holds.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use crate::platform::{self, Stdio, TreeRoot};
use crate::testing::{sh, skip_or_fail};

/// Linux 5.9 or later (`CLOSE_RANGE_UNSHARE`, and `clone3`).
fn kernel_has_unshare_range() -> bool {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    let major: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let minor: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    (major, minor) >= (5, 9)
}

#[test]
fn the_shared_clone_is_used_where_the_kernel_has_it() {
    if !cfg!(any(target_arch = "x86_64", target_arch = "aarch64")) || !kernel_has_unshare_range() {
        skip_or_fail("the shared clone needs x86_64 or aarch64 and Linux 5.9+");
        return;
    }
    super::prepare();
    let tree = TreeRoot::without_cgroups().tree("launcher-used");
    let s = platform::spawn_blocking(sh("exit 0"), &tree).expect("spawn");
    s.exit.blocking_recv().expect("reaped");
    assert!(
        super::available(),
        "this kernel has clone3 and CLOSE_RANGE_UNSHARE, yet spawns copy the manager"
    );
}

#[test]
fn a_child_gets_only_its_descriptors_and_the_manager_keeps_none_of_them() {
    platform::raise_fd_limit();
    // Descriptors the manager holds, inheritable on purpose: none may
    // reach the child.
    let extra: Vec<OwnedFd> = (0..600)
        .map(|_| {
            // SAFETY: dup of stdin's /dev/null-or-whatever; a new descriptor
            // we own at once. Without O_CLOEXEC on purpose.
            let fd = unsafe { libc::fcntl(0, libc::F_DUPFD, 3) };
            assert!(fd >= 0, "dup: {}", std::io::Error::last_os_error());
            // SAFETY: just created.
            unsafe { OwnedFd::from_raw_fd(fd) }
        })
        .collect();
    let (read, write) = std::io::pipe().expect("pipe");
    let mut spec = sh("ls /proc/$$/fd");
    spec.stdout = Stdio::Fd(OwnedFd::from(write));
    let tree = TreeRoot::without_cgroups().tree("launcher-fds");
    let s = platform::spawn_blocking(spec, &tree).expect("spawn");
    // End of file once the child is gone: the manager kept no copy of the
    // pipe's write end (the slot it was parked in was reset).
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::Read;
        let mut read = read;
        let mut out = String::new();
        let _ = read.read_to_string(&mut out);
        let _ = tx.send(out);
    });
    let out = rx
        .recv_timeout(std::time::Duration::from_secs(30))
        .expect("no end of file within 30 s: the manager still holds the pipe's write end");
    s.exit.blocking_recv().expect("reaped");
    let mut fds: Vec<u32> = out
        .split_whitespace()
        .filter_map(|f| f.parse().ok())
        .collect();
    fds.sort_unstable();
    assert_eq!(fds, vec![0, 1, 2], "the shell's descriptors: {out}");
    assert!(extra.iter().all(|fd| fd.as_raw_fd() > 2));
}

/// Spawns run side by side (one launcher each, and no lock held across a
/// clone): every child still sees only its own descriptors, and every exit
/// reaches its own spawner, even one that comes before the spawn has
/// registered its child (made certain here by a pause in between).
#[test]
fn spawns_from_several_threads_at_once_each_get_their_own_child_and_exit() {
    use std::io::Read;

    use crate::outcome::ProcessEnd;

    super::prepare();
    let tree = TreeRoot::without_cgroups().tree("launcher-side-by-side");
    std::thread::scope(|scope| {
        for t in 0..4u8 {
            let tree = &tree;
            scope.spawn(move || {
                for i in 0..20u8 {
                    // Every other child exits before it is registered.
                    let pause = if i % 2 == 0 { 100 } else { 0 };
                    crate::platform::spawn::LAND_DELAY
                        .with(|d| d.set(std::time::Duration::from_millis(pause)));
                    let code = i32::from(t * 20 + i);
                    let (mut read, write) = std::io::pipe().expect("pipe");
                    // Exits at once: often before the spawn has registered it.
                    let mut spec = sh(&format!("ls /proc/$$/fd; exit {code}"));
                    spec.stdout = Stdio::Fd(OwnedFd::from(write));
                    let s = platform::spawn_blocking(spec, tree).expect("spawn");
                    let mut out = String::new();
                    read.read_to_string(&mut out)
                        .expect("read the child's output");
                    let mut fds: Vec<u32> = out
                        .split_whitespace()
                        .filter_map(|f| f.parse().ok())
                        .collect();
                    fds.sort_unstable();
                    assert_eq!(fds, vec![0, 1, 2], "child {t}/{i}'s descriptors: {out}");
                    let (tx, rx) = std::sync::mpsc::channel();
                    std::thread::spawn(move || tx.send(s.exit.blocking_recv()));
                    let end = rx
                        .recv_timeout(std::time::Duration::from_secs(30))
                        .expect("child {t}/{i}'s exit never reached its spawner")
                        .expect("its exit reached its spawner");
                    assert_eq!(end, ProcessEnd::Exited(code), "child {t}/{i}");
                }
            });
        }
    });
}
