//! The README written next to the job with `-o DIR`: how to check and
//! run it, and what the clients need for this job in particular.

use std::fmt::Write as _;

use procman_core::config::{Config, HealthCheckKind};

use super::placement::{Hook, Layout};
use super::service::effective_check;
use super::task::image;
use crate::export::{exported, Options};

/// What the job uses that a cluster must provide.
#[derive(Default)]
struct Needs {
    raw_exec: bool,
    raw_exec_work_dir: bool,
    docker: bool,
    consul: Vec<String>,
    templates: bool,
    disabled: Vec<String>,
    hooks: Vec<String>,
    no_memory: bool,
}

fn needs(config: &Config, opts: &Options, layout: &Layout) -> Needs {
    let mut needs = Needs::default();
    for (i, p) in exported(config) {
        if image(p, opts).is_some() {
            needs.docker = true;
        } else {
            needs.raw_exec = true;
            needs.raw_exec_work_dir |= p.control.working_directory.is_some();
        }
        if effective_check(p)
            .is_some_and(|h| matches!(h.kind, HealthCheckKind::Grpc | HealthCheckKind::Exec))
        {
            needs.consul.push(p.id.clone());
        }
        needs.templates |= p.control.env_file.is_some();
        if !p.enabled {
            needs.disabled.push(p.id.clone());
        }
        if layout
            .place_of(i)
            .is_some_and(|place| place.hook != Hook::Main)
        {
            needs.hooks.push(p.id.clone());
        }
        needs.no_memory |= p.resource_limits.max_memory_mb.is_none();
    }
    needs
}

fn ids(list: &[String]) -> String {
    let quoted: Vec<String> = list.iter().map(|id| format!("`{id}`")).collect();
    quoted.join(", ")
}

pub fn readme(
    config: &Config,
    opts: &Options,
    layout: &Layout,
    file: &str,
    summary: &str,
) -> String {
    let name = &opts.name;
    let source = config
        .source
        .file_name()
        .map_or_else(String::new, |f| f.to_string_lossy().into_owned());
    let mut out = format!(
        "# Nomad job `{name}`\n\n\
         `{file}` was written by `procman export --format nomad` from `{source}`:\n\
         {summary}. Each setting that Nomad cannot express was printed as a\n\
         warning by the export: read them before you run the job.\n\n\
         ## Check and run\n\n\
         ```sh\n\
         nomad job validate {file}   # the job's syntax and settings\n\
         nomad job plan {file}       # where it would be placed, on this cluster\n\
         nomad job run {file}\n\
         nomad job status {name}\n\
         nomad alloc logs -job {name} TASK   # a task's output\n\
         nomad job stop {name}\n\
         ```\n\n\
         ## What the clients need\n\n"
    );
    let n = needs(config, opts, layout);
    let mut item = |text: String| {
        let _ = writeln!(out, "- {text}");
    };
    if n.raw_exec {
        item(
            "**raw_exec enabled.** The `raw_exec` driver is off by default; a client runs \
             these tasks only with `plugin \"raw_exec\" { config { enabled = true } }` in its \
             configuration (elsewhere the job is not placed: \"missing drivers\"). raw_exec \
             runs a task without isolation, as the client's user (usually root) or the task's \
             `user`; a client hardened as Nomad's production guide describes refuses `user` on \
             raw_exec tasks."
                .to_string(),
        );
        item(
            "**The executables, at the same paths.** raw_exec tasks run the absolute paths \
             written in `command` on the client: install the programs (and what they read) on \
             every client that may run them, or pin the job to one with a `constraint`."
                .to_string(),
        );
    }
    if n.raw_exec_work_dir {
        item(
            "**Nomad 1.9.2 or later** for raw_exec's `work_dir` (the process's \
             working_directory); older clients refuse the job."
                .to_string(),
        );
    }
    if n.docker {
        item(
            "**Docker** on the clients, and access to the images' registries. `entrypoint` \
             replaces the image's ENTRYPOINT, so the container runs exactly the executable and \
             arguments of the config, resolved in the image."
                .to_string(),
        );
    }
    if !n.consul.is_empty() {
        item(format!(
            "**Consul** for the services of {}: their gRPC or script checks exist only in \
             Consul, so they use `provider = \"consul\"` (Nomad's own service discovery checks \
             http and tcp only).",
            ids(&n.consul)
        ));
    }
    if n.templates {
        item(
            "**env_file on the client.** Each `template` with `env = true` reads a file of \
             the client's; a path outside the task directory needs \
             `client { template { disable_file_sandbox = true } }`."
                .to_string(),
        );
    }
    if n.no_memory {
        item(
            "**Memory.** A task without `resources { memory = N }` gets Nomad's default of \
             300 MB, reserved and enforced: raise it where a process needs more."
                .to_string(),
        );
    }
    out.push_str("\n## How it behaves\n\n");
    let mut item = |text: String| {
        let _ = writeln!(out, "- {text}");
    };
    item(
        "Restarts: each task's `restart` block holds procman's restart policy (`mode = \
         \"fail\"` is procman's circuit breaker), and `reschedule` is off, as procman never \
         moves a failed process: remove the `reschedule` blocks to let Nomad place a failed \
         group again."
            .to_string(),
    );
    item(
        "Order: Nomad starts the groups of a job independently; only a group's lifecycle \
         tasks run in order (prestart, main, poststart)."
            .to_string(),
    );
    if !n.hooks.is_empty() {
        item(format!(
            "Batch processes {} are lifecycle tasks in another group: they run once per \
             allocation of that group, and when one fails, its group fails too.",
            ids(&n.hooks)
        ));
    }
    if !n.disabled.is_empty() {
        item(format!(
            "Disabled processes {} have `count = 0`: `nomad job scale {name} GROUP 1` starts one.",
            ids(&n.disabled)
        ));
    }
    out
}
