//! Services that must stay apart, checks that carry what procman sends,
//! and durations Nomad can read.

use super::tests::{config, job, opts, warned};

/// A process `id` with a TCP check, so that it registers a service.
fn checked(id: &str) -> String {
    format!(
        "  - id: \"{id}\"\n    management:\n      control: {{executable: /bin/true}}\n      health_check: {{tcp_endpoint: \"127.0.0.1:80\"}}\n"
    )
}

/// The `name` of every service in `text`, in order.
fn service_names(text: &str) -> Vec<&str> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("name"))
        .filter_map(|rest| rest.trim_start().strip_prefix("= \""))
        .filter_map(|rest| rest.strip_suffix('"'))
        .collect()
}

#[test]
fn service_names_that_would_collide_are_made_unique() {
    let ids = ["My_Svc-1", "my-svc-1", "MY_SVC_1", "_x", "-", "x-"];
    let c = config(&ids.map(checked).concat());
    let (text, warnings) = job(&c, &opts("app"));
    assert_eq!(
        service_names(&text),
        ["my-svc-1-2", "my-svc-1", "my-svc-1-3", "x", "x-2", "x-3"],
        "{text}"
    );
    // The valid id keeps its name, and says nothing.
    assert!(!warnings.iter().any(|w| w.path == "managed_processes[1].id"));
    assert!(warned(
        &warnings,
        "managed_processes[0].id",
        "named `my-svc-1-2` (Nomad's service names are lowercase letters, digits and `-`, unique in the job) (`my-svc-1` is another process's)"
    ));
    assert!(warned(&warnings, "managed_processes[4].id", "named `x-2`"));
}

#[test]
fn long_ids_cut_to_the_same_name_are_made_unique() {
    let (a, b) = (
        format!("{}b", "a".repeat(63)),
        format!("{}c", "a".repeat(63)),
    );
    let c = config(&[checked(&a), checked(&b)].concat());
    let (text, _) = job(&c, &opts("app"));
    let cut = "a".repeat(63);
    let second = format!("{}-2", "a".repeat(61));
    assert_eq!(service_names(&text), [cut.as_str(), second.as_str()]);
}

#[test]
fn processes_without_a_service_take_no_name() {
    // `a_b` has no port and no check: `a-b` is not taken from the other.
    let c = config(
        &[
            "  - {id: a_b, management: {control: {executable: /bin/true}}}\n".to_string(),
            checked("A-B"),
        ]
        .concat(),
    );
    let (text, _) = job(&c, &opts("app"));
    assert_eq!(service_names(&text), ["a-b"], "{text}");
}

#[test]
fn url_credentials_become_an_authorization_header() {
    let c = config(concat!(
        "  - id: web\n    management:\n      control: {executable: /bin/true}\n",
        "      health_check: {http_endpoint: \"https://us%3Aer:p%40ss@127.0.0.1:8443/health\"}\n",
    ));
    let (text, warnings) = job(&c, &opts("app"));
    // base64 of `us:er:p@ss`: the userinfo percent-decoded.
    assert!(
        text.contains("          header {\n            Authorization = [\"Basic dXM6ZXI6cEBzcw==\"]\n          }\n"),
        "{text}"
    );
    assert!(text.contains("path     = \"/health\""), "{text}");
    assert!(!text.contains("p%40ss"), "{text}");
    assert!(!warnings.iter().any(|w| w.message.contains("credential")));
    // Without a user in the URL, no header.
    let c = config(concat!(
        "  - id: web\n    management:\n      control: {executable: /bin/true}\n",
        "      health_check: {http_endpoint: \"http://127.0.0.1:8080/health\"}\n",
    ));
    assert!(!job(&c, &opts("app")).0.contains("header"));
}

#[test]
fn a_restart_interval_past_gos_longest_duration_is_clamped() {
    let c = config(concat!(
        "  - id: a\n    management:\n      control: {executable: /bin/true, working_directory: /}\n",
        "      restart_policy: {max_attempts: 4294967295, restart_delay: 36500d, backoff_multiplier: 1}\n",
    ));
    let (text, warnings) = job(&c, &opts("app"));
    // 9223372036s is the longest whole-second Go duration; two delays of
    // 100 years fit in it.
    assert!(
        text.contains("attempts = 2\n        interval = \"9223372036s\"\n        delay    = \"3153600000s\"\n        mode     = \"fail\""),
        "{text}"
    );
    assert!(warned(
        &warnings,
        "managed_processes[0].management.restart_policy.max_attempts",
        "written as attempts = 2 within interval = 9223372036s"
    ));
    assert!(!warnings
        .iter()
        .any(|w| w.path.ends_with("restart_policy.window")));
}
