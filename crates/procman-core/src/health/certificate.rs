//! What went wrong in a TLS handshake, in the words a user acts on:
//! `certificate not trusted (self-signed; ...)`, `certificate is for
//! other.example, not localhost`, `certificate expired at ...`, `TLS
//! handshake failed: ...`.
//!
//! rustls reports a self-signed certificate as one from an unknown issuer
//! (or as a CA certificate used by a server): the verifier tells the two
//! apart by looking at the certificate itself ([`name_self_signed`]), since
//! the fix differs (`tls_skip_verify` for a local service, the CA in the
//! trust store otherwise).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, InvalidMessage, OtherError};

/// A handshake that failed, described for the diagnostics.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct HandshakeError(String);

/// The verifier's mark on a certificate that names itself as its issuer.
#[derive(Debug, thiserror::Error)]
#[error("self-signed certificate")]
struct SelfSigned;

/// Replaces an unknown-issuer failure by [`SelfSigned`] when `leaf` is its
/// own issuer; any other failure passes through.
pub(super) fn name_self_signed(err: rustls::Error, leaf: &CertificateDer<'_>) -> rustls::Error {
    let chain_failure = matches!(
        err,
        rustls::Error::InvalidCertificate(
            CertificateError::UnknownIssuer | CertificateError::Other(_)
        )
    );
    if chain_failure && self_issued(leaf) {
        return rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(
            SelfSigned,
        ))));
    }
    err
}

/// The handshake error `err` (from tokio-rustls) for the diagnostics.
pub(super) fn explain(err: &std::io::Error, server: &ServerName<'_>) -> HandshakeError {
    if let Some(tls) = err
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
    {
        return HandshakeError(describe(tls, server));
    }
    let why = match err.kind() {
        std::io::ErrorKind::UnexpectedEof => "the server closed the connection".to_string(),
        std::io::ErrorKind::ConnectionReset => "the server reset the connection".to_string(),
        _ => super::probe::describe(err),
    };
    HandshakeError(format!("TLS handshake failed: {why}"))
}

fn describe(err: &rustls::Error, server: &ServerName<'_>) -> String {
    match err {
        rustls::Error::InvalidCertificate(problem) => certificate_problem(problem, server),
        // The first bytes back were not a TLS record: most likely a plain
        // HTTP (or gRPC) server behind an https:// endpoint.
        rustls::Error::InvalidMessage(
            InvalidMessage::InvalidContentType | InvalidMessage::UnknownProtocolVersion,
        ) => {
            "TLS handshake failed: the server did not answer in TLS (is it plain http?)".to_string()
        }
        other => format!("TLS handshake failed: {other}"),
    }
}

fn certificate_problem(problem: &CertificateError, server: &ServerName<'_>) -> String {
    match problem {
        CertificateError::Other(other) if other.0.is::<SelfSigned>() => {
            "certificate not trusted (self-signed; set tls_skip_verify for a local service)"
                .to_string()
        }
        CertificateError::UnknownIssuer => "certificate not trusted (issued by a CA that is \
                                            not in the trusted certificate store)"
            .to_string(),
        CertificateError::NotValidForNameContext {
            expected,
            presented,
        } => match presented.as_slice() {
            [] => format!(
                "certificate names no host, so it is not valid for {}",
                expected.to_str()
            ),
            names => format!(
                "certificate is for {}, not {}",
                names
                    .iter()
                    .map(|n| presented_name(n))
                    .collect::<Vec<_>>()
                    .join(", "),
                expected.to_str()
            ),
        },
        CertificateError::NotValidForName => {
            format!("certificate is not valid for {}", server.to_str())
        }
        CertificateError::ExpiredContext { not_after, .. } => {
            format!("certificate expired at {}", rfc3339(*not_after))
        }
        CertificateError::Expired => "certificate expired".to_string(),
        CertificateError::NotValidYetContext { not_before, .. } => {
            format!("certificate not valid until {}", rfc3339(*not_before))
        }
        CertificateError::NotValidYet => "certificate not valid yet".to_string(),
        CertificateError::Revoked => "certificate revoked".to_string(),
        other => format!("certificate not accepted: {other}"),
    }
}

/// `other.example` from WebPKI's `DnsName("other.example")`, `127.0.0.1`
/// from `IpAddress(127.0.0.1)`.
fn presented_name(name: &str) -> &str {
    if let Some(dns) = name
        .strip_prefix("DnsName(\"")
        .and_then(|n| n.strip_suffix("\")"))
    {
        return dns;
    }
    name.strip_prefix("IpAddress(")
        .and_then(|n| n.strip_suffix(')'))
        .unwrap_or(name)
}

fn rfc3339(time: UnixTime) -> String {
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(time.as_secs());
    humantime::format_rfc3339_seconds(at).to_string()
}

/// True when the certificate's issuer is its own subject (compared as
/// DER, as chain building does).
fn self_issued(cert: &[u8]) -> bool {
    issuer_and_subject(cert).is_some_and(|(issuer, subject)| issuer == subject)
}

/// The issuer and subject names of an X.509 certificate:
/// `Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version
/// OPTIONAL, serialNumber, signature, issuer, validity, subject, ... } ... }`.
fn issuer_and_subject(cert: &[u8]) -> Option<(&[u8], &[u8])> {
    let (_, certificate, _) = element(cert)?;
    let (_, mut tbs, _) = element(certificate)?;
    if tbs.first() == Some(&0xa0) {
        tbs = element(tbs)?.2;
    }
    let (_, _serial, rest) = element(tbs)?;
    let (_, _signature, rest) = element(rest)?;
    let (_, issuer, rest) = element(rest)?;
    let (_, _validity, rest) = element(rest)?;
    let (_, subject, _) = element(rest)?;
    Some((issuer, subject))
}

/// One DER element: its tag, its contents, and what follows it.
fn element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

#[cfg(test)]
#[path = "tests/certificate.rs"]
mod tests;
