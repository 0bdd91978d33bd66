//! What the server's unit tests share: a real manager on a config written
//! into a temporary directory, and waits with generous deadlines.

use std::path::Path;
use std::time::Duration;

use procman_core::config;
use procman_core::manager::{Control, Manager};
use procman_core::supervisor::Phase;

/// Generous: the tests run on a loaded 2-core machine.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// A manager (not started) whose state is under `dir/state`, with the
/// processes of `processes` (YAML list items, indented by four spaces).
pub fn manager(dir: &Path, processes: &str) -> Manager {
    let yaml = format!(
        "process_manager:\n  port: 0\n  state_dir: \"{}/state\"\nmanaged_processes:\n{processes}",
        dir.display()
    );
    let file = dir.join("procman.yaml");
    std::fs::write(&file, yaml).expect("write config");
    let config = config::load_file(&file).expect("valid config");
    Manager::new(config).expect("manager")
}

/// A process running `/bin/sh -c script`.
pub fn sh(id: &str, script: &str, extra: &str) -> String {
    format!(
        "  - id: {id}\n    management:\n      control:\n        executable: /bin/sh\n        arguments: [\"-c\", \"{script}\"]\n        shutdown_timeout: 2s\n{extra}"
    )
}

/// Waits until `id` is in `phase` with at least `runs` runs.
pub async fn wait_for(control: &Control, id: &str, phase: Phase, runs: u32) {
    let handle = control.handle(id).expect("known process");
    let mut status = handle.subscribe();
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        {
            let s = status.borrow_and_update();
            if s.phase() == phase && s.runs >= runs {
                return;
            }
        }
        tokio::time::timeout_at(deadline, status.changed())
            .await
            .unwrap_or_else(|_| panic!("{id} never became {phase}: {:#?}", handle.status()))
            .expect("the supervisor is alive");
    }
}

/// Waits until `check` holds, looking every 20 ms.
pub async fn until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !check() {
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
