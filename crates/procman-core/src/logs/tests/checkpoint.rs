//! The two slots: the newest whole checkpoint wins, a torn one is ignored.

use std::io::Write;

use super::*;

fn spool_file(dir: &std::path::Path) -> File {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(dir.join("s"))
        .unwrap();
    f.set_len(HEADER).unwrap();
    f
}

fn sample(done: u64) -> Checkpoint {
    Checkpoint {
        done,
        continues: true,
        pid: 7,
        run: 3,
        gen: 11,
        log: Some(FileId {
            dev: 1,
            ino: 2,
            len: 3,
        }),
        ..Checkpoint::default()
    }
}

#[test]
fn a_checkpoint_reads_back_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let f = spool_file(dir.path());
    assert_eq!(
        read::<Checkpoint>(&f).unwrap(),
        None,
        "a new header holds none"
    );
    let mut cp = sample(HEADER + 10);
    write(&f, &mut cp).unwrap();
    assert_eq!(cp.seq, 1);
    assert_eq!(read::<Checkpoint>(&f).unwrap(), Some(cp));
}

#[test]
fn the_slots_alternate_and_the_highest_sequence_wins() {
    let dir = tempfile::tempdir().unwrap();
    let f = spool_file(dir.path());
    let mut cp = sample(HEADER);
    for done in 1..=5 {
        cp.done = HEADER + done;
        write(&f, &mut cp).unwrap();
        assert_eq!(
            read::<Checkpoint>(&f).unwrap().map(|c| c.done),
            Some(HEADER + done)
        );
    }
}

#[test]
fn a_torn_slot_leaves_the_previous_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let f = spool_file(dir.path());
    let mut cp = sample(HEADER + 1);
    write(&f, &mut cp).unwrap();
    let first = cp;
    cp.done = HEADER + 2;
    write(&f, &mut cp).unwrap();
    // The second write torn halfway: its slot's end is still old bytes.
    let slot = (cp.seq % 2) as usize * SLOT;
    let mut page = vec![0u8; 2 * SLOT];
    rustix::io::pread(&f, &mut page[..], 0).unwrap();
    page[slot + 30] ^= 0xff;
    (&f).write_all(&[]).unwrap();
    rustix::io::pwrite(&f, &page, 0).unwrap();
    assert_eq!(
        read::<Checkpoint>(&f).unwrap(),
        Some(first),
        "the older, whole one"
    );
}

#[test]
fn a_foreign_or_empty_slot_is_no_checkpoint() {
    assert_eq!(Checkpoint::decode(&[0u8; SLOT]), None);
    let mut b = sample(HEADER).encode();
    b[0] = b'X';
    assert_eq!(Checkpoint::decode(&b), None, "another magic");
    let mut b = sample(HEADER).encode();
    b[4] = VERSION + 1;
    assert_eq!(Checkpoint::decode(&b), None, "another version");
    let mut none = sample(HEADER);
    none.seq = 1;
    none.log = None;
    assert_eq!(Checkpoint::decode(&none.encode()), Some(none), "no log yet");
}
