//! The accept loop, one per listener (the Unix socket, TCP), and the limits
//! that keep a slow, idle or greedy client from holding the server:
//!
//! - at most [`Limits::connections`] connections at once per listener; past
//!   that the loop stops accepting (the kernel's backlog holds the rest)
//!   until one ends;
//! - an HTTP/1 request head must arrive within [`Limits::header`] (hyper's
//!   header read timeout, which also bounds an idle keep-alive connection);
//! - a connection that sends nothing within [`Limits::header`] of opening,
//!   or that has no request in flight and no byte moved for
//!   [`Limits::idle`] (an idle HTTP/2 client), is closed;
//! - once the server stops, the loop stops accepting, each connection is
//!   asked to finish (HTTP/1 ends after its response, HTTP/2 sends GOAWAY),
//!   and whatever is still open after [`Limits::grace`] is dropped.
//!
//! Each request carries the [`Transport`] it came over, for the token check.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tower::ServiceExt as _;

/// The router both listeners serve, made when the first connection comes.
/// A manager nobody asks never builds it (the routes, the gRPC services,
/// the OpenAPI schemas), nor maps the code that does: some 300 KiB of its
/// resident memory.
#[derive(Clone)]
pub struct LazyApp(Arc<LazyLock<Router, Box<dyn FnOnce() -> Router + Send>>>);

impl LazyApp {
    pub fn new(make: impl FnOnce() -> Router + Send + 'static) -> LazyApp {
        LazyApp(Arc::new(LazyLock::new(Box::new(make))))
    }

    /// The router, made now if no connection has come before.
    fn router(&self) -> Router {
        Router::clone(&self.0)
    }
}

/// Which listener a request came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// The Unix socket: its 0600 mode is the guard, no token needed.
    Unix,
    /// TCP: every request but the health checks needs the token.
    Tcp,
}

/// The bounds of [the module docs](self).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub connections: usize,
    pub header: Duration,
    pub idle: Duration,
    pub grace: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            connections: 256,
            header: Duration::from_secs(10),
            idle: Duration::from_secs(60),
            grace: Duration::from_secs(2),
        }
    }
}

/// A bound listener.
pub enum Listener {
    Unix(UnixListener),
    Tcp(TcpListener),
}

impl Listener {
    fn transport(&self) -> Transport {
        match self {
            Listener::Unix(_) => Transport::Unix,
            Listener::Tcp(_) => Transport::Tcp,
        }
    }

    async fn accept(&self) -> io::Result<Box<dyn Stream>> {
        Ok(match self {
            Listener::Unix(l) => Box::new(l.accept().await?.0),
            Listener::Tcp(l) => {
                let (s, _) = l.accept().await?;
                // Small request/response pairs: do not wait to fill a segment.
                let _ = s.set_nodelay(true);
                Box::new(s)
            }
        })
    }
}

/// A connected socket of either kind.
trait Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Stream for T {}

/// Resolves once `stopping` turns true (or its sender is gone).
pub async fn stopped(stopping: &mut watch::Receiver<bool>) {
    let _ = stopping.wait_for(|s| *s).await;
}

/// Accepts connections and serves `app` on each until `stopping` turns
/// true; returns once every connection has ended or been dropped.
pub async fn serve(
    listener: Listener,
    app: LazyApp,
    limits: Limits,
    mut stopping: watch::Receiver<bool>,
) {
    let transport = listener.transport();
    let permits = Arc::new(Semaphore::new(limits.connections));
    let trims = Arc::new(Trims::default());
    let mut conns = JoinSet::new();
    loop {
        // Reap the connections that ended, so the set stays small.
        while conns.try_join_next().is_some() {}
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            () = stopped(&mut stopping) => break,
        };
        let stream = tokio::select! {
            s = listener.accept() => s,
            () = stopped(&mut stopping) => break,
        };
        match stream {
            Ok(stream) => {
                let app = app.clone();
                let stopping = stopping.clone();
                let permits = permits.clone();
                let trims = trims.clone();
                conns.spawn(async move {
                    let app = app.router();
                    connection(stream, app, transport, limits, stopping).await;
                    drop(permit);
                    // The accept loop holds one permit while it waits.
                    let last = permits.available_permits() + 1 >= limits.connections;
                    trims.after_connection(last);
                });
            }
            Err(e) => {
                // Out of file descriptors (or a connection reset before
                // accept): wait a little rather than spin on the error.
                tracing::warn!(error = %e, ?transport, "cannot accept an API connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    drop(listener);
    let drained = tokio::time::timeout(limits.grace, async {
        while conns.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::debug!(
            open = conns.len(),
            ?transport,
            "closing the API connections still open"
        );
        conns.shutdown().await;
    }
}

/// When a listener gives back the memory its requests used (a list or the
/// metrics of 500 processes is some 1 MiB the allocator would keep; a log
/// tail much more): as its last connection ends, and, while others stay
/// open (a follower), as any ends once a second at most.
#[derive(Default)]
struct Trims {
    /// Milliseconds after `since` of the last trim (0: none yet).
    last: AtomicU64,
    since: std::sync::OnceLock<Instant>,
}

impl Trims {
    const EVERY: Duration = Duration::from_secs(1);

    fn after_connection(&self, last_one: bool) {
        let since = *self.since.get_or_init(Instant::now);
        let now = since.elapsed().as_millis() as u64 + 1;
        let before = self.last.load(Ordering::Relaxed);
        let due = before == 0 || now.saturating_sub(before) >= Self::EVERY.as_millis() as u64;
        if last_one || due {
            self.last.store(now, Ordering::Relaxed);
            procman_core::platform::release_free_memory();
        }
    }
}

/// What a connection did last, for the idle limit.
struct Activity {
    opened: Instant,
    /// Milliseconds after `opened` of the last byte read or written.
    last: AtomicU64,
    in_flight: AtomicUsize,
    requests: AtomicU64,
}

impl Activity {
    fn touch(&self) {
        let ms = self.opened.elapsed().as_millis() as u64;
        self.last.store(ms, Ordering::Relaxed);
    }

    /// When the connection may be closed if nothing happens before: its
    /// first request must come within `header` of opening (however slowly
    /// bytes trickle in), later ones within `idle` of the last traffic.
    fn deadline(&self, limits: &Limits) -> Instant {
        if self.requests.load(Ordering::Relaxed) == 0 {
            return self.opened + limits.header;
        }
        self.opened + Duration::from_millis(self.last.load(Ordering::Relaxed)) + limits.idle
    }
}

/// Counts a request in flight until its response (head) is ready.
struct InFlight(Arc<Activity>);

impl InFlight {
    fn new(a: &Arc<Activity>) -> InFlight {
        a.in_flight.fetch_add(1, Ordering::Relaxed);
        a.requests.fetch_add(1, Ordering::Relaxed);
        InFlight(a.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.0.touch();
    }
}

async fn connection(
    stream: Box<dyn Stream>,
    app: Router,
    transport: Transport,
    limits: Limits,
    mut stopping: watch::Receiver<bool>,
) {
    let activity = Arc::new(Activity {
        opened: Instant::now(),
        last: AtomicU64::new(0),
        in_flight: AtomicUsize::new(0),
        requests: AtomicU64::new(0),
    });
    let io = TokioIo::new(Watched {
        inner: stream,
        activity: activity.clone(),
    });
    let seen = activity.clone();
    let service = tower::service_fn(move |mut req: http::Request<Incoming>| {
        req.extensions_mut().insert(transport);
        let guard = InFlight::new(&seen);
        let app = app.clone();
        async move {
            let res = app.oneshot(req).await;
            drop(guard);
            res
        }
    });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(64)
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(Duration::from_secs(10));
    let conn = builder.serve_connection(io, hyper_util::service::TowerToHyperService::new(service));
    tokio::pin!(conn);
    let mut closing = false;
    loop {
        let deadline = activity.deadline(&limits);
        tokio::select! {
            done = conn.as_mut() => {
                if let Err(e) = done {
                    tracing::debug!(error = %e, ?transport, "API connection ended with an error");
                }
                return;
            }
            () = stopped(&mut stopping), if !closing => {
                closing = true;
                conn.as_mut().graceful_shutdown();
            }
            () = tokio::time::sleep_until(deadline.into()), if !closing => {
                let busy = activity.in_flight.load(Ordering::Relaxed) > 0;
                if !busy && activity.deadline(&limits) <= Instant::now() {
                    tracing::debug!(?transport, "closing an idle or silent API connection");
                    return;
                }
                if busy {
                    activity.touch();
                }
            }
        }
    }
}

/// A socket that notes when a byte last moved.
struct Watched {
    inner: Box<dyn Stream>,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        r
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
