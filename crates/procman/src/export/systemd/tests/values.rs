//! Values systemd would read otherwise than procman, or not at all: a
//! oneshot that must not be forced to restart, an executable that looks
//! like a prefix, a signal without a name, the largest restart limit.

use super::{file, lines, load, one, render, warned};
use crate::export::{ExportError, Options};

const CODES: &str = "managed_processes[0].management.control.success_exit_codes";

fn refused(yaml: &str) -> String {
    let opts = Options {
        name: "app".to_string(),
        image: None,
    };
    match super::super::render(&load(yaml), &opts) {
        Err(ExportError::Incomplete(message)) => message,
        Ok(r) => panic!("must be refused, wrote:\n{}", r.files[1].text),
    }
}

#[test]
fn a_oneshot_without_success_code_0_is_never_forced_to_restart() {
    for strategy in ["on_failure", "always"] {
        let r = render(&one(&format!(
            "    profile_type: batch\n    management:\n      control: {{executable: /bin/sh, success_exit_codes: [2]}}\n      restart_policy: {{strategy: {strategy}}}\n"
        )));
        let unit = file(&r, "app-a.service");
        assert!(unit.contains("Type=oneshot\n"), "{unit}");
        assert!(unit.contains("Restart=on-failure\n"), "{unit}");
        assert!(lines(unit, "RestartForceExitStatus").is_empty(), "{unit}");
        let w = warned(&r, CODES);
        assert!(
            w[0].contains("systemd refuses RestartForceExitStatus= for a oneshot")
                && w[0].contains("exit 0 is not restarted either"),
            "{w:?}"
        );
    }
    // A long-running process is forced to restart on exit 0.
    let r = render(&one(
        "    management:\n      control: {executable: /bin/sh, success_exit_codes: [2]}\n",
    ));
    let unit = file(&r, "app-a.service");
    assert_eq!(
        lines(unit, "RestartForceExitStatus="),
        ["RestartForceExitStatus=SIGHUP SIGINT SIGTERM SIGPIPE 0"]
    );
    assert!(warned(&r, CODES)[0].contains("RestartForceExitStatus=0 still restarts it"));
}

#[test]
fn an_executable_systemd_would_take_for_a_prefix_is_refused() {
    for exe in ["-true", "@sleep", ":env", "+id", "!id", "|sh"] {
        let message = refused(&one(&format!(
            "    management: {{control: {{executable: \"{exe}\", arguments: [x]}}}}\n"
        )));
        let first = exe.chars().next().unwrap_or_default();
        assert!(
            message.contains(&format!(
                "managed_processes[0].management.control.executable: systemd would read its first character, `{first}`, as a prefix of ExecStart="
            )) && message.contains("write the executable's absolute path"),
            "{message}"
        );
    }
    // Such characters elsewhere than first are no prefix.
    let r = render(&one(
        "    management: {control: {executable: /opt/-x/run, arguments: [\"-y\"]}}\n",
    ));
    assert_eq!(
        lines(file(&r, "app-a.service"), "ExecStart="),
        ["ExecStart=/opt/-x/run -y"]
    );
}

#[test]
fn a_signal_without_a_name_is_written_as_its_number() {
    for (signal, written) in [
        ("34", "KillSignal=34"),
        ("64", "KillSignal=64"),
        ("32", "KillSignal=32"),
        ("INT", "KillSignal=SIGINT"),
        ("31", "KillSignal=SIGSYS"),
    ] {
        let r = render(&one(&format!(
            "    management: {{control: {{executable: /bin/sh, shutdown_signal: \"{signal}\"}}}}\n"
        )));
        let unit = file(&r, "app-a.service");
        assert_eq!(lines(unit, "KillSignal="), [written], "{unit}");
    }
}

#[test]
fn the_largest_max_attempts_is_the_largest_start_limit() {
    let r = render(&one(
        "    management:\n      control: {executable: /bin/sh}\n      restart_policy: {max_attempts: 4294967295, backoff_multiplier: 1}\n",
    ));
    let unit = file(&r, "app-a.service");
    assert_eq!(
        lines(unit, "StartLimitBurst="),
        ["StartLimitBurst=4294967295"]
    );
    let w = warned(
        &r,
        "managed_processes[0].management.restart_policy.max_attempts",
    );
    assert!(w[0].contains("one restart fewer"), "{w:?}");
    // Below it, the first start is counted too.
    let r = render(&one(
        "    management:\n      control: {executable: /bin/sh}\n      restart_policy: {max_attempts: 4294967294, backoff_multiplier: 1}\n",
    ));
    assert_eq!(
        lines(file(&r, "app-a.service"), "StartLimitBurst="),
        ["StartLimitBurst=4294967295"]
    );
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
}
