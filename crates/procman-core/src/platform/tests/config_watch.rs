//! Hearing configuration files change: the ways files are written, the
//! debounce, other files, the set changing, symbolic links swapped, and
//! directories going away.
//!
//! Every wait for an answer has a deadline of 30 s; "nothing is reported"
//! is a wait of a second (several quiet times) that must run out.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::*;

const QUIET: Duration = Duration::from_millis(200);

/// The next answer, which must come.
async fn next(w: &mut ConfigWatch) -> Vec<PathBuf> {
    tokio::time::timeout(Duration::from_secs(30), w.changed())
        .await
        .expect("an answer within 30 s")
        .expect("read events")
}

/// The next answer, which must be `file` alone.
async fn hears(w: &mut ConfigWatch, file: &Path) {
    assert_eq!(next(w).await, [file]);
}

fn watch_one(file: &Path, quiet: Duration) -> ConfigWatch {
    ConfigWatch::new(&[file.to_path_buf()], quiet).expect("watch")
}

/// No answer within `wait` (the wait is dropped, which loses nothing).
async fn nothing(w: &mut ConfigWatch, wait: Duration) {
    let answer = tokio::time::timeout(wait, w.changed()).await;
    assert!(answer.is_err(), "nothing changed, yet: {answer:?}");
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).expect("write");
}

/// A temporary directory with `config.yaml` in it.
fn config_dir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("config.yaml");
    write(&config, "processes: {}\n");
    (dir, config)
}

#[tokio::test]
async fn a_plain_write_is_heard() {
    let (_dir, config) = config_dir();
    let mut w = watch_one(&config, QUIET);
    write(&config, "processes: {a: {command: [true]}}\n");
    hears(&mut w, &config).await;
    // And again: the watch goes on.
    std::fs::OpenOptions::new()
        .append(true)
        .open(&config)
        .and_then(|mut f| f.write_all(b"# more\n"))
        .expect("append");
    hears(&mut w, &config).await;
}

#[tokio::test]
async fn a_wait_dropped_while_it_debounces_loses_no_change() {
    let (_dir, config) = config_dir();
    let quiet = Duration::from_secs(1);
    let mut w = watch_one(&config, quiet);
    write(&config, "processes: {}\n");
    // Dropped after the change is heard, before its quiet time is over.
    nothing(&mut w, Duration::from_millis(300)).await;
    hears(&mut w, &config).await;
}

#[tokio::test]
async fn a_write_to_a_temporary_file_renamed_over_is_heard_once_for_the_file() {
    let (dir, config) = config_dir();
    let mut w = watch_one(&config, QUIET);
    let tmp = dir.path().join(".config.yaml.swp");
    write(&tmp, "processes: {b: {command: [true]}}\n");
    std::fs::rename(&tmp, &config).expect("rename");
    hears(&mut w, &config).await;
    // The file is a new inode now, and still heard.
    write(&config, "processes: {}\n");
    hears(&mut w, &config).await;
}

#[tokio::test]
async fn a_file_deleted_and_created_again_is_heard_and_still_watched() {
    let (_dir, config) = config_dir();
    let mut w = watch_one(&config, QUIET);
    std::fs::remove_file(&config).expect("remove");
    hears(&mut w, &config).await;
    write(&config, "processes: {}\n");
    hears(&mut w, &config).await;
    write(&config, "processes: {c: {command: [true]}}\n");
    hears(&mut w, &config).await;
}

#[tokio::test]
async fn a_burst_of_writes_within_the_quiet_time_is_one_change() {
    let (_dir, config) = config_dir();
    let quiet = Duration::from_millis(1500);
    let mut w = watch_one(&config, quiet);
    // Spread over 400 ms while the watch waits, so that they are read in
    // many wake-ups, not one.
    let writer = {
        let config = config.clone();
        std::thread::spawn(move || {
            for i in 0..20 {
                write(&config, &format!("# version {i}\nprocesses: {{}}\n"));
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    hears(&mut w, &config).await;
    writer.join().expect("writer");
    nothing(&mut w, 2 * quiet).await;
}

#[tokio::test]
async fn a_file_rewritten_forever_is_still_reported() {
    let (_dir, config) = config_dir();
    let quiet = Duration::from_millis(300);
    let mut w = watch_one(&config, quiet);
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (config, stop) = (config.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut writes = 0u64;
            while !stop.load(Ordering::SeqCst) {
                write(&config, &format!("# version {writes}\n"));
                writes += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            writes
        })
    };
    // Never `quiet` without a write: only the limit of 10 quiet times
    // after the first write answers.
    let answer = next(&mut w).await;
    stop.store(true, Ordering::SeqCst);
    let writes = writer.join().expect("writer");
    assert_eq!(answer, [config]);
    assert!(writes > 1, "the writer went on writing ({writes} writes)");
}

#[tokio::test]
async fn another_file_in_the_same_directory_is_not_reported() {
    let (dir, config) = config_dir();
    let mut w = watch_one(&config, QUIET);
    let other = dir.path().join("config.yaml.bak");
    write(&other, "x");
    write(&dir.path().join("config"), "x");
    std::fs::rename(&other, dir.path().join("old.yaml")).expect("rename");
    nothing(&mut w, Duration::from_secs(1)).await;
    write(&config, "processes: {}\n");
    hears(&mut w, &config).await;
}

#[tokio::test]
async fn an_env_file_in_another_directory_is_heard_and_answers_keep_the_given_order() {
    let (_dir, config) = config_dir();
    let env_dir = tempfile::tempdir().expect("tempdir");
    let env = env_dir.path().join("app.env");
    write(&env, "A=1\n");
    let files = [config.clone(), env.clone(), config.clone()];
    let mut w = ConfigWatch::new(&files, QUIET).expect("watch");
    write(&env, "A=2\n");
    hears(&mut w, &env).await;
    // Both, the env file first: answered once each, in the order given.
    write(&env, "A=3\n");
    write(&config, "processes: {}\n");
    assert_eq!(next(&mut w).await, [config, env]);
}

#[tokio::test]
async fn set_files_replaces_the_files_heard() {
    let (_dir, config) = config_dir();
    let env_dir = tempfile::tempdir().expect("tempdir");
    let env = env_dir.path().join("app.env");
    write(&env, "A=1\n");
    let mut w = watch_one(&config, QUIET);
    write(&env, "A=2\n");
    nothing(&mut w, Duration::from_secs(1)).await;

    w.set_files(std::slice::from_ref(&env)).expect("set files");
    write(&config, "processes: {}\n");
    nothing(&mut w, Duration::from_secs(1)).await;
    write(&env, "A=3\n");
    hears(&mut w, &env).await;

    // A directory that cannot be watched is named, and changes nothing.
    let missing = env_dir.path().join("no-such-dir");
    let err = w
        .set_files(&[config.clone(), missing.join("x.env")])
        .expect_err("a missing directory");
    let shown = missing.display().to_string();
    assert!(err.to_string().contains(&shown), "{err}");
    write(&env, "A=4\n");
    hears(&mut w, &env).await;
}

#[tokio::test]
async fn a_missing_directory_is_named_at_first() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("etc");
    let err = ConfigWatch::new(&[missing.join("config.yaml")], QUIET).expect_err("missing");
    assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
    let shown = missing.display().to_string();
    assert!(err.to_string().contains(&shown), "{err}");
}

/// Writes a ConfigMap version directory `..<version>` holding config.yaml.
fn config_map_version(mount: &Path, version: &str, text: &str) -> PathBuf {
    let dir = mount.join(format!("..{version}"));
    std::fs::create_dir(&dir).expect("version dir");
    write(&dir.join("config.yaml"), text);
    dir
}

#[tokio::test]
async fn a_config_map_swap_of_its_data_link_is_heard() {
    use std::os::unix::fs::symlink;
    let mount = tempfile::tempdir().expect("tempdir");
    let mount = mount.path();
    let old = config_map_version(mount, "2026_12_03_01", "v1\n");
    symlink("..2026_12_03_01", mount.join("..data")).expect("data link");
    let config = mount.join("config.yaml");
    symlink("..data/config.yaml", &config).expect("config link");
    let mut w = watch_one(&config, QUIET);

    // As the kubelet does: a new version, a new link renamed over `..data`.
    // Neither `config.yaml` link nor the old version's file changes.
    let new = config_map_version(mount, "2026_12_03_02", "v2\n");
    symlink("..2026_12_03_02", mount.join("..data_tmp")).expect("tmp link");
    std::fs::rename(mount.join("..data_tmp"), mount.join("..data")).expect("swap");
    hears(&mut w, &config).await;
    assert_eq!(std::fs::read_to_string(&config).expect("read"), "v2\n");

    // The old version is not the file any more.
    std::fs::remove_dir_all(&old).expect("remove old version");
    nothing(&mut w, Duration::from_secs(1)).await;

    // The new version's file is: it was resolved again.
    write(&new.join("config.yaml"), "v3\n");
    hears(&mut w, &config).await;
}

/// The CPU time this thread has used.
fn thread_cpu() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

#[tokio::test]
async fn a_removed_directory_is_warned_about_once_and_the_others_are_still_heard() {
    // The test runs on this thread (a current-thread runtime).
    let logging = crate::testing::capture_log();

    let (_dir, config) = config_dir();
    let env_dir = tempfile::tempdir().expect("tempdir");
    let env_parent = env_dir.path().join("env");
    std::fs::create_dir(&env_parent).expect("env dir");
    let env = env_parent.join("app.env");
    write(&env, "A=1\n");
    let mut w = ConfigWatch::new(&[config.clone(), env.clone()], QUIET).expect("watch");

    std::fs::remove_dir_all(&env_parent).expect("remove env dir");
    hears(&mut w, &env).await;
    // Then quiet: no answers, and no spinning while waiting.
    let cpu = thread_cpu();
    nothing(&mut w, Duration::from_secs(1)).await;
    let used = thread_cpu() - cpu;
    assert!(used < Duration::from_millis(300), "{used:?} of CPU");

    write(&config, "processes: {}\n");
    hears(&mut w, &config).await;
    write(&config, "processes: {a: {command: [true]}}\n");
    hears(&mut w, &config).await;

    let log = logging.text();
    let warning = format!("cannot watch the directory {}", env_parent.display());
    assert_eq!(log.matches(&warning).count(), 1, "{log}");
    assert!(log.contains("WARN"), "{log}");
}

#[tokio::test]
async fn an_overflow_of_the_event_queue_is_a_change_of_every_file() {
    let limit = std::fs::read_to_string("/proc/sys/fs/inotify/max_queued_events")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok());
    let Some(limit) = limit.filter(|n| *n <= 100_000) else {
        return crate::testing::skip_or_fail("no inotify queue limit small enough to overflow");
    };
    let (dir, config) = config_dir();
    let env_dir = tempfile::tempdir().expect("tempdir");
    let env = env_dir.path().join("app.env");
    write(&env, "A=1\n");
    let mut w = ConfigWatch::new(&[config.clone(), env.clone()], QUIET).expect("watch");
    // Other files only, alternating so that the kernel merges no events
    // (two per write: modified, closed), until the queue is full.
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    for _ in 0..limit / 4 + 16 {
        write(&a, "a");
        write(&b, "b");
    }
    assert_eq!(next(&mut w).await, [config, env]);
}
