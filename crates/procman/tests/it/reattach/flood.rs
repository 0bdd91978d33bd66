//! A manager SIGKILLed again and again in the middle of a raw flood: each
//! next manager re-attaches and reads on, and the file holds the child's
//! output byte for byte, once and in order. A flood is relayed through a
//! second pipe; a round a kill interrupted is cut back or kept as its
//! ledger and the pipe say (`docs/logs.md`).

use std::time::{Duration, Instant};

use crate::cli_control::{svc_with, Running, SETTLE};
use crate::logs::{check_flood, Layout};
use crate::support::*;

/// The child's output: 100-byte numbered lines.
const BYTES: u64 = 512 << 20;
const KILLS: usize = 4;
/// How long each manager reads before it is killed.
const ALIVE: Duration = Duration::from_millis(15);

const MANAGEMENT: &str = "restart_policy:\n  strategy: never\nlogging:\n  format: raw\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_raw_flood_is_whole_and_once_after_the_manager_is_killed_again_and_again() {
    tokio::time::timeout(WATCHDOG * 2, async {
        let t = Scratch::new();
        let entry = svc_with(&t, "flood", &["flood", &BYTES.to_string()], MANAGEMENT);
        let mut m = Running::start(t, &entry).await;
        let pid = m.process("flood").await.pid.expect("a pid");
        let file = m.t.path("state").join("logs").join("flood.log");
        let size = || std::fs::metadata(&file).map_or(0, |md| md.len());
        let mut at_kills = Vec::new();
        for _ in 0..KILLS {
            tokio::time::sleep(ALIVE).await;
            m.crash().await;
            at_kills.push(size());
            // The child fills its pipe meanwhile, and waits.
            tokio::time::sleep(Duration::from_millis(50)).await;
            m.rerun().await;
            m.wait_until("the flood re-attached with its pid", |ps| {
                ps.iter().any(|p| p.id == "flood" && p.pid == Some(pid))
                    || ps.iter().any(|p| p.id == "flood" && p.state != "running")
            })
            .await;
        }
        let deadline = Instant::now() + SETTLE * 4;
        while size() < BYTES {
            assert!(
                Instant::now() < deadline,
                "the log holds {} of {BYTES} bytes; manager log:\n{}",
                size(),
                m.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        m.cli(&["shutdown"]).await.ok();
        println!("file size at each kill: {at_kills:?} of {BYTES}");
        assert_eq!(size(), BYTES, "nothing written twice");
        check_flood(std::slice::from_ref(&file), Layout::Raw, BYTES, 100);
        let relayed = m.t.path("state").join("spool").join("flood.raw");
        assert!(
            relayed.exists(),
            "the flood was relayed (its ledger exists): {}",
            relayed.display()
        );
    })
    .await
    .expect("watchdog");
}
