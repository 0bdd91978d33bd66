//! A small thread of our own for the blocking work of the platform layer
//! (walking `/proc`, reading and signalling the members of a cgroup), so
//! that it never runs on the async runtime's workers.
//!
//! Why not `tokio::task::spawn_blocking`: it panics when the OS refuses a
//! new thread and the pool has none idle (a manager under `RLIMIT_NPROC`
//! pressure would then lose a supervisor), and an embedding program's
//! runtime may be configured in ways we cannot see. This thread is created
//! once, at start (where failing is a clean start-up error, see
//! [`start`]); if it ever is not there, the work runs inline on the caller's
//! thread: slower for the runtime, never lost.

use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};

use tokio::sync::oneshot;

type Job = Box<dyn FnOnce() + Send + 'static>;

fn queue() -> &'static OnceLock<Mutex<mpsc::Sender<Job>>> {
    static QUEUE: OnceLock<Mutex<mpsc::Sender<Job>>> = OnceLock::new();
    &QUEUE
}

/// Starts the worker thread (once per process).
pub fn start() -> std::io::Result<()> {
    static START: Mutex<()> = Mutex::new(());
    let _guard = START.lock().unwrap_or_else(|p| p.into_inner());
    if queue().get().is_some() {
        return Ok(());
    }
    let (tx, rx) = mpsc::channel::<Job>();
    std::thread::Builder::new()
        .name("procman-platform".into())
        .stack_size(256 * 1024)
        .spawn(move || {
            while let Ok(job) = rx.recv() {
                // A panicking job loses its own answer, not the thread.
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
            }
        })
        .map_err(|e| {
            std::io::Error::new(e.kind(), format!("cannot start the platform thread: {e}"))
        })?;
    let _ = queue().set(Mutex::new(tx));
    Ok(())
}

/// Runs `f` on the worker thread and awaits its result. Without the worker
/// (never started, or gone) it runs here. `None` only if `f` panicked (a
/// bug, reported by the panic hook; the worker goes on).
pub(crate) async fn run<T, F>(f: F) -> Option<T>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let Some(sender) = queue().get() else {
        return Some(f());
    };
    let (tx, rx) = oneshot::channel();
    let job: Job = Box::new(move || {
        let _ = tx.send(f());
    });
    let sent = sender.lock().unwrap_or_else(|p| p.into_inner()).send(job);
    if let Err(mpsc::SendError(job)) = sent {
        // The thread is gone: run the job here.
        job();
    }
    rx.await.ok()
}
