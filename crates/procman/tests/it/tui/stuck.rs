//! A terminal that stops reading (a stalled ssh session): the view blocks
//! writing its screen, yet a SIGTERM still ends it within its grace, with
//! the terminal's normal mode given back. The terminal here is a large pty
//! whose other end nobody reads, and a process's lines keep the log pane
//! changing until the pty is full.

use std::fs::File;
use std::process::Stdio;
use std::time::{Duration, Instant};

use rustix::pty::{grantpt, openpt, ptsname, unlockpt, OpenptFlags};
use rustix::termios::{tcgetattr, tcsetwinsize, LocalModes, Winsize};

use super::*;
use crate::cli_control::svc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminal_that_stopped_reading_does_not_keep_the_view_from_ending() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        // Lines every 2 ms: the log pane is drawn again and again.
        let entries = svc(&t, "alpha", &["lines", "1000000", "--interval", "2ms"]);
        let m = Running::start(t, &entries).await;

        let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).expect("a pty");
        grantpt(&master).expect("grantpt");
        unlockpt(&master).expect("unlockpt");
        let name = ptsname(&master, Vec::new()).expect("ptsname");
        let name = name.to_str().expect("a path").to_string();
        let pts = File::options()
            .read(true)
            .write(true)
            .open(&name)
            .expect("open the pty");
        let size = Winsize {
            ws_row: 200,
            ws_col: 500,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        tcsetwinsize(&pts, size).expect("set the size");
        // Through two shells, since this test process reaps every child
        // (the engine's reaper): the inner one gives its pid to the view
        // (`exec`), the outer one writes the view's exit code.
        let (pid_file, exit_file) = (m.t.path("tui.pid"), m.t.path("tui.exit"));
        let script = format!(
            "sh -c 'echo $$ > {}; exec {} tui -c {}'; echo $? > {}",
            pid_file.display(),
            procman(),
            m.file,
            exit_file.display()
        );
        let _shells = tokio::process::Command::new("sh")
            .args(["-c", &script])
            .env("TERM", "xterm")
            .stdin(Stdio::from(pts.try_clone().expect("dup")))
            .stdout(Stdio::from(pts.try_clone().expect("dup")))
            .stderr(Stdio::from(pts.try_clone().expect("dup")))
            .spawn()
            .expect("spawn sh");
        let read = |f: &std::path::Path| {
            std::fs::read_to_string(f)
                .ok()
                .and_then(|s| s.trim().parse::<u32>().ok())
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        let pid = loop {
            if let Some(pid) = read(&pid_file) {
                break pid;
            }
            assert!(Instant::now() < deadline, "the view did not start");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };

        // Raw mode on, and the view stuck in a write: its screen is not
        // all out after a while, since nobody reads it.
        loop {
            let mode = tcgetattr(&pts).expect("tcgetattr");
            if !mode.local_modes.contains(LocalModes::ICANON) && blocked_writing(pid) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the view did not take the terminal and block in a write"
            );
            assert!(read(&exit_file).is_none(), "the view ended");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }

        let sent = Instant::now();
        signal_process(pid, procman_core::outcome::Signal::TERM).expect("SIGTERM");
        let code = loop {
            if let Some(code) = read(&exit_file) {
                break code;
            }
            assert!(
                sent.elapsed() < Duration::from_secs(20),
                "the view did not end within 20 s of SIGTERM"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let took = sent.elapsed();
        assert_eq!(code, 1, "the deadline's exit code");
        assert!(
            took >= Duration::from_secs(2),
            "ended by its deadline: {took:?}"
        );
        let mode = tcgetattr(&pts).expect("tcgetattr");
        assert!(
            mode.local_modes
                .contains(LocalModes::ICANON | LocalModes::ECHO),
            "the terminal's normal mode is back"
        );
        drop(master);
        m.stop().await;
    })
    .await
    .expect("watchdog");
}

/// Whether `pid` sleeps in a write to its terminal (its main thread's
/// system call is write(2), and it is not running).
fn blocked_writing(pid: u32) -> bool {
    let syscall = std::fs::read_to_string(format!("/proc/{pid}/syscall")).unwrap_or_default();
    let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let sleeping = state
        .rsplit_once(") ")
        .is_some_and(|(_, rest)| rest.starts_with('S'));
    // write(2) is system call 1 on x86-64, 64 on aarch64.
    let number = syscall.split_whitespace().next().unwrap_or_default();
    sleeping && (number == "1" || (cfg!(target_arch = "aarch64") && number == "64"))
}
