//! `POST /intake/{source}`: authenticate, parse, store durably, then acknowledge.
//!
//! An alert is acknowledged (202) only once it is on disk: a 2xx is a promise that it is
//! never lost. Anything that keeps medic from keeping that promise (shutting down, a
//! full disk) is a 503, so the sender retries.

use crate::Service;
use crate::auth::Sender;
use crate::error::ApiError;
use crate::inbox::{self, InboxItem};
use crate::strict;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use medic_core::{Durability, codec};
use medic_intake::{Alert, IntakeError, Source, pagerduty};
use serde_json::{Value, json};
use std::sync::Arc;

/// The handler. Authentication comes first for every source but a signed PagerDuty
/// webhook, whose signature over the body is its authentication.
pub(crate) async fn intake(
    State(svc): State<Arc<Service>>,
    Path(source): Path<String>,
    sender: Result<Sender, ApiError>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let src = Source::webhook(&source).ok_or_else(|| {
        ApiError::NotFound(format!(
            "unknown alert source `{source}`: medic takes alertmanager, grafana, pagerduty, generic"
        ))
    })?;
    let result = accept_checked(&svc, src, sender, headers, body).await;
    let label = match &result {
        Ok(_) => "accepted",
        Err(e) if e.status() == StatusCode::SERVICE_UNAVAILABLE => "unavailable",
        Err(e) if e.status() == StatusCode::UNAUTHORIZED => "unauthorized",
        Err(_) => "rejected",
    };
    svc.metrics.alert_received(src, label);
    Ok((StatusCode::ACCEPTED, axum::Json(result?)))
}

async fn accept_checked(
    svc: &Arc<Service>,
    src: Source,
    sender: Result<Sender, ApiError>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Value, ApiError> {
    if !svc.accepting() {
        return Err(ApiError::Unavailable(
            "medic is shutting down; retry later".into(),
        ));
    }
    // PagerDuty signs its webhooks; with signing secrets configured, the signature is
    // the authentication. Everything else needs a sender's bearer token.
    if src == Source::PagerDuty && !svc.config.pagerduty.secrets.is_empty() {
        let sig = headers
            .get("x-pagerduty-signature")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        pagerduty::verify(&body, sig, &svc.config.pagerduty.secrets)?;
    } else {
        sender?;
    }
    strict::json_content_type(&headers)?;
    strict::no_duplicate_keys(&body)?;
    if src == Source::Generic && svc.config.generic.is_none() {
        return Err(ApiError::NotFound(
            "generic intake is not configured: add a [generic] mapping to the engine config".into(),
        ));
    }
    let batch = medic_intake::read(src, &body, svc.config.generic.as_ref())?;
    // One bad element never costs the others: the good ones are stored and each refused
    // one is answered for. Only a batch with nothing good in it is refused as a whole.
    let rejected: Vec<Value> = batch
        .items
        .iter()
        .enumerate()
        .filter_map(|(i, r)| {
            r.as_ref()
                .err()
                .map(|e| json!({"index": i, "error": e.to_string()}))
        })
        .collect();
    let alerts: Vec<Alert> = batch.alerts().cloned().collect();
    if alerts.is_empty()
        && let Some(Err(first)) = batch.items.iter().find(|r| r.is_err())
    {
        return Err(refused(first, rejected.len()));
    }
    let dedupe = (src == Source::PagerDuty)
        .then(|| headers.get("x-webhook-id").and_then(|v| v.to_str().ok()))
        .flatten()
        .map(|id| [SEEN_PAGERDUTY, id.as_bytes()].concat());
    if dedupe.is_none() {
        // The common case: the inbox writer stores this request's alerts together with
        // every other request's queued meanwhile, in one batch and one flush.
        return store_batched(svc, &alerts, rejected).await;
    }
    // The durable write blocks on fsync: off the async workers, so concurrent requests
    // wait on the disk together and share one flush (group commit).
    let worker = svc.clone();
    tokio::task::spawn_blocking(move || store(&worker, &alerts, dedupe, rejected))
        .await
        .map_err(|e| ApiError::Unavailable(format!("intake worker failed: {e}")))?
}

/// Where PagerDuty dedupe marks live (`x/seen/pagerduty/<X-Webhook-Id>`); retention
/// removes them `keep` after they were written.
pub(crate) const SEEN_PAGERDUTY: &[u8] = b"seen/pagerduty/";

/// A dedupe mark's value: when it was written, ms since the epoch (codec-encoded, like
/// every value in the store).
pub(crate) fn mark(now_ms: u64) -> Vec<u8> {
    codec::encode(&now_ms)
}

/// When a dedupe mark was written; `None` for a mark without a time (an older medic
/// wrote an empty value).
pub(crate) fn mark_time(value: &[u8]) -> Option<u64> {
    codec::decode(value).ok()
}

/// A batch refused as a whole: the first element's error, with its status, and how many
/// more were refused.
fn refused(first: &IntakeError, count: usize) -> ApiError {
    let more = match count {
        0 | 1 => String::new(),
        n => format!(" (and {} more of the {n} alerts refused)", n - 1),
    };
    let message = format!("{first}{more}");
    match first.http_status() {
        400 => ApiError::BadRequest(message),
        _ => ApiError::Unprocessable(message),
    }
}

/// `alerts` as inbox items, each with its severity lane: the processor reads critical
/// alerts first.
fn inbox_items(svc: &Service, alerts: &[Alert]) -> Vec<(medic_core::lanes::Lane, InboxItem)> {
    let received_ms = svc.clock.now_ms();
    alerts
        .iter()
        .map(|alert| {
            let item = InboxItem {
                received_ms,
                alert: alert.clone(),
            };
            (svc.lanes.lane(&alert.severity), item)
        })
        .collect()
}

fn unavailable(svc: &Service, e: &medic_core::StoreError) -> ApiError {
    svc.store_failed(e);
    ApiError::Unavailable(format!("cannot store the alert, not acknowledged: {e}"))
}

/// Writes the alerts to the inbox through the inbox writer, durably.
async fn store_batched(
    svc: &Service,
    alerts: &[Alert],
    rejected: Vec<Value>,
) -> Result<Value, ApiError> {
    // Durable before the acknowledgement: an acked alert is never lost.
    svc.inbox
        .write(inbox_items(svc, alerts))
        .await
        .map_err(|e| unavailable(svc, &e))?;
    Ok(accepted(svc, alerts, rejected))
}

fn accepted(svc: &Service, alerts: &[Alert], rejected: Vec<Value>) -> Value {
    let count = alerts.len();
    svc.store_ok();
    svc.metrics.inbox_added(count);
    if alerts
        .iter()
        .any(|a| svc.lanes.lane(&a.severity) == medic_core::lanes::Lane::Critical)
    {
        // The processor cuts the batch it is handling short, so this alert is next.
        svc.critical_waiting
            .store(true, std::sync::atomic::Ordering::Release);
    }
    svc.wake.notify_one();
    if rejected.is_empty() {
        json!({"accepted": count})
    } else {
        json!({"accepted": count, "rejected": rejected})
    }
}

/// Writes the alerts to the inbox, durably, unless `dedupe` (PagerDuty's
/// `X-Webhook-Id`) marks them as delivered already: the check and the write are one
/// transaction, so of concurrent deliveries with one id, exactly one is stored.
fn store(
    svc: &Service,
    alerts: &[Alert],
    dedupe: Option<Vec<u8>>,
    rejected: Vec<Value>,
) -> Result<Value, ApiError> {
    let ops = inbox::record_ops(&svc.store, inbox_items(svc, alerts))
        .map_err(|e| unavailable(svc, &e))?;
    // Durable before the acknowledgement: an acked alert is never lost.
    match dedupe {
        Some(marker) => {
            if !svc
                .store
                .write_unless_marked(&marker, &mark(svc.clock.now_ms()), ops, Durability::Flush)
                .map_err(|e| unavailable(svc, &e))?
            {
                return Ok(json!({"accepted": 0, "duplicate": true}));
            }
        }
        None => svc
            .store
            .write(ops, Durability::Flush)
            .map_err(|e| unavailable(svc, &e))?,
    }
    Ok(accepted(svc, alerts, rejected))
}
