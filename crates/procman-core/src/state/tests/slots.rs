use super::*;
use crate::state::record::{BreakerRecord, HeldPipe};

fn sample(id: &str, run: u32) -> ProcessRecord {
    ProcessRecord {
        version: VERSION,
        id: id.to_string(),
        pid: Some(4000 + run),
        start_time: Some(987_654),
        boot_id: "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0".into(),
        config_hash: "9c3b1f0e2d4a5b6c".into(),
        cgroup: Some(format!("/sys/fs/cgroup/procman-0123456789abcdef/{id}").into()),
        run,
        restarts: run.saturating_sub(1),
        restart_causes: vec![("exit".into(), 2), ("health".into(), 1)],
        breaker: BreakerRecord::default(),
        started_at_ms: Some(1_764_000_000_000),
        pipes: vec![
            HeldPipe {
                stream: "stdout".into(),
                fd: 62,
                inode: 123_456,
            },
            HeldPipe {
                stream: "stderr".into(),
                fd: 63,
                inode: 123_457,
            },
        ],
        port: Some(8080),
        manager_pid: 1,
    }
}

fn slots_len(dir: &Path) -> u64 {
    std::fs::metadata(dir.join("processes/slots"))
        .unwrap()
        .len()
}

#[test]
fn a_record_with_a_long_id_and_cgroup_fits_a_slot() {
    let mut r = sample(&"x".repeat(64), 9);
    r.restart_causes = [
        "exit", "signal", "health", "oom", "memory", "cpu", "restart",
    ]
    .iter()
    .map(|k| (k.to_string(), 1_000_000))
    .collect();
    let text = serde_json::to_vec(&r).unwrap();
    assert!(text.len() < SLOT / 2 + 200, "{} bytes", text.len());
}

#[test]
fn every_process_has_a_slot_and_a_removed_one_is_given_out_again() {
    let dir = tempfile::tempdir().unwrap();
    let records = Records::open(dir.path()).unwrap();
    for (i, id) in ["a", "b", "c"].iter().enumerate() {
        records.save(&sample(id, i as u32 + 1), false).unwrap();
    }
    assert_eq!(slots_len(dir.path()), 3 * SLOT as u64);
    assert_eq!(records.ids(), ["a", "b", "c"]);
    // Written again: the same slot.
    records.save(&sample("b", 7), false).unwrap();
    assert_eq!(slots_len(dir.path()), 3 * SLOT as u64);
    records.remove("b").unwrap();
    assert_eq!(records.ids(), ["a", "c"]);
    drop(records);

    // A new manager reads what is left, and gives the free slot out
    // before it grows the file.
    let records = Records::open(dir.path()).unwrap();
    assert_eq!(records.ids(), ["a", "c"]);
    assert_eq!(records.take("a").unwrap().unwrap(), sample("a", 1));
    assert_eq!(records.take("c").unwrap().unwrap(), sample("c", 3));
    assert!(records.take("b").is_none());
    records.save(&sample("d", 4), false).unwrap();
    assert_eq!(slots_len(dir.path()), 3 * SLOT as u64);
    drop(records);
    let records = Records::open(dir.path()).unwrap();
    assert_eq!(records.ids(), ["a", "c", "d"]);
    assert_eq!(records.take("d").unwrap().unwrap(), sample("d", 4));
}

#[test]
fn a_record_of_a_manager_before_the_slot_file_is_read_and_wins_over_a_slot() {
    let dir = tempfile::tempdir().unwrap();
    let records = Records::open(dir.path()).unwrap();
    records.save(&sample("web", 1), false).unwrap();
    drop(records);
    // What an older manager wrote: `processes/<id>.json`.
    std::fs::write(
        dir.path().join("processes/web.json"),
        serde_json::to_vec(&sample("web", 5)).unwrap(),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("processes/api.json"),
        serde_json::to_vec(&sample("api", 2)).unwrap(),
    )
    .unwrap();
    let records = Records::open(dir.path()).unwrap();
    assert_eq!(records.ids(), ["api", "web"]);
    assert_eq!(records.take("web").unwrap().unwrap().run, 5);
    assert_eq!(records.take("api").unwrap().unwrap().run, 2);
    // Removed: the file and the slot.
    records.remove("web").unwrap();
    records.remove("api").unwrap();
    assert!(!dir.path().join("processes/web.json").exists());
    assert!(!dir.path().join("processes/api.json").exists());
    drop(records);
    assert_eq!(
        Records::open(dir.path()).unwrap().ids(),
        Vec::<String>::new()
    );
}

#[test]
fn records_written_at_once_from_many_threads_are_each_read_whole() {
    let dir = tempfile::tempdir().unwrap();
    let records = std::sync::Arc::new(Records::open(dir.path()).unwrap());
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let records = records.clone();
            std::thread::spawn(move || {
                for i in 0..40u32 {
                    let id = format!("p{t}-{i}");
                    for run in 1..=3 {
                        records.save(&sample(&id, run), false).unwrap();
                    }
                    if i % 4 == 0 {
                        records.remove(&id).unwrap();
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    drop(records);
    let records = Records::open(dir.path()).unwrap();
    let ids = records.ids();
    assert_eq!(ids.len(), 8 * 30);
    for id in ids {
        let (_, i) = id.split_once('-').unwrap();
        assert_ne!(i.parse::<u32>().unwrap() % 4, 0, "{id} was removed");
        assert_eq!(records.take(&id).unwrap().unwrap(), sample(&id, 3));
    }
    // Removed records' slots were given out again.
    assert!(slots_len(dir.path()) <= (8 * 40) as u64 * SLOT as u64);
}

#[test]
fn a_slot_write_is_one_aligned_write_within_a_page() {
    // What makes a record whole against a crash: a slot never straddles a
    // page of any size the kernel uses.
    assert_eq!(4096 % SLOT, 0);
    assert_eq!(offset(3) % SLOT as u64, 0);
}

#[test]
fn the_file_grows_with_the_processes_at_once_not_with_every_id() {
    let dir = tempfile::tempdir().unwrap();
    let records = Records::open(dir.path()).unwrap();
    // A reload that replaces every id, eight times over.
    for round in 0..8 {
        for i in 0..5 {
            records
                .save(&sample(&format!("r{round}-p{i}"), 1), false)
                .unwrap();
        }
        for i in 0..5 {
            records.remove(&format!("r{round}-p{i}")).unwrap();
        }
    }
    assert_eq!(slots_len(dir.path()), 5 * SLOT as u64);
    assert_eq!(records.ids(), Vec::<String>::new());
}
