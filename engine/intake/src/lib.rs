/*!
medic's alert intake: one module per alert source, each turning a webhook body into
[`Alert`]s, which become medic's [`Incident`](medic_model::Incident)s.

| source | module | format |
|---|---|---|
| Prometheus Alertmanager | [`alertmanager`] | webhook payload version 4: every alert of the group |
| Grafana | [`grafana`] | unified alerting webhook contact point (version 1) |
| PagerDuty | [`pagerduty`] | v3 webhooks; [`pagerduty::verify`] checks `X-PagerDuty-Signature` |
| anything else | [`generic`] | JSON with a configured [`generic::Mapping`] of JSON pointers |

Everything here is a pure function of the request bytes: no I/O, no clock (callers pass
`now`), so the HTTP server can call it on any thread and the fuzz targets under `fuzz/`
can feed it anything. Bad input is an [`IntakeError`] whose message says what is wrong and
where, with the HTTP status to answer ([`IntakeError::http_status`]); it never panics.

Vendors add fields to their payloads freely, so unknown fields are ignored everywhere.

# Example

```
let body = br#"{
  "version": "4", "groupKey": "{}:{alertname=\"CheckoutErrors\"}", "status": "firing",
  "alerts": [{
    "status": "firing", "fingerprint": "1a30ba71cca2921f",
    "labels": {"alertname": "CheckoutErrors", "severity": "critical"},
    "annotations": {"summary": "5xx above 5%"},
    "startsAt": "2024-05-01T12:00:00.5+02:00", "endsAt": "0001-01-01T00:00:00Z"
  }]
}"#;
let alerts = medic_intake::alertmanager::parse(body).unwrap();
assert_eq!(alerts[0].title, "CheckoutErrors — 5xx above 5%");
assert_eq!(alerts[0].ends_at, None);
let incident = alerts[0].to_incident("2024-05-01T10:00:01Z");
assert_eq!(incident.id, "1a30ba71cca2921f");
assert_eq!(incident.started_at, "2024-05-01T10:00:00.5Z");

let err = medic_intake::alertmanager::parse(b"{\"version\": \"3\"}").unwrap_err();
assert_eq!(err.to_string(), "unsupported Alertmanager webhook version \"3\" (medic reads version 4)");
assert_eq!(err.http_status(), 422);
```
*/

pub mod alertmanager;
mod error;
pub mod generic;
pub mod grafana;
pub mod pagerduty;

pub use error::IntakeError;

use medic_model::alert::to_utc;
use medic_model::{Incident, IncidentStatus};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fmt;

/// Where an alert came from. Its [`as_str`](Source::as_str) is the incident's `source`, which
/// a workflow's `trigger.source` filters on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Alertmanager,
    Grafana,
    PagerDuty,
    Generic,
}

impl Source {
    pub const ALL: [Source; 4] = [
        Source::Alertmanager,
        Source::Grafana,
        Source::PagerDuty,
        Source::Generic,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Source::Alertmanager => "alertmanager",
            Source::Grafana => "grafana",
            Source::PagerDuty => "pagerduty",
            Source::Generic => "generic",
        }
    }

    /// The source named `s` (as [`as_str`](Source::as_str) spells it), e.g. from a URL path.
    pub fn parse(s: &str) -> Option<Source> {
        Source::ALL.into_iter().find(|src| src.as_str() == s)
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
    pub source: Source,
    pub status: IncidentStatus,
    /// Stable identity for dedupe and grouping: Alertmanager's and Grafana's `fingerprint`,
    /// PagerDuty's incident id; for generic payloads the mapped field, else a hash of the
    /// sorted labels (see [`labels_fingerprint`]).
    pub fingerprint: String,
    pub title: String,
    pub severity: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// RFC 3339 as the source gave it (checked to be one); Go's zero time, which
    /// Alertmanager and Grafana send for "not set", is `None`.
    pub starts_at: Option<String>,
    pub ends_at: Option<String>,
    /// Source-specific grouping hint: Alertmanager's and Grafana's `groupKey`, PagerDuty's
    /// `incident_key`.
    pub group_key: Option<String>,
}

impl Alert {
    /// The incident this alert starts or updates. Its id is the fingerprint, so a re-sent
    /// alert maps to the same incident. `now_rfc3339` is the start time when the alert has
    /// none; the start time is normalised to UTC, as [`Incident::started_at`] promises.
    pub fn to_incident(&self, now_rfc3339: &str) -> Incident {
        let started_at = self
            .starts_at
            .as_deref()
            .and_then(to_utc)
            .unwrap_or_else(|| now_rfc3339.to_string());
        Incident {
            id: self.fingerprint.clone(),
            title: self.title.clone(),
            severity: self.severity.clone(),
            status: self.status,
            labels: self.labels.clone(),
            annotations: self.annotations.clone(),
            started_at,
            source: self.source.as_str().to_string(),
        }
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

/// Reading JSON for one source: every error carries the source's name and a path.
#[derive(Clone, Copy)]
pub(crate) struct Ctx(pub(crate) Source);

impl Ctx {
    pub(crate) fn json(self, body: &[u8]) -> Result<Value, IntakeError> {
        serde_json::from_slice(body).map_err(|e| IntakeError::Json {
            origin: self.0,
            line: e.line(),
            column: e.column(),
            message: strip_position(&e.to_string()),
        })
    }

    pub(crate) fn shape(self, path: &str, message: impl Into<String>) -> IntakeError {
        IntakeError::Shape {
            origin: self.0,
            path: path.to_string(),
            message: message.into(),
        }
    }

    pub(crate) fn object<'v>(
        self,
        v: &'v Value,
        path: &str,
    ) -> Result<&'v Map<String, Value>, IntakeError> {
        v.as_object()
            .ok_or_else(|| self.shape(path, format!("expected an object, found {}", kind_of(v))))
    }

    /// A required member that must be an object.
    pub(crate) fn member_object<'v>(
        self,
        obj: &'v Map<String, Value>,
        key: &str,
        parent: &str,
    ) -> Result<&'v Map<String, Value>, IntakeError> {
        let path = join(parent, key);
        match obj.get(key) {
            None | Some(Value::Null) => Err(self.shape(&path, "missing")),
            Some(v) => self.object(v, &path),
        }
    }

    /// An optional string member; `null` counts as absent.
    pub(crate) fn opt_str<'v>(
        self,
        obj: &'v Map<String, Value>,
        key: &str,
        parent: &str,
    ) -> Result<Option<&'v str>, IntakeError> {
        match obj.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(self.shape(
                &join(parent, key),
                format!("expected a string, found {}", kind_of(other)),
            )),
        }
    }

    pub(crate) fn req_str<'v>(
        self,
        obj: &'v Map<String, Value>,
        key: &str,
        parent: &str,
    ) -> Result<&'v str, IntakeError> {
        self.opt_str(obj, key, parent)?
            .ok_or_else(|| self.shape(&join(parent, key), "missing"))
    }

    /// Labels or annotations. Vendors send strings only. Generic payloads (`generic`) come
    /// from anything, so there numbers and booleans are taken as their text, `null` values
    /// are left out, and paths are JSON pointers like the mapping's.
    pub(crate) fn string_map(
        self,
        v: Option<&Value>,
        path: &str,
        generic: bool,
    ) -> Result<BTreeMap<String, String>, IntakeError> {
        let map = match v {
            None | Some(Value::Null) => return Ok(BTreeMap::new()),
            Some(Value::Object(map)) => map,
            Some(other) => {
                return Err(self.shape(
                    path,
                    format!("expected an object of strings, found {}", kind_of(other)),
                ));
            }
        };
        let mut out = BTreeMap::new();
        for (k, v) in map {
            let text = match v {
                Value::String(s) => s.clone(),
                Value::Number(_) | Value::Bool(_) if generic => v.to_string(),
                Value::Null if generic => continue,
                other => {
                    let at = if generic {
                        format!("{path}/{}", k.replace('~', "~0").replace('/', "~1"))
                    } else {
                        join(path, k)
                    };
                    return Err(
                        self.shape(&at, format!("expected a string, found {}", kind_of(other)))
                    );
                }
            };
            out.insert(k.clone(), text);
        }
        Ok(out)
    }

    /// An RFC 3339 time, kept as given. Go's zero time (`0001-01-01T00:00:00Z`, Alertmanager's
    /// and Grafana's "not set") and the empty string are `None`.
    pub(crate) fn time(self, t: Option<&str>, path: &str) -> Result<Option<String>, IntakeError> {
        match t {
            None | Some("") => Ok(None),
            Some(t) if t.starts_with("0001-01-01T00:00:00") => Ok(None),
            Some(t) if to_utc(t).is_some() => Ok(Some(t.to_string())),
            Some(t) => Err(self.shape(
                path,
                format!("{t:?} is not an RFC 3339 time like 2024-05-01T10:00:00Z"),
            )),
        }
    }
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

/// `parent.key`, or `parent["odd key"]` for keys that are not plain identifiers.
pub(crate) fn join(parent: &str, key: &str) -> String {
    let plain = !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    match (parent.is_empty(), plain) {
        (true, true) => key.to_string(),
        (false, true) => format!("{parent}.{key}"),
        (_, false) => format!("{parent}[{}]", Value::from(key)),
    }
}

/// A JSON value's kind, for messages.
pub(crate) fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// serde_json appends " at line L column C" to its messages; ours says it once, up front.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}
