//! Prometheus Alertmanager's webhook receiver (`webhook_config`), payload version 4.
//!
//! Alertmanager posts one notification per alert group:
//!
//! ```json
//! {"version": "4", "groupKey": "...", "truncatedAlerts": 0, "status": "firing",
//!  "receiver": "...", "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {},
//!  "externalURL": "...",
//!  "alerts": [{"status": "firing", "labels": {}, "annotations": {}, "startsAt": "...",
//!              "endsAt": "...", "generatorURL": "...", "fingerprint": "..."}]}
//! ```
//!
//! Every alert of the group becomes an [`Alert`]: a group can hold firing and resolved
//! alerts at once, and each must reach its own incident. Grafana's webhook has the same
//! shape (with its own version), so [`crate::grafana`] reuses [`parse_group`].

use crate::json::{Ctx, join};
use crate::{Alert, IntakeError, Source, labels_fingerprint, severity_from, title_from};
use medic_model::IncidentStatus;
use serde_json::Value;

/// The only payload version medic reads. Alertmanager bumps it on incompatible changes, so
/// anything else is refused rather than half-understood.
pub const VERSION: &str = "4";

/// Every alert of an Alertmanager webhook notification, in payload order.
///
/// # Errors
///
/// [`IntakeError::Json`] for a body that is not JSON, [`IntakeError::Version`] for a payload
/// version other than [`VERSION`], [`IntakeError::Shape`] for the wrong shape (the first
/// alert of the group that has one). [`crate::read`] answers for each alert instead.
pub fn parse(body: &[u8]) -> Result<Vec<Alert>, IntakeError> {
    crate::read(Source::Alertmanager, body, None)?.into_alerts()
}

/// An Alertmanager-shaped notification (Alertmanager or Grafana): check the version, then
/// read each alert, each to its own result.
pub(crate) fn parse_group(
    cx: Ctx,
    doc: &Value,
    version: &'static str,
) -> Result<Vec<Result<Alert, IntakeError>>, IntakeError> {
    let doc = cx.object(doc, "")?;
    // The version comes first: a payload of another version may differ anywhere, and
    // "unsupported version" is the one error that explains all of its differences.
    match doc.get("version") {
        Some(Value::String(v)) if v == version => {}
        Some(Value::String(v)) => {
            return Err(IntakeError::Version {
                origin: cx.0,
                found: v.clone(),
                expected: version,
            });
        }
        // Some JSON encoders write numeric-looking strings as numbers; name the value too.
        Some(Value::Number(n)) => {
            return Err(IntakeError::Version {
                origin: cx.0,
                found: n.to_string(),
                expected: version,
            });
        }
        Some(other) => {
            return Err(cx.shape(
                "version",
                format!(
                    "expected the string {version:?}, found {}",
                    crate::json::kind_of(other)
                ),
            ));
        }
        None => {
            return Err(cx.shape(
                "version",
                format!(
                    "missing; this endpoint reads webhook payloads with \"version\": {version:?}"
                ),
            ));
        }
    }
    let group_key = cx
        .opt_str(doc, "groupKey", "")?
        .filter(|k| !k.is_empty())
        .map(str::to_string);
    let alerts = match doc.get("alerts") {
        None | Some(Value::Null) => return Err(cx.shape("alerts", "missing")),
        Some(Value::Array(alerts)) => alerts,
        Some(other) => {
            return Err(cx.shape(
                "alerts",
                format!(
                    "expected an array of alerts, found {}",
                    crate::json::kind_of(other)
                ),
            ));
        }
    };
    Ok(alerts
        .iter()
        .enumerate()
        .map(|(i, alert)| one_alert(cx, alert, &format!("alerts[{i}]"), group_key.as_ref()))
        .collect())
}

fn one_alert(
    cx: Ctx,
    alert: &Value,
    at: &str,
    group_key: Option<&String>,
) -> Result<Alert, IntakeError> {
    let obj = cx.object(alert, at)?;
    let status = match cx.req_str(obj, "status", at)? {
        "firing" => IncidentStatus::Firing,
        "resolved" => IncidentStatus::Resolved,
        other => {
            return Err(cx.shape(
                &join(at, "status"),
                format!("expected \"firing\" or \"resolved\", found {other:?}"),
            ));
        }
    };
    let labels = cx.string_map(obj.get("labels"), &join(at, "labels"), false)?;
    let annotations = cx.string_map(obj.get("annotations"), &join(at, "annotations"), false)?;
    let mut notes = Vec::new();
    let starts_at = cx.time(
        cx.opt_str(obj, "startsAt", at)?,
        &join(at, "startsAt"),
        &mut notes,
    );
    let ends_at = cx.time(
        cx.opt_str(obj, "endsAt", at)?,
        &join(at, "endsAt"),
        &mut notes,
    );
    // Alertmanager has sent `fingerprint` since 0.20; older senders (and alerts relayed
    // through other tools) may not, and the labels are what Alertmanager hashes anyway.
    let fingerprint = match cx.opt_str(obj, "fingerprint", at)? {
        Some(f) if !f.trim().is_empty() => f.to_string(),
        _ => labels_fingerprint(&labels, ""),
    };
    let title = title_from(&labels, &annotations).unwrap_or_else(|| format!("alert {fingerprint}"));
    Ok(Alert {
        source: cx.0,
        status,
        severity: severity_from(&labels),
        fingerprint,
        title,
        labels,
        annotations,
        starts_at,
        ends_at,
        group_key: group_key.cloned(),
        notes,
    })
}
