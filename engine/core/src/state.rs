//! A run's state, as the fold of its journal, and the pure decision of what to do next.
//! Keeping `next` free of I/O and time reads makes resume deterministic and testable.

use crate::journal::{Entry, Event, Failure, HostCall, Recorded, RetryPlan, RunStatus};
use crate::store::{JournalStore, StoreError};
use medic_model::{Decision, Incident, IncidentStatus, OnResolved, Phase, Workflow};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashSet};

/// Where a step is, as folded from the journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepStatus {
    /// Not started.
    Pending,
    /// An attempt started and has no result in the journal (running, or interrupted).
    Running,
    /// Waiting for a retry.
    Waiting,
    /// An attempt succeeded (or, for a gate, it was decided).
    Succeeded,
    /// Failed for good.
    Failed,
    /// Not run: its condition was false, an earlier step failed, or the run was cancelled.
    Skipped,
    /// Not run: the incident resolved by itself (`on-resolved: cancel`).
    Cancelled,
}

impl StepStatus {
    /// The status's name, lowercase, as templates see it (`steps.<id>.status`).
    pub fn as_str(self) -> &'static str {
        match self {
            StepStatus::Pending => "pending",
            StepStatus::Running => "running",
            StepStatus::Waiting => "waiting",
            StepStatus::Succeeded => "succeeded",
            StepStatus::Failed => "failed",
            StepStatus::Skipped => "skipped",
            StepStatus::Cancelled => "cancelled",
        }
    }
}

/// One step of a run, as folded from the journal.
#[derive(Debug, Clone)]
pub struct StepState {
    /// Where the step is.
    pub status: StepStatus,
    /// The latest attempt number started (0: none).
    pub attempt: u32,
    /// When the latest attempt started (wall-clock ms): its timeout runs from here,
    /// across restarts.
    pub started_ms: u64,
    /// The output document once it succeeded.
    pub output: Option<Value>,
    /// Why the step was skipped or cancelled.
    pub reason: Option<String>,
    /// The retry it waits for, while [`StepStatus::Waiting`].
    pub retry: Option<RetryPlan>,
    /// The latest failed attempt's failure.
    pub last_failure: Option<Failure>,
    /// Durable per-step state (`state-set`).
    pub state: BTreeMap<String, String>,
    /// The step state when the latest attempt started: what a resumed attempt must see.
    pub state_at_start: BTreeMap<String, String>,
    /// Host calls of the latest attempt while it has no result: replayed on resume.
    pub inflight: Recorded,
    /// Set once a gate step has opened (kept after it is decided, for the timeline).
    pub gate: Option<OpenGate>,
}

/// A gate as opened: what was asked, of whom, and until when.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenGate {
    /// The prompt, rendered.
    pub prompt: String,
    /// Who may decide; empty: anyone.
    pub approvers: Vec<String>,
    /// When the default is taken: wall-clock ms since the Unix epoch.
    pub deadline_ms: u64,
    /// The decision taken at the deadline.
    pub on_deadline: Decision,
}

/// A run's state: the fold of its journal ([`RunState::load`], [`RunState::fold`]).
#[derive(Debug, Clone)]
pub struct RunState {
    /// The run's id.
    pub id: String,
    /// The workflow as journalled in `run_created`, shared with the other runs of an
    /// equal workflow (`shared.rs`).
    pub workflow: std::sync::Arc<Workflow>,
    /// Where the workflow was read from.
    pub workflow_file: String,
    /// The incident, with its status as last updated.
    pub incident: Incident,
    /// Step id -> component location, fixed at creation.
    pub components: BTreeMap<String, String>,
    /// A drill.
    pub drill: bool,
    /// When the run was created: wall-clock ms since the Unix epoch.
    pub created_ms: u64,
    /// Where the run is.
    pub status: RunStatus,
    /// Why it failed, once it has.
    pub reason: Option<String>,
    /// Every step of the workflow by id. Boxed: a B-tree node holds room for eleven
    /// values, so unboxed a one-step run's map took 3.7 KiB of a parked run's memory.
    pub steps: BTreeMap<String, Box<StepState>>,
    /// The sequence number the next journal entry gets.
    pub next_seq: u64,
}

/// Why a journal does not fold into a run.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// No entries (holds the run's id).
    #[error("run {0}: journal is empty")]
    Empty(String),
    /// An entry that cannot follow the ones before it.
    #[error("run {run}: entry {seq}: {message}")]
    Invalid {
        /// The run's id.
        run: String,
        /// The entry's sequence number.
        seq: u64,
        /// What is wrong with it.
        message: String,
    },
}

/// What the executor should do next.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    /// First attempt of a step: evaluate its condition, then start attempt 1.
    Begin {
        /// The step's id.
        step: String,
    },
    /// Start (or re-run, after an interruption) this attempt.
    Attempt {
        /// The step's id.
        step: String,
        /// The attempt's number.
        attempt: u32,
    },
    /// Nothing to do until this wall-clock instant.
    Wait {
        /// Wall-clock ms since the Unix epoch.
        until_ms: u64,
    },
    /// Skip this step.
    Skip {
        /// The step's id.
        step: String,
        /// Why, for people.
        reason: String,
    },
    /// The incident resolved: this step will not run (`on-resolved: cancel`).
    Cancel {
        /// The step's id.
        step: String,
        /// Why, for people.
        reason: String,
    },
    /// A gate is open: wait for a decision, or take its default at the deadline.
    Gate {
        /// The gate's step id.
        step: String,
        /// Its deadline: wall-clock ms since the Unix epoch.
        deadline_ms: u64,
    },
    /// The run is over.
    Finish {
        /// How it ended.
        status: RunStatus,
        /// Why it failed.
        reason: Option<String>,
    },
}

/// Why a run's state could not be loaded: its journal could not be read, or does not fold.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Reading the journal failed, or there is no such run.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The journal does not describe a run.
    #[error(transparent)]
    State(#[from] StateError),
}

impl RunState {
    /// Reads run `run`'s journal from `store` and folds it: the one way every reader (the
    /// executor, `medic runs`, the gate commands, the API) gets a run's state.
    ///
    /// # Errors
    ///
    /// [`LoadError::Store`] when the journal cannot be read (`NoSuchRun` for an unknown
    /// id), [`LoadError::State`] when it does not fold.
    pub fn load(store: &dyn JournalStore, run: &str) -> Result<RunState, LoadError> {
        Ok(Self::load_with_journal(store, run)?.0)
    }

    /// [`RunState::load`], also returning the journal it folded, for readers that show it
    /// (timelines, reports).
    ///
    /// # Errors
    ///
    /// As [`RunState::load`].
    pub fn load_with_journal(
        store: &dyn JournalStore,
        run: &str,
    ) -> Result<(RunState, Vec<Entry>), LoadError> {
        let entries = store.entries(run)?;
        let state = RunState::fold(run, &entries)?;
        Ok((state, entries))
    }

    /// Rebuilds a run from its journal.
    ///
    /// # Errors
    ///
    /// [`StateError`] when `entries` is empty, does not start with `run_created`, or holds
    /// an entry that cannot follow the ones before it.
    pub fn fold(run: &str, entries: &[Entry]) -> Result<RunState, StateError> {
        let first = entries
            .first()
            .ok_or_else(|| StateError::Empty(run.to_string()))?;
        let Event::RunCreated(created) = &first.event else {
            return Err(StateError::Invalid {
                run: run.to_string(),
                seq: first.seq,
                message: "first entry is not run_created".into(),
            });
        };
        let steps = created
            .workflow
            .steps
            .iter()
            .map(|s| {
                (
                    s.id.clone(),
                    Box::new(StepState {
                        status: StepStatus::Pending,
                        reason: None,
                        attempt: 0,
                        started_ms: 0,
                        output: None,
                        retry: None,
                        last_failure: None,
                        state: BTreeMap::new(),
                        state_at_start: BTreeMap::new(),
                        inflight: Recorded::default(),
                        gate: None,
                    }),
                )
            })
            .collect();
        let mut state = RunState {
            id: run.to_string(),
            workflow: crate::shared::workflow(&created.workflow),
            workflow_file: created.workflow_file.clone(),
            incident: created.incident.clone(),
            components: created.components.clone(),
            drill: created.drill,
            created_ms: first.at_ms,
            status: RunStatus::Running,
            reason: None,
            steps,
            next_seq: 1,
        };
        // Attempts that end later in this journal: their host calls are never replayed, so
        // the fold does not copy them into `inflight` (they are most of a long journal).
        let ended: HashSet<(&str, u32)> = entries
            .iter()
            .filter_map(|e| match &e.event {
                Event::AttemptSucceeded { step, attempt, .. }
                | Event::AttemptFailed { step, attempt, .. } => Some((step.as_str(), *attempt)),
                _ => None,
            })
            .collect();
        for e in &entries[1..] {
            let replayable = match &e.event {
                Event::HostCall { step, attempt, .. } => {
                    !ended.contains(&(step.as_str(), *attempt))
                }
                _ => true,
            };
            state.apply_entry(e, replayable)?;
        }
        Ok(state)
    }

    /// Applies one journal entry (the executor calls this after each append).
    ///
    /// # Errors
    ///
    /// [`StateError::Invalid`] when the entry cannot follow the ones folded so far.
    pub fn apply(&mut self, e: &Entry) -> Result<(), StateError> {
        self.apply_entry(e, true)
    }

    /// [`RunState::apply`]; a host call is kept for replay only when `replayable` (the
    /// fold knows which attempts end later).
    fn apply_entry(&mut self, e: &Entry, replayable: bool) -> Result<(), StateError> {
        if e.seq != self.next_seq {
            return Err(self.invalid(e, format!("out of order: expected entry {}", self.next_seq)));
        }
        self.next_seq += 1;
        let step_name = match &e.event {
            Event::RunCreated(_) => return Err(self.invalid(e, "second run_created".into())),
            Event::RunFinished { status, reason } => {
                self.status = *status;
                self.reason = reason.clone();
                return Ok(());
            }
            Event::IncidentUpdated { status } => {
                self.incident.status = *status;
                return Ok(());
            }
            Event::GateOpened { step, .. }
            | Event::GateDecided { step, .. }
            | Event::StepSkipped { step, .. }
            | Event::StepCancelled { step, .. }
            | Event::AttemptStarted { step, .. }
            | Event::HostCall { step, .. }
            | Event::AttemptSucceeded { step, .. }
            | Event::AttemptFailed { step, .. } => step,
        };
        let Some(s) = self.steps.get_mut(step_name.as_str()) else {
            return Err(self.invalid(e, format!("unknown step {step_name}")));
        };
        match &e.event {
            Event::StepSkipped { reason, .. } => {
                s.status = StepStatus::Skipped;
                s.reason = Some(reason.clone());
            }
            Event::StepCancelled { reason, .. } => {
                s.status = StepStatus::Cancelled;
                s.reason = Some(reason.clone());
            }
            Event::AttemptStarted { attempt, .. } => {
                s.status = StepStatus::Running;
                s.attempt = *attempt;
                s.started_ms = e.at_ms;
                s.retry = None;
                s.state_at_start = s.state.clone();
                s.inflight = Recorded::default();
            }
            Event::HostCall { call, attempt, .. } => {
                if let HostCall::StateSet { key, value } = call {
                    s.state.insert(key.clone(), value.clone());
                }
                if replayable && s.status == StepStatus::Running && *attempt == s.attempt {
                    s.inflight.push(call.clone());
                }
            }
            Event::AttemptSucceeded {
                output, attempt, ..
            } => {
                s.status = StepStatus::Succeeded;
                s.attempt = *attempt;
                s.output = Some(output.clone());
                s.inflight = Recorded::default();
            }
            Event::AttemptFailed {
                failure,
                retry,
                attempt,
                ..
            } => {
                s.inflight = Recorded::default();
                s.attempt = *attempt;
                s.last_failure = Some(failure.clone());
                s.retry = retry.clone();
                s.status = if retry.is_some() {
                    StepStatus::Waiting
                } else {
                    StepStatus::Failed
                };
            }
            Event::GateOpened {
                prompt,
                approvers,
                deadline_ms,
                on_deadline,
                ..
            } => {
                s.status = StepStatus::Running;
                s.started_ms = e.at_ms;
                s.gate = Some(OpenGate {
                    prompt: prompt.clone(),
                    approvers: approvers.clone(),
                    deadline_ms: *deadline_ms,
                    on_deadline: *on_deadline,
                });
            }
            Event::GateDecided {
                decision,
                by,
                by_deadline,
                comment,
                ..
            } => {
                s.status = StepStatus::Succeeded;
                s.output = Some(json!({
                    "decision": decision.past(),
                    "approved": *decision == Decision::Approve,
                    "by": by,
                    "by_deadline": by_deadline,
                    "comment": comment,
                    "decided_at": crate::clock::rfc3339(e.at_ms),
                }));
            }
            Event::RunCreated(_) | Event::RunFinished { .. } | Event::IncidentUpdated { .. } => {
                unreachable!("handled above")
            }
        }
        Ok(())
    }

    fn invalid(&self, e: &Entry, message: String) -> StateError {
        StateError::Invalid {
            run: self.id.clone(),
            seq: e.seq,
            message,
        }
    }

    /// Whether `run_finished` has been folded.
    pub fn is_finished(&self) -> bool {
        self.status != RunStatus::Running
    }

    /// The next thing to do, given the current wall-clock time.
    pub fn next(&self, now_ms: u64) -> Next {
        let mut failed: Option<String> = None;
        let mut cancelled = 0;
        for i in self.workflow.execution_order() {
            let step = &self.workflow.steps[i];
            let s = &self.steps[&step.id];
            match s.status {
                StepStatus::Succeeded | StepStatus::Skipped => continue,
                StepStatus::Cancelled => {
                    cancelled += 1;
                    continue;
                }
                StepStatus::Failed => {
                    if !step.continue_on_error && failed.is_none() {
                        let why = s
                            .last_failure
                            .as_ref()
                            .map(|f| f.to_string())
                            .unwrap_or_default();
                        failed = Some(format!("step {} failed: {why}", step.id));
                    }
                    continue;
                }
                _ => {}
            }
            if let Some(reason) = &failed {
                return Next::Skip {
                    step: step.id.clone(),
                    reason: format!("not run: {reason}"),
                };
            }
            if self.cancels(step.phase, s) {
                return Next::Cancel {
                    step: step.id.clone(),
                    reason: "the incident resolved (on-resolved: cancel)".into(),
                };
            }
            if let (StepStatus::Running, Some(gate)) = (s.status, &s.gate) {
                return Next::Gate {
                    step: step.id.clone(),
                    deadline_ms: gate.deadline_ms,
                };
            }
            return match s.status {
                StepStatus::Pending => Next::Begin {
                    step: step.id.clone(),
                },
                StepStatus::Running => Next::Attempt {
                    step: step.id.clone(),
                    attempt: s.attempt,
                },
                StepStatus::Waiting => {
                    let plan = s.retry.as_ref().expect("waiting step has a retry plan");
                    if now_ms < plan.not_before_ms {
                        Next::Wait {
                            until_ms: plan.not_before_ms,
                        }
                    } else {
                        Next::Attempt {
                            step: step.id.clone(),
                            attempt: plan.attempt,
                        }
                    }
                }
                _ => unreachable!("terminal statuses handled above"),
            };
        }
        match failed {
            Some(reason) => Next::Finish {
                status: RunStatus::Failed,
                reason: Some(reason),
            },
            None if cancelled > 0 => Next::Finish {
                status: RunStatus::Cancelled,
                reason: Some(format!(
                    "the incident resolved: {cancelled} step{} cancelled (on-resolved: cancel)",
                    if cancelled == 1 { "" } else { "s" }
                )),
            },
            None => Next::Finish {
                status: RunStatus::Succeeded,
                reason: None,
            },
        }
    }

    /// Whether the incident's resolution cancels this step. An attempt already running
    /// is not cancelled (its side effects may be half done: it finishes), follow-up steps
    /// never are (the postmortem is still owed).
    fn cancels(&self, phase: Phase, s: &StepState) -> bool {
        let not_started = match s.status {
            StepStatus::Pending | StepStatus::Waiting => true,
            StepStatus::Running => s.gate.is_some(),
            _ => false,
        };
        self.workflow.on_resolved == OnResolved::Cancel
            && self.incident.status == IncidentStatus::Resolved
            && phase != Phase::FollowUp
            && not_started
    }

    /// The gate of `step` while it waits for a decision.
    pub fn open_gate(&self, step: &str) -> Option<&OpenGate> {
        let s = self.steps.get(step)?;
        (s.status == StepStatus::Running).then_some(s.gate.as_ref())?
    }

    /// What templates and conditions see: `incident.*`, `steps.<id>.{status,output}`
    /// of every step that has finished, and the workflow's `vars.*` for its environment.
    pub fn context(&self) -> Value {
        let steps: serde_json::Map<String, Value> = self
            .steps
            .iter()
            .filter(|(_, s)| {
                matches!(
                    s.status,
                    StepStatus::Succeeded
                        | StepStatus::Failed
                        | StepStatus::Skipped
                        | StepStatus::Cancelled
                )
            })
            .map(|(id, s)| {
                (
                    id.clone(),
                    json!({"status": s.status.as_str(), "output": s.output.clone().unwrap_or(Value::Null)}),
                )
            })
            .collect();
        json!({"incident": self.incident.to_context(), "steps": steps, "vars": self.workflow.vars})
    }
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
