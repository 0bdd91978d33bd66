//! Raw output on file descriptors.
//!
//! Facts go to fd 1 with one `write(2)` per line, bypassing std's buffered
//! `Stdout`: lines from forked processes sharing the pipe never interleave
//! mid-line, and no buffer can be duplicated by `fork`.

use std::fmt::Write as _;
use std::io;

use libc::c_int;

/// Prints one fact line on stdout. Errors are ignored: a test that closed
/// our stdout has nobody to report them to.
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::out::line(&format!($($arg)*))
    };
}
pub(crate) use say;

pub fn line(text: &str) {
    let mut buf = Vec::with_capacity(text.len() + 1);
    buf.extend_from_slice(text.as_bytes());
    buf.push(b'\n');
    let _ = write_all(libc::STDOUT_FILENO, &buf);
}

/// Writes all of `buf`, retrying on `EINTR` and waiting in `poll` if the fd
/// we inherited happens to be non-blocking.
pub fn write_all(fd: c_int, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        // SAFETY: `buf` is a live slice; `write` reads at most `buf.len()` bytes from it.
        let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
        if n >= 0 {
            // `n` is non-negative and at most `buf.len()`.
            buf = &buf[n as usize..];
            continue;
        }
        let err = io::Error::last_os_error();
        match err.kind() {
            io::ErrorKind::Interrupted => {}
            io::ErrorKind::WouldBlock => wait_writable(fd)?,
            _ => return Err(err),
        }
    }
    Ok(())
}

fn wait_writable(fd: c_int) -> io::Result<()> {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLOUT,
        revents: 0,
    };
    // SAFETY: `pfd` is a valid pollfd for the duration of the call, and we pass a count of 1.
    if unsafe { libc::poll(&mut pfd, 1, -1) } < 0 {
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
    Ok(())
}

/// Makes arbitrary bytes fit on one line: `\\`, `\n`, `\r` and `\t` are
/// escaped C-style, other control bytes and invalid UTF-8 as `\xNN`.
pub fn escape(bytes: &[u8]) -> String {
    escape_inner(bytes, false)
}

/// Like [`escape`], and also escapes spaces (as `\x20`) so that words can be
/// joined with spaces and split again.
pub fn escape_word(bytes: &[u8]) -> String {
    escape_inner(bytes, true)
}

fn escape_inner(bytes: &[u8], space: bool) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                ' ' if space => out.push_str("\\x20"),
                c if c.is_ascii_control() => {
                    let _ = write!(out, "\\x{:02x}", c as u32);
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{escape, escape_word};

    #[test]
    fn escapes_separators_and_bad_utf8() {
        assert_eq!(escape(b"plain=value"), "plain=value");
        assert_eq!(escape(b"a b\nc\\"), "a b\\nc\\\\");
        assert_eq!(escape_word(b"a b"), "a\\x20b");
        assert_eq!(escape(b"\xff\x01ok"), "\\xff\\x01ok");
        assert_eq!(escape("caf\u{e9}".as_bytes()), "caf\u{e9}");
    }
}
