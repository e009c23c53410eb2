//! How a run went, in the terms a drill report compares: per step (status, attempts,
//! provider calls), phase times, and virtual time to restore and to verified. Computed
//! the same way for the recorded run and the replay, from their journals.

use crate::format::Offset;
use medic_core::{Entry, Event, HostCall, HttpOutcome, RunState, StepStatus};
use medic_model::Phase;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// A run's outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Outcome {
    /// `succeeded`, `failed`, or `running` (the run did not finish).
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// Why the run failed, when it did.
    pub reason: Option<String>,
    /// From the alert to the end of the last successful restore step; absent when the
    /// restore phase did not succeed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_to_restore: Option<Offset>,
    /// From the alert to the end of the last successful verify step; absent when the run
    /// did not restore or a verify step failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_to_verified: Option<Offset>,
    /// From the alert to the run's last record.
    pub duration: Offset,
    /// Per phase that ran: (from, to) offsets.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub phases: BTreeMap<String, (Offset, Offset)>,
    /// Steps in execution order.
    pub steps: Vec<StepOutcome>,
}

/// One step's part in a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepOutcome {
    /// The step's id.
    pub id: String,
    /// Its phase.
    pub phase: Phase,
    /// `succeeded`, `failed`, `skipped`, `cancelled` (the incident resolved by itself), or
    /// `not reached`.
    pub status: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    /// Attempts made (0 for a gate, or a step not reached).
    pub attempts: u32,
    /// Provider calls in order: `METHOD host/path -> status` (or `-> error`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub calls: Vec<String>,
    /// Why it failed or was skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
    /// A gate's decision: `approved by alice`, `rejected by deadline`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<String>,
    /// A human gate rather than a component.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub gate: bool,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl Outcome {
    /// The outcome of the run whose journal is `entries` (entry 0 is `run_created`).
    ///
    /// # Errors
    /// The journal does not fold into a run (see `RunState::fold`).
    pub fn from_journal(run: &str, entries: &[Entry]) -> Result<Outcome, medic_core::StateError> {
        let state = RunState::fold(run, entries)?;
        let start = state.created_ms;
        let off = |ms: u64| Offset(ms.saturating_sub(start));
        let mut calls: HashMap<String, Vec<String>> = HashMap::new();
        let mut pending: HashMap<(String, u32, u32), (usize, String)> = HashMap::new();
        let mut ended: HashMap<String, u64> = HashMap::new();
        let mut began: HashMap<String, u64> = HashMap::new();
        let mut decisions: HashMap<String, String> = HashMap::new();
        let mut skipped_why: HashMap<String, String> = HashMap::new();
        for e in entries {
            match &e.event {
                Event::HostCall {
                    step,
                    attempt,
                    call,
                } => match call {
                    HostCall::HttpRequest {
                        id, method, url, ..
                    } => {
                        let list = calls.entry(step.clone()).or_default();
                        let shown = format!("{method} {}", short_url(url));
                        pending.insert((step.clone(), *attempt, *id), (list.len(), shown.clone()));
                        list.push(format!("{shown} -> no answer"));
                    }
                    HostCall::HttpResponse { id, outcome, .. } => {
                        if let Some((i, shown)) = pending.remove(&(step.clone(), *attempt, *id)) {
                            let result = match outcome {
                                HttpOutcome::Response { status, .. } => status.to_string(),
                                HttpOutcome::Error { .. } => "error".to_string(),
                            };
                            if let Some(c) = calls.get_mut(step).and_then(|l| l.get_mut(i)) {
                                *c = format!("{shown} -> {result}");
                            }
                        }
                    }
                    HostCall::HttpDenied { method, url, .. } => {
                        calls
                            .entry(step.clone())
                            .or_default()
                            .push(format!("{method} {} -> denied", short_url(url)));
                    }
                    _ => {}
                },
                Event::AttemptStarted { step, .. } | Event::GateOpened { step, .. } => {
                    began.entry(step.clone()).or_insert(e.at_ms);
                }
                Event::AttemptSucceeded { step, .. } | Event::AttemptFailed { step, .. } => {
                    ended.insert(step.clone(), e.at_ms);
                }
                Event::GateDecided {
                    step, decision, by, ..
                } => {
                    ended.insert(step.clone(), e.at_ms);
                    decisions.insert(step.clone(), format!("{} by {by}", decision.past()));
                }
                Event::StepSkipped { step, reason } => {
                    skipped_why.insert(step.clone(), reason.clone());
                }
                Event::StepCancelled { step, reason } => {
                    skipped_why.insert(step.clone(), format!("cancelled: {reason}"));
                }
                _ => {}
            }
        }
        let mut steps = Vec::new();
        let mut phases: BTreeMap<String, (Offset, Offset)> = BTreeMap::new();
        let mut restore = PhaseEnd::default();
        let mut verify = PhaseEnd::default();
        for i in state.workflow.execution_order() {
            let step = &state.workflow.steps[i];
            let s = &state.steps[&step.id];
            let status = match s.status {
                StepStatus::Succeeded => "succeeded",
                StepStatus::Failed => "failed",
                StepStatus::Skipped => "skipped",
                StepStatus::Cancelled => "cancelled",
                _ => "not reached",
            };
            if let (Some(b), Some(e)) = (began.get(&step.id), ended.get(&step.id)) {
                let p = phases
                    .entry(step.phase.as_str().to_string())
                    .or_insert((off(*b), off(*e)));
                p.0 = p.0.min(off(*b));
                p.1 = p.1.max(off(*e));
            }
            // A gate decides whether to act; it restores nothing itself.
            let tracker = match step.phase {
                _ if step.is_gate() => None,
                Phase::Restore => Some(&mut restore),
                Phase::Verify => Some(&mut verify),
                _ => None,
            };
            if let Some(t) = tracker {
                match s.status {
                    StepStatus::Succeeded => {
                        t.ok = true;
                        t.last = t.last.max(ended.get(&step.id).copied().unwrap_or(0));
                    }
                    StepStatus::Skipped => {}
                    StepStatus::Failed if step.continue_on_error => {}
                    _ => t.broken = true,
                }
            }
            let why = match s.status {
                StepStatus::Failed => s.last_failure.as_ref().map(|f| f.to_string()),
                StepStatus::Skipped | StepStatus::Cancelled => skipped_why.get(&step.id).cloned(),
                _ => None,
            };
            steps.push(StepOutcome {
                id: step.id.clone(),
                phase: step.phase,
                status: status.to_string(),
                attempts: if step.is_gate() { 0 } else { s.attempt },
                calls: calls.remove(&step.id).unwrap_or_default(),
                why,
                decision: decisions.remove(&step.id),
                gate: step.is_gate(),
            });
        }
        let restored = restore.ok && !restore.broken;
        let last_ms = entries.last().map(|e| e.at_ms).unwrap_or(start);
        Ok(Outcome {
            status: state.status.as_str().to_string(),
            reason: state.reason.clone(),
            time_to_restore: restored.then(|| off(restore.last)),
            time_to_verified: (restored && verify.ok && !verify.broken)
                .then(|| off(verify.last.max(restore.last))),
            duration: off(last_ms),
            phases,
            steps,
        })
    }

    /// Whether the restore phase succeeded.
    pub fn restored(&self) -> bool {
        self.time_to_restore.is_some()
    }

    /// The step that kept the run from restoring: the first restore step that failed or
    /// was never reached, else the first one skipped (cancelled, condition false), else
    /// the first step that failed.
    pub fn blocking_step(&self) -> Option<&StepOutcome> {
        let restore = || {
            self.steps
                .iter()
                .filter(|s| s.phase == Phase::Restore && !s.gate)
        };
        restore()
            .find(|s| matches!(s.status.as_str(), "failed" | "not reached"))
            .or_else(|| restore().find(|s| matches!(s.status.as_str(), "skipped" | "cancelled")))
            .or_else(|| self.steps.iter().find(|s| s.status == "failed"))
    }
}

#[derive(Default)]
struct PhaseEnd {
    ok: bool,
    broken: bool,
    last: u64,
}

/// `host:port/path?query`, without the scheme: what people recognise in a list of calls.
pub fn short_url(url: &str) -> &str {
    url.split_once("://").map(|(_, rest)| rest).unwrap_or(url)
}
