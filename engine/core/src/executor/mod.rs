//! The executor: drives a run's state machine, writing each transition to the store
//! (flushed) before starting the next side effect.

use crate::Clock;
use crate::attempt::{self, Outcome};
use crate::clock::{Entropy, OsEntropy};
use crate::instance::{AttemptHost, HostSetup};
use crate::journal::{Event, Failure, FailureKind, Observer, RunJournal, RunStatus};
use crate::runner::{ResolvedLimits, StepRunner};
use crate::secrets::SecretSource;
use crate::state::{Next, RunState, StateError};
use crate::store::{Durability, JournalStore, Message, RunMeta, StoreError};
use crate::waker::{Driven, PARK_AFTER_MS, Waker};
use medic_model::{expr, template};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{Notify, watch};

mod create;

/// Fatal engine errors: the run cannot continue safely. (Step failures are not errors:
/// they are recorded in the journal and the run carries on or fails by its own rules.)
#[derive(Debug, thiserror::Error)]
pub enum ExecutorError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The journal does not fold.
    #[error(transparent)]
    State(#[from] StateError),
    /// A journal write failed during an attempt: nothing more can be recorded.
    #[error("run {run}: journal write failed during step {step}: {message}")]
    JournalLost {
        /// The run's id.
        run: String,
        /// The step whose attempt was running.
        step: String,
        /// The store's error.
        message: String,
    },
    /// [`Executor::attempt_once`] on a run that is not a new one-step run.
    #[error(
        "run {0}: not a new standalone run (its first step has already started, or it has none)"
    )]
    NotStandalone(String),
}

/// The executor. Cheap to clone-by-Arc; drives any number of runs concurrently.
pub struct Executor {
    store: Arc<dyn JournalStore>,
    runner: Arc<dyn StepRunner>,
    clock: Arc<dyn Clock>,
    secrets: Arc<dyn SecretSource>,
    entropy: Arc<dyn Entropy>,
    defaults: ResolvedLimits,
    observer: Option<Observer>,
    counter: AtomicU64,
    /// One per run being driven in this process: [`Executor::post`] wakes its driver.
    wakers: Mutex<HashMap<String, Arc<Notify>>>,
    /// Set by [`Executor::shut_down`]: drivers park their runs instead of starting work.
    shutdown: watch::Sender<bool>,
    /// Bounds the step attempts running at once (not runs: a run waiting on a gate or a
    /// retry timer holds no slot), handed out by the incident's severity lane. `None`:
    /// unbounded.
    slots: Option<(crate::lanes::LanePool, LaneOf)>,
    /// Attempts ready to start but waiting for a slot.
    waiting: AtomicU64,
    on_drive: Option<DriveHook>,
    responder: Option<Arc<dyn crate::HttpResponder>>,
    run_context: Option<RunContext>,
}

/// Called when a driver starts on an unfinished run, with the state folded from its
/// journal: what a restart finds (open gates, say) without reading the journal twice.
pub type DriveHook = Arc<dyn Fn(&RunState) + Send + Sync>;

/// The severity lane of a run's incident, for [`Executor::with_slots`].
pub type LaneOf = Arc<dyn Fn(&medic_model::Incident) -> crate::lanes::Lane + Send + Sync>;

/// What templates and conditions see as `run.*`, from the run's id and journal so far
/// (medic-postmortem's `run_context`: the run's links and metrics). Called only for steps
/// whose `with:` or `if:` mention `run.`, so other steps cost no journal read. Without
/// it, `run.id` alone.
pub type RunContext = Arc<dyn Fn(&str, &[crate::Entry]) -> serde_json::Value + Send + Sync>;

impl Executor {
    /// An executor writing to `store`, running steps with `runner`, reading time from
    /// `clock` and secret values from `secrets`; the OS's entropy, default limits.
    pub fn new(
        store: Arc<dyn JournalStore>,
        runner: Arc<dyn StepRunner>,
        clock: Arc<dyn Clock>,
        secrets: Arc<dyn SecretSource>,
    ) -> Self {
        Executor {
            store,
            runner,
            clock,
            secrets,
            entropy: Arc::new(OsEntropy),
            defaults: ResolvedLimits::default(),
            observer: None,
            counter: AtomicU64::new(0),
            wakers: Mutex::new(HashMap::new()),
            shutdown: watch::Sender::new(false),
            slots: None,
            waiting: AtomicU64::new(0),
            on_drive: None,
            responder: None,
            run_context: None,
        }
    }

    /// The limits of steps that set none.
    pub fn with_defaults(mut self, defaults: ResolvedLimits) -> Self {
        self.defaults = defaults;
        self
    }

    /// Where guests' random bytes come from (tests pin it).
    pub fn with_entropy(mut self, entropy: Arc<dyn Entropy>) -> Self {
        self.entropy = entropy;
        self
    }

    /// See [`DriveHook`].
    pub fn with_drive_hook(mut self, hook: DriveHook) -> Self {
        self.on_drive = Some(hook);
        self
    }

    /// Every step's outgoing requests are answered by `responder` instead of the network
    /// (a drill: see [`crate::HttpResponder`]).
    pub fn with_responder(mut self, responder: Arc<dyn crate::HttpResponder>) -> Self {
        self.responder = Some(responder);
        self
    }

    /// See [`RunContext`].
    pub fn with_run_context(mut self, hook: RunContext) -> Self {
        self.run_context = Some(hook);
        self
    }

    /// What `step`'s templates and condition see: the run state's context plus `run.*`.
    fn context(&self, state: &RunState, step: &medic_model::Step) -> serde_json::Value {
        let mut ctx = state.context();
        let uses_run = medic_model::template::mentions(&step.with, "run.")
            || step.condition.as_ref().is_some_and(|c| c.contains("run."));
        let entries = match &self.run_context {
            Some(_) if uses_run => self.store.entries(&state.id).ok(),
            _ => None,
        };
        ctx["run"] = match (&self.run_context, entries) {
            (Some(hook), Some(entries)) => hook(&state.id, &entries),
            _ => serde_json::json!({"id": state.id}),
        };
        ctx
    }

    /// At most the pool's capacity of step attempts run at once, across all runs; a
    /// waiting attempt is served in the lane `lane_of` gives its run's incident
    /// ([`crate::lanes`]).
    pub fn with_slots(mut self, slots: crate::lanes::LanePool, lane_of: LaneOf) -> Self {
        self.slots = Some((slots, lane_of));
        self
    }

    /// Attempts ready to start that wait for a slot.
    pub fn waiting_for_slot(&self) -> u64 {
        self.waiting.load(Ordering::Relaxed)
    }

    /// Called after every journal append, with the run's meta, e.g. to print progress. A
    /// lazy append (`attempt_started`, logs) is told of before it is on disk, and a crash
    /// can still take it back (docs/durability.md §3).
    pub fn with_observer(mut self, observer: Observer) -> Self {
        self.observer = Some(observer);
        self
    }

    /// The store it writes to.
    pub fn store(&self) -> &Arc<dyn JournalStore> {
        &self.store
    }

    /// Posts a message for a run (a gate decision, an incident update), durably, and wakes
    /// its driver if it runs in this process. A driver elsewhere, or the next one to start,
    /// reads it from the store.
    ///
    /// # Errors
    ///
    /// [`ExecutorError::Store`] when the message cannot be written.
    pub fn post(&self, run: &str, message: &Message) -> Result<(), ExecutorError> {
        self.store.post(run, message)?;
        if let Some(waker) = self.wakers.lock().expect("wakers lock").get(run) {
            waker.notify_one();
        }
        Ok(())
    }

    /// Stops starting work: every driver returns [`RunStatus::Running`] at its next step
    /// boundary, after recording the attempt it has in flight, so the runs are parked in
    /// the journal and the next start resumes them. Waits (retry timers, open gates) end
    /// at once.
    pub fn shut_down(&self) {
        self.shutdown.send_replace(true);
    }

    /// Whether [`Executor::shut_down`] was called.
    pub fn is_shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// Ids of runs that have not finished (to resume at start-up).
    ///
    /// # Errors
    ///
    /// [`ExecutorError::Store`] when the runs cannot be listed.
    pub fn unfinished_runs(&self) -> Result<Vec<String>, ExecutorError> {
        crate::unfinished_runs(self.store.as_ref())
    }

    /// Drives a run until it finishes. Safe to call on a run that was interrupted at any
    /// point: it continues from the journal. Returns [`RunStatus::Running`] when shutdown
    /// began ([`Executor::shut_down`]).
    ///
    /// # Errors
    ///
    /// [`ExecutorError`] when the run does not exist, its journal does not fold, or a
    /// journal write fails: the run stops where its journal says.
    pub async fn drive(&self, run_id: &str) -> Result<RunStatus, ExecutorError> {
        Ok(match self.drive_inner(self.open(run_id)?, false).await? {
            Driven::Finished(status) => status,
            Driven::Stopped | Driven::Parked { .. } => RunStatus::Running,
        })
    }

    /// Drives a run like [`Executor::drive`], but returns [`Driven::Parked`] instead of
    /// waiting when the run would wait [`PARK_AFTER_MS`] or longer (an open gate, a retry
    /// backoff), having read its mailbox first. A parked run costs no memory here: the
    /// caller keeps its id and `until_ms`, and drives it again then, or after posting a
    /// message for it (`medic serve` does both, `parked.rs`).
    ///
    /// # Errors
    ///
    /// As [`Executor::drive`].
    pub async fn drive_or_park(&self, run_id: &str) -> Result<Driven, ExecutorError> {
        self.drive_inner(self.open(run_id)?, true).await
    }

    /// Drives the run `journal` appends to from `state`, its fold so far.
    async fn drive_inner(
        &self,
        (mut state, journal): (RunState, Arc<RunJournal>),
        park: bool,
    ) -> Result<Driven, ExecutorError> {
        if state.is_finished() {
            return Ok(Driven::Finished(state.status));
        }
        if let Some(hook) = &self.on_drive {
            hook(&state);
        }
        let waker = Waker::register(&self.wakers, &state.id);
        let mut stop = self.shutdown.subscribe();
        loop {
            if *stop.borrow_and_update() {
                return Ok(Driven::Stopped);
            }
            self.read_mailbox(&mut state, &journal)?;
            let now = self.clock.now_ms();
            let event = match state.next(now) {
                Next::Finish { status, reason } => {
                    journal
                        .append_async(Event::RunFinished { status, reason })
                        .await?;
                    apply(&mut state, &journal)?;
                    return Ok(Driven::Finished(journal.status()));
                }
                // A retry's time or an open gate's deadline. The mailbox was read above,
                // after the waker was registered: a message posted once the run is parked
                // finds no waiting driver, and the caller that parks it looks at the
                // mailbox once more (`Driven::Parked`).
                Next::Wait { until_ms }
                | Next::Gate {
                    deadline_ms: until_ms,
                    ..
                } if now < until_ms => {
                    if park && until_ms - now >= PARK_AFTER_MS {
                        return Ok(Driven::Parked { until_ms });
                    }
                    self.wait(until_ms, &waker.notify, &mut stop).await;
                    continue;
                }
                // `RunState::next` gives a wait only before its time; were one due, the
                // next turn attempts it.
                Next::Wait { .. } => continue,
                Next::Gate { step, .. } => crate::gates::decided_by_deadline(&state, step),
                Next::Skip { step, reason } => Event::StepSkipped { step, reason },
                Next::Cancel { step, reason } => Event::StepCancelled { step, reason },
                Next::Begin { step } => match self.condition(&state, &step) {
                    Ok(true) if state.workflow.step(&step).is_some_and(|s| s.is_gate()) => {
                        crate::gates::open(&state, &step, now)
                    }
                    Ok(true) => {
                        let Some(_slot) = self.slot(&state, &mut stop).await else {
                            return Ok(Driven::Stopped);
                        };
                        // Boxed, here and below: an attempt's future is most of the
                        // driver's size, and a run parked at a gate or a retry should
                        // not carry room for one (a parked run's memory, issue 16).
                        Box::pin(self.attempt(&state, &journal, &step, 1)).await?.0
                    }
                    Ok(false) => Event::StepSkipped {
                        step,
                        reason: "condition is false".into(),
                    },
                    Err(message) => Event::AttemptFailed {
                        step,
                        attempt: 1,
                        failure: Failure::new(FailureKind::Template, false, message),
                        duration_ms: 0,
                        retry: None,
                    },
                },
                Next::Attempt { step, attempt } => {
                    let Some(_slot) = self.slot(&state, &mut stop).await else {
                        return Ok(Driven::Stopped);
                    };
                    Box::pin(self.attempt(&state, &journal, &step, attempt))
                        .await?
                        .0
                }
            };
            match attempt::outcome_durability(&state, &event, now) {
                Durability::Lazy => {
                    // The run ends with this outcome: `run_finished` now, whose flush
                    // covers both, with no mailbox read or shutdown check in between.
                    journal.append_with(event, Durability::Lazy)?;
                    apply(&mut state, &journal)?;
                }
                Durability::Flush => {
                    journal.append_async(event).await?;
                    apply(&mut state, &journal)?;
                    continue;
                }
            }
            // Always true (the same fold decided it); were it not, the next record of the
            // loop would still be flushed before any side effect, covering this one.
            if let Next::Finish { status, reason } = state.next(now) {
                journal
                    .append_async(Event::RunFinished { status, reason })
                    .await?;
                apply(&mut state, &journal)?;
                return Ok(Driven::Finished(journal.status()));
            }
        }
    }

    /// A run's state, folded from its journal, and the append side of that journal.
    fn open(&self, run_id: &str) -> Result<(RunState, Arc<RunJournal>), ExecutorError> {
        let meta = self
            .store
            .run(run_id)?
            .ok_or_else(|| StoreError::NoSuchRun(run_id.to_string()))?;
        let state = RunState::load(self.store.as_ref(), run_id)?;
        let journal = self.journal(meta, state.next_seq);
        Ok((state, journal))
    }

    /// The append side of run `meta.id`'s journal, whose next entry is `next_seq`.
    fn journal(&self, meta: RunMeta, next_seq: u64) -> Arc<RunJournal> {
        Arc::new(RunJournal::new(
            self.store.clone(),
            self.clock.clone(),
            self.observer.clone(),
            meta,
            next_seq,
        ))
    }

    /// One attempt of the first step of a new run, then the run's end: for a run made
    /// with [`NewRun::standalone`] (`medic step test`), whose only step has one attempt.
    /// The attempt runs exactly as [`Executor::drive`] runs it (same request, host and
    /// outcome rule) and is journalled the same way; returns how it ended.
    ///
    /// # Errors
    ///
    /// [`ExecutorError`] when the run does not exist or has no step to attempt, or a
    /// journal write fails.
    pub async fn attempt_once(&self, run_id: &str) -> Result<Outcome, ExecutorError> {
        let (mut state, journal) = self.open(run_id)?;
        let step = state
            .workflow
            .steps
            .first()
            .filter(|_| state.next_seq == 1)
            .map(|s| s.id.clone())
            .ok_or_else(|| ExecutorError::NotStandalone(run_id.to_string()))?;
        let (event, outcome) = self.attempt(&state, &journal, &step, 1).await?;
        journal.append(event)?;
        apply(&mut state, &journal)?;
        if let Next::Finish { status, reason } = state.next(self.clock.now_ms()) {
            journal.append(Event::RunFinished { status, reason })?;
            apply(&mut state, &journal)?;
        }
        Ok(outcome)
    }

    /// A slot for one attempt (`Some(None)` when unbounded), or `None` when shutdown
    /// began while waiting for it.
    async fn slot(
        &self,
        state: &RunState,
        stop: &mut watch::Receiver<bool>,
    ) -> Option<Option<crate::lanes::Permit>> {
        let Some((slots, lane_of)) = &self.slots else {
            return Some(None);
        };
        let lane = lane_of(&state.incident);
        self.waiting.fetch_add(1, Ordering::Relaxed);
        let permit = tokio::select! {
            p = slots.acquire(lane) => Some(p),
            _ = stop.changed() => None,
        };
        self.waiting.fetch_sub(1, Ordering::Relaxed);
        permit.map(Some)
    }

    /// Sleeps until `until_ms`, a message for the run, or shutdown, whichever comes first.
    async fn wait(&self, until_ms: u64, waker: &Notify, stop: &mut watch::Receiver<bool>) {
        tokio::select! {
            _ = self.clock.sleep_until(until_ms) => {}
            _ = waker.notified() => {}
            _ = stop.changed() => {}
        }
    }

    /// Journals what the run's mailbox holds, then acknowledges it.
    fn read_mailbox(
        &self,
        state: &mut RunState,
        journal: &RunJournal,
    ) -> Result<(), ExecutorError> {
        for (id, message) in self.store.mailbox(&state.id)? {
            if let Some(event) = crate::gates::accept(state, message) {
                journal.append(event)?;
                apply(state, journal)?;
            }
            self.store.ack(&state.id, id)?;
        }
        Ok(())
    }

    fn condition(&self, state: &RunState, step: &str) -> Result<bool, String> {
        let Some(step) = state.workflow.step(step) else {
            return Ok(true);
        };
        let Some(cond) = &step.condition else {
            return Ok(true);
        };
        expr::eval_condition(cond, &self.context(state, step)).map_err(|e| format!("if: {e}"))
    }

    /// Runs one attempt. Appends `attempt_started` itself (and the host calls happen
    /// through the journal); returns the closing event for the caller to append, and the
    /// outcome it records.
    async fn attempt(
        &self,
        state: &RunState,
        journal: &Arc<RunJournal>,
        step_id: &str,
        attempt: u32,
    ) -> Result<(Event, Outcome), ExecutorError> {
        let step = state
            .workflow
            .step(step_id)
            .expect("next() only names workflow steps")
            .clone();
        let close = |outcome: Outcome, duration_ms| {
            let event = outcome.event(&step, attempt, duration_ms, self.clock.now_ms());
            (event, outcome)
        };
        let params = match template::render(&step.with, &self.context(state, &step)) {
            Ok(p) => p,
            Err(e) => {
                let f = Failure::new(FailureKind::Template, false, format!("with: {e}"));
                return Ok(close(Outcome::failed(f), 0));
            }
        };
        let s = &state.steps[step_id];
        // The same attempt still running in the journal: the engine stopped during it.
        // Re-run it from the start, answering what it already did from the journal.
        let resumed = s.status == crate::StepStatus::Running && s.attempt == attempt;
        let host = AttemptHost::new(HostSetup {
            journal: journal.clone(),
            step: step_id.to_string(),
            attempt,
            granted_secrets: step.secrets.clone(),
            secrets: self.secrets.clone(),
            entropy: self.entropy.clone(),
            state: if resumed {
                s.state_at_start.clone()
            } else {
                s.state.clone()
            },
            recorded: if resumed {
                s.inflight.clone()
            } else {
                Default::default()
            },
            responder: self.responder.clone(),
        });
        let mut request = attempt::request(state, &step, attempt, &params, &self.defaults);
        let started_ms = if resumed {
            s.started_ms
        } else {
            // Params are journalled redacted; the step still gets them as rendered. Not
            // flushed on its own: nothing outside the journal depends on it before the
            // attempt's first effect, whose record is flushed before the effect and so
            // makes this durable too (docs/durability.md §3).
            journal
                .append_with(
                    Event::AttemptStarted {
                        step: step_id.to_string(),
                        attempt,
                        idempotency_key: request.invocation.idempotency_key.clone(),
                        params: host.redactor().json(&params),
                    },
                    Durability::Lazy,
                )?
                .at_ms
        };
        if resumed {
            // The timeout runs from the attempt's start, not from the restart.
            let spent = self.clock.now_ms().saturating_sub(started_ms);
            if spent >= request.limits.timeout_ms {
                let f = Failure::new(
                    FailureKind::Timeout,
                    true,
                    format!(
                        "timed out after {} (the step's timeout; medic was stopped during the attempt)",
                        medic_model::units::format_duration_ms(request.limits.timeout_ms)
                    ),
                );
                return Ok(close(Outcome::failed(f), spent));
            }
            request.limits.timeout_ms -= spent;
        }
        let result = self.runner.run(request, host.clone()).await;
        let duration_ms = self.clock.now_ms().saturating_sub(started_ms);
        match attempt::outcome(result, &host) {
            Ok(outcome) => Ok(close(outcome, duration_ms)),
            Err(lost) => Err(ExecutorError::JournalLost {
                run: state.id.clone(),
                step: step_id.to_string(),
                message: lost.0,
            }),
        }
    }
}

fn apply(state: &mut RunState, journal: &RunJournal) -> Result<(), StateError> {
    for e in journal.take_unapplied() {
        state.apply(&e)?;
    }
    Ok(())
}

impl From<crate::state::LoadError> for ExecutorError {
    fn from(e: crate::state::LoadError) -> Self {
        match e {
            crate::state::LoadError::Store(e) => ExecutorError::Store(e),
            crate::state::LoadError::State(e) => ExecutorError::State(e),
        }
    }
}
