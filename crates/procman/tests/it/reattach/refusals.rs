//! What a new manager does not adopt: a pid that now names a stranger, a
//! run that ended while no manager ran (its restart policy decides), a
//! process tree with no state file, and a process whose id is no longer in
//! the config. Each is judged by what a user sees: pids, the processes
//! left alive, the manager log and the event journal.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recycled_pid_is_left_alone_and_the_process_started_afresh() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let entries = svc_with(&t, "web", &["run"], RESTART_AT_ONCE);
        let mut m = Running::start(t, &entries).await;
        let before = started_pids(&m, &["web"]).await;
        let old = before["web"];
        wait_recorded(&m, &before).await;
        m.crash().await;
        signal_process(old, Signal::KILL).expect("kill web");
        wait_gone(&[old], SETTLE).await;

        // A process of the test's own takes the place of `web` in its
        // state file: the pid is its, the start time is web's.
        let stamp = m.t.path("stranger.stamp");
        let stamp_arg = stamp.display().to_string();
        let (stranger, exit, _out) = start(child(), &["--stamp", &stamp_arg, "run"], &[]);
        wait_starts(&stamp, 1, SETTLE).await;
        let state = m.t.path("state");
        let mut record = ProcessRecord::load(&state, "web")
            .expect("readable")
            .expect("web's state file");
        assert_eq!(record.pid, Some(old));
        assert_ne!(record.start_time, adopt::start_time(stranger));
        record.pid = Some(stranger);
        record.save(&state).expect("save the state file");

        m.rerun().await;
        let ps = m
            .wait_until("web started afresh", |ps| {
                ps[0].state == "running" && ps[0].pid.is_some_and(|p| p != stranger && p != old)
            })
            .await;
        assert_eq!(starts(&m, "web", 2).await[1], ps[0].pid.expect("a pid"));
        let cgroups = std::fs::read_to_string(format!("/proc/{stranger}/cgroup")).expect("cgroup");
        assert!(alive(stranger), "the stranger was stopped");
        assert!(
            !cgroups.contains("procman-"),
            "the stranger was taken in: {cgroups}"
        );
        // The log has its own writer thread: its lines can follow the state.
        m.wait_manager_log("another process").await;
        assert!(
            m.log().contains("not re-attached") && m.log().contains("another process"),
            "the manager log does not say why web was not re-attached:\n{}",
            m.log()
        );
        assert_logged(&m, "web", "ended while no manager was running").await;

        let events = journal(&m).await;
        m.cli(&["shutdown"]).await.ok();
        assert_eq!(m.exited(SETTLE).await, ProcessEnd::Exited(0), "{}", m.log());
        assert!(
            alive(stranger),
            "the manager's shutdown stopped the stranger"
        );
        assert!(stamps(&stamp).iter().all(|(kind, ..)| *kind == 'S'));
        signal_process(stranger, Signal::TERM).expect("stop the stranger");
        assert_ne!(exit.await.expect("its end"), ProcessEnd::Unknown);
        let web = events_of(&events, "web");
        assert!(web.iter().all(|e| e.cause_kind != "reattached"), "{web:#?}");
        assert!(
            web.iter().any(|e| e.cause_kind == "ended_unsupervised"),
            "{web:#?}"
        );
    })
    .await
    .expect("watchdog");
}

/// A restart policy that restarts at once (the default waits a second).
const RESTART_AT_ONCE: &str = "restart_policy:\n  restart_delay: \"0s\"\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_that_died_while_no_manager_ran_is_judged_by_its_restart_policy() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let never = "restart_policy:\n  strategy: never\n";
        let entries = [
            svc_with(&t, "again", &["run"], RESTART_AT_ONCE),
            svc_with(&t, "once", &["run"], never),
        ]
        .concat();
        let mut m = Running::start(t, &entries).await;
        let before = started_pids(&m, &["again", "once"]).await;
        wait_recorded(&m, &before).await;
        m.crash().await;
        for pid in before.values() {
            signal_process(*pid, Signal::KILL).expect("kill");
        }
        wait_gone(&sorted(&before), SETTLE).await;

        m.rerun().await;
        let unsupervised = "ended while no manager was running";
        let ps = m
            .wait_until("again restarted", |ps| {
                ps[0].state == "running" && ps[0].pid.is_some_and(|p| p != before["again"])
            })
            .await;
        assert_eq!(ps[0].restarts, 1, "{:#?}", ps[0]);
        assert_eq!(starts(&m, "again", 2).await[1], ps[0].pid.expect("a pid"));
        assert_logged(&m, "again", unsupervised).await;

        let d = m
            .wait_detail("once", "once given up", |d| {
                matches!(d.process.state.as_str(), "failed" | "exited")
            })
            .await;
        let last = d.last_transition.clone().expect("a transition");
        assert_eq!(last.cause_kind, "ended_unsupervised", "{last:#?}");
        assert!(last.cause.starts_with(unsupervised), "{last:#?}");
        assert_eq!(d.process.pid, None, "{d:#?}");
        assert_eq!(
            starts(&m, "once", 1).await.len(),
            1,
            "once was started again"
        );
        let events = journal(&m).await;
        m.stop().await;
        let again = events_of(&events, "again");
        assert!(
            again
                .iter()
                .any(|e| e.cause_kind == "ended_unsupervised" && e.cause.starts_with(unsupervised)),
            "{again:#?}"
        );
    })
    .await
    .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leftover_tree_without_a_state_file_is_stopped() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let entries = [svc(&t, "kept", &["run"]), svc(&t, "lost", &["run"])].concat();
        let mut m = Running::start(t, &entries).await;
        if !m.client().manager().await.expect("manager").cgroups {
            skip_or_fail("the manager runs without cgroups (cgroups=false), so it cannot find a tree with no state file");
            m.stop().await;
            return;
        }
        let before = started_pids(&m, &["kept", "lost"]).await;
        wait_recorded(&m, &before).await;
        m.crash().await;
        ProcessRecord::remove(&m.t.path("state"), "lost").expect("remove the state file");

        m.rerun().await;
        let ps = m
            .wait_until("lost started afresh, kept re-attached", |ps| {
                ps.iter().all(|p| p.state == "running")
                    && ps[0].pid == Some(before["kept"])
                    && ps[1].pid.is_some_and(|p| p != before["lost"])
            })
            .await;
        wait_gone(&[before["lost"]], SETTLE).await;
        let now = sorted(&reported(&ps));
        assert_eq!(test_children(&m), now, "one copy of each, no more");
        assert_eq!(starts(&m, "lost", 2).await[1], ps[1].pid.expect("a pid"));
        m.wait_manager_log("left by an earlier manager").await;
        assert!(
            m.log().contains("left by an earlier manager"),
            "the manager log does not say it stopped a leftover:\n{}",
            m.log()
        );
        m.stop().await;
    })
    .await
    .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_no_longer_in_the_config_is_stopped_by_the_next_manager() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let entries = [svc(&t, "web", &["run"]), svc(&t, "old", &["run"])].concat();
        let mut m = Running::start(t, &entries).await;
        let before = started_pids(&m, &["web", "old"]).await;
        wait_recorded(&m, &before).await;
        m.crash().await;
        m.t.config(&format!("{}{}", m.t.header(), svc(&m.t, "web", &["run"])));

        m.rerun().await;
        let web = BTreeMap::from([("web".to_string(), before["web"])]);
        m.wait_until("web re-attached, old gone", |ps| all_running_as(ps, &web))
            .await;
        wait_gone(&[before["old"]], SETTLE).await;
        assert_eq!(ProcessRecord::ids(&m.t.path("state")), ["web"]);
        assert_eq!(test_children(&m), [before["web"]]);
        m.wait_manager_log("no longer in the config").await;
        assert!(
            m.log().contains("no longer in the config"),
            "the manager log does not say why old was stopped:\n{}",
            m.log()
        );
        m.stop().await;
    })
    .await
    .expect("watchdog");
}
