//! The objects of one process: its Deployment (a Job for `batch`) around
//! the pod, and its Service; the warnings about restarts and the rest of
//! `control`; and README.md, which says how to apply them.

use std::fmt::Write as _;

use procman_core::config::{Config, Profile, RestartPolicy, RestartStrategy};
use procman_core::outcome::Signal;

use super::yaml::{Map, Node};
use super::{container, dependency, int32, shell_word, Notes, Process, Target};
use crate::export::Warning;

const RESTART: &str = "management.restart_policy";

/// The objects of `x` with their kinds: its Deployment or Job, then its
/// Service when it has a port.
pub(super) fn objects(x: &Process<'_>, notes: &mut Notes<'_>) -> Vec<(&'static str, Node)> {
    let batch = x.p.profile == Profile::Batch;
    let container = container::container(x, notes);
    let init = dependency::init_containers(x, notes);
    let (policy, backoff_limit) = restart(x, batch, notes);
    control(x, batch, notes);
    let grace = grace_period(x, notes);
    // `lifecycle.stopSignal` is accepted only with the pod's OS named.
    let os =
        (x.p.control.shutdown_signal != Signal::TERM).then(|| Map::new().with("name", "linux"));
    let pod = Map::new()
        .with_some("os", os)
        .with("restartPolicy", policy)
        .with("terminationGracePeriodSeconds", grace)
        .with_some(
            "initContainers",
            (!init.is_empty()).then_some(Node::Seq(init)),
        )
        .with("containers", Node::Seq(vec![container]));
    let template = Map::new()
        .with("metadata", Map::new().with("labels", x.labels.clone()))
        .with("spec", pod);
    let metadata = Map::new()
        .with("name", x.name)
        .with("labels", x.labels.clone());
    let workload = if batch {
        let spec = Map::new()
            .with_some("suspend", (!x.p.enabled).then_some(true))
            .with_some("backoffLimit", backoff_limit)
            .with("template", template);
        (
            "Job",
            object("batch/v1", "Job", metadata).with("spec", spec),
        )
    } else {
        // procman never runs two copies of a process: a new pod only
        // once the old one is gone.
        let spec = Map::new()
            .with("replicas", i64::from(x.p.enabled))
            .with(
                "selector",
                Map::new().with("matchLabels", x.selector.clone()),
            )
            .with("strategy", Map::new().with("type", "Recreate"))
            .with("template", template);
        (
            "Deployment",
            object("apps/v1", "Deployment", metadata).with("spec", spec),
        )
    };
    let mut objects = vec![(workload.0, workload.1.into())];
    if let Some(port) = x.port {
        let spec = Map::new()
            .with("type", "ClusterIP")
            .with("selector", x.selector.clone())
            .with(
                "ports",
                Node::Seq(vec![Map::new()
                    .with("port", port)
                    .with("targetPort", port)
                    .with("protocol", "TCP")
                    .into()]),
            );
        let metadata = Map::new()
            .with("name", x.name)
            .with("labels", x.labels.clone());
        objects.push((
            "Service",
            object("v1", "Service", metadata).with("spec", spec).into(),
        ));
    }
    objects
}

/// `terminationGracePeriodSeconds` from `shutdown_timeout`: at least 1,
/// since 0 makes every deletion of the pod a force deletion (its object
/// goes at once, while its container may still run).
fn grace_period(x: &Process<'_>, notes: &mut Notes<'_>) -> i64 {
    let key = "management.control.shutdown_timeout";
    let timeout = x.p.control.shutdown_timeout;
    if !timeout.is_zero() {
        return notes.seconds(key, timeout);
    }
    notes.warn(
        key,
        "0s is written as terminationGracePeriodSeconds: 1 (SIGKILL 1s after the stop signal): a grace period of 0 makes every deletion of the pod a force deletion, which removes the pod at once while its container may still run, so that a new pod can start before the old one has stopped",
    );
    1
}

fn object(api_version: &str, kind: &str, metadata: Map) -> Map {
    Map::new()
        .with("apiVersion", api_version)
        .with("kind", kind)
        .with("metadata", metadata)
}

/// The pod's `restartPolicy` and a Job's `backoffLimit`, with a warning
/// for each restart setting Kubernetes does not have.
fn restart(x: &Process<'_>, batch: bool, notes: &mut Notes<'_>) -> (&'static str, Option<i64>) {
    let r = &x.p.restart;
    if r.strategy == RestartStrategy::Never {
        if !batch {
            notes.warn(
                &format!("{RESTART}.strategy"),
                "a Deployment's container is restarted whenever it ends (restartPolicy Always); as with `never`, failed health checks do not restart it (no liveness probe), they only mark the pod unready",
            );
        }
        return if batch {
            ("Never", Some(0))
        } else {
            ("Always", None)
        };
    }
    if !batch && r.strategy == RestartStrategy::OnFailure {
        notes.warn(
            &format!("{RESTART}.strategy"),
            "a Deployment's container is restarted whenever it ends (restartPolicy Always), after exit code 0 too",
        );
    }
    let defaults = RestartPolicy::default();
    let backoff = "the kubelet's own back-off applies: 10s, doubling up to 5 minutes, reset after 10 minutes of running";
    let differs: [(&str, bool, &str); 6] = [
        (
            "restart_delay",
            r.restart_delay != defaults.restart_delay,
            backoff,
        ),
        (
            "backoff_multiplier",
            r.backoff_multiplier != defaults.backoff_multiplier,
            backoff,
        ),
        (
            "max_delay",
            r.max_delay != defaults.max_delay.max(r.restart_delay),
            backoff,
        ),
        ("jitter", r.jitter != defaults.jitter, backoff),
        (
            "reset_after",
            r.reset_after != defaults.reset_after,
            backoff,
        ),
        (
            "window",
            r.window != defaults.window,
            if batch {
                "a Job's backoffLimit counts the retries of its whole life, not those within a window"
            } else {
                "the kubelet restarts a Deployment's container without limit: there is no window to count in"
            },
        ),
    ];
    if !batch && r.max_attempts != defaults.max_attempts {
        notes.warn(
            &format!("{RESTART}.max_attempts"),
            "the kubelet restarts a Deployment's container without limit: no circuit breaker marks it failed",
        );
    }
    for (key, _, message) in differs.iter().filter(|(_, differs, _)| *differs) {
        notes.warn(&format!("{RESTART}.{key}"), *message);
    }
    if batch {
        // 0 is no limit for procman; Kubernetes has none, so the largest.
        let limit = match r.max_attempts {
            0 => int32(u64::MAX),
            n => int32(u64::from(n)),
        };
        ("OnFailure", Some(limit))
    } else {
        ("Always", None)
    }
}

/// Warnings for `success_exit_codes` and `shutdown_on_exit`.
fn control(x: &Process<'_>, batch: bool, notes: &mut Notes<'_>) {
    if x.p.control.success_exit_codes != [0] {
        notes.warn(
            "management.control.success_exit_codes",
            if batch {
                "Kubernetes counts only exit code 0 as a success: a Job's run ending with another code fails"
            } else {
                "Kubernetes counts only exit code 0 as a success (a Deployment's container is restarted after any exit)"
            },
        );
    }
    if x.p.shutdown_on_exit {
        notes.warn(
            "shutdown_on_exit",
            "one pod ending does not stop the others: Kubernetes has no equivalent",
        );
    }
}

/// README.md of `-o DIR`: the files, how to apply them (Jobs that others
/// wait for first), and the warnings.
pub(super) fn readme(
    config: &Config,
    part_of: &str,
    targets: &[Option<Target>],
    warnings: &[Warning],
) -> String {
    let mut text = format!(
        "# {part_of}: Kubernetes manifests\n\nWritten by `procman export --format kubernetes`: one file per process, holding its Deployment (a Job for a `batch` process) and, when it serves a port, its Service.\n\n| File | Objects |\n|---|---|\n"
    );
    let mut waits = false;
    let mut disabled = Vec::new();
    for (p, target) in config.processes.iter().zip(targets) {
        let Some(t) = target else { continue };
        let kind = if p.profile == Profile::Batch {
            "Job"
        } else {
            "Deployment"
        };
        let service = t
            .port
            .map(|_| format!(", Service `{}`", t.name))
            .unwrap_or_default();
        let _ = writeln!(text, "| `{}.yaml` | {kind} `{}`{service} |", t.name, t.name);
        waits |= !p.depends_on.is_empty();
        if !p.enabled {
            disabled.push(match p.profile {
                Profile::Batch => format!("- `{0}`: its Job is suspended; `kubectl patch job/{0} --type=merge -p '{{\"spec\":{{\"suspend\":false}}}}'` runs it.\n", t.name),
                Profile::LongRunning => format!("- `{0}`: its Deployment has 0 replicas; `kubectl scale deployment/{0} --replicas=1` starts it.\n", t.name),
            });
        }
    }
    text.push_str("\n## Applying them\n\nRun the commands below from this directory (kubectl reads only the `.yaml` files of a directory; add `-n NAMESPACE` to each for another namespace than the current one).\n\n");
    let secrets: Vec<String> = config
        .processes
        .iter()
        .zip(targets)
        .filter_map(|(p, t)| Some((p.control.env_file.as_ref()?, t.as_ref()?)))
        .map(|(file, t)| {
            format!(
                "kubectl create secret generic {}-env --from-env-file={}\n",
                t.name,
                shell_word(&file.to_string_lossy())
            )
        })
        .collect();
    if !secrets.is_empty() {
        text.push_str("First the Secrets that stand for the `env_file`s, made from the files (on the host that has them):\n\n```sh\n");
        text.extend(secrets);
        text.push_str("```\n\n");
    }
    let stages = dependency::stages(config, targets);
    if stages.len() > 1 {
        text.push_str("Kubernetes cannot make a pod wait for a Job to complete, so apply the files in this order, waiting for each Job that others need:\n\n```sh\n");
        for stage in &stages {
            let files: Vec<String> = stage.files.iter().map(|f| format!("-f {f}.yaml")).collect();
            let _ = writeln!(text, "kubectl apply {}", files.join(" "));
            for (job, waiters) in &stage.jobs {
                let verb = if waiters.len() == 1 { "waits" } else { "wait" };
                let _ = writeln!(
                    text,
                    "kubectl wait --for=condition=complete --timeout=1h job/{job}   # {} {verb} for it",
                    waiters.join(", ")
                );
            }
        }
        text.push_str("```\n\nA Job runs once: to run it again, delete it first (`kubectl delete job NAME`).\n\n");
    } else {
        text.push_str("```sh\nkubectl apply -f .\n```\n\n");
    }
    let _ = write!(
        text,
        "Then:\n\n```sh\nkubectl get pods -l app.kubernetes.io/part-of={part_of}   # their pods\nkubectl delete -f .   # removes them all\n```\n"
    );
    if waits {
        let _ = write!(
            text,
            "\nA pod whose process depends on others waits in init containers (image `{}`) until each dependency's Service accepts a connection, that is until a pod behind it is ready (its readiness probe, procman's health check, passes).\n",
            dependency::WAIT_IMAGE
        );
    }
    if !disabled.is_empty() {
        text.push_str("\nNot enabled in the config, so not started:\n\n");
        text.extend(disabled);
    }
    if !warnings.is_empty() {
        text.push_str("\n## Not carried over\n\nWhat Kubernetes cannot express, as `procman export` warned:\n\n");
        for w in warnings {
            let _ = writeln!(text, "- `{}`: {}", w.path, w.message);
        }
    }
    text
}
