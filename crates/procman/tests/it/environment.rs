//! What a child inherits: the manager's environment plus the config's
//! overrides (`environment`, `env_file`), its working directory, stdin
//! from /dev/null, its own session and process group, and its arguments
//! exactly as written, with no shell in between.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use procman_core::manager::Manager;
use procman_core::supervisor::{Lifecycle, Phase};

use crate::support::*;

/// What `procman-testchild env` printed, parsed.
#[derive(Debug)]
struct EnvReport {
    /// Values as the child escaped them (see [`escape`]).
    env: BTreeMap<String, String>,
    cwd: String,
    ids: BTreeMap<String, u32>,
    fds: String,
    stdin: String,
}

impl EnvReport {
    fn parse(text: &str) -> EnvReport {
        let mut r = EnvReport {
            env: BTreeMap::new(),
            cwd: String::new(),
            ids: BTreeMap::new(),
            fds: String::new(),
            stdin: String::new(),
        };
        for line in text.lines() {
            if let Some(kv) = line.strip_prefix("env ") {
                let (k, v) = kv.split_once('=').expect("env KEY=VALUE");
                r.env.insert(k.to_string(), v.to_string());
            } else if let Some(cwd) = line.strip_prefix("cwd ") {
                r.cwd = cwd.to_string();
            } else if let Some(fds) = line.strip_prefix("fds ") {
                r.fds = fds.to_string();
            } else if let Some(stdin) = line.strip_prefix("stdin ") {
                r.stdin = stdin.to_string();
            } else if line.starts_with("pgid=") {
                for word in line.split_whitespace() {
                    let (k, v) = word.split_once('=').expect("id=N");
                    r.ids.insert(k.to_string(), v.parse().expect("numeric id"));
                }
            }
        }
        r
    }

    fn var(&self, key: &str) -> Option<&str> {
        self.env.get(key).map(String::as_str)
    }
}

/// The test child's escaping of a value on its `env` lines: `\\`, `\n`,
/// `\r`, `\t` C-style, other control bytes and invalid UTF-8 as `\xNN`.
fn escape(value: &OsStr) -> String {
    let mut out = String::new();
    for chunk in value.as_bytes().utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if c.is_ascii_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// Variables the `sh -c 'exec child > FILE'` wrapper itself sets.
const SET_BY_SHELL: &[&str] = &["PWD", "OLDPWD", "SHLVL", "_"];

/// An entry running `env` with its report written to `out`.
fn env_entry(id: &str, out: &Path, control: &str) -> String {
    child_entry_to_file(id, "env", out, &control_keys(control))
}

/// Starts the manager and returns each process's parsed report.
async fn reports(t: &Scratch, yaml: &str, outs: &[(&str, &Path)]) -> (Manager, Vec<EnvReport>) {
    let m = t.manager(yaml);
    m.start().await;
    let mut reports = Vec::new();
    for (id, out) in outs {
        // `sigignored` is the last line of the report.
        let text = wait_file(out, "sigignored", Duration::from_secs(20)).await;
        let r = EnvReport::parse(&text);
        assert!(
            !r.cwd.is_empty() && !r.ids.is_empty(),
            "{id}: incomplete report:\n{text}"
        );
        reports.push(r);
    }
    (m, reports)
}

fn canonical(p: &Path) -> String {
    std::fs::canonicalize(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .display()
        .to_string()
}

/// Every variable of the manager (this test process) reaches the child
/// with its value, except the ones the config overrides.
fn assert_inherits_all_but(r: &EnvReport, overridden: &[&str], who: &str) {
    let mut compared = 0;
    for (k, v) in std::env::vars_os() {
        let key = k.to_string_lossy();
        if overridden.contains(&key.as_ref()) || SET_BY_SHELL.contains(&key.as_ref()) {
            continue;
        }
        assert_eq!(
            r.var(&key),
            Some(escape(&v).as_str()),
            "{who}: variable {key} of the manager is missing or changed"
        );
        compared += 1;
    }
    assert!(
        compared > 0,
        "the test process has no environment to compare"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_child_gets_the_manager_environment_plus_the_environment_map_or_list() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let (map_out, list_out) = (t.path("map.out"), t.path("list.out"));
        let yaml = t.header()
            + &env_entry(
                "map",
                &map_out,
                "environment:\n  PROCMAN_IT_MAP: \"a value with spaces = and an equals sign\"\n  HOME: \"/overridden/by/map\"",
            )
            + &env_entry(
                "list",
                &list_out,
                "environment: [\"PROCMAN_IT_LIST=one=two\", \"HOME=/overridden/by/list\", \"PROCMAN_IT_EMPTY=\"]",
            );
        let (m, r) = reports(&t, &yaml, &[("map", &map_out), ("list", &list_out)]).await;
        let (map, list) = (&r[0], &r[1]);

        assert_eq!(map.var("PROCMAN_IT_MAP"), Some("a value with spaces = and an equals sign"));
        assert_eq!(map.var("HOME"), Some("/overridden/by/map"), "an override wins over the manager's value");
        assert_eq!(map.var("PROCMAN_IT_LIST"), None, "one process's environment is its own");
        assert_inherits_all_but(map, &["HOME"], "map");

        assert_eq!(list.var("PROCMAN_IT_LIST"), Some("one=two"), "split at the first `=` only");
        assert_eq!(list.var("HOME"), Some("/overridden/by/list"));
        assert_eq!(list.var("PROCMAN_IT_EMPTY"), Some(""), "an empty value is still set");
        assert_eq!(list.var("PROCMAN_IT_MAP"), None);
        assert_inherits_all_but(list, &["HOME"], "list");
        m.shutdown().await;
    })
    .await
    .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn env_file_variables_reach_the_child_and_environment_overrides_them() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let out = t.path("out");
        std::fs::write(
            t.path("service.env"),
            "# read at spawn time\nPROCMAN_IT_FROM_FILE=file value\nPROCMAN_IT_SHARED=from the file\n",
        )
        .unwrap();
        // A relative env_file resolves against the config file's directory,
        // not against the manager's cwd (this test's cwd is elsewhere).
        let yaml = t.header()
            + &env_entry(
                "svc",
                &out,
                "env_file: \"service.env\"\nenvironment:\n  PROCMAN_IT_SHARED: \"from environment\"",
            );
        let (m, r) = reports(&t, &yaml, &[("svc", &out)]).await;
        assert_eq!(r[0].var("PROCMAN_IT_FROM_FILE"), Some("file value"));
        assert_eq!(
            r[0].var("PROCMAN_IT_SHARED"),
            Some("from environment"),
            "`environment` is applied after `env_file`"
        );
        assert_inherits_all_but(&r[0], &[], "svc");
        m.shutdown().await;
    })
    .await
    .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn working_directory_is_the_cwd_and_a_relative_one_resolves_against_the_config_dir() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let abs: PathBuf = t.path("absolute");
        let rel: PathBuf = t.path("relative/dir");
        std::fs::create_dir_all(&abs).unwrap();
        std::fs::create_dir_all(&rel).unwrap();
        assert_ne!(
            std::env::current_dir().unwrap(),
            t.dir.path(),
            "the manager's cwd must differ from the config dir for this test to mean anything"
        );
        let outs = [t.path("abs.out"), t.path("rel.out"), t.path("default.out")];
        let yaml = t.header()
            + &env_entry(
                "abs",
                &outs[0],
                &format!("working_directory: {:?}", abs.display().to_string()),
            )
            + &env_entry("rel", &outs[1], "working_directory: \"relative/dir\"")
            + &env_entry("default", &outs[2], "");
        let (m, r) = reports(
            &t,
            &yaml,
            &[("abs", &outs[0]), ("rel", &outs[1]), ("default", &outs[2])],
        )
        .await;
        assert_eq!(r[0].cwd, canonical(&abs));
        assert_eq!(
            r[1].cwd,
            canonical(&rel),
            "relative to the config file's directory"
        );
        assert_eq!(
            r[2].cwd,
            canonical(t.dir.path()),
            "no working_directory: the config file's directory"
        );
        m.shutdown().await;
    })
    .await
    .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_child_leads_its_own_session_and_group_with_stdin_from_dev_null() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let inherited = inheritable_fds();
        let out = t.path("out");
        // `--stay`: still running when we compare its pid with the status.
        let yaml = t.header() + &child_entry_to_file("svc", "env --stay", &out, "");
        let (m, r) = reports(&t, &yaml, &[("svc", &out)]).await;
        let r = &r[0];
        let pid = r.ids["pid"];
        assert_eq!(
            m.handle("svc").unwrap().status().pid(),
            Some(pid),
            "the reported pid is the process's"
        );
        assert_eq!(
            r.ids["pgid"], pid,
            "leads its own process group: {:?}",
            r.ids
        );
        assert_eq!(r.ids["sid"], pid, "leads its own session: {:?}", r.ids);
        assert_eq!(
            r.ids["ppid"],
            std::process::id(),
            "the manager is its parent"
        );
        assert_eq!(r.stdin, "/dev/null");
        // Nothing past 2 reaches a service: neither what the manager opened
        // (lock file, cgroup, pipes) nor what it inherited without
        // close-on-exec (a caller's pipe), as with systemd and supervisord.
        // But 62 and 63: the child's own hold on the read ends of its
        // output pipes, so that they outlive the manager (docs/reattach.md).
        let fds = open_fds(pid);
        for held in [62, 63] {
            assert!(
                fds.get(&held).is_some_and(|f| f.starts_with("pipe:")),
                "{held} holds an output pipe: {fds:?}"
            );
        }
        let extra: BTreeMap<u32, String> = fds
            .into_iter()
            .filter(|(fd, _)| *fd > 2 && *fd != 62 && *fd != 63)
            .collect();
        assert!(
            extra.is_empty(),
            "descriptors leaked into the child: {extra:?} (ours: {inherited:?})"
        );
        assert!(r.fds.starts_with("0,1,2"), "{}", r.fds);
        m.shutdown().await;
    })
    .await
    .expect("watchdog");
}

/// Open descriptors of `pid` and what each points at.
fn open_fds(pid: u32) -> BTreeMap<u32, String> {
    let dir = format!("/proc/{pid}/fd");
    std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .flatten()
        .filter_map(|e| {
            let fd = e.file_name().to_str()?.parse().ok()?;
            let target = std::fs::read_link(e.path()).ok()?;
            Some((fd, target.display().to_string()))
        })
        .collect()
}

/// This process's descriptors without close-on-exec: the ones any child
/// inherits unless the spawner closes them.
fn inheritable_fds() -> BTreeMap<u32, String> {
    const O_CLOEXEC: u32 = 0o2_000_000;
    open_fds(std::process::id())
        .into_iter()
        .filter(|(fd, _)| {
            let info =
                std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}")).unwrap_or_default();
            let flags = info
                .lines()
                .find_map(|l| l.strip_prefix("flags:"))
                .and_then(|f| u32::from_str_radix(f.trim(), 8).ok());
            flags.is_some_and(|f| f & O_CLOEXEC == 0)
        })
        .collect()
}

/// The argv of a live process, once it has exec'd the test child.
async fn argv_of(pid: u32, within: Duration) -> Vec<String> {
    let deadline = Instant::now() + within;
    let child = child().display().to_string();
    loop {
        let raw = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let argv: Vec<String> = raw
            .split(|&b| b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        // cmdline ends with a NUL, so the split leaves an empty last item.
        let argv = argv[..argv.len().saturating_sub(1)].to_vec();
        if argv.first() == Some(&child) {
            return argv;
        }
        assert!(
            Instant::now() < deadline,
            "pid {pid} never exec'd {child}: {argv:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arguments_arrive_verbatim_without_a_shell() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let tricky = [
            "$HOME;echo",
            "a b",
            "*",
            "`id`",
            "$(id)",
            "'single'",
            "\"double\"",
            "back\\slash",
            "~",
            "",
            "x > y",
        ];
        let mut args = vec!["env", "--stay", "--"];
        args.extend(tricky);
        let yaml = t.header() + &child_entry("args", &args, "");
        let m = t.manager(&yaml);
        m.start().await;
        let pid = m.handle("args").unwrap().status().pid().expect("running");
        let argv = argv_of(pid, Duration::from_secs(20)).await;
        assert_eq!(
            &argv[1..],
            &args[..],
            "arguments changed on their way to the child"
        );
        let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
        assert_eq!(
            exe,
            std::fs::canonicalize(child()).unwrap(),
            "the process is the program itself, not a shell"
        );
        m.shutdown().await;
    })
    .await
    .expect("watchdog");
}

/// Waits for `id` to fail and returns the reason.
async fn failure_of(m: &Manager, id: &str) -> String {
    let h = m.handle(id).expect("configured");
    let s = wait_status(&h, Duration::from_secs(20), "failed", |s| {
        s.phase() != Phase::Registered && s.phase() != Phase::Starting
    })
    .await;
    match s.lifecycle {
        Lifecycle::Failed { reason } => reason,
        other => panic!("{id}: not refused: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn as_root_an_env_file_others_could_write_is_refused_naming_the_file_mode_and_fix() {
    if !crate::users::root_or_skip("as_root_an_env_file_others_could_write_is_refused") {
        return;
    }
    tokio::time::timeout(WATCHDOG, async {
        use std::os::unix::fs::{chown, symlink, PermissionsExt};
        let t = Scratch::new();
        // Modes set explicitly: the umask of whoever runs the tests varies.
        let file = |name: &str, mode: u32, owner: u32| {
            let path = t.path(name);
            std::fs::write(&path, "PROCMAN_IT_FROM_FILE=1\n").unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            chown(&path, Some(owner), None).unwrap();
            path
        };
        let world = file("world.env", 0o666, 0);
        let group = file("group.env", 0o620, 0);
        let foreign = file("foreign.env", 0o600, 65534);
        file("own.env", 0o600, 65534);
        file("safe.env", 0o600, 0);
        symlink(&world, t.path("to-world.env")).unwrap();
        symlink(t.path("safe.env"), t.path("to-safe.env")).unwrap();
        let entry = |id: &str, control: &str| {
            child_entry(
                id,
                &["run"],
                &control_keys(&format!("working_directory: /\n{control}")),
            )
        };
        let env_file = |name: &str| format!("env_file: {:?}", t.path(name).display().to_string());
        let yaml = t.header()
            + &entry("world", &env_file("world.env"))
            + &entry("group", &env_file("group.env"))
            + &entry("foreign", &env_file("foreign.env"))
            + &entry("own", &(env_file("own.env") + "\nuser: nobody"))
            + &entry("to_world", &env_file("to-world.env"))
            + &entry("to_safe", &env_file("to-safe.env"));
        let m = t.manager(&yaml);
        m.start().await;
        let writable = |path: &Path, mode: &str| {
            format!(
                "env_file {0} is writable by group or others (mode {mode}), so anyone who can \
                 write it could inject variables such as LD_PRELOAD; fix: chmod go-w {0}",
                path.display()
            )
        };
        assert_eq!(failure_of(&m, "world").await, writable(&world, "0666"));
        assert_eq!(failure_of(&m, "group").await, writable(&group, "0620"));
        assert_eq!(
            failure_of(&m, "to_world").await,
            writable(&t.path("to-world.env"), "0666"),
            "a symlink is followed, and what it leads to is checked"
        );
        assert_eq!(
            failure_of(&m, "foreign").await,
            format!(
                "env_file {0} is owned by uid 65534, neither root nor the process's user, who \
                 could inject variables such as LD_PRELOAD; fix: chown root {0}",
                foreign.display()
            )
        );
        for id in ["own", "to_safe"] {
            let h = m.handle(id).expect("configured");
            wait_status(&h, Duration::from_secs(20), "running", |s| {
                s.phase() == Phase::Running
            })
            .await;
        }
        m.shutdown().await;
    })
    .await
    .expect("watchdog");
}
