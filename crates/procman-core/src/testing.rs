//! What the unit tests share.

/// A test that cannot run here says why and returns, unless `CI` is set:
/// there every test must run, so it fails instead.
pub(crate) fn skip_or_fail(why: &str) {
    if std::env::var_os("CI").is_some() {
        panic!("this test cannot run here, and CI is set: {why}");
    }
    eprintln!("skipped: {why}");
}

/// `/bin/sh -c script` in `/`, output to `/dev/null`, as the manager's
/// user: a spawn for tests that need a real child and nothing more.
pub(crate) fn sh(script: &str) -> crate::platform::SpawnSpec {
    crate::platform::SpawnSpec {
        program: "/bin/sh".into(),
        args: vec!["-c".into(), script.into()],
        cwd: "/".into(),
        env: Vec::new(),
        stdout: crate::platform::Stdio::Null,
        stderr: crate::platform::Stdio::Null,
        uid: None,
        gid: None,
        groups: None,
        nofile: None,
        hold: Vec::new(),
        kill_group_on_exit: false,
    }
}
