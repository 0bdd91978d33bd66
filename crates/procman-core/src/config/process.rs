//! One entry of `managed_processes`: what it is, `management.control`,
//! `management.discovery` and `depends_on`. The other `management`
//! sections are in `management.rs`.

use std::time::Duration;

use super::decode::{Decoder, Field};
use super::discovery::discovery;
use super::error::{cut, Problem};
use super::node::{Item, Pos, Section};
use super::schema::{
    Control, Dependency, DependencyCondition, ExportHints, ProcessConfig, ProcessKind, Profile,
};
use super::validate;
use super::{limits, management};
use crate::outcome::Signal;
use crate::platform::{AccountError, Group, User};
use rustix::process::{getegid, geteuid, getgid};

const PROCESS_KEYS: &[&str] = &[
    "id",
    "type",
    "profile_type",
    "enabled",
    "management",
    "depends_on",
    "shutdown_on_exit",
    "export",
];
const EXPORT_KEYS: &[&str] = &["image"];
const MANAGEMENT_KEYS: &[&str] = &[
    "control",
    "discovery",
    "health_check",
    "resource_limits",
    "restart_policy",
    "logging",
];
const CONTROL_KEYS: &[&str] = &[
    "executable",
    "arguments",
    "working_directory",
    "environment",
    "env_file",
    "startup_timeout",
    "shutdown_timeout",
    "shutdown_signal",
    "user",
    "group",
    "success_exit_codes",
    "port",
];
const DEPENDENCY_KEYS: &[&str] = &["id", "condition"];

/// A decoded process and what the checks across processes need to point
/// at: where its id and each `depends_on` entry are written.
pub(super) struct Draft {
    pub config: ProcessConfig,
    /// Position and key path of the id; `None` when there is no usable id.
    pub id_at: Option<(Pos, String)>,
    pub depends_on: Vec<(Pos, String)>,
}

pub(super) fn process(d: &mut Decoder<'_>, item: &Item<'_>) -> Draft {
    let kinds = [
        ("standard_managed", ProcessKind::StandardManaged),
        ("integrated_managed", ProcessKind::IntegratedManaged),
        ("unmanaged", ProcessKind::Unmanaged),
    ];
    let profiles = [
        ("long_running_service", Profile::LongRunning),
        ("batch", Profile::Batch),
        ("web", Profile::LongRunning),
        ("database", Profile::LongRunning),
        ("worker", Profile::LongRunning),
        ("scheduler", Profile::LongRunning),
        ("default", Profile::LongRunning),
    ];
    let elsewhere: Vec<(&str, &'static str)> = MANAGEMENT_KEYS
        .iter()
        .map(|&k| (k, "management"))
        .chain(CONTROL_KEYS.iter().map(|&k| (k, "management.control")))
        .filter(|(k, _)| !PROCESS_KEYS.contains(k))
        .collect();
    let s = d.open(item, PROCESS_KEYS, &elsewhere);
    // An entry that is not a mapping has been reported; what the defaults
    // would say about its absent keys is noise.
    let noise = (!s.present()).then(|| d.mark());

    let id_item = d.require(&s, "id");
    let id = id_item.as_ref().and_then(|i| d.string(i));
    if let (Some(id), Some(i)) = (&id, &id_item) {
        if let Err(message) = validate::check_id(id) {
            d.invalid(i, message);
        }
    }
    // When `type` is wrong, what the type requires is not checked: the
    // user may have meant any of them.
    let kind_field = d.field(&s, "type", |d, i| d.choice(i, "process type", &kinds));
    let known_kind = match kind_field {
        Field::Bad => None,
        other => Some(other.or(ProcessKind::StandardManaged)),
    };
    let kind = known_kind.unwrap_or(ProcessKind::StandardManaged);
    let elsewhere: Vec<(&str, &'static str)> =
        CONTROL_KEYS.iter().map(|&k| (k, "control")).collect();
    let mgmt = d.child_with(&s, "management", MANAGEMENT_KEYS, &elsewhere);
    let (depends_on, depends_at) = depends_on(d, &s);
    let config = ProcessConfig {
        id: id.clone().unwrap_or_default(),
        kind,
        profile: d
            .field(&s, "profile_type", |d, i| {
                d.choice(i, "profile type", &profiles)
            })
            .or(Profile::LongRunning),
        enabled: d.field(&s, "enabled", Decoder::boolean).or(true),
        // `control` written one level too high is reported as such, not
        // also as missing.
        control: control(d, &mgmt, known_kind, s.has("control")),
        health_check: management::health_check(d, &mgmt, kind).map(Box::new),
        resource_limits: limits::resource_limits(d, &mgmt),
        restart: management::restart_policy(d, &mgmt),
        logging: management::logging(d, &mgmt),
        depends_on,
        discovery: discovery(d, &mgmt, known_kind),
        shutdown_on_exit: shutdown_on_exit(d, &s, known_kind),
        export: export(d, &s),
    };
    if let Some(mark) = noise {
        d.rollback(mark);
    }
    Draft {
        config,
        id_at: id.and(id_item.map(|i| (i.pos(), i.path))),
        depends_on: depends_at,
    }
}

/// `shutdown_on_exit`: only a process procman runs can end the manager
/// by ending.
fn shutdown_on_exit(d: &mut Decoder<'_>, s: &Section<'_>, kind: Option<ProcessKind>) -> bool {
    let on = d.field(s, "shutdown_on_exit", Decoder::boolean).or(false);
    if let (true, Some(ProcessKind::Unmanaged), Some(item)) = (on, kind, s.get("shutdown_on_exit"))
    {
        d.invalid(
            &item,
            "an unmanaged process is not run by procman, so its end cannot end the manager",
        );
    }
    on
}

/// `export`: hints for `procman export`, unused by the manager itself.
fn export(d: &mut Decoder<'_>, s: &Section<'_>) -> Option<Box<ExportHints>> {
    let e = d.child(s, "export", EXPORT_KEYS);
    if !e.present() {
        return None;
    }
    let image = d.field(&e, "image", Decoder::nonempty).value();
    Some(Box::new(ExportHints { image }))
}

/// `management.control`; `kind` is `None` when `type` is wrong.
fn control(
    d: &mut Decoder<'_>,
    mgmt: &Section<'_>,
    kind: Option<ProcessKind>,
    misplaced: bool,
) -> Control {
    let s = d.child(mgmt, "control", CONTROL_KEYS);
    let executable = match kind {
        Some(ProcessKind::Unmanaged) | None => d.field(&s, "executable", Decoder::string).value(),
        Some(_) if s.present() => d.require(&s, "executable").and_then(|i| d.nonempty(&i)),
        Some(_) => {
            if mgmt.get("control").is_none() && !misplaced {
                d.report(s.pos, &s.path, Problem::Missing);
            }
            None
        }
    };
    let port = d.field(&s, "port", |d, i| d.uint(i, 1, 65_535)).value();
    if let (Some(item), Some(k)) = (s.get("port"), kind) {
        if k != ProcessKind::IntegratedManaged {
            d.invalid(&item, "`port` is only used by integrated_managed processes");
        }
    }
    Control {
        executable: executable.unwrap_or_default(),
        arguments: d
            .field(&s, "arguments", Decoder::string_list)
            .or(Vec::new()),
        working_directory: d.field(&s, "working_directory", Decoder::path).value(),
        environment: d.field(&s, "environment", environment).or(Vec::new()),
        env_file: d.field(&s, "env_file", Decoder::path).value(),
        // Zero would fail every start before the process could run.
        startup_timeout: d
            .field(&s, "startup_timeout", management::positive_duration)
            .or(Duration::from_secs(60)),
        shutdown_timeout: d
            .field(&s, "shutdown_timeout", Decoder::duration)
            .or(Duration::from_secs(10)),
        shutdown_signal: d.field(&s, "shutdown_signal", signal).or(Signal::TERM),
        user: d.field(&s, "user", user).value(),
        group: d.field(&s, "group", group).value(),
        success_exit_codes: d
            .field(&s, "success_exit_codes", |d, i| codes(d, i, 0, 255))
            .value()
            .map(|codes| {
                codes
                    .into_iter()
                    .filter_map(|c| i32::try_from(c).ok())
                    .collect()
            })
            .unwrap_or_else(|| vec![0]),
        port: port.and_then(|p| u16::try_from(p).ok()),
    }
}

/// `user`: an account that exists and that this manager can run a
/// process as (see [`switchable`]).
fn user(d: &mut Decoder<'_>, item: &Item<'_>) -> Option<String> {
    let name = d.nonempty(item)?;
    if !d.here {
        return Some(name);
    }
    let own = User::lookup(&name).map(|u| u.uid == geteuid().as_raw());
    switchable(d, item, "user", name, own)
}

/// `group`: a group that exists and that this manager can run a process
/// with (see [`switchable`]).
fn group(d: &mut Decoder<'_>, item: &Item<'_>) -> Option<String> {
    let name = d.nonempty(item)?;
    if !d.here {
        return Some(name);
    }
    let own =
        Group::lookup(&name).map(|g| g.gid == getegid().as_raw() || g.gid == getgid().as_raw());
    switchable(d, item, "group", name, own)
}

/// Root can switch to any account; another user only to itself and its
/// own group (changing either needs CAP_SETUID or CAP_SETGID), so a
/// config it cannot honour is refused before anything starts. `own` says
/// whether the account is the manager's own, or why it was not found.
fn switchable(
    d: &mut Decoder<'_>,
    item: &Item<'_>,
    key: &str,
    name: String,
    own: Result<bool, AccountError>,
) -> Option<String> {
    let euid = geteuid().as_raw();
    let problem = match own {
        Err(e) => e.to_string(),
        Ok(own) if own || euid == 0 => return Some(name),
        Ok(_) => {
            let me = match User::by_uid(euid) {
                Ok(Some(u)) => format!("uid {euid} ({})", u.name),
                _ => format!("uid {euid}"),
            };
            format!(
                "procman runs as {me}, not as root, so it cannot switch to {key} `{name}`; \
                 run procman as root, or remove `{key}`"
            )
        }
    };
    d.invalid(item, problem);
    None
}

fn signal(d: &mut Decoder<'_>, item: &Item<'_>) -> Option<Signal> {
    let text = d.nonempty(item)?;
    let signal = Signal::parse(&text);
    if signal.is_none() {
        let message = format!(
            "unknown signal `{}`; expected a name like SIGTERM or TERM, or a number",
            cut(&text)
        );
        d.invalid(item, message);
    }
    signal
}

/// A non-empty list of whole numbers in `min..=max`; a single number is
/// a list of one.
pub(super) fn codes(d: &mut Decoder<'_>, item: &Item<'_>, min: u64, max: u64) -> Option<Vec<u64>> {
    if item.node.as_scalar().is_some() {
        return d.uint(item, min, max).map(|c| vec![c]);
    }
    let elements = d.list(item)?;
    if elements.is_empty() {
        d.report(item.pos(), &item.path, Problem::Empty);
        return None;
    }
    let codes: Vec<Option<u64>> = elements.iter().map(|e| d.uint(e, min, max)).collect();
    codes.into_iter().collect()
}

/// `environment`: a mapping of names to values, or a list of `K=V`.
fn environment(d: &mut Decoder<'_>, item: &Item<'_>) -> Option<Vec<(String, String)>> {
    let mut vars: Vec<(String, String)> = Vec::new();
    if item.node.as_mapping().is_some() {
        // Every key is a variable name: none is "unknown".
        let s = d.open_any(item);
        for (key, value) in s.entries() {
            let name = key.as_str().to_string();
            if let Err(message) = check_var_name(&name) {
                d.report(key.pos(), &value.path, Problem::Invalid(message));
            } else if let Some(text) = d.string(&value) {
                vars.push((name, text));
            }
        }
        return Some(vars);
    }
    let Some(elements) = item.elements() else {
        d.wrong_type(item, "a mapping or a list of K=V strings");
        return None;
    };
    // A set, not a scan of `vars`: the list may be long.
    let mut names = std::collections::HashSet::new();
    for element in elements {
        let Some(text) = d.string(&element) else {
            continue;
        };
        let Some((name, value)) = text.split_once('=') else {
            d.invalid(&element, format!("expected K=V, found `{}`", cut(&text)));
            continue;
        };
        if let Err(message) = check_var_name(name) {
            d.invalid(&element, message);
        } else if !names.insert(name.to_string()) {
            d.invalid(&element, format!("variable {} is set twice", cut(name)));
        } else {
            vars.push((name.to_string(), value.to_string()));
        }
    }
    Some(vars)
}

fn check_var_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.contains(['=', '\0']) {
        Err(format!(
            "`{}` is not a valid environment variable name",
            cut(name)
        ))
    } else {
        Ok(())
    }
}

/// What `depends_on` decodes to: the dependencies, and where each is
/// written (for the checks across processes).
#[derive(Default)]
struct DependsOn {
    deps: Vec<Dependency>,
    at: Vec<(Pos, String)>,
}

impl DependsOn {
    fn add(
        &mut self,
        d: &mut Decoder<'_>,
        id: &str,
        pos: Pos,
        path: String,
        s: Option<&Section<'_>>,
    ) {
        let condition = s.and_then(|s| d.field(s, "condition", condition).value());
        self.deps.push(Dependency {
            id: id.trim().to_string(),
            condition: condition.unwrap_or(DependencyCondition::Started),
        });
        self.at.push((pos, path));
    }

    /// The compose form: a mapping of ids to `{condition: ...}` (or to
    /// nothing, for the default condition).
    fn add_named(&mut self, d: &mut Decoder<'_>, item: &Item<'_>) {
        let s = d.open_any(item);
        for (key, value) in s.entries() {
            let settings = (!value.is_null()).then(|| d.open(&value, &["condition"], &[]));
            let path = value.path.clone();
            self.add(d, key.as_str(), key.pos(), path, settings.as_ref());
        }
    }
}

/// `depends_on`: a list of ids or `{id, condition}` mappings; also the
/// docker compose forms, `{X: {condition: ...}}` in the list and a
/// mapping of ids to conditions.
fn depends_on(d: &mut Decoder<'_>, s: &Section<'_>) -> (Vec<Dependency>, Vec<(Pos, String)>) {
    let mut out = DependsOn::default();
    let Some(item) = s.get("depends_on") else {
        return (out.deps, out.at);
    };
    match item.elements() {
        Some(elements) => {
            for e in elements {
                match e.node.as_mapping() {
                    Some(m) if m.len() == 1 && !m.contains_key("id") => out.add_named(d, &e),
                    Some(_) => {
                        let entry = d.open(&e, DEPENDENCY_KEYS, &[]);
                        if let Some(id_item) = d.require(&entry, "id") {
                            if let Some(id) = d.nonempty(&id_item) {
                                out.add(d, &id, id_item.pos(), e.path.clone(), Some(&entry));
                            }
                        }
                    }
                    None => {
                        if let Some(id) = d.nonempty(&e) {
                            out.add(d, &id, e.pos(), e.path.clone(), None);
                        }
                    }
                }
            }
        }
        None if item.node.as_mapping().is_some() => out.add_named(d, &item),
        None => d.wrong_type(&item, "a list of process ids"),
    }
    (out.deps, out.at)
}

/// `started`, `healthy` or `completed_successfully`; compose's
/// `service_` prefix is accepted too.
fn condition(d: &mut Decoder<'_>, item: &Item<'_>) -> Option<DependencyCondition> {
    let text = d.string(item)?;
    let word = text.trim();
    let word = word.strip_prefix("service_").unwrap_or(word);
    let conditions = [
        ("started", DependencyCondition::Started),
        ("healthy", DependencyCondition::Healthy),
        (
            "completed_successfully",
            DependencyCondition::CompletedSuccessfully,
        ),
    ];
    if let Some(&(_, c)) = conditions.iter().find(|(name, _)| *name == word) {
        return Some(c);
    }
    let hint = super::error::Hint::closest(word, conditions.iter().map(|&(n, _)| n));
    d.report(
        item.pos(),
        &item.path,
        Problem::UnknownChoice {
            what: "condition",
            value: word.to_string(),
            choices: "started, healthy, completed_successfully".into(),
            hint,
        },
    );
    None
}
