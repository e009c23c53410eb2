//! medic's own alert document, for `medic run --alert FILE` and `medic step test
//! --incident FILE`: the alert written by hand.
//!
//! ```json
//! {"title": "High error rate", "severity": "critical", "status": "firing",
//!  "labels": {"service": "checkout"}, "annotations": {"runbook": "https://..."},
//!  "startsAt": "2024-05-01T10:00:00Z", "id": "INC-7", "source": "cli"}
//! ```
//!
//! Every field is optional but a name: `title`, else `alertname — summary` from the labels
//! and annotations as for Alertmanager. `severity` defaults to the `severity` label, `status`
//! to `firing`, `source` to `cli` (any [`Source`] name; it is what `trigger.source` sees),
//! and `id` (the fingerprint) to a hash of the labels ([`labels_fingerprint`]), as for every
//! source. Label and annotation values may be numbers or booleans, taken as their text.
//! Unknown fields are ignored.

use crate::json::Ctx;
use crate::{Alert, IntakeError, Source, labels_fingerprint, severity_from, title_from};
use medic_model::IncidentStatus;
use serde_json::Value;

/// The alert in a medic alert document.
///
/// # Errors
///
/// [`IntakeError::Json`] when the body is not JSON; [`IntakeError::Shape`] when it is not
/// an object, a field has the wrong type, `status` is neither `firing` nor `resolved`,
/// `source` names no source, or nothing names the alert.
pub fn parse(body: &[u8]) -> Result<Vec<Alert>, IntakeError> {
    let cx = Ctx(Source::Cli);
    let doc = cx.json(body)?;
    Ok(vec![one(cx, &doc)?])
}

pub(crate) fn one(cx: Ctx, doc: &Value) -> Result<Alert, IntakeError> {
    let obj = cx.object(doc, "")?;
    // Hand-written files carry numbers (`replicas: 3`): read as generic payloads do.
    let labels = cx.string_map(obj.get("labels"), "labels", true)?;
    let annotations = cx.string_map(obj.get("annotations"), "annotations", true)?;
    let title = match cx.opt_str(obj, "title", "")? {
        Some(t) if !t.trim().is_empty() => t.to_string(),
        Some(_) => return Err(cx.shape("title", "must not be empty")),
        None => title_from(&labels, &annotations).ok_or_else(|| {
            cx.shape(
                "title",
                "missing: give a `title`, or a `labels.alertname` (or an `annotations.summary`)",
            )
        })?,
    };
    let severity = match cx.opt_str(obj, "severity", "")? {
        Some(s) if !s.trim().is_empty() => s.to_string(),
        _ => severity_from(&labels),
    };
    let status = match cx.opt_str(obj, "status", "")? {
        None | Some("firing") => IncidentStatus::Firing,
        Some("resolved") => IncidentStatus::Resolved,
        Some(other) => {
            return Err(cx.shape(
                "status",
                format!("expected \"firing\" or \"resolved\", found {other:?}"),
            ));
        }
    };
    let source = match cx.opt_str(obj, "source", "")? {
        None => Source::Cli,
        Some(s) => Source::parse(s).ok_or_else(|| {
            let names: Vec<&str> = Source::ALL.iter().map(|s| s.as_str()).collect();
            cx.shape(
                "source",
                format!("{s:?} is not a source medic knows ({})", names.join(", ")),
            )
        })?,
    };
    let fingerprint = match cx.opt_str(obj, "id", "")? {
        Some(id) if !id.trim().is_empty() => id.to_string(),
        _ => labels_fingerprint(&labels, &title),
    };
    let mut notes = Vec::new();
    let starts_at = cx.time(cx.opt_str(obj, "startsAt", "")?, "startsAt", &mut notes);
    let ends_at = cx.time(cx.opt_str(obj, "endsAt", "")?, "endsAt", &mut notes);
    Ok(Alert {
        source,
        status,
        fingerprint,
        title,
        severity,
        labels,
        annotations,
        starts_at,
        ends_at,
        group_key: None,
        notes,
    })
}
