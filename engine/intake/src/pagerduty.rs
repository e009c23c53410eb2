//! PagerDuty v3 webhooks: signature verification and incident events.
//!
//! A v3 webhook carries one event: `{"event": {"id", "event_type", "resource_type",
//! "occurred_at", "agent", "client", "data"}}`. For most `incident.*` events `data` is the
//! incident itself (`data.type == "incident"`: `id`, `number`, `status`, `title`,
//! `created_at`, `service`, `escalation_policy`, `teams`, `priority`, `urgency`, ...); for
//! notes, responders and status updates it is another object that only refers to the
//! incident. Only the former become alerts: they carry the incident's state, the others
//! do not change whether it fires.

use crate::json::{Ctx, join};
use crate::{Alert, IntakeError, Source};
use hmac::{Hmac, Mac};
use medic_model::IncidentStatus;
use serde_json::{Map, Value};
use sha2::Sha256;
use std::collections::BTreeMap;

/// The header PagerDuty signs each delivery with.
pub const SIGNATURE_HEADER: &str = "X-PagerDuty-Signature";

/// The header carrying the delivery's id, the same on every retry of it: what a server
/// dedupes deliveries on.
pub const WEBHOOK_ID_HEADER: &str = "X-Webhook-Id";

/// Event types documented with `data.type == "incident"`, for payloads whose `data` lacks
/// its `type`.
const INCIDENT_DATA_EVENTS: [&str; 9] = [
    "incident.acknowledged",
    "incident.delegated",
    "incident.escalated",
    "incident.priority_updated",
    "incident.reassigned",
    "incident.reopened",
    "incident.resolved",
    "incident.triggered",
    "incident.unacknowledged",
];

/// Verify `X-PagerDuty-Signature`: `v1=<hex>[,v1=<hex>...]`, each an HMAC-SHA256 of the raw
/// body keyed with one of the subscription's secrets. During a secret rotation PagerDuty
/// signs with every secret and several secrets may be configured here, so the request is
/// authentic when any signature matches any secret. Signatures of other versions are
/// skipped. Comparisons are constant-time (`Mac::verify_slice`).
///
/// # Errors
///
/// [`IntakeError::NoSecrets`] when `secrets` is empty, [`IntakeError::MissingSignature`]
/// for an empty header, [`IntakeError::NoV1Signature`] when it has no `v1=` signature,
/// [`IntakeError::SignatureMismatch`] when no signature matches a secret (all 401).
pub fn verify(body: &[u8], signature_header: &str, secrets: &[String]) -> Result<(), IntakeError> {
    // A server without secrets can verify nothing, whatever the request says.
    if secrets.is_empty() {
        return Err(IntakeError::NoSecrets);
    }
    if signature_header.trim().is_empty() {
        return Err(IntakeError::MissingSignature);
    }
    let signatures: Vec<&str> = signature_header
        .split(',')
        .filter_map(|s| s.trim().strip_prefix("v1="))
        .collect();
    if signatures.is_empty() {
        return Err(IntakeError::NoV1Signature);
    }
    // A signature that is not hex cannot match any secret; it is not an error of its own.
    let decoded: Vec<Vec<u8>> = signatures
        .iter()
        .filter_map(|s| hex::decode(s.trim()).ok())
        .collect();
    for secret in secrets {
        // HMAC takes keys of any length, so `new_from_slice` cannot fail here.
        let Ok(mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
            continue;
        };
        let mac = mac.chain_update(body);
        if decoded
            .iter()
            .any(|sig| mac.clone().verify_slice(sig).is_ok())
        {
            return Ok(());
        }
    }
    Err(IntakeError::SignatureMismatch)
}

/// The alert in a v3 webhook: one for an incident event, none for anything else (service
/// events, `pagey.ping`, notes, responders), which are not errors.
///
/// `incident.resolved` (or an incident whose `status` is `resolved`) is resolved; every
/// other incident event (triggered, acknowledged, escalated, reopened, ...) is firing.
/// Fingerprint: the incident id. Severity: the priority's name (`P1`), else the urgency.
///
/// # Errors
///
/// [`IntakeError::Json`] for a body that is not JSON, [`IntakeError::Shape`] for an event
/// or incident of the wrong shape (a missing `event.event_type` or `event.data.id`).
pub fn parse(body: &[u8]) -> Result<Vec<Alert>, IntakeError> {
    let cx = Ctx(Source::PagerDuty);
    let doc = cx.json(body)?;
    let event = cx.member_object(cx.object(&doc, "")?, "event", "")?;
    let event_type = cx.req_str(event, "event_type", "event")?;
    if !event_type.starts_with("incident.") {
        return Ok(vec![]);
    }
    let data = cx.member_object(event, "data", "event")?;
    let is_incident = match cx.opt_str(data, "type", "event.data")? {
        Some(t) => t == "incident",
        None => INCIDENT_DATA_EVENTS.contains(&event_type),
    };
    if !is_incident {
        return Ok(vec![]);
    }
    Ok(vec![incident(cx, event, event_type, data)?])
}

fn incident(
    cx: Ctx,
    event: &Map<String, Value>,
    event_type: &str,
    data: &Map<String, Value>,
) -> Result<Alert, IntakeError> {
    const AT: &str = "event.data";
    let id = cx.req_str(data, "id", AT)?;
    if id.trim().is_empty() {
        return Err(cx.shape(&join(AT, "id"), "must not be empty"));
    }
    let pd_status = cx.opt_str(data, "status", AT)?;
    let status = if event_type == "incident.resolved" || pd_status == Some("resolved") {
        IncidentStatus::Resolved
    } else {
        IncidentStatus::Firing
    };
    let title = match (
        cx.opt_str(data, "title", AT)?,
        cx.opt_str(data, "summary", AT)?,
    ) {
        (Some(t), _) if !t.trim().is_empty() => t.to_string(),
        (_, Some(s)) if !s.trim().is_empty() => s.to_string(),
        _ => format!("PagerDuty incident {id}"),
    };
    let urgency = cx.opt_str(data, "urgency", AT)?;
    let priority = reference(cx, data, "priority", "summary")?;

    let number = match data.get("number") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(other) => {
            return Err(cx.shape(
                &join(AT, "number"),
                format!("expected a number, found {}", crate::json::kind_of(other)),
            ));
        }
    };
    // Labels are what workflow triggers match on; the rest goes to annotations.
    let labels = non_empty([
        ("service", reference(cx, data, "service", "summary")?),
        ("service_id", reference(cx, data, "service", "id")?),
        ("urgency", urgency),
        ("priority", priority),
        (
            "escalation_policy",
            reference(cx, data, "escalation_policy", "summary")?,
        ),
        ("teams", references(cx, data, "teams")?.as_deref()),
        ("incident_number", number.as_deref()),
    ]);
    let incident_key = cx.opt_str(data, "incident_key", AT)?;
    let annotations = non_empty([
        ("html_url", cx.opt_str(data, "html_url", AT)?),
        ("event_id", cx.opt_str(event, "id", "event")?),
        ("event_type", Some(event_type)),
        ("pagerduty_status", pd_status),
        ("assignees", references(cx, data, "assignees")?.as_deref()),
        ("incident_key", incident_key),
    ]);
    let mut notes = Vec::new();
    let occurred_at = cx.time(
        cx.opt_str(event, "occurred_at", "event")?,
        "event.occurred_at",
        &mut notes,
    );
    let starts_at = cx.time(
        cx.opt_str(data, "created_at", AT)?,
        &join(AT, "created_at"),
        &mut notes,
    );
    Ok(Alert {
        source: Source::PagerDuty,
        status,
        fingerprint: id.to_string(),
        title,
        severity: priority.or(urgency).unwrap_or("unknown").to_string(),
        labels,
        annotations,
        starts_at,
        ends_at: match status {
            IncidentStatus::Resolved => occurred_at,
            IncidentStatus::Firing => None,
        },
        group_key: incident_key.filter(|k| !k.is_empty()).map(str::to_string),
        notes,
    })
}

/// `data.<key>.<field>` of a reference object such as `service` or `priority`, which may be
/// `null` (priorities are off in many accounts).
fn reference<'v>(
    cx: Ctx,
    data: &'v Map<String, Value>,
    key: &str,
    field: &str,
) -> Result<Option<&'v str>, IntakeError> {
    let path = join("event.data", key);
    match data.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => cx.opt_str(cx.object(v, &path)?, field, &path),
    }
}

/// The `summary` of each reference in `data.<key>` (`teams`, `assignees`), comma-separated.
fn references(
    cx: Ctx,
    data: &Map<String, Value>,
    key: &str,
) -> Result<Option<String>, IntakeError> {
    let path = join("event.data", key);
    let items = match data.get(key) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Array(items)) => items,
        Some(other) => {
            return Err(cx.shape(
                &path,
                format!("expected an array, found {}", crate::json::kind_of(other)),
            ));
        }
    };
    let mut names = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let at = format!("{path}[{i}]");
        if let Some(s) = cx.opt_str(cx.object(item, &at)?, "summary", &at)? {
            names.push(s);
        }
    }
    Ok((!names.is_empty()).then(|| names.join(",")))
}

/// The pairs that have a non-empty value: PagerDuty sends `null` for what is unset.
fn non_empty<const N: usize>(pairs: [(&str, Option<&str>); N]) -> BTreeMap<String, String> {
    pairs
        .into_iter()
        .filter_map(|(k, v)| Some((k.to_string(), v.filter(|v| !v.is_empty())?.to_string())))
        .collect()
}
