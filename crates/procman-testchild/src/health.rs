//! `http-health`: a tiny HTTP/1.1 server for health-check tests.
//!
//! One thread per connection, keep-alive supported, every request reported
//! on stdout. It understands just enough HTTP for health checkers: a
//! request line, headers, an optional `Content-Length` body.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;

use crate::out::say;
use crate::signals;

/// Longest request line or header we accept before hanging up.
const MAX_LINE: u64 = 8192;

/// `http-health PORT [--fail-after N] [--hang]`
pub fn http_health(port: u16, fail_after: Option<u64>, hang: bool) -> io::Result<u8> {
    // A checker hanging up mid-response must not kill the server.
    signals::ignore(libc::SIGPIPE)?;
    let listener = TcpListener::bind(("127.0.0.1", port))
        .map_err(|e| io::Error::new(e.kind(), format!("bind 127.0.0.1:{port}: {e}")))?;
    say!("listening port={}", listener.local_addr()?.port());
    let served = Arc::new(AtomicU64::new(0));
    // With --hang, accepted connections are kept open here and never read.
    let mut hung = Vec::new();
    let mut conn = 0u64;
    loop {
        let stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted
                ) =>
            {
                continue;
            }
            Err(e) => return Err(io::Error::new(e.kind(), format!("accept: {e}"))),
        };
        conn += 1;
        say!("accepted conn={conn}");
        if hang {
            hung.push(stream);
            continue;
        }
        let served = Arc::clone(&served);
        let spawned = thread::Builder::new().spawn(move || {
            // Errors end this connection only; the client sees the hang-up.
            let _ = serve(stream, &served, fail_after);
        });
        if let Err(e) = spawned {
            // The connection is dropped with the closure; keep serving others.
            let _ = writeln!(io::stderr(), "error: no thread for conn={conn}: {e}");
        }
    }
}

struct Request {
    method: String,
    path: String,
    keep_alive: bool,
}

fn serve(stream: TcpStream, served: &AtomicU64, fail_after: Option<u64>) -> io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    while let Some(req) = read_request(&mut reader)? {
        let (status, reason, body) = if req.path != "/health" {
            say!("request method={} path={} status=404", req.method, req.path);
            (404, "Not Found", "not found")
        } else if req.method != "GET" && req.method != "HEAD" {
            say!("request method={} path={} status=405", req.method, req.path);
            (405, "Method Not Allowed", "method not allowed")
        } else {
            let n = served.fetch_add(1, Ordering::SeqCst) + 1;
            let failing = fail_after.is_some_and(|limit| n > limit);
            let (status, reason, body) = if failing {
                (500, "Internal Server Error", "fail")
            } else {
                (200, "OK", "ok")
            };
            say!("health n={n} status={status}");
            (status, reason, body)
        };
        let connection = if req.keep_alive {
            "keep-alive"
        } else {
            "close"
        };
        let mut response = format!(
            "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: {connection}\r\n\r\n",
            body.len()
        );
        if req.method != "HEAD" {
            response.push_str(body);
        }
        writer.write_all(response.as_bytes())?;
        if !req.keep_alive {
            break;
        }
    }
    Ok(())
}

/// Reads one request; `None` at a clean end of the connection.
fn read_request(reader: &mut BufReader<TcpStream>) -> io::Result<Option<Request>> {
    let Some(line) = read_line(reader)? else {
        return Ok(None);
    };
    let mut parts = line.split_whitespace();
    let (Some(method), Some(path), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "bad request line",
        ));
    };
    let mut keep_alive = version == "HTTP/1.1";
    let mut body_len = 0u64;
    loop {
        let header = read_line(reader)?.ok_or(io::ErrorKind::UnexpectedEof)?;
        if header.is_empty() {
            break;
        }
        let Some((name, value)) = header.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            body_len = value
                .parse()
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad length"))?;
        } else if name.eq_ignore_ascii_case("connection") {
            keep_alive = value.eq_ignore_ascii_case("keep-alive");
        }
    }
    io::copy(&mut reader.by_ref().take(body_len), &mut io::sink())?;
    Ok(Some(Request {
        method: method.into(),
        path: path.into(),
        keep_alive,
    }))
}

/// One CRLF- (or LF-) terminated line without its terminator.
fn read_line(reader: &mut BufReader<TcpStream>) -> io::Result<Option<String>> {
    let mut buf = Vec::new();
    reader.by_ref().take(MAX_LINE).read_until(b'\n', &mut buf)?;
    if buf.is_empty() {
        return Ok(None);
    }
    if buf.pop() != Some(b'\n') {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "line too long or cut off",
        ));
    }
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    String::from_utf8(buf)
        .map(Some)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not UTF-8"))
}
