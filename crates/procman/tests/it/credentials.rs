//! A switch of user or groups that cannot be made is an error, never
//! ignored: a refused `setgroups` (or `setresgid`, `setresuid`) is a spawn
//! error naming the step, on both spawn paths; a user or group that does
//! not exist, or that a manager which is not root cannot switch to, is a
//! validation error at its key.

use std::path::Path;
use std::time::{Duration, Instant};

use procman_core::outcome::ProcessEnd;
use procman_core::platform::{self, SpawnError, SpawnSpec, Stdio, Step, TreeRoot};

use crate::support::*;
use crate::users::root_or_skip;

/// More groups than Linux allows (`NGROUPS_MAX`): setgroups refuses them
/// on either spawn path (created inside its cgroup, or joining it itself).
fn refused_groups_spec() -> SpawnSpec {
    SpawnSpec {
        program: "/bin/true".into(),
        args: Vec::new(),
        cwd: "/".into(),
        env: Vec::new(),
        stdout: Stdio::Null,
        stderr: Stdio::Null,
        uid: Some(65534),
        gid: Some(65534),
        groups: Some((0..=65_536).collect()),
        nofile: None,
        hold: Vec::new(),
        kill_group_on_exit: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_setgroups_is_a_spawn_error_naming_the_step_on_both_paths() {
    if !root_or_skip("a_refused_setgroups_is_a_spawn_error_naming_the_step") {
        return;
    }
    let root = TreeRoot::create(
        &format!("procman-it-groups-{}", std::process::id()),
        &[],
        &[],
    );
    if !root.uses_cgroups() {
        skip_or_fail("the path into a cgroup: no cgroup v2 tree here");
    }
    let mut trees = [
        ("into a cgroup", root.tree("clone3")),
        ("without a cgroup", TreeRoot::without_cgroups().tree("fork")),
    ];
    let mut wrong = Vec::new();
    for (path, tree) in &mut trees {
        match platform::spawn(refused_groups_spec(), tree).await {
            Err(e @ SpawnError::Child { step, .. }) => {
                let text = e.to_string();
                let want = "setting the supplementary groups (setgroups) failed for /bin/true: ";
                if step != Step::Groups || !text.starts_with(want) {
                    wrong.push(format!("{path}: {text}"));
                }
            }
            Ok(s) => wrong.push(format!(
                "{path}: spawned pid {} with too many groups",
                s.child.pid()
            )),
            Err(e) => wrong.push(format!("{path}: not an identity error: {e}")),
        }
        // The refused child exits at once; its cgroup empties when reaped.
        let deadline = Instant::now() + Duration::from_secs(10);
        if !tree.wait_empty(None, deadline).await {
            wrong.push(format!("{path}: the refused child is still there"));
        }
        tree.remove();
    }
    root.remove();
    assert!(wrong.is_empty(), "{wrong:#?}");
}

/// `LINE:COL` of the value after `key: ` in the one line of `yaml` that
/// contains `key_value`.
fn at(yaml: &str, key_value: &str) -> String {
    let (n, line) = yaml
        .lines()
        .enumerate()
        .find(|(_, l)| l.contains(key_value))
        .unwrap_or_else(|| panic!("{key_value:?} not in the config"));
    let col = line.find(key_value).expect("found") + key_value.find(": ").expect("key: ") + 3;
    format!("{}:{col}", n + 1)
}

/// `procman validate -c FILE` run as `nobody` (no supplementary groups):
/// how it ended and what it printed.
pub async fn validate_as_nobody(t: &Scratch, yaml: &str) -> (ProcessEnd, String) {
    use std::os::unix::fs::PermissionsExt;
    // The private temp dir and the config must be readable by nobody.
    let mode = |p: &Path, m| std::fs::set_permissions(p, std::fs::Permissions::from_mode(m));
    mode(t.dir.path(), 0o755).expect("chmod dir");
    let file = t.path("procman.yaml");
    std::fs::write(&file, yaml).expect("config");
    mode(&file, 0o644).expect("chmod config");
    let args = [
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        procman(),
        "validate",
        "-c",
        &file.display().to_string(),
    ];
    run(Path::new("/usr/bin/setpriv"), &args, &[]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manager_that_is_not_root_refuses_other_users_and_groups_when_validating() {
    if !root_or_skip("a_manager_that_is_not_root_refuses_other_users_and_groups") {
        return;
    }
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let entry = |id: &str, control: &str| {
            format!(
                "  - id: {id}\n    management:\n      control:\n        executable: \"true\"\n{}",
                control_keys(control)
            )
        };
        // uid and gid 1 (daemon or bin) and 65534 (nobody) exist everywhere.
        let yaml = t.header()
            + &entry("other_user", "user: \"1\"")
            + &entry("itself", "user: \"65534\"\ngroup: \"65534\"")
            + &entry("other_group", "group: \"1\"")
            + &entry("root", "user: root");
        let (end, out) = validate_as_nobody(&t, &yaml).await;
        assert_eq!(end, ProcessEnd::Exited(2), "invalid config: {out}");
        let file = t.path("procman.yaml").display().to_string();
        let errors: Vec<&str> = out.lines().filter(|l| l.starts_with(&file)).collect();
        let want = [
            (at(&yaml, "user: \"1\""), 0, "user", "user `1`"),
            (at(&yaml, "group: \"1\""), 2, "group", "group `1`"),
            (at(&yaml, "user: root"), 3, "user", "user `root`"),
        ];
        assert_eq!(errors.len(), want.len(), "{out}");
        for (line, (at, index, key, what)) in errors.iter().zip(want) {
            let head =
                format!("{file}:{at}: managed_processes[{index}].management.control.{key}: ");
            assert_eq!(
                line.strip_prefix(&head),
                Some(
                    format!(
                        "procman runs as uid 65534 (nobody), not as root, so it cannot switch \
                         to {what}; run procman as root, or remove `{key}`"
                    )
                    .as_str()
                ),
                "{out}"
            );
        }
    })
    .await
    .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_user_or_group_is_a_validation_error_at_its_key() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let yaml = t.header()
            + &child_entry(
                "svc",
                &["run"],
                &control_keys("user: pmit-nobody\ngroup: \"4294967294\""),
            );
        let file = t.path("procman.yaml");
        std::fs::write(&file, &yaml).expect("config");
        let file = file.display().to_string();
        let (end, out) = run(Path::new(procman()), &["validate", "-c", &file], &[]).await;
        assert_eq!(end, ProcessEnd::Exited(2), "{out}");
        let key = "managed_processes[0].management.control";
        let (user_at, group_at) = (at(&yaml, "user: "), at(&yaml, "group: "));
        for want in [
            format!("{file}:{user_at}: {key}.user: user `pmit-nobody` does not exist"),
            format!("{file}:{group_at}: {key}.group: group `4294967294` does not exist"),
        ] {
            assert!(
                out.lines().any(|l| l == want),
                "missing {want:?} in:\n{out}"
            );
        }
    })
    .await
    .expect("watchdog");
}

/// Runs `procman run` on `config` inside a new user namespace that maps
/// every id to itself but denies `setgroups` (as unprivileged containers
/// do): the script's pid, its exit, and its output (the manager's log).
/// `Err` says why this machine cannot.
async fn run_where_setgroups_is_denied(
    t: &Scratch,
    config: &Path,
) -> Result<
    (
        u32,
        tokio::sync::oneshot::Receiver<ProcessEnd>,
        tempfile::NamedTempFile,
    ),
    String,
> {
    let (end, out) = run(Path::new("/bin/sh"), &["-c", "unshare --user true"], &[]).await;
    if end != ProcessEnd::Exited(0) {
        return Err(format!(
            "cannot create a user namespace ({end}): {}",
            out.trim()
        ));
    }
    // The namespace's creator writes its id maps from outside: the script
    // waits for the namespace, maps it, then lets procman start in it.
    let script = r#"set -e
cd "$1"
mkfifo ns-ready ns-go
unshare --user --setgroups=deny sh -c 'echo > ns-ready; read x < ns-go; exec "$1" run -c "$2"' sh "$2" "$3" &
ns=$!
echo $ns > manager.pid
read x < ns-ready
echo "0 0 4294967295" > /proc/$ns/uid_map
echo "0 0 4294967295" > /proc/$ns/gid_map
echo > ns-go
wait $ns"#;
    let dir = t.dir.path().display().to_string();
    let config = config.display().to_string();
    let args = ["-c", script, "sh", &dir, procman(), &config];
    Ok(start(Path::new("/bin/sh"), &args, &[]))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn where_setgroups_is_denied_the_process_fails_instead_of_keeping_root_groups() {
    let test = "where_setgroups_is_denied_the_process_fails";
    if !root_or_skip(test) {
        return;
    }
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let _cleanup = KillOnDrop(t.dir.path().display().to_string());
        let config = t.path("procman.yaml");
        let control = control_keys("user: nobody\nworking_directory: /");
        // The temp dir in its arguments: should it start (the bug), the
        // child is found and killed with the manager when the test fails.
        let scratch = t.dir.path().display().to_string();
        let args = ["env", "--stay", "--", &scratch];
        std::fs::write(&config, t.header() + &child_entry("svc", &args, &control)).expect("config");
        let (_, exit, out) = match run_where_setgroups_is_denied(&t, &config).await {
            Ok(started) => started,
            Err(why) => return skip_or_fail(&format!("{test}: {why}")),
        };
        let want = format!(
            "setting the supplementary groups (setgroups) failed for {}: \
             operation not permitted (errno 1)",
            child().display()
        );
        let log = wait_file(out.path(), &want, Duration::from_secs(30)).await;
        let manager: u32 = std::fs::read_to_string(t.path("manager.pid"))
            .expect("manager.pid")
            .trim()
            .parse()
            .expect("a pid");
        platform::signal_process(manager, procman_core::outcome::Signal::TERM).expect("SIGTERM");
        let end = tokio::time::timeout(Duration::from_secs(30), exit)
            .await
            .expect("procman stops")
            .expect("exit status");
        assert_eq!(end, ProcessEnd::Exited(0), "{log}");
    })
    .await
    .expect("watchdog");
}
