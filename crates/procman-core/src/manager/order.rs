//! The order `depends_on` gives: each process's supervisor is told what it
//! depends on (its gate then holds every launch until those are ready, see
//! `supervisor/gate.rs`); a user's start refuses a process whose
//! dependencies are down, or starts them with it; the shutdown stops
//! dependents before what they depend on.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Instant;

use super::registry::ManagerError;
use crate::config::{Config, DependencyCondition, ProcessKind};
use crate::policy;
use crate::supervisor::{Handle, Lifecycle, ProcessStatus, Ticket, Upstream};

/// Gives each handle its dependencies, by id, as `config` lists them
/// (replacing what it had: called again with the handles and config of a
/// reload). A handle `config` does not list is left alone.
pub(crate) fn wire(procs: &[Handle], config: &Config) {
    let by_id: HashMap<&str, &Handle> = procs.iter().map(|h| (h.id(), h)).collect();
    let configs = index(config);
    for p in &config.processes {
        let Some(handle) = by_id.get(p.id.as_str()) else {
            continue;
        };
        let upstreams = p
            .depends_on
            .iter()
            .filter_map(|dep| {
                let (Some(h), Some(cfg)) =
                    (by_id.get(dep.id.as_str()), configs.get(dep.id.as_str()))
                else {
                    // Validation rejects an unknown id; a caller that
                    // passes fewer handles gets no gate for it.
                    tracing::warn!(process = %p.id, dependency = %dep.id,
                        "a dependency without a supervisor is not waited for");
                    return None;
                };
                let mut status = h.subscribe();
                drop(status.borrow_and_update());
                Some(Upstream {
                    id: dep.id.clone(),
                    condition: dep.condition,
                    status,
                    enabled: cfg.enabled,
                    success_exit_codes: cfg.control.success_exit_codes.clone(),
                    gone: false,
                    unmanaged: cfg.kind == ProcessKind::Unmanaged,
                })
            })
            .collect();
        handle.depend_on(upstreams);
    }
}

/// `ids` in the order to stop them: level 0 holds the processes no other
/// listed process depends on, each next level what only the levels before
/// depend on. A level stops in parallel, after the one before has
/// stopped. Within a level, the order of `ids`.
pub(crate) fn stop_levels(config: &Config, ids: &[&str]) -> Vec<Vec<String>> {
    let listed: HashSet<&str> = ids.iter().copied().collect();
    let configs = index(config);
    let deps_of = |id: &str| -> Vec<&str> {
        configs.get(id).map_or(Vec::new(), |p| {
            p.depends_on
                .iter()
                .map(|d| d.id.as_str())
                .filter(|d| listed.contains(d) && *d != id)
                .collect()
        })
    };
    // How many listed processes, not yet stopped, depend on each one.
    let mut dependents: HashMap<&str, usize> = ids.iter().map(|&id| (id, 0)).collect();
    for &id in ids {
        for dep in deps_of(id) {
            *dependents.entry(dep).or_default() += 1;
        }
    }
    let mut left: Vec<&str> = ids.to_vec();
    let mut levels = Vec::new();
    while !left.is_empty() {
        let (now, later): (Vec<&str>, Vec<&str>) = left.iter().partition(|id| dependents[*id] == 0);
        // A cycle (which validation rejects) must not stop the shutdown:
        // what is left goes at once.
        if now.is_empty() {
            levels.push(later.iter().map(|s| s.to_string()).collect());
            break;
        }
        for &id in &now {
            for dep in deps_of(id) {
                if let Some(n) = dependents.get_mut(dep) {
                    *n = n.saturating_sub(1);
                }
            }
        }
        levels.push(now.iter().map(|s| s.to_string()).collect());
        left = later;
    }
    levels
}

/// Stops every process of `procs`, each as soon as every process that
/// depends on it has stopped (see [`in_stop_order`]). Returns the tickets
/// of what had not stopped by `force` (each is then told to stop again,
/// which kills a stopping process at once); empty when all stopped in
/// time.
pub(crate) async fn stop_in_order(
    procs: &[Handle],
    config: &Config,
    force: Instant,
) -> Vec<Ticket> {
    // Every process that no other depends on gets its stop signal first,
    // all in one tight pass, before anything else is prepared or any
    // supervisor is told; then the stop commands (`each`, called at once
    // for them), and each supervisor does the rest of its stop. The others,
    // when their turn comes: the signal, then the command.
    {
        let depended = depended_on(procs, config);
        // No exit is reaped (nor any spawn made) during the pass: the
        // supervisors' handling of the first exits would hold back the
        // signals still to send. The zombies wait a few milliseconds.
        let _reaper = crate::platform::reaper::hold();
        for h in procs.iter().filter(|h| !depended.contains(h.id())) {
            h.stop_now();
        }
    }
    let left = in_stop_order(procs, config, Some(force), |h| {
        h.stop_now();
        let ticket = h.stop();
        async move {
            let _ = ticket.await;
        }
    })
    .await;
    let left: HashSet<String> = left.into_iter().collect();
    procs
        .iter()
        .filter(|h| left.contains(h.id()))
        .map(Handle::stop)
        .collect()
}

/// The ids that a process of `procs` depends on (on itself aside).
fn depended_on<'c>(procs: &[Handle], config: &'c Config) -> HashSet<&'c str> {
    let listed: HashSet<&str> = procs.iter().map(Handle::id).collect();
    config
        .processes
        .iter()
        .filter(|p| listed.contains(p.id.as_str()))
        .flat_map(|p| {
            p.depends_on
                .iter()
                .map(|d| d.id.as_str())
                .filter(move |d| *d != p.id)
        })
        .collect()
}

/// Runs `each` for every process of `procs`, each once `each` has ended
/// for every listed process that depends on it (dependents first, as
/// [`stop_levels`] orders them; a slow one holds back only what it depends
/// on, not a whole level). `each` is called when that moment comes: for
/// every process that waits for none, at once, all in one pass before any
/// is awaited, so what `each` does before its future (a command sent)
/// reaches them all without delay. Returns the ids whose `each` had not
/// ended when `until` passed (those still running are abandoned); empty
/// when all ended.
pub(crate) async fn in_stop_order<F, Fut>(
    procs: &[Handle],
    config: &Config,
    until: Option<Instant>,
    each: F,
) -> Vec<String>
where
    F: Fn(Handle) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let ids: Vec<&str> = procs.iter().map(Handle::id).collect();
    // A process waits only for dependents of an earlier level: a cycle
    // (which validation rejects) cannot make two wait for each other.
    let level_of: HashMap<String, usize> = stop_levels(config, &ids)
        .into_iter()
        .enumerate()
        .flat_map(|(n, level)| level.into_iter().map(move |id| (id, n)))
        .collect();
    let done: HashMap<&str, tokio::sync::watch::Sender<bool>> = ids
        .iter()
        .map(|&id| (id, tokio::sync::watch::channel(false).0))
        .collect();
    // Who depends on each process (built once: linear in the config).
    let mut dependents: HashMap<&str, Vec<&str>> = HashMap::new();
    for p in &config.processes {
        for d in &p.depends_on {
            dependents
                .entry(d.id.as_str())
                .or_default()
                .push(p.id.as_str());
        }
    }
    // Each process with what it waits for; `each` called at once for those
    // that wait for none.
    let mut turns = Vec::with_capacity(procs.len());
    for h in procs {
        let level = level_of.get(h.id()).copied().unwrap_or(0);
        let waits: Vec<tokio::sync::watch::Receiver<bool>> = dependents
            .get(h.id())
            .into_iter()
            .flatten()
            .filter(|id| level_of.get(**id).is_some_and(|&l| l < level))
            .filter_map(|id| done.get(id).map(|tx| tx.subscribe()))
            .collect();
        let Some(finished) = done.get(h.id()).cloned() else {
            continue;
        };
        let now = waits.is_empty().then(|| each(h.clone()));
        turns.push((h.clone(), waits, now, finished));
    }
    let mut runs = tokio::task::JoinSet::new();
    for (h, waits, now, finished) in turns {
        let each = each.clone();
        runs.spawn(async move {
            let work = match now {
                Some(work) => work,
                None => {
                    for mut dependent in waits {
                        let _ = dependent.wait_for(|ended| *ended).await;
                    }
                    each(h)
                }
            };
            work.await;
            finished.send_replace(true);
        });
    }
    let all = async { while runs.join_next().await.is_some() {} };
    match until {
        None => all.await,
        Some(until) => {
            if tokio::time::timeout_at(until.into(), all).await.is_err() {
                runs.abort_all();
            }
        }
    }
    done.iter()
        .filter(|(_, tx)| !*tx.borrow())
        .map(|(id, _)| id.to_string())
        .collect()
}

/// Every process `id` depends on, directly or not, once each, nearest
/// first, with the conditions it is needed with.
fn upstream_of<'c>(config: &'c Config, id: &str) -> Vec<(&'c str, Vec<DependencyCondition>)> {
    let mut found: Vec<(&str, Vec<DependencyCondition>)> = Vec::new();
    let mut queue: VecDeque<&str> = VecDeque::new();
    if let Some(p) = config.process(id) {
        queue.push_back(p.id.as_str());
    }
    while let Some(next) = queue.pop_front() {
        let Some(p) = config.process(next) else {
            continue;
        };
        for dep in &p.depends_on {
            if dep.id == id {
                continue;
            }
            match found.iter_mut().find(|(d, _)| *d == dep.id) {
                Some((_, conditions)) => conditions.push(dep.condition),
                None => {
                    found.push((dep.id.as_str(), vec![dep.condition]));
                    queue.push_back(dep.id.as_str());
                }
            }
        }
    }
    found
}

/// Whether a dependency in state `s` is down for a process that needs it
/// with `conditions`: never started, stopped, failed, or exited without
/// meeting them. One on its way (starting, waiting, backoff) or running
/// is not: the process waits for it.
pub(super) fn is_down(
    s: &ProcessStatus,
    conditions: &[DependencyCondition],
    success: &[i32],
) -> bool {
    match &s.lifecycle {
        Lifecycle::Registered | Lifecycle::Stopped | Lifecycle::Failed { .. } => true,
        Lifecycle::Exited { end } => !conditions.iter().all(|c| {
            *c == DependencyCondition::CompletedSuccessfully
                && policy::classify(*end, success) == policy::Outcome::Success
        }),
        _ => false,
    }
}

/// Makes ready the start of `id` by a user: with `with_deps`, every
/// managed process it depends on (directly or not) is started, all at
/// once (their gates order them); without, the start is refused when any
/// of them is down. A process that runs or waits already needs neither.
pub(crate) fn prepare_start(
    procs: &[Handle],
    config: &Config,
    id: &str,
    with_deps: bool,
) -> Result<(), ManagerError> {
    let handle_of = |id: &str| procs.iter().find(|h| h.id() == id);
    if let Some(h) = handle_of(id) {
        let phase = h.status().phase();
        if !with_deps && (phase.is_active() || phase == crate::supervisor::Phase::Waiting) {
            return Ok(());
        }
    }
    let mut down = Vec::new();
    for (dep, conditions) in upstream_of(config, id) {
        let (Some(h), Some(cfg)) = (handle_of(dep), config.process(dep)) else {
            continue;
        };
        // Never started by procman: it is waited for, never asked.
        if cfg.kind == ProcessKind::Unmanaged {
            continue;
        }
        let s = h.status();
        if !is_down(&s, &conditions, &cfg.control.success_exit_codes) {
            continue;
        }
        if with_deps {
            // Only what is down: a batch job that completed successfully
            // is not run again. The outcome shows in its state (and in
            // the reason `id` waits with), not in this start's answer.
            drop(h.start());
        } else {
            let state = match s.phase() {
                crate::supervisor::Phase::Registered if !cfg.enabled => "not enabled".to_string(),
                phase => phase.to_string(),
            };
            down.push((dep.to_string(), state));
        }
    }
    if down.is_empty() {
        Ok(())
    } else {
        Err(ManagerError::DependenciesDown {
            id: id.to_string(),
            down,
        })
    }
}

/// The message of [`ManagerError::DependenciesDown`]: `cannot start api:
/// it depends on db, which is stopped (start it first, or use
/// --with-deps)`.
pub(crate) fn down_message(id: &str, down: &[(String, String)]) -> String {
    let each: Vec<String> = down
        .iter()
        .map(|(dep, state)| format!("{dep}, which is {state}"))
        .collect();
    let them = if down.len() == 1 { "it" } else { "them" };
    format!(
        "cannot start {id}: it depends on {} (start {them} first, or use --with-deps)",
        each.join(", and on ")
    )
}

#[cfg(test)]
#[path = "tests/order.rs"]
mod tests;

/// The processes of `config` by id (a lookup per dependency stays cheap
/// with thousands of processes).
fn index(config: &Config) -> HashMap<&str, &crate::config::ProcessConfig> {
    config
        .processes
        .iter()
        .map(|p| (p.id.as_str(), p.as_ref()))
        .collect()
}
