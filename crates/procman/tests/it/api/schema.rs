//! schemathesis, an independent tool, against our OpenAPI document: it
//! generates valid and invalid requests from the document and checks that
//! no answer is a server error or differs from what the document says
//! (status, content type, body schema, `Allow`, the token being enforced).
//!
//! It runs from a Python virtualenv made by [`python_venv`] under cargo's
//! `target/tmp` (kept for the next run). Left out: the shutdown route
//! (it would end the manager under test), reload (it reads the config file
//! again; its own tests are in `reload.rs`), and
//! `follow=true` (an event stream never ends: the config file fixes
//! `follow` to `false`; the streams have tests of their own).

use std::path::PathBuf;

use procman_core::outcome::ProcessEnd;

use super::*;

/// The schemathesis release line the test was written against.
const SCHEMATHESIS: &str = "schemathesis>=4.32,<5";

/// The virtualenv's `st`; `None` when it cannot be had here.
async fn schemathesis() -> Option<PathBuf> {
    let venv = python_venv("schemathesis", &[SCHEMATHESIS]).await?;
    Some(venv.join("bin/st"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_error_and_no_schema_violation() {
    // Installing takes a few seconds to a minute; the run about 15 s.
    tokio::time::timeout(WATCHDOG * 3, async {
        let Some(st) = schemathesis().await else {
            return;
        };
        let t = Scratch::new();
        let (a, _) = runner(&t, "a", "");
        let (b, _) = runner(
            &t,
            "b",
            "      restart_policy:\n        strategy: always\n        restart_delay: 100ms\n",
        );
        let port = free_port();
        let api = Api::start(&t, &(header(&t, port, "") + &a + &b), port).await;
        let schema = format!("http://127.0.0.1:{port}/api/v1/openapi.json");
        let auth = format!("Authorization: Bearer {}", api.token());
        let report = t.path("schemathesis");
        let report_s = report.display().to_string();
        let config = t.path("schemathesis.toml");
        // Its cache (found crashes) in the test's directory, not in the
        // source tree (its default is `.schemathesis` in the working one).
        let cache = t.path("schemathesis-cache");
        let toml = format!(
            "[parameters]\n\"query.follow\" = \"false\"\n\n[cache]\ndirectory = {:?}\n",
            cache.display().to_string()
        );
        std::fs::write(&config, toml).expect("write");
        let config_s = config.display().to_string();
        let (end, out) = run(
            &st,
            &[
                "--config-file",
                &config_s,
                "run",
                &schema,
                "--checks",
                "all",
                "-H",
                &auth,
                "-n",
                "50",
                "--exclude-path-regex",
                "/manager/(shutdown|reload)$",
                "--request-timeout",
                "20",
                "--report-dir",
                &report_s,
                "--output-sanitize",
                "true",
                "--generation-database",
                ":memory:",
            ],
            &[("NO_COLOR", "1"), ("SCHEMATHESIS_TELEMETRY", "false")],
        )
        .await;
        assert_eq!(
            end,
            ProcessEnd::Exited(0),
            "schemathesis found problems:\n{out}\nthe manager's log:\n{}",
            api.m.log_text()
        );
        assert!(out.contains("passed"), "{out}");
        api.stop().await;
    })
    .await
    .expect("watchdog");
}
