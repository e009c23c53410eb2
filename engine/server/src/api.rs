//! The read side of the API (runs, incidents), health and metrics. Gate decisions are in
//! `gates`.

use crate::Service;
use crate::intake::{authorized, error};
use crate::processor::IncidentRecord;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use medic_core::{Durability, RunState, Store, clock::rfc3339, codec};
use medic_store::Op;
use serde_json::json;
use std::sync::Arc;

pub(crate) fn unauthorized() -> Response {
    error(StatusCode::UNAUTHORIZED, "missing or wrong bearer token")
}

pub(crate) fn internal(e: impl std::fmt::Display) -> Response {
    error(StatusCode::SERVICE_UNAVAILABLE, format!("store: {e}"))
}

pub(crate) async fn runs(State(svc): State<Arc<Service>>, headers: HeaderMap) -> Response {
    if !authorized(&svc, &headers) {
        return unauthorized();
    }
    match svc.store.runs() {
        Ok(runs) => axum::Json(
            runs.iter()
                .map(medic_core::timeline::run_summary)
                .collect::<Vec<_>>(),
        )
        .into_response(),
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
                "labels": r.incident.labels, "alerts": r.alerts, "runs": r.runs,
                "first_seen": rfc3339(r.first_seen_ms), "last_seen": rfc3339(r.last_seen_ms),
                "resolved": r.resolved_ms.map(rfc3339),
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
    match svc.store.runs() {
        Ok(runs) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            svc.metrics.render(&runs, svc.engine.waiting_for_slot()),
        )
            .into_response(),
        Err(e) => internal(e),
    }
}
