//! The reload operation, once for REST and gRPC: the manager's config
//! file is loaded again and, if valid, applied (or only planned).

use procman_api as api;
use procman_core::manager::{Control, Plan, ReloadError};

use super::service::Refusal;

/// Reloads (or, `dry_run`, plans the reload of) the manager's config.
pub async fn reload(control: &Control, dry_run: bool) -> Result<api::ReloadPlan, Refusal> {
    match control.reload(dry_run).await {
        Ok(plan) => Ok(wire(&plan, dry_run)),
        Err(e) => {
            tracing::error!(error = %e, "reload refused; nothing was changed");
            Err(refusal(e))
        }
    }
}

fn refusal(e: ReloadError) -> Refusal {
    match e {
        ReloadError::Config(_) | ReloadError::Log(_) | ReloadError::EnvFile(_) => {
            Refusal::InvalidConfig(format!(
                "the config was not reloaded; nothing was changed:\n{e}"
            ))
        }
        ReloadError::ShuttingDown => Refusal::Unavailable(e.to_string()),
        ReloadError::Load(_) => Refusal::Unavailable(e.to_string()),
    }
}

pub fn wire(plan: &Plan, dry_run: bool) -> api::ReloadPlan {
    let changes = |v: &[procman_core::manager::Change]| {
        v.iter()
            .map(|c| api::ProcessChange {
                id: c.id.clone(),
                keys: c.keys.clone(),
            })
            .collect()
    };
    api::ReloadPlan {
        dry_run,
        added: plan.added.clone(),
        removed: plan.removed.clone(),
        changed: changes(&plan.changed),
        changed_in_place: changes(&plan.changed_in_place),
        unchanged: plan.unchanged.clone(),
        manager: plan
            .manager
            .iter()
            .map(|c| api::ManagerChange {
                key: c.key.clone(),
                applied: c.applied,
            })
            .collect(),
        manager_restart_needed: plan.needs_manager_restart(),
    }
}

/// One line: what the reload did (or would do).
pub fn summary(plan: &api::ReloadPlan) -> String {
    let verb = if plan.dry_run {
        "would reload"
    } else {
        "reloaded"
    };
    let count = |n: usize, what: &str| format!("{n} {what}");
    let mut text = format!(
        "{verb}: {}, {}, {}, {}, {}",
        count(plan.added.len(), "added"),
        count(plan.removed.len(), "removed"),
        count(plan.changed.len(), "changed"),
        count(plan.changed_in_place.len(), "changed in place"),
        count(plan.unchanged.len(), "unchanged"),
    );
    if plan.manager_restart_needed {
        text.push_str("; some manager settings take effect only when the manager restarts");
    }
    text
}
