use std::collections::HashSet;
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

#[test]
fn valid_ids_keep_their_names_and_the_others_are_made_unique() {
    let label = |id: &str| dns_label(id, 63);
    let ids = [
        Some("My_Svc-1"),
        Some("my-svc-1"),
        None,
        Some("MY_SVC_1"),
        Some("_x"),
        Some("-"),
        Some("x-"),
    ];
    let names = distinct_names(&ids, 63, label);
    let names: Vec<Option<&str>> = names.iter().map(Option::as_deref).collect();
    assert_eq!(
        names,
        [
            Some("my-svc-1-2"),
            Some("my-svc-1"),
            None,
            Some("my-svc-1-3"),
            Some("x"),
            Some("x-2"),
            Some("x-3"),
        ]
    );
    // Ids cut to the same 63 characters.
    let (a, b) = (
        format!("{}b", "a".repeat(63)),
        format!("{}c", "a".repeat(63)),
    );
    let names = distinct_names(&[Some(&a), Some(&b)], 63, label);
    assert_eq!(names[0].as_deref(), Some("a".repeat(63).as_str()));
    assert_eq!(names[1], Some(format!("{}-2", "a".repeat(61))));
    // A suffixed name that is an id of its own is not taken again.
    let names = distinct_names(&[Some("a_b"), Some("a-b"), Some("a-b-2")], 63, label);
    assert_eq!(names[0].as_deref(), Some("a-b-3"));
}

#[test]
fn a_suffix_fits_within_the_longest_name() {
    let taken = |names: &[String]| names.iter().cloned().collect::<HashSet<String>>();
    let long = "a".repeat(63);
    assert_eq!(unique_name(long.clone(), &taken(&[]), 63), long);
    // Cut to make room for `-2`, without a `-` left before it.
    let dashed = format!("{}-bc", "a".repeat(60));
    assert_eq!(
        unique_name(dashed.clone(), &taken(&[dashed]), 63),
        format!("{}-2", "a".repeat(60))
    );
    // `-10` needs one more character than `-9`.
    let mut all: Vec<String> = vec![long.clone()];
    all.extend((2..10).map(|n| format!("{}-{n}", "a".repeat(61))));
    assert_eq!(
        unique_name(long, &taken(&all), 63),
        format!("{}-10", "a".repeat(60))
    );
}

#[test]
fn basic_credentials_are_percent_decoded() {
    // base64 of `us:er:p@ss`: each part decoded, joined by `:`.
    assert_eq!(
        basic_authorization("us%3Aer:p%40ss"),
        "Basic dXM6ZXI6cEBzcw=="
    );
    // base64 of `user:pw`, and of `admin:` (no password).
    assert_eq!(basic_authorization("user:pw"), "Basic dXNlcjpwdw==");
    assert_eq!(basic_authorization("admin"), "Basic YWRtaW46");
}

/// A relative `PATH` entry is relative to the process's working
/// directory, as at spawn time: the path found is absolute, wherever the
/// export runs.
#[test]
fn a_relative_path_entry_is_found_from_the_working_directory() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().expect("tempdir");
    let sub = dir.path().join("sub");
    std::fs::create_dir(&sub).expect("mkdir");
    let exe = sub.join("tool");
    std::fs::write(&exe, "#!/bin/sh\n").expect("write");
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let yaml = format!(
        "managed_processes:\n  - id: t\n    management:\n      control:\n        executable: tool\n        working_directory: {}\n        environment: {{PATH: 'sub:/nonexistent'}}\n",
        dir.path().display()
    );
    let config = procman_core::config::load_str(&yaml, &dir.path().join("c.yaml"), &|_| None)
        .expect("valid");
    assert_eq!(executable_path(&config, &config.processes[0]), Some(exe));
}
