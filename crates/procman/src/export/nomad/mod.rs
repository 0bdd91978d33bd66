//! `procman export --format nomad`: the config as one Nomad job in HCL2,
//! `<name>.nomad.hcl`, with a group per process (a batch process may be
//! a lifecycle task in another's group: see [`placement`]), and a README
//! of how to check and run it.
//!
//! A process with an image (`export.image`, else `--image`) runs with the
//! `docker` driver, any other with `raw_exec` at its absolute path on the
//! client. See `docs/export.md` for what each key becomes.

mod hcl;
mod placement;
mod policy;
mod readme;
mod service;
mod task;

use std::time::Duration;

use procman_core::config::{Config, LogFormat, LogLevel};

use self::hcl::{Block, Value};
use self::placement::Layout;
use super::{
    exported, process_path, unmanaged_warnings, ExportError, File, Options, Rendered, Warning,
};

/// The driver a task runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Driver {
    RawExec,
    Docker,
}

/// The warning for a string Nomad would interpolate when the task starts.
const INTERPOLATED: &str = "contains `${NAME}`, which Nomad replaces with the task's variable NAME when the task starts (there is no escape for it): the text stays as written only while no such variable exists";

/// Nomad's default ephemeral disk of a group, in MB: each task's log
/// files must fit in less.
const EPHEMERAL_DISK_MB: u64 = 300;

pub fn render(config: &Config, opts: &Options) -> Result<Rendered, ExportError> {
    check_name(&opts.name)?;
    if exported(config).next().is_none() {
        return Err(ExportError::Incomplete(
            "no managed process to export: a Nomad job needs at least one group".to_string(),
        ));
    }
    let layout = Layout::new(config);
    let service_names = service::names(config);
    let mut per_process: Vec<Vec<Warning>> = vec![Vec::new(); config.processes.len()];

    let source = config
        .source
        .file_name()
        .map_or_else(String::new, |f| f.to_string_lossy().into_owned());
    let file_name = format!("{}.nomad.hcl", opts.name);
    let mut job = Block::new("job", &[&opts.name]);
    job.attr("datacenters", Value::strings(&["*"]));
    job.str("type", layout.job_type.as_str());
    let (mut groups, mut tasks) = (0, 0);
    for owner in layout.groups() {
        let p = &config.processes[owner];
        let members: Vec<_> = layout.members(owner).collect();
        let mut taken = Vec::new();
        let ports: Vec<_> = members
            .iter()
            .map(|&(i, _)| service::ports(&config.processes[i], &mut taken))
            .collect();
        let mut group = Block::new("group", &[&p.id]);
        if p.enabled {
            group.int("count", 1);
        } else {
            group.comment("enabled: false in the config: `nomad job scale` starts it");
            group.int("count", 0);
            per_process[owner].push(Warning::new(
                format!("{}.enabled", process_path(owner)),
                format!(
                    "false: group `{}` is written with count = 0 (`nomad job scale {} {} 1` starts it)",
                    p.id, opts.name, p.id
                ),
            ));
        }
        let mut network = Block::new("network", &[]);
        for port in ports.iter().flat_map(|p| p.labels()) {
            let mut block = Block::new("port", &[&port.label]);
            if let Some(n) = port.value {
                block.int("static", n);
            }
            network.block(block);
        }
        if !network.is_empty() {
            group.block(network);
        }
        let logs: u64 = members
            .iter()
            .map(|&(i, _)| task::log_storage_mb(&config.processes[i]))
            .sum();
        if logs >= EPHEMERAL_DISK_MB {
            // Nomad wants each task's log files to fit in the group's disk.
            let mut disk = Block::new("ephemeral_disk", &[]);
            disk.int("size", i64::try_from(logs + 1).unwrap_or(i64::MAX));
            group.block(disk);
        }
        group.block(policy::reschedule());
        for (&(i, place), ports) in members.iter().zip(&ports) {
            let slot = task::Slot {
                hook: place.hook,
                ports,
                service: service_names[i].as_deref(),
            };
            let block = task::task(config, opts, i, layout.job_type, &slot, &mut per_process[i]);
            group.block(block);
            tasks += 1;
        }
        job.block(group);
        groups += 1;
    }

    let mut text = format!(
        "# The processes of {source} as a Nomad job, written by `procman export --format nomad`.\n# Check it with `nomad job validate {file_name}`; see the warnings the export printed.\n"
    );
    text.push_str(&job.render());

    let mut warnings = manager_warnings(config);
    let mut unmanaged = unmanaged_warnings(config, "Nomad").into_iter();
    for (i, own) in per_process.into_iter().enumerate() {
        if layout.place_of(i).is_none() {
            warnings.extend(unmanaged.next());
            continue;
        }
        warnings.extend(layout.warnings(config, i));
        warnings.extend(own);
    }
    warnings.extend(log_collection_warning(config));

    let summary = format!(
        "a {} job of {} ({})",
        layout.job_type.as_str(),
        count(groups, "group"),
        count(tasks, "task")
    );
    Ok(Rendered {
        readme: Some(readme::readme(config, opts, &layout, &file_name, &summary)),
        files: vec![File {
            name: file_name,
            text,
        }],
        warnings,
        summary,
    })
}

fn count(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// A job name Nomad accepts (no space or NUL) that is also a file name
/// the README's commands can take (not starting with `-`).
fn check_name(name: &str) -> Result<(), ExportError> {
    if name.is_empty()
        || name.starts_with('-')
        || name.contains(char::is_whitespace)
        || name.contains(['/', '\0'])
    {
        return Err(ExportError::Incomplete(format!(
            "the job name {name:?} is not one Nomad accepts, or one a command line can take \
             (no spaces or `/`, not starting with `-`): pass --name NAME"
        )));
    }
    Ok(())
}

/// `process_manager` configures procman itself: one warning naming the
/// keys that differ from their defaults.
fn manager_warnings(config: &Config) -> Vec<Warning> {
    let m = &config.manager;
    let set: Vec<&str> = [
        (m.port != 50055, "port"),
        (m.bind != "127.0.0.1", "bind"),
        (m.log_level != LogLevel::Info, "log_level"),
        (m.log_format != LogFormat::Plain, "log_format"),
        (
            m.force_shutdown_timeout != Duration::from_secs(30),
            "force_shutdown_timeout",
        ),
        (m.state_dir.is_some(), "state_dir"),
        (m.log_dir.is_some(), "log_dir"),
        (m.api_token.is_some(), "api_token"),
        (m.api_token_file.is_some(), "api_token_file"),
    ]
    .into_iter()
    .filter_map(|(set, key)| set.then_some(key))
    .collect();
    if set.is_empty() {
        return Vec::new();
    }
    vec![Warning::new(
        "process_manager",
        format!(
            "{} configure procman itself: not exported (Nomad's agent has its own API, state and logs, and stops each task within its kill_timeout)",
            set.join(", ")
        ),
    )]
}

fn log_collection_warning(config: &Config) -> Option<Warning> {
    let l = &config.log_collection;
    (l.enabled && l.aggregation_enabled && !l.targets.is_empty()).then(|| {
        Warning::new(
            "log_collection.global_aggregation.targets",
            "not exported: Nomad keeps each task's output with its allocation (`nomad alloc logs`); ship it elsewhere with a log collector",
        )
    })
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;

#[cfg(test)]
#[path = "tests_service.rs"]
mod service_tests;
