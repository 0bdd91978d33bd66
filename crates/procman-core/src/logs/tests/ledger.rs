//! The ledger's records, and what a record found after a crash asks of the
//! file.

use super::*;

fn round(at: u64, len: u64) -> Relayed {
    Relayed {
        stream: Stream::Stderr,
        at: FileId {
            dev: 7,
            ino: 42,
            len: at,
        },
        len,
        pid: 1234,
        run: 5,
    }
}

fn file(len: u64) -> FileId {
    FileId {
        dev: 7,
        ino: 42,
        len,
    }
}

#[test]
fn a_record_and_a_clear_one_come_back_as_written() {
    for relayed in [Some(round(1 << 40, 1 << 20)), None] {
        let e = Entry { seq: 9, relayed };
        assert_eq!(Entry::decode(&e.encode()), Some(e));
    }
}

#[test]
fn a_torn_or_foreign_slot_is_no_record() {
    let mut b = Entry {
        seq: 3,
        relayed: Some(round(100, 50)),
    }
    .encode();
    b[20] ^= 1;
    assert_eq!(Entry::decode(&b), None, "checksum");
    assert_eq!(Entry::decode(&[0u8; SLOT]), None, "empty");
    let mut cp = [0u8; SLOT];
    cp[..4].copy_from_slice(b"PMSP");
    assert_eq!(Entry::decode(&cp), None, "a spool's checkpoint");
}

#[test]
fn the_ledger_file_keeps_the_last_round_until_cleared() {
    let dir = tempfile::tempdir().unwrap();
    let p = path(dir.path(), "svc");
    assert_eq!(interrupted(&p).unwrap(), None, "no ledger yet");
    let mut l = Ledger::new(p.clone());
    l.begin(round(0, 10)).unwrap();
    l.begin(round(10, 20)).unwrap();
    assert_eq!(interrupted(&p).unwrap(), Some(round(10, 20)));
    l.clear().unwrap();
    assert_eq!(interrupted(&p).unwrap(), None);
    // A new manager's ledger goes on from the file's sequence numbers: its
    // next record is the newest.
    let mut again = Ledger::new(p.clone());
    again.begin(round(30, 5)).unwrap();
    assert_eq!(interrupted(&p).unwrap(), Some(round(30, 5)));
    let mode = std::fs::metadata(&p).unwrap().permissions();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(mode.mode() & 0o777, 0o600);
}

#[test]
fn a_torn_newest_slot_leaves_the_one_before() {
    let dir = tempfile::tempdir().unwrap();
    let p = path(dir.path(), "svc");
    let mut l = Ledger::new(p.clone());
    l.begin(round(0, 10)).unwrap();
    l.clear().unwrap();
    // The clear record (sequence 2) went to the first slot; tear it.
    let f = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
    rustix::io::pwrite(&f, &[0xff; 8], 20).unwrap();
    assert_eq!(interrupted(&p).unwrap(), Some(round(0, 10)));
}

#[test]
fn a_round_cut_short_is_cut_back_and_a_whole_one_compared() {
    let r = round(1000, 500);
    assert_eq!(
        r.settle(file(1000), true),
        Settle::CutTo(1000),
        "nothing written"
    );
    assert_eq!(
        r.settle(file(1200), true),
        Settle::CutTo(1000),
        "half written"
    );
    assert_eq!(r.settle(file(1500), true), Settle::Compare, "all written");
}

#[test]
fn a_file_past_the_round_another_file_or_no_pipe_is_kept() {
    let r = round(1000, 500);
    assert_eq!(r.settle(file(1501), true), Settle::Keep, "written after");
    assert_eq!(
        r.settle(file(999), true),
        Settle::Keep,
        "cut by someone else"
    );
    let other = FileId {
        ino: 43,
        ..file(1200)
    };
    assert_eq!(r.settle(other, true), Settle::Keep, "another file");
    assert_eq!(
        r.settle(file(1200), false),
        Settle::Keep,
        "the pipe is gone"
    );
}
