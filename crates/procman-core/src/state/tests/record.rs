use super::*;

fn sample(id: &str) -> ProcessRecord {
    ProcessRecord {
        version: VERSION,
        id: id.to_string(),
        pid: Some(4242),
        start_time: Some(987_654),
        boot_id: "b".into(),
        config_hash: "c".into(),
        cgroup: None,
        run: 3,
        restarts: 2,
        restart_causes: vec![("exit".into(), 2)],
        breaker: BreakerRecord::default(),
        started_at_ms: Some(1),
        pipes: vec![HeldPipe {
            stream: "stdout".into(),
            fd: 62,
            inode: 7,
        }],
        port: None,
        manager_pid: 1,
    }
}

#[test]
fn a_record_round_trips_and_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let rec = sample("web");
    rec.save(dir.path()).unwrap();
    assert_eq!(
        ProcessRecord::load(dir.path(), "web").unwrap(),
        Some(rec.clone())
    );
    let mode = std::fs::metadata(dir.path().join("processes/web.json"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o640);
    assert_eq!(ProcessRecord::ids(dir.path()), vec!["web".to_string()]);
    // Written again: replaced whole.
    let mut next = rec;
    next.run = 4;
    next.save(dir.path()).unwrap();
    assert_eq!(
        ProcessRecord::load(dir.path(), "web").unwrap().unwrap().run,
        4
    );
    ProcessRecord::remove(dir.path(), "web").unwrap();
    assert_eq!(ProcessRecord::load(dir.path(), "web").unwrap(), None);
    ProcessRecord::remove(dir.path(), "web").unwrap();
}

#[test]
fn a_damaged_or_foreign_record_is_never_misread() {
    let dir = tempfile::tempdir().unwrap();
    sample("a").save(dir.path()).unwrap();
    std::fs::write(dir.path().join("processes/a.json"), b"{ not json").unwrap();
    assert!(ProcessRecord::load(dir.path(), "a").is_err());
    let mut other = sample("b");
    other.version = VERSION + 1;
    other.save(dir.path()).unwrap();
    assert_eq!(ProcessRecord::load(dir.path(), "b").unwrap(), None);
    std::os::unix::fs::symlink("/etc/passwd", dir.path().join("processes/c.json")).unwrap();
    assert!(
        ProcessRecord::load(dir.path(), "c").is_err(),
        "a link is refused"
    );
}

#[test]
fn a_shorter_record_overwrites_a_longer_one_in_place() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("processes/web.json");
    let mut long = sample("web");
    long.restart_causes = (0..20).map(|i| (format!("cause-{i}"), i)).collect();
    long.save_unsynced(dir.path()).unwrap();
    let before = std::fs::metadata(&file).unwrap();
    // The same file (no temporary swapped in), as long as before: the
    // rest of the old record is spaces, which JSON allows.
    let short = sample("web");
    short.save_unsynced(dir.path()).unwrap();
    let after = std::fs::metadata(&file).unwrap();
    assert_eq!(after.ino(), before.ino());
    assert_eq!(after.len(), before.len());
    assert_eq!(ProcessRecord::load(dir.path(), "web").unwrap(), Some(short));
    assert!(!dir.path().join("processes/.web.json.tmp").exists());
    // A longer one again grows the file and is read whole.
    long.save_unsynced(dir.path()).unwrap();
    assert_eq!(ProcessRecord::load(dir.path(), "web").unwrap(), Some(long));
}

#[test]
fn a_record_larger_than_a_page_is_swapped_in_whole() {
    let dir = tempfile::tempdir().unwrap();
    let mut big = sample("web");
    big.restart_causes = (0..400).map(|i| (format!("cause-{i}"), i)).collect();
    sample("web").save(dir.path()).unwrap();
    big.save(dir.path()).unwrap();
    assert!(
        std::fs::metadata(dir.path().join("processes/web.json"))
            .unwrap()
            .len()
            > 4096
    );
    assert_eq!(ProcessRecord::load(dir.path(), "web").unwrap(), Some(big));
    // And a small one after it goes through the swap too (the file is
    // larger than a page), still read whole.
    sample("web").save(dir.path()).unwrap();
    assert_eq!(
        ProcessRecord::load(dir.path(), "web").unwrap(),
        Some(sample("web"))
    );
    ProcessRecord::remove(dir.path(), "web").unwrap();
    assert!(!dir.path().join("processes/.web.json.tmp").exists());
}
