//! Incidents from alert documents (`medic run --alert FILE`).
//!
//! Two shapes are accepted: medic's own simple format
//!
//! ```json
//! {"title": "High error rate", "severity": "critical", "labels": {"service": "checkout"}}
//! ```
//!
//! and a Prometheus Alertmanager webhook (version 4) payload, from which the first firing
//! alert is taken (or the first alert, when none fires). Unknown fields are ignored: alert
//! vendors add fields freely, and an incident should not fail to start over one.

use crate::types::{Incident, IncidentStatus};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Why an alert document could not become an incident.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AlertError {
    #[error("invalid JSON at line {line}, column {column}: {message}")]
    Json {
        line: usize,
        column: usize,
        message: String,
    },
    /// A field is missing or has the wrong type; `field` is its path, e.g. `alerts[0].labels`.
    #[error("`{field}`: {message}")]
    Field { field: String, message: String },
    #[error("the Alertmanager payload has no alerts (`alerts` is empty)")]
    NoAlerts,
}

fn field_err(field: &str, message: impl Into<String>) -> AlertError {
    AlertError::Field {
        field: field.to_string(),
        message: message.into(),
    }
}

/// Incident from a `medic run --alert FILE` document. `now` (RFC 3339) is the start time
/// when the alert has none.
pub fn incident_from_json(src: &str, now: &str) -> Result<Incident, AlertError> {
    let doc: Value = serde_json::from_str(src).map_err(|e| AlertError::Json {
        line: e.line(),
        column: e.column(),
        message: strip_position(&e.to_string()),
    })?;
    let Value::Object(doc) = doc else {
        return Err(field_err("(document)", "expected a JSON object"));
    };
    match doc.get("alerts") {
        Some(alerts) => from_alertmanager(alerts, now),
        None => from_simple(&doc, now),
    }
}

/// serde_json appends " at line L column C" to its messages; we say it once, up front.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

fn from_simple(doc: &Map<String, Value>, now: &str) -> Result<Incident, AlertError> {
    let labels = string_map(doc, "labels", "labels")?;
    let annotations = string_map(doc, "annotations", "annotations")?;
    let title = match opt_str(doc, "title", "title")? {
        Some(t) if !t.trim().is_empty() => t.to_string(),
        Some(_) => return Err(field_err("title", "must not be empty")),
        None => title_from(&labels, &annotations).ok_or_else(|| {
            field_err("title", "missing: give a `title`, or a `labels.alertname`")
        })?,
    };
    let severity = match opt_str(doc, "severity", "severity")? {
        Some(s) => s.to_string(),
        None => labels
            .get("severity")
            .cloned()
            .unwrap_or_else(|| "unknown".into()),
    };
    let status = status(doc, "status")?;
    let started_at = start_time(doc, "startsAt", now)?;
    let source = opt_str(doc, "source", "source")?
        .unwrap_or("cli")
        .to_string();
    let id = match opt_str(doc, "id", "id")? {
        Some(id) => id.to_string(),
        None if labels.is_empty() => fnv_hex(&format!("title={title}\n")),
        None => labels_id(&labels),
    };
    Ok(Incident {
        id,
        title,
        severity,
        status,
        labels,
        annotations,
        started_at,
        source,
    })
}

fn from_alertmanager(alerts: &Value, now: &str) -> Result<Incident, AlertError> {
    let Value::Array(alerts) = alerts else {
        return Err(field_err("alerts", "expected a list of alerts"));
    };
    if alerts.is_empty() {
        return Err(AlertError::NoAlerts);
    }
    let firing = alerts
        .iter()
        .position(|a| a.get("status").and_then(Value::as_str) == Some("firing"));
    let index = firing.unwrap_or(0);
    let at = format!("alerts[{index}]");
    let Value::Object(alert) = &alerts[index] else {
        return Err(field_err(&at, "expected an alert object"));
    };
    if !alert.contains_key("labels") {
        return Err(field_err(
            &format!("{at}.labels"),
            "missing: an Alertmanager alert has labels",
        ));
    }
    let labels = string_map(alert, "labels", &format!("{at}.labels"))?;
    let annotations = string_map(alert, "annotations", &format!("{at}.annotations"))?;
    let title = title_from(&labels, &annotations).ok_or_else(|| {
        field_err(
            &format!("{at}.labels"),
            "no `alertname` label (and no `summary` annotation) to name the incident",
        )
    })?;
    let id = match opt_str(alert, "fingerprint", &format!("{at}.fingerprint"))? {
        Some(f) if !f.is_empty() => f.to_string(),
        _ => labels_id(&labels),
    };
    Ok(Incident {
        id,
        title,
        severity: labels
            .get("severity")
            .cloned()
            .unwrap_or_else(|| "unknown".into()),
        status: status(alert, &format!("{at}.status"))?,
        started_at: start_time(alert, &format!("{at}.startsAt"), now)?,
        labels,
        annotations,
        source: "alertmanager".into(),
    })
}

/// `alertname — summary`, or whichever of the two exists.
fn title_from(
    labels: &BTreeMap<String, String>,
    annotations: &BTreeMap<String, String>,
) -> Option<String> {
    let summary = annotations.get("summary").filter(|s| !s.trim().is_empty());
    match (labels.get("alertname"), summary) {
        (Some(name), Some(s)) => Some(format!("{name} — {s}")),
        (Some(name), None) => Some(name.clone()),
        (None, Some(s)) => Some(s.clone()),
        (None, None) => None,
    }
}

fn opt_str<'d>(
    obj: &'d Map<String, Value>,
    key: &str,
    field: &str,
) -> Result<Option<&'d str>, AlertError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(field_err(
            field,
            format!("expected a string, found {}", crate::path::kind_of(other)),
        )),
    }
}

/// Label and annotation values are strings; numbers and booleans from hand-written files are
/// taken as their text.
fn string_map(
    obj: &Map<String, Value>,
    key: &str,
    field: &str,
) -> Result<BTreeMap<String, String>, AlertError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(BTreeMap::new()),
        Some(Value::Object(map)) => map
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                Value::Number(_) | Value::Bool(_) => Ok((k.clone(), v.to_string())),
                other => Err(field_err(
                    &crate::path::join_key(field, k),
                    format!("expected a string, found {}", crate::path::kind_of(other)),
                )),
            })
            .collect(),
        Some(other) => Err(field_err(
            field,
            format!(
                "expected an object of strings, found {}",
                crate::path::kind_of(other)
            ),
        )),
    }
}

fn status(obj: &Map<String, Value>, field: &str) -> Result<IncidentStatus, AlertError> {
    match opt_str(obj, "status", field)? {
        None | Some("firing") => Ok(IncidentStatus::Firing),
        Some("resolved") => Ok(IncidentStatus::Resolved),
        Some(other) => Err(field_err(
            field,
            format!("expected `firing` or `resolved`, found `{other}`"),
        )),
    }
}

fn start_time(obj: &Map<String, Value>, field: &str, now: &str) -> Result<String, AlertError> {
    match opt_str(obj, "startsAt", field)? {
        // Go's zero time: Alertmanager's way of saying "not set".
        None | Some("") => Ok(now.to_string()),
        Some(t) if t.starts_with("0001-01-01T") => Ok(now.to_string()),
        Some(t) => to_utc(t).ok_or_else(|| {
            field_err(
                field,
                format!("`{t}` is not an RFC 3339 time like 2024-05-01T10:00:00Z"),
            )
        }),
    }
}

/// Normalises an RFC 3339 time to UTC (`...Z`), keeping fractional seconds as given;
/// `None` when `t` is not one.
pub fn to_utc(t: &str) -> Option<String> {
    let b = t.as_bytes();
    // Every access goes through `get`: this runs on untrusted bytes and must not panic.
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let s = t.get(r)?;
        if s.bytes().all(|c| c.is_ascii_digit()) {
            s.parse().ok()
        } else {
            None
        }
    };
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut rest = t.get(19..)?;
    let mut frac = "";
    if let Some(r) = rest.strip_prefix('.') {
        let n = r.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return None;
        }
        frac = t.get(19..20 + n)?;
        rest = r.get(n..)?;
    }
    let offset_min = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6 && rest.as_bytes()[3] == b':' => {
            let sign = match rest.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let h = rest
                .get(1..3)
                .filter(|s| s.bytes().all(|c| c.is_ascii_digit()))?;
            let m = rest
                .get(4..6)
                .filter(|s| s.bytes().all(|c| c.is_ascii_digit()))?;
            let (h, m): (i64, i64) = (h.parse().ok()?, m.parse().ok()?);
            if h > 23 || m > 59 {
                return None;
            }
            sign * (h * 60 + m)
        }
        _ => return None,
    };
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days_in = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&month)
        || !(1..=days_in[(month - 1) as usize]).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let secs = days_from_civil(year, month, day) * 86_400 + hour * 3_600 + minute * 60 + second
        - offset_min * 60;
    let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    Some(format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}{frac}Z",
        sod / 3_600,
        sod % 3_600 / 60,
        sod % 60
    ))
}

/// Days since 1970-01-01 (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// A stable id from the labels: the same alert gets the same incident id on every run.
fn labels_id(labels: &BTreeMap<String, String>) -> String {
    let text: String = labels.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
    fnv_hex(&text)
}

/// FNV-1a, 64 bit, as 16 hex digits.
fn fnv_hex(text: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

#[cfg(test)]
#[path = "alert_tests.rs"]
mod tests;
