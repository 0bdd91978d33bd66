//! Certificates made by the tests (a CA, leaves it signs, self-signed and
//! expired ones) and real TLS servers on 127.0.0.1 that present them: an
//! HTTPS server answering every request with 200, and a `tonic-health`
//! gRPC server behind TLS.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tonic::transport::server::Connected;
use tonic_health::server::HealthReporter;

use crate::health::tls::Roots;

/// A certificate and its key, as a server presents them.
pub(crate) struct Identity {
    pub(crate) cert: CertificateDer<'static>,
    key: KeyPair,
}

fn params(names: &[&str], common_name: &str) -> CertificateParams {
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let mut params = CertificateParams::new(names).expect("certificate params");
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params
}

/// A self-signed certificate for `names`, as a local service makes one.
pub(crate) fn self_signed(names: &[&str]) -> Identity {
    let key = KeyPair::generate().expect("key");
    let cert = params(names, "local service")
        .self_signed(&key)
        .expect("self-signed");
    Identity {
        cert: cert.der().clone(),
        key,
    }
}

/// A private certificate authority.
pub(crate) struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pub(crate) pem: String,
}

impl Ca {
    pub(crate) fn new() -> Ca {
        let key = KeyPair::generate().expect("key");
        let mut params = params(&[], "procman test CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key).expect("CA certificate");
        Ca {
            issuer: Issuer::new(params, key),
            pem: cert.pem(),
        }
    }

    /// Roots that trust this CA alone.
    pub(crate) fn roots(&self) -> Roots {
        Roots::from_pem(&self.pem)
    }

    /// A server certificate for `names`, signed by this CA.
    pub(crate) fn leaf(&self, names: &[&str]) -> Identity {
        self.leaf_with(params(names, "service"))
    }

    /// A certificate for `names` that expired on 2 January 2020.
    pub(crate) fn expired_leaf(&self, names: &[&str]) -> Identity {
        let mut params = params(names, "service");
        params.not_before = rcgen::date_time_ymd(2019, 1, 1);
        params.not_after = rcgen::date_time_ymd(2020, 1, 2);
        self.leaf_with(params)
    }

    fn leaf_with(&self, params: CertificateParams) -> Identity {
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &self.issuer).expect("signed leaf");
        Identity {
            cert: cert.der().clone(),
            key,
        }
    }
}

/// A rustls server config presenting `identity`, offering `alpn`.
fn server_config(identity: &Identity, alpn: &[u8]) -> Arc<rustls::ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let key = PrivateKeyDer::try_from(identity.key.serialize_der()).expect("key der");
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(vec![identity.cert.clone()], key)
        .expect("server config");
    config.alpn_protocols = vec![alpn.to_vec()];
    Arc::new(config)
}

/// An HTTPS server: every request that completes a handshake gets
/// `200 OK`. `served` counts those requests; `sni` is the server name the
/// last client sent.
pub(crate) struct HttpsServer {
    pub(crate) addr: SocketAddr,
    served: Arc<AtomicUsize>,
    sni: Arc<Mutex<Option<String>>>,
}

impl HttpsServer {
    pub(crate) async fn start(identity: &Identity) -> HttpsServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let acceptor = TlsAcceptor::from(server_config(identity, b"http/1.1"));
        let served = Arc::new(AtomicUsize::new(0));
        let sni = Arc::new(Mutex::new(None));
        let (count, seen) = (served.clone(), sni.clone());
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, count, seen) = (acceptor.clone(), count.clone(), seen.clone());
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    *seen.lock().expect("lock") = tls.get_ref().1.server_name().map(str::to_string);
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match tls.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    count.fetch_add(1, Ordering::SeqCst);
                    let response =
                        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
                    let _ = tls.write_all(response.as_bytes()).await;
                    let _ = tls.shutdown().await;
                });
            }
        });
        HttpsServer { addr, served, sni }
    }

    pub(crate) fn served(&self) -> usize {
        self.served.load(Ordering::SeqCst)
    }

    pub(crate) fn sni(&self) -> Option<String> {
        self.sni.lock().expect("lock").clone()
    }
}

/// A server-side TLS stream that tonic can serve on.
struct TlsConn(tokio_rustls::server::TlsStream<TcpStream>);

impl Connected for TlsConn {
    type ConnectInfo = ();
    fn connect_info(&self) {}
}

impl AsyncRead for TlsConn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsConn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// A `tonic-health` server behind TLS (ALPN `h2`), on a port of its own.
pub(crate) async fn grpc_tls_server(identity: &Identity) -> (SocketAddr, HealthReporter) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let acceptor = TlsAcceptor::from(server_config(identity, b"h2"));
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<TlsConn, std::io::Error>>(16);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, tx) = (acceptor.clone(), tx.clone());
            tokio::spawn(async move {
                // A failed handshake is the client's business: the server
                // carries on with the next connection.
                if let Ok(tls) = acceptor.accept(tcp).await {
                    let _ = tx.send(Ok(TlsConn(tls))).await;
                }
            });
        }
    });
    let (reporter, service) = tonic_health::server::health_reporter();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(tokio_stream::wrappers::ReceiverStream::new(rx)),
    );
    (addr, reporter)
}
