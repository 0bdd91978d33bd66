//! Files and directories the manager creates: modes, links, fifos, owners.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::time::{Duration, Instant};

use super::*;

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().mode() & 0o7777
}

#[test]
fn new_directories_and_files_get_their_modes() {
    let t = tempfile::tempdir().unwrap();
    let state = t.path().join("a/state");
    ensure_dir(&state, DirKind::State).unwrap();
    assert_eq!(mode(&state), 0o700);
    let logs = t.path().join("logs");
    ensure_dir(&logs, DirKind::Log).unwrap();
    assert_eq!(mode(&logs), 0o750);
    let f = logs.join("x.log");
    let opened = open(&f, Access::Append).unwrap();
    assert!(opened.created);
    assert_eq!(mode(&f), 0o640);
    assert!(!open(&f, Access::Append).unwrap().created);
}

#[test]
fn a_symlink_is_refused_and_its_target_untouched() {
    let t = tempfile::tempdir().unwrap();
    let victim = t.path().join("victim");
    std::fs::write(&victim, "x").unwrap();
    let link = t.path().join("x.log");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    let err = open(&link, Access::Append).unwrap_err();
    assert!(err.to_string().contains("symbolic link"), "{err}");
    // A dangling link is refused too (not created through).
    let dangling = t.path().join("d.log");
    std::os::unix::fs::symlink(t.path().join("nowhere"), &dangling).unwrap();
    assert!(open(&dangling, Access::Append).is_err());
    assert!(!t.path().join("nowhere").exists());
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "x");
}

#[test]
fn a_fifo_is_refused_without_blocking() {
    let t = tempfile::tempdir().unwrap();
    let fifo = t.path().join("f.log");
    rustix::fs::mkfifoat(rustix::fs::CWD, &fifo, Mode::from_raw_mode(0o600)).unwrap();
    let began = Instant::now();
    let err = open(&fifo, Access::Append).unwrap_err();
    assert!(err.to_string().contains("regular file"), "{err}");
    assert!(began.elapsed() < Duration::from_secs(5));
}

#[test]
fn a_directory_writable_by_others_is_refused_with_the_fix() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path().join("open");
    std::fs::create_dir(&d).unwrap();
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o770)).unwrap();
    let msg = ensure_dir(&d, DirKind::State).unwrap_err().to_string();
    assert!(msg.contains(&format!("chmod 700 {}", d.display())), "{msg}");
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o757)).unwrap();
    let msg = ensure_dir(&d, DirKind::Log).unwrap_err().to_string();
    assert!(msg.contains(&format!("chmod 750 {}", d.display())), "{msg}");
}

#[test]
fn a_readable_state_dir_is_tightened_and_a_readable_log_dir_kept() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path().join("d");
    std::fs::create_dir(&d).unwrap();
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
    ensure_dir(&d, DirKind::Log).unwrap();
    assert_eq!(mode(&d), 0o755);
    ensure_dir(&d, DirKind::State).unwrap();
    assert_eq!(mode(&d), 0o700);
}

#[test]
fn a_file_where_a_directory_should_be_is_named() {
    let t = tempfile::tempdir().unwrap();
    let f = t.path().join("file");
    std::fs::write(&f, "").unwrap();
    let msg = ensure_dir(&f, DirKind::Log).unwrap_err().to_string();
    assert!(
        msg.contains(&f.display().to_string()) && msg.contains("not a directory"),
        "{msg}"
    );
}
