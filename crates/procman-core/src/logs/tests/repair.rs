//! The log put back to its last recorded write: cut, rotated, or gone.

use std::os::unix::fs::MetadataExt;

use super::*;

fn id(path: &Path, len: u64) -> FileId {
    let m = std::fs::metadata(path).unwrap();
    FileId {
        dev: m.dev(),
        ino: m.ino(),
        len,
    }
}

#[test]
fn the_live_file_is_cut_to_the_recorded_length() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("svc.log");
    std::fs::write(&log, "recorded\nnot recorded\n").unwrap();
    let last = id(&log, 9);
    let done = repair(&log, None, last).unwrap();
    assert_eq!(
        done,
        Repaired::Cut {
            path: log.clone(),
            from: 22,
            to: 9
        }
    );
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "recorded\n");
    assert_eq!(
        repair(&log, None, last).unwrap(),
        Repaired::Nothing,
        "twice is once"
    );
}

#[test]
fn a_shorter_file_is_never_lengthened() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("svc.log");
    std::fs::write(&log, "cut by someone\n").unwrap();
    assert_eq!(
        repair(&log, None, id(&log, 100)).unwrap(),
        Repaired::Nothing
    );
    assert_eq!(std::fs::metadata(&log).unwrap().len(), 15);
}

#[test]
fn a_file_rotated_after_the_record_is_cut_and_the_newer_files_go() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("svc.log");
    let numbered = |n: u32| dir.path().join(format!("svc.log.{n}"));
    std::fs::write(numbered(3), "old\n").unwrap();
    std::fs::write(&log, "recorded\nfilled after\n").unwrap();
    let last = id(&log, 9);
    // The unrecorded write filled it, rotated it (twice), wrote on.
    std::fs::rename(&log, numbered(2)).unwrap();
    std::fs::write(numbered(1), "newer\n").unwrap();
    std::fs::write(&log, "newest\n").unwrap();
    let done = repair(&log, Some(5), last).unwrap();
    assert_eq!(
        done,
        Repaired::Rotated {
            kept: numbered(2),
            cut: Some((22, 9)),
            removed: vec![log.clone(), numbered(1)],
        }
    );
    assert_eq!(std::fs::read_to_string(numbered(2)).unwrap(), "recorded\n");
    assert_eq!(
        std::fs::read_to_string(numbered(3)).unwrap(),
        "old\n",
        "older kept"
    );
    assert!(!log.exists() && !numbered(1).exists());
}

#[test]
fn a_file_gone_leaves_everything_as_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("svc.log");
    std::fs::write(&log, "one\n").unwrap();
    let last = id(&log, 2);
    std::fs::rename(&log, dir.path().join("svc.log-20261202")).unwrap();
    std::fs::write(&log, "new file\n").unwrap();
    assert_eq!(repair(&log, Some(3), last).unwrap(), Repaired::NotFound);
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "new file\n");
}

#[test]
fn a_link_at_the_path_is_not_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("elsewhere");
    std::fs::write(&target, "someone else's\n").unwrap();
    let log = dir.path().join("svc.log");
    std::os::unix::fs::symlink(&target, &log).unwrap();
    assert_eq!(
        repair(&log, None, id(&target, 1)).unwrap(),
        Repaired::NotFound
    );
    assert_eq!(std::fs::metadata(&target).unwrap().len(), 15);
}
