//! The seed's example YAML loads verbatim, with the values it states and
//! the defaults it leaves out.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::load_file;
use crate::config::schema::*;
use crate::outcome::Signal;

fn example_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/hsu-spec-example.yaml")
}

#[test]
fn spec_example_loads_with_its_values() {
    let config = match load_file(&example_path()) {
        Ok(config) => config,
        Err(e) => panic!("the spec's example must load:\n{e}"),
    };
    assert!(config.source.is_absolute());

    let m = &config.manager;
    assert_eq!(m.port, 50055);
    assert_eq!(m.log_level, LogLevel::Info);
    assert_eq!(m.force_shutdown_timeout, Duration::from_secs(30));
    assert_eq!(m.bind, "127.0.0.1");

    assert_eq!(config.processes.len(), 1);
    let p = config.process("my-service").expect("my-service");
    assert_eq!(p.kind, ProcessKind::StandardManaged);
    assert_eq!(p.profile, Profile::LongRunning);
    assert!(p.enabled);

    let c = &p.control;
    assert_eq!(c.executable, "./my-service");
    assert_eq!(c.arguments, ["--port", "8080"]);
    assert_eq!(
        c.working_directory.as_deref(),
        Some(Path::new("/opt/service"))
    );
    assert_eq!(
        c.environment,
        [("SERVICE_ENV".to_string(), "production".to_string())]
    );
    assert_eq!(c.startup_timeout, Duration::from_secs(60));
    assert_eq!(c.shutdown_timeout, Duration::from_secs(10));
    assert_eq!(c.shutdown_signal, Signal::TERM);
    assert_eq!(c.success_exit_codes, [0]);

    let h = p.health_check.as_ref().expect("health check");
    assert_eq!(h.kind, HealthCheckKind::Http);
    assert_eq!(h.interval, Duration::from_secs(30));
    assert_eq!(h.timeout, Duration::from_secs(5));
    assert_eq!(h.failure_threshold, 3);
    assert_eq!(h.success_threshold, 1);
    assert_eq!(
        h.http_endpoint.as_deref(),
        Some("http://localhost:8080/health")
    );

    let l = &p.resource_limits;
    assert_eq!(l.max_memory_mb, Some(512));
    assert_eq!(l.max_cpu_percent, Some(80.0));
    assert_eq!(l.max_file_descriptors, Some(1024));

    let r = &p.restart;
    assert_eq!(r.strategy, RestartStrategy::OnFailure);
    assert_eq!(r.max_attempts, 3);
    assert_eq!(r.restart_delay, Duration::from_secs(5));
    assert_eq!(r.backoff_multiplier, 1.5);
    assert_eq!(r.max_delay, Duration::from_secs(60));
    assert_eq!(r.jitter, 0.1);

    assert!(p.logging.capture_stdout && p.logging.capture_stderr);
    assert_eq!(p.logging.buffer_size, 8192);

    let lc = &config.log_collection;
    assert!(lc.enabled && lc.aggregation_enabled);
    assert_eq!(
        lc.targets,
        [
            LogTarget::File {
                path: PathBuf::from("/var/log/hsu/processes.log"),
                format: TargetFormat::Json,
                rotation: None,
            },
            LogTarget::ManagerStdout {
                format: TargetFormat::Plain
            },
        ]
    );
}

/// The example file is the spec's YAML block byte for byte: its 1,264
/// bytes hash (FNV-1a, 64 bits) to what the block did when it was copied.
/// The spec itself is not in the repository, so its fingerprint is kept
/// here instead: an edit of the example, a re-indent or a lost trailing
/// space, fails this test wherever it runs.
#[test]
fn example_file_is_the_spec_block_verbatim() {
    let example = std::fs::read(example_path()).expect("example file");
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in &example {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    assert_eq!(example.len(), 1264, "length of the spec's block");
    assert_eq!(
        hash, 0x0b2b_2741_86b0_7787,
        "fingerprint of the spec's block"
    );
}
