//! The units of the fixtures (golden files) and of small configs, one
//! behaviour each.

mod quoting;
mod values;

use std::path::{Path, PathBuf};

use procman_core::config::Config;

use crate::export::{golden, ExportError, Options, Rendered};

/// A config at a fixed place, as `procman export` loads it.
fn load(yaml: &str) -> Config {
    let source = Path::new("/etc/procman/app.yaml");
    match procman_core::config::load_str(yaml, source, &|_| None) {
        Ok(c) => c,
        Err(e) => panic!("test config invalid:\n{e}\n---\n{yaml}"),
    }
}

fn render(yaml: &str) -> Rendered {
    let opts = Options {
        name: "app".to_string(),
        image: None,
    };
    super::render(&load(yaml), &opts).expect("renders")
}

/// One process with `extra` under its entry (indented four spaces).
fn one(extra: &str) -> String {
    format!("managed_processes:\n  - id: a\n{extra}")
}

fn file<'a>(r: &'a Rendered, name: &str) -> &'a str {
    match r.files.iter().find(|f| f.name == name) {
        Some(f) => &f.text,
        None => panic!(
            "no {name} among {:?}",
            r.files.iter().map(|f| &f.name).collect::<Vec<_>>()
        ),
    }
}

fn lines<'a>(text: &'a str, prefix: &str) -> Vec<&'a str> {
    text.lines().filter(|l| l.starts_with(prefix)).collect()
}

fn warned<'a>(r: &'a Rendered, path: &str) -> Vec<&'a str> {
    r.warnings
        .iter()
        .filter(|w| w.path == path)
        .map(|w| w.message.as_str())
        .collect()
}

/// Every file of `fixture`, its README and warnings against the golden
/// files under `systemd/<fixture>/`. The config is placed in
/// `/etc/procman/` so that default working directories do not name this
/// checkout.
fn check_golden(fixture: &str) {
    let mut config = golden::fixture(fixture);
    let file_name = config
        .source
        .file_name()
        .map(PathBuf::from)
        .expect("file name");
    config.source = Path::new("/etc/procman").join(file_name);
    let opts = Options {
        name: fixture.to_string(),
        image: None,
    };
    let r = super::render(&config, &opts).expect("renders");
    for f in &r.files {
        golden::check(&format!("systemd/{fixture}/{}", f.name), &f.text);
    }
    golden::check(
        &format!("systemd/{fixture}/README.md"),
        r.readme.as_deref().unwrap_or_default(),
    );
    let warnings: String = r
        .warnings
        .iter()
        .map(|w| format!("{}: {}\n", w.path, w.message))
        .collect();
    golden::check(&format!("systemd/{fixture}/warnings.txt"), &warnings);
}

#[test]
fn golden_every_key() {
    check_golden("every-key");
}

#[test]
fn golden_spec_example() {
    check_golden("spec-example");
}

#[test]
fn a_disabled_process_is_written_but_not_wanted_by_the_target() {
    let r = render("managed_processes:\n  - id: on\n    management: {control: {executable: /bin/sh}}\n  - id: off\n    enabled: false\n    management: {control: {executable: /bin/sh}}\n");
    assert_eq!(r.summary, "2 units and a target");
    let target = file(&r, "app.target");
    assert_eq!(lines(target, "Wants="), ["Wants=app-on.service"]);
    assert!(target.contains("# Not wanted (`enabled: false`), started by hand: app-off.service"));
    let off = file(&r, "app-off.service");
    assert!(off.contains("PartOf=app.target"), "{off}");
    assert!(off.contains("systemctl start app-off.service"), "{off}");
    assert!(!off.contains("[Install]"), "{off}");
    assert!(file(&r, "app-on.service").contains("[Install]\nWantedBy=app.target\n"));
}

#[test]
fn depends_on_conditions_become_wants_requires_and_after() {
    let r = render(concat!(
        "managed_processes:\n",
        "  - id: db\n    management: {control: {executable: /bin/sh}, health_check: {tcp_endpoint: '127.0.0.1:5432'}}\n",
        "  - id: job\n    profile_type: batch\n    management: {control: {executable: /bin/sh}}\n",
        "  - id: web\n    depends_on: [{id: db, condition: healthy}, {id: job, condition: completed_successfully}, cache]\n",
        "    management: {control: {executable: /bin/sh}}\n",
        "  - id: cache\n    management: {control: {executable: /bin/sh}}\n",
    ));
    let web = file(&r, "app-web.service");
    assert_eq!(
        lines(web, "Requires="),
        ["Requires=app-db.service", "Requires=app-job.service"]
    );
    assert_eq!(lines(web, "Wants="), ["Wants=app-cache.service"]);
    assert_eq!(
        lines(web, "After="),
        [
            "After=app-db.service",
            "After=app-job.service",
            "After=app-cache.service"
        ]
    );
    let healthy = warned(&r, "managed_processes[2].depends_on[0]");
    assert!(healthy[0].contains("no health gate"), "{healthy:?}");
    assert!(warned(&r, "managed_processes[2].depends_on[1]").is_empty());
    assert!(warned(&r, "managed_processes[2].depends_on[2]").is_empty());
    let job = file(&r, "app-job.service");
    assert!(job.contains("Type=oneshot\n"), "{job}");
    assert!(job.contains("RemainAfterExit=yes\n"), "{job}");
    assert!(job.contains("TimeoutStartSec=infinity\n"), "{job}");
    assert!(file(&r, "app-db.service").contains("Type=exec\n"));
}

#[test]
fn dependencies_on_unmanaged_or_disabled_processes_are_warned() {
    let r = render(concat!(
        "managed_processes:\n",
        "  - id: cron\n    type: unmanaged\n    management: {discovery: {process_name: cron}}\n",
        "  - id: old\n    enabled: false\n    management: {control: {executable: /bin/sh}}\n",
        "  - id: web\n    depends_on: [cron, old]\n    management: {control: {executable: /bin/sh}}\n",
    ));
    assert_eq!(r.files.len(), 3, "target, old, web");
    let web = file(&r, "app-web.service");
    assert!(!web.contains("app-cron"), "{web}");
    assert!(web.contains("Wants=app-old.service"), "{web}");
    assert!(warned(&r, "managed_processes[2].depends_on[0]")[0].contains("unmanaged"));
    assert!(warned(&r, "managed_processes[2].depends_on[1]")[0].contains("not enabled"));
    assert!(warned(&r, "managed_processes[0]")[0].contains("unmanaged"));
}

#[test]
fn restart_strategies_and_limits() {
    let never = render(&one("    management:\n      control: {executable: /bin/sh}\n      restart_policy: {strategy: never}\n"));
    let unit = file(&never, "app-a.service");
    assert!(
        unit.contains("Restart=no\n") && unit.contains("StartLimitIntervalSec=0\n"),
        "{unit}"
    );
    assert!(!unit.contains("RestartSec="), "{unit}");
    assert!(never.warnings.is_empty(), "{:?}", never.warnings);

    let batch = render(&one("    profile_type: batch\n    management:\n      control: {executable: /bin/sh, success_exit_codes: [3]}\n      restart_policy: {strategy: always, max_attempts: 0, backoff_multiplier: 1}\n"));
    let unit = file(&batch, "app-a.service");
    assert!(unit.contains("Restart=on-failure\n"), "{unit}");
    // systemd refuses a oneshot with RestartForceExitStatus=.
    assert!(!unit.contains("RestartForceExitStatus"), "{unit}");
    assert!(unit.contains("SuccessExitStatus=3\n"), "{unit}");
    assert!(
        unit.contains("StartLimitIntervalSec=0\n") && !unit.contains("StartLimitBurst"),
        "{unit}"
    );
    assert!(!unit.contains("RestartSteps"), "{unit}");
    assert_eq!(batch.warnings.len(), 1, "{:?}", batch.warnings);
    let codes = warned(
        &batch,
        "managed_processes[0].management.control.success_exit_codes",
    );
    assert!(
        codes[0].contains("exit 0 is not restarted either"),
        "{codes:?}"
    );

    let exact = render(&one("    management:\n      control: {executable: /bin/sh}\n      restart_policy: {max_attempts: 3, window: 90s, restart_delay: 1s, max_delay: 8s}\n"));
    let unit = file(&exact, "app-a.service");
    for line in [
        "Restart=on-failure",
        "RestartForceExitStatus=SIGHUP SIGINT SIGTERM SIGPIPE",
        "RestartSec=1s",
        "RestartSteps=3",
        "RestartMaxDelaySec=8s",
        "StartLimitIntervalSec=90s",
        "StartLimitBurst=4",
    ] {
        assert!(unit.lines().any(|l| l == line), "{line} in\n{unit}");
    }
    assert!(exact.warnings.is_empty(), "{:?}", exact.warnings);
}

#[test]
fn the_default_backoff_is_approximated_with_a_warning() {
    let r = render(&one("    management: {control: {executable: /bin/sh}}\n"));
    let unit = file(&r, "app-a.service");
    assert!(
        unit.contains("RestartSteps=6\nRestartMaxDelaySec=1min\n"),
        "{unit}"
    );
    assert_eq!(r.warnings.len(), 1, "{:?}", r.warnings);
    let w = warned(
        &r,
        "managed_processes[0].management.restart_policy.backoff_multiplier",
    );
    assert!(
        w[0].contains("× 1.979") && w[0].contains("procman: 1s, 2s, 4s"),
        "{w:?}"
    );
}

#[test]
fn integrated_managed_gets_its_port_or_a_warning() {
    let with = render(&one("    type: integrated_managed\n    management:\n      control: {executable: /bin/sh, arguments: [x], port: 9000}\n"));
    let unit = file(&with, "app-a.service");
    assert!(unit.contains("ExecStart=/bin/sh x --port 9000\n"), "{unit}");
    assert!(
        unit.contains("Environment=\"PROCMAN_PORT=9000\"\n"),
        "{unit}"
    );
    assert!(unit.contains("systemd has no gRPC probe"), "{unit}");
    assert!(warned(&with, "managed_processes[0].type")[0].contains("gRPC"));

    let without = render(&one(
        "    type: integrated_managed\n    management:\n      control: {executable: /bin/sh}\n",
    ));
    assert!(!file(&without, "app-a.service").contains("--port"));
    assert!(warned(&without, "managed_processes[0].type")
        .iter()
        .any(|m| m.contains("set control.port")));
}

#[test]
fn environment_names_systemd_ignores_are_left_out_with_a_warning() {
    let r = render(&one("    management:\n      control:\n        executable: /bin/sh\n        environment: {GOOD: 1, MY-VAR: 2}\n"));
    let unit = file(&r, "app-a.service");
    assert_eq!(lines(unit, "Environment="), ["Environment=\"GOOD=1\""]);
    assert!(
        warned(&r, "managed_processes[0].management.control.environment")[0].contains("MY-VAR")
    );
}

#[test]
fn values_a_unit_cannot_hold_fail_the_export() {
    let yaml = one("    management:\n      control: {executable: \"/opt/a\\\\b\", working_directory: \"/srv/x\\ny\"}\n");
    let opts = Options {
        name: "app".to_string(),
        image: None,
    };
    let Err(ExportError::Incomplete(message)) = super::render(&load(&yaml), &opts) else {
        panic!("must fail");
    };
    assert!(
        message.contains("managed_processes[0].management.control.executable: systemd refuses"),
        "{message}"
    );
    assert!(
        message.contains(
            "managed_processes[0].management.control.working_directory: a unit file cannot hold"
        ),
        "{message}"
    );
}

#[test]
fn odd_settings_map_to_their_nearest_equivalents() {
    let r = render(&one(concat!(
        "    management:\n",
        "      control: {executable: /bin/sh, working_directory: /srv/a/../b, shutdown_timeout: 0s}\n",
        "      resource_limits: {max_cpu_percent: 12.345}\n",
        "      logging: {capture_stdout: false, capture_stderr: false}\n",
        "      restart_policy: {backoff_multiplier: 1}\n",
    )));
    let unit = file(&r, "app-a.service");
    for line in [
        "WorkingDirectory=/srv/b",
        "TimeoutStopSec=1ms",
        "CPUQuota=12.35%",
        "StandardOutput=null",
        "StandardError=null",
    ] {
        assert!(unit.lines().any(|l| l == line), "{line} in\n{unit}");
    }
    assert!(!warned(
        &r,
        "managed_processes[0].management.control.working_directory"
    )
    .is_empty());
    assert!(!warned(
        &r,
        "managed_processes[0].management.resource_limits.max_cpu_percent"
    )
    .is_empty());
    assert_eq!(r.warnings.len(), 2, "{:?}", r.warnings);
}

#[test]
fn the_name_is_made_a_valid_unit_name() {
    let opts = Options {
        name: "my app@1".to_string(),
        image: Some("img".to_string()),
    };
    let r = super::render(
        &load(&one("    management: {control: {executable: /bin/sh}}\n")),
        &opts,
    )
    .expect("renders");
    assert_eq!(r.files[0].name, "my-app-1.target");
    assert_eq!(r.files[1].name, "my-app-1-a.service");
    assert!(warned(&r, "--name")[0].contains("my-app-1"));
    assert!(!warned(&r, "--image").is_empty());
}

#[test]
fn shutdown_on_exit_binds_the_target_to_the_unit() {
    let r = render(concat!(
        "managed_processes:\n",
        "  - id: main\n    shutdown_on_exit: true\n",
        "    management: {control: {executable: /bin/sh}, restart_policy: {strategy: never}}\n",
        "  - id: job\n    profile_type: batch\n    shutdown_on_exit: true\n",
        "    management: {control: {executable: /bin/sh}}\n",
        "  - id: off\n    enabled: false\n    shutdown_on_exit: true\n",
        "    management: {control: {executable: /bin/sh}}\n",
    ));
    let target = file(&r, "app.target");
    assert!(lines(target, "Wants=").is_empty(), "{target}");
    assert_eq!(
        lines(target, "BindsTo="),
        ["BindsTo=app-main.service", "BindsTo=app-job.service"]
    );
    // A oneshot that stays active would never stop the target.
    assert!(!file(&r, "app-job.service").contains("RemainAfterExit"));
    assert!(warned(&r, "managed_processes[0].shutdown_on_exit").is_empty());
    assert!(warned(&r, "managed_processes[1].shutdown_on_exit")[0].contains("restarts the unit"));
    assert!(warned(&r, "managed_processes[2].shutdown_on_exit")[0].contains("not enabled"));
}

#[test]
fn config_text_in_comments_cannot_break_out_of_them() {
    let r = render(&one(concat!(
        "    management:\n",
        "      control: {executable: /bin/sh}\n",
        "      health_check: {command: [\"/bin/sh\", \"-c\", \"true\\n[Service]\\nExecStartPre=/bin/evil \\\\\"]}\n",
    )));
    let unit = file(&r, "app-a.service");
    assert!(
        !unit.lines().any(|l| l.starts_with("ExecStartPre")),
        "{unit}"
    );
    assert_eq!(unit.matches("[Service]\n").count(), 1, "{unit}");
    assert!(
        unit.contains(
            r#"#   command: ["/bin/sh", "-c", "true\n[Service]\nExecStartPre=/bin/evil \\"]"#
        ),
        "{unit}"
    );
    // Every line that is not a setting or a section is a comment.
    for line in unit.lines().filter(|l| !l.is_empty()) {
        assert!(
            line.starts_with('#') || line.starts_with('[') || line.contains('='),
            "{line}"
        );
    }
}

/// A name whose first character would read as an option in the README's
/// commands (`systemctl enable -x.target`) loses it, with a warning.
#[test]
fn a_name_never_starts_with_a_dash() {
    for (name, prefix) in [
        ("-x", "x"),
        ("über", "ber"),
        ("@x", "x"),
        ("---", "procman"),
    ] {
        let opts = Options {
            name: name.to_string(),
            image: None,
        };
        let yaml = one("    management: {control: {executable: /bin/true}}\n");
        let r = super::render(&load(&yaml), &opts).expect("renders");
        let names: Vec<&str> = r.files.iter().map(|f| f.name.as_str()).collect();
        assert!(
            names.contains(&format!("{prefix}.target").as_str()),
            "{name}: {names:?}"
        );
        assert!(!warned(&r, "--name").is_empty(), "{name}");
    }
}
