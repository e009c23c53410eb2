//! The read side of the API (runs, incidents), health and metrics. Gate decisions are in
//! `gates`.
//!
//! Reads never need a write: while the disk is full (writes refused with 503) the
//! runs and incidents stay readable.

use crate::Service;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::incident::IncidentRecord;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::IntoResponse;
use medic_core::{JournalStore, RunState, RunStatus, codec};
use medic_model::time::format_ms;
use serde_json::{Value, json};
use std::sync::Arc;

/// Runs a blocking store call off the async workers.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::Unavailable(format!("store worker failed: {e}")))?
}

/// `?status=`: only runs with this status.
#[derive(serde::Deserialize)]
pub(crate) struct RunsQuery {
    status: Option<String>,
}

/// `GET /api/runs`: runs, newest first; `?status=cancelled` (or running, succeeded,
/// failed) filters.
pub(crate) async fn runs(
    State(svc): State<Arc<Service>>,
    Query(q): Query<RunsQuery>,
    _: Caller,
) -> Result<Json<Vec<Value>>, ApiError> {
    let status = match q.status.as_deref().map(|s| (s, RunStatus::parse(s))) {
        None => None,
        Some((_, Some(status))) => Some(status),
        Some((s, None)) => {
            let all = RunStatus::ALL.map(RunStatus::as_str).join(", ");
            return Err(ApiError::BadRequest(format!(
                "status={s}: expected one of {all}"
            )));
        }
    };
    let mut runs = blocking(move || Ok(svc.store.runs()?)).await?;
    runs.retain(|r| status.is_none_or(|s| r.status == s));
    medic_core::timeline::newest_first(&mut runs);
    Ok(Json(
        runs.iter().map(medic_core::timeline::run_summary).collect(),
    ))
}

/// `GET /api/runs/{id}`: one run's report and timeline.
pub(crate) async fn run(
    State(svc): State<Arc<Service>>,
    Path(id): Path<String>,
    _: Caller,
) -> Result<Json<Value>, ApiError> {
    blocking(move || {
        let entries = svc.store.entries(&id)?;
        let state = RunState::fold(&id, &entries)
            .map_err(|e| ApiError::Unavailable(format!("run {id}: journal unreadable: {e}")))?;
        Ok(Json(medic_core::timeline::run_report(&state, &entries)))
    })
    .await
}

/// `GET /api/incidents`: every incident with its counts and runs.
pub(crate) async fn incidents(
    State(svc): State<Arc<Service>>,
    _: Caller,
) -> Result<Json<Vec<Value>>, ApiError> {
    let records = blocking(move || Ok(svc.store.scan(IncidentRecord::PREFIX)?)).await?;
    let mut out = Vec::new();
    for (key, v) in records {
        let r: IncidentRecord = codec::decode(&v).map_err(|e| {
            ApiError::Unavailable(format!(
                "incident record {} unreadable: {e}",
                String::from_utf8_lossy(&key)
            ))
        })?;
        out.push(json!({
            "id": r.fingerprint, "generation": r.generation,
            "status": r.incident.status.as_str(), "title": r.incident.title,
            "severity": r.incident.severity, "source": r.incident.source,
            "labels": r.incident.labels, "started_at": r.incident.started_at,
            "notes": r.incident.notes, "alerts": r.alerts, "late_alerts": r.late_alerts,
            "runs": r.runs,
            "suppressed": r.suppressed.iter().map(|s| json!({
                "workflow": s.workflow, "at": format_ms(s.at_ms), "reason": s.reason,
            })).collect::<Vec<_>>(),
            "first_seen": format_ms(r.first_seen_ms), "last_seen": format_ms(r.last_seen_ms),
            "resolved": r.resolved_ms.map(format_ms),
            "ended_at": r.ended_at_ms.and_then(|ms| u64::try_from(ms).ok()).map(format_ms),
        }));
    }
    Ok(Json(out))
}

/// `GET /healthz`: 200 while medic can do its job or recover by itself; 503 when the
/// store failed and does not come back (reopened and probed), so a supervisor restarts
/// medic.
pub(crate) async fn healthz(State(svc): State<Arc<Service>>) -> Result<&'static str, ApiError> {
    blocking(move || svc.check_store(true)).await?;
    Ok("ok\n")
}

/// `GET /readyz`: ready when intake is open and the store takes a durable write.
pub(crate) async fn readyz(State(svc): State<Arc<Service>>) -> Result<&'static str, ApiError> {
    if !svc.accepting() {
        return Err(ApiError::Unavailable("shutting down".into()));
    }
    blocking(move || svc.check_store(false)).await?;
    Ok("ready\n")
}

/// Any path no route takes: a 404 in the JSON shape, naming the path.
pub(crate) async fn no_such_route(uri: axum::http::Uri) -> ApiError {
    ApiError::NotFound(format!(
        "no such endpoint: {} (medic serves /intake/{{source}}, /api/runs, /api/incidents, /healthz, /readyz, /metrics)",
        uri.path()
    ))
}

/// `GET /metrics`: Prometheus text format.
pub(crate) async fn metrics(
    State(svc): State<Arc<Service>>,
) -> Result<impl IntoResponse, ApiError> {
    let worker = svc.clone();
    // The inbox depth is counted now, not remembered from the last drain: a sender asking
    // "has what I posted been handled?" needs the present.
    let (runs, inbox, lanes, store_bytes) = blocking(move || {
        let runs = worker.store.runs()?;
        // Alerts, not records: a record holds the alerts of one lane one flush stored.
        let (inbox, lanes) = crate::inbox::depth(&worker.store)?;
        Ok((runs, inbox, lanes, worker.store.size_on_disk()?))
    })
    .await?;
    let queues = crate::metrics::Queues {
        inbox,
        runs: svc.engine.waiting_for_slot(),
        inbox_lanes: lanes,
        run_lanes: svc.pool.depths(),
        store_bytes,
        parked: svc.parked.len(),
    };
    Ok((
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        svc.metrics.render(&runs, &queues),
    ))
}
