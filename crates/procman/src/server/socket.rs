//! The Unix socket `<state_dir>/procman.sock`: mode 0600 in the 0700 state
//! directory, so only the manager's user can connect, and no token is
//! needed on it.
//!
//! The manager holds the state directory's lock before the socket is
//! made, so whatever is at the path is a leftover of a manager that died:
//! it is removed (a symbolic link itself, never its target) and the socket
//! bound anew. At shutdown the socket is removed, if it is still ours.

use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use tokio::net::UnixListener;

/// Mode of the socket.
const SOCKET_MODE: u32 = 0o600;

/// The socket's path, removed on drop if it is still the one we bound.
pub struct SocketFile {
    path: PathBuf,
    /// (device, inode) of the socket we bound.
    id: Option<(u64, u64)>,
}

impl SocketFile {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        let ours = std::fs::symlink_metadata(&self.path)
            .ok()
            .map(|m| (m.dev(), m.ino()));
        if ours.is_some() && ours == self.id {
            if let Err(e) = std::fs::remove_file(&self.path) {
                tracing::warn!(path = %self.path.display(), error = %e, "cannot remove the API socket");
            }
        }
    }
}

/// Binds the socket under `state_dir` (see the module docs).
pub fn bind(state_dir: &Path) -> anyhow::Result<(UnixListener, SocketFile)> {
    let path = state_dir.join(procman_api::SOCKET_NAME);
    let shown = path.display();
    match std::fs::symlink_metadata(&path) {
        Ok(m) if m.is_dir() => {
            bail!("cannot create the API socket {shown}: a directory is in the way (remove it)")
        }
        Ok(_) => {
            std::fs::remove_file(&path)
                .with_context(|| format!("cannot remove the stale API socket {shown}"))?;
            tracing::debug!(path = %shown, "removed the socket a previous manager left");
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot check the API socket {shown}")),
    }
    let listener = UnixListener::bind(&path)
        .with_context(|| format!("cannot create the API socket {shown}"))?;
    // Between bind and chmod the socket has the umask's mode, but the state
    // directory is 0700: nobody else can reach it in that moment.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(SOCKET_MODE))
        .with_context(|| format!("cannot set the mode of the API socket {shown}"))?;
    let id = std::fs::symlink_metadata(&path)
        .ok()
        .map(|m| (m.dev(), m.ino()));
    Ok((listener, SocketFile { path, id }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_leftover_is_replaced_a_link_never_followed_and_only_ours_removed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(procman_api::SOCKET_NAME);
        // A link planted at the path: replaced, its target untouched.
        let target = dir.path().join("victim");
        std::fs::write(&target, "keep").expect("write");
        std::os::unix::fs::symlink(&target, &path).expect("symlink");
        let (listener, file) = bind(dir.path()).expect("bind");
        assert_eq!(std::fs::read_to_string(&target).expect("read"), "keep");
        let meta = std::fs::symlink_metadata(&path).expect("stat");
        assert_eq!(meta.mode() & 0o170000, 0o140000, "a socket");
        assert_eq!(meta.mode() & 0o777, 0o600);
        drop(listener);
        drop(file);
        assert!(!path.exists(), "removed at the end");

        // A socket left by a dead manager: replaced. Ours, once someone
        // else has replaced it, is left alone.
        let (_old, stale) = bind(dir.path()).expect("bind");
        std::mem::forget(stale);
        let (_listener, file) = bind(dir.path()).expect("bind over a leftover");
        std::fs::remove_file(&path).expect("remove");
        std::fs::write(&path, "someone else's").expect("write");
        drop(file);
        assert_eq!(
            std::fs::read_to_string(&path).expect("read"),
            "someone else's"
        );

        // A directory in the way is an error that says so.
        std::fs::remove_file(&path).expect("remove");
        std::fs::create_dir(&path).expect("mkdir");
        let Err(e) = bind(dir.path()) else {
            panic!("a directory in the way was not refused");
        };
        assert!(e.to_string().contains("a directory is in the way"), "{e}");
    }
}
