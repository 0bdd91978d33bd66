//! `procman logs` through the manager: `GET /logs` (or a process's), and
//! with `-f` the same as a stream of server-sent events.

use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use procman_api::client::{ClientError, LogFields, LogRecord};

use super::LogsArgs;
use crate::cli::endpoint::{block_on, Located};
use crate::cli::output::{self, Format, Out};
use crate::exit::Failure;

/// Whether a manager answered.
pub enum Through {
    /// It did, and the logs were printed.
    Manager,
    /// Nobody answered: nothing was printed (read the files instead).
    Nobody,
}

pub fn logs(located: &Located, args: &LogsArgs) -> Result<Through, Failure> {
    let client = &located.client;
    let id = args.id.as_deref();
    let doing = match id {
        Some(id) => format!("read the log of `{id}`"),
        None => "read the logs".to_string(),
    };
    let refused = |e: ClientError| located.failure_for(&doing, e);
    let json = args.format.output == Format::Json;
    block_on(async {
        let mut out = Out::new();
        if !args.follow {
            let records = match client.logs(id, args.lines).await {
                Err(e) if e.is_no_manager() => return Ok(Through::Nobody),
                other => other.map_err(refused)?,
            };
            for r in &records {
                print(&mut out, r, json, id.is_none())?;
            }
            out.flush()?;
            return Ok(Through::Manager);
        }
        let mut stream = match client.follow_logs(id, args.lines).await {
            Err(e) if e.is_no_manager() => return Ok(Through::Nobody),
            other => other.map_err(refused)?,
        };
        let closed = output::closed();
        let interrupted = output::interrupted();
        tokio::pin!(closed, interrupted);
        loop {
            tokio::select! {
                item = stream.next() => match item {
                    Some(Ok(r)) => {
                        print(&mut out, &r, json, id.is_none())?;
                        out.flush()?;
                    }
                    Some(Err(ClientError::Lagged { missed })) => {
                        out.flush()?;
                        output::warn(&format!(
                            "{}: this output was read too slowly",
                            output::skipped(missed, "record", "records")
                        ));
                    }
                    Some(Err(e)) if output::stream_cut_by_exit(client, &e).await => {
                        out.flush()?;
                        output::warn("the manager ended the stream (it is shutting down)");
                        return Ok(Through::Manager);
                    }
                    Some(Err(e)) => {
                        out.flush()?;
                        return Err(located.failure(&doing, e));
                    }
                    None => {
                        out.flush()?;
                        output::warn("the manager ended the stream (it is shutting down)");
                        return Ok(Through::Manager);
                    }
                },
                () = &mut closed => return Err(Failure::OutputClosed),
                () = &mut interrupted => {
                    out.flush()?;
                    return Ok(Through::Manager);
                }
            }
        }
    })
}

fn print(out: &mut Out, r: &LogRecord, json: bool, prefixed: bool) -> Result<(), Failure> {
    match json {
        true => {
            out.text(r.json())?;
            out.text("\n")
        }
        false => out.bytes(&plain(r, prefixed)),
    }
}

/// A record as `procman logs` prints it from a plain log file (after
/// `<id> | ` when `prefixed`): `<ts> <stream> <line>`, a run's
/// `----- run R pid P -----` and `----- run R pid P ended: … -----`, or
/// the bare line of a raw log. A record that does not parse is printed as
/// its JSON.
pub fn plain(r: &LogRecord, prefixed: bool) -> Vec<u8> {
    let Ok(f) = r.fields() else {
        let mut out = r.json().as_bytes().to_vec();
        out.push(b'\n');
        return out;
    };
    let mut out = Vec::new();
    // Every record but a piece of a raw line that goes on.
    if prefixed && !(f.continues && f.stream.is_none()) {
        if let Some(id) = &f.id {
            out.extend_from_slice(id.as_bytes());
            out.extend_from_slice(b" | ");
        }
    }
    let text = line_bytes(&f);
    let run_head = |out: &mut Vec<u8>, ts: &str| {
        let head = format!(
            "{ts} ----- run {} pid {}",
            f.run.unwrap_or(0),
            f.pid.unwrap_or(0)
        );
        out.extend_from_slice(head.as_bytes());
    };
    match (f.event.as_deref(), f.ts.as_deref(), f.stream.as_deref()) {
        (Some("start"), Some(ts), _) => {
            run_head(&mut out, ts);
            out.extend_from_slice(b" -----");
        }
        (Some("end"), Some(ts), _) => {
            run_head(&mut out, ts);
            out.extend_from_slice(b" ended: ");
            match &f.end {
                // A JSON log's end: how, and the duration apart.
                Some(how) => {
                    out.extend_from_slice(how.as_bytes());
                    if let Some(ms) = f.duration_ms {
                        let after = humantime::format_duration(Duration::from_millis(ms));
                        out.extend_from_slice(format!(" after {after}").as_bytes());
                    }
                }
                // A plain log's end, converted: both in `line`.
                None => out.extend_from_slice(&text),
            }
            out.extend_from_slice(b" -----");
        }
        (_, Some(ts), Some(stream)) => {
            out.extend_from_slice(ts.as_bytes());
            out.push(b' ');
            out.extend_from_slice(stream.as_bytes());
            if f.continues {
                out.push(b'+');
            }
            out.push(b' ');
            out.extend_from_slice(&text);
        }
        _ => out.extend_from_slice(&text),
    }
    // A piece of a raw line that goes on in the next record.
    let unfinished = f.partial && f.stream.is_none() && f.event.is_none();
    if !unfinished {
        out.push(b'\n');
    }
    out
}

/// The line's bytes: from `line_base64` when the line was not UTF-8.
fn line_bytes(f: &LogFields) -> Vec<u8> {
    if let Some(b64) = &f.line_base64 {
        if let Ok(bytes) = STANDARD.decode(b64) {
            return bytes;
        }
    }
    f.line.clone().unwrap_or_default().into_bytes()
}

#[cfg(test)]
#[path = "../tests/logs_api.rs"]
mod tests;
