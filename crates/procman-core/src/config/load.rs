//! The entry points, and the top of the file: `process_manager` and
//! `log_collection`. Processes are in `process.rs` and `management.rs`;
//! checks across processes are in `validate.rs` and `log_files.rs`,
//! warnings in `warning.rs`.

use std::io::Read as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::decode::Decoder;
use super::document::Document;
use super::error::{cut, ConfigErrors, Diagnostic, Severity};
use super::management::rotation;
use super::node::{Item, Section};
use super::process::Draft;
use super::schema::{
    Config, LogCollection, LogFormat, LogLevel, LogTarget, ManagerConfig, ProcessConfig,
    TargetFormat,
};
use super::{document, log_files, process, text, validate, warning};

const TOP_KEYS: &[&str] = &["process_manager", "managed_processes", "log_collection"];
const MANAGER_KEYS: &[&str] = &[
    "port",
    "bind",
    "log_level",
    "log_format",
    "force_shutdown_timeout",
    "state_dir",
    "log_dir",
    "api_token",
    "api_token_file",
];
const COLLECTION_KEYS: &[&str] = &["enabled", "global_aggregation"];
const AGGREGATION_KEYS: &[&str] = &["enabled", "targets"];
const TARGET_KEYS: &[&str] = &["type", "path", "format", "rotation"];

/// Largest config file read: ten times what a config of thousands of
/// processes needs, and a bound on what `-c /dev/zero` can cost.
const MAX_FILE: u64 = 64 << 20;

/// Loads and validates the config file at `path`, expanding `${VAR}` from
/// the process environment.
pub fn load_file(path: &Path) -> Result<Config, ConfigErrors> {
    read_file(path, true)
}

/// [`load_file`] for a config meant for another host (`procman export`):
/// what only this host can tell is not checked (that a `user` or `group`
/// exists and that this manager could switch to it, that
/// `max_file_descriptors` fits this host's ceilings).
pub fn load_file_elsewhere(path: &Path) -> Result<Config, ConfigErrors> {
    read_file(path, false)
}

fn read_file(path: &Path, here: bool) -> Result<Config, ConfigErrors> {
    let whole_file = |message: String| {
        let problem = Diagnostic {
            line: 0,
            column: 0,
            path: String::new(),
            message,
            severity: Severity::Error,
        };
        ConfigErrors::new(path.to_path_buf(), vec![problem])
    };
    let mut bytes = Vec::new();
    let read = std::fs::File::open(path).and_then(|file| {
        // Room for the whole file at once: growing by doubling would hold
        // up to twice its size while it is read.
        let size = file.metadata().map_or(0, |m| m.len().min(MAX_FILE + 1));
        bytes.reserve_exact(usize::try_from(size).unwrap_or(0).saturating_add(1));
        file.take(MAX_FILE + 1).read_to_end(&mut bytes)
    });
    if let Err(e) = read {
        return Err(whole_file(format!("cannot read the config file: {e}")));
    }
    if bytes.len() as u64 > MAX_FILE {
        let message = format!("the config file is larger than {} MiB", MAX_FILE >> 20);
        return Err(whole_file(message));
    }
    let errors = |all| ConfigErrors::new(path.to_path_buf(), all);
    let doc = document::parse(text::decode(&bytes).map_err(errors)?).map_err(errors)?;
    // The tree holds all the walk reads: the text is freed before it,
    // not held through it.
    drop(bytes);
    load_document(doc, path, &|name| std::env::var(name).ok(), here)
}

/// Loads and validates config `text` as if read from `source`: relative
/// paths resolve against `source`'s directory, and `env` answers `${VAR}`.
pub fn load_str(
    text: &str,
    source: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigErrors> {
    let doc = document::parse(text).map_err(|all| ConfigErrors::new(source.to_path_buf(), all))?;
    load_document(doc, source, env, true)
}

/// Walks the parsed file at `source`.
fn load_document(
    doc: Document,
    source: &Path,
    env: &dyn Fn(&str) -> Option<String>,
    here: bool,
) -> Result<Config, ConfigErrors> {
    // Errors name the file as the caller did (as typed on the command
    // line); the config keeps it absolute.
    let shown = source;
    let source = std::path::absolute(source).unwrap_or_else(|_| source.to_path_buf());
    let base_dir = source
        .parent()
        .map_or_else(|| PathBuf::from("/"), Path::to_path_buf);
    let mut d = Decoder::new(env, base_dir, doc.problems);
    d.here = here;
    let config = decode(&mut d, &Item::root(doc.tree.root()), source);
    let (errors, warnings) = d.into_diagnostics();
    if errors.is_empty() {
        Ok(Config { warnings, ..config })
    } else {
        Err(ConfigErrors::new(shown.to_path_buf(), errors))
    }
}

/// The processes of `drafts`, each shared. A new vector: collected from
/// `drafts`, it would keep their allocation (some 860 bytes per process)
/// to hold a pointer each, for the manager's whole life.
fn shared(drafts: Vec<Draft>) -> Vec<Arc<ProcessConfig>> {
    let mut processes = Vec::with_capacity(drafts.len());
    processes.extend(drafts.into_iter().map(|draft| Arc::new(draft.config)));
    processes
}

fn decode(d: &mut Decoder<'_>, root: &Item<'_>, source: PathBuf) -> Config {
    let elsewhere: Vec<(&str, &'static str)> = MANAGER_KEYS
        .iter()
        .map(|&k| (k, "process_manager"))
        .collect();
    let top = d.open(root, TOP_KEYS, &elsewhere);
    let manager_section = d.child(&top, "process_manager", MANAGER_KEYS);
    let manager = manager(d, &manager_section);
    let items = match top.get("managed_processes") {
        Some(list) => d.list(&list).unwrap_or_default(),
        None => Vec::new(),
    };
    let drafts: Vec<Draft> = items.iter().map(|item| process::process(d, item)).collect();
    validate::processes(d, &drafts);
    let ids_at: Vec<_> = drafts.iter().map(|draft| draft.id_at.clone()).collect();
    let (log_collection, target_paths) = log_collection(d, &top);
    let config = Config {
        source,
        manager,
        processes: shared(drafts),
        log_collection,
        warnings: Vec::new(),
    };
    let writers = log_files::Writers {
        items: &items,
        ids_at: &ids_at,
        targets: &target_paths,
    };
    log_files::check(d, &config, &writers);
    warning::check(d, &config, &top, &items);
    config
}

fn manager(d: &mut Decoder<'_>, s: &Section<'_>) -> ManagerConfig {
    let levels = [
        ("trace", LogLevel::Trace),
        ("debug", LogLevel::Debug),
        ("info", LogLevel::Info),
        ("warn", LogLevel::Warn),
        ("error", LogLevel::Error),
    ];
    let formats = [("plain", LogFormat::Plain), ("json", LogFormat::Json)];
    let api_token = d.field(s, "api_token", Decoder::nonempty).value();
    let api_token_file = d.field(s, "api_token_file", Decoder::path).value();
    if let (Some(_), Some(item)) = (&api_token, s.get("api_token_file")) {
        d.invalid(&item, "set either api_token or api_token_file, not both");
    }
    ManagerConfig {
        port: d
            .field(s, "port", |d, i| d.uint(i, 0, 65_535))
            .value()
            .and_then(|p| u16::try_from(p).ok())
            .unwrap_or(50055),
        bind: d
            .field(s, "bind", |d, i| d.checked(i, check_bind))
            .value()
            .unwrap_or_else(|| "127.0.0.1".to_string()),
        log_level: d
            .field(s, "log_level", |d, i| d.choice(i, "log level", &levels))
            .or(LogLevel::Info),
        log_format: d
            .field(s, "log_format", |d, i| d.choice(i, "log format", &formats))
            .or(LogFormat::Plain),
        force_shutdown_timeout: d
            .field(s, "force_shutdown_timeout", Decoder::duration)
            .or(Duration::from_secs(30)),
        state_dir: d.field(s, "state_dir", Decoder::path).value(),
        log_dir: d.field(s, "log_dir", Decoder::path).value(),
        api_token,
        api_token_file,
    }
}

/// An IP address or a host name.
fn check_bind(text: &str) -> Result<(), String> {
    let t = text.trim();
    let host_name = t
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    if t.parse::<IpAddr>().is_ok() || host_name {
        Ok(())
    } else {
        Err(format!(
            "`{}` is not an IP address or a host name (write the port under `port`)",
            cut(t)
        ))
    }
}

/// `log_collection`, and where the path of each target is written (for
/// the check that no two writers share a file).
fn log_collection<'n>(
    d: &mut Decoder<'_>,
    top: &Section<'n>,
) -> (LogCollection, Vec<Option<Item<'n>>>) {
    let s = d.child(top, "log_collection", COLLECTION_KEYS);
    let agg = d.child(&s, "global_aggregation", AGGREGATION_KEYS);
    let mut targets = Vec::new();
    let mut paths = Vec::new();
    if let Some(list) = agg.get("targets") {
        for item in d.list(&list).unwrap_or_default() {
            if let Some(target) = target(d, &item) {
                targets.push(target);
                paths.push(item.at(&["path"]));
            }
        }
    }
    let collection = LogCollection {
        // Writing the section at all means wanting it; `enabled: false`
        // turns it off without deleting it.
        enabled: d.field(&s, "enabled", Decoder::boolean).or(s.present()),
        aggregation_enabled: d.field(&agg, "enabled", Decoder::boolean).or(agg.present()),
        targets,
    };
    (collection, paths)
}

#[derive(Clone, Copy, PartialEq)]
enum TargetType {
    File,
    Stdout,
    Stderr,
}

fn target(d: &mut Decoder<'_>, item: &Item<'_>) -> Option<LogTarget> {
    let types = [
        ("file", TargetType::File),
        ("process_manager_stdout", TargetType::Stdout),
        ("process_manager_stderr", TargetType::Stderr),
    ];
    let formats = [("plain", TargetFormat::Plain), ("json", TargetFormat::Json)];
    let s = d.open(item, TARGET_KEYS, &[]);
    if !s.present() {
        return None;
    }
    let kind = d
        .require(&s, "type")
        .and_then(|i| d.choice(&i, "target type", &types));
    let format = d
        .field(&s, "format", |d, i| d.choice(i, "format", &formats))
        .or(TargetFormat::Plain);
    let path = d.field(&s, "path", Decoder::path).value();
    let rotation = rotation(d, &s);
    match kind? {
        TargetType::File => Some(LogTarget::File {
            path: d.require(&s, "path").and(path)?,
            format,
            rotation,
        }),
        other => {
            for key in ["path", "rotation"] {
                if let Some(item) = s.get(key) {
                    d.invalid(&item, format!("`{key}` is only used by type: file"));
                }
            }
            Some(if other == TargetType::Stdout {
                LogTarget::ManagerStdout { format }
            } else {
                LogTarget::ManagerStderr { format }
            })
        }
    }
}
