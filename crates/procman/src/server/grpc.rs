//! `procman.v1.ProcessManager` over gRPC: the same operations as REST
//! (`service.rs`), in the messages of `procman.proto`. A [`Refusal`] maps
//! to NOT_FOUND, INVALID_ARGUMENT, FAILED_PRECONDITION, UNIMPLEMENTED or
//! UNAVAILABLE.

use std::pin::Pin;

use procman_api as api;
use procman_api::proto;
use procman_api::proto::process_manager_server::ProcessManager;
use tonic::{Request, Response, Status};

use futures_util::StreamExt as _;

use super::feeds;
use super::service::{self, Refusal, Verb};
use super::{Api, Shutdown};

/// The largest request message accepted (a request is a few fields).
pub const MAX_MESSAGE: usize = 64 * 1024;

/// The service, over the same state as the REST routes.
pub struct Grpc {
    pub api: Api,
}

impl From<Refusal> for Status {
    fn from(r: Refusal) -> Status {
        match r {
            Refusal::NotFound(m) => Status::not_found(m),
            Refusal::BadRequest(m) => Status::invalid_argument(m),
            Refusal::Conflict(m) => Status::failed_precondition(m),
            Refusal::InvalidConfig(m) => Status::invalid_argument(m),
            Refusal::DependenciesDown { message, .. } => Status::failed_precondition(message),
            Refusal::Unavailable(m) => Status::unavailable(m),
        }
    }
}

fn exit(e: api::Exit) -> proto::Exit {
    proto::Exit {
        code: e.code,
        signal: e.signal,
        core_dumped: e.core_dumped,
        description: e.description,
    }
}

fn process(p: api::Process) -> proto::Process {
    proto::Process {
        id: p.id,
        r#type: p.kind,
        state: p.state,
        enabled: p.enabled,
        pid: p.pid,
        started_at: p.started_at,
        uptime_seconds: p.uptime_seconds,
        runs: p.runs,
        restarts: p.restarts,
        health: p.health,
        last_exit: p.last_exit.map(exit),
        last_error: p.last_error,
        waiting_reason: p.waiting_reason,
    }
}

fn detail(d: api::ProcessDetail) -> proto::ProcessDetail {
    proto::ProcessDetail {
        process: Some(process(d.process)),
        last_transition: d.last_transition.map(|t| proto::Transition {
            from: t.from,
            to: t.to,
            cause: t.cause,
            cause_kind: t.cause_kind,
            at: t.at,
        }),
        pids: d.pids,
        breaker: d.breaker,
        health_check: d.health_check.map(|h| proto::HealthCheck {
            r#type: h.kind,
            state: h.state,
            last_check: h.last_check,
            last_latency_seconds: h.last_latency_seconds,
            last_result: h.last_result,
            consecutive_failures: h.consecutive_failures,
            last_error: h.last_error,
        }),
        log_file: d.log_file,
        log_bytes: d.log_bytes,
        log_dropped: d.log_dropped,
        restarts_by_cause: d
            .restarts_by_cause
            .into_iter()
            .map(|(cause, restarts)| proto::RestartCount { cause, restarts })
            .collect(),
        limits: d
            .limits
            .into_iter()
            .map(|l| proto::ResourceLimit {
                limit: l.limit,
                value: l.value,
                enforced_by: l.enforced_by,
            })
            .collect(),
        on_violation: d.on_violation,
        violation_grace_seconds: d.violation_grace_seconds,
        sample_interval_seconds: d.sample_interval_seconds,
        usage: d.usage.map(|u| proto::ResourceUsage {
            memory_bytes: u.memory_bytes,
            cpu_seconds: u.cpu_seconds,
            cpu_percent: u.cpu_percent,
            processes: u.processes,
            open_files: u.open_files,
            source: u.source,
        }),
        oom_kills: d.oom_kills,
        violations: d.violations,
    }
}

fn manager(m: api::ManagerInfo) -> proto::ManagerInfo {
    proto::ManagerInfo {
        state: m.state,
        pid: m.pid,
        version: m.version,
        started_at: m.started_at,
        uptime_seconds: m.uptime_seconds,
        config_file: m.config_file,
        state_dir: m.state_dir,
        cgroups: m.cgroups,
        processes: m.processes,
        by_state: m.by_state.into_iter().collect(),
    }
}

fn event(e: api::Event) -> proto::Event {
    proto::Event {
        seq: e.seq,
        process: e.process,
        from: e.from,
        to: e.to,
        cause: e.cause,
        cause_kind: e.cause_kind,
        pid: e.pid,
        run: e.run,
        at: e.at,
    }
}

type Stream<T> = Pin<Box<dyn futures_util::Stream<Item = Result<T, Status>> + Send>>;

impl Grpc {
    async fn act(&self, id: String, verb: Verb) -> Result<Response<proto::Process>, Status> {
        let p = service::act(&self.api.control, &id, verb, true).await?;
        Ok(Response::new(process(p)))
    }
}

#[tonic::async_trait]
impl ProcessManager for Grpc {
    async fn list_processes(
        &self,
        _: Request<proto::ListProcessesRequest>,
    ) -> Result<Response<proto::ListProcessesResponse>, Status> {
        let processes = service::list(&self.api.control)
            .into_iter()
            .map(process)
            .collect();
        Ok(Response::new(proto::ListProcessesResponse { processes }))
    }

    async fn get_process(
        &self,
        req: Request<proto::ProcessRequest>,
    ) -> Result<Response<proto::ProcessDetail>, Status> {
        let id = req.into_inner().id;
        Ok(Response::new(detail(
            service::detail(&self.api.control, &id).await?,
        )))
    }

    async fn start_process(
        &self,
        req: Request<proto::StartRequest>,
    ) -> Result<Response<proto::Process>, Status> {
        let r = req.into_inner();
        let with_deps = r.with_deps;
        self.act(r.id, Verb::Start { with_deps }).await
    }

    async fn stop_process(
        &self,
        req: Request<proto::ProcessRequest>,
    ) -> Result<Response<proto::Process>, Status> {
        self.act(req.into_inner().id, Verb::Stop).await
    }

    async fn restart_process(
        &self,
        req: Request<proto::ProcessRequest>,
    ) -> Result<Response<proto::Process>, Status> {
        self.act(req.into_inner().id, Verb::Restart).await
    }

    async fn signal_process(
        &self,
        req: Request<proto::SignalRequest>,
    ) -> Result<Response<proto::Process>, Status> {
        let r = req.into_inner();
        let body = api::SignalRequest {
            signal: r.signal,
            tree: r.tree,
        };
        Ok(Response::new(process(
            service::signal(&self.api.control, &r.id, &body).await?,
        )))
    }

    async fn get_manager(
        &self,
        _: Request<proto::GetManagerRequest>,
    ) -> Result<Response<proto::ManagerInfo>, Status> {
        Ok(Response::new(manager(service::manager(&self.api.control))))
    }

    async fn reload(
        &self,
        req: Request<proto::ReloadRequest>,
    ) -> Result<Response<proto::ReloadResponse>, Status> {
        let plan = super::reload::reload(&self.api.control, req.into_inner().dry_run).await?;
        Ok(Response::new(reload_plan(plan)))
    }

    async fn shutdown(
        &self,
        req: Request<proto::ShutdownRequest>,
    ) -> Result<Response<proto::ShutdownResponse>, Status> {
        let how = if req.into_inner().keep_processes {
            Shutdown::KeepProcesses
        } else {
            Shutdown::Stop
        };
        self.api.request_shutdown("gRPC", how);
        Ok(Response::new(proto::ShutdownResponse {
            message: how.message().into(),
        }))
    }

    type LogsStream = Stream<proto::LogRecord>;

    async fn logs(
        &self,
        req: Request<proto::LogsRequest>,
    ) -> Result<Response<Self::LogsStream>, Status> {
        let r = req.into_inner();
        let id = Some(r.id.as_str()).filter(|id| !id.is_empty());
        let rx = feeds::logs(&self.api.control, id, r.lines as usize, r.follow).await?;
        let stream = feeds::until_stopped(rx, self.api.stopping.clone())
            .map(|v| Ok(proto::LogRecord { json: v.into() }));
        Ok(Response::new(Box::pin(stream)))
    }

    type EventsStream = Stream<proto::Event>;

    async fn events(
        &self,
        req: Request<proto::EventsRequest>,
    ) -> Result<Response<Self::EventsStream>, Status> {
        let r = req.into_inner();
        let process = Some(r.id.as_str()).filter(|id| !id.is_empty());
        // `last: 0` asks for no past events (REST's `n=0` asks for all).
        let past = (r.last > 0).then_some(r.last as usize);
        let control = &self.api.control;
        let rx = if r.follow {
            feeds::follow_events(control, &self.api.journal_written, past, process).await?
        } else {
            let old = match past {
                Some(n) => {
                    feeds::past_events(control, &self.api.journal_written, n, process).await?
                }
                None => Vec::new(),
            };
            let (tx, rx) = tokio::sync::mpsc::channel(old.len().max(1));
            for e in old {
                let _ = tx.try_send(feeds::Item::Event(e));
            }
            rx
        };
        let stream = feeds::until_stopped(rx, self.api.stopping.clone()).map(|item| match item {
            feeds::Item::Event(e) => Ok(event(e)),
            feeds::Item::Lagged(missed) => Err(Status::data_loss(format!(
                "this client read too slowly and missed {missed} events; call Events again"
            ))),
        });
        Ok(Response::new(Box::pin(stream)))
    }
}

fn reload_plan(plan: api::ReloadPlan) -> proto::ReloadResponse {
    let changes = |v: Vec<api::ProcessChange>| {
        v.into_iter()
            .map(|c| proto::ProcessChange {
                id: c.id,
                keys: c.keys,
            })
            .collect()
    };
    proto::ReloadResponse {
        message: super::reload::summary(&plan),
        dry_run: plan.dry_run,
        added: plan.added,
        removed: plan.removed,
        changed: changes(plan.changed),
        changed_in_place: changes(plan.changed_in_place),
        unchanged: plan.unchanged,
        manager: plan
            .manager
            .into_iter()
            .map(|c| proto::ManagerChange {
                key: c.key,
                applied: c.applied,
            })
            .collect(),
        manager_restart_needed: plan.manager_restart_needed,
    }
}
