use std::time::Duration;

use super::*;

#[test]
fn seconds_round_up() {
    assert_eq!(seconds(Duration::ZERO), 0);
    assert_eq!(seconds(Duration::from_millis(1)), 1);
    assert_eq!(seconds(Duration::from_secs(5)), 5);
    assert_eq!(seconds(Duration::from_millis(5001)), 6);
    assert_eq!(duration_text(Duration::from_millis(1500)), "1500ms");
    assert_eq!(duration_text(Duration::from_secs(30)), "30s");
}

#[test]
fn ports_of_endpoints() {
    assert_eq!(endpoint_port("http://localhost:8080/health"), Some(8080));
    assert_eq!(endpoint_port("https://example.com/x"), Some(443));
    assert_eq!(endpoint_port("http://example.com"), Some(80));
    assert_eq!(endpoint_port("localhost:50051"), Some(50051));
    assert_eq!(endpoint_port("[::1]:9000"), Some(9000));
    assert_eq!(endpoint_port("http://[::1]/x"), Some(80));
    assert_eq!(endpoint_port("unix:///run/x.sock"), None);
    assert_eq!(endpoint_port("localhost"), None);
}

#[test]
fn labels_follow_dns_rules() {
    assert_eq!(dns_label("My_Service", 63), "my-service");
    assert_eq!(dns_label("-a-", 63), "a");
    assert_eq!(dns_label("___", 63), "x");
    assert_eq!(dns_label(&"a".repeat(80), 63).len(), 63);
}
