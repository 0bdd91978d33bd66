//! Reading a certificate's issuer and subject, and the words for what
//! WebPKI reports.

use rustls::pki_types::ServerName;

use super::*;
use crate::health::pki::{self, Ca};

#[test]
fn a_self_signed_certificate_is_its_own_issuer() {
    let own = pki::self_signed(&["localhost"]);
    assert!(self_issued(&own.cert));
    let (issuer, subject) = issuer_and_subject(&own.cert).expect("names");
    assert!(!issuer.is_empty());
    assert_eq!(issuer, subject);
}

#[test]
fn a_certificate_signed_by_a_ca_is_not() {
    let leaf = Ca::new().leaf(&["localhost"]);
    assert!(!self_issued(&leaf.cert));
}

#[test]
fn truncated_or_foreign_bytes_are_not_a_certificate() {
    let own = pki::self_signed(&["localhost"]);
    for cut in [0, 1, 2, 10, own.cert.len() / 2] {
        assert!(!self_issued(&own.cert[..cut]), "cut at {cut}");
    }
    assert!(!self_issued(b"not DER at all"));
    assert_eq!(element(&[0x30, 0x82, 0x01]), None, "length bytes missing");
    assert_eq!(element(&[0x30, 0x80]), None, "indefinite length");
    assert_eq!(
        element(&[0x04, 0x81, 0x02, 0xaa, 0xbb, 0xcc]),
        Some((0x04, &[0xaa, 0xbb][..], &[0xcc][..]))
    );
}

#[test]
fn only_an_unknown_issuer_on_a_self_issued_certificate_becomes_self_signed() {
    let own = pki::self_signed(&["localhost"]);
    let leaf = Ca::new().leaf(&["localhost"]);
    let unknown = || rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer);
    let name = ServerName::try_from("localhost").expect("name");
    let said = |e: rustls::Error| describe(&e, &name);
    assert_eq!(
        said(name_self_signed(unknown(), &own.cert)),
        "certificate not trusted (self-signed; set tls_skip_verify for a local service)"
    );
    assert_eq!(
        said(name_self_signed(unknown(), &leaf.cert)),
        "certificate not trusted (issued by a CA that is not in the trusted certificate store)"
    );
    let expired = rustls::Error::InvalidCertificate(CertificateError::Expired);
    assert_eq!(
        said(name_self_signed(expired, &own.cert)),
        "certificate expired"
    );
}

#[test]
fn presented_names_lose_their_webpki_wrapping() {
    assert_eq!(
        presented_name("DnsName(\"other.example\")"),
        "other.example"
    );
    assert_eq!(presented_name("IpAddress(127.0.0.1)"), "127.0.0.1");
    assert_eq!(presented_name("DirectoryName"), "DirectoryName");
}

#[test]
fn io_errors_of_the_handshake_are_named() {
    let name = ServerName::try_from("localhost").expect("name");
    let eof = std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "tls handshake eof");
    assert_eq!(
        explain(&eof, &name).to_string(),
        "TLS handshake failed: the server closed the connection"
    );
    let alert = std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        rustls::Error::AlertReceived(rustls::AlertDescription::HandshakeFailure),
    );
    assert_eq!(
        explain(&alert, &name).to_string(),
        "TLS handshake failed: received fatal alert: HandshakeFailure"
    );
}
