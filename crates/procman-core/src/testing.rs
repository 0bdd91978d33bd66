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

/// What `tracing` writes on this thread while it lives (a test on a
/// current-thread runtime runs its tasks on this thread too).
pub(crate) struct CapturedLog {
    buffer: Captured,
    _default: tracing::subscriber::DefaultGuard,
}

/// Captures the manager's log on this thread, as plain text.
pub(crate) fn capture_log() -> CapturedLog {
    let buffer = Captured::default();
    let subscriber = {
        let buffer = buffer.clone();
        tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || buffer.clone())
            .finish()
    };
    CapturedLog {
        buffer,
        _default: tracing::subscriber::set_default(subscriber),
    }
}

impl CapturedLog {
    /// Everything written so far.
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.buffer.0.lock().expect("log buffer")).into_owned()
    }
}

/// A `tracing` writer into a shared buffer.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
