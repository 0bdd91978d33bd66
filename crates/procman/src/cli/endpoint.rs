//! Finding the manager a client command talks to, the same way the manager
//! chose where to listen:
//!
//! 1. `--url http://HOST:PORT`: a manager over TCP, with a token from
//!    `--token`, `PROCMAN_TOKEN`, `--token-file`, or the `api-token` file of
//!    the state directory found as below.
//! 2. `--state-dir DIR`: the socket `DIR/procman.sock`.
//! 3. The config (`-c FILE`, else `PROCMAN_CONFIG`, else `./procman.yaml`
//!    if it exists): its `process_manager.state_dir`, else
//!    `PROCMAN_STATE_DIR`, else the default directory of that config file
//!    (`procman_core::state::dir`, as the manager does).
//! 4. No config at all: `PROCMAN_STATE_DIR`.
//!
//! Nothing answering there is [`Failure::NoManager`] (exit 3), with a
//! message that names the config and the socket looked for.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use procman_api::client::{Client, ClientError, Timeouts};
use procman_core::config::Config;

use crate::exit::Failure;

/// The config file used when none is given, if it exists.
const DEFAULT_CONFIG: &str = "procman.yaml";

/// Which manager to talk to (every client command).
#[derive(Debug, Clone, clap::Args)]
pub struct ManagerArgs {
    /// The config file of the manager (its state directory holds the
    /// socket); default `procman.yaml` if it exists.
    #[arg(short, long, env = "PROCMAN_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The manager's state directory (the socket is `DIR/procman.sock`),
    /// instead of the one of the config.
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// A manager over TCP (`process_manager.bind` and `port`), as
    /// `http://HOST:PORT`, instead of the Unix socket.
    #[arg(long, env = "PROCMAN_URL", value_name = "URL")]
    pub url: Option<String>,
    /// The API token for `--url` (default: the `api-token` file of the
    /// state directory).
    #[arg(
        long,
        env = "PROCMAN_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN",
        value_parser = secret
    )]
    pub token: Option<Secret>,
    /// A file holding the API token for `--url`.
    #[arg(long, value_name = "FILE", conflicts_with = "token")]
    pub token_file: Option<PathBuf>,
    /// How long to wait for an answer (default 60s; 5m for a start, stop
    /// or restart that waits until done).
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub timeout: Option<Duration>,
}

/// A token from the command line: kept out of `Debug` output.
#[derive(Clone)]
pub struct Secret(String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

fn secret(s: &str) -> Result<Secret, String> {
    Ok(Secret(s.to_string()))
}

/// A manager found: the client, and what to say when nobody answers.
pub struct Located {
    pub client: Client,
    /// `no manager running for …` / `no manager answers at …`.
    pub missing: String,
    /// The config, when one was loaded to find the manager.
    pub config: Option<Config>,
}

impl Located {
    /// A client error as the failure to report: "nobody there" is exit 3
    /// with the message that says where we looked, the rest exit 1 after
    /// "cannot `doing`".
    pub fn failure(&self, doing: &str, e: ClientError) -> Failure {
        match e {
            ClientError::NoManager { .. } => Failure::NoManager(self.missing.clone()),
            e => Failure::Runtime(anyhow::Error::new(e).context(format!("cannot {doing}"))),
        }
    }

    /// Like [`failure`](Located::failure), but a `not_found` answer (an
    /// unknown process) is a usage error (exit 2), as for `procman logs`.
    pub fn failure_for(&self, doing: &str, e: ClientError) -> Failure {
        match e.api() {
            // The manager's message names the process.
            Some(api) if api.code == "not_found" => {
                Failure::Config(format!("procman: cannot {doing}: {}", api.message))
            }
            _ => self.failure(doing, e),
        }
    }
}

/// The state directory and where it came from (for messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub state_dir: PathBuf,
    /// `procman.yaml`, `state directory /x`: what "no manager running for"
    /// names.
    pub for_what: String,
}

/// Finds the manager named by `args` (loading the config if that is how).
pub fn locate(args: &ManagerArgs) -> Result<Located, Failure> {
    let env = |name: &str| std::env::var_os(name);
    let exists = |p: &Path| p.exists();
    let (found, config) = match &args.url {
        // Over TCP a state directory is only needed for the token file.
        Some(_) if args.token.is_some() || args.token_file.is_some() => (None, None),
        // Not finding one is then said as "a token is needed".
        Some(_) => find(args, &env, &exists).map_or((None, None), |(f, c)| (Some(f), c)),
        None => {
            let (found, config) = find(args, &env, &exists)?;
            (Some(found), config)
        }
    };
    let timeouts = timeouts(args.timeout);
    let (client, missing) = match &args.url {
        Some(url) => {
            let token = token(args, found.as_ref())?;
            let client =
                Client::tcp(url, token).map_err(|e| Failure::Config(format!("procman: {e}")))?;
            let missing = format!("no manager answers at {}", client.endpoint());
            (client, missing)
        }
        None => {
            let Some(found) = found else {
                return Err(Failure::Config("procman: no state directory".into()));
            };
            let socket = found.state_dir.join(procman_api::SOCKET_NAME);
            let missing = format!(
                "no manager running for {} (looked for {})",
                found.for_what,
                socket.display()
            );
            (Client::unix(socket), missing)
        }
    };
    Ok(Located {
        client: client.with_timeouts(timeouts),
        missing,
        config,
    })
}

/// The deadlines: `--timeout` for every call, else the client's defaults.
fn timeouts(timeout: Option<Duration>) -> Timeouts {
    let default = Timeouts::default();
    match timeout {
        Some(t) => Timeouts {
            request: t,
            action: t,
            ..default
        },
        None => default,
    }
}

/// The state directory, by the rules at the top (the environment and "does
/// this file exist" passed in, for tests).
pub fn find(
    args: &ManagerArgs,
    env: &dyn Fn(&str) -> Option<OsString>,
    exists: &dyn Fn(&Path) -> bool,
) -> Result<(Found, Option<Config>), Failure> {
    if let Some(dir) = &args.state_dir {
        let found = Found {
            state_dir: dir.clone(),
            for_what: format!("state directory {}", dir.display()),
        };
        return Ok((found, None));
    }
    let default = Path::new(DEFAULT_CONFIG);
    let file = match &args.config {
        Some(file) => Some(file.as_path()),
        None if exists(default) => Some(default),
        None => None,
    };
    if let Some(file) = file {
        let config = super::load(file)?;
        let state_dir =
            procman_core::state::dir(config.manager.state_dir.as_deref(), &config.source)
                .map_err(|e| Failure::Config(format!("procman: {e}")))?;
        let found = Found {
            state_dir,
            for_what: file.display().to_string(),
        };
        return Ok((found, Some(config)));
    }
    match env("PROCMAN_STATE_DIR").filter(|v| !v.is_empty()) {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            let found = Found {
                for_what: format!("state directory {} (PROCMAN_STATE_DIR)", dir.display()),
                state_dir: dir,
            };
            Ok((found, None))
        }
        None => Err(Failure::Config(format!(
            "procman: no config file {DEFAULT_CONFIG} here: name the manager's config with \
             -c FILE (or PROCMAN_CONFIG), or its state directory with --state-dir DIR"
        ))),
    }
}

/// The token for `--url`: given, in a file, or the state directory's.
fn token(args: &ManagerArgs, found: Option<&Found>) -> Result<String, Failure> {
    if let Some(t) = &args.token {
        return Ok(t.0.clone());
    }
    let file = match (&args.token_file, found) {
        (Some(f), _) => f.clone(),
        (None, Some(found)) => found.state_dir.join(procman_api::TOKEN_NAME),
        (None, None) => {
            return Err(Failure::Config(
                "procman: --url needs a token: --token, PROCMAN_TOKEN or --token-file".into(),
            ))
        }
    };
    match std::fs::read_to_string(&file) {
        Ok(t) if !t.trim().is_empty() => Ok(t.trim().to_string()),
        Ok(_) => Err(Failure::Config(format!(
            "procman: the token file {} is empty",
            file.display()
        ))),
        Err(e) => Err(Failure::Config(format!(
            "procman: cannot read the API token from {}: {e} (pass --token or --token-file)",
            file.display()
        ))),
    }
}

/// Runs a client command's future on a runtime of its own (one thread:
/// a client waits on one manager at a time).
pub fn block_on<T>(f: impl std::future::Future<Output = Result<T, Failure>>) -> Result<T, Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            Failure::Runtime(anyhow::Error::new(e).context("cannot start the async runtime"))
        })?
        .block_on(f)
}

#[cfg(test)]
#[path = "tests/endpoint.rs"]
mod tests;
