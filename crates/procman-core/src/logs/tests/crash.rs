//! A manager killed by SIGKILL at random instants while a child floods its
//! pipe loses and repeats no line of the process's file.
//!
//! The "manager" is this test binary run again in a role (the env var
//! [`ROLE`] set): a `ProcessLog` with spools and `capture::start` on the
//! pipe, re-opened through `/proc/<test pid>/fd/N`. The test holds a read
//! end all along (as a child holding its own pipe's read end does), and a
//! writer thread feeds the pipe numbered lines of varying length (some cut
//! into pieces, some waiting mid-line long enough to be flushed as a
//! piece). Every instance is killed after a random delay, except the last,
//! which reads on to the end of the pipe.

use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio as ProcStdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::super::rotate::rotated_paths;
use super::super::sink::{LogSetup, ProcessLog};
use super::super::{capture, Stream};

const ROLE: &str = "PROCMAN_TEST_LOG_CRASH_ROLE";
const ROUNDS: usize = 30;
/// The kept line length: longer lines are cut into pieces.
const MAX_LINE: usize = 1024;
const MAX_FILES: u32 = 1000;
const PID: u32 = 4242;

/// The config of the process `svc` under `dir`.
fn config(dir: &Path, format: &str, rotate: bool) -> crate::config::Config {
    let rotation = if rotate {
        format!("\n        rotation: {{max_size_mb: 1, max_files: {MAX_FILES}}}")
    } else {
        String::new()
    };
    let yaml = format!(
        "process_manager:\n  state_dir: {d}/state\n  log_dir: {d}/logs\nmanaged_processes:\n  - id: svc\n    management:\n      control: {{executable: svc}}\n      logging:\n        format: {format}\n        buffer_size: {MAX_LINE}{rotation}\n",
        d = dir.display()
    );
    crate::config::load_str(&yaml, &dir.join("pm.yaml"), &|_| None).expect("config")
}

/// The role: one life of a manager, until killed or the pipe ends.
#[test]
fn log_crash_role() {
    let Ok(spec) = std::env::var(ROLE) else {
        return;
    };
    let mut parts = spec.split('|');
    let (Some(dir), Some(pipe), Some(format), Some(rotate)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        panic!("bad role spec {spec}");
    };
    let dir = PathBuf::from(dir);
    let config = config(&dir, format, rotate == "1");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let state = dir.join("state");
        std::fs::create_dir_all(&state).unwrap();
        let setup = LogSetup::start(&config).unwrap().with_spool(&state);
        let log = Arc::new(ProcessLog::new(&config.processes[0], &setup).unwrap());
        let fd: std::os::fd::OwnedFd = std::fs::File::open(pipe).unwrap().into();
        log.run_resumed(PID, 1).await;
        let pump = capture::start(&log, vec![(Stream::Stdout, fd)], PID, 1);
        pump.expect("a pump for the pipe").await.unwrap();
        log.run_ended(None, true).await;
    });
}

/// Line `n` as the child writes it (without its newline): a number, then
/// filler of a length that varies with `n`; one in 50 longer than
/// [`MAX_LINE`].
fn line(n: u64) -> String {
    let h = n.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 40;
    let len = if n % 50 == 7 {
        1500 + h % 2000
    } else {
        h % 200
    };
    let fill: String = (0..len)
        .map(|i| char::from(b'a' + ((n + i) % 26) as u8))
        .collect();
    format!("line {n} {fill}")
}

/// Writes numbered lines in slices of random size until `stop`; returns
/// how many lines. Now and then it waits mid-line, longer than a held
/// line waits to be flushed.
/// `flood`: made 4 MiB at a time and written in slices of up to 1 MiB,
/// without a pause, so the pipe fills and raw output is relayed.
fn writer(mut w: std::fs::File, stop: Arc<AtomicBool>, flood: bool) -> u64 {
    let mut n = 0u64;
    let mut buf = Vec::new();
    let mut at = 0;
    loop {
        if at == buf.len() {
            if stop.load(Ordering::Relaxed) {
                return n;
            }
            buf.clear();
            at = 0;
            // A flood's lines are made in bulk, then written in a burst.
            let batch = if flood { 4 << 20 } else { 64 * 1024 };
            while buf.len() < batch {
                buf.extend_from_slice(line(n).as_bytes());
                buf.push(b'\n');
                n += 1;
            }
        }
        let most = if flood { 1 << 20 } else { 16 * 1024 };
        let take = fastrand::usize(1..=most).min(buf.len() - at);
        w.write_all(&buf[at..at + take]).unwrap();
        at += take;
        if flood {
            continue;
        }
        match fastrand::u32(0..400) {
            0 => std::thread::sleep(Duration::from_millis(300)),
            1..=100 => std::thread::sleep(Duration::from_millis(1)),
            _ => {}
        }
    }
}

fn role(dir: &Path, pipe: &str, format: &str, rotate: bool) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "logs::capture::crash::log_crash_role",
            "--test-threads",
            "1",
        ])
        .env(
            ROLE,
            format!("{}|{pipe}|{format}|{}", dir.display(), u8::from(rotate)),
        )
        .stdout(ProcStdio::null())
        .spawn()
        .unwrap()
}

/// Every file of the log, oldest first, concatenated.
fn read_log(path: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    for p in rotated_paths(path, MAX_FILES)
        .iter()
        .chain([path.to_path_buf()].iter())
    {
        if let Ok(b) = std::fs::read(p) {
            all.extend(b);
        }
    }
    all
}

fn size(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// The lines the log holds: records joined where a piece continues.
fn lines_of(log: &[u8], raw: bool) -> Vec<String> {
    let text = String::from_utf8_lossy(log);
    if raw {
        return text.lines().map(str::to_string).collect();
    }
    let mut out: Vec<String> = Vec::new();
    for rec in text.lines() {
        let rest = &rec[27..];
        if rest.starts_with(" -----") {
            continue;
        }
        if let Some(piece) = rest.strip_prefix(" stdout+ ") {
            out.last_mut()
                .expect("a continuation first")
                .push_str(piece);
        } else if let Some(l) = rest.strip_prefix(" stdout ") {
            out.push(l.to_string());
        } else {
            panic!("unexpected record {rec:?}");
        }
    }
    out
}

fn crash_exact(format: &str, rotate: bool, flood: bool) {
    let dir = tempfile::tempdir().unwrap();
    let (r, w) = super::pipe_pair().unwrap();
    let pipe = format!("/proc/{}/fd/{}", std::process::id(), r.as_raw_fd());
    let stop = Arc::new(AtomicBool::new(false));
    let w = std::fs::File::from(w);
    // The writer blocks on a full pipe, like a child: its end is blocking.
    rustix::io::ioctl_fionbio(&w, false).unwrap();
    let writing = std::thread::spawn({
        let stop = stop.clone();
        move || writer(w, stop, flood)
    });
    let log = dir.path().join("logs/svc.log");
    for round in 0..ROUNDS {
        let mut child = role(dir.path(), &pipe, format, rotate);
        if fastrand::u8(0..4) > 0 {
            // Mostly in full flow: once the log has grown.
            let before = size(&log);
            let deadline = Instant::now() + Duration::from_secs(60);
            while size(&log) == before {
                assert!(
                    Instant::now() < deadline,
                    "round {round}: the log does not grow"
                );
                assert!(running(&mut child), "round {round}: the role ended");
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        std::thread::sleep(Duration::from_millis(fastrand::u64(0..60)));
        // Another test's reaper (one per test process) may have reaped it
        // already: ECHILD then.
        let _ = child.kill();
        let _ = child.wait();
    }
    // The last one reads on for a while (spools grow past their reset
    // size), then to the end.
    let mut last = role(dir.path(), &pipe, format, rotate);
    std::thread::sleep(Duration::from_millis(1500));
    stop.store(true, Ordering::Relaxed);
    let deadline = Instant::now() + Duration::from_secs(180);
    // The writer ends once the last role has read what it wrote (or
    // never, if that role died: then it is left blocked).
    while !writing.is_finished() {
        if !running(&mut last) {
            panic!("the last role ended before the writer");
        }
        assert!(Instant::now() < deadline, "the writer never finished");
        std::thread::sleep(Duration::from_millis(20));
    }
    let n = writing.join().unwrap();
    let status = loop {
        match last.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) => {}
            // Reaped by another test's reaper: its status is gone; the log
            // below says whether it did its work.
            Err(_) => break None,
        }
        assert!(
            Instant::now() < deadline,
            "the last role never reached the end"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    if let Some(status) = status {
        assert!(status.success(), "the last role failed: {status}");
    }
    drop(r);
    let bytes = read_log(&log);
    eprintln!(
        "{format} rotate={rotate}: {n} lines, {} log bytes, {ROUNDS} kills",
        bytes.len()
    );
    let got = lines_of(&bytes, format == "raw");
    for (i, l) in got.iter().enumerate() {
        let want = line(i as u64);
        assert!(
            *l == want,
            "line {i} of {} (of {n} written) is {:?}, not {:?}",
            got.len(),
            &l[..l.len().min(40)],
            &want[..want.len().min(40)]
        );
    }
    assert_eq!(got.len() as u64, n, "every line once");
}

#[test]
fn a_manager_killed_at_random_instants_loses_and_repeats_no_line() {
    crash_exact("plain", false, false);
}

#[test]
fn across_rotations_a_killed_manager_loses_and_repeats_no_line() {
    crash_exact("plain", true, false);
}

#[test]
fn raw_output_spliced_into_the_file_survives_kills_exactly() {
    crash_exact("raw", false, false);
}

#[test]
fn a_raw_flood_relayed_through_a_second_pipe_survives_kills_exactly() {
    crash_exact("raw", false, true);
}

/// Whether the role still runs. ECHILD: another test's reaper (there is
/// one per test process) reaped it, so it ended.
fn running(child: &mut std::process::Child) -> bool {
    matches!(child.try_wait(), Ok(None))
}
