//! The streams of the API, once for REST (server-sent events) and gRPC
//! (server streaming): log records (`logs.rs`) and process transitions
//! (past ones from the journal, `journal.rs`, then new ones as they
//! happen). Every stream ends when the client goes, when the manager's
//! events end, or when the server stops: a follower never holds up the
//! shutdown.

use std::path::PathBuf;

use futures_util::Stream;
use procman_api as api;
use procman_core::manager::{Control, ManagerError};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{mpsc, watch};

use super::listener::stopped;
use super::service::{self, Refusal};
use super::{journal, logs};

/// Events a follower may be behind its client.
const EVENTS_BACKLOG: usize = 256;

/// How long a follower waits for the journal to hold every event sent
/// before it subscribed.
const JOURNAL_CATCH_UP: std::time::Duration = std::time::Duration::from_secs(2);

/// What an events follower sends: a transition, or how many it missed
/// because its client read too slowly.
#[derive(Debug)]
pub enum Item {
    Event(api::Event),
    Lagged(u64),
}

/// `rx` as a stream that ends when the server stops.
pub fn until_stopped<T: Send + 'static>(
    rx: mpsc::Receiver<T>,
    stopping: watch::Receiver<bool>,
) -> impl Stream<Item = T> + Send + 'static {
    futures_util::stream::unfold((rx, stopping), |(mut rx, mut stopping)| async move {
        tokio::select! {
            // Checked first, so a stopping server ends even a busy stream.
            biased;
            () = stopped(&mut stopping) => None,
            item = rx.recv() => item.map(|v| (v, (rx, stopping))),
        }
    })
}

/// `id` must name a process (an empty one names every process).
fn known(control: &Control, id: Option<&str>) -> Result<(), Refusal> {
    match id {
        Some(id) if control.config().process(id).is_none() => {
            Err(Refusal::from(ManagerError::UnknownProcess(id.to_string())))
        }
        _ => Ok(()),
    }
}

/// The last `n` records of one log (or all merged), then, with `follow`,
/// every new one.
pub async fn logs(
    control: &Control,
    id: Option<&str>,
    n: usize,
    follow: bool,
) -> Result<mpsc::Receiver<logs::Record>, Refusal> {
    known(control, id)?;
    if follow {
        return logs::follow(control, id, n);
    }
    let records = logs::tail(control, id, n).await?;
    let (tx, rx) = mpsc::channel(records.len().max(1));
    for r in records {
        // Cannot fail: the channel holds them all and `rx` is alive.
        let _ = tx.try_send(r);
    }
    Ok(rx)
}

/// The last `n` events of the journal (`0`: all), of one process or all:
/// every event sent before the request included, once the journal's
/// writer (a thread that writes in batches) has dealt with it. A client
/// that has seen a state can read the transition that led to it.
pub async fn past_events(
    control: &Control,
    journal_written: &watch::Receiver<u64>,
    n: usize,
    process: Option<&str>,
) -> Result<Vec<api::Event>, Refusal> {
    known(control, process)?;
    let (_, before) = control.events_after();
    let mut written = journal_written.clone();
    // Bounded: a writer stuck on a dead disk delays no reader for long
    // (what it has not written is missing either way).
    let _ = tokio::time::timeout(JOURNAL_CATCH_UP, written.wait_for(|&w| w >= before)).await;
    let dir: PathBuf = control.state_dir().to_path_buf();
    let process = process.map(str::to_string);
    tokio::task::spawn_blocking(move || journal::read_last(&dir, n, process.as_deref()))
        .await
        .map_err(|e| Refusal::Unavailable(format!("cannot read the event journal: {e}")))?
        .map_err(|e| Refusal::Unavailable(format!("cannot read the event journal: {e}")))
}

/// `past` events from the journal (`None`: none; `Some(0)`: all), then
/// every new transition, of one process or all, until the receiver is
/// dropped or the manager's events end.
pub async fn follow_events(
    control: &Control,
    journal_written: &watch::Receiver<u64>,
    past: Option<usize>,
    process: Option<&str>,
) -> Result<mpsc::Receiver<Item>, Refusal> {
    known(control, process)?;
    // Subscribed before the journal is read, and the journal read once its
    // writer has dealt with every event sent before that (`past_events`):
    // nothing falls in between. An event both read and received is sent
    // once.
    let mut live = control.events();
    let old = match past {
        Some(n) => past_events(control, journal_written, n, process).await?,
        None => Vec::new(),
    };
    let process = process.map(str::to_string);
    let (tx, rx) = mpsc::channel(EVENTS_BACKLOG);
    tokio::spawn(async move {
        for e in &old {
            if tx.send(Item::Event(e.clone())).await.is_err() {
                return;
            }
        }
        let mut catching_up = !old.is_empty();
        loop {
            let got = tokio::select! {
                got = live.recv() => got,
                () = tx.closed() => return,
            };
            let item = match got {
                Ok(e) => {
                    let e = service::event(&e);
                    if process.as_deref().is_some_and(|p| p != e.process) {
                        continue;
                    }
                    if catching_up && old.contains(&e) {
                        continue;
                    }
                    catching_up = false;
                    Item::Event(e)
                }
                Err(RecvError::Lagged(missed)) => Item::Lagged(missed),
                Err(RecvError::Closed) => return,
            };
            if tx.send(item).await.is_err() {
                return;
            }
        }
    });
    Ok(rx)
}
