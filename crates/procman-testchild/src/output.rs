//! Output under test: `flood` (as many bytes as fast as possible) and
//! `lines` (a few numbered lines, optionally spaced out in time).

use std::io;
use std::thread;
use std::time::Duration;

use crate::cli::{Stream, NUMBER_DIGITS};
use crate::out::{say, write_all};
use crate::signals::Catcher;

/// Roughly how many bytes one `write(2)` carries.
const CHUNK_BYTES: usize = 1 << 20;

/// `flood BYTES [--line-len N] [--stderr] [--wait-usr1]`
///
/// The output is exactly the first `bytes` bytes of the endless sequence of
/// lines `000000001 xxx…x\n`, each `line_len` bytes long, so the last line
/// is cut short unless `bytes` is a multiple of `line_len`.
///
/// With `wait_usr1`, `ready pid=N` is printed on stdout (ahead of the flood
/// if that goes to stdout too) once SIGUSR1 is caught, and the flood starts
/// when it arrives.
pub fn flood(bytes: u64, line_len: usize, stream: Stream, wait_usr1: bool) -> io::Result<u8> {
    if wait_usr1 {
        let catcher = Catcher::install(&[libc::SIGUSR1])?;
        say!("ready pid={}", std::process::id());
        catcher.wait();
    }
    let per_chunk = lines_per_chunk(line_len);
    let step = Step::new(per_chunk as u64);
    let mut buf = first_lines(per_chunk, line_len);
    let mut remaining = bytes;
    loop {
        let len = remaining.min(buf.len() as u64) as usize;
        write_all(stream.fd(), &buf[..len])?;
        remaining -= len as u64;
        if remaining == 0 {
            return Ok(0);
        }
        // Renumber in place: each line moves on by `per_chunk`.
        for line in buf.chunks_exact_mut(line_len) {
            step.apply(&mut line[..NUMBER_DIGITS]);
        }
    }
}

/// About a chunk's worth of lines, rounded down to one significant digit
/// (10000, not 10485) so that renumbering touches one or two digits a line.
fn lines_per_chunk(line_len: usize) -> usize {
    let n = (CHUNK_BYTES / line_len).max(1);
    let mut power = 1;
    while power * 10 <= n {
        power *= 10;
    }
    n / power * power
}

/// Lines numbered `1..=count`.
fn first_lines(count: usize, line_len: usize) -> Vec<u8> {
    let mut buf = Vec::with_capacity(count * line_len);
    for n in 1..=count {
        buf.extend_from_slice(format!("{n:0width$} ", width = NUMBER_DIGITS).as_bytes());
        buf.resize(buf.len() + line_len - NUMBER_DIGITS - 2, b'x');
        buf.push(b'\n');
    }
    buf
}

/// Adds a constant to a fixed-width ASCII decimal number, skipping the
/// constant's trailing zeros.
struct Step {
    value: u64,
    skip: usize,
}

impl Step {
    fn new(mut value: u64) -> Self {
        let mut skip = 0;
        while value != 0 && value % 10 == 0 {
            value /= 10;
            skip += 1;
        }
        Self { value, skip }
    }

    /// The caller keeps the number below 10^digits (the parser caps the
    /// line count), so the final carry is always zero.
    fn apply(&self, digits: &mut [u8]) {
        let mut add = self.value;
        let mut carry = 0;
        let mut i = digits.len() - self.skip;
        while i > 0 && (add != 0 || carry != 0) {
            i -= 1;
            let d = digits[i] - b'0' + (add % 10) as u8 + carry;
            add /= 10;
            carry = d / 10;
            digits[i] = b'0' + d % 10;
        }
    }
}

/// `lines COUNT [--interval DURATION] [--stderr] [--no-newline-last]`:
/// `line 1` … `line COUNT`, one `write(2)` each.
pub fn lines(
    count: u64,
    interval: Option<Duration>,
    stream: Stream,
    no_newline_last: bool,
) -> io::Result<u8> {
    for n in 1..=count {
        if let (true, Some(d)) = (n > 1, interval) {
            thread::sleep(d);
        }
        let mut line = format!("line {n}");
        if !(no_newline_last && n == count) {
            line.push('\n');
        }
        write_all(stream.fd(), line.as_bytes())?;
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renumbering_matches_fresh_lines() {
        for line_len in [11, 12, 100, 4096, 3 << 20] {
            let per_chunk = lines_per_chunk(line_len);
            let mut buf = first_lines(per_chunk, line_len);
            let step = Step::new(per_chunk as u64);
            for chunk in 1..4 {
                for line in buf.chunks_exact_mut(line_len) {
                    step.apply(&mut line[..NUMBER_DIGITS]);
                }
                let first = format!("{:09} ", chunk * per_chunk + 1);
                let last = format!("{:09} ", (chunk + 1) * per_chunk);
                assert_eq!(&buf[..10], first.as_bytes());
                assert_eq!(&buf[buf.len() - line_len..][..10], last.as_bytes());
            }
        }
    }

    #[test]
    fn chunk_sizes_are_round() {
        assert_eq!(lines_per_chunk(100), 10_000);
        assert_eq!(lines_per_chunk(11), 90_000);
        assert_eq!(lines_per_chunk(2 << 20), 1);
    }
}
