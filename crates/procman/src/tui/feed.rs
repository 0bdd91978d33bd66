//! The tasks that talk to the manager for the view, each reporting
//! [`News`] on one channel:
//!
//! - **the link**: follows the event stream (each transition updates its
//!   row at once) and reads the list when it opens. The rows in view are
//!   read again, with their usage, at most every [`SETTLE`] while events
//!   come (restart counts, last exits), when the view scrolls, and every
//!   `interval` for what has no events (CPU, memory, health): the manager
//!   reads the usage of a screenful, not of every process. When the
//!   manager goes away it says so and tries again every second.
//! - **the log**: follows one process's log, or every one's.
//! - **one-offs**: an action, a signal, a detail.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use procman_api::client::{Action, Client, ClientError, LogRecord};
use tokio::sync::{mpsc, Notify};
use tokio::task::JoinHandle;

use super::app::News;
use super::pane::{printable, Source};
use crate::cli::logs::plain;

/// Quiet time after an event before the list is read again.
const SETTLE: Duration = Duration::from_millis(250);
/// Between two tries to reach a manager that went away.
const RETRY: Duration = Duration::from_secs(1);
/// Past log lines shown when the pane opens.
const PAST_LINES: usize = 200;
/// Lines sent to the view in one message at most.
const BATCH: usize = 256;

pub type Tx = mpsc::UnboundedSender<News>;

/// What the view wants read, shared with the link.
#[derive(Debug, Default)]
pub struct Wanted {
    /// The processes in view.
    ids: Mutex<Vec<String>>,
    /// Read the rows in view again (after [`SETTLE`]).
    again: Notify,
    /// Read the whole list, not only the rows in view.
    whole: AtomicBool,
}

impl Wanted {
    /// Sets the processes in view; reads them again if they changed.
    pub fn in_view(&self, ids: Vec<String>) {
        let mut now = self.ids.lock().unwrap_or_else(|p| p.into_inner());
        if *now != ids {
            *now = ids;
            self.again.notify_one();
        }
    }

    /// Asks for the whole list (a process the rows do not have).
    pub fn whole_list(&self) {
        self.whole.store(true, Ordering::Relaxed);
        self.again.notify_one();
    }
}

/// Finds the manager again, as at the start (a restarted manager over TCP
/// has a new token in its state directory).
pub type Relocate = Box<dyn Fn() -> Option<Client> + Send + Sync>;

/// Follows the manager's events and lists for as long as the view runs.
pub fn link(
    mut client: Client,
    tx: Tx,
    interval: Option<Duration>,
    wanted: Arc<Wanted>,
    relocate: Relocate,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            if let Err(lost) = session(&client, &tx, interval, &wanted).await {
                if tx.send(News::Lost(lost.why)).is_err() {
                    return;
                }
                if lost.refused {
                    if let Some(again) = relocate() {
                        client = again.clone();
                        let _ = tx.send(News::Relocated(again));
                    }
                }
            }
            tokio::time::sleep(RETRY).await;
        }
    })
}

/// Why a connection ended, and whether the manager refused the token.
struct Lost {
    why: String,
    refused: bool,
}

impl From<ClientError> for Lost {
    fn from(e: ClientError) -> Lost {
        let refused = e.api().is_some_and(|a| a.code == "unauthorized");
        Lost {
            why: reason(e),
            refused,
        }
    }
}

/// One connection's life: until the stream ends or fails.
async fn session(
    client: &Client,
    tx: &Tx,
    interval: Option<Duration>,
    wanted: &Arc<Wanted>,
) -> Result<(), Lost> {
    let ended = |why: String| Lost {
        why,
        refused: false,
    };
    // Subscribe first: every transition after the list is then in the
    // stream (some before it too, applied again in order: harmless). One
    // past event, the newest, since 0 would mean the whole journal.
    let mut stream = client.follow_events(None, 1).await?;
    let list = client.processes().await?;
    send(tx, News::List(list)).map_err(ended)?;
    let lister = lists(client.clone(), tx.clone(), wanted.clone(), interval);
    let _stop = AbortOnDrop(lister);
    wanted.again.notify_one();
    loop {
        match stream.next().await {
            Some(Ok(e)) => {
                send(tx, News::Event(e, Instant::now())).map_err(ended)?;
                wanted.again.notify_one();
            }
            Some(Err(ClientError::Lagged { missed })) => {
                send(tx, News::Lagged(missed)).map_err(ended)?;
                wanted.whole_list();
            }
            Some(Err(e)) => return Err(e.into()),
            None => return Err(ended("the manager ended the event stream".to_string())),
        }
    }
}

/// Reads the rows in view after events settle, when the view changes, and
/// every `interval`; the whole list when asked.
fn lists(
    client: Client,
    tx: Tx,
    wanted: Arc<Wanted>,
    interval: Option<Duration>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let woken = async {
                wanted.again.notified().await;
                tokio::time::sleep(SETTLE).await;
            };
            match interval {
                Some(every) => {
                    tokio::select! {
                        () = woken => {}
                        () = tokio::time::sleep(every) => {}
                    }
                }
                None => woken.await,
            }
            // A manager that stopped answering (frozen) keeps its stream
            // open: a read that fails says so, the next one that works
            // says it is back. A closed stream is the link's to report.
            let ids = wanted.ids.lock().unwrap_or_else(|p| p.into_inner()).clone();
            let whole = wanted.whole.swap(false, Ordering::Relaxed);
            let news = match (whole, ids.is_empty()) {
                (false, true) => continue,
                (true, _) => client.processes().await.map(News::List),
                (false, false) => match client.processes_with_usage(Some(&ids)).await {
                    // A row asked for and not given: a reload removed it.
                    Ok(rows) if rows.len() < ids.len() => client.processes().await.map(News::List),
                    r => r.map(News::Rows),
                },
            };
            let news = news.unwrap_or_else(|e| News::Stalled(reason(e)));
            if tx.send(news).is_err() {
                return;
            }
        }
    })
}

fn send(tx: &Tx, news: News) -> Result<(), String> {
    tx.send(news).map_err(|_| "the view ended".to_string())
}

/// What the view says about a failure to reach the manager.
fn reason(e: ClientError) -> String {
    match e {
        ClientError::NoManager { .. } => "nothing answers".to_string(),
        e => e.to_string(),
    }
}

/// Aborts a task when dropped (the list reader ends with its session).
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Follows the log of `source` for pane stream `generation`.
pub fn log(client: Client, tx: Tx, source: Source, generation: u64) -> JoinHandle<()> {
    tokio::spawn(async move {
        let id = match &source {
            Source::One(id) => Some(id.as_str()),
            Source::All => None,
        };
        let mut stream = match client.follow_logs(id, PAST_LINES).await {
            Ok(s) => s,
            Err(e) => {
                let note = match e.api() {
                    Some(api) => api.message.clone(),
                    None => format!("cannot follow the log: {}", reason(e)),
                };
                let _ = tx.send(News::LogNote(generation, note));
                return;
            }
        };
        let prefixed = id.is_none();
        let mut batch = Vec::new();
        loop {
            // Everything already read goes out in one message.
            let item = match batch.is_empty() {
                true => stream.next().await,
                false => match tokio::time::timeout(Duration::ZERO, stream.next()).await {
                    Ok(item) => item,
                    Err(_) => {
                        flush(&tx, generation, &mut batch);
                        continue;
                    }
                },
            };
            match item {
                Some(Ok(r)) => {
                    batch.extend(lines(&r, prefixed));
                    if batch.len() >= BATCH {
                        flush(&tx, generation, &mut batch);
                    }
                }
                Some(Err(ClientError::Lagged { missed })) => {
                    batch.push(format!("… {missed} lines skipped (read too slowly) …"));
                }
                Some(Err(_)) | None => {
                    flush(&tx, generation, &mut batch);
                    return;
                }
            }
            if tx.is_closed() {
                return;
            }
        }
    })
}

fn flush(tx: &Tx, generation: u64, batch: &mut Vec<String>) {
    if !batch.is_empty() {
        let _ = tx.send(News::Log(generation, std::mem::take(batch)));
    }
}

/// A record as the pane's lines, as `procman logs` prints it.
fn lines(r: &LogRecord, prefixed: bool) -> impl Iterator<Item = String> {
    let text = String::from_utf8_lossy(&plain(r, prefixed)).into_owned();
    text.lines().map(printable).collect::<Vec<_>>().into_iter()
}

/// Carries out an action and reports how it went.
pub fn act(client: Client, tx: Tx, id: String, action: Action) {
    tokio::spawn(async move {
        let news = match client.act(&id, action, true).await {
            Ok(p) => {
                let pid = p.pid.map(|n| format!(", pid {n}")).unwrap_or_default();
                News::Done(format!("{} {id}: {}{pid}", action.as_str(), p.state), false)
            }
            Err(e) => News::Done(
                format!("cannot {} {id}: {}", action.as_str(), said(e)),
                true,
            ),
        };
        let _ = tx.send(news);
    });
}

/// Sends a signal and reports how it went.
pub fn signal(client: Client, tx: Tx, id: String, signal: String) {
    tokio::spawn(async move {
        let news = match client.signal(&id, &signal, false).await {
            Ok(_) => News::Done(format!("sent {signal} to {id}"), false),
            Err(e) => News::Done(format!("cannot send {signal} to {id}: {}", said(e)), true),
        };
        let _ = tx.send(news);
    });
}

/// Reads a process's detail for the detail view.
pub fn detail(client: Client, tx: Tx, id: String) {
    tokio::spawn(async move {
        let news = match client.process(&id).await {
            Ok(d) => News::Detail(Box::new(d)),
            Err(e) => News::Done(format!("cannot read {id}: {}", said(e)), true),
        };
        let _ = tx.send(news);
    });
}

/// The manager's own message when it refused, else the error.
fn said(e: ClientError) -> String {
    match e.api() {
        Some(api) => api.message.clone(),
        None => reason(e),
    }
}
