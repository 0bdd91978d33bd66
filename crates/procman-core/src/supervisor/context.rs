//! What every supervisor of one manager shares, and the watch that makes
//! a supervisor's panic seen.

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;

use tokio::task::JoinHandle;

use super::event::Events;
use crate::platform::TreeRoot;
use crate::state::slots::Records;

/// What every supervisor of one manager shares.
#[derive(Debug)]
pub struct Context {
    /// Directory of the config file: the default working directory.
    pub config_dir: PathBuf,
    pub trees: TreeRoot,
    /// Where every transition is published.
    pub events: Arc<Events>,
    /// The records of the state directory (`None`: none are kept).
    pub records: Option<Arc<Records>>,
}

/// Spawns the supervisor task `main` of process `id`, watched for a
/// panic. A panic in a supervisor is a bug; it must be seen, not lost with
/// the task (the panic hook, if any, has printed where; this says whose).
/// Caught in the task itself, not by a second task waiting for it: one
/// task per process, not two.
pub(super) fn spawn_watched<F>(id: String, main: F) -> JoinHandle<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    tokio::spawn(Watched { id, main })
}

/// A supervisor's future, and whose it is.
struct Watched<F> {
    id: String,
    main: F,
}

impl<F: Future<Output = ()>> Future for Watched<F> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<()> {
        // SAFETY: `main` is pinned structurally: it is never moved out of
        // `Watched`, which has no `Drop` and no other access to it; `id`
        // is not pinned, and only read.
        let (id, main) = unsafe {
            let this = self.get_unchecked_mut();
            (&this.id, Pin::new_unchecked(&mut this.main))
        };
        // After a panic the future is not polled again: the task ends.
        match catch_unwind(AssertUnwindSafe(|| main.poll(cx))) {
            Ok(poll) => poll,
            Err(payload) => {
                let what = panic_text(payload);
                tracing::error!(process = %id, panic = %what,
                    "the supervisor of this process panicked; it is no longer supervised");
                Poll::Ready(())
            }
        }
    }
}

fn panic_text(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_string())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::spawn_watched;

    #[tokio::test]
    async fn a_panic_of_a_supervisor_is_logged_with_its_process_and_ends_only_its_task() {
        // A current-thread runtime: the tasks run on this thread.
        let log = crate::testing::capture_log();
        let panicking = spawn_watched("p7".to_string(), async {
            tokio::task::yield_now().await;
            panic!("broken invariant");
        });
        let fine = spawn_watched("p8".to_string(), async {
            tokio::time::sleep(Duration::from_millis(10)).await;
        });
        let ended = tokio::time::timeout(Duration::from_secs(20), panicking)
            .await
            .expect("the task ended");
        assert!(ended.is_ok(), "the panic was caught in the task: {ended:?}");
        tokio::time::timeout(Duration::from_secs(20), fine)
            .await
            .expect("the other task ended")
            .expect("without a panic");
        let text = log.text();
        assert!(
            text.contains("process=p7")
                && text.contains("broken invariant")
                && text.contains("no longer supervised"),
            "{text}"
        );
        assert!(!text.contains("p8"), "{text}");
    }
}
