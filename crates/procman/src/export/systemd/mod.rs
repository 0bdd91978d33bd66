//! `procman export --format systemd`: a `.service` unit per managed
//! process (`<name>-<id>.service`) and `<name>.target`, which wants every
//! enabled one, so that `systemctl start|stop <name>.target` acts on all
//! (each service is `PartOf=` it). What systemd cannot express is a
//! warning, and a health check is also written as a comment in its unit.

mod notes;
mod quote;
mod restart;
mod target;
mod unit;

use std::time::Duration;

use procman_core::config::{Config, ProcessKind, RestartStrategy};

use super::{
    exported, process_path, unmanaged_warnings, ExportError, File, Options, Rendered, Warning,
};

/// The names of the units.
pub struct Names {
    /// `Options::name` as a unit name accepts it.
    pub prefix: String,
    /// The config file's name, for the comments.
    pub source: String,
}

impl Names {
    /// The names for `opts.name`, and the warning when it had to change.
    fn new(config: &Config, opts: &Options) -> (Names, Option<Warning>) {
        // `<prefix>-<id>.service` within systemd's 255 characters (ids
        // have at most 64).
        let mut prefix: String = opts
            .name
            .chars()
            .map(|c| match c {
                'A'..='Z' | 'a'..='z' | '0'..='9' | ':' | '_' | '.' | '-' => c,
                _ => '-',
            })
            .take(180)
            .collect();
        // A leading `-` would read as an option in `systemctl enable
        // <name>.target` and the README's other commands.
        prefix = prefix.trim_start_matches('-').to_string();
        if prefix.is_empty() {
            prefix = "procman".to_string();
        }
        let warning = (prefix != opts.name).then(|| {
            Warning::new(
                "--name",
                format!(
                    "{:?} is not a valid unit name (ASCII letters, digits, `:_.-`, not starting \
                     with `-`, at most 180 here): the units are named {prefix}.target and \
                     {prefix}-<id>.service",
                    opts.name
                ),
            )
        });
        let source = config.source.file_name().map_or_else(
            || "the config".to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        // Written in comments, which end at a line break.
        let source = if source.contains(char::is_control) {
            quote::shown(&source)
        } else {
            source
        };
        (Names { prefix, source }, warning)
    }

    pub fn service(&self, id: &str) -> String {
        format!("{}-{id}.service", self.prefix)
    }

    pub fn target(&self) -> String {
        format!("{}.target", self.prefix)
    }
}

/// A duration as systemd writes a time span, exactly: `90s`, `10min`,
/// `2h`, `1500ms`, `250us` (finer than a microsecond is rounded up).
pub fn span(d: Duration) -> String {
    let secs = d.as_secs();
    let nanos = d.subsec_nanos();
    match (secs, nanos) {
        (0, 0) => "0".to_string(),
        (s, 0) if s % 3600 == 0 => format!("{}h", s / 3600),
        (s, 0) if s % 60 == 0 => format!("{}min", s / 60),
        (s, 0) => format!("{s}s"),
        (_, n) if n % 1_000_000 == 0 => format!("{}ms", d.as_millis()),
        _ => format!("{}us", d.as_nanos().div_ceil(1000)),
    }
}

pub fn render(config: &Config, opts: &Options) -> Result<Rendered, ExportError> {
    let (names, name_warning) = Names::new(config, opts);
    // (order, warning): the command line first, then the config's order.
    let mut warnings: Vec<(usize, Warning)> = name_warning.into_iter().map(|w| (0, w)).collect();
    if opts.image.is_some() {
        warnings.push((
            0,
            Warning::new(
                "--image",
                "a systemd unit runs the executable on the host: the image is not used",
            ),
        ));
    }
    warnings.extend(notes::manager(config, &names.prefix).map(|w| (1, w)));
    let unmanaged = config
        .processes
        .iter()
        .enumerate()
        .filter(|(_, p)| p.kind == ProcessKind::Unmanaged)
        .map(|(i, _)| i + 2);
    warnings.extend(unmanaged.zip(unmanaged_warnings(config, "systemd")));
    warnings.extend(notes::log_collection(config, &names.prefix).map(|w| (usize::MAX, w)));

    let mut files = Vec::new();
    let mut problems = Vec::new();
    let mut target = target::Target::default();
    for (i, p) in exported(config) {
        let service = unit::service(config, i, p, &names);
        let name = names.service(&p.id);
        warnings.extend(service.warnings.into_iter().map(|w| (i + 2, w)));
        problems.extend(service.problems);
        let key = format!("{}.shutdown_on_exit", process_path(i));
        match (p.enabled, p.shutdown_on_exit) {
            (false, on) => {
                if on {
                    let message = "the process is not enabled, so the target cannot be bound \
                                   to it without starting it: not carried over";
                    warnings.push((i + 2, Warning::new(key, message)));
                }
                target.disabled.push(name.clone());
            }
            (true, true) => {
                if p.restart.strategy != RestartStrategy::Never {
                    let message = "systemd restarts the unit as its restart_policy says; the \
                                   target, bound to it, stops everything only once it stops for \
                                   good (procman shuts down when a run ends)";
                    warnings.push((i + 2, Warning::new(key, message)));
                }
                target.bound.push(name.clone());
            }
            (true, false) => target.wanted.push(name.clone()),
        }
        files.push(File {
            name,
            text: service.text,
        });
    }
    if !problems.is_empty() {
        return Err(ExportError::Incomplete(format!(
            "cannot be written as systemd units:\n  {}",
            problems.join("\n  ")
        )));
    }
    warnings.sort_by_key(|(order, _)| *order);
    let warnings: Vec<Warning> = warnings.into_iter().map(|(_, w)| w).collect();
    let count = files.len();
    files.insert(
        0,
        File {
            name: names.target(),
            text: target.text(&names),
        },
    );
    Ok(Rendered {
        readme: Some(target::readme(config, &names, &files, &warnings)),
        files,
        warnings,
        summary: match count {
            1 => "1 unit and a target".to_string(),
            n => format!("{n} units and a target"),
        },
    })
}

#[cfg(test)]
mod tests;
