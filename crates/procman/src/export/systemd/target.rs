//! `<name>.target`, which holds the services together, and the README
//! written beside the units with `-o DIR`.

use procman_core::config::Config;

use super::Names;
use crate::export::{File, Warning};

/// The units the target wants, is bound to, or leaves out.
#[derive(Default)]
pub struct Target {
    /// Enabled services: started with the target.
    pub wanted: Vec<String>,
    /// Enabled services with `shutdown_on_exit`: started with the target,
    /// which stops (and every unit with it) when they stop.
    pub bound: Vec<String>,
    /// Services of processes with `enabled: false`: started by hand.
    pub disabled: Vec<String>,
}

impl Target {
    pub fn text(&self, names: &Names) -> String {
        let target = names.target();
        let mut lines = vec![
            format!(
                "# {target}: the processes of {}, written by `procman export`.",
                names.source
            ),
            format!(
                "# `systemctl start {target}` starts them all, `systemctl stop {target}` stops \
                 them all."
            ),
            String::new(),
            "[Unit]".to_string(),
            format!("Description={} (procman export)", names.prefix),
        ];
        lines.extend(self.wanted.iter().map(|u| format!("Wants={u}")));
        for u in &self.bound {
            lines.push(format!(
                "# shutdown_on_exit: when {u} stops, the target stops, and every unit with it."
            ));
            lines.push(format!("BindsTo={u}"));
        }
        for u in &self.disabled {
            lines.push(format!(
                "# Not wanted (`enabled: false`), started by hand: {u}"
            ));
        }
        lines.push(String::new());
        lines.push("[Install]".to_string());
        lines.push("WantedBy=multi-user.target".to_string());
        lines.push(String::new());
        lines.join("\n")
    }
}

/// How to install and run the units; `files` are the target first, then
/// the services.
pub fn readme(config: &Config, names: &Names, files: &[File], warnings: &[Warning]) -> String {
    let target = names.target();
    let prefix = &names.prefix;
    let mut out = vec![
        format!("# {prefix}: systemd units"),
        String::new(),
        format!(
            "Written by `procman export --format systemd` from {}: one service per",
            names.source
        ),
        format!("process, and `{target}`, which starts and stops them all."),
        String::new(),
        "| Unit | Starts with the target |".to_string(),
        "|---|---|".to_string(),
    ];
    for f in files.iter().skip(1) {
        let disabled = config
            .processes
            .iter()
            .any(|p| !p.enabled && names.service(&p.id) == f.name);
        let starts = if disabled {
            "no (`enabled: false`): `systemctl start` it by hand"
        } else {
            "yes"
        };
        out.push(format!("| `{}` | {starts} |", f.name));
    }
    out.extend(
        [
            "",
            "## Install",
            "",
            "As root, for the system's service manager:",
            "",
            "```sh",
            &format!("cp {target} {prefix}-*.service /etc/systemd/system/"),
            "systemctl daemon-reload",
            &format!(
                "systemd-analyze verify /etc/systemd/system/{target} \
                      /etc/systemd/system/{prefix}-*.service"
            ),
            &format!("systemctl enable --now {target}"),
            "```",
            "",
            &format!("`enable` makes `{target}` start at boot (multi-user.target wants it),"),
            "`--now` starts it at once. Then:",
            "",
            &format!("- `systemctl list-dependencies {target}`: the units and their state"),
            &format!("- `systemctl status '{prefix}-*'`: each unit in detail"),
            &format!(
                "- `journalctl -u '{prefix}-*' -f`: their output (the journal takes stdout \
                      and stderr)"
            ),
            &format!(
                "- `systemctl stop {target}`: stop them all (each unit is `PartOf=` the \
                      target)"
            ),
            &format!("- `systemctl disable --now {target}`: stop them, and not at boot"),
            "",
            "Units without `User=` run as root. For a user's own service manager, copy",
            "them to `~/.config/systemd/user/` and use `systemctl --user` (without",
            "`User=`/`Group=`, which only the system's manager applies, and",
            "`WantedBy=default.target` in the target instead of `multi-user.target`).",
            "",
            "## systemd versions",
            "",
            "`Type=exec` needs systemd 240 or later. `RestartSteps=` and",
            "`RestartMaxDelaySec=` (the growing restart delay) need systemd 254:",
            "older versions log `Unknown key` for them when the unit loads and",
            "restart after `RestartSec=` every time.",
        ]
        .map(str::to_string),
    );
    if !warnings.is_empty() {
        out.push(String::new());
        out.push("## Not carried over".to_string());
        out.push(String::new());
        out.push(
            "What procman does that these units do not (also written on stderr by the export):"
                .to_string(),
        );
        out.push(String::new());
        for w in warnings {
            out.push(format!("- `{}`: {}", w.path, w.message));
        }
    }
    out.push(String::new());
    out.join("\n")
}
