//! The bearer token of the TCP listener: from `api_token`, else read from
//! `api_token_file`, else generated (32 random bytes from the kernel, as
//! hex) and written to `<state_dir>/api-token` (mode 0600) for local
//! clients. A generated token is new on every start.
//!
//! The token never appears in a log line, a `Debug` output or an error:
//! [`Token`] prints as `Token(<redacted>)`.

use std::fmt;
use std::fs::OpenOptions;
use std::io::{Read as _, Write as _};
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use procman_core::config::ManagerConfig;

/// The largest token file read (a token is a line, not a document).
const MAX_FILE: u64 = 4096;
/// Mode of the generated token file.
const TOKEN_MODE: u32 = 0o600;

/// A secret compared in constant time, printed redacted.
pub struct Token(String);

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

impl Token {
    /// Whether `given` is the token; the time taken depends only on the
    /// lengths, never on where the first difference is.
    pub fn matches(&self, given: &[u8]) -> bool {
        let ours = self.0.as_bytes();
        let mut diff = u8::from(ours.len() != given.len());
        for i in 0..ours.len().max(given.len()) {
            let a = ours.get(i).copied().unwrap_or(0);
            let b = given.get(i).copied().unwrap_or(0);
            diff |= a ^ b;
        }
        std::hint::black_box(diff) == 0
    }
}

/// Where the token came from (for the startup log, never the token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Config,
    File(PathBuf),
    Generated(PathBuf),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Config => f.write_str("api_token"),
            Origin::File(p) => write!(f, "api_token_file {}", p.display()),
            Origin::Generated(p) => write!(f, "generated into {}", p.display()),
        }
    }
}

/// The token for this run (see the module docs).
pub fn load(config: &ManagerConfig, state_dir: &Path) -> anyhow::Result<(Token, Origin)> {
    let generated = state_dir.join(procman_api::TOKEN_NAME);
    if let Some(t) = &config.api_token {
        remove_stale(&generated)?;
        return Ok((checked(t.clone(), "api_token")?, Origin::Config));
    }
    if let Some(path) = &config.api_token_file {
        remove_stale(&generated)?;
        let token = read_file(path)?;
        return Ok((token, Origin::File(path.clone())));
    }
    let token = generate()?;
    write_file(&generated, &token)?;
    Ok((token, Origin::Generated(generated)))
}

/// A token must be a valid header value: visible ASCII, no spaces.
fn checked(text: String, what: &str) -> anyhow::Result<Token> {
    if text.is_empty() {
        bail!("{what} is empty");
    }
    if !text.bytes().all(|b| b.is_ascii_graphic()) {
        bail!("{what} must be printable ASCII without spaces (it is sent in an HTTP header)");
    }
    Ok(Token(text))
}

fn read_file(path: &Path) -> anyhow::Result<Token> {
    let shown = path.display();
    // Followed if a link (a mounted secret is one): the file is the
    // administrator's choice; what matters is who can read the target.
    let mut file =
        std::fs::File::open(path).with_context(|| format!("cannot read api_token_file {shown}"))?;
    let meta = file
        .metadata()
        .with_context(|| format!("cannot read api_token_file {shown}"))?;
    if !meta.is_file() {
        bail!("api_token_file {shown} is not a regular file");
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o004 != 0 {
        bail!(
            "api_token_file {shown} is readable by every user (mode {mode:03o}): fix with `chmod 600 {shown}`"
        );
    }
    let mut text = String::new();
    (&mut file)
        .take(MAX_FILE + 1)
        .read_to_string(&mut text)
        .with_context(|| format!("cannot read api_token_file {shown} (it must be UTF-8 text)"))?;
    if text.len() as u64 > MAX_FILE {
        bail!("api_token_file {shown} is longer than {MAX_FILE} bytes");
    }
    let trimmed = text.trim_end_matches(['\n', '\r']).to_string();
    if trimmed.is_empty() {
        bail!("api_token_file {shown} is empty");
    }
    checked(trimmed, &format!("the token in api_token_file {shown}"))
}

/// 32 random bytes from the kernel, as 64 hex digits.
fn generate() -> anyhow::Result<Token> {
    let mut bytes = [0u8; 32];
    let mut filled = 0;
    while filled < bytes.len() {
        let n =
            rustix::rand::getrandom(&mut bytes[filled..], rustix::rand::GetRandomFlags::empty())
                .context("cannot generate the API token: getrandom")?;
        filled += n;
    }
    let mut hex = String::with_capacity(64);
    for b in bytes {
        hex.push_str(&format!("{b:02x}"));
    }
    Ok(Token(hex))
}

/// Removes what a previous run left at `path` (a link itself, never its
/// target).
fn remove_stale(path: &Path) -> anyhow::Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => {
            Err(e).with_context(|| format!("cannot remove the old token file {}", path.display()))
        }
    }
}

/// Writes the token as a new file of mode 0600: created exclusively and
/// without following a link, so nothing planted at the path is written to.
fn write_file(path: &Path, token: &Token) -> anyhow::Result<()> {
    remove_stale(path)?;
    let shown = path.display();
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(TOKEN_MODE)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(path)
        .with_context(|| format!("cannot create the token file {shown}"))?;
    // The umask may have taken bits away, never added any; set it exactly.
    file.set_permissions(std::fs::Permissions::from_mode(TOKEN_MODE))
        .with_context(|| format!("cannot set the mode of the token file {shown}"))?;
    file.write_all(format!("{}\n", token.0).as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write the token file {shown}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_only_the_same_bytes() {
        let t = Token("s3cret-token".into());
        assert!(t.matches(b"s3cret-token"));
        assert!(!t.matches(b"s3cret-tokeN"));
        assert!(!t.matches(b"s3cret-token-and-more"));
        assert!(!t.matches(b"s3cret"));
        assert!(!t.matches(b""));
    }

    #[test]
    fn debug_never_shows_the_token() {
        let t = Token("s3cret-token".into());
        assert_eq!(format!("{t:?}"), "Token(<redacted>)");
    }

    #[test]
    fn generated_tokens_are_64_hex_digits_and_differ() {
        let a = generate().expect("token");
        let b = generate().expect("token");
        assert_eq!(a.0.len(), 64);
        assert!(a.0.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a.0, b.0);
    }

    #[test]
    fn a_token_file_is_trimmed_and_must_be_private() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("token");
        std::fs::write(&path, "abc\n").expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        assert!(read_file(&path).expect("read").matches(b"abc"));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let e = read_file(&path).expect_err("world-readable refused");
        assert!(e.to_string().contains("chmod 600"), "{e}");
        std::fs::write(&path, "\n").expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let e = read_file(&path).expect_err("empty refused");
        assert!(e.to_string().contains("is empty"), "{e}");
        let e = read_file(&dir.path().join("missing")).expect_err("missing refused");
        assert!(
            format!("{e:#}").contains("cannot read api_token_file"),
            "{e}"
        );
    }

    #[test]
    fn the_written_file_is_0600_and_replaces_a_planted_link() {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("victim");
        std::fs::write(&target, "keep").expect("write");
        let path = dir.path().join("api-token");
        std::os::unix::fs::symlink(&target, &path).expect("symlink");
        let token = generate().expect("token");
        write_file(&path, &token).expect("write");
        assert_eq!(std::fs::read_to_string(&target).expect("read"), "keep");
        let meta = std::fs::symlink_metadata(&path).expect("stat");
        assert!(meta.is_file());
        assert_eq!(meta.mode() & 0o777, 0o600);
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(token.matches(text.trim_end().as_bytes()));
    }
}
