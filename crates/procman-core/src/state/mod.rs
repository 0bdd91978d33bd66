//! The state directory: where a manager keeps its lock (one manager per
//! directory), and, in later stages, its control socket and one state file
//! per process for re-attach.

mod lock;

pub use lock::{LockError, StateLock};

use std::path::{Path, PathBuf};

/// The state directory: the config's `state_dir`, else `$PROCMAN_STATE_DIR`,
/// else `/var/lib/hsu-procman` for root and `$XDG_STATE_HOME/hsu-procman`
/// (default `~/.local/state/hsu-procman`) for anyone else.
pub fn dir(configured: Option<&Path>) -> PathBuf {
    if let Some(p) = configured {
        return p.to_path_buf();
    }
    if let Some(p) = std::env::var_os("PROCMAN_STATE_DIR").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    if rustix::process::geteuid().is_root() {
        return PathBuf::from("/var/lib/hsu-procman");
    }
    let base = std::env::var_os("XDG_STATE_HOME")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("hsu-procman")
}

/// A short, stable tag for a state directory (names this manager's cgroup).
pub fn tag(dir: &Path) -> String {
    // FNV-1a: stable across runs and versions, unlike `DefaultHasher`.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in dir.as_os_str().as_encoded_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{:012x}", h & 0xffff_ffff_ffff)
}
