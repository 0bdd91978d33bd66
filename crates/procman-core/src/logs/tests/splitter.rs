//! The splitter: lines, pieces of long lines, tails kept across chunks, and
//! the round trip for any chunking of any input.

use proptest::prelude::*;

use super::*;

/// An owned copy of a record, and whether `finish` emitted it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Owned {
    bytes: Vec<u8>,
    continued: bool,
    continues: bool,
    at_eof: bool,
}

fn split(max_line: usize, chunks: &[&[u8]]) -> Vec<Owned> {
    let mut s = LineSplitter::new(Stream::Stderr, max_line);
    let mut got = Vec::new();
    for chunk in chunks {
        s.feed(chunk, |r| {
            assert_eq!(r.stream, Stream::Stderr);
            got.push(Owned {
                bytes: r.bytes.to_vec(),
                continued: r.continued,
                continues: r.continues,
                at_eof: false,
            });
        });
        assert!(s.pending.len() <= s.max_line);
    }
    s.finish(|r| {
        got.push(Owned {
            bytes: r.bytes.to_vec(),
            continued: r.continued,
            continues: r.continues,
            at_eof: true,
        })
    });
    assert_eq!(s.pending.len(), 0);
    got
}

/// (bytes, continued, continues) of each record, for short assertions.
fn flat(records: &[Owned]) -> Vec<(&[u8], bool, bool)> {
    records
        .iter()
        .map(|r| (r.bytes.as_slice(), r.continued, r.continues))
        .collect()
}

/// The input back from the records: the round trip the readers rely on.
fn join(records: &[Owned]) -> Vec<u8> {
    let mut out = Vec::new();
    for r in records {
        out.extend_from_slice(&r.bytes);
        if !r.continued && !r.at_eof {
            out.push(b'\n');
        }
    }
    out
}

#[test]
fn complete_lines_are_one_record_each() {
    let got = split(16, &[b"one\ntwo\n\nthree\n"]);
    assert_eq!(
        flat(&got),
        [
            (&b"one"[..], false, false),
            (b"two", false, false),
            (b"", false, false),
            (b"three", false, false),
        ]
    );
}

#[test]
fn carriage_return_stays_in_the_line() {
    let got = split(16, &[b"dos\r\nline\r\n"]);
    assert_eq!(
        flat(&got),
        [(&b"dos\r"[..], false, false), (b"line\r", false, false)]
    );
}

#[test]
fn last_line_without_newline_is_kept_at_eof() {
    let got = split(16, &[b"a\nno newline"]);
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].bytes, b"no newline");
    assert!(got[1].at_eof && !got[1].continued);
}

#[test]
fn line_cut_by_chunk_boundary_is_joined() {
    let got = split(16, &[b"hel", b"lo wo", b"rld\nnext", b"\n"]);
    assert_eq!(
        flat(&got),
        [(&b"hello world"[..], false, false), (b"next", false, false)]
    );
}

#[test]
fn line_of_exactly_max_line_is_whole_even_across_chunks() {
    assert_eq!(
        flat(&split(4, &[b"abcd\n"])),
        [(&b"abcd"[..], false, false)]
    );
    // The full line is held, and the newline arrives in the next chunk.
    assert_eq!(
        flat(&split(4, &[b"ab", b"cd", b"\n"])),
        [(&b"abcd"[..], false, false)]
    );
    assert_eq!(
        flat(&split(4, &[b"abcd", b"\nx\n"])),
        [(&b"abcd"[..], false, false), (b"x", false, false)]
    );
}

#[test]
fn long_line_is_cut_into_marked_pieces() {
    let got = split(4, &[b"abcdefghij\n"]);
    assert_eq!(
        flat(&got),
        [
            (&b"abcd"[..], true, false),
            (b"efgh", true, true),
            (b"ij", false, true),
        ]
    );
    // One byte over: a full piece and a one-byte last piece.
    assert_eq!(
        flat(&split(4, &[b"abcde\n"])),
        [(&b"abcd"[..], true, false), (b"e", false, true)]
    );
}

#[test]
fn long_line_across_chunks_is_cut_the_same_way() {
    let got = split(4, &[b"ab", b"cdefg", b"hij", b"\nk\n"]);
    assert_eq!(
        flat(&got),
        [
            (&b"abcd"[..], true, false),
            (b"efgh", true, true),
            (b"ij", false, true),
            (b"k", false, false),
        ]
    );
}

#[test]
fn flood_without_newline_holds_at_most_max_line() {
    let mut s = LineSplitter::new(Stream::Stdout, 8);
    let mut pieces = 0;
    for _ in 0..1000 {
        s.feed(&[b'x'; 1000], |r| {
            assert_eq!(r.bytes.len(), 8);
            assert!(r.continued);
            pieces += 1;
        });
        assert!(s.pending.len() <= 8);
    }
    let mut last = None;
    s.finish(|r| last = Some((r.bytes.len(), r.continued, r.continues)));
    // 1,000,000 bytes = 124,999 pieces handed out + the held 8 at EOF.
    assert_eq!(pieces, 124_999);
    assert_eq!(last, Some((8, false, true)));
}

#[test]
fn finish_resets_for_reuse() {
    let mut s = LineSplitter::new(Stream::Stdout, 2);
    s.feed(b"abc", |_| {});
    s.finish(|_| {});
    let mut got = Vec::new();
    s.feed(b"z\n", |r| got.push((r.bytes.to_vec(), r.continues)));
    assert_eq!(got, [(b"z".to_vec(), false)]);
}

#[test]
fn max_line_zero_is_taken_as_one() {
    let got = split(0, &[b"ab\n"]);
    assert_eq!(flat(&got), [(&b"a"[..], true, false), (b"b", false, true)]);
}

#[test]
fn empty_input_gives_no_record() {
    assert!(split(4, &[]).is_empty());
    assert!(split(4, &[b"", b""]).is_empty());
}

/// Bytes from a small alphabet, so that newlines, `\r` and invalid UTF-8
/// are common.
fn input() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop::sample::select(vec![b'a', b'b', b'\n', b'\r', 0xff, 0xc3]),
        0..300,
    )
}

/// Cuts `data` at the given (sorted, deduplicated) positions.
fn chunked(data: &[u8], mut cuts: Vec<usize>) -> Vec<&[u8]> {
    cuts.iter_mut().for_each(|c| *c %= data.len() + 1);
    cuts.sort_unstable();
    cuts.dedup();
    let mut chunks = Vec::new();
    let mut start = 0;
    for c in cuts.into_iter().chain([data.len()]) {
        chunks.push(&data[start..c]);
        start = c;
    }
    chunks
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn any_chunking_round_trips(
        data in input(),
        cuts in prop::collection::vec(any::<usize>(), 0..20),
        max_line in 1usize..12,
    ) {
        let chunks = chunked(&data, cuts);
        let got = split(max_line, &chunks);
        prop_assert_eq!(join(&got), data.clone());
        // The records are the same as when the input comes in one piece.
        prop_assert_eq!(&got, &split(max_line, &[&data]));
        let mut prev_continued = false;
        for (i, r) in got.iter().enumerate() {
            prop_assert!(!r.bytes.contains(&b'\n'));
            prop_assert!(r.bytes.len() <= max_line);
            if r.continued {
                prop_assert_eq!(r.bytes.len(), max_line);
            }
            prop_assert_eq!(r.continues, prev_continued);
            // Only the last record can be a tail emitted at EOF.
            prop_assert!(!r.at_eof || i == got.len() - 1);
            prev_continued = r.continued;
        }
        prop_assert!(!prev_continued, "the last record ends its line");
    }
}

#[test]
fn a_held_partial_line_is_flushed_as_a_piece_to_be_continued() {
    let mut s = LineSplitter::new(Stream::Stdout, 64);
    let mut got: Vec<(Vec<u8>, bool, bool)> = Vec::new();
    let mut push = |r: Record<'_>| got.push((r.bytes.to_vec(), r.continued, r.continues));
    s.feed(b"Password: ", &mut push);
    assert!(s.has_pending());
    s.flush_partial(&mut push);
    assert!(!s.has_pending());
    s.flush_partial(&mut push); // nothing held: nothing emitted
    s.feed(b"ok\nnext\n", &mut push);
    s.finish(&mut push);
    assert_eq!(
        got,
        [
            (b"Password: ".to_vec(), true, false),
            (b"ok".to_vec(), false, true),
            (b"next".to_vec(), false, false),
        ]
    );
}
