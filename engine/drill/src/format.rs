//! The drill file: what an incident did, self-contained and versioned, so it can be kept in
//! git and replayed against later workflows. Keys are written in sorted order (see
//! [`crate::io`]) so a re-recorded drill diffs cleanly.

use medic_model::{Decision, Incident, IncidentStatus, Workflow};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The drill file format version this crate writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// A whole drill file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DrillFile {
    /// Format version: [`FORMAT_VERSION`].
    pub medic_drill: u32,
    /// A short name for the suite's rows ("bad flag: retoggle").
    pub name: String,
    /// What the scenario practises, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The run this drill was recorded from, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded_from: Option<String>,
    /// The address people reached medic at when the run was recorded (medic.toml's
    /// `external_url`), so templates see the same `run.url` and `run.postmortem_url` in
    /// the replay; without it they are `null`, as in a medic without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_url: Option<String>,
    /// Offset zero: when the incident's run started, in milliseconds since the Unix epoch.
    /// The replay's virtual clock starts here, so templates see the same times.
    pub started_at_ms: u64,
    /// The incident as the alert(s) made it.
    pub incident: Incident,
    /// The workflow file to run by default, relative to the drill file. Takes precedence
    /// over `workflow` (a scenario library points at the team's current workflows).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow_file: Option<String>,
    /// The workflow exactly as the recorded run had it (medic's parsed form).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow: Option<Workflow>,
    /// Incident status changes during the run (resolved at T, fired again).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub incident_updates: Vec<IncidentUpdate>,
    /// Gate decisions by people, at the offset they were made.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub decisions: Vec<GateDecision>,
    /// Every provider exchange, in the order the requests were made.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exchanges: Vec<Exchange>,
    /// How replayed requests are matched against `exchanges`.
    #[serde(default, skip_serializing_if = "Matching::is_default")]
    pub matching: Matching,
    /// Faults injected by default whenever this drill runs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub faults: Vec<crate::faults::Fault>,
    /// How the recorded run went, to compare against. Absent in a hand-written scenario.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original: Option<crate::outcome::Outcome>,
}

/// A duration or an offset from the start of the incident, written the way people write
/// them (`1m30s`, `250ms`; see `medic_model::units`). Lossless.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Offset(pub u64);

impl Offset {
    /// Milliseconds.
    pub fn ms(self) -> u64 {
        self.0
    }

    /// Parses `1m30s`, `500ms`, `2h`; `None` when it is not a duration.
    pub fn parse(s: &str) -> Option<Offset> {
        medic_model::units::parse_duration_ms(s.trim()).map(Offset)
    }
}

impl std::fmt::Display for Offset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&medic_model::units::format_duration_ms(self.0))
    }
}

impl Serialize for Offset {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Offset {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Offset::parse(&s).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "`{s}` is not a duration (write e.g. 90s, 1m30s, 250ms)"
            ))
        })
    }
}

/// The incident changed status at `at`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncidentUpdate {
    /// When, from the start of the incident.
    pub at: Offset,
    /// The incident's new status.
    pub status: IncidentStatus,
}

/// A person decided a gate, `after` it opened. Relative to the opening, so a replay in
/// which the gate opens later still gets the decision the same time into the wait.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GateDecision {
    /// The gate step's id.
    pub step: String,
    /// How long after the gate opened.
    pub after: Offset,
    /// What was decided.
    pub decision: Decision,
    /// Who decided (an approver of the gate).
    pub by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// Why, as they wrote it.
    pub comment: Option<String>,
}

/// One request a step made and what came back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exchange {
    /// The step that made it.
    pub step: String,
    #[serde(default = "one")]
    /// The attempt number (1 = first try).
    pub attempt: u32,
    /// When the request was made.
    pub at: Offset,
    /// What was sent.
    pub request: Request,
    /// What came back.
    pub response: Answer,
    /// How long the answer took.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub latency: Offset,
}

fn one() -> u32 {
    1
}

fn is_zero(o: &Offset) -> bool {
    o.0 == 0
}

/// An outgoing request. Header names are lower case; volatile headers are not kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The whole URL, query included.
    pub url: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    /// Headers (names lower case), never compared when matching.
    pub headers: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// The body, if any.
    pub body: Option<DrillBody>,
}

/// What came back: a response (`status`), or a failure to get one (`error`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Answer {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// The HTTP status, when a response arrived.
    pub status: Option<u16>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    /// Response headers (names lower case).
    pub headers: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// The response body, if any.
    pub body: Option<DrillBody>,
    /// The request failed without a response (refused, reset, timed out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A body: JSON when it parses as JSON (readable and diffable), else text, else base64.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DrillBody {
    /// A JSON object or array.
    Json(serde_json::Value),
    /// UTF-8 text.
    Text(String),
    /// Anything else, base64.
    Base64(String),
}

impl DrillBody {
    /// The body as journalled by medic-core, kept as JSON when it is JSON.
    pub fn from_journal(body: &medic_core::Body) -> Option<DrillBody> {
        match body {
            medic_core::Body::Empty => None,
            medic_core::Body::Text(t) => Some(match serde_json::from_str(t) {
                // Only objects and arrays: a bare `1` or `"x"` stays text, byte for byte.
                Ok(v @ (serde_json::Value::Object(_) | serde_json::Value::Array(_))) => {
                    DrillBody::Json(v)
                }
                _ => DrillBody::Text(t.clone()),
            }),
            medic_core::Body::Base64(b) => Some(DrillBody::Base64(b.clone())),
        }
    }

    /// The bytes a replayed response carries.
    pub fn to_journal(&self) -> medic_core::Body {
        match self {
            DrillBody::Json(v) => medic_core::Body::Text(v.to_string()),
            DrillBody::Text(t) => medic_core::Body::Text(t.clone()),
            DrillBody::Base64(b) => medic_core::Body::Base64(b.clone()),
        }
    }
}

/// Matching rules (see docs/drills.md, "Matching").
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Matching {
    /// JSON body fields left out of the comparison: a key name (at any depth) or a dotted
    /// path from the root (`event.txn_id`). For values that change on every run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignore_fields: Vec<String>,
    /// What a request the recording never saw gets (default: connection refused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unmatched: Option<crate::faults::FaultKind>,
}

impl Matching {
    fn is_default(&self) -> bool {
        *self == Matching::default()
    }
}
