//! One attempt of one step, in two halves every caller shares: [`request`] builds what the
//! runner gets from the step and its run, and [`outcome`] reads how the attempt ended from
//! what the runner returned and what the host saw. The executor uses both for every attempt
//! of a workflow run; `medic step test` attempts a step as the only step of a run of its own
//! ([`NewRun::standalone`], [`crate::Executor::attempt_once`]), so it obeys the same rules and
//! writes the same journal.

use crate::instance::{AttemptHost, HostError};
use crate::journal::{Entry, Event, Failure, FailureKind, RetryPlan};
use crate::run::NewRun;
use crate::runner::{AttemptRequest, AttemptResult, Grants, Invocation, ResolvedLimits};
use crate::state::{Next, RunState};
use crate::store::Durability;
use medic_model::{Incident, Phase, Step, Workflow};
use std::collections::BTreeMap;

/// The name of the one-step workflow a standalone attempt runs in.
pub const STANDALONE_WORKFLOW: &str = "standalone-step";

/// The request for attempt `attempt` (from 1) of `step` in the run `state`, with `params`
/// (the step's `with:`, already rendered) and the engine's `defaults` for the limits the
/// step does not set. The component is the run's resolved one for the step, else `uses:`.
pub fn request(
    state: &RunState,
    step: &Step,
    attempt: u32,
    params: &serde_json::Value,
    defaults: &ResolvedLimits,
) -> AttemptRequest {
    AttemptRequest {
        component: state
            .components
            .get(&step.id)
            .cloned()
            .unwrap_or(step.uses.clone()),
        invocation: Invocation {
            run_id: state.id.clone(),
            step_id: step.id.clone(),
            attempt,
            idempotency_key: crate::idempotency_key(&state.id, &step.id),
            phase: step.phase,
            incident: state.incident.clone(),
            params: params.to_string(),
            drill: state.drill,
        },
        grants: Grants {
            secrets: step.secrets.clone(),
            allow: step.allow.clone(),
            tls: step.tls.clone(),
        },
        limits: ResolvedLimits {
            memory_bytes: step.limits.memory_bytes.unwrap_or(defaults.memory_bytes),
            timeout_ms: step.timeout_ms.unwrap_or(defaults.timeout_ms),
            output_bytes: step.limits.output_bytes.unwrap_or(defaults.output_bytes),
        },
    }
}

/// How an attempt ended, before the step's retry policy is applied.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The step returned `done` with this output (redacted).
    Succeeded(serde_json::Value),
    /// The attempt failed; `retry_after_ms` is set when the step asked to be tried again
    /// after that many milliseconds (`not-ready`).
    Failed {
        /// What went wrong, redacted.
        failure: Failure,
        /// The delay the step asked for, milliseconds.
        retry_after_ms: Option<u64>,
    },
}

/// The journal lost a write during the attempt: nothing about it can be recorded, and the
/// run must stop. Holds the store's message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("journal write failed: {0}")]
pub struct JournalLost(pub String);

/// The one rule for how an attempt ended, from what the runner returned and what its host
/// saw, in this order: a lost journal write ends the run; a replay that diverged fails the
/// attempt (`nondeterminism`, not retryable); a grant violation fails it (`step-error`,
/// not retryable) whatever the step made of the refusal, because guests see denials as
/// vague client errors while the host knows exactly what happened; otherwise the runner's
/// result, redacted with the attempt's secrets.
///
/// # Errors
///
/// [`JournalLost`] when one of the attempt's journal writes failed.
pub fn outcome(result: AttemptResult, host: &AttemptHost) -> Result<Outcome, JournalLost> {
    match host.fatal() {
        Some(HostError::Store(message)) => return Err(JournalLost(message)),
        Some(e @ HostError::Nondeterminism { .. }) => {
            return Ok(Outcome::failed(Failure::new(
                e.kind(),
                false,
                e.to_string(),
            )));
        }
        None => {}
    }
    let redact = host.redactor();
    let violations = host.violations();
    Ok(match result {
        _ if !violations.is_empty() => Outcome::failed(Failure::new(
            FailureKind::StepError,
            false,
            violations.join("; "),
        )),
        AttemptResult::Done(output) => Outcome::Succeeded(redact.json(&output)),
        AttemptResult::RetryAfter { ms, reason } => Outcome::Failed {
            failure: Failure::new(FailureKind::NotReady, true, redact.text(&reason)),
            retry_after_ms: Some(ms),
        },
        AttemptResult::Failed(mut f) => {
            f.message = redact.text(&f.message);
            Outcome::failed(f)
        }
    })
}

impl Outcome {
    /// A failure without a requested delay.
    pub fn failed(failure: Failure) -> Outcome {
        Outcome::Failed {
            failure,
            retry_after_ms: None,
        }
    }

    /// The record that closes attempt `attempt` of `step`: `attempt_succeeded`, or
    /// `attempt_failed` with the retry decision of the step's policy made at `now_ms`
    /// (Unix ms). `duration_ms` is how long the attempt ran.
    pub fn event(&self, step: &Step, attempt: u32, duration_ms: u64, now_ms: u64) -> Event {
        match self {
            Outcome::Succeeded(output) => Event::AttemptSucceeded {
                step: step.id.clone(),
                attempt,
                output: output.clone(),
                duration_ms,
            },
            Outcome::Failed {
                failure,
                retry_after_ms,
            } => {
                let retry =
                    (failure.retryable && attempt < step.retry.attempts).then(|| RetryPlan {
                        attempt: attempt + 1,
                        not_before_ms: now_ms
                            + retry_after_ms
                                .unwrap_or_else(|| step.retry.delay_before(attempt + 1)),
                    });
                Event::AttemptFailed {
                    step: step.id.clone(),
                    attempt,
                    failure: failure.clone(),
                    duration_ms,
                    retry,
                }
            }
        }
    }
}

/// How an attempt's outcome record is written: [`Durability::Lazy`] when the run ends with
/// it (the fold after it says [`Next::Finish`]), because `run_finished` is appended next,
/// before anything else happens, and its flush covers both (sled applies writes in order
/// and a flush covers every earlier write, docs/durability.md §3); otherwise
/// [`Durability::Flush`], as every transition. One flush hand-off fewer per run that ends
/// with a step: a third of a one-step run's journal flushes.
pub(crate) fn outcome_durability(state: &RunState, outcome: &Event, now_ms: u64) -> Durability {
    if !matches!(
        outcome,
        Event::AttemptSucceeded { .. } | Event::AttemptFailed { retry: None, .. }
    ) {
        return Durability::Flush;
    }
    let mut after = state.clone();
    let entry = Entry {
        seq: state.next_seq,
        at_ms: now_ms,
        event: outcome.clone(),
    };
    match after.apply(&entry).map(|()| after.next(now_ms)) {
        Ok(Next::Finish { .. }) => Durability::Lazy,
        _ => Durability::Flush,
    }
}

/// A step `id` in `phase` that runs `uses` (a `.wasm` path) once, with no params, grants
/// or limits of its own: set the fields that differ, then [`NewRun::standalone`].
pub fn standalone_step(id: &str, phase: Phase, uses: &str) -> Step {
    Step {
        id: id.to_string(),
        phase,
        uses: uses.to_string(),
        gate: None,
        with: serde_json::Value::Object(Default::default()),
        condition: None,
        retry: Default::default(),
        timeout_ms: None,
        secrets: Vec::new(),
        allow: Vec::new(),
        limits: Default::default(),
        tls: Vec::new(),
        continue_on_error: false,
    }
}

impl NewRun {
    /// A run whose workflow ([`STANDALONE_WORKFLOW`]) is `step` alone, with `component` (a
    /// `.wasm` path) for it: how a step is attempted outside any workflow, so that its
    /// journal is a run's journal (`run_created`, `attempt_started`, its host calls, the
    /// closing record, `run_finished`).
    pub fn standalone(step: Step, component: String, incident: Incident) -> NewRun {
        NewRun {
            components: BTreeMap::from([(step.id.clone(), component.clone())]),
            workflow: Workflow {
                name: STANDALONE_WORKFLOW.into(),
                description: String::new(),
                trigger: Default::default(),
                steps: vec![step],
                on_resolved: Default::default(),
                vars: Default::default(),
            },
            workflow_file: component,
            incident,
            drill: false,
        }
    }
}
