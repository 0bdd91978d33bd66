//! `https://` health checks end to end: an HTTPS server in this test
//! process with certificates made here, a real process supervised by the
//! manager. A process becomes `running` only after its first check passes
//! the TLS handshake; a bad certificate keeps it `starting` until
//! `startup_timeout`, with the TLS problem in its diagnostics; a check that
//! cannot be built fails visibly the same way; `procman validate` refuses
//! `tls_skip_verify` where there is no TLS; and the `procman` binary trusts
//! a private CA given in `SSL_CERT_FILE`.

use std::sync::atomic::{AtomicUsize, Ordering};

use procman_core::outcome::{ProcessEnd, Signal};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::TlsAcceptor;

use super::*;

const SELF_SIGNED: &str =
    "certificate not trusted (self-signed; set tls_skip_verify for a local service)";

/// A certificate and its key.
struct Identity {
    cert: CertificateDer<'static>,
    key: KeyPair,
}

fn params(names: &[&str], common_name: &str) -> CertificateParams {
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let mut params = CertificateParams::new(names).expect("params");
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params
}

fn self_signed(name: &str) -> Identity {
    let key = KeyPair::generate().expect("key");
    let cert = params(&[name], "local service")
        .self_signed(&key)
        .expect("certificate");
    Identity {
        cert: cert.der().clone(),
        key,
    }
}

/// A private CA (its PEM) and a certificate for `name` that it signed.
fn ca_and_leaf(name: &str) -> (String, Identity) {
    let ca_key = KeyPair::generate().expect("key");
    let mut ca = params(&[], "procman it CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_pem = ca.self_signed(&ca_key).expect("CA").pem();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().expect("key");
    let cert = params(&[name], "service")
        .signed_by(&key, &issuer)
        .expect("leaf");
    let leaf = Identity {
        cert: cert.der().clone(),
        key,
    };
    (ca_pem, leaf)
}

/// Serves HTTPS on `listener` with `identity`: `200 OK` to every request
/// that gets through the handshake. Counts those requests.
fn serve_https(listener: TcpListener, identity: &Identity) -> Arc<AtomicUsize> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let key = PrivateKeyDer::try_from(identity.key.serialize_der()).expect("key");
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(vec![identity.cert.clone()], key)
        .expect("server config");
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let served = Arc::new(AtomicUsize::new(0));
    let count = served.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, count) = (acceptor.clone(), count.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                count.fetch_add(1, Ordering::SeqCst);
                let ok = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
                let _ = tls.write_all(ok.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    served
}

async fn listen() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").await.expect("bind")
}

/// A `health_check` on `https://localhost:<port>/health` every 300ms.
fn https_check(port: u16, extra: &str) -> String {
    health(&format!(
        "http_endpoint: \"https://localhost:{port}/health\"\ninterval: 300ms\ntimeout: 300ms\n{extra}"
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_check_makes_the_process_running_only_once_it_passes() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let port = free_port();
        let yaml = t.header()
            + &child_with(
                "web",
                &["run"],
                "startup_timeout: 60s",
                &(https_check(port, "tls_skip_verify: true") + &policy("strategy: never")),
            );
        let m = t.manager(&yaml);
        m.start().await;
        let h = m.handle("web").unwrap();

        // Nothing listens yet: checks fail, and the process stays starting.
        let s = wait_status(&h, SHORT, "two failed checks", |s| {
            s.health
                .as_ref()
                .is_some_and(|d| d.consecutive_failures >= 2)
        })
        .await;
        assert_eq!(s.phase(), Phase::Starting, "{s:#?}");
        assert_eq!(diag(&s).last_result, "connection refused", "{s:#?}");

        let listener = TcpListener::bind(("127.0.0.1", port)).await.expect("bind");
        let served = serve_https(listener, &self_signed("localhost"));
        let s = wait_ready(&h, SHORT).await;
        assert_eq!(diag(&s).last_result, "HTTP 200", "{s:#?}");
        assert!(served.load(Ordering::SeqCst) >= 1);
        m.shutdown().await;
    })
    .await
    .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_self_signed_certificate_keeps_the_process_starting_until_startup_timeout() {
    tokio::time::timeout(WATCHDOG, async {
        let listener = listen().await;
        let port = listener.local_addr().expect("addr").port();
        let served = serve_https(listener, &self_signed("localhost"));
        let t = Scratch::new();
        // failure_threshold 1: were failures before the first success
        // counted, the first one would end the run.
        let yaml = t.header()
            + &child_with(
                "web",
                &["run"],
                "startup_timeout: 2s",
                &(https_check(port, "failure_threshold: 1") + &policy("strategy: never")),
            );
        let m = t.manager(&yaml);
        m.start().await;
        let h = m.handle("web").unwrap();
        let s = wait_startup_timeout(&h, Duration::from_secs(2), SHORT).await;
        let d = diag(&s);
        assert_eq!(d.last_result, SELF_SIGNED, "{s:#?}");
        assert_eq!(d.last_error.as_deref(), Some(SELF_SIGNED), "{s:#?}");
        assert!(d.consecutive_failures >= 2, "{s:#?}");
        assert_eq!(served.load(Ordering::SeqCst), 0, "no request was sent");
        m.shutdown().await;
    })
    .await
    .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_the_probe_cannot_use_fails_by_startup_timeout_naming_why() {
    tokio::time::timeout(WATCHDOG, async {
        // Validation accepts this host; hyper's URI parser does not. The
        // process must not run unchecked.
        let t = Scratch::new();
        let yaml = t.header()
            + &child_with(
                "odd",
                &["run"],
                "startup_timeout: 1500ms",
                &(health("http_endpoint: \"http://exa^mple/\"\ninterval: 300ms")
                    + &policy("strategy: never")),
            );
        let m = t.manager(&yaml);
        m.start().await;
        let h = m.handle("odd").unwrap();
        let s = wait_startup_timeout(&h, Duration::from_millis(1500), SHORT).await;
        assert_eq!(
            diag(&s).last_result,
            "http endpoint `http://exa^mple/`: invalid uri character",
            "{s:#?}"
        );
        m.shutdown().await;
    })
    .await
    .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validate_refuses_tls_skip_verify_on_a_plaintext_endpoint() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let yaml = t.header()
            + &child_with(
                "web",
                &["run"],
                "",
                &health("http_endpoint: \"http://localhost:8080/health\"\ntls_skip_verify: true"),
            );
        let file = t.path("procman.yaml");
        std::fs::write(&file, &yaml).expect("write");
        let file_s = file.display().to_string();
        let (end, out) = run(Path::new(procman()), &["validate", "-c", &file_s], &[]).await;
        assert_eq!(end, ProcessEnd::Exited(2), "{out}");
        let line = yaml
            .lines()
            .position(|l| l.contains("tls_skip_verify"))
            .expect("the key")
            + 1;
        let want = format!(
            "{file_s}:{line}:26: managed_processes[0].management.health_check.tls_skip_verify: \
             tls_skip_verify only applies to https:// endpoints"
        );
        assert!(out.lines().any(|l| l == want), "want {want:?} in:\n{out}");
    })
    .await
    .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn procman_run_trusts_a_private_ca_given_in_ssl_cert_file() {
    tokio::time::timeout(WATCHDOG, async {
        let (ca_pem, leaf) = ca_and_leaf("localhost");
        let listener = listen().await;
        let port = listener.local_addr().expect("addr").port();
        let served = serve_https(listener, &leaf);
        let t = Scratch::new();
        let ca_file = t.path("ca.pem");
        std::fs::write(&ca_file, ca_pem).expect("write CA");
        let yaml = t.header()
            + &child_with(
                "web",
                &["run"],
                "startup_timeout: 60s",
                &https_check(port, ""),
            );
        t.config(&yaml);
        let file_s = t.path("procman.yaml").display().to_string();
        let ca_s = ca_file.display().to_string();
        let _cleanup = KillOnDrop(t.dir.path().display().to_string());
        let (pid, exit, out) = start(
            Path::new(procman()),
            &["run", "-c", &file_s],
            &[("SSL_CERT_FILE", &ca_s)],
        );

        // A request reaches the server only through a verified handshake.
        let text = wait_file(out.path(), "to=running", SHORT).await;
        let line = text
            .lines()
            .find(|l| l.contains("to=running"))
            .unwrap_or_default();
        assert!(
            line.contains("from=starting") && line.contains("cause=ready"),
            "{text}"
        );
        assert!(served.load(Ordering::SeqCst) >= 1, "{text}");

        procman_core::platform::signal_process(pid, Signal::TERM).expect("SIGTERM");
        let end = tokio::time::timeout(SHORT, exit)
            .await
            .expect("procman exits")
            .expect("exit status");
        let text = std::fs::read_to_string(out.path()).unwrap_or_default();
        assert_eq!(end, ProcessEnd::Exited(0), "{text}");
    })
    .await
    .expect("watchdog");
}
