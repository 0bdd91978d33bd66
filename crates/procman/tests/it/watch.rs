//! `procman run --watch-config`: a change of the config file (also by an
//! editor's rename over it) or of an `env_file` it names reloads, through
//! inotify; an invalid edit changes nothing and the next valid one applies.

use std::os::unix::fs::PermissionsExt;

use crate::cli_control::{svc, svc_with, Running};
use crate::support::*;

fn pid_of(ps: &[procman_api::Process], id: &str) -> Option<u32> {
    ps.iter().find(|p| p.id == id).and_then(|p| p.pid)
}

fn write_env(t: &Scratch, text: &str) {
    let file = t.path("app.env");
    std::fs::write(&file, text).expect("env file");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_env_file_or_config_reloads_and_an_invalid_edit_changes_nothing() {
    let t = Scratch::new();
    write_env(&t, "GREETING=one\n");
    let env_line = format!("  env_file: \"{}\"", t.path("app.env").display());
    let entries = format!(
        "{}{}",
        svc_with(&t, "env", &["run"], &env_line),
        svc(&t, "other", &["run"])
    );
    let header = t.header();
    let header_and = |extra: &str| format!("{header}{entries}{extra}");
    let m = Running::launch_with(t, &entries, &["--watch-config"]);
    let ps = m
        .wait_until("both running", |ps| ps.iter().all(|p| p.state == "running"))
        .await;
    let (env1, other1) = (pid_of(&ps, "env").unwrap(), pid_of(&ps, "other").unwrap());

    // The env file changes: `env` restarts with it, `other` is left alone.
    write_env(&m.t, "GREETING=two\n");
    let ps = m
        .wait_until("env restarted after its env_file changed", |ps| {
            pid_of(ps, "env").is_some_and(|p| p != env1) && ps.iter().all(|p| p.state == "running")
        })
        .await;
    assert_eq!(pid_of(&ps, "other"), Some(other1), "{}", m.log());
    let env2 = pid_of(&ps, "env").unwrap();

    // An invalid edit: refused, logged, nothing changes.
    let config = m.t.path("procman.yaml");
    std::fs::write(&config, header_and("  - id: \"broken\"\n    typo_key: 1\n")).unwrap();
    let log = m.wait_manager_log("reload refused").await;
    assert!(log.contains("typo_key"), "the error names the key:\n{log}");
    let ps = m.client().processes().await.expect("list");
    assert_eq!(ps.len(), 2);
    assert_eq!(pid_of(&ps, "env"), Some(env2));
    assert_eq!(pid_of(&ps, "other"), Some(other1));

    // An editor's save: a new file renamed over the config. It adds one.
    let added = svc(&m.t, "added", &["run"]);
    let tmp = m.t.path(".procman.yaml.swp");
    std::fs::write(&tmp, header_and(&added)).unwrap();
    std::fs::rename(&tmp, &config).unwrap();
    let ps = m
        .wait_until("added running", |ps| {
            ps.iter().any(|p| p.id == "added" && p.state == "running")
        })
        .await;
    assert_eq!(pid_of(&ps, "env"), Some(env2), "{}", m.log());
    assert_eq!(pid_of(&ps, "other"), Some(other1), "{}", m.log());
    m.stop().await;
}
