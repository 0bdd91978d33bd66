//! `procman status [ID] [-o json]`: a table of every process (as readable
//! as `systemctl list-units`), or one process in detail (as `systemctl
//! status`): since when and why it is in its state, its pids, last exit,
//! breaker, health, log file and counters, restarts by cause, its
//! resource limits (what enforces each) and usage, and its last log lines.

use std::time::SystemTime;

use procman_api::client::LogRecord;
use procman_api::{Exit, Process, ProcessDetail};

use super::endpoint::{block_on, locate, ManagerArgs};
use super::output::{Format, FormatArg, Out};
use super::table::{duration, or_dash, state_paint, Align, Cell, Paint, Table};
use crate::exit::Failure;

/// Log lines shown under a process's detail.
const TAIL: usize = 10;

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// A process to show in detail; without it, a table of every process.
    id: Option<String>,
    #[command(flatten)]
    manager: ManagerArgs,
    #[command(flatten)]
    format: FormatArg,
}

pub fn status(args: StatusArgs) -> Result<(), Failure> {
    let located = locate(&args.manager)?;
    let client = &located.client;
    block_on(async {
        let mut out = Out::new();
        match &args.id {
            None => {
                let list = client
                    .processes()
                    .await
                    .map_err(|e| located.failure("list the processes", e))?;
                match args.format.output {
                    Format::Json => out.json(&list)?,
                    Format::Plain => out.text(&table(&list).render(out.color))?,
                }
            }
            Some(id) => {
                let doing = format!("read the status of `{id}`");
                let detail = client
                    .process(id)
                    .await
                    .map_err(|e| located.failure_for(&doing, e))?;
                if args.format.output == Format::Json {
                    out.json(&detail)?;
                    return out.flush();
                }
                let text = describe(&detail, SystemTime::now(), out.color);
                out.text(&text)?;
                // An unmanaged process writes its output elsewhere.
                if detail.process.kind == "unmanaged" {
                    return out.flush();
                }
                match client.logs(Some(id), TAIL).await {
                    Ok(records) => out.bytes(&tail(&records))?,
                    Err(e) => out.text(&format!("\n(no log lines: {e})\n"))?,
                }
            }
        }
        out.flush()
    })
}

/// The table of every process.
pub fn table(list: &[Process]) -> Table {
    let mut t = Table::new(&[
        ("ID", Align::Left),
        ("TYPE", Align::Left),
        ("STATE", Align::Left),
        ("PID", Align::Right),
        ("UPTIME", Align::Right),
        ("RESTARTS", Align::Right),
        ("HEALTH", Align::Left),
        ("LAST EXIT", Align::Left),
    ]);
    for p in list {
        t.row(vec![
            Cell::plain(&p.id),
            Cell::plain(kind(&p.kind)),
            Cell::painted(&p.state, state_paint(&p.state)),
            Cell::plain(or_dash(p.pid.map(|n| n.to_string()))),
            Cell::plain(or_dash(p.uptime_seconds.map(duration))),
            Cell::plain(p.restarts.to_string()),
            Cell::painted(
                or_dash(p.health.clone()),
                p.health.as_deref().and_then(health_paint),
            ),
            Cell::plain(or_dash(p.last_exit.as_ref().map(exit_short))),
        ]);
    }
    t
}

/// The process type without its `_managed` suffix.
fn kind(kind: &str) -> &str {
    kind.strip_suffix("_managed").unwrap_or(kind)
}

pub fn health_paint(health: &str) -> Option<Paint> {
    match health {
        "healthy" => Some(Paint::Green),
        "starting" => Some(Paint::Yellow),
        "unhealthy" => Some(Paint::Red),
        _ => None,
    }
}

/// `code 1`, `SIGKILL`, `SIGSEGV (core)`; `unknown` for an end seen
/// through a pidfd only (an unmanaged process: not our child).
pub fn exit_short(e: &Exit) -> String {
    match (&e.signal, e.code) {
        (Some(sig), _) if e.core_dumped => format!("{sig} (core)"),
        (Some(sig), _) => sig.clone(),
        (None, Some(code)) => format!("code {code}"),
        // Neither: it ended while not our child, and how is unknown.
        (None, None) => "unknown".to_string(),
    }
}

/// `2026-12-02 09:15:00 UTC (3m12s ago)`, from an RFC 3339 timestamp.
pub fn when(at: &str, now: SystemTime) -> String {
    match humantime::parse_rfc3339_weak(at) {
        Ok(t) => {
            let abs = humantime::format_rfc3339_seconds(t)
                .to_string()
                .replace('T', " ")
                .replace('Z', " UTC");
            match now.duration_since(t) {
                Ok(ago) => format!("{abs} ({} ago)", duration(ago.as_secs_f64())),
                Err(_) => abs,
            }
        }
        Err(_) => at.to_string(),
    }
}

/// `3ms`, `250µs`, `1.25s`.
fn latency(seconds: f64) -> String {
    if seconds < 0.001 {
        format!("{:.0}µs", seconds * 1e6)
    } else if seconds < 1.0 {
        format!("{:.0}ms", seconds * 1e3)
    } else {
        format!("{seconds:.2}s")
    }
}

/// `12.1 KiB`, `512 B`.
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut v = bytes as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// One process in detail, as labelled lines.
pub fn describe(d: &ProcessDetail, now: SystemTime, color: bool) -> String {
    let p = &d.process;
    // Found and watched, never started: no restarts, no breaker, no log.
    let unmanaged = p.kind == "unmanaged";
    let mut lines: Vec<(&str, String)> = Vec::new();
    let state = state_paint(&p.state).map_or(p.state.clone(), |c| c.apply(&p.state, color));
    let state = match &d.last_transition {
        Some(t) => format!("{state} since {}", when(&t.at, now)),
        None => state,
    };
    lines.push(("State", state));
    if let Some(t) = &d.last_transition {
        lines.push(("Why", format!("{} ({} → {})", t.cause, t.from, t.to)));
    }
    if let Some(reason) = &p.waiting_reason {
        let what = reason.strip_prefix("waiting for ").unwrap_or(reason);
        lines.push(("Waiting for", what.to_string()));
    }
    if !p.enabled {
        let what = match unmanaged {
            true => "no (not looked for)",
            false => "no (not started with the manager)",
        };
        lines.push(("Enabled", what.into()));
    }
    match d.pids.split_first() {
        Some((main, rest)) => {
            lines.push(("PID", main.to_string()));
            if !rest.is_empty() {
                let rest: Vec<String> = rest.iter().map(u32::to_string).collect();
                lines.push(("Tree", rest.join(" ")));
            }
        }
        None => {
            if let Some(pid) = p.pid {
                lines.push(("PID", pid.to_string()));
            }
        }
    }
    if let Some(started) = &p.started_at {
        lines.push(("Started", when(started, now)));
    }
    if let Some(e) = &p.last_exit {
        lines.push(("Last exit", e.description.clone()));
    }
    if let Some(e) = &p.last_error {
        lines.push(("Last error", e.clone()));
    }
    let by_cause: Vec<String> = d
        .restarts_by_cause
        .iter()
        .map(|(cause, n)| format!("{n} after {}", cause.replace('_', " ")))
        .collect();
    let restarts = match by_cause.is_empty() {
        true => p.restarts.to_string(),
        false => format!("{} ({})", p.restarts, by_cause.join(", ")),
    };
    let runs = match p.runs {
        1 => "1 run".to_string(),
        n => format!("{n} runs"),
    };
    if unmanaged {
        let found = match p.runs {
            0 => "not yet".to_string(),
            1 => "once".to_string(),
            n => format!("{n} times"),
        };
        lines.push(("Found", found));
    } else {
        lines.push(("Restarts", format!("{restarts}; {runs}")));
        lines.push(("Breaker", d.breaker.clone()));
    }
    if let Some(h) = &d.health_check {
        let mut text = health_paint(&h.state).map_or(h.state.clone(), |c| c.apply(&h.state, color));
        text.push_str(&format!(" ({}): {}", h.kind, h.last_result));
        if let Some(l) = h.last_latency_seconds {
            text.push_str(&format!(" in {}", latency(l)));
        }
        if let Some(at) = &h.last_check {
            text.push_str(&format!(", {}", when(at, now)));
        }
        if h.consecutive_failures > 0 {
            text.push_str(&format!("; {} failed in a row", h.consecutive_failures));
        }
        lines.push(("Health", text));
        if let Some(e) = &h.last_error {
            lines.push(("Health error", e.clone()));
        }
    }
    if !unmanaged {
        lines.push(("Log file", or_dash(d.log_file.clone())));
        lines.push((
            "Log",
            format!(
                "{} read, {} records dropped",
                size(d.log_bytes),
                d.log_dropped
            ),
        ));
    }
    if d.limits.is_empty() {
        lines.push(("Limits", "none".into()));
    }
    let bullet = state_paint(&p.state).map_or("●".to_string(), |c| c.apply("●", color));
    let mut out = format!("{bullet} {} ({})\n", p.id, p.kind);
    let width = lines
        .iter()
        .map(|(l, _)| l.chars().count())
        .max()
        .unwrap_or(0);
    for (label, value) in lines {
        out.push_str(&format!("  {label:>width$}: {value}\n"));
    }
    out.push_str(&limits_block(d));
    out.push_str(&usage_block(d));
    out
}

/// `64 MiB`, `250% of one core`, `100 open files`, `32 processes`.
fn limit_value(key: &str, value: f64) -> String {
    match key {
        "max_memory_mb" => format!("{} MiB", number(value)),
        "max_cpu_percent" => format!("{}% of one core", number(value)),
        "max_file_descriptors" => format!("{} open files", number(value)),
        "max_processes" => format!("{} processes", number(value)),
        _ => number(value),
    }
}

/// `500ms`, `5s`, `1m30s`, `2.5s`: a config duration.
fn span(seconds: f64) -> String {
    if seconds < 1.0 {
        latency(seconds)
    } else if seconds.fract() == 0.0 {
        duration(seconds)
    } else {
        format!("{seconds}s")
    }
}

/// `64`, `12.5`: no `.0` on a whole number.
fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v}")
    }
}

/// Rows of two or three columns, each as wide as its widest cell (the
/// last cell of a row runs on, and does not widen its column).
fn block(title: &str, rows: &[Vec<String>]) -> String {
    let mut widths = Vec::new();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            let w = match i + 1 == row.len() {
                true => 0,
                false => cell.chars().count(),
            };
            match widths.get_mut(i) {
                Some(max) if *max < w => *max = w,
                Some(_) => {}
                None => widths.push(w),
            }
        }
    }
    let mut out = format!("  {title}:\n");
    for row in rows {
        let mut line = String::from("   ");
        for (i, cell) in row.iter().enumerate() {
            let pad = match i + 1 == row.len() {
                true => 0,
                false => widths[i] - cell.chars().count(),
            };
            line.push(' ');
            line.push_str(cell);
            line.push_str(&" ".repeat(pad + 1));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Each limit with its unit and what enforces it, what happens on a
/// violation, and the OOM kill and violation counters.
fn limits_block(d: &ProcessDetail) -> String {
    if d.limits.is_empty() && d.oom_kills == 0 && d.violations == 0 {
        return String::new();
    }
    let mut rows: Vec<Vec<String>> = d
        .limits
        .iter()
        .map(|l| {
            let by = match &l.enforced_by {
                Some(e) => format!("by {e}"),
                None => "(enforcer known once it runs)".to_string(),
            };
            vec![l.limit.clone(), limit_value(&l.limit, l.value), by]
        })
        .collect();
    if let Some(action) = &d.on_violation {
        let mut text = action.clone();
        if let Some(grace) = d.violation_grace_seconds.filter(|g| *g > 0.0) {
            text.push_str(&format!(" after {}", span(grace)));
        }
        // on_violation acts only on what the monitor watches.
        let by = |e: &str| d.limits.iter().any(|l| l.enforced_by.as_deref() == Some(e));
        let unknown = d.limits.iter().any(|l| l.enforced_by.is_none());
        match d.sample_interval_seconds {
            Some(every) if by("monitor") || unknown => {
                text.push_str(&format!(", monitor samples every {}", span(every)));
            }
            _ => text.push_str(" (unused: the kernel enforces every limit)"),
        }
        rows.push(vec!["on_violation".into(), text]);
    }
    rows.push(vec!["OOM kills".into(), d.oom_kills.to_string()]);
    rows.push(vec!["violations".into(), d.violations.to_string()]);
    block("Limits", &rows)
}

/// What the run uses now, against its limits; nothing while none runs.
fn usage_block(d: &ProcessDetail) -> String {
    let Some(u) = &d.usage else {
        return String::new();
    };
    let limit = |key: &str| d.limits.iter().find(|l| l.limit == key).map(|l| l.value);
    let of = |key: &str| limit(key).map_or(String::new(), |v| format!(" of {}", number(v)));
    let memory = match u.memory_bytes {
        Some(b) => {
            let mib = b as f64 / f64::from(1u32 << 20);
            let max = limit("max_memory_mb").map_or(String::new(), |v| {
                format!(" of {} MiB ({:.0}%)", number(v), mib * 100.0 / v)
            });
            format!("{mib:.1} MiB{max}")
        }
        None => "-".into(),
    };
    let cpu = match (u.cpu_percent, u.cpu_seconds) {
        (None, None) => "-".to_string(),
        (percent, seconds) => {
            let mut text = percent.map_or("-".into(), |p| format!("{p:.1}% of one core"));
            if let Some(max) = limit("max_cpu_percent") {
                text.push_str(&format!(" (max {}%)", number(max)));
            }
            if let Some(s) = seconds {
                text.push_str(&format!(", {s:.2}s this run"));
            }
            text
        }
    };
    let rows = [
        vec!["memory".into(), memory],
        vec!["CPU".into(), cpu],
        vec![
            "processes".into(),
            format!("{}{}", u.processes, of("max_processes")),
        ],
        vec![
            "open files".into(),
            // RLIMIT_NOFILE bounds each process, not the tree.
            u.open_files
                .map_or("-".into(), |n| match limit("max_file_descriptors") {
                    Some(max) => format!("{n} (max {} per process)", number(max)),
                    None => n.to_string(),
                }),
        ],
    ];
    block(&format!("Usage (from {})", u.source), &rows)
}

/// The last log lines, after a blank line, byte for byte.
fn tail(records: &[LogRecord]) -> Vec<u8> {
    if records.is_empty() {
        return b"\n(no log lines yet)\n".to_vec();
    }
    let mut out = b"\n".to_vec();
    for r in records {
        out.extend_from_slice(&super::logs::plain(r, false));
    }
    out
}

#[cfg(test)]
#[path = "tests/status.rs"]
pub(crate) mod tests;
