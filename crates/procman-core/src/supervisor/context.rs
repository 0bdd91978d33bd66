//! What every supervisor of one manager shares, and the watch that makes
//! a supervisor's panic seen.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::task::JoinHandle;

use super::event::Events;
use crate::platform::TreeRoot;

/// What every supervisor of one manager shares.
#[derive(Debug)]
pub struct Context {
    /// Directory of the config file: the default working directory.
    pub config_dir: PathBuf,
    pub trees: TreeRoot,
    /// Where every transition is published.
    pub events: Arc<Events>,
    /// Where the state files go (`None`: none are kept).
    pub state_dir: Option<Arc<Path>>,
}

/// A task that waits for a supervisor task `inner`. A panic in a
/// supervisor is a bug; it must be seen, not lost with the task (the panic
/// hook, if any, has printed where; this says whose).
pub(super) fn watch_panics(id: String, inner: JoinHandle<()>) -> JoinHandle<()> {
    tokio::spawn(async move {
        if let Err(e) = inner.await {
            if e.is_panic() {
                let what = panic_text(e.into_panic());
                tracing::error!(process = %id, panic = %what,
                    "the supervisor of this process panicked; it is no longer supervised");
            }
        }
    })
}

fn panic_text(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_string())
}
