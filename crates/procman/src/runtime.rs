//! The async runtime `procman run` drives the manager on, and every thread
//! it will ever need, created at start.
//!
//! tokio panics when the OS refuses it a thread: while building a
//! multi-threaded runtime (its workers), and in `spawn_blocking` when no
//! blocking thread exists to queue the task for (name resolution for
//! health checks, joining the log target threads at shutdown). A user at
//! their process limit (`RLIMIT_NPROC`, `ulimit -u`) hits exactly that. So:
//!
//! 1. [`build`] first checks that every thread the manager needs can exist
//!    at once (the runtime's, the engine's, the log targets', the API
//!    journal's), by creating them as parked probes and letting them go.
//!    Failing here is a clean error naming the count and the limit.
//! 2. The runtime is built with a bounded blocking pool whose threads never
//!    idle out, and the pool is filled at once. From then on
//!    `spawn_blocking` never creates a thread: a task finds an idle thread
//!    or waits in tokio's queue, and cannot panic.
//! 3. A panic that still comes out of tokio while building (another
//!    process of the same user took the last slot after the check) is
//!    caught and reported like the check's error.

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};
use tokio::runtime::Runtime;

use crate::telemetry;

/// Async worker threads. The manager is mostly idle, but a spawn holds its
/// worker until the child has exec'd (see `launcher.rs` in the engine): in
/// a start of hundreds, four let every launcher clone at once while the
/// children of the others exec, and a busy log pump never delays
/// supervision. (On 2 cores, 3 → 4 took the start of 500 from 1.51× to
/// 1.46× `plain`; 5 was slower.)
const WORKERS: usize = 4;

/// Blocking threads, all created at start. They run DNS look-ups of health
/// checks and the joins of shutdown, which are short; more would only sit.
const BLOCKING: usize = 4;

/// Threads `procman-core` creates on its own, besides one per log target:
/// the reaper and the platform worker (walks of `/proc`).
const ENGINE_THREADS: usize = 2;

/// "Never": an idle blocking thread must not exit, or the next
/// `spawn_blocking` would have to create one. (A finite value: tokio adds it
/// to the current time on some platforms.)
const KEEP_ALIVE: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// How long the blocking threads may take to start.
const POOL_START: Duration = Duration::from_secs(10);

/// Builds the runtime for a manager that also needs `others` threads of
/// its own (one per aggregation target, the API's journal writer), or says
/// which threads could not be created.
pub fn build(others: usize) -> anyhow::Result<Runtime> {
    probe(WORKERS + BLOCKING + ENGINE_THREADS + others)?;
    let runtime = telemetry::catch_quietly(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(WORKERS)
            .max_blocking_threads(BLOCKING)
            .thread_keep_alive(KEEP_ALIVE)
            .thread_name("procman-runtime")
            .enable_all()
            .build()
    })
    .map_err(|panic| anyhow!(panic))
    .and_then(|built| built.map_err(anyhow::Error::from))
    .context("cannot create the async runtime")?;
    fill_blocking_pool(&runtime)?;
    Ok(runtime)
}

/// Creates `count` threads that all wait until the last one exists, then
/// lets them end: proof that that many can exist at once now.
fn probe(count: usize) -> anyhow::Result<()> {
    let gate = Arc::new(Gate::default());
    let mut threads = Vec::with_capacity(count);
    let mut refused = None;
    for _ in 0..count {
        let g = gate.clone();
        match std::thread::Builder::new()
            .name("procman-probe".into())
            .spawn(move || g.arrive_and_wait())
        {
            Ok(t) => threads.push(t),
            Err(e) => {
                refused = Some(e);
                break;
            }
        }
    }
    gate.open();
    let created = threads.len();
    for t in threads {
        let _ = t.join();
    }
    match refused {
        None => Ok(()),
        Some(e) => bail!(
            "cannot create the {count} threads the manager needs (only {created} could be): \
             {e}; {}",
            nproc_limit()
        ),
    }
}

/// Starts [`BLOCKING`] blocking tasks that wait until all of them run, so
/// that each got a thread of its own, which then stays.
fn fill_blocking_pool(runtime: &Runtime) -> anyhow::Result<()> {
    let gate = Arc::new(Gate::default());
    for _ in 0..BLOCKING {
        let g = gate.clone();
        let spawned =
            telemetry::catch_quietly(|| runtime.spawn_blocking(move || g.arrive_and_wait()));
        if let Err(panic) = spawned {
            gate.open();
            bail!(
                "cannot create the async runtime's blocking threads: {panic}; {}",
                nproc_limit()
            );
        }
    }
    let arrived = gate.wait_for(BLOCKING, POOL_START);
    gate.open();
    if arrived < BLOCKING {
        bail!(
            "cannot create the async runtime's {BLOCKING} blocking threads (only {arrived} \
             started within {POOL_START:?}); {}",
            nproc_limit()
        );
    }
    Ok(())
}

/// What the user's process limit is, for an error message.
pub fn nproc_limit() -> String {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nproc);
    match limit.current {
        Some(n) => format!("the process limit of this user (RLIMIT_NPROC, `ulimit -u`) is {n}"),
        None => "the process limit of this user (RLIMIT_NPROC) is unlimited".to_string(),
    }
}

/// Threads check in, then wait until the gate opens.
#[derive(Default)]
struct Gate {
    state: Mutex<(usize, bool)>,
    changed: Condvar,
}

impl Gate {
    fn lock(&self) -> std::sync::MutexGuard<'_, (usize, bool)> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn arrive_and_wait(&self) {
        let mut s = self.lock();
        s.0 += 1;
        self.changed.notify_all();
        while !s.1 {
            s = self.changed.wait(s).unwrap_or_else(|p| p.into_inner());
        }
    }

    fn open(&self) {
        self.lock().1 = true;
        self.changed.notify_all();
    }

    /// Waits until `n` threads arrived or `within` passed; how many did.
    fn wait_for(&self, n: usize, within: Duration) -> usize {
        let deadline = Instant::now() + within;
        let mut s = self.lock();
        while s.0 < n {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            s = self
                .changed
                .wait_timeout(s, left)
                .map(|(s, _)| s)
                .unwrap_or_else(|p| p.into_inner().0);
        }
        s.0
    }
}

/// `pow(3)`, defined here with the pure-Rust `libm` (a port of musl's).
/// tokio's multi-threaded scheduler calls `f64::powf` (its average poll
/// time), the only function of the C math library the binary uses; with
/// `pow` defined in the binary the linker drops `libm.so.6`, whose
/// mappings were about 0.5 MiB of the manager's resident memory.
#[no_mangle]
pub extern "C" fn pow(x: f64, y: f64) -> f64 {
    libm::pow(x, y)
}

#[cfg(test)]
mod tests {
    #[test]
    fn pow_is_the_c_librarys() {
        for (x, y, want) in [
            (2.0, 10.0, 1024.0),
            (0.5, 2.0, 0.25),
            (10.0, -2.0, 0.01),
            (9.0, 0.5, 3.0),
            (-2.0, 3.0, -8.0),
            (0.0, 0.0, 1.0),
        ] {
            assert_eq!(super::pow(x, y), want, "pow({x}, {y})");
        }
        assert!(super::pow(-1.0, 0.5).is_nan());
        // tokio's use: (1 - alpha)^polls, against repeated products.
        let want = (0..61).fold(1.0_f64, |acc, _| acc * 0.9);
        let got = super::pow(0.9, 61.0);
        assert!(((got - want) / want).abs() < 1e-12, "{got} != {want}");
    }
}
