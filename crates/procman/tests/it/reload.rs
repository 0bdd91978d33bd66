//! Hot reload of a real `procman run`: the test rewrites the config file
//! the manager was started with and asks for a reload (`procman reload`,
//! SIGHUP, the REST route). What a user sees is judged: the PIDs the
//! manager reports and the ones alive in `/proc`, the processes' log files,
//! `procman status`, the printed plan and the manager log. An invalid file
//! changes nothing; a dry run changes nothing.

use std::time::{Duration, Instant};

use procman_api::{ProcessChange, ReloadPlan};
use procman_core::outcome::Signal;
use procman_core::platform::signal_process;

use crate::cli_control::{cli, svc, svc_with, table_rows, Output, Running, SETTLE};
use crate::support::*;

mod edges;
mod settings;

/// Restarts at once, for ever: a killed process comes back.
const ALWAYS: &str =
    "restart_policy:\n  strategy: always\n  max_attempts: 0\n  restart_delay: 100ms\n";

/// SIGHUP: a reload for the manager, a line `got SIGHUP` from the child.
fn hup() -> Signal {
    Signal(rustix::process::Signal::HUP.as_raw())
}

/// Replaces the manager's config file with its header and `entries`.
fn rewrite(m: &Running, entries: &str) {
    rewrite_whole(m, &format!("{}{entries}", m.t.header()));
}

/// Replaces the manager's config file with `yaml`.
fn rewrite_whole(m: &Running, yaml: &str) {
    std::fs::write(&m.file, yaml).expect("rewrite the config");
}

/// `procman reload ARGS -c <its config>`, which must succeed.
async fn reload(m: &Running, args: &[&str]) -> Output {
    let mut all = vec!["reload"];
    all.extend_from_slice(args);
    let out = m.cli(&all).await;
    out.ok();
    out
}

/// The state directory, as `--state-dir` takes it.
fn state_dir(m: &Running) -> String {
    m.t.path("state").display().to_string()
}

/// The pid the manager reports for `id` (which must have one).
async fn pid_of(m: &Running, id: &str) -> u32 {
    let p = m.process(id).await;
    p.pid.unwrap_or_else(|| panic!("{id} has no pid: {p:#?}"))
}

/// The ids the manager reports, in its order.
async fn ids(m: &Running) -> Vec<String> {
    let ps = m.client().processes().await.expect("processes");
    ps.into_iter().map(|p| p.id).collect()
}

fn change(id: &str, keys: &[&str]) -> Vec<ProcessChange> {
    vec![ProcessChange {
        id: id.to_string(),
        keys: keys.iter().map(|k| k.to_string()).collect(),
    }]
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// `keep` (restarted once by its policy before the reload), `change`,
/// `gone`; then the file keeps `keep`, gives `change` other arguments,
/// drops `gone` and adds `new`.
struct Mixed {
    before: String,
    after: String,
}

impl Mixed {
    fn new(t: &Scratch) -> Mixed {
        let keep = svc_with(t, "keep", &["run"], ALWAYS);
        let before = [
            keep.clone(),
            svc(t, "change", &["run"]),
            svc(t, "gone", &["run"]),
        ]
        .concat();
        let after = [
            keep,
            svc(t, "change", &["run", "--term-exit", "0"]),
            svc(t, "new", &["run"]),
        ]
        .concat();
        Mixed { before, after }
    }
}

/// The plan of [`Mixed`], as `procman reload` prints it.
fn assert_mixed_plain(out: &Output, verb: &str) {
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines,
        [
            format!("{verb}: 1 added, 1 removed, 1 changed, 0 changed in place, 1 unchanged"),
            "  added      new".to_string(),
            "  removed    gone".to_string(),
            "  restart    change: management.control.arguments".to_string(),
        ],
        "{out:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_adds_removes_and_restarts_and_leaves_the_rest_alone() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let mixed = Mixed::new(&t);
        let m = Running::start(t, &mixed.before).await;

        // `keep` has a history the reload must not touch: one restart.
        let keep_first = pid_of(&m, "keep").await;
        m.wait_log("keep", &format!("ready pid={keep_first}")).await;
        signal_process(keep_first, Signal::KILL).expect("kill keep");
        let keep = m
            .wait_until("keep restarted once", |ps| {
                ps.iter().any(|p| {
                    p.id == "keep"
                        && p.state == "running"
                        && p.restarts == 1
                        && p.pid.is_some_and(|pid| pid != keep_first)
                })
            })
            .await;
        let keep_pid = keep.iter().find(|p| p.id == "keep").and_then(|p| p.pid);
        let keep_pid = keep_pid.expect("keep's pid");
        m.wait_log("keep", &format!("ready pid={keep_pid}")).await;
        let change_old = pid_of(&m, "change").await;
        let gone = pid_of(&m, "gone").await;

        rewrite(&m, &mixed.after);
        let out = reload(&m, &[]).await;
        assert_mixed_plain(&out, "reloaded");

        // The old `change` and `gone` have ended; `change` and `new` run.
        wait_gone(&[change_old, gone], SETTLE).await;
        let ps = m
            .wait_until("change and new running", |ps| {
                ["change", "new"]
                    .iter()
                    .all(|id| ps.iter().any(|p| p.id == *id && p.state == "running"))
            })
            .await;
        assert_eq!(ids(&m).await, ["keep", "change", "new"]);
        let change_new = pid_of(&m, "change").await;
        assert_ne!(change_new, change_old, "change was not restarted");
        assert!(alive(change_new) && alive(pid_of(&m, "new").await));

        // `keep`: the same run, the same counters.
        let k = ps.iter().find(|p| p.id == "keep").expect("keep");
        assert_eq!(
            (k.pid, k.restarts, k.runs),
            (Some(keep_pid), 1, 2),
            "{k:#?}"
        );
        assert_eq!(k.state, "running");
        assert!(alive(keep_pid));

        // `procman status` knows nothing of `gone`.
        let out = m.cli(&["status"]).await;
        out.ok();
        let rows: Vec<String> = table_rows(&out.stdout)
            .into_iter()
            .map(|r| r["ID"].clone())
            .collect();
        assert_eq!(rows, ["keep", "change", "new"], "{out:#?}");
        let out = m.cli(&["status", "gone"]).await;
        assert_ne!(out.code(), 0, "{out:#?}");

        // `keep`'s log: the lines of both runs, and new ones after.
        signal_process(keep_pid, hup()).expect("HUP keep");
        let log = m.wait_log("keep", "got SIGHUP").await;
        for earlier in [keep_first, keep_pid] {
            assert!(
                log.contains(&format!("ready pid={earlier}")),
                "keep's log lost ready pid={earlier}:\n{log}"
            );
        }
        m.stop().await;
    })
    .await
    .expect("watchdog");
}

/// The lines in `file` (none when it does not exist yet).
fn line_count(file: &std::path::Path) -> usize {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_health_check_interval_applies_to_the_running_process() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let count = t.path("checks");
        let script = format!("echo x >> {}", count.display());
        let check = |interval: &str| {
            format!(
                "health_check:\n  type: exec\n  command: [\"sh\", \"-c\", {script:?}]\n  interval: {interval}\n"
            )
        };
        let slow = svc_with(&t, "p", &["run"], &check("30s"));
        let fast = svc_with(&t, "p", &["run"], &check("200ms"));
        // Running: its first check has passed; the next is 30 s away.
        let m = Running::start(t, &slow).await;
        let pid = pid_of(&m, "p").await;
        let checked = line_count(&count);
        assert!(checked >= 1, "running before any check");

        rewrite(&m, &fast);
        let plan: ReloadPlan = reload(&m, &["-o", "json"]).await.json();
        assert_eq!(
            plan.changed_in_place,
            change("p", &["management.health_check"]),
            "{plan:#?}"
        );
        assert!(plan.changed.is_empty() && !plan.dry_run, "{plan:#?}");

        // Five more checks: at the old interval that would take minutes.
        let deadline = Instant::now() + SETTLE;
        while line_count(&count) < checked + 5 {
            assert!(
                Instant::now() < deadline,
                "{} checks in {SETTLE:?} after the reload (was {checked}); manager log:\n{}",
                line_count(&count),
                m.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let p = m.process("p").await;
        assert_eq!((p.pid, p.runs, p.state.as_str()), (Some(pid), 1, "running"), "{p:#?}");
        assert_eq!(p.health.as_deref(), Some("healthy"), "{p:#?}");
        assert!(alive(pid));
        m.stop().await;
    })
    .await
    .expect("watchdog");
}

/// `a` and `b`, and a version of the file with two errors (an unknown
/// key, a bad duration) that also adds `c`: its text, and each error's
/// line and column (the unknown key, the bad value).
fn broken(t: &Scratch) -> (String, String, Vec<(usize, usize)>) {
    let good = [svc(t, "a", &["run"]), svc(t, "b", &["run"])].concat();
    let text = t.header()
        + &svc_with(
            t,
            "a",
            &["run"],
            "restart_policy:\n  restart_delay: 5 parsecs\n",
        )
        + &svc_with(t, "b", &["run"], "restart_polcy:\n  strategy: always\n")
        + &svc(t, "c", &["run"]);
    let at = |token: &str| {
        let (n, line) = text
            .lines()
            .enumerate()
            .find(|(_, l)| l.contains(token))
            .expect("the token");
        (n + 1, line.find(token).expect("the token") + 1)
    };
    let errors = vec![at("5 parsecs"), at("restart_polcy")];
    (good, text, errors)
}

/// Asserts that `text` names each of `errors` as `FILE:LINE:COL:`.
fn assert_located(text: &str, file: &str, errors: &[(usize, usize)]) {
    for (line, col) in errors {
        let at = format!("{file}:{line}:{col}:");
        assert!(text.contains(&at), "no {at} in:\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_file_changes_nothing_and_says_every_error() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let (good, text, errors) = broken(&t);
        let fixed = good.clone() + &svc(&t, "c", &["run"]);
        let m = Running::start(t, &good).await;
        let pids = [pid_of(&m, "a").await, pid_of(&m, "b").await];

        rewrite_whole(&m, &text);
        // Through the state directory, the manager reads the file: 422.
        let out = cli(&["reload", "--state-dir", &state_dir(&m)]).await;
        assert_eq!(out.code(), 2, "{out:#?}");
        assert_eq!(out.stdout, "", "{out:#?}");
        assert_located(&out.stderr, &m.file, &errors);
        assert!(out.stderr.contains("nothing was changed"), "{out:#?}");
        let log = m
            .wait_manager_log("reload refused; nothing was changed")
            .await;
        assert_located(&log, &m.file, &errors);
        // With `-c`, the CLI reads the broken file itself first.
        let out = m.cli(&["reload"]).await;
        assert_eq!(out.code(), 2, "{out:#?}");
        assert_located(&out.stderr, &m.file, &errors);

        assert_eq!(ids(&m).await, ["a", "b"]);
        for (id, pid) in ["a", "b"].iter().zip(pids) {
            assert_eq!(pid_of(&m, id).await, pid, "{id}");
            assert!(alive(pid), "{id}");
        }
        assert!(!m.log().contains("config reloaded"), "{}", m.log());

        // Mended, the same reload goes through.
        rewrite(&m, &fixed);
        let plan: ReloadPlan = cli(&["reload", "--state-dir", &state_dir(&m), "-o", "json"])
            .await
            .ok()
            .json();
        assert_eq!(plan.added, ["c"], "{plan:#?}");
        assert_eq!(plan.unchanged, ["a", "b"], "{plan:#?}");
        m.wait_until("c running", |ps| {
            ps.iter().any(|p| p.id == "c" && p.state == "running")
        })
        .await;
        for (id, pid) in ["a", "b"].iter().zip(pids) {
            assert_eq!(pid_of(&m, id).await, pid, "{id}");
        }
        m.stop().await;
    })
    .await
    .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_prints_the_plan_and_changes_nothing() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let mixed = Mixed::new(&t);
        let m = Running::start(t, &mixed.before).await;
        let ids_before = ["keep", "change", "gone"];
        let mut pids = Vec::new();
        for id in ids_before {
            pids.push(pid_of(&m, id).await);
        }

        rewrite(&m, &mixed.after);
        let out = reload(&m, &["--dry-run"]).await;
        assert_mixed_plain(&out, "would reload");
        let plan: ReloadPlan = reload(&m, &["--dry-run", "-o", "json"]).await.json();
        let want = ReloadPlan {
            dry_run: true,
            added: strings(&["new"]),
            removed: strings(&["gone"]),
            changed: change("change", &["management.control.arguments"]),
            changed_in_place: Vec::new(),
            unchanged: strings(&["keep"]),
            manager: Vec::new(),
            manager_restart_needed: false,
        };
        assert_eq!(plan, want);

        // Nothing happened: the same processes, the same runs.
        assert_eq!(ids(&m).await, ids_before);
        for (id, pid) in ids_before.iter().zip(&pids) {
            let p = m.process(id).await;
            assert_eq!(
                (p.pid, p.runs, p.state.as_str()),
                (Some(*pid), 1, "running"),
                "{p:#?}"
            );
            assert!(alive(*pid), "{id}");
        }
        assert!(!m.log().contains("config reloaded"), "{}", m.log());
        // And the plan is still to be done.
        let out = reload(&m, &[]).await;
        assert_mixed_plain(&out, "reloaded");
        wait_gone(&[pids[2]], SETTLE).await;
        m.stop().await;
    })
    .await
    .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_config() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let a = svc(&t, "a", &["run"]);
        let both = a.clone() + &svc(&t, "b", &["run"]);
        let m = Running::start(t, &a).await;
        let pid = pid_of(&m, "a").await;
        assert_eq!(ids(&m).await, ["a"]);

        rewrite(&m, &both);
        signal_process(m.pid, hup()).expect("HUP the manager");
        m.wait_until("b running", |ps| {
            ps.iter().any(|p| p.id == "b" && p.state == "running")
        })
        .await;
        assert_eq!(pid_of(&m, "a").await, pid);
        let log = m.wait_manager_log("config reloaded").await;
        let line = log
            .lines()
            .find(|l| l.contains("config reloaded"))
            .expect("the line");
        assert!(
            line.contains("added=b") && line.contains("unchanged=1"),
            "{line}"
        );
        m.stop().await;
    })
    .await
    .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_env_file_contents_restart_the_process_with_them() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let env = t.path("p.env");
        std::fs::write(&env, "GREETING=one\n").expect("write the env file");
        let stamp = t.path("p.stamp").display().to_string();
        let entry = child_entry(
            "p",
            &["--stamp", &stamp, "env", "--stay"],
            &control_keys(&format!("env_file: {:?}", env.display().to_string())),
        );
        let m = Running::start(t, &entry).await;
        let pid = pid_of(&m, "p").await;
        m.wait_log("p", "env GREETING=one").await;

        // The config file is the same; only what its env_file holds changed.
        std::fs::write(&env, "GREETING=two\n").expect("rewrite the env file");
        let plan: ReloadPlan = reload(&m, &["-o", "json"]).await.json();
        let key = "management.control.env_file (its contents)";
        assert_eq!(plan.changed, change("p", &[key]), "{plan:#?}");
        wait_gone(&[pid], SETTLE).await;
        m.wait_log("p", "env GREETING=two").await;
        let new = pid_of(&m, "p").await;
        assert_ne!(new, pid);

        // Applied: the next reload finds nothing to do.
        let plan: ReloadPlan = reload(&m, &["-o", "json"]).await.json();
        assert_eq!(plan.unchanged, ["p"], "{plan:#?}");
        assert_eq!(pid_of(&m, "p").await, new);
        m.stop().await;
    })
    .await
    .expect("watchdog");
}
