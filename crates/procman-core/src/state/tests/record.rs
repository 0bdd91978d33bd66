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
    let mode = std::fs::metadata(dir.path().join("processes/slots"))
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
    assert_eq!(ProcessRecord::ids(dir.path()), Vec::<String>::new());
    ProcessRecord::remove(dir.path(), "web").unwrap();
}

#[test]
fn a_damaged_or_foreign_record_is_never_misread() {
    let dir = tempfile::tempdir().unwrap();
    // A file of its own (a record too large for a slot, or one of a
    // manager before the slot file) that is damaged: an error.
    std::fs::create_dir_all(dir.path().join("processes")).unwrap();
    std::fs::write(dir.path().join("processes/a.json"), b"{ not json").unwrap();
    assert!(ProcessRecord::load(dir.path(), "a").is_err());
    // Another version: ignored.
    let mut other = sample("b");
    other.version = VERSION + 1;
    other.save(dir.path()).unwrap();
    assert_eq!(ProcessRecord::load(dir.path(), "b").unwrap(), None);
    std::os::unix::fs::symlink("/etc/passwd", dir.path().join("processes/c.json")).unwrap();
    assert!(
        ProcessRecord::load(dir.path(), "c").is_err(),
        "a link is refused"
    );
    // A damaged slot: no record, and the others are read.
    sample("d").save(dir.path()).unwrap();
    sample("e").save(dir.path()).unwrap();
    let slots = dir.path().join("processes/slots");
    let mut bytes = std::fs::read(&slots).unwrap();
    let d = bytes
        .chunks(crate::state::slots::SLOT)
        .position(|s| s.windows(7).any(|w| w == b"\"id\":\"d"))
        .unwrap();
    bytes[d * crate::state::slots::SLOT + 20] = b'#';
    std::fs::write(&slots, &bytes).unwrap();
    assert_eq!(ProcessRecord::load(dir.path(), "d").unwrap(), None);
    assert_eq!(
        ProcessRecord::load(dir.path(), "e").unwrap(),
        Some(sample("e"))
    );
}

#[test]
fn a_record_is_written_over_its_slot_in_place() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    let slots = dir.path().join("processes/slots");
    let mut long = sample("web");
    long.restart_causes = (0..20).map(|i| (format!("cause-{i}"), i)).collect();
    long.save(dir.path()).unwrap();
    let before = std::fs::metadata(&slots).unwrap();
    assert_eq!(before.len(), crate::state::slots::SLOT as u64);
    // The same file, as long as before: the rest of the slot is spaces,
    // which JSON allows.
    let short = sample("web");
    short.save(dir.path()).unwrap();
    let after = std::fs::metadata(&slots).unwrap();
    assert_eq!(after.ino(), before.ino());
    assert_eq!(after.len(), before.len());
    assert_eq!(ProcessRecord::load(dir.path(), "web").unwrap(), Some(short));
    assert!(!dir.path().join("processes/web.json").exists());
    long.save(dir.path()).unwrap();
    assert_eq!(ProcessRecord::load(dir.path(), "web").unwrap(), Some(long));
}

#[test]
fn a_record_larger_than_a_slot_is_a_file_of_its_own() {
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
    assert_eq!(ProcessRecord::ids(dir.path()), vec!["web".to_string()]);
    // A small one after it stays in the file (the slot was cleared, and a
    // file wins over a slot), still read whole.
    sample("web").save(dir.path()).unwrap();
    assert_eq!(
        ProcessRecord::load(dir.path(), "web").unwrap(),
        Some(sample("web"))
    );
    ProcessRecord::remove(dir.path(), "web").unwrap();
    assert!(!dir.path().join("processes/web.json").exists());
    assert!(!dir.path().join("processes/.web.json.tmp").exists());
    assert_eq!(ProcessRecord::load(dir.path(), "web").unwrap(), None);
}
