//! Running a process as another user, as `su -` and systemd do: the
//! user's uid, its primary group (or `group`), the supplementary groups
//! `initgroups` gives, and its `HOME`, `USER`, `LOGNAME` and `SHELL`; exec
//! health checks run the same way. (Switches that cannot be made are in
//! `credentials.rs`.)
//!
//! Switching users needs root: these tests say why they skip without it,
//! and fail instead when `CI` is set (CI runs as root).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use procman_core::manager::{Manager, Options};
use procman_core::outcome::ProcessEnd;
use procman_core::platform;
use procman_core::supervisor::Phase;

use crate::support::*;

/// True when this test runs as root. Otherwise says why it is skipped,
/// or fails when `CI` is set.
pub fn root_or_skip(test: &str) -> bool {
    if is_root() {
        return true;
    }
    skip_or_fail(&format!("{test}: switching users needs root"));
    false
}

/// Runs an administration command (useradd, groupadd, ...) to its end,
/// from a plain thread (the tests are async). `Err` holds its output.
fn admin(program: &str, args: &[&str]) -> Result<(), String> {
    // useradd and groupadd lock /etc/passwd and /etc/group: one at a time
    // in this process, and a few tries against other processes.
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (end, out) = std::thread::scope(|s| {
            s.spawn(|| {
                let (_, exit, out) = start(Path::new(program), args, &[]);
                let end = exit.blocking_recv().expect("exit status");
                (end, std::fs::read_to_string(out.path()).unwrap_or_default())
            })
            .join()
            .expect("admin thread")
        });
        if end == ProcessEnd::Exited(0) {
            return Ok(());
        }
        if !out.contains("lock") || Instant::now() > deadline {
            return Err(format!("{program} {args:?}: {end}: {out}"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A user created for one test: primary group `<name>p`, supplementary
/// groups `<name>a` and `<name>b`, home `/nonexistent/<name>`, shell
/// `/bin/sh`. Removed, with its groups, when dropped (a failing test
/// unwinds, so it is removed then too).
pub struct TestUser {
    pub name: String,
    pub uid: u32,
    /// Primary, then the two supplementary groups.
    pub gids: [u32; 3],
    pub home: String,
}

impl TestUser {
    pub fn create(tag: char) -> TestUser {
        let name = format!("pmit{}{tag}", std::process::id());
        let groups = ["p", "a", "b"].map(|g| format!("{name}{g}"));
        // Left over by a run that was killed with this same pid.
        drop(TestUser::remove(&name, &groups));
        for g in &groups {
            admin("groupadd", &[g]).unwrap_or_else(|e| panic!("{e}"));
        }
        let home = format!("/nonexistent/{name}");
        let supplementary = format!("{},{}", groups[1], groups[2]);
        let args = [
            "--no-create-home",
            "--no-user-group",
            "--home-dir",
            &home,
            "--shell",
            "/bin/sh",
            "--gid",
            &groups[0],
            "--groups",
            &supplementary,
            &name,
        ];
        admin("useradd", &args).unwrap_or_else(|e| panic!("{e}"));
        // Read back from the files themselves, not through procman's code.
        let field = |file: &str, key: &str, n: usize| -> u32 {
            std::fs::read_to_string(file)
                .expect(file)
                .lines()
                .map(|l| l.split(':').collect::<Vec<_>>())
                .find(|f| f[0] == key)
                .unwrap_or_else(|| panic!("{key} not in {file}"))[n]
                .parse()
                .expect("numeric id")
        };
        TestUser {
            uid: field("/etc/passwd", &name, 2),
            gids: [0, 1, 2].map(|i| field("/etc/group", &groups[i], 2)),
            home,
            name,
        }
    }

    fn remove(name: &str, groups: &[String; 3]) -> Result<(), String> {
        let mut result = admin("userdel", &[name]);
        for g in groups {
            result = result.and(admin("groupdel", &[g]));
        }
        result
    }

    fn group(&self, i: usize) -> String {
        format!("{}{}", self.name, ["p", "a", "b"][i])
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        let groups = [0, 1, 2].map(|i| self.group(i));
        if let Err(e) = TestUser::remove(&self.name, &groups) {
            eprintln!("cannot remove test user {}: {e}", self.name);
        }
    }
}

/// A `/proc/<pid>/status` line's numbers (`Uid`, `Gid`, `Groups`).
pub fn status_ids(pid: u32, key: &str) -> Vec<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .unwrap_or_default()
        .split_whitespace()
        .map(|n| n.parse().expect("numeric id"))
        .collect()
}

/// The `env K=V` lines of `procman-testchild env` in a raw log file.
fn env_lines(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("env ")?.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// An entry running `procman-testchild env --stay` directly (no shell
/// that could tidy its environment) as `control`, its output in a raw
/// log file (the user cannot write to the test's private directory).
fn env_entry(id: &str, control: &str) -> String {
    let control = control_keys(&format!("working_directory: /\n{control}"));
    child_entry(id, &["env", "--stay"], &control) + "      logging:\n        format: raw\n"
}

async fn identity_of(t: &Scratch, m: &Manager, id: &str) -> (u32, BTreeMap<String, String>) {
    let log = t.path("state").join("logs").join(format!("{id}.log"));
    let h = m.handle(id).expect("configured");
    let s = wait_status(&h, Duration::from_secs(20), "running", |s| {
        s.pid().is_some() || s.phase() == Phase::Failed
    })
    .await;
    let pid = s
        .pid()
        .unwrap_or_else(|| panic!("{id} did not start: {s:#?}"));
    let text = wait_file(&log, "ready pid=", Duration::from_secs(20)).await;
    (pid, env_lines(&text))
}

async fn user_gets_login_environment_and_groups(cgroups: bool) {
    let u = TestUser::create(if cgroups { 'c' } else { 'f' });
    let t = Scratch::new();
    let env_file = t.path("login.env");
    std::fs::write(&env_file, "LOGNAME=from-env-file\n").expect("env file");
    let yaml = t.header()
        + &env_entry("plain", &format!("user: {}", u.name))
        + &env_entry(
            "grouped",
            &format!("user: \"{}\"\ngroup: {}", u.uid, u.group(2)),
        )
        + &env_entry(
            "overridden",
            &format!(
                "user: {}\nenv_file: {:?}\nenvironment:\n  HOME: /x",
                u.name,
                env_file.display().to_string()
            ),
        );
    let m = Manager::with_options(
        t.config(&yaml),
        Options {
            cgroups,
            ..Options::default()
        },
    )
    .expect("manager");
    m.start().await;
    let [p, a, b] = u.gids;

    let (pid, env) = identity_of(&t, &m, "plain").await;
    assert_eq!(status_ids(pid, "Uid"), [u.uid; 4]);
    assert_eq!(status_ids(pid, "Gid"), [p; 4], "the user's primary group");
    assert_eq!(
        status_ids(pid, "Groups"),
        [p, a, b],
        "what initgroups gives: the primary and the user's memberships, none of root's"
    );
    assert_eq!(env.get("HOME"), Some(&u.home));
    assert_eq!(env.get("USER"), Some(&u.name));
    assert_eq!(env.get("LOGNAME"), Some(&u.name));
    assert_eq!(env.get("SHELL").map(String::as_str), Some("/bin/sh"));

    let (pid, env) = identity_of(&t, &m, "grouped").await;
    assert_eq!(status_ids(pid, "Uid"), [u.uid; 4], "a numeric uid");
    assert_eq!(
        status_ids(pid, "Gid"),
        [b; 4],
        "`group` is the primary group"
    );
    assert_eq!(
        status_ids(pid, "Groups"),
        [a, b],
        "built from `group`, as systemd's User= with Group=: the passwd primary is left out"
    );
    assert_eq!(env.get("USER"), Some(&u.name), "named as in the database");

    let (_, env) = identity_of(&t, &m, "overridden").await;
    assert_eq!(env.get("HOME").map(String::as_str), Some("/x"));
    assert_eq!(
        env.get("LOGNAME").map(String::as_str),
        Some("from-env-file")
    );
    assert_eq!(
        env.get("USER"),
        Some(&u.name),
        "what is not overridden stays"
    );
    m.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_gets_its_login_environment_and_initgroups_groups_inside_a_cgroup() {
    if !root_or_skip("a_user_gets_its_login_environment_and_initgroups_groups_inside_a_cgroup") {
        return;
    }
    tokio::time::timeout(WATCHDOG, user_gets_login_environment_and_groups(true))
        .await
        .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_gets_its_login_environment_and_initgroups_groups_without_a_cgroup() {
    if !root_or_skip("a_user_gets_its_login_environment_and_initgroups_groups_without_a_cgroup") {
        return;
    }
    tokio::time::timeout(WATCHDOG, user_gets_login_environment_and_groups(false))
        .await
        .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exec_health_check_runs_as_the_process_user_with_its_groups_and_environment() {
    if !root_or_skip("an_exec_health_check_runs_as_the_process_user") {
        return;
    }
    tokio::time::timeout(WATCHDOG, async {
        let u = TestUser::create('h');
        let t = Scratch::new();
        let [_, a, b] = u.gids;
        // Healthy only when the check itself has the process's identity.
        let script = format!(
            "test \"$(id -u):$(id -g):$HOME:$USER\" = \"{}:{b}:{}:{}\" && \
             grep -q '^Groups:[[:space:]]*{a} {b}[[:space:]]*$' /proc/self/status",
            u.uid, u.home, u.name
        );
        let control = control_keys(&format!(
            "user: {}\ngroup: {}\nworking_directory: /",
            u.name,
            u.group(2)
        ));
        let check = format!(
            "      health_check:\n        type: exec\n        command: [\"sh\", \"-c\", {script:?}]\n        interval: 5s\n        timeout: 5s\n"
        );
        let yaml = t.header() + &child_entry("svc", &["run"], &(control + &check));
        let m = t.manager(&yaml);
        m.start().await;
        let h = m.handle("svc").expect("configured");
        let s = wait_status(&h, Duration::from_secs(30), "running", |s| {
            s.phase() == Phase::Running
        })
        .await;
        let health = s.health.expect("health status");
        assert_eq!(health.last_result, "exit code 0", "{health:?}");
        m.shutdown().await;
    })
    .await
    .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_runs_the_process_as_that_user_with_its_primary_group() {
    if !root_or_skip("user_runs_the_process_as_that_user_with_its_primary_group") {
        return;
    }
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        // `/`: the private temp dir is not readable by `nobody`.
        let extra = control_keys("user: nobody\nworking_directory: /");
        let yaml = t.header() + &child_entry("svc", &["run"], &extra);
        let m = t.manager(&yaml);
        m.start().await;
        let h = m.handle("svc").unwrap();
        let s = wait_status(&h, Duration::from_secs(20), "running", |s| {
            s.pid().is_some()
        })
        .await;
        let pid = s.pid().unwrap();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let ids = |key: &str| -> Vec<String> {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .unwrap_or_default()
                .split_whitespace()
                .map(String::from)
                .collect()
        };
        assert_eq!(ids("Uid:"), ["65534"; 4], "{status}");
        assert_eq!(ids("Gid:"), ["65534"; 4], "{status}");
        assert_eq!(
            ids("Groups:"),
            ["65534"],
            "no supplementary group of root is kept"
        );
        m.shutdown().await;
    })
    .await
    .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manager_that_is_not_root_runs_a_process_as_itself_with_its_login_environment() {
    let test = "a_manager_that_is_not_root_runs_a_process_as_itself";
    if !root_or_skip(test) {
        return;
    }
    tokio::time::timeout(WATCHDOG, async {
        use std::os::unix::fs::{chown, PermissionsExt};
        let t = Scratch::new();
        let scratch = t.dir.path().display().to_string();
        let _cleanup = KillOnDrop(scratch.clone());
        // A directory of nobody's own inside the private temp dir.
        std::fs::set_permissions(t.dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
        let home = t.path("nobody");
        std::fs::create_dir(&home).expect("mkdir");
        chown(&home, Some(65534), Some(65534)).expect("chown");
        let config = home.join("procman.yaml");
        let state = home.join("state");
        // The temp dir among the arguments, for `KillOnDrop`.
        let control = control_keys("user: nobody\ngroup: \"65534\"\nworking_directory: /");
        let yaml = format!(
            "process_manager:\n  port: 0\n  state_dir: {:?}\nmanaged_processes:\n",
            state.display().to_string()
        ) + &child_entry("svc", &["env", "--stay", "--", &scratch], &control)
            + "      logging:\n        format: raw\n";
        std::fs::write(&config, yaml).expect("config");
        std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let config = config.display().to_string();
        let args = [
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            procman(),
            "run",
            "-c",
            &config,
        ];
        let (manager, exit, out) = start(Path::new("/usr/bin/setpriv"), &args, &[]);
        let log = state.join("logs").join("svc.log");
        let text = wait_file(&log, "ready pid=", Duration::from_secs(30)).await;
        let pid = pids_in(&text, "ready")[0];
        let env = env_lines(&text);
        let passwd = std::fs::read_to_string("/etc/passwd").expect("passwd");
        let nobody_home = passwd
            .lines()
            .find_map(|l| l.strip_prefix("nobody:"))
            .and_then(|rest| rest.split(':').nth(4))
            .expect("nobody in /etc/passwd");
        assert_eq!(env.get("HOME").map(String::as_str), Some(nobody_home));
        assert_eq!(env.get("USER").map(String::as_str), Some("nobody"));
        assert_eq!(status_ids(pid, "Uid"), [65534; 4]);
        assert_eq!(status_ids(pid, "Gid"), [65534; 4]);
        assert_eq!(
            status_ids(pid, "Groups"),
            Vec::<u32>::new(),
            "the manager's own (none), untouched: only root may set them"
        );
        platform::signal_process(manager, procman_core::outcome::Signal::TERM).expect("SIGTERM");
        let end = tokio::time::timeout(Duration::from_secs(30), exit)
            .await
            .expect("procman stops")
            .expect("exit status");
        let output = std::fs::read_to_string(out.path()).unwrap_or_default();
        assert_eq!(end, ProcessEnd::Exited(0), "{output}");
    })
    .await
    .expect("watchdog");
}
