//! One method per route of the REST API.

use hyper::Method;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::transport::{decode, quote};
use super::{Client, ClientError, Stream};
use crate::{
    Accepted, Event, ManagerInfo, Process, ProcessDetail, ReloadPlan, SignalRequest, API_PREFIX,
};

/// What `start`, `stop` and `restart` ask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Start,
    Stop,
    Restart,
}

impl Action {
    /// `start`, `stop`, `restart`: the last segment of its path.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Start => "start",
            Action::Stop => "stop",
            Action::Restart => "restart",
        }
    }
}

/// One log record, as `procman logs -o json` prints it: the JSON object
/// exactly as the manager sent it.
#[derive(Debug, Clone, Deserialize)]
#[serde(transparent)]
pub struct LogRecord(Box<RawValue>);

impl LogRecord {
    /// The record's JSON text (one object, no newline).
    pub fn json(&self) -> &str {
        self.0.get()
    }

    /// Its fields, for printing it as text.
    pub fn fields(&self) -> Result<LogFields, serde_json::Error> {
        serde_json::from_str(self.0.get())
    }
}

/// The fields a log record may have (see `docs/logging.md`); any may be
/// absent, and unknown ones are ignored.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct LogFields {
    pub ts: Option<String>,
    pub id: Option<String>,
    pub pid: Option<u32>,
    pub run: Option<u32>,
    /// `stdout` or `stderr`.
    pub stream: Option<String>,
    pub line: Option<String>,
    /// The line's bytes when they are not valid UTF-8 (`line` then holds
    /// them with replacement characters).
    pub line_base64: Option<String>,
    /// The line goes on in the next record.
    pub partial: bool,
    /// This record continues the previous one's line.
    pub continues: bool,
    /// `start` or `end` of a run.
    pub event: Option<String>,
    /// How the run ended (`end` records of JSON logs).
    pub end: Option<String>,
    pub code: Option<i32>,
    pub signal: Option<String>,
    pub duration_ms: Option<u64>,
}

/// The body of a logs answer: `{"records": [...]}`.
#[derive(Deserialize)]
struct Records {
    records: Vec<LogRecord>,
}

impl Client {
    /// `GET /processes`: every process, in config order.
    pub async fn processes(&self) -> Result<Vec<Process>, ClientError> {
        self.get("/processes").await
    }

    /// `GET /processes?usage=true[&ids=..]`: every process (or those of
    /// `ids` the manager has), each running one with what it uses now.
    pub async fn processes_with_usage(
        &self,
        ids: Option<&[String]>,
    ) -> Result<Vec<Process>, ClientError> {
        match ids {
            None => self.get("/processes?usage=true").await,
            Some(ids) => {
                let list: Vec<String> = ids.iter().map(|id| segment(id)).collect();
                self.get(&format!("/processes?usage=true&ids={}", list.join(",")))
                    .await
            }
        }
    }

    /// `GET /processes/{id}`: one process with its diagnostics.
    pub async fn process(&self, id: &str) -> Result<ProcessDetail, ClientError> {
        self.get(&format!("/processes/{}", segment(id))).await
    }

    /// `POST /processes/{id}/start|stop|restart?wait=..`: with `wait`, the
    /// answer comes once the action is done (within
    /// [`Timeouts::action`](super::Timeouts::action)).
    pub async fn act(&self, id: &str, action: Action, wait: bool) -> Result<Process, ClientError> {
        self.act_with_deps(id, action, wait, false).await
    }

    /// [`Client::act`]; for a start with `with_deps`, every process it
    /// depends on is started too (else a start is refused, with the code
    /// `dependencies_down`, when one of them is down).
    pub async fn act_with_deps(
        &self,
        id: &str,
        action: Action,
        wait: bool,
        with_deps: bool,
    ) -> Result<Process, ClientError> {
        let deps = match (action, with_deps) {
            (Action::Start, true) => "&with_deps=true",
            _ => "",
        };
        let path = format!(
            "{API_PREFIX}/processes/{}/{}?wait={wait}{deps}",
            segment(id),
            action.as_str()
        );
        let deadline = match wait {
            true => self.timeouts.action,
            false => self.timeouts.request,
        };
        self.call(Method::POST, &path, None, deadline).await
    }

    pub async fn start(&self, id: &str, wait: bool) -> Result<Process, ClientError> {
        self.act(id, Action::Start, wait).await
    }

    /// `POST /processes/{id}/start?with_deps=true`: the process and every
    /// process it depends on, directly or not.
    pub async fn start_with_deps(&self, id: &str, wait: bool) -> Result<Process, ClientError> {
        self.act_with_deps(id, Action::Start, wait, true).await
    }

    pub async fn stop(&self, id: &str, wait: bool) -> Result<Process, ClientError> {
        self.act(id, Action::Stop, wait).await
    }

    pub async fn restart(&self, id: &str, wait: bool) -> Result<Process, ClientError> {
        self.act(id, Action::Restart, wait).await
    }

    /// `POST /processes/{id}/signal`: `signal` by name (`TERM`, `SIGHUP`)
    /// or number, to the main process or (`tree`) to its whole tree.
    pub async fn signal(&self, id: &str, signal: &str, tree: bool) -> Result<Process, ClientError> {
        let body = serde_json::to_vec(&SignalRequest {
            signal: signal.to_string(),
            tree,
        })
        .map_err(|e| ClientError::Request(e.to_string()))?;
        let path = format!("{API_PREFIX}/processes/{}/signal", segment(id));
        self.call(Method::POST, &path, Some(body), self.timeouts.request)
            .await
    }

    /// `GET /manager`.
    pub async fn manager(&self) -> Result<ManagerInfo, ClientError> {
        self.get("/manager").await
    }

    /// `POST /manager/reload?dry_run=`: loads the manager's config file
    /// again and applies it (`dry_run`: only says what it would do). An
    /// invalid file is refused (422) with every error and its location.
    pub async fn reload(&self, dry_run: bool) -> Result<ReloadPlan, ClientError> {
        let path = format!("{API_PREFIX}/manager/reload?dry_run={dry_run}");
        self.call(Method::POST, &path, None, self.timeouts.action)
            .await
    }

    /// `POST /manager/shutdown`: the manager stops every process and exits;
    /// the answer comes at once.
    pub async fn shutdown(&self) -> Result<Accepted, ClientError> {
        self.post_accepted("/manager/shutdown").await
    }

    /// `POST /manager/shutdown?keep_processes=true`: the manager writes its
    /// state and exits, leaving every process running for the next one.
    pub async fn detach(&self) -> Result<Accepted, ClientError> {
        self.post_accepted("/manager/shutdown?keep_processes=true")
            .await
    }

    /// `GET /processes/{id}/logs?n=N` or, without `id`, `GET /logs?n=N`
    /// (every process's, merged by time): the last `n` records.
    pub async fn logs(&self, id: Option<&str>, n: usize) -> Result<Vec<LogRecord>, ClientError> {
        let path = format!("{API_PREFIX}{}?n={n}", logs_path(id));
        let bytes = self
            .fetch(Method::GET, &path, None, self.timeouts.request)
            .await?;
        // A bare array, or the records in an object.
        match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'[') => decode(&self.endpoint(), &bytes),
            Some(b'{') => decode::<Records>(&self.endpoint(), &bytes).map(|r| r.records),
            _ => Err(ClientError::Decode {
                endpoint: self.endpoint(),
                detail: format!("log records expected, got {}", quote(&bytes)),
            }),
        }
    }

    /// The last `n` records, then each new one as it is written, until the
    /// manager ends the stream.
    pub async fn follow_logs(
        &self,
        id: Option<&str>,
        n: usize,
    ) -> Result<Stream<LogRecord>, ClientError> {
        let path = format!("{API_PREFIX}{}?n={n}&follow=true", logs_path(id));
        let body = self.open_stream(&path).await?;
        Ok(Stream::new(body, self.endpoint()))
    }

    /// `GET /events?n=N[&process=ID]`: the last `n` transitions from the
    /// journal, oldest first.
    pub async fn events(&self, process: Option<&str>, n: usize) -> Result<Vec<Event>, ClientError> {
        self.get(&events_query(process, n)).await
    }

    /// The last `n` transitions, then each new one as it happens.
    pub async fn follow_events(
        &self,
        process: Option<&str>,
        n: usize,
    ) -> Result<Stream<Event>, ClientError> {
        let path = format!("{API_PREFIX}{}&follow=true", events_query(process, n));
        let body = self.open_stream(&path).await?;
        Ok(Stream::new(body, self.endpoint()))
    }

    async fn get<T: serde::de::DeserializeOwned>(&self, route: &str) -> Result<T, ClientError> {
        let path = format!("{API_PREFIX}{route}");
        self.call(Method::GET, &path, None, self.timeouts.request)
            .await
    }

    /// A POST answered with 202 and a message; a body of another shape is
    /// not an error (the request was accepted).
    async fn post_accepted(&self, route: &str) -> Result<Accepted, ClientError> {
        let path = format!("{API_PREFIX}{route}");
        let bytes = self
            .fetch(Method::POST, &path, None, self.timeouts.request)
            .await?;
        Ok(serde_json::from_slice(&bytes).unwrap_or_else(|_| Accepted {
            message: String::from_utf8_lossy(&bytes).trim().to_string(),
        }))
    }
}

fn logs_path(id: Option<&str>) -> String {
    match id {
        Some(id) => format!("/processes/{}/logs", segment(id)),
        None => "/logs".to_string(),
    }
}

fn events_query(process: Option<&str>, n: usize) -> String {
    match process {
        Some(id) => format!("/events?n={n}&process={}", segment(id)),
        None => format!("/events?n={n}"),
    }
}

/// `s` as one path segment or query value: everything but the unreserved
/// characters of RFC 3986 percent-encoded.
fn segment(s: &str) -> String {
    // `.` and `..` would be a step in the path, not a name.
    if s == "." || s == ".." {
        return s.replace('.', "%2E");
    }
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_one_path_segment_whatever_they_hold() {
        assert_eq!(segment("web-1.a_b~"), "web-1.a_b~");
        assert_eq!(segment("a/b c?&é"), "a%2Fb%20c%3F%26%C3%A9");
        assert_eq!(segment(".."), "%2E%2E");
        assert_eq!(segment("..."), "...");
    }

    #[test]
    fn a_log_record_keeps_its_json_and_reads_its_fields() {
        let text = r#"{"ts":"2026-12-02T09:15:00.123456Z","id":"web","pid":7,"run":1,"stream":"stdout","line":"hi","zzz":1}"#;
        let rec: LogRecord = serde_json::from_str(text).expect("record");
        assert_eq!(rec.json(), text);
        let f = rec.fields().expect("fields");
        assert_eq!(f.line.as_deref(), Some("hi"));
        assert_eq!(f.pid, Some(7));
        assert!(!f.partial);
    }
}
