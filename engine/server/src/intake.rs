//! `POST /intake/{source}`: authenticate, parse, store durably, then acknowledge.

use crate::Service;
use crate::processor::InboxItem;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use medic_core::{Durability, codec};
use medic_intake::{Alert, IntakeError, Source, pagerduty};
use medic_store::Op;
use serde_json::json;
use std::sync::Arc;

pub(crate) fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({"error": message.into()}))).into_response()
}

/// Who is calling, by bearer token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Caller {
    /// One of `tokens`: a system (Alertmanager, a chat bot); it names people itself.
    Service,
    /// A personal token from `[users]`: decisions are recorded under this name.
    User(String),
}

/// The caller behind the request's bearer token, if it carries a configured one.
pub(crate) fn caller(svc: &Service, headers: &HeaderMap) -> Option<Caller> {
    let value = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())?;
    let token = value.strip_prefix("Bearer ")?.trim();
    if token.is_empty() {
        return None;
    }
    if let Some((name, _)) = svc.config.users.iter().find(|(_, t)| t.as_str() == token) {
        return Some(Caller::User(name.clone()));
    }
    svc.config
        .tokens
        .iter()
        .any(|t| t == token)
        .then_some(Caller::Service)
}

/// True when the request carries one of the configured bearer tokens.
pub(crate) fn authorized(svc: &Service, headers: &HeaderMap) -> bool {
    caller(svc, headers).is_some()
}

pub(crate) async fn intake(
    State(svc): State<Arc<Service>>,
    Path(source): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(src) = Source::webhook(&source) else {
        return error(
            StatusCode::NOT_FOUND,
            format!(
                "unknown alert source `{source}`: medic takes alertmanager, grafana, pagerduty, generic"
            ),
        );
    };
    // The durable write blocks on fsync: off the async workers, so concurrent requests
    // wait on the disk together and share one flush (group commit).
    let worker = svc.clone();
    let result = tokio::task::spawn_blocking(move || accept(&worker, src, &headers, &body))
        .await
        .unwrap_or_else(|e| {
            Err((
                StatusCode::SERVICE_UNAVAILABLE,
                format!("intake worker failed: {e}"),
            ))
        });
    let label = match &result {
        Ok(_) => "accepted",
        Err((s, _)) if *s == StatusCode::SERVICE_UNAVAILABLE => "unavailable",
        Err((s, _)) if *s == StatusCode::UNAUTHORIZED => "unauthorized",
        Err(_) => "rejected",
    };
    svc.metrics.alert_received(src, label);
    match result {
        Ok(reply) => (StatusCode::ACCEPTED, axum::Json(reply)).into_response(),
        Err((status, message)) => error(status, message),
    }
}

type Rejection = (StatusCode, String);

fn accept(
    svc: &Service,
    src: Source,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<serde_json::Value, Rejection> {
    if !svc.accepting() {
        return Err((
            StatusCode::SERVICE_UNAVAILABLE,
            "medic is shutting down; retry later".into(),
        ));
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type
        .trim_start()
        .to_ascii_lowercase()
        .starts_with("application/json")
    {
        return Err((
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("content type must be application/json, got `{content_type}`"),
        ));
    }
    // PagerDuty signs its webhooks; with signing secrets configured, the signature is
    // the authentication. Everything else needs a bearer token.
    let pd_signed = src == Source::PagerDuty && !svc.config.pagerduty.secrets.is_empty();
    if pd_signed {
        let sig = headers
            .get("x-pagerduty-signature")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        pagerduty::verify(body, sig, &svc.config.pagerduty.secrets)
            .map_err(|e| (StatusCode::UNAUTHORIZED, e.to_string()))?;
    } else if !authorized(svc, headers) {
        return Err((
            StatusCode::UNAUTHORIZED,
            "missing or wrong bearer token (Authorization: Bearer <token> from the engine config)"
                .into(),
        ));
    }
    if src == Source::Generic && svc.config.generic.is_none() {
        return Err((
            StatusCode::NOT_FOUND,
            "generic intake is not configured: add a [generic] mapping to the engine config".into(),
        ));
    }
    let status_of =
        |e: &IntakeError| StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
    let batch = medic_intake::read(src, body, svc.config.generic.as_ref())
        .map_err(|e| (status_of(&e), e.to_string()))?;
    // One bad element never costs the others: the good ones are stored and each refused
    // one is answered for. Only a batch with nothing good in it is refused as a whole.
    let rejected: Vec<serde_json::Value> = batch
        .items
        .iter()
        .enumerate()
        .filter_map(|(i, r)| {
            r.as_ref()
                .err()
                .map(|e| json!({"index": i, "error": e.to_string()}))
        })
        .collect();
    let alerts: Vec<&Alert> = batch.alerts().collect();
    if alerts.is_empty()
        && let Some(Err(first)) = batch.items.iter().find(|r| r.is_err())
    {
        let more = match rejected.len() {
            1 => String::new(),
            n => format!(" (and {} more of the {n} alerts refused)", n - 1),
        };
        return Err((status_of(first), format!("{first}{more}")));
    }

    let unavailable = |e: medic_core::StoreError| {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("cannot store the alert, not acknowledged: {e}"),
        )
    };
    let mut ops = Vec::new();
    if src == Source::PagerDuty
        && let Some(id) = headers.get("x-webhook-id").and_then(|v| v.to_str().ok())
    {
        let key = format!("seen/pagerduty/{id}").into_bytes();
        if svc.store.get(&key).map_err(unavailable)?.is_some() {
            return Ok(json!({"accepted": 0, "duplicate": true}));
        }
        ops.push(Op::Put(key, Vec::new()));
    }
    let received_ms = svc.clock.now_ms();
    for alert in &alerts {
        let id = svc.store.next_id().map_err(unavailable)?;
        let item = InboxItem {
            received_ms,
            alert: (*alert).clone(),
        };
        ops.push(Op::Put(InboxItem::key(id), codec::encode(&item)));
    }
    // Durable before the acknowledgement: an acked alert is never lost.
    svc.store
        .write(ops, Durability::Flush)
        .map_err(unavailable)?;
    svc.metrics.inbox_added(alerts.len());
    svc.wake.notify_one();
    if rejected.is_empty() {
        Ok(json!({"accepted": alerts.len()}))
    } else {
        Ok(json!({"accepted": alerts.len(), "rejected": rejected}))
    }
}
