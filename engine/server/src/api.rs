//! The read side of the API (runs, incidents), health and metrics. Gate decisions are in
//! `gates`.

use crate::Service;
use crate::incident::IncidentRecord;
use crate::intake::{authorized, error};
use crate::processor::InboxItem;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use medic_core::{Durability, RunState, RunStatus, Store, codec};
use medic_model::time::format_ms;
use medic_store::Op;
use serde_json::json;
use std::sync::Arc;

pub(crate) fn unauthorized() -> Response {
    error(StatusCode::UNAUTHORIZED, "missing or wrong bearer token")
}

pub(crate) fn internal(e: impl std::fmt::Display) -> Response {
    error(StatusCode::SERVICE_UNAVAILABLE, format!("store: {e}"))
}

/// `?status=`: only runs with this status.
#[derive(serde::Deserialize)]
pub(crate) struct RunsQuery {
    status: Option<String>,
}

/// Runs, newest first; `?status=cancelled` (or running, succeeded, failed) filters.
pub(crate) async fn runs(
    State(svc): State<Arc<Service>>,
    Query(q): Query<RunsQuery>,
    headers: HeaderMap,
) -> Response {
    if !authorized(&svc, &headers) {
        return unauthorized();
    }
    let status = match q.status.as_deref().map(|s| (s, RunStatus::parse(s))) {
        None => None,
        Some((_, Some(status))) => Some(status),
        Some((s, None)) => {
            let all = RunStatus::ALL.map(RunStatus::as_str).join(", ");
            return error(
                StatusCode::BAD_REQUEST,
                format!("status={s}: expected one of {all}"),
            );
        }
    };
    match svc.store.runs() {
        Ok(mut runs) => {
            runs.retain(|r| status.is_none_or(|s| r.status == s));
            medic_core::timeline::newest_first(&mut runs);
            let list: Vec<_> = runs.iter().map(medic_core::timeline::run_summary).collect();
            axum::Json(list).into_response()
        }
        Err(e) => internal(e),
    }
}

pub(crate) async fn run(
    State(svc): State<Arc<Service>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if !authorized(&svc, &headers) {
        return unauthorized();
    }
    let entries = match svc.store.entries(&id) {
        Ok(e) => e,
        Err(medic_core::StoreError::NoSuchRun(_)) => {
            return error(StatusCode::NOT_FOUND, format!("no run with id {id}"));
        }
        Err(e) => return internal(e),
    };
    match RunState::fold(&id, &entries) {
        Ok(state) => axum::Json(medic_core::timeline::run_report(&state, &entries)).into_response(),
        Err(e) => internal(e),
    }
}

pub(crate) async fn incidents(State(svc): State<Arc<Service>>, headers: HeaderMap) -> Response {
    if !authorized(&svc, &headers) {
        return unauthorized();
    }
    let records = match svc.store.scan(IncidentRecord::PREFIX) {
        Ok(r) => r,
        Err(e) => return internal(e),
    };
    let mut out = Vec::new();
    for (_, v) in records {
        match codec::decode::<IncidentRecord>(&v) {
            Ok(r) => out.push(json!({
                "id": r.fingerprint, "generation": r.generation,
                "status": r.incident.status.as_str(), "title": r.incident.title,
                "severity": r.incident.severity, "source": r.incident.source,
                "labels": r.incident.labels, "started_at": r.incident.started_at,
                "notes": r.incident.notes, "alerts": r.alerts, "late_alerts": r.late_alerts,
                "runs": r.runs,
                "first_seen": format_ms(r.first_seen_ms), "last_seen": format_ms(r.last_seen_ms),
                "resolved": r.resolved_ms.map(format_ms),
                "ended_at": r.ended_at_ms.and_then(|ms| u64::try_from(ms).ok()).map(format_ms),
            })),
            Err(e) => return internal(e),
        }
    }
    axum::Json(out).into_response()
}

pub(crate) async fn healthz() -> &'static str {
    "ok\n"
}

/// Ready when intake is open and the store takes a durable write.
pub(crate) async fn readyz(State(svc): State<Arc<Service>>) -> Response {
    if !svc.accepting() {
        return error(StatusCode::SERVICE_UNAVAILABLE, "shutting down");
    }
    let probe = vec![Op::Put(
        b"readyz".to_vec(),
        svc.clock.now_ms().to_be_bytes().to_vec(),
    )];
    match svc.store.write(probe, Durability::Flush) {
        Ok(()) => "ready\n".into_response(),
        Err(e) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("store not writable: {e}"),
        ),
    }
}

pub(crate) async fn metrics(State(svc): State<Arc<Service>>) -> Response {
    // The inbox depth is counted now, not remembered from the last drain: a sender asking
    // "has what I posted been handled?" needs the present.
    let read = svc
        .store
        .runs()
        .and_then(|runs| Ok((runs, svc.store.scan(InboxItem::PREFIX)?.len())));
    match read {
        Ok((runs, inbox)) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            svc.metrics
                .render(&runs, svc.engine.waiting_for_slot(), inbox),
        )
            .into_response(),
        Err(e) => internal(e),
    }
}
