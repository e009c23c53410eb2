//! The workflow and incident types. Plain data: serde-serialisable so a run can keep a
//! snapshot of the exact workflow it started with.
//!
//! Fields at their defaults are left out when encoded: every run's first journal record
//! carries its workflow, and a one-step workflow's defaults were a third of that record
//! (846 bytes against 581), on disk and in the store's cache for as long as the run is
//! kept (docs/performance.md). Each such field reads its default when absent
//! (`#[serde(default)]`, as it already did before they were left out), so records
//! written with every field still decode, and a medic of before this change reads these.
//! Those defaults are therefore part of the journal's format: changing one changes what a
//! recorded run does when it resumes (docs/durability.md §7). A new field gets
//! `skip_serializing_if` too.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The only workflow format version this build understands.
pub const API_VERSION: &str = "medic/v1";

/// A parsed, validated workflow file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Workflow {
    /// The workflow's name: `[a-z0-9][a-z0-9-]*`, unique among the workflows served.
    pub name: String,
    /// What it is for, for people.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Which alerts start it (`medic serve`).
    #[serde(default)]
    pub trigger: Trigger,
    /// Steps in file order. Use [`Workflow::execution_order`] for run order.
    pub steps: Vec<Step>,
    /// What a run does when its incident resolves while it is still going.
    #[serde(default, skip_serializing_if = "OnResolved::is_continue")]
    pub on_resolved: OnResolved,
    /// Values for this environment (`vars:` overridden by medic.toml's `[vars]`); only
    /// those that are set. Templates read them as `vars.NAME`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub vars: BTreeMap<String, String>,
}

/// What the resolution of its incident does to a run that is still going.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnResolved {
    /// Carry on; steps see `incident.status == "resolved"` from then on.
    #[default]
    Continue,
    /// Skip the steps that have not started yet, except `follow-up` ones (the postmortem
    /// is still owed). An attempt already running finishes first.
    Cancel,
}

impl OnResolved {
    /// Whether this is the default, [`OnResolved::Continue`].
    pub fn is_continue(&self) -> bool {
        *self == OnResolved::Continue
    }

    /// As written in workflow files: `continue`, `cancel`.
    pub fn as_str(self) -> &'static str {
        match self {
            OnResolved::Continue => "continue",
            OnResolved::Cancel => "cancel",
        }
    }
}

impl Workflow {
    /// Indices of `steps` in the order they run: by phase, then file order.
    pub fn execution_order(&self) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.steps.len()).collect();
        // Stable sort keeps file order within a phase.
        order.sort_by_key(|&i| self.steps[i].phase);
        order
    }

    /// The step with id `id`.
    pub fn step(&self, id: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.id == id)
    }
}

/// Which alerts start this workflow (used by `medic serve`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Trigger {
    /// All must match (Alertmanager matcher semantics).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub matchers: Vec<Matcher>,
    /// If non-empty, the incident severity must be one of these.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub severity: Vec<String>,
    /// If non-empty, the alert source must be one of these.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub source: Vec<String>,
    /// Label names that group alerts into one incident for this workflow (as
    /// Alertmanager's `group_by`): alerts with the same values share one run. Empty: each
    /// alert fingerprint is its own incident.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub group_by: Vec<String>,
}

/// One Alertmanager matcher, `label op value` (see `docs/workflows.md#matchers`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Matcher {
    /// The label name; any UTF-8 (`service.name`).
    pub label: String,
    /// How the label's value is compared.
    pub op: MatchOp,
    /// The value, or the regular expression for `=~` and `!~`.
    pub value: String,
}

/// A matcher's comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MatchOp {
    /// `=`
    Eq,
    /// `!=`
    Ne,
    /// `=~` (fully anchored regex)
    Re,
    /// `!~`
    NotRe,
}

/// Incident phases, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// Confirm the problem and gather evidence.
    Detect,
    /// Tell people: war room, status page, pages.
    Communicate,
    /// Act: roll back, toggle, scale.
    Restore,
    /// Check that service is back.
    Verify,
    /// What is owed afterwards: the postmortem, the all-clear.
    FollowUp,
}

impl Phase {
    /// Every phase, in run order.
    pub const ALL: [Phase; 5] = [
        Phase::Detect,
        Phase::Communicate,
        Phase::Restore,
        Phase::Verify,
        Phase::FollowUp,
    ];

    /// As written in workflow files: `detect`, ..., `follow-up`.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Detect => "detect",
            Phase::Communicate => "communicate",
            Phase::Restore => "restore",
            Phase::Verify => "verify",
            Phase::FollowUp => "follow-up",
        }
    }

    /// The phase spelled as in workflow files (`follow-up`).
    pub fn parse(s: &str) -> Option<Phase> {
        Phase::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

/// One step of a workflow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// Unique in the workflow: `[a-z0-9][a-z0-9_-]*`; templates say `steps.<id>`.
    pub id: String,
    /// When it runs.
    pub phase: Phase,
    /// A component name (looked up in the steps directories) or a path to a `.wasm` file.
    /// Empty for a gate step.
    pub uses: String,
    /// Set for a human gate: the step waits for a decision instead of running a component.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate: Option<Gate>,
    /// Parameters, possibly containing `{{ ... }}` templates; rendered just before each attempt.
    #[serde(default)]
    pub with: serde_json::Value,
    /// Condition expression; the step is skipped when it evaluates to false.
    #[serde(default, rename = "if", skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    /// How failed attempts are retried.
    #[serde(default, skip_serializing_if = "Retry::is_default")]
    pub retry: Retry,
    /// Wall-time limit of one attempt, milliseconds. `None`: the engine default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// Secret names this step may read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<String>,
    /// Hosts this step may call: `host`, `host:port`, or `*.domain`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow: Vec<String>,
    /// TLS for hosts this step calls that medic.toml's `[[tls]]` does not cover the way
    /// this workflow needs (a private CA, a client certificate). Each entry overrides the
    /// engine's settings for its host, for this step only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tls: Vec<StepTls>,
    /// Memory and output limits of one attempt.
    #[serde(default, skip_serializing_if = "Limits::is_default")]
    pub limits: Limits,
    /// When true, a failure of this step does not fail the run; later steps can test
    /// `steps.<id>.status == "failed"`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub continue_on_error: bool,
}

/// TLS for one destination of one step (`tls:` in a step). Paths are as written in the
/// workflow file until the loader makes them absolute (relative to the file's folder).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepTls {
    /// `host:port` (port 443 when left out); must be one of the step's `allow` hosts.
    pub host: String,
    /// A PEM bundle of CA certificates to trust for this host instead of the public roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<String>,
    /// A PEM client certificate (chain) for mutual TLS; needs `client_key_secret`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_cert: Option<String>,
    /// The name of the secret holding the client certificate's PEM private key; must be in
    /// the step's `secrets`, so the key is redacted like any other secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_key_secret: Option<String>,
    /// Accept any server certificate: warned about on every use, refused by
    /// `medic validate --strict`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub insecure_skip_verify: bool,
}

impl Step {
    /// Whether this is a human gate rather than a component.
    pub fn is_gate(&self) -> bool {
        self.gate.is_some()
    }
}

/// A human gate: people approve or reject before the run goes on, and the deadline decides
/// when nobody does (e.g. "not recovered in 20 minutes: roll back").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gate {
    /// The question, for the people deciding; may contain `{{ ... }}` templates.
    pub prompt: String,
    /// Who may decide. Empty: anyone holding an API token.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvers: Vec<String>,
    /// How long to wait from when the gate opens, milliseconds.
    pub deadline_ms: u64,
    /// The decision taken when the deadline passes.
    pub on_deadline: Decision,
}

/// A gate decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// Go on as the gate proposes.
    Approve,
    /// Do not.
    Reject,
}

impl Decision {
    /// As written in workflow files and the API: `approve`, `reject`.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Approve => "approve",
            Decision::Reject => "reject",
        }
    }

    /// Past tense, for timelines: "approved", "rejected".
    pub fn past(self) -> &'static str {
        match self {
            Decision::Approve => "approved",
            Decision::Reject => "rejected",
        }
    }

    /// The decision spelled as [`as_str`](Decision::as_str) spells it.
    pub fn parse(s: &str) -> Option<Decision> {
        match s {
            "approve" => Some(Decision::Approve),
            "reject" => Some(Decision::Reject),
            _ => None,
        }
    }
}

/// Retry policy of a step. `attempts` counts the first try.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Retry {
    /// Attempts in all, the first included (1: no retry).
    pub attempts: u32,
    /// Delay before the second attempt, milliseconds.
    pub backoff_ms: u64,
    /// Each later delay is the previous one times this factor.
    pub factor: f64,
    /// Upper bound on any delay, milliseconds.
    pub max_backoff_ms: u64,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            attempts: 1,
            backoff_ms: 1_000,
            factor: 2.0,
            max_backoff_ms: 300_000,
        }
    }
}

impl Retry {
    /// Whether this is [`Retry::default`] (one attempt): left out of encoded workflows.
    pub fn is_default(&self) -> bool {
        *self == Retry::default()
    }

    /// Delay before attempt `next` (2 = first retry).
    pub fn delay_before(&self, next: u32) -> u64 {
        let exp = next.saturating_sub(2).min(64) as i32;
        let d = self.backoff_ms as f64 * self.factor.powi(exp);
        (d.min(self.max_backoff_ms as f64)).max(0.0) as u64
    }
}

/// Resource limits of a step. `None`: the engine default.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    /// Linear memory limit, bytes.
    #[serde(default)]
    pub memory_bytes: Option<u64>,
    /// Largest output document accepted, bytes.
    #[serde(default)]
    pub output_bytes: Option<u64>,
}

impl Limits {
    /// Whether neither limit is set: left out of encoded workflows.
    pub fn is_default(&self) -> bool {
        *self == Limits::default()
    }
}

/// Whether the alerts behind an incident still fire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IncidentStatus {
    /// At least one of its alerts fires.
    Firing,
    /// Its alerts have all resolved.
    Resolved,
}

impl IncidentStatus {
    /// `firing` or `resolved`, as Alertmanager spells them.
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentStatus::Firing => "firing",
            IncidentStatus::Resolved => "resolved",
        }
    }
}

/// The incident a run responds to: medic's own model, whatever the alert source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    /// The alert's fingerprint, or the `group-by` group's id (see `medic_intake::incident_id`).
    pub id: String,
    /// `alertname — summary`, or the sender's title.
    pub title: String,
    /// The `severity` label (PagerDuty: the priority, else the urgency), or `unknown`.
    pub severity: String,
    /// Firing or resolved.
    pub status: IncidentStatus,
    /// What triggers match on.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Everything else the sender said.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// RFC 3339, UTC.
    pub started_at: String,
    /// Where the alert came from: `alertmanager`, `grafana`, `pagerduty`, `generic`, `cli`.
    pub source: String,
    /// What medic had to guess while reading the alert, such as a start time it could
    /// not read (then `started_at` is the receive time), for the person on call.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl Incident {
    /// The incident as templates and conditions see it (`incident.*`).
    pub fn to_context(&self) -> serde_json::Value {
        serde_json::json!({
            "id": self.id,
            "title": self.title,
            "severity": self.severity,
            "status": self.status.as_str(),
            "labels": self.labels,
            "annotations": self.annotations,
            "started_at": self.started_at,
            "source": self.source,
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::parse_workflow;

    const GATE_ONLY: &str = "apiVersion: medic/v1\nkind: Workflow\nname: park\nsteps:\n  - id: go-on\n    phase: restore\n    gate:\n      prompt: roll back?\n      deadline: 1h\n      on-deadline: reject\n";

    #[test]
    fn fields_at_their_defaults_are_left_out_and_read_back_as_defaults() {
        let wf = parse_workflow("park.yaml", GATE_ONLY).unwrap().workflow;
        let json = serde_json::to_value(&wf).unwrap();
        let step = &json["steps"][0];
        for absent in [
            "if",
            "retry",
            "timeout_ms",
            "secrets",
            "allow",
            "tls",
            "limits",
            "continue_on_error",
        ] {
            assert!(step.get(absent).is_none(), "step has `{absent}`: {step}");
        }
        assert!(step["gate"].get("approvers").is_none(), "{step}");
        assert!(json.get("description").is_none(), "{json}");
        assert_eq!(json["trigger"], serde_json::json!({}));
        let back: super::Workflow = serde_json::from_value(json).unwrap();
        assert_eq!(back, wf);
    }

    #[test]
    fn a_workflow_written_with_every_field_still_reads() {
        let wf = parse_workflow("park.yaml", GATE_ONLY).unwrap().workflow;
        // As medic encoded workflows before defaults were left out.
        let full = serde_json::json!({
            "name": "park", "description": "",
            "trigger": {"matchers": [], "severity": [], "source": []},
            "steps": [{
                "id": "go-on", "phase": "restore", "uses": "",
                "gate": {"prompt": "roll back?", "approvers": [], "deadline_ms": 3_600_000,
                         "on_deadline": "reject"},
                "with": wf.steps[0].with, "if": null,
                "retry": {"attempts": 1, "backoff_ms": 1000, "factor": 2.0,
                          "max_backoff_ms": 300_000},
                "timeout_ms": null, "secrets": [], "allow": [],
                "limits": {"memory_bytes": null, "output_bytes": null},
                "continue_on_error": false
            }]
        });
        let read: super::Workflow = serde_json::from_value(full).unwrap();
        assert_eq!(read, wf);
    }
}
