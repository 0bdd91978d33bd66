//! Server-sent events (`text/event-stream`): each event's `data:` is one
//! JSON object, read into a `T` as it arrives.
//!
//! Only what the manager sends is needed: `data:` lines (several are joined
//! with `\n`), `event:` names, comments (`:` keep-alives) and `id:` /
//! `retry:` lines (ignored). Lines may end in `\n`, `\r\n` or `\r`, and may
//! be cut anywhere between two reads.

use std::collections::VecDeque;
use std::marker::PhantomData;

use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde::de::DeserializeOwned;

use super::transport::{decode, quote};
use super::ClientError;
use crate::ApiError;

/// The longest line kept: a log record of the longest piece (1 MiB),
/// escaped, fits many times over; a line longer than that is an error
/// rather than a memory leak.
const MAX_LINE: usize = 32 * 1024 * 1024;

/// A stream of `T`, one per event, until the manager ends it.
#[derive(Debug)]
pub struct Stream<T> {
    body: Incoming,
    parser: Parser,
    ready: VecDeque<Message>,
    endpoint: String,
    ended: bool,
    item: PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned> Stream<T> {
    pub(super) fn new(body: Incoming, endpoint: String) -> Stream<T> {
        Stream {
            body,
            parser: Parser::default(),
            ready: VecDeque::new(),
            endpoint,
            ended: false,
            item: PhantomData,
        }
    }

    /// The next item; `None` once the manager ended the stream (it shuts
    /// down). Waits as long as it takes: put a deadline around it if you
    /// need one. Cancel-safe: dropping the future loses nothing.
    pub async fn next(&mut self) -> Option<Result<T, ClientError>> {
        loop {
            if let Some(message) = self.ready.pop_front() {
                return Some(self.item(message));
            }
            if self.ended {
                return None;
            }
            match self.body.frame().await {
                None => {
                    self.ended = true;
                    // An event not closed by a blank line is dropped, as
                    // the SSE rules say.
                }
                Some(Err(source)) => {
                    self.ended = true;
                    return Some(Err(ClientError::Http {
                        endpoint: self.endpoint.clone(),
                        source,
                    }));
                }
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        if let Err(e) = self.parser.feed(&data, &mut self.ready) {
                            self.ended = true;
                            return Some(Err(ClientError::Decode {
                                endpoint: self.endpoint.clone(),
                                detail: e,
                            }));
                        }
                    }
                }
            }
        }
    }

    /// An event as a `T`; an `error` event (or one whose data is an API
    /// error) as that error.
    fn item(&self, message: Message) -> Result<T, ClientError> {
        let as_error = || serde_json::from_str::<ApiError>(&message.data).ok();
        if message.event == "lagged" {
            #[derive(serde::Deserialize)]
            struct Lagged {
                missed: u64,
            }
            return match serde_json::from_str::<Lagged>(&message.data) {
                Ok(l) => Err(ClientError::Lagged { missed: l.missed }),
                Err(e) => Err(ClientError::Decode {
                    endpoint: self.endpoint.clone(),
                    detail: format!("a lagged event without its count: {e}"),
                }),
            };
        }
        if message.event == "error" {
            if let Some(error) = as_error() {
                return Err(ClientError::Api { status: 200, error });
            }
        }
        decode(&self.endpoint, message.data.as_bytes()).map_err(|e| match as_error() {
            Some(error) => ClientError::Api { status: 200, error },
            None => e,
        })
    }
}

/// One event: its name (empty for the default) and its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Message {
    pub(super) event: String,
    pub(super) data: String,
}

/// Splits bytes into lines and lines into events.
#[derive(Debug, Default)]
pub(super) struct Parser {
    /// The line read so far (no terminator yet).
    line: Vec<u8>,
    /// The last byte was `\r`: a `\n` right after it ends nothing.
    after_cr: bool,
    event: String,
    data: Option<String>,
}

impl Parser {
    /// Reads `bytes`; each event they complete goes to `out`.
    pub(super) fn feed(&mut self, bytes: &[u8], out: &mut VecDeque<Message>) -> Result<(), String> {
        for &b in bytes {
            let after_cr = std::mem::replace(&mut self.after_cr, b == b'\r');
            match b {
                b'\n' if after_cr => {}
                b'\n' | b'\r' => self.line_done(out),
                _ => {
                    if self.line.len() >= MAX_LINE {
                        return Err(format!(
                            "an event line longer than {MAX_LINE} bytes: {}",
                            quote(&self.line)
                        ));
                    }
                    self.line.push(b);
                }
            }
        }
        Ok(())
    }

    fn line_done(&mut self, out: &mut VecDeque<Message>) {
        let line = String::from_utf8_lossy(&self.line).into_owned();
        self.line.clear();
        if line.is_empty() {
            if let Some(data) = self.data.take() {
                out.push_back(Message {
                    event: std::mem::take(&mut self.event),
                    data,
                });
            }
            self.event.clear();
            return;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line.as_str(), ""),
        };
        match field {
            "data" => match &mut self.data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(value);
                }
                None => self.data = Some(value.to_string()),
            },
            "event" => self.event = value.to_string(),
            // Comments (`:` keep-alives), `id`, `retry` and unknown fields.
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pieces: &[&[u8]]) -> Vec<Message> {
        let mut p = Parser::default();
        let mut out = VecDeque::new();
        for piece in pieces {
            p.feed(piece, &mut out).expect("parses");
        }
        out.into_iter().collect()
    }

    fn msg(event: &str, data: &str) -> Message {
        Message {
            event: event.into(),
            data: data.into(),
        }
    }

    #[test]
    fn events_end_at_a_blank_line_whatever_the_line_ends() {
        let got = parse(&[b"data: {\"a\":1}\n\ndata:{\"b\":2}\r\n\r\ndata: x\r\rdata: y\n"]);
        assert_eq!(
            got,
            [msg("", "{\"a\":1}"), msg("", "{\"b\":2}"), msg("", "x")]
        );
    }

    #[test]
    fn an_event_cut_anywhere_between_reads_is_the_same_event() {
        let whole: &[u8] = b": keep-alive\n\nevent: lagged\ndata: {\"x\":\ndata: 1}\r\n\r\n";
        for cut in 0..whole.len() {
            let got = parse(&[&whole[..cut], &whole[cut..]]);
            assert_eq!(got, [msg("lagged", "{\"x\":\n1}")], "cut at {cut}");
        }
    }

    #[test]
    fn comments_ids_and_unknown_fields_are_skipped() {
        let got = parse(&[b":c\nid: 7\nretry: 10\nfoo\ndata: d\n\n\n\n"]);
        assert_eq!(got, [msg("", "d")]);
    }
}
