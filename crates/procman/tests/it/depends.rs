//! `depends_on` on real processes: the order of starts as the children's
//! own stamps say, `healthy` waiting for a real check, `completed_successfully`
//! waiting for a batch job (and a failed job leaving its dependent
//! `waiting`, with the reason), the reverse order at shutdown, a refused
//! `procman start` and `--with-deps`, and cycles named by `validate`.

use std::path::Path;
use std::time::Duration;

use procman_api::client::ClientError;
use procman_core::manager::Manager;
use procman_core::outcome::ProcessEnd;
use procman_core::supervisor::{Lifecycle, Phase};

use crate::cli_control::{svc_with, Running};
use crate::support::*;

/// Long enough for anything on a loaded machine.
const SETTLE: Duration = Duration::from_secs(30);

/// The test child with `args` as process `id`, stamping into `<id>.stamp`;
/// `management`: YAML under `management:` (two spaces per level, from 0);
/// `process`: YAML at the level of `management:` (`depends_on: [a]`).
fn entry(t: &Scratch, id: &str, args: &[&str], management: &str, process: &str) -> String {
    let stamp = stamp_of(t, id).display().to_string();
    let mut all = vec!["--stamp", stamp.as_str()];
    all.extend_from_slice(args);
    let indent = |text: &str, by: &str| -> String {
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| format!("{by}{l}\n"))
            .collect()
    };
    child_entry(
        id,
        &all,
        &(indent(management, "      ") + &indent(process, "    ")),
    )
}

fn stamp_of(t: &Scratch, id: &str) -> std::path::PathBuf {
    t.path(&format!("{id}.stamp"))
}

/// The time of the first stamp of `kind` in `id`'s stamp file. A start
/// stamp is waited for (a process without a check is `running` once
/// spawned, a moment before the child writes it); an end stamp is written
/// before the child exits.
async fn first(t: &Scratch, id: &str, kind: char) -> u64 {
    if kind == 'S' {
        wait_starts(&stamp_of(t, id), 1, SETTLE).await;
    }
    stamps(&stamp_of(t, id))
        .into_iter()
        .find(|(k, ..)| *k == kind)
        .map(|(_, ns, _)| ns)
        .unwrap_or_else(|| panic!("no {kind} stamp from {id}"))
}

/// CLOCK_MONOTONIC in nanoseconds, as the test child stamps it.
fn now_ns() -> u64 {
    let ts = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

async fn running(m: &Manager, id: &str) {
    let h = m.handle(id).expect("a process");
    wait_status(&h, SETTLE, &format!("{id} running"), |s| {
        s.phase() == Phase::Running
    })
    .await;
}

/// An exec health check that passes once `file` exists, every 100 ms.
fn check_for(file: &Path) -> String {
    format!(
        "health_check:\n  type: exec\n  command: [\"test\", \"-f\", \"{}\"]\n  interval: 100ms\n",
        file.display()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chain_starts_in_order_and_an_independent_process_does_not_wait() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        // a and b are ready once their child has written its start stamp
        // (spawned is not enough: the child may not have run yet).
        let check_a = check_for(&stamp_of(&t, "a"));
        let check_b = check_for(&stamp_of(&t, "b"));
        let yaml = t.header()
            + &entry(&t, "c", &["run"], "", "depends_on: [b]")
            + &entry(
                &t,
                "b",
                &["run"],
                &check_b,
                "depends_on: [{id: a, condition: healthy}]",
            )
            + &entry(&t, "a", &["run"], &check_a, "")
            + &entry(&t, "d", &["run"], "", "");
        let m = t.manager(&yaml);
        let mut events = m.control().events();
        m.start().await;
        for id in ["a", "b", "c", "d"] {
            running(&m, id).await;
        }
        let (a, b) = (first(&t, "a", 'S').await, first(&t, "b", 'S').await);
        let c = first(&t, "c", 'S').await;
        assert!(a < b && b < c, "a {a} < b {b} < c {c}");
        // c was held back (b needs a passing check first); d went
        // straight from registered to starting.
        let mut seen = Vec::new();
        while let Ok(e) = events.try_recv() {
            seen.push((e.process.to_string(), e.transition.from, e.transition.to));
        }
        let of = |id: &str| -> Vec<(Phase, Phase)> {
            seen.iter()
                .filter(|(p, ..)| p == id)
                .map(|(_, from, to)| (*from, *to))
                .collect()
        };
        assert!(
            of("c").contains(&(Phase::Registered, Phase::Waiting)),
            "{seen:?}"
        );
        assert_eq!(
            of("d"),
            [
                (Phase::Registered, Phase::Starting),
                (Phase::Starting, Phase::Running)
            ],
            "{seen:?}"
        );
        m.shutdown().await;
    })
    .await
    .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthy_waits_for_the_first_passing_check() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let ready = t.path("ready");
        let yaml = t.header()
            + &entry(&t, "db", &["run"], &check_for(&ready), "")
            + &entry(
                &t,
                "api",
                &["run"],
                "",
                "depends_on: [{id: db, condition: healthy}]",
            );
        let m = t.manager(&yaml);
        m.start().await;
        let api = m.handle("api").expect("api");
        // (It may wait first for a db not started yet.)
        let want = "waiting for db to be healthy (db is starting)";
        wait_status(&api, SETTLE, want, |s| {
            s.lifecycle
                == Lifecycle::Waiting {
                    reason: want.into(),
                }
        })
        .await;
        // Checks fail while the file is missing: api stays held back.
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(api.status().phase(), Phase::Waiting);
        assert!(!stamp_of(&t, "api").exists(), "api started early");
        let created = now_ns();
        std::fs::write(&ready, "").expect("ready file");
        running(&m, "api").await;
        let started = first(&t, "api", 'S').await;
        assert!(
            started > created,
            "api started at {started}, the file came at {created}"
        );
        m.shutdown().await;
    })
    .await
    .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completed_successfully_waits_for_the_job_and_a_failed_job_holds_back() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let never = "restart_policy:\n  strategy: never\n";
        let batch = "profile_type: batch\n";
        let after =
            |job: &str| format!("depends_on: [{{id: {job}, condition: completed_successfully}}]");
        let yaml = t.header()
            + &entry(&t, "migrate", &["sleep", "1s"], never, batch)
            + &entry(&t, "api", &["run"], "", &after("migrate"))
            + &entry(&t, "broken", &["exit", "1"], never, batch)
            + &entry(&t, "worker", &["run"], "", &after("broken"));
        let m = t.manager(&yaml);
        m.start().await;
        running(&m, "api").await;
        let ended = first(&t, "migrate", 'E').await;
        let started = first(&t, "api", 'S').await;
        assert!(
            ended < started,
            "the job ended at {ended}, api started at {started}"
        );
        assert!(matches!(
            m.handle("migrate").expect("migrate").status().lifecycle,
            Lifecycle::Exited {
                end: ProcessEnd::Exited(0)
            }
        ));

        let worker = m.handle("worker").expect("worker");
        let want = "waiting for broken to complete successfully (broken exited with code 1)";
        wait_status(&worker, SETTLE, want, |s| {
            s.lifecycle
                == Lifecycle::Waiting {
                    reason: want.into(),
                }
        })
        .await;
        assert!(!stamp_of(&t, "worker").exists(), "worker started");
        m.shutdown().await;
    })
    .await
    .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_stops_dependents_before_what_they_depend_on() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        // Each child ends on SIGTERM after 200 ms and stamps its end: a
        // dependency stopped at once would end before its dependent.
        let args = ["run", "--term-delay", "200ms"];
        let yaml = t.header()
            + &entry(&t, "a", &args, "", "")
            + &entry(&t, "b", &args, "", "depends_on: [a]")
            + &entry(&t, "c", &args, "", "depends_on: [b]")
            + &entry(&t, "d", &args, "", "depends_on: [a]")
            // Unrelated and slow to stop: it holds back nothing.
            + &entry(&t, "slow", &["run", "--term-delay", "4s"], "", "");
        let m = t.manager(&yaml);
        m.start().await;
        for id in ["a", "b", "c", "d", "slow"] {
            running(&m, id).await;
            // Its handler for SIGTERM is in place (a child that is
            // `running` may not have got that far yet).
            let log = t.path("state").join("logs").join(format!("{id}.log"));
            wait_file(&log, "ready pid=", SETTLE).await;
        }
        m.shutdown().await;
        let (a, b) = (first(&t, "a", 'E').await, first(&t, "b", 'E').await);
        let (c, d) = (first(&t, "c", 'E').await, first(&t, "d", 'E').await);
        assert!(c < b && b < a, "c {c} < b {b} < a {a}");
        assert!(d < a, "d {d} < a {a}");
        let slow = first(&t, "slow", 'E').await;
        assert!(
            a + 1_500_000_000 < slow,
            "the chain ended ({a}) without waiting for the unrelated slow process ({slow})"
        );
    })
    .await
    .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_refuses_a_process_whose_dependency_is_stopped_unless_with_deps() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let entries = svc_with(&t, "db", &["run"], "") + &api_after_db(&t);
        let m = Running::start(t, &entries).await;
        m.cli(&["stop", "api", "db"]).await.ok();

        let out = m.cli(&["start", "api"]).await;
        assert_eq!(out.code(), 1, "{out:#?}");
        assert!(
            out.stderr
                .contains("cannot start api: it depends on db, which is stopped"),
            "{out:#?}"
        );
        assert_eq!(m.process("api").await.state, "stopped");
        // The API names what is down.
        match m.client().start("api", true).await {
            Err(ClientError::Api { status, error }) => {
                assert_eq!((status, error.code.as_str()), (409, "dependencies_down"));
                let down: Vec<(&str, &str)> = error
                    .dependencies
                    .iter()
                    .map(|d| (d.id.as_str(), d.state.as_str()))
                    .collect();
                assert_eq!(down, [("db", "stopped")]);
            }
            other => panic!("expected a refusal: {other:?}"),
        }

        let out = m.cli(&["start", "api", "--with-deps"]).await;
        out.ok();
        let ps = m
            .wait_until("db and api running", |ps| {
                ps.iter().all(|p| p.state == "running")
            })
            .await;
        assert_eq!(ps.len(), 2);
        // Both run again, each in a second run of its own (the order of
        // starts is the first test's).
        for p in &ps {
            assert_eq!(p.runs, 2, "{p:#?}");
            let stamp = m.t.path(&format!("{}.stamp", p.id));
            let starts = wait_starts(&stamp, 2, SETTLE).await;
            let last = starts.iter().rev().find(|(k, ..)| *k == 'S').map(|s| s.2);
            assert_eq!(last, p.pid, "{p:#?}");
            assert!(p.pid.is_some_and(alive), "{p:#?}");
        }
        m.stop().await;
    })
    .await
    .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_deps_does_not_run_a_completed_job_again() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let never = "restart_policy:\n  strategy: never\n";
        let entries = svc_with(&t, "db", &["run"], "")
            + &svc_with(&t, "migrate", &["exit", "0"], never)
            + "    profile_type: batch\n"
            + &svc_with(&t, "api", &["run"], "")
            + "    depends_on:\n      - db\n      - id: migrate\n        condition: completed_successfully\n";
        let m = Running::launch(t, &entries);
        m.wait_until("db and api running, migrate done", |ps| {
            ps.iter().all(|p| match p.id.as_str() {
                "migrate" => p.state == "exited",
                _ => p.state == "running",
            })
        })
        .await;
        m.cli(&["stop", "api", "db"]).await.ok();
        m.cli(&["start", "api", "--with-deps"]).await.ok();
        let ps = m
            .wait_until("db and api running again", |ps| {
                ps.iter()
                    .filter(|p| p.id != "migrate")
                    .all(|p| p.state == "running" && p.runs == 2)
            })
            .await;
        let migrate = ps.iter().find(|p| p.id == "migrate").expect("migrate");
        assert_eq!((migrate.state.as_str(), migrate.runs), ("exited", 1), "{migrate:#?}");
        m.stop().await;
    })
    .await
    .expect("watchdog");
}

fn api_after_db(t: &Scratch) -> String {
    svc_with(t, "api", &["run"], "") + "    depends_on: [db]\n"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validate_names_a_cycle_by_its_path() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let yaml = t.header()
            + &entry(&t, "a", &["run"], "", "depends_on: [c]")
            + &entry(&t, "b", &["run"], "", "depends_on: [a]")
            + &entry(&t, "c", &["run"], "", "depends_on: [b]");
        let file = t.path("procman.yaml");
        std::fs::write(&file, yaml).expect("write config");
        let file_s = file.display().to_string();
        let (end, out) = run(Path::new(procman()), &["validate", "-c", &file_s], &[]).await;
        assert_eq!(end, ProcessEnd::Exited(2), "{out}");
        assert!(out.contains("dependency cycle: a -> c -> b -> a"), "{out}");
    })
    .await
    .expect("watchdog");
}
