//! `management.discovery`: how procman finds an `unmanaged` process it
//! did not start (a pid file, a pid, or a process name).

use super::decode::Decoder;
use super::error::{cut, Problem};
use super::node::Section;
use super::schema::{Discovery, ProcessKind};

const DISCOVERY_KEYS: &[&str] = &[
    "method",
    "pid_file",
    "pid",
    "process_name",
    "argument_match",
];

#[derive(Clone, Copy, PartialEq)]
enum Method {
    PidFile,
    Pid,
    ProcessName,
}

/// `management.discovery`: how an unmanaged process is found.
pub(super) fn discovery(
    d: &mut Decoder<'_>,
    mgmt: &Section<'_>,
    kind: Option<ProcessKind>,
) -> Option<Discovery> {
    let s = d.child(mgmt, "discovery", DISCOVERY_KEYS);
    let kind = kind?;
    if kind != ProcessKind::Unmanaged {
        if let Some(item) = mgmt.get("discovery") {
            d.invalid(&item, "`discovery` is only used by unmanaged processes");
        }
        return None;
    }
    if mgmt.get("discovery").is_none() {
        let message = "an unmanaged process needs `management.discovery` \
                       with one of pid_file, pid or process_name";
        d.report(s.pos, &s.path, Problem::Invalid(message.into()));
        return None;
    }
    if !s.present() {
        return None;
    }
    let methods = [
        ("pid_file", Method::PidFile),
        ("pid", Method::Pid),
        ("process_name", Method::ProcessName),
    ];
    let method = d.field(&s, "method", |d, i| {
        d.choice(i, "discovery method", &methods)
    });
    let pid_file = d.field(&s, "pid_file", Decoder::path);
    let pid = d.field(&s, "pid", |d, i| d.uint(i, 1, u64::from(u32::MAX)));
    let name = d.field(&s, "process_name", |d, i| d.checked(i, check_process_name));
    let argument_match = d.field(&s, "argument_match", Decoder::nonempty);
    let written: Vec<(&str, Method)> = methods
        .into_iter()
        .filter(|(key, _)| s.get(key).is_some())
        .collect();
    match (method.value(), written.as_slice()) {
        (Some(m), _) if !written.iter().any(|&(_, w)| w == m) => {
            let key = methods
                .iter()
                .find(|&&(_, x)| x == m)
                .map_or("", |&(k, _)| k);
            d.report(s.pos, &s.child(key), Problem::Missing);
            return None;
        }
        (_, []) => {
            let message = "set one of pid_file, pid or process_name";
            d.report(s.pos, &s.path, Problem::Invalid(message.into()));
            return None;
        }
        (_, [_]) => {}
        (_, [_, extra @ ..]) => {
            for (key, _) in extra {
                if let Some(item) = s.get(key) {
                    d.invalid(&item, "set only one of pid_file, pid or process_name");
                }
            }
            return None;
        }
    }
    if method.is_bad() {
        return None;
    }
    let chosen = written.first().map(|&(_, m)| m)?;
    if let (Some(item), false) = (s.get("argument_match"), chosen == Method::ProcessName) {
        d.invalid(&item, "`argument_match` is only used with `process_name`");
        return None;
    }
    if argument_match.is_bad() {
        return None;
    }
    match chosen {
        Method::PidFile => pid_file.value().map(Discovery::PidFile),
        Method::Pid => pid
            .value()
            .and_then(|p| u32::try_from(p).ok())
            .map(Discovery::Pid),
        Method::ProcessName => name.value().map(|name| Discovery::ProcessName {
            name,
            argument_match: argument_match.value(),
        }),
    }
}

/// A process name is what `ps` shows (`/proc/<pid>/comm`) or the last
/// part of `argv[0]`: never a path.
fn check_process_name(name: &str) -> Result<(), String> {
    match name.trim_end_matches('/').rsplit_once('/') {
        Some((_, base)) => Err(format!(
            "a process name has no `/` (it is matched against the name `ps` shows and the \
             last part of argv[0]): write `{}`, and `argument_match` to tell processes apart",
            cut(base)
        )),
        None => Ok(()),
    }
}
