//! The metrics of a real manager, parsed back line by line: every line a
//! comment or `name{labels} value`, and the families with their values.

use std::collections::BTreeMap;

use procman_core::outcome::Signal;

use super::*;
use crate::server::test_support::{self as support, sh};

/// `name{labels}` → value, every line checked for the text format.
fn parse(text: &str) -> BTreeMap<String, f64> {
    let mut series = BTreeMap::new();
    for line in text.lines() {
        if line.starts_with("# HELP ") || line.starts_with("# TYPE ") {
            continue;
        }
        let (key, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("not `name value`: {line}"));
        let name_end = key.find('{').unwrap_or(key.len());
        let name = &key[..name_end];
        assert!(
            name.starts_with("procman_")
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
            "a metric name: {line}"
        );
        if name_end < key.len() {
            assert!(key.ends_with('}'), "labels closed: {line}");
            let labels = &key[name_end + 1..key.len() - 1];
            for pair in labels.split(',') {
                let (k, v) = pair.split_once('=').expect("label=value");
                assert!(
                    k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
                    "{line}"
                );
                assert!(v.starts_with('"') && v.ends_with('"'), "{line}");
            }
        }
        let value: f64 = value
            .parse()
            .unwrap_or_else(|e| panic!("{e}: not a number: {line}"));
        assert!(
            series.insert(key.to_string(), value).is_none(),
            "one series once: {line}"
        );
    }
    series
}

fn value(series: &BTreeMap<String, f64>, key: &str) -> f64 {
    *series
        .get(key)
        .unwrap_or_else(|| panic!("no series {key} in {series:#?}"))
}

fn types(text: &str) -> BTreeMap<&str, &str> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_once(' '))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_families_of_a_running_manager() {
    let dir = tempfile::tempdir().expect("tempdir");
    let check = "      health_check:\n        type: exec\n        command: [\"true\"]\n        interval: 100ms\n      restart_policy:\n        strategy: always\n        max_attempts: 0\n        restart_delay: 50ms\n";
    let processes = [
        sh("web", "echo hello; exec sleep 100", check),
        sh("idle", "exec sleep 100", "    enabled: false\n"),
    ]
    .concat();
    let m = support::manager(dir.path(), &processes);
    let control = m.control().clone();
    let before = parse(&render(&control).await);
    assert_eq!(
        value(&before, "procman_manager_state{state=\"created\"}"),
        1.0
    );
    assert_eq!(
        value(
            &before,
            "procman_process_state{process=\"web\",state=\"registered\"}"
        ),
        1.0
    );
    assert_eq!(value(&before, "procman_process_up{process=\"web\"}"), 0.0);

    m.start().await;
    support::wait_for(&control, "web", Phase::Running, 1).await;
    let handle = control.handle("web").expect("web");
    // Healthy, its output read: then a TERM makes the policy restart it.
    support::until("web is healthy and its output read", || {
        let s = handle.status();
        s.health.is_some_and(|h| h.health.as_str() == "healthy")
            && handle.log_counters().bytes_read.load(Ordering::Relaxed) >= 6
    })
    .await;
    control
        .signal_process("web", Signal::TERM, false)
        .await
        .expect("signal");
    support::wait_for(&control, "web", Phase::Running, 2).await;
    // Healthy again, and the second run's output read too (being healthy
    // says nothing of the pipe's reader).
    support::until("web is healthy again, its output read", || {
        handle
            .status()
            .health
            .is_some_and(|h| h.health.as_str() == "healthy")
            && handle.log_counters().bytes_read.load(Ordering::Relaxed) >= 12
    })
    .await;

    let text = render(&control).await;
    let s = parse(&text);
    let t = types(&text);
    assert_eq!(t["procman_process_state"], "gauge");
    assert_eq!(t["procman_process_restarts_total"], "counter");
    assert_eq!(t["procman_manager_cpu_seconds_total"], "counter");
    let web = |name: &str| value(&s, &format!("procman_{name}{{process=\"web\"}}"));
    for state in [
        "registered",
        "waiting",
        "starting",
        "stopped",
        "backoff",
        "failed",
        "exited",
    ] {
        let key = format!("procman_process_state{{process=\"web\",state=\"{state}\"}}");
        assert_eq!(value(&s, &key), 0.0, "{key}");
    }
    assert_eq!(
        value(
            &s,
            "procman_process_state{process=\"web\",state=\"running\"}"
        ),
        1.0
    );
    assert_eq!(
        value(
            &s,
            "procman_process_state{process=\"idle\",state=\"registered\"}"
        ),
        1.0
    );
    assert_eq!(web("process_up"), 1.0);
    assert_eq!(value(&s, "procman_process_up{process=\"idle\"}"), 0.0);
    assert_eq!(
        value(
            &s,
            "procman_process_restarts_total{process=\"web\",cause=\"exit\"}"
        ),
        1.0
    );
    assert!(!s
        .keys()
        .any(|k| k.contains("restarts_total{process=\"idle\"")));
    assert_eq!(web("process_runs_total"), 2.0);
    assert_eq!(
        value(&s, "procman_process_runs_total{process=\"idle\"}"),
        0.0
    );
    let uptime = web("process_uptime_seconds");
    assert!((0.0..60.0).contains(&uptime), "{uptime}");
    assert_eq!(
        value(&s, "procman_process_uptime_seconds{process=\"idle\"}"),
        0.0
    );
    assert_eq!(web("process_health"), 1.0);
    let latency = web("process_health_check_latency_seconds");
    assert!(latency > 0.0 && latency < 30.0, "{latency}");
    assert!(
        !s.contains_key("procman_process_health{process=\"idle\"}"),
        "no check"
    );
    // `hello\n` once per run.
    assert!(web("process_log_bytes_total") >= 12.0, "{text}");
    assert_eq!(web("process_log_dropped_total"), 0.0);
    // Limits and usage: counters for every process, no limit series
    // without limits, usage only for the run under way.
    assert_eq!(web("process_oom_kills_total"), 0.0);
    assert_eq!(web("process_violations_total"), 0.0);
    assert_eq!(
        value(&s, "procman_process_violations_total{process=\"idle\"}"),
        0.0
    );
    assert!(!text.contains("procman_process_limit{"), "{text}");
    assert!(web("process_processes") >= 1.0, "{text}");
    assert!(web("process_cpu_seconds_total") >= 0.0, "{text}");
    assert_eq!(t["procman_process_cpu_seconds_total"], "counter");
    assert_eq!(t["procman_process_memory_bytes"], "gauge");
    assert!(
        !s.keys().any(|k| k.contains("{process=\"idle\"}")
            && ["memory_bytes", "cpu_seconds", "processes{", "open_files"]
                .iter()
                .any(|f| k.contains(f))),
        "usage of a process that does not run:\n{text}"
    );

    assert_eq!(value(&s, "procman_manager_up"), 1.0);
    assert_eq!(value(&s, "procman_manager_state{state=\"running\"}"), 1.0);
    assert_eq!(value(&s, "procman_manager_state{state=\"created\"}"), 0.0);
    assert_eq!(value(&s, "procman_manager_processes"), 2.0);
    // A fresh test binary may not have used one clock tick yet.
    assert!(value(&s, "procman_manager_cpu_seconds_total") >= 0.0);
    assert!(value(&s, "procman_manager_resident_memory_bytes") > f64::from(1u32 << 20));
    assert!(value(&s, "procman_manager_open_fds") >= 3.0);
    m.shutdown().await;
}

#[test]
fn label_values_are_escaped() {
    // A process id cannot hold a quote, but a restart cause is free text
    // in principle: the encoder escapes whatever it is given.
    let mut text = String::new();
    let mut registry = Registry::default();
    #[derive(Debug)]
    struct Odd;
    impl Collector for Odd {
        fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), Error> {
            let mut m = encoder.encode_descriptor("odd", "help", None, MetricType::Gauge)?;
            gauge(&mut m, &[("process", "a\"b\\c\nd")], 1.0)
        }
    }
    registry.register_collector(Box::new(Odd));
    prometheus_client::encoding::prometheus_text::encode(&mut text, &registry).expect("encode");
    assert!(text.contains(r#"odd{process="a\"b\\c\nd"} 1"#), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_processes_cost_no_io_each() {
    let dir = tempfile::tempdir().expect("tempdir");
    let processes: String = (0..1000)
        .map(|i| sh(&format!("p{i}"), "exec sleep 100", "    enabled: false\n"))
        .collect();
    let m = support::manager(dir.path(), &processes);
    let started = std::time::Instant::now();
    let text = render(m.control()).await;
    let took = started.elapsed();
    let s = parse(&text);
    assert_eq!(value(&s, "procman_manager_processes"), 1000.0);
    assert_eq!(
        value(
            &s,
            "procman_process_state{process=\"p999\",state=\"registered\"}"
        ),
        1.0
    );
    // 8 states, up, runs, uptime, log bytes, log dropped per process.
    assert!(s.len() > 13 * 1000, "{}", s.len());
    // Milliseconds in a release build; generous for a loaded machine.
    assert!(took < std::time::Duration::from_secs(5), "{took:?}");
    eprintln!("1000 processes rendered in {took:?}, {} bytes", text.len());
    m.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_usage_of_many_runs_is_read_at_once_within_the_deadline() {
    let dir = tempfile::tempdir().expect("tempdir");
    let n = 40;
    let limits = "      resource_limits:\n        max_file_descriptors: 64\n";
    let processes: String = (0..n)
        .map(|i| sh(&format!("p{i}"), "exec sleep 100", limits))
        .collect();
    let m = support::manager(dir.path(), &processes);
    let control = m.control().clone();
    m.start().await;
    for i in 0..n {
        support::wait_for(&control, &format!("p{i}"), Phase::Running, 1).await;
    }
    let started = std::time::Instant::now();
    let text = render(&control).await;
    let took = started.elapsed();
    let s = parse(&text);
    for i in 0..n {
        let p = format!("p{i}");
        let v = value(&s, &format!("procman_process_processes{{process=\"{p}\"}}"));
        assert!(v >= 1.0, "{p}: {v}");
        let limit = format!(
            "procman_process_limit{{process=\"{p}\",limit=\"max_file_descriptors\",unit=\"files\",enforced_by=\"rlimit\"}}"
        );
        assert_eq!(value(&s, &limit), 64.0);
    }
    // Bounded by the deadline (and the encoding), whatever the machine.
    assert!(
        took < super::resources::USAGE_DEADLINE + std::time::Duration::from_secs(3),
        "{took:?}"
    );
    eprintln!("{n} running processes scraped in {took:?}");
    m.shutdown().await;
}
