//! `procman export --format systemd` as a user runs it: the units it
//! writes pass `systemd-analyze verify`, `-o DIR` writes them with a
//! README, stdout gets the same text, warnings and the summary go to
//! stderr, and an invalid config exits 2.

use std::path::{Path, PathBuf};

use procman_core::outcome::ProcessEnd;

use crate::support::*;

/// A config using every mapping, whose executables exist on any Linux
/// host, and values that need each of systemd's escapes.
fn config(t: &Scratch) -> String {
    // Only root may run a process as another user.
    let user = if is_root() {
        "        user: daemon\n        group: daemon\n"
    } else {
        ""
    };
    format!(
        r#"process_manager:
  port: 0
  state_dir: "{state}"
managed_processes:
  - id: db
    management:
      control:
        executable: /bin/sleep
        arguments: ["1000"]
        working_directory: "{dir}"
        environment:
          GREETING: "it's \"quoted\" $HOME and 100% \\ back"
          MULTI: "one\ntwo\tthree"
          UNICODE: "grüße ✓"
        startup_timeout: 90s
        shutdown_timeout: 0s
        shutdown_signal: INT
        success_exit_codes: [0, 3]
{user}      health_check: {{tcp_endpoint: "127.0.0.1:5432"}}
      resource_limits: {{max_memory_mb: 256, max_cpu_percent: 50.5, max_file_descriptors: 1024, max_processes: 64}}
      restart_policy: {{strategy: always, max_attempts: 3, window: 1m, restart_delay: 1s, max_delay: 8s}}
      logging: {{capture_stdout: false}}
  - id: migrate
    profile_type: batch
    depends_on: [{{id: db, condition: healthy}}]
    management:
      control:
        executable: /bin/sh
        arguments: ["-c", "echo \"$1\" 100% $HOME \\n; exit 0", "sh", "a b\\c ; d", ";", "", "é\u0007"]
        # Without 0: a oneshot that systemd must still load.
        success_exit_codes: [3]
      restart_policy: {{strategy: on_failure, backoff_multiplier: 1}}
  - id: api
    type: integrated_managed
    depends_on: [{{id: migrate, condition: completed_successfully}}, db]
    management:
      control: {{executable: /usr/bin/env, arguments: [sleep, "1000"], port: 9443, shutdown_signal: 34}}
      restart_policy: {{max_attempts: 0}}
  - id: watcher
    shutdown_on_exit: true
    depends_on: [api]
    management:
      control: {{executable: /bin/sleep, arguments: ["1000"]}}
      health_check: {{command: "test -d /tmp"}}
      restart_policy: {{strategy: never}}
  - id: old
    enabled: false
    management:
      control: {{executable: sleep, arguments: [infinity]}}
      health_check: {{http_endpoint: "http://127.0.0.1:1/x"}}
      restart_policy: {{max_attempts: 4294967295}}
  - id: cron
    type: unmanaged
    management: {{discovery: {{process_name: cron}}}}
"#,
        state = t.path("state").display(),
        dir = t.dir.path().display(),
    )
}

/// The systemd version `systemd-analyze` reports, or `None` when it
/// cannot run here.
async fn systemd_version() -> Option<u32> {
    let (end, out, _) = run_split(Path::new("systemd-analyze"), &["--version"]).await;
    if end != ProcessEnd::Exited(0) {
        return None;
    }
    out.split_whitespace().nth(1)?.parse().ok()
}

/// `systemd-analyze verify` on every unit in `dir`: how it ended and the
/// lines it printed about our units that are not `allowed`.
async fn verify(dir: &Path, allowed: impl Fn(&str) -> bool) -> (ProcessEnd, Vec<String>) {
    let mut units: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read the units' directory")
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.extension()
                .is_some_and(|e| e == "service" || e == "target")
        })
        .collect();
    units.sort();
    let units: Vec<String> = units.iter().map(|p| p.display().to_string()).collect();
    let mut args = vec!["verify", "--man=no"];
    args.extend(units.iter().map(String::as_str));
    let (end, out, err) = run_split(Path::new("systemd-analyze"), &args).await;
    let unexpected = out
        .lines()
        .chain(err.lines())
        .filter(|l| !l.trim().is_empty() && !allowed(l))
        .map(str::to_string)
        .collect();
    (end, unexpected)
}

/// Lines systemd before 254 prints for the growing restart delay.
fn before_254(version: u32, line: &str) -> bool {
    version < 254
        && (line.contains("Unknown key 'RestartSteps'")
            || line.contains("Unknown key 'RestartMaxDelaySec'"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exported_units_pass_systemd_analyze_verify() {
    tokio::time::timeout(WATCHDOG, async {
        let Some(version) = systemd_version().await else {
            skip_or_fail("systemd-analyze is not installed (Debian: apt-get install systemd)");
            return;
        };
        let t = Scratch::new();
        let file = t.path("app.yaml");
        std::fs::write(&file, config(&t)).expect("write the config");
        let units = t.path("units");
        let (file_s, units_s) = (file.display().to_string(), units.display().to_string());
        let args = ["export", "--format", "systemd", "-c", &file_s, "-o", &units_s];
        let (end, _, err) = run_split(Path::new(procman()), &args).await;
        assert_eq!(end, ProcessEnd::Exited(0), "{err}");
        let (end, unexpected) = verify(&units, |l| before_254(version, l)).await;
        assert!(unexpected.is_empty(), "systemd {version} says:\n{}", unexpected.join("\n"));
        assert_eq!(end, ProcessEnd::Exited(0));
        let api = std::fs::read_to_string(units.join("app-api.service")).expect("api unit");
        assert!(api.contains("KillSignal=34\n"), "{api}");
        let old = std::fs::read_to_string(units.join("app-old.service")).expect("old unit");
        assert!(old.contains("StartLimitBurst=4294967295\n"), "{old}");
        let db = std::fs::read_to_string(units.join("app-db.service")).expect("db unit");
        assert!(db.contains("Environment=\"MULTI=one\\ntwo\\tthree\"\n"), "{db}");
        let migrate = std::fs::read_to_string(units.join("app-migrate.service")).expect("unit");
        assert!(
            migrate.contains(r#"ExecStart=/bin/sh -c "echo \"$$1\" 100%% $$HOME \\n; exit 0" sh "a b\\c ; d" ";" "" "é\a""#),
            "{migrate}"
        );
    })
    .await
    .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_golden_units_fail_verify_only_for_missing_executables() {
    tokio::time::timeout(WATCHDOG, async {
        let Some(version) = systemd_version().await else {
            skip_or_fail("systemd-analyze is not installed (Debian: apt-get install systemd)");
            return;
        };
        let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/export/systemd");
        for fixture in ["every-key", "spec-example"] {
            let (_, unexpected) = verify(&golden.join(fixture), |l| {
                before_254(version, l)
                    || l.contains("is not executable: No such file or directory")
                    // every-key runs a process as `nobody`, which systemd
                    // advises against.
                    || l.contains("Special user nobody configured")
            })
            .await;
            assert!(
                unexpected.is_empty(),
                "{fixture}, systemd {version}:\n{}",
                unexpected.join("\n")
            );
        }
    })
    .await
    .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_writes_units_and_a_readme_or_stdout_and_warns_on_stderr() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let file = t.path("shop.yaml");
        std::fs::write(&file, config(&t)).expect("write the config");
        let units = t.path("out/units");
        let (file_s, units_s) = (file.display().to_string(), units.display().to_string());
        let base = ["export", "--format", "systemd", "-c", &file_s];

        let args: Vec<&str> = base.iter().copied().chain(["-o", &units_s]).collect();
        let (end, out, err) = run_split(Path::new(procman()), &args).await;
        assert_eq!(end, ProcessEnd::Exited(0), "{err}");
        assert_eq!(out, "", "nothing on stdout with -o");
        let mut names: Vec<String> = std::fs::read_dir(&units)
            .expect("the directory was created")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        let want = ["README.md", "shop-api.service", "shop-db.service", "shop-migrate.service", "shop-old.service", "shop-watcher.service", "shop.target"];
        assert_eq!(names, want);
        let readme = std::fs::read_to_string(units.join("README.md")).expect("README");
        assert!(readme.contains("systemctl enable --now shop.target"), "{readme}");
        let warning = format!("{file_s}: managed_processes[5]: warning: `cron` is unmanaged");
        assert!(err.contains(&warning), "{err}");
        assert!(err.contains(&format!("{file_s}: managed_processes[0].management.health_check: warning: systemd has no TCP probe")), "{err}");
        let summary = err.lines().last().unwrap_or_default();
        assert!(summary.starts_with(&format!("procman export: 5 units and a target for systemd to {units_s}/, ")), "{err}");
        assert!(summary.ends_with(" warnings"), "{summary}");

        // stdout: the same files, one after the other, target first.
        let (end, out, err2) = run_split(Path::new(procman()), &base).await;
        assert_eq!(end, ProcessEnd::Exited(0), "{err2}");
        let order = ["shop.target", "shop-db.service", "shop-migrate.service", "shop-api.service", "shop-watcher.service", "shop-old.service"];
        let whole: String = order
            .iter()
            .map(|n| std::fs::read_to_string(units.join(n)).expect("unit"))
            .collect();
        assert_eq!(out, whole);
        assert!(err2.lines().last().unwrap_or_default().starts_with("procman export: 5 units and a target for systemd to stdout, "), "{err2}");
        assert_eq!(err2.lines().count(), err.lines().count(), "the same warnings");

        // --name names the target and the units.
        let args: Vec<&str> = base.iter().copied().chain(["--name", "web shop"]).collect();
        let (end, out, err3) = run_split(Path::new(procman()), &args).await;
        assert_eq!(end, ProcessEnd::Exited(0), "{err3}");
        assert!(out.starts_with("# web-shop.target: "), "{out}");
        assert!(err3.contains("--name: warning: \"web shop\" is not a valid unit name"), "{err3}");
    })
    .await
    .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_config_exits_2_and_writes_nothing() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let file = t.path("bad.yaml");
        std::fs::write(&file, "managed_processes:\n  - id: a\n    management: {control: {executable: /bin/sh}, restart_policy: {strategy: sometimes}}\n").expect("write");
        let units = t.path("units");
        let (file_s, units_s) = (file.display().to_string(), units.display().to_string());
        let args = ["export", "--format", "systemd", "-c", &file_s, "-o", &units_s];
        let (end, out, err) = run_split(Path::new(procman()), &args).await;
        assert_eq!(end, ProcessEnd::Exited(2), "{err}");
        assert_eq!(out, "");
        assert!(err.contains("restart_policy.strategy"), "{err}");
        assert!(!units.exists(), "nothing written");

        // A value no unit file can hold is refused the same way.
        std::fs::write(&file, "managed_processes:\n  - id: a\n    management: {control: {executable: \"/opt/it's\"}}\n").expect("write");
        let (end, _, err) = run_split(Path::new(procman()), &args).await;
        assert_eq!(end, ProcessEnd::Exited(2), "{err}");
        assert!(err.contains("systemd refuses an executable whose name holds a single quote"), "{err}");
        assert!(!units.exists(), "nothing written");

        // And one systemd would read as a prefix (`-`: failures ignored).
        std::fs::write(&file, "managed_processes:\n  - id: a\n    management: {control: {executable: \"-no-such-program\"}}\n").expect("write");
        let (end, _, err) = run_split(Path::new(procman()), &args).await;
        assert_eq!(end, ProcessEnd::Exited(2), "{err}");
        assert!(err.contains("managed_processes[0].management.control.executable: systemd would read its first character, `-`, as a prefix of ExecStart="), "{err}");
        assert!(!units.exists(), "nothing written");
    })
    .await
    .expect("watchdog");
}
