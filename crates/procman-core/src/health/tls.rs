//! TLS for `https://` HTTP checks and TLS gRPC checks: rustls with the
//! `ring` provider, trusting the system's certificate store.
//!
//! - The trusted roots are read once per manager process, on the first
//!   check that needs them ([`Roots::system`]), through
//!   `rustls-native-certs`: the system store (`/etc/ssl/certs` and the like,
//!   found as OpenSSL would), or only `SSL_CERT_FILE` / `SSL_CERT_DIR` when
//!   either is set. A change to the store takes effect at the next start of
//!   the manager.
//! - One [`Tls`] (one rustls `ClientConfig`, built by [`client_config`] for
//!   both probes) is made per process run when its probe is built, never per
//!   check.
//! - Session resumption is off: every check is a full handshake that
//!   verifies the certificate again, so a certificate that expires or is
//!   replaced by a bad one fails the very next check.
//! - `tls_skip_verify` swaps the verifier, through rustls' `dangerous()`
//!   API, for one that accepts any certificate for any name but still
//!   checks the handshake signatures made with the certificate's key.

use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{Resumption, WebPkiServerVerifier};
use rustls::crypto::{ring, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use super::certificate::{self, HandshakeError};

/// The certificate authorities a check trusts.
#[derive(Clone, Debug)]
pub(crate) struct Roots(Arc<RootCertStore>);

impl Roots {
    /// The system's store (or `SSL_CERT_FILE` / `SSL_CERT_DIR`), read on
    /// the first call and shared by every probe of the process after it.
    pub(crate) fn system() -> Roots {
        static SYSTEM: OnceLock<Roots> = OnceLock::new();
        SYSTEM.get_or_init(load_system).clone()
    }

    /// The certificates of a PEM bundle: how the tests trust their own CA
    /// without touching the process's environment.
    #[cfg(test)]
    pub(crate) fn from_pem(pem: &str) -> Roots {
        use rustls::pki_types::pem::PemObject;
        let mut store = RootCertStore::empty();
        let certs = CertificateDer::pem_slice_iter(pem.as_bytes()).filter_map(Result::ok);
        store.add_parsable_certificates(certs);
        Roots(Arc::new(store))
    }

    #[cfg(test)]
    pub(crate) fn empty() -> Roots {
        Roots(Arc::new(RootCertStore::empty()))
    }
}

fn load_system() -> Roots {
    let found = rustls_native_certs::load_native_certs();
    for error in &found.errors {
        tracing::warn!(%error, "cannot read part of the certificate store");
    }
    let mut store = RootCertStore::empty();
    let (added, ignored) = store.add_parsable_certificates(found.certs);
    let source = match (
        std::env::var_os("SSL_CERT_FILE"),
        std::env::var_os("SSL_CERT_DIR"),
    ) {
        (None, None) => "the system store",
        _ => "SSL_CERT_FILE / SSL_CERT_DIR",
    };
    tracing::info!(
        added,
        ignored,
        source,
        "trusted CA certificates loaded for health checks"
    );
    Roots(Arc::new(store))
}

/// The application protocol a check speaks once the handshake is done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Alpn {
    Http1,
    /// gRPC needs HTTP/2, and many servers refuse a client that does not
    /// offer `h2` in the handshake.
    H2,
}

/// How one check connects over TLS: the client config and the name the
/// certificate must carry (also sent as SNI, unless it is an address).
#[derive(Clone)]
pub struct Tls {
    connector: TlsConnector,
    server_name: ServerName<'static>,
    skip_verify: bool,
    alpn: Alpn,
    roots: Roots,
}

impl Tls {
    /// TLS to `host` (a DNS name, or an IP address, brackets allowed for
    /// IPv6), verified against `roots` unless `skip_verify`.
    pub(crate) fn new(
        host: &str,
        skip_verify: bool,
        alpn: Alpn,
        roots: &Roots,
    ) -> Result<Tls, String> {
        let bare = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        let server_name = ServerName::try_from(bare.to_string())
            .map_err(|e| format!("`{bare}` is not a host name or address for TLS: {e}"))?;
        let config = client_config(roots, skip_verify, alpn)?;
        Ok(Tls {
            connector: TlsConnector::from(config),
            server_name,
            skip_verify,
            alpn,
            roots: roots.clone(),
        })
    }

    /// The handshake on `tcp`; a failure says what went wrong in words a
    /// user acts on.
    pub(crate) async fn connect(
        &self,
        tcp: TcpStream,
    ) -> Result<TlsStream<TcpStream>, HandshakeError> {
        let _ = tcp.set_nodelay(true);
        self.connector
            .connect(self.server_name.clone(), tcp)
            .await
            .map_err(|e| certificate::explain(&e, &self.server_name))
    }
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("server_name", &self.server_name)
            .field("skip_verify", &self.skip_verify)
            .field("alpn", &self.alpn)
            .finish_non_exhaustive()
    }
}

/// Two settings are the same when they check the same name, the same way,
/// against the same roots.
impl PartialEq for Tls {
    fn eq(&self, other: &Tls) -> bool {
        self.server_name == other.server_name
            && self.skip_verify == other.skip_verify
            && self.alpn == other.alpn
            && Arc::ptr_eq(&self.roots.0, &other.roots.0)
    }
}

impl Eq for Tls {}

/// The one place a rustls client config is made, for both probes: ring,
/// TLS 1.2 and 1.3, no client certificate, no resumption, and either the
/// WebPKI verifier over `roots` or, with `skip_verify`, none at all.
pub(crate) fn client_config(
    roots: &Roots,
    skip_verify: bool,
    alpn: Alpn,
) -> Result<Arc<ClientConfig>, String> {
    // The provider is named, not taken from the process default, so that
    // another crate enabling a second provider cannot make this ambiguous.
    let provider = Arc::new(ring::default_provider());
    let algorithms = provider.signature_verification_algorithms;
    let verifier: Arc<dyn ServerCertVerifier> = if skip_verify {
        Arc::new(AcceptAnyCertificate(algorithms))
    } else {
        if roots.0.is_empty() {
            return Err(
                "no trusted CA certificates: the system certificate store is empty or \
                        missing (install the ca-certificates package, or point SSL_CERT_FILE \
                        at a PEM bundle)"
                    .to_string(),
            );
        }
        let webpki = WebPkiServerVerifier::builder_with_provider(roots.0.clone(), provider.clone())
            .build()
            .map_err(|e| format!("cannot set up certificate verification: {e}"))?;
        Arc::new(NamedFailures(webpki))
    };
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("cannot set up TLS: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = vec![match alpn {
        Alpn::Http1 => b"http/1.1".to_vec(),
        Alpn::H2 => b"h2".to_vec(),
    }];
    config.resumption = Resumption::disabled();
    Ok(Arc::new(config))
}

/// The WebPKI verifier, with a self-signed certificate told apart from one
/// issued by an unknown CA (WebPKI reports both as an unknown issuer, or
/// a CA certificate used as a server's).
#[derive(Debug)]
struct NamedFailures(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for NamedFailures {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            .map_err(|e| certificate::name_self_signed(e, end_entity))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// `tls_skip_verify: true`: any certificate, for any name, is accepted.
/// The handshake signatures are still checked against the certificate's
/// key, so the peer at least holds the key of the certificate it shows.
#[derive(Debug)]
struct AcceptAnyCertificate(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

#[cfg(test)]
#[path = "tests/tls.rs"]
mod tests;
