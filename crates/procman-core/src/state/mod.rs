//! The state directory: where a manager keeps its lock (one manager per
//! directory), and, in later stages, its control socket and one state file
//! per process for re-attach; and the rules for every file and directory
//! the manager creates ([`files`]).

pub mod files;
mod lock;
pub mod record;
pub mod slots;

pub use lock::{LockError, StateError, StateLock};

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// Where a state directory's default lives for root.
const ROOT_BASE: &str = "/var/lib/hsu-procman";

/// The state directory of the manager of `config_file`: the config's
/// `state_dir` (`configured`), else `$PROCMAN_STATE_DIR`, else one
/// directory per config file, `<base>/<stem>-<hash>` (see [`default_dir`]).
/// Never a predictable directory in `/tmp`: without a home to put it in,
/// this is an error that says what to set.
pub fn dir(configured: Option<&Path>, config_file: &Path) -> Result<PathBuf, StateError> {
    let env = |name: &str| std::env::var_os(name);
    dir_from(
        configured,
        config_file,
        &env,
        rustix::process::geteuid().is_root(),
    )
}

/// [`dir`] with the environment and "are we root" passed in (for tests:
/// the real environment is shared by every test thread).
fn dir_from(
    configured: Option<&Path>,
    config_file: &Path,
    env: &dyn Fn(&str) -> Option<OsString>,
    root: bool,
) -> Result<PathBuf, StateError> {
    if let Some(p) = configured {
        return Ok(p.to_path_buf());
    }
    let set = |name: &str| env(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(p) = set("PROCMAN_STATE_DIR") {
        return Ok(p);
    }
    let base = if root {
        PathBuf::from(ROOT_BASE)
    } else {
        // XDG says a relative XDG_STATE_HOME is invalid and to be ignored.
        set("XDG_STATE_HOME")
            .filter(|p| p.is_absolute())
            .or_else(|| set("HOME").map(|h| h.join(".local/state")))
            .ok_or(StateError::NoHome)?
            .join("hsu-procman")
    };
    Ok(base.join(default_dir(config_file)))
}

/// `<config file stem>-<8 hex digits>`: the hash is of the config file's
/// canonical path, so two projects never share a lock or logs, and a
/// config reached through another path (a symlink, `..`) still finds its
/// own directory.
pub fn default_dir(config_file: &Path) -> String {
    let canonical = std::fs::canonicalize(config_file).unwrap_or_else(|_| {
        std::path::absolute(config_file).unwrap_or_else(|_| config_file.to_path_buf())
    });
    let stem = canonical
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "procman".into());
    format!("{stem}-{:08x}", fnv1a(&canonical) as u32)
}

/// A short, stable tag for a state directory (names this manager's cgroup).
pub fn tag(dir: &Path) -> String {
    format!("{:012x}", fnv1a(dir) & 0xffff_ffff_ffff)
}

/// FNV-1a of a path's bytes: stable across runs and versions, unlike
/// `DefaultHasher`.
fn fnv1a(path: &Path) -> u64 {
    fnv1a_bytes(path.as_os_str().as_encoded_bytes())
}

/// FNV-1a of `bytes` (also the checksum of the log spool's checkpoints).
pub(crate) fn fnv1a_bytes(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[cfg(test)]
#[path = "tests/dir.rs"]
mod tests;
