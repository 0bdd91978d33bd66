//! What every child gets from the manager whatever its config says: the
//! manager's environment (its `environment` overrides it) and `/dev/null`
//! as its stdin. Both are made once, not per spawn: nothing in the manager
//! changes its own environment, and one descriptor on `/dev/null` serves
//! every child (each gets its own copy at 0).

use std::ffi::{c_char, CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::sync::OnceLock;

use super::clone::cstring;

/// A child's environment: `pointers` (null-terminated, for `execve`) lead
/// into `overrides`, held here, and into the manager's own variables,
/// read once and held for good.
pub(crate) struct Environment {
    _overrides: Vec<CString>,
    pointers: Vec<*const c_char>,
}

impl Environment {
    pub(crate) fn as_ptr(&self) -> *const *const c_char {
        self.pointers.as_ptr()
    }
}

/// The manager's environment, with `overrides` in place of (and after)
/// the variables of the same names.
pub(crate) fn environment(overrides: &[(String, String)]) -> io::Result<Environment> {
    let owned = overrides
        .iter()
        .map(|(k, v)| cstring(format!("{k}={v}").as_bytes(), "an environment variable"))
        .collect::<io::Result<Vec<CString>>>()?;
    let mut pointers: Vec<*const c_char> = inherited()
        .iter()
        .filter(|(k, _)| !overrides.iter().any(|(o, _)| OsStr::new(o) == k))
        .map(|(_, kv)| kv.as_ptr())
        .collect();
    pointers.extend(owned.iter().map(|c| c.as_ptr()));
    pointers.push(std::ptr::null());
    Ok(Environment {
        _overrides: owned,
        pointers,
    })
}

/// The manager's variables, each with its `KEY=VALUE` string.
fn inherited() -> &'static [(OsString, CString)] {
    static VARS: OnceLock<Vec<(OsString, CString)>> = OnceLock::new();
    VARS.get_or_init(|| {
        std::env::vars_os()
            .filter_map(|(k, v)| {
                let mut kv = k.as_bytes().to_vec();
                kv.push(b'=');
                kv.extend_from_slice(v.as_bytes());
                CString::new(kv).ok().map(|kv| (k, kv))
            })
            .collect()
    })
}

/// Opens (and reads) now what every spawn shares, with the launcher's
/// descriptors (see `launcher.rs`), rather than at the first spawn.
pub(crate) fn prepare() {
    let _ = inherited();
    if let Err(e) = dev_null() {
        tracing::debug!(error = %e, "cannot open /dev/null yet");
    }
}

/// `/dev/null`, opened once (close-on-exec: each child gets its own copy
/// at 0, and at 1 and 2 when asked).
pub(crate) fn dev_null() -> io::Result<BorrowedFd<'static>> {
    static NULL: OnceLock<OwnedFd> = OnceLock::new();
    if let Some(fd) = NULL.get() {
        return Ok(fd.as_fd());
    }
    let fd = OwnedFd::from(
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/null")?,
    );
    Ok(NULL.get_or_init(|| fd).as_fd())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    fn strings(env: &Environment) -> Vec<String> {
        env.pointers
            .iter()
            .take_while(|p| !p.is_null())
            // SAFETY: each non-null pointer leads to a NUL-terminated
            // string that `env` or the process-wide list holds.
            .map(|&p| unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn overrides_replace_the_managers_variables_and_come_last() {
        let path = std::env::var("PATH").expect("PATH is set");
        let env = environment(&[
            ("PATH".to_string(), "/nowhere".to_string()),
            ("PROCMAN_TEST_ONLY".to_string(), "1".to_string()),
        ])
        .expect("environment");
        let got = strings(&env);
        assert!(!got.contains(&format!("PATH={path}")), "{got:?}");
        assert_eq!(
            got[got.len() - 2..],
            [
                "PATH=/nowhere".to_string(),
                "PROCMAN_TEST_ONLY=1".to_string()
            ]
        );
        assert_eq!(env.pointers.last(), Some(&std::ptr::null()));
        let plain = strings(&environment(&[]).expect("environment"));
        assert!(plain.contains(&format!("PATH={path}")), "{plain:?}");
        assert!(environment(&[("A".to_string(), "b\0c".to_string())]).is_err());
    }
}
