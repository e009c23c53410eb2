//! One alert as medic sees it, and the one conversion from alerts to incidents.

use medic_model::{Incident, IncidentStatus, Workflow, time};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fmt;

/// Where an alert came from. Its [`as_str`](Source::as_str) is the incident's `source`, which
/// a workflow's `trigger.source` filters on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// Prometheus Alertmanager's webhook (`/intake/alertmanager`).
    Alertmanager,
    /// Grafana unified alerting's webhook contact point (`/intake/grafana`).
    Grafana,
    /// PagerDuty v3 webhooks (`/intake/pagerduty`).
    PagerDuty,
    /// Any JSON, read through the configured [`Mapping`](crate::generic::Mapping)
    /// (`/intake/generic`).
    Generic,
    /// medic's own alert document ([`simple`](crate::simple)), read by `medic run --alert`
    /// and `medic step test --incident`; no webhook takes it.
    Cli,
}

impl Source {
    /// Every source.
    pub const ALL: [Source; 5] = [
        Source::Alertmanager,
        Source::Grafana,
        Source::PagerDuty,
        Source::Generic,
        Source::Cli,
    ];

    /// The sources `POST /intake/{source}` takes.
    pub const WEBHOOKS: [Source; 4] = [
        Source::Alertmanager,
        Source::Grafana,
        Source::PagerDuty,
        Source::Generic,
    ];

    /// The name in URLs, incidents and `trigger.source`: `alertmanager`, `grafana`,
    /// `pagerduty`, `generic`, `cli`.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Alertmanager => "alertmanager",
            Source::Grafana => "grafana",
            Source::PagerDuty => "pagerduty",
            Source::Generic => "generic",
            Source::Cli => "cli",
        }
    }

    /// The source named `s` (as [`as_str`](Source::as_str) spells it).
    pub fn parse(s: &str) -> Option<Source> {
        Source::ALL.into_iter().find(|src| src.as_str() == s)
    }

    /// The webhook source named `s` in a URL path (`/intake/{s}`): any but `cli`.
    pub fn webhook(s: &str) -> Option<Source> {
        Source::WEBHOOKS.into_iter().find(|src| src.as_str() == s)
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One alert as medic sees it, before grouping into incidents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    /// Where it came from.
    pub source: Source,
    /// Firing or resolved.
    pub status: IncidentStatus,
    /// Stable identity for dedupe and grouping: Alertmanager's and Grafana's `fingerprint`,
    /// PagerDuty's incident id, the `id` of medic's own document, or the mapped field of a
    /// generic payload; when none is given, a hash of the sorted labels (see
    /// [`labels_fingerprint`]), for every source alike.
    pub fingerprint: String,
    /// `alertname — summary`, or the sender's own title.
    pub title: String,
    /// The `severity` label (PagerDuty: the priority, else the urgency), or `unknown`.
    pub severity: String,
    /// What triggers match on.
    pub labels: BTreeMap<String, String>,
    /// Everything else the sender said about the alert.
    pub annotations: BTreeMap<String, String>,
    /// RFC 3339 as the source gave it, or normalised to UTC when the source wrote another
    /// format medic reads (see [`medic_model::time::read`]). Go's zero time, which
    /// Alertmanager and Grafana send for "not set", and a time medic cannot read are `None`.
    pub starts_at: Option<String>,
    /// When the alert stopped firing, in the same form as `starts_at`.
    pub ends_at: Option<String>,
    /// Source-specific grouping hint: Alertmanager's and Grafana's `groupKey`, PagerDuty's
    /// `incident_key`.
    pub group_key: Option<String>,
    /// What medic had to guess while reading the alert (a time it could not read), for the
    /// person reading the incident.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl Alert {
    /// The incident this alert starts or updates, by itself: its id is the fingerprint, so a
    /// re-sent alert maps to the same incident. [`incident_id`] gives the id a workflow with
    /// `group-by` puts it under. `received` (RFC 3339) is the start time when the alert has
    /// none; the start time is normalised to UTC, as [`Incident::started_at`] promises.
    pub fn to_incident(&self, received: &str) -> Incident {
        let started_at = self
            .starts_at
            .as_deref()
            .and_then(time::read)
            .unwrap_or_else(|| received.to_string());
        Incident {
            id: self.fingerprint.clone(),
            title: self.title.clone(),
            severity: self.severity.clone(),
            status: self.status,
            labels: self.labels.clone(),
            annotations: self.annotations.clone(),
            started_at,
            source: self.source.as_str().to_string(),
            notes: self.notes.clone(),
        }
    }

    /// Unix milliseconds of `starts_at`, when the alert has one.
    pub fn starts_at_ms(&self) -> Option<i64> {
        self.starts_at.as_deref().and_then(utc_ms)
    }

    /// Unix milliseconds of `ends_at`, when the alert has one.
    pub fn ends_at_ms(&self) -> Option<i64> {
        self.ends_at.as_deref().and_then(utc_ms)
    }
}

fn utc_ms(t: &str) -> Option<i64> {
    time::to_ms(&time::read(t)?)
}

/// The id of the incident `alert` belongs to for `workflow`: its fingerprint, or, when the
/// workflow has `trigger.group-by`, one id per workflow and set of values of those labels
/// (`<workflow>-<16 hex digits>`), so that alerts with the same values share one incident
/// and one run, as Alertmanager's `group_by` groups notifications. `medic serve` and
/// `medic run` both name incidents with this function.
pub fn incident_id(alert: &Alert, workflow: &Workflow) -> String {
    let by = &workflow.trigger.group_by;
    if by.is_empty() {
        return alert.fingerprint.clone();
    }
    let values: Vec<&str> = by
        .iter()
        .map(|l| alert.labels.get(l).map_or("", String::as_str))
        .collect();
    let h = Sha256::digest(serde_json::json!([workflow.name, by, values]).to_string());
    format!("{}-{}", workflow.name, &hex::encode(h)[..16])
}

/// The incidents `alerts` (one payload, in order) open for `workflow`, as `medic serve`
/// would have them after handling the payload: alerts with one [`incident_id`] make one
/// incident, opened by the first of them that fires and described by the most severe,
/// the last among equals ([`joined`]). Ids whose alerts are all resolved open nothing. In order of first
/// appearance.
pub fn incidents_for(alerts: &[Alert], workflow: &Workflow, received: &str) -> Vec<Incident> {
    let mut out: Vec<Incident> = Vec::new();
    for alert in alerts.iter().filter(|a| a.status == IncidentStatus::Firing) {
        let mut incident = alert.to_incident(received);
        incident.id = incident_id(alert, workflow);
        match out.iter_mut().find(|i| i.id == incident.id) {
            Some(open) => *open = joined(open, incident),
            None => out.push(incident),
        }
    }
    out
}

/// Severities read as critical, by default, for ordering (`medic serve`'s lanes) and for
/// which alert describes an incident: Alertmanager/Grafana's `critical`, syslog's
/// `emergency`/`alert`, PagerDuty's `high` urgency, and common priority names.
pub const CRITICAL_SEVERITIES: &[&str] = &[
    "critical",
    "emergency",
    "alert",
    "fatal",
    "page",
    "high",
    "p1",
    "p2",
];

/// Severities read as informational, by default (PagerDuty's `low` urgency among them).
pub const INFO_SEVERITIES: &[&str] = &["info", "informational", "debug", "none", "low", "p4", "p5"];

/// How severe `severity` is: 2 critical, 1 anything else (warning), 0 informational
/// ([`CRITICAL_SEVERITIES`], [`INFO_SEVERITIES`]; case-insensitive).
pub fn severity_rank(severity: &str) -> u8 {
    let s = severity.to_lowercase();
    if CRITICAL_SEVERITIES.contains(&s.as_str()) {
        2
    } else if INFO_SEVERITIES.contains(&s.as_str()) {
        0
    } else {
        1
    }
}

/// An open incident after a firing alert joins it (`joining`, converted with
/// [`Alert::to_incident`] and given the incident's id): the alert's title, severity,
/// labels, annotations and notes, so that an escalation shows at once, with the
/// incident's own id, status and start. A less severe alert ([`severity_rank`]) does not
/// describe the incident: the most severe one does, whatever order the alerts were handled
/// in (`medic serve` handles critical alerts before others, `medic run` in payload order),
/// so both describe a group alike and nothing downgrades an incident by itself.
pub fn joined(open: &Incident, joining: Incident) -> Incident {
    if severity_rank(&joining.severity) < severity_rank(&open.severity) {
        return open.clone();
    }
    Incident {
        id: open.id.clone(),
        status: open.status,
        started_at: open.started_at.clone(),
        ..joining
    }
}

/// A stable fingerprint for an alert that brings none: the first 16 hex digits of the
/// SHA-256 of the sorted labels (as JSON, which cannot be ambiguous the way `k=v` lines
/// can), or of `fallback` when there are no labels. Same labels, same fingerprint, on every
/// machine and every release.
pub fn labels_fingerprint(labels: &BTreeMap<String, String>, fallback: &str) -> String {
    let text = if labels.is_empty() {
        Value::from(fallback).to_string()
    } else {
        // A BTreeMap serialises with its keys sorted, and strings cannot fail to serialise.
        serde_json::to_string(labels).unwrap_or_default()
    };
    hex::encode(&Sha256::digest(text.as_bytes())[..8])
}

/// `alertname — summary`, or whichever of the two exists.
pub(crate) fn title_from(
    labels: &BTreeMap<String, String>,
    annotations: &BTreeMap<String, String>,
) -> Option<String> {
    let name = labels.get("alertname").filter(|s| !s.trim().is_empty());
    let summary = annotations.get("summary").filter(|s| !s.trim().is_empty());
    match (name, summary) {
        (Some(name), Some(s)) => Some(format!("{name} — {s}")),
        (Some(name), None) => Some(name.clone()),
        (None, Some(s)) => Some(s.clone()),
        (None, None) => None,
    }
}

/// The `severity` label, or `unknown`.
pub(crate) fn severity_from(labels: &BTreeMap<String, String>) -> String {
    labels
        .get("severity")
        .filter(|s| !s.trim().is_empty())
        .cloned()
        .unwrap_or_else(|| "unknown".into())
}

#[cfg(test)]
mod tests {
    use super::{joined, severity_rank};

    fn incident(title: &str, severity: &str) -> medic_model::Incident {
        let body = format!(r#"{{"title": "{title}", "severity": "{severity}"}}"#);
        crate::simple::parse(body.as_bytes()).expect("alert parses")[0]
            .to_incident("2026-11-30T09:00:00Z")
    }

    #[test]
    fn the_most_severe_alert_describes_a_group_in_either_order() {
        let (warn, crit) = (
            incident("Errors", "warning"),
            incident("Latency", "critical"),
        );
        let a = joined(&warn, crit.clone());
        let b = joined(&crit, warn.clone());
        assert_eq!(
            (a.title.as_str(), a.severity.as_str()),
            ("Latency", "critical")
        );
        assert_eq!(
            (b.title.as_str(), b.severity.as_str()),
            ("Latency", "critical")
        );
        // Equal severity: the latest describes it (an update of the same alert).
        let c = joined(&warn, incident("Errors again", "WARNING"));
        assert_eq!(c.title, "Errors again");
        assert_eq!(c.started_at, warn.started_at);
        assert_eq!(severity_rank("High"), 2);
        assert_eq!(severity_rank("low"), 0);
        assert_eq!(severity_rank("sev3"), 1);
    }
}
