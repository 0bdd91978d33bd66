//! The control API of a real `procman run`, seen by real clients: HTTP/1
//! over TCP (with the token) and over the Unix socket, gRPC over HTTP/2.
//! Each test runs its own manager on its own state directory and port.

mod auth;
mod control;
mod feeds;
mod grpc;
mod grpcio;
mod input;
mod limits;
mod schema;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use procman_core::outcome::ProcessEnd;
use tokio::net::{TcpStream, UnixStream};

pub use crate::manager::{config_file, Running};
pub use crate::support::*;

/// A generous deadline for anything a loaded machine does.
pub const LONG: Duration = Duration::from_secs(30);

/// A TCP port nobody listens on now.
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    l.local_addr().expect("local addr").port()
}

/// The config header of an API test: its own state dir and `port`.
pub fn header(t: &Scratch, port: u16, extra: &str) -> String {
    t.header()
        .replace("  port: 0\n", &format!("  port: {port}\n{extra}"))
}

/// A `procman run` with its API up.
pub struct Api {
    pub m: Running,
    pub state: PathBuf,
    pub port: u16,
    pub _cleanup: KillOnDrop,
}

impl Api {
    /// Starts `procman run` on `yaml` and waits until the socket answers.
    pub async fn start(t: &Scratch, yaml: &str, port: u16) -> Api {
        let cleanup = KillOnDrop(t.dir.path().display().to_string());
        let config = config_file(t, yaml);
        let m = Running::run_logged(&config, &t.path("manager.log"), &[]);
        let api = Api {
            m,
            state: t.path("state"),
            port,
            _cleanup: cleanup,
        };
        let deadline = Instant::now() + LONG;
        loop {
            if let Ok(r) = try_request(&api.unix(), "GET", "/healthz", &[], None).await {
                assert_eq!(r.status, 200, "{}", r.text());
                return api;
            }
            assert!(
                Instant::now() < deadline,
                "the API did not come up; the manager's log:\n{}",
                api.m.log_text()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn socket(&self) -> PathBuf {
        self.state.join(procman_api::SOCKET_NAME)
    }

    pub fn unix(&self) -> Via {
        Via::Unix(self.socket())
    }

    pub fn tcp(&self) -> Via {
        Via::Tcp(self.port)
    }

    /// The generated token, as a client on this machine reads it.
    pub fn token(&self) -> String {
        std::fs::read_to_string(self.state.join(procman_api::TOKEN_NAME))
            .expect("read the api-token file")
            .trim_end()
            .to_string()
    }

    /// A request over the socket (no token needed).
    pub async fn local(&self, method: &str, path: &str, body: Option<&str>) -> Reply {
        let headers: &[(&str, &str)] = if body.is_some() {
            &[("content-type", "application/json")]
        } else {
            &[]
        };
        request(&self.unix(), method, path, headers, body.map(str::as_bytes)).await
    }

    /// The process `id` as the list shows it.
    pub async fn process(&self, id: &str) -> serde_json::Value {
        let r = self.local("GET", "/api/v1/processes", None).await;
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()
            .as_array()
            .and_then(|a| a.iter().find(|p| p["id"] == id).cloned())
            .unwrap_or_else(|| panic!("no {id} in the list: {}", r.text()))
    }

    /// Waits until `id`'s state (from the API) is `state`; returns it.
    pub async fn wait_state(&self, id: &str, state: &str) -> serde_json::Value {
        let deadline = Instant::now() + LONG;
        loop {
            let p = self.process(id).await;
            if p["state"] == state {
                return p;
            }
            assert!(
                Instant::now() < deadline,
                "{id} never became {state}: {p}\n{}",
                self.m.log_text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Shuts the manager down with SIGTERM and checks it ends with 0.
    pub async fn stop(mut self) {
        self.m.signal(rustix::process::Signal::TERM.as_raw());
        let end = self.m.ended(LONG).await;
        assert_eq!(
            end,
            procman_core::outcome::ProcessEnd::Exited(0),
            "{}",
            self.m.log_text()
        );
    }
}

/// A manager with TCP on a free port and one runner `a`, once `a` runs:
/// the API and `a`'s pid.
pub async fn with_one_runner(t: &Scratch) -> (Api, u32) {
    let (a, a_pid) = runner(t, "a", "");
    let port = free_port();
    let api = Api::start(t, &(header(t, port, "") + &a), port).await;
    let pid = wait_pidfile(&a_pid, LONG, |_| true).await;
    (api, pid)
}

/// Where a request goes.
pub enum Via {
    Unix(PathBuf),
    Tcp(u16),
}

/// A response, read whole.
pub struct Reply {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.text()))
    }

    /// The `code` of an `ApiError` body, checking its shape.
    pub fn error_code(&self) -> String {
        let j = self.json();
        assert!(j["message"].is_string(), "no message: {j}");
        j["code"].as_str().expect("a code").to_string()
    }

    pub fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    }
}

/// One HTTP/1.1 request on a new connection; panics on a transport error.
pub async fn request(
    via: &Via,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Reply {
    try_request(via, method, path, headers, body)
        .await
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

pub async fn try_request(
    via: &Via,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> anyhow::Result<Reply> {
    let mut req = http::Request::builder()
        .method(method)
        .uri(path)
        .header("host", "procman");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req.body(Full::new(Bytes::from(body.unwrap_or_default().to_vec())))?;
    let fut = async {
        let mut sender = match via {
            Via::Unix(p) => handshake(UnixStream::connect(p).await?).await?,
            Via::Tcp(port) => handshake(TcpStream::connect(("127.0.0.1", *port)).await?).await?,
        };
        let res = sender.send_request(req).await?;
        let (parts, body) = res.into_parts();
        let body = body.collect().await?.to_bytes().to_vec();
        anyhow::Ok(Reply {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body,
        })
    };
    tokio::time::timeout(LONG, fut).await?
}

/// A response whose body is read as it comes: server-sent events.
pub struct EventStream {
    pub status: u16,
    pub headers: http::HeaderMap,
    body: hyper::body::Incoming,
    buf: String,
}

impl EventStream {
    /// Sends a GET and returns once the response head is in.
    pub async fn open(via: &Via, path: &str, headers: &[(&str, &str)]) -> EventStream {
        let mut req = http::Request::builder().uri(path).header("host", "procman");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.body(Full::new(Bytes::new())).expect("request");
        let fut = async {
            let mut sender = match via {
                Via::Unix(p) => handshake(UnixStream::connect(p).await?).await?,
                Via::Tcp(port) => {
                    handshake(TcpStream::connect(("127.0.0.1", *port)).await?).await?
                }
            };
            anyhow::Ok(sender.send_request(req).await?)
        };
        let res = tokio::time::timeout(LONG, fut)
            .await
            .expect("the response head in time")
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let (parts, body) = res.into_parts();
        EventStream {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body,
            buf: String::new(),
        }
    }

    /// The next event (its lines, comments left out), or `None` once the
    /// stream has ended; panics after `LONG` without one.
    pub async fn next(&mut self) -> Option<String> {
        loop {
            while let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let lines: Vec<&str> = block.lines().filter(|l| !l.starts_with(':')).collect();
                if !lines.is_empty() {
                    return Some(lines.join("\n"));
                }
            }
            let frame = tokio::time::timeout(LONG, self.body.frame())
                .await
                .expect("an event in time");
            match frame {
                None | Some(Err(_)) => return None,
                Some(Ok(f)) => {
                    if let Ok(data) = f.into_data() {
                        self.buf.push_str(&String::from_utf8_lossy(&data));
                    }
                }
            }
        }
    }

    /// The next event whose text contains `needle`.
    pub async fn until(&mut self, needle: &str) -> String {
        loop {
            match self.next().await {
                Some(e) if e.contains(needle) => return e,
                Some(_) => continue,
                None => panic!("the stream ended before an event with {needle:?}"),
            }
        }
    }
}

/// The JSON `data:` of an event's text.
pub fn data(event: &str) -> serde_json::Value {
    let line = event
        .lines()
        .find_map(|l| l.strip_prefix("data: "))
        .unwrap_or_else(|| panic!("no data in {event:?}"));
    serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"))
}

async fn handshake<S>(
    stream: S,
) -> anyhow::Result<hyper::client::conn::http1::SendRequest<Full<Bytes>>>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    Ok(sender)
}

/// A test child entry that runs until told and writes its pid to a file.
pub fn runner(t: &Scratch, id: &str, extra: &str) -> (String, PathBuf) {
    let pidfile = t.path(&format!("{id}.pid"));
    let p = pidfile.display().to_string();
    (child_entry(id, &["--pidfile", &p, "run"], extra), pidfile)
}

/// A Python virtualenv under cargo's `target/tmp` with `packages` installed
/// by pip, made on first use and kept for the next run; `None` (after
/// `skip_or_fail`) when python3, its venv module or PyPI cannot be had.
///
/// Each package set has its own `name`, and a lock file beside the
/// virtualenv keeps two tests from making the same one at once. It is
/// taken as ready only once a marker file naming `packages` is written
/// after pip succeeded: a half-made or outdated one is made again.
pub async fn python_venv(name: &str, packages: &[&str]) -> Option<PathBuf> {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let venv = tmp.join(format!("{name}-venv"));
    let lock = tmp.join(format!("{name}-venv.lock"));
    // flock blocks: take it on a thread of its own. The lock goes with
    // the file, when this function returns.
    let _lock = tokio::task::spawn_blocking(move || {
        let file = std::fs::File::create(&lock).expect("create the virtualenv's lock file");
        rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive)
            .expect("lock the virtualenv");
        file
    })
    .await
    .expect("lock thread");
    let marker = venv.join("procman-packages");
    let wanted = packages.join("\n");
    if std::fs::read_to_string(&marker).is_ok_and(|m| m == wanted) {
        return Some(venv);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let Some(python) = std::env::split_paths(&path)
        .map(|d| d.join("python3"))
        .find(|p| p.is_file())
    else {
        skip_or_fail("python3 is not in PATH");
        return None;
    };
    let _ = std::fs::remove_dir_all(&venv);
    let venv_s = venv.display().to_string();
    let (end, out) = run(&python, &["-m", "venv", &venv_s], &[]).await;
    if end != ProcessEnd::Exited(0) {
        skip_or_fail(&format!("cannot create a Python virtualenv ({end}): {out}"));
        return None;
    }
    let mut args = vec!["install", "--quiet", "--disable-pip-version-check"];
    args.extend_from_slice(packages);
    let (end, out) = run(&venv.join("bin/pip"), &args, &[]).await;
    if end != ProcessEnd::Exited(0) {
        let _ = std::fs::remove_dir_all(&venv);
        skip_or_fail(&format!("cannot install {packages:?} ({end}): {out}"));
        return None;
    }
    std::fs::write(&marker, wanted).expect("write the virtualenv's marker");
    Some(venv)
}

/// Whether anything in `dir` still runs (a test's processes are gone).
pub fn nothing_left(dir: &Path) -> Vec<(u32, String)> {
    procs_mentioning(&dir.display().to_string())
}
