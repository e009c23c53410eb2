//! The human timeline of a run, derived from its journal: what the person on call reads
//! live, and what a postmortem starts from.

use crate::clock::rfc3339;
use crate::journal::{Entry, Event, HostCall, HttpOutcome, Level};
use medic_model::Workflow;

/// Formats journal entries as timeline lines. Keeps the workflow from `run_created` to
/// show each step's phase.
#[derive(Default)]
pub struct Timeline {
    workflow: Option<Workflow>,
    started_ms: u64,
}

impl Timeline {
    /// A timeline that has seen no entry yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Renders a whole journal.
    pub fn render(entries: &[Entry]) -> Vec<String> {
        let mut t = Timeline::new();
        entries.iter().filter_map(|e| t.line(e)).collect()
    }

    /// The line for one entry, or `None` for entries people need not see (debug logs).
    pub fn line(&mut self, entry: &Entry) -> Option<String> {
        let text = match &entry.event {
            Event::RunCreated(created) => {
                let (workflow, incident) = (&created.workflow, &created.incident);
                self.workflow = Some(workflow.clone());
                self.started_ms = entry.at_ms;
                format!(
                    "run started: workflow {} for incident \"{}\" ({}, {})",
                    workflow.name,
                    incident.title,
                    incident.severity,
                    incident.status.as_str()
                )
            }
            Event::StepSkipped { step, reason } => format!("{}skipped: {reason}", self.who(step)),
            Event::StepCancelled { step, reason } => {
                format!("{}cancelled: {reason}", self.who(step))
            }
            Event::AttemptStarted { step, attempt, .. } => {
                format!("{}attempt {attempt} started", self.who(step))
            }
            Event::HostCall { step, call, .. } => {
                let what = match call {
                    HostCall::Log { level, message } if *level >= Level::Info => {
                        format!("{}: {message}", level.as_str())
                    }
                    HostCall::Log { .. } => return None,
                    HostCall::Annotate { message } => format!("note: {message}"),
                    HostCall::SecretRead {
                        name,
                        granted: false,
                        ..
                    } => format!("DENIED secret not granted: {name}"),
                    HostCall::SecretRead { .. }
                    | HostCall::Clock { .. }
                    | HostCall::Random { .. } => return None,
                    HostCall::StateSet { key, .. } => format!("state saved: {key}"),
                    HostCall::HttpRequest { method, url, .. } => format!("http {method} {url}"),
                    HostCall::HttpResponse {
                        outcome,
                        duration_ms,
                        ..
                    } => match outcome {
                        HttpOutcome::Response { status, body, .. } => {
                            format!(
                                "http -> {status} in {duration_ms} ms ({} bytes)",
                                body.len()
                            )
                        }
                        HttpOutcome::Error { message } => format!("http failed: {message}"),
                    },
                    HostCall::HttpDenied { method, url, host } => {
                        format!("DENIED host not allowed: {host} ({method} {url})")
                    }
                };
                format!("{}{what}", self.who(step))
            }
            Event::AttemptSucceeded {
                step,
                output,
                duration_ms,
                ..
            } => format!(
                "{}succeeded in {duration_ms} ms, output: {}",
                self.who(step),
                excerpt(&output.to_string(), 300)
            ),
            Event::AttemptFailed {
                step,
                attempt,
                failure,
                retry,
                ..
            } => {
                let next = match retry {
                    Some(r) => format!(
                        "; attempt {} at {}",
                        r.attempt,
                        rfc3339(r.not_before_ms).replace('T', " ")
                    ),
                    None => "; step failed".into(),
                };
                format!(
                    "{}attempt {attempt} failed: {failure}{next}",
                    self.who(step)
                )
            }
            Event::GateOpened {
                step,
                prompt,
                approvers,
                deadline_ms,
                on_deadline,
            } => {
                let who = if approvers.is_empty() {
                    String::new()
                } else {
                    format!(" by {}", approvers.join(", "))
                };
                format!(
                    "{}GATE waiting for a decision{who}: {prompt} (at {} without one: {})",
                    self.who(step),
                    rfc3339(*deadline_ms).replace('T', " "),
                    on_deadline.past()
                )
            }
            Event::GateDecided {
                step,
                decision,
                by,
                by_deadline,
                comment,
            } => {
                let how = if *by_deadline {
                    "by its deadline, nobody decided".to_string()
                } else {
                    format!("by {by}")
                };
                let why = comment
                    .as_ref()
                    .map_or(String::new(), |c| format!(": \"{c}\""));
                format!("{}GATE {} {how}{why}", self.who(step), decision.past())
            }
            Event::IncidentUpdated { status } => {
                format!("incident {}", status.as_str())
            }
            Event::RunFinished { status, reason } => {
                let took = entry.at_ms.saturating_sub(self.started_ms);
                match reason {
                    Some(r) => format!("run {} after {took} ms: {r}", status.as_str()),
                    None => format!("run {} after {took} ms", status.as_str()),
                }
            }
        };
        let clock = &rfc3339(entry.at_ms)[11..19];
        Some(format!("{clock}  {text}"))
    }

    fn who(&self, step: &str) -> String {
        let phase = self
            .workflow
            .as_ref()
            .and_then(|w| w.step(step))
            .map(|s| s.phase.as_str())
            .unwrap_or("?");
        format!("{phase:<11} {step:<16} ")
    }
}

fn excerpt(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    format!("{}… ({} bytes)", truncate(s, max), s.len())
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
pub fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// One line of a run list, for `medic runs --json` and `GET /api/runs`.
pub fn run_summary(m: &crate::RunMeta) -> serde_json::Value {
    // Millisecond times: two runs created in one second can still be ordered.
    serde_json::json!({"id": m.id, "workflow": m.workflow, "status": m.status.as_str(),
           "incident": m.incident_title, "created": medic_model::time::format_ms(m.created_ms),
           "updated": medic_model::time::format_ms(m.updated_ms)})
}

/// Runs as lists show them: newest first, and runs created in the same millisecond by id,
/// so the order is the same on every call.
pub fn newest_first(runs: &mut [crate::RunMeta]) {
    runs.sort_by(|a, b| {
        b.created_ms
            .cmp(&a.created_ms)
            .then_with(|| a.id.cmp(&b.id))
    });
}

/// A run as JSON, for `medic runs show --json` and the API: status, steps in run order
/// with outputs and errors, and the timeline.
pub fn run_report(state: &crate::RunState, entries: &[Entry]) -> serde_json::Value {
    let steps: Vec<_> = state
        .workflow
        .execution_order()
        .into_iter()
        .map(|i| {
            let step = &state.workflow.steps[i];
            let s = &state.steps[&step.id];
            let mut report = serde_json::json!({"id": step.id, "phase": step.phase.as_str(),
                   "uses": step.uses, "status": s.status.as_str(), "attempts": s.attempt,
                   "output": s.output, "error": s.last_failure.as_ref().map(|f| f.to_string()),
                   "reason": s.reason});
            if let Some(g) = &s.gate {
                report["uses"] = "gate".into();
                report["gate"] = serde_json::json!({"prompt": g.prompt, "approvers": g.approvers,
                    "deadline": rfc3339(g.deadline_ms), "on_deadline": g.on_deadline.as_str(),
                    "open": s.status == crate::StepStatus::Running});
            }
            report
        })
        .collect();
    serde_json::json!({"id": state.id, "workflow": state.workflow.name,
           "status": state.status.as_str(), "reason": state.reason, "incident": state.incident,
           "created": rfc3339(state.created_ms), "steps": steps,
           "timeline": Timeline::render(entries)})
}
