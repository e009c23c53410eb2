//! Human gates and the other inputs a run takes from outside: turning mailbox messages
//! and deadlines into journal events. Pure functions of the run state, so the executor
//! stays the only writer and replay stays deterministic.

use crate::journal::{Event, Failure, FailureKind};
use crate::state::RunState;
use crate::store::Message;
use medic_model::template;
use serde_json::Value;

/// Who decided when nobody did.
pub const DEADLINE: &str = "deadline";

/// The event that opens the gate of `step` (its prompt rendered now), or the failure of a
/// prompt that cannot be rendered.
pub(crate) fn open(state: &RunState, step: &str, now_ms: u64) -> Event {
    let gate = state
        .workflow
        .step(step)
        .and_then(|s| s.gate.as_ref())
        .expect("open() is only called for gate steps");
    match template::render(&Value::String(gate.prompt.clone()), &state.context()) {
        Ok(prompt) => Event::GateOpened {
            step: step.to_string(),
            prompt: match prompt {
                Value::String(s) => s,
                other => other.to_string(),
            },
            approvers: gate.approvers.clone(),
            deadline_ms: now_ms.saturating_add(gate.deadline_ms),
            on_deadline: gate.on_deadline,
        },
        Err(e) => Event::AttemptFailed {
            step: step.to_string(),
            attempt: 1,
            failure: Failure::new(FailureKind::Template, false, format!("gate.prompt: {e}")),
            duration_ms: 0,
            retry: None,
        },
    }
}

/// The deadline passed with no decision: the gate's default.
pub(crate) fn decided_by_deadline(state: &RunState, step: String) -> Event {
    let decision = state
        .open_gate(&step)
        .map(|g| g.on_deadline)
        .expect("next() returns Gate only for open gates");
    Event::GateDecided {
        step,
        decision,
        by: DEADLINE.to_string(),
        by_deadline: true,
        comment: None,
    }
}

/// The event a message becomes, if it still means something: a decision for a gate that
/// is open (from an allowed approver), an incident status the run does not have yet.
/// Anything else is dropped; the API checks the same rules before posting, so a dropped
/// message is a late duplicate or a race lost to the deadline.
pub(crate) fn accept(state: &RunState, message: Message) -> Option<Event> {
    match message {
        Message::GateDecision {
            step,
            decision,
            by,
            comment,
        } => {
            let gate = state.open_gate(&step)?;
            if !may_decide(&gate.approvers, &by) {
                return None;
            }
            Some(Event::GateDecided {
                step,
                decision,
                by,
                by_deadline: false,
                comment,
            })
        }
        Message::IncidentUpdate { status } => {
            (status != state.incident.status).then_some(Event::IncidentUpdated { status })
        }
    }
}

/// Whether `who` may decide a gate with these approvers (none listed: anyone).
pub fn may_decide(approvers: &[String], who: &str) -> bool {
    approvers.is_empty() || approvers.iter().any(|a| a == who)
}

/// Why a gate decision is refused, checked by the API and the CLI before posting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The run has no such step.
    #[error("run {run} has no step `{step}` (its steps: {steps})")]
    NoSuchStep {
        /// The run's id.
        run: String,
        /// The step asked for.
        step: String,
        /// The run's step ids, comma-separated.
        steps: String,
    },
    /// The step runs a component.
    #[error("step `{step}` is not a gate: it runs a component ({uses})")]
    NotAGate {
        /// The step's id.
        step: String,
        /// Its component.
        uses: String,
    },
    /// The run has finished.
    #[error("run {run} is {status}: its gates can no longer be decided")]
    RunOver {
        /// The run's id.
        run: String,
        /// How it finished.
        status: String,
    },
    /// The gate was skipped.
    #[error("gate `{step}` was skipped: {reason}")]
    Skipped {
        /// The gate's step id.
        step: String,
        /// Why it was skipped.
        reason: String,
    },
    /// The gate was cancelled: the incident resolved (`on-resolved: cancel`).
    #[error("gate `{step}` was cancelled: {reason}")]
    Cancelled {
        /// The gate's step id.
        step: String,
        /// Why it was cancelled.
        reason: String,
    },
    /// The run has not reached the gate.
    #[error("gate `{step}` has not opened yet (the run has not reached it); decide once it waits")]
    NotOpenYet {
        /// The gate's step id.
        step: String,
    },
    /// Someone, or the deadline, decided first.
    #[error("gate `{step}` was already decided: {how}")]
    AlreadyDecided {
        /// The gate's step id.
        step: String,
        /// The decision and who made it.
        how: String,
    },
    /// `by` is not among the gate's approvers.
    #[error("{by} may not decide gate `{step}`: its approvers are {approvers}")]
    NotAnApprover {
        /// The gate's step id.
        step: String,
        /// Who tried to decide.
        by: String,
        /// Who may, comma-separated.
        approvers: String,
    },
}

impl Refusal {
    /// The HTTP status the API answers with.
    pub fn http_status(&self) -> u16 {
        match self {
            Refusal::NoSuchStep { .. } => 404,
            Refusal::NotAnApprover { .. } => 403,
            _ => 409,
        }
    }
}

/// Checks that `by` may decide the gate of `step` now.
///
/// # Errors
///
/// The [`Refusal`] saying why not.
pub fn check_decision(state: &RunState, step: &str, by: &str) -> Result<(), Refusal> {
    let Some(def) = state.workflow.step(step) else {
        return Err(Refusal::NoSuchStep {
            run: state.id.clone(),
            step: step.to_string(),
            steps: state
                .workflow
                .steps
                .iter()
                .map(|s| s.id.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        });
    };
    if !def.is_gate() {
        return Err(Refusal::NotAGate {
            step: step.to_string(),
            uses: def.uses.clone(),
        });
    }
    let s = &state.steps[step];
    if let Some(output) = &s.output {
        let how = format!(
            "{} by {}",
            output["decision"].as_str().unwrap_or("decided"),
            output["by"].as_str().unwrap_or("?")
        );
        return Err(Refusal::AlreadyDecided {
            step: step.to_string(),
            how,
        });
    }
    let reason = || s.reason.clone().unwrap_or_default();
    match s.status {
        crate::StepStatus::Skipped => {
            return Err(Refusal::Skipped {
                step: step.to_string(),
                reason: reason(),
            });
        }
        crate::StepStatus::Cancelled => {
            return Err(Refusal::Cancelled {
                step: step.to_string(),
                reason: reason(),
            });
        }
        _ => {}
    }
    if state.is_finished() {
        return Err(Refusal::RunOver {
            run: state.id.clone(),
            status: state.status.as_str().to_string(),
        });
    }
    let Some(gate) = state.open_gate(step) else {
        return Err(Refusal::NotOpenYet {
            step: step.to_string(),
        });
    };
    if !may_decide(&gate.approvers, by) {
        return Err(Refusal::NotAnApprover {
            step: step.to_string(),
            by: by.to_string(),
            approvers: gate.approvers.join(", "),
        });
    }
    Ok(())
}
