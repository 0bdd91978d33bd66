//! Resource limits and usage where a user looks: the REST detail, gRPC
//! `GetProcess`, `/metrics` and `procman status ID`, for a real manager
//! with a running process that has a memory and a descriptor limit, and a
//! disabled one that has not run yet.
//!
//! What enforces the memory limit depends on the host; the test decides
//! it from `Controllers::probe`, as the manager does: a cgroup (v1 or v2)
//! when one is writable, else the manager's monitor.

use procman_api::proto;
use procman_api::proto::process_manager_client::ProcessManagerClient;
use procman_core::platform::{Controller, Controllers, Host};

use super::grpc::{authed, channel, id, origin};
use super::*;

/// What should enforce `max_memory_mb` here: `None` for "a cgroup, v1 or
/// v2" (the probe said one is writable), `Some("monitor")` otherwise.
fn memory_enforcer() -> Option<&'static str> {
    let probe = Controllers::probe(&Host::current());
    let (_, verdict) = probe
        .into_iter()
        .find(|(c, _)| *c == Controller::Memory)
        .expect("the probe covers memory");
    match verdict {
        Ok(e) => {
            eprintln!("max_memory_mb is enforced here by {}", e.as_str());
            None
        }
        Err(why) => {
            eprintln!("no memory cgroup here ({why}): the monitor watches max_memory_mb");
            Some("monitor")
        }
    }
}

fn check_memory_enforcer(got: Option<&str>, want: Option<&str>, context: &str) {
    match want {
        Some(w) => assert_eq!(got, Some(w), "{context}"),
        None => assert!(
            matches!(got, Some("cgroup v1" | "cgroup v2")),
            "a cgroup should enforce max_memory_mb, got {got:?}: {context}"
        ),
    }
}

const LIMITS: &str =
    "      resource_limits:\n        max_memory_mb: 64\n        max_file_descriptors: 100\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_and_usage_show_in_the_api_the_metrics_and_status() {
    tokio::time::timeout(WATCHDOG, async {
        let want_memory = memory_enforcer();
        let t = Scratch::new();
        let (a, a_pid) = runner(&t, "a", LIMITS);
        let (b, _) = runner(
            &t,
            "b",
            "      resource_limits:\n        max_cpu_percent: 12.5\n        on_violation: restart\n        violation_grace: 500ms\n",
        );
        let b = b.replacen('\n', "\n    enabled: false\n", 1);
        let port = free_port();
        let api = Api::start(&t, &(header(&t, port, "") + &a + &b), port).await;
        let pid = wait_pidfile(&a_pid, LONG, |_| true).await;

        // The kernel has the rlimit the API says enforces the limit.
        let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("limits");
        let nofile = limits
            .lines()
            .find(|l| l.starts_with("Max open files"))
            .expect("a Max open files line");
        assert_eq!(
            nofile.split_whitespace().collect::<Vec<_>>()[3..5],
            ["100", "100"],
            "{nofile}"
        );

        // REST: both limits, what enforces each, the usage of the run.
        let r = api.local("GET", "/api/v1/processes/a", None).await;
        assert_eq!(r.status, 200, "{}", r.text());
        let d = r.json();
        let log = api.m.log_text();
        let context = format!("{d:#}\nthe manager's log:\n{log}");
        let entries = d["limits"].as_array().expect("limits");
        assert_eq!(entries.len(), 2, "{context}");
        assert_eq!(entries[0]["limit"], "max_memory_mb", "{context}");
        assert_eq!(entries[0]["value"].as_f64(), Some(64.0), "{context}");
        check_memory_enforcer(entries[0]["enforced_by"].as_str(), want_memory, &context);
        assert_eq!(entries[1]["limit"], "max_file_descriptors", "{context}");
        assert_eq!(entries[1]["value"].as_f64(), Some(100.0), "{context}");
        assert_eq!(entries[1]["enforced_by"], "rlimit", "{context}");
        assert_eq!(d["on_violation"], "log", "{context}");
        assert_eq!(d["violation_grace_seconds"].as_f64(), Some(0.0));
        assert_eq!(d["sample_interval_seconds"].as_f64(), Some(5.0));
        assert_eq!(d["oom_kills"], 0);
        assert_eq!(d["violations"], 0);
        let usage = &d["usage"];
        assert!(
            usage["memory_bytes"].as_u64().is_some_and(|b| b > 0),
            "{context}"
        );
        assert!(
            usage["processes"].as_u64().is_some_and(|n| n >= 1),
            "{context}"
        );
        assert!(
            usage["open_files"].as_u64().is_some_and(|n| n >= 1),
            "{context}"
        );
        assert!(usage["cpu_seconds"].as_f64().is_some(), "{context}");
        let source = usage["source"].as_str().expect("a source");
        assert!(matches!(source, "cgroup" | "proc"), "{context}");
        if want_memory.is_none() {
            assert_eq!(source, "cgroup", "the memory cgroup is read: {context}");
        }
        let memory_by = entries[0]["enforced_by"]
            .as_str()
            .expect("enforced")
            .to_string();

        // Before its first run: what the config sets, not yet by what.
        let r = api.local("GET", "/api/v1/processes/b", None).await;
        let d = r.json();
        assert_eq!(
            d["limits"],
            serde_json::json!([{"limit": "max_cpu_percent", "value": 12.5, "enforced_by": null}]),
            "{d:#}"
        );
        assert_eq!(d["on_violation"], "restart");
        assert_eq!(d["violation_grace_seconds"].as_f64(), Some(0.5));
        assert!(d["usage"].is_null(), "no run, no usage: {d:#}");
        // The list stays cheap: no usage there, unless asked for.
        assert!(api.process("a").await.get("usage").is_none());
        let r = api.local("GET", "/api/v1/processes?usage=true", None).await;
        assert_eq!(r.status, 200, "{}", r.text());
        let list = r.json();
        let row = |id: &str| {
            list.as_array()
                .and_then(|l| l.iter().find(|p| p["id"] == id))
                .cloned()
                .unwrap_or_else(|| panic!("{id} missing: {list:#}"))
        };
        let usage = &row("a")["usage"];
        assert!(usage["memory_bytes"].as_u64().is_some_and(|b| b > 0), "{list:#}");
        assert!(usage["processes"].as_u64().is_some_and(|n| n >= 1), "{list:#}");
        assert!(row("b").get("usage").is_none(), "no run, no usage: {list:#}");
        // Only the rows asked for, in config order; an unknown id is left out.
        let r = api
            .local("GET", "/api/v1/processes?usage=true&ids=b,nobody,a", None)
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        let rows = r.json();
        let ids: Vec<_> = rows
            .as_array()
            .expect("rows")
            .iter()
            .map(|p| p["id"].as_str().unwrap_or_default().to_string())
            .collect();
        assert_eq!(ids, ["a", "b"], "{rows:#}");
        assert!(rows[0]["usage"]["memory_bytes"].as_u64().is_some(), "{rows:#}");
        let r = api.local("GET", "/api/v1/processes?ids=b", None).await;
        assert_eq!(r.json().as_array().map(Vec::len), Some(1), "{}", r.text());
        assert!(r.json()[0].get("usage").is_none(), "{}", r.text());
        let r = api.local("GET", "/api/v1/processes?usage=maybe", None).await;
        assert_eq!(r.status, 400, "{}", r.text());
        assert_eq!(r.json()["code"], "bad_request", "{}", r.text());

        // gRPC: the same.
        let mut pm = ProcessManagerClient::with_origin(channel(), origin(port));
        let g = pm
            .get_process(authed(id("a"), &api.token()))
            .await
            .expect("GetProcess")
            .into_inner();
        let by: Vec<(String, f64, Option<String>)> = g
            .limits
            .iter()
            .map(|l| (l.limit.clone(), l.value, l.enforced_by.clone()))
            .collect();
        assert_eq!(
            by,
            [
                ("max_memory_mb".into(), 64.0, Some(memory_by.clone())),
                ("max_file_descriptors".into(), 100.0, Some("rlimit".into())),
            ]
        );
        assert_eq!(g.on_violation.as_deref(), Some("log"));
        let u: proto::ResourceUsage = g.usage.expect("usage over gRPC");
        assert!(u.memory_bytes.is_some_and(|b| b > 0), "{u:?}");
        assert!(u.processes >= 1, "{u:?}");
        let g = pm
            .get_process(authed(id("b"), &api.token()))
            .await
            .expect("GetProcess")
            .into_inner();
        assert!(g.usage.is_none());
        assert_eq!(g.limits.len(), 1);
        assert_eq!(g.limits[0].enforced_by, None);

        // /metrics: the usage series of the run, the counters, the limits
        // in base units.
        let r = api.local("GET", "/metrics", None).await;
        assert_eq!(r.status, 200);
        let text = r.text();
        let value = |key: &str| -> f64 {
            let line = text
                .lines()
                .find(|l| l.starts_with(key) && l[key.len()..].starts_with(' '))
                .unwrap_or_else(|| panic!("no {key} in:\n{text}"));
            line[key.len() + 1..].parse().expect("a number")
        };
        assert!(value("procman_process_memory_bytes{process=\"a\"}") > 0.0);
        assert!(value("procman_process_cpu_seconds_total{process=\"a\"}") >= 0.0);
        assert!(value("procman_process_processes{process=\"a\"}") >= 1.0);
        assert!(value("procman_process_open_files{process=\"a\"}") >= 1.0);
        assert_eq!(value("procman_process_oom_kills_total{process=\"a\"}"), 0.0);
        assert_eq!(value("procman_process_violations_total{process=\"a\"}"), 0.0);
        assert_eq!(
            value(&format!(
                "procman_process_limit{{process=\"a\",limit=\"max_memory_mb\",unit=\"bytes\",enforced_by=\"{memory_by}\"}}"
            )),
            64.0 * 1048576.0
        );
        assert_eq!(
            value("procman_process_limit{process=\"a\",limit=\"max_file_descriptors\",unit=\"files\",enforced_by=\"rlimit\"}"),
            100.0
        );
        assert_eq!(
            value("procman_process_limit{process=\"b\",limit=\"max_cpu_percent\",unit=\"cores\"}"),
            0.125
        );
        assert!(
            !text.contains("procman_process_memory_bytes{process=\"b\"}"),
            "no usage without a run:\n{text}"
        );
        for family in ["memory_bytes", "processes", "open_files", "limit"] {
            assert!(
                text.contains(&format!("# TYPE procman_process_{family} gauge")),
                "{family}:\n{text}"
            );
        }
        for family in ["cpu_seconds", "oom_kills", "violations"] {
            assert!(
                text.contains(&format!("# TYPE procman_process_{family}_total counter")),
                "{family}:\n{text}"
            );
        }

        // `procman status a`: the Limits and Usage blocks.
        let config = t.path("procman.yaml").display().to_string();
        let out = crate::cli_control::cli(&["status", "a", "-c", &config]).await;
        out.ok();
        let lines: Vec<&str> = out.stdout.lines().collect();
        let at = |title: &str| {
            lines
                .iter()
                .position(|l| *l == title)
                .unwrap_or_else(|| panic!("no {title:?} in:\n{}", out.stdout))
        };
        let limits_at = at("  Limits:");
        let words = |l: &str| l.split_whitespace().map(String::from).collect::<Vec<_>>();
        let mut memory = vec!["max_memory_mb", "64", "MiB", "by"];
        memory.extend(memory_by.split(' '));
        assert_eq!(words(lines[limits_at + 1]), memory, "{}", out.stdout);
        assert_eq!(
            words(lines[limits_at + 2]),
            ["max_file_descriptors", "100", "open", "files", "by", "rlimit"],
            "{}",
            out.stdout
        );
        assert!(out.stdout.contains("    OOM kills "), "{}", out.stdout);
        let usage_at = at(&format!("  Usage (from {source}):"));
        assert!(usage_at > limits_at, "{}", out.stdout);
        let memory_line = lines[usage_at + 1];
        assert!(
            memory_line.trim_start().starts_with("memory") && memory_line.contains(" MiB of 64 MiB"),
            "{}",
            out.stdout
        );

        // `-o json` carries the same fields.
        let out = crate::cli_control::cli(&["status", "a", "-o", "json", "-c", &config]).await;
        out.ok();
        let j: serde_json::Value = out.json();
        assert_eq!(j["limits"][1]["enforced_by"], "rlimit", "{}", out.stdout);
        assert!(j["usage"]["processes"].as_u64().is_some_and(|n| n >= 1));
        assert_eq!(j["oom_kills"], 0);

        api.stop().await;
    })
    .await
    .expect("watchdog");
}
