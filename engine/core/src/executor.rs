//! The executor: drives a run's state machine, writing each transition to the store
//! (flushed) before starting the next side effect.

use crate::Clock;
use crate::host::{AttemptHost, Entropy, HostError, HostSetup, Observer, OsEntropy, RunJournal};
use crate::journal::{Event, Failure, FailureKind, RetryPlan, RunStatus};
use crate::runner::{
    AttemptRequest, AttemptResult, Grants, Invocation, ResolvedLimits, StepRunner,
};
use crate::secrets::SecretSource;
use crate::state::{Next, RunState, StateError};
use crate::store::{Durability, Message, RunMeta, Store, StoreError};
use medic_model::{Incident, Workflow, expr, template};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{Notify, Semaphore, watch};

/// Fatal engine errors: the run cannot continue safely. (Step failures are not errors:
/// they are recorded in the journal and the run carries on or fails by its own rules.)
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error("run {run}: journal write failed during step {step}: {message}")]
    JournalLost {
        run: String,
        step: String,
        message: String,
    },
}

/// A run to create.
pub struct NewRun {
    pub workflow: Workflow,
    pub workflow_file: String,
    pub incident: Incident,
    /// Step id -> component location.
    pub components: BTreeMap<String, String>,
    pub drill: bool,
}

/// The executor. Cheap to clone-by-Arc; drives any number of runs concurrently.
pub struct Engine {
    store: Arc<dyn Store>,
    runner: Arc<dyn StepRunner>,
    clock: Arc<dyn Clock>,
    secrets: Arc<dyn SecretSource>,
    entropy: Arc<dyn Entropy>,
    defaults: ResolvedLimits,
    observer: Option<Observer>,
    counter: AtomicU64,
    /// One per run being driven in this process: [`Engine::post`] wakes its driver.
    wakers: Mutex<HashMap<String, Arc<Notify>>>,
    /// Set by [`Engine::shut_down`]: drivers park their runs instead of starting work.
    shutdown: watch::Sender<bool>,
    /// Bounds the step attempts running at once (not runs: a run waiting on a gate or a
    /// retry timer holds no slot). `None`: unbounded.
    slots: Option<Arc<Semaphore>>,
    /// Attempts ready to start but waiting for a slot.
    waiting: AtomicU64,
    on_drive: Option<DriveHook>,
}

/// Called when a driver starts on an unfinished run, with the state folded from its
/// journal: what a restart finds (open gates, say) without reading the journal twice.
pub type DriveHook = Arc<dyn Fn(&RunState) + Send + Sync>;

impl Engine {
    pub fn new(
        store: Arc<dyn Store>,
        runner: Arc<dyn StepRunner>,
        clock: Arc<dyn Clock>,
        secrets: Arc<dyn SecretSource>,
    ) -> Self {
        Engine {
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
        }
    }

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

    /// At most this many step attempts run at once, across all runs.
    pub fn with_slots(mut self, slots: Arc<Semaphore>) -> Self {
        self.slots = Some(slots);
        self
    }

    /// Attempts ready to start that wait for a slot.
    pub fn waiting_for_slot(&self) -> u64 {
        self.waiting.load(Ordering::Relaxed)
    }

    /// Called after every durable journal append, e.g. to print progress.
    pub fn with_observer(mut self, observer: Observer) -> Self {
        self.observer = Some(observer);
        self
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Creates a run (durably) and returns its id. Does not start it: call [`Engine::drive`].
    pub fn create_run(&self, new: NewRun) -> Result<String, EngineError> {
        let now = self.clock.now_ms();
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let digest = Sha256::digest(format!(
            "{now}/{n}/{}/{}/{}",
            std::process::id(),
            new.workflow.name,
            new.incident.id
        ));
        // Time-prefixed so ids sort by creation; the hash part keeps them unique.
        let id = format!("{now:012x}-{}", &hex::encode(digest)[..8]);
        self.create_run_as(id, new)
    }

    /// Creates a run under a caller-chosen id (the service derives it from the incident,
    /// so processing the same alert twice cannot start two runs).
    pub fn create_run_as(&self, id: String, new: NewRun) -> Result<String, EngineError> {
        self.create(id, new, Durability::Flush)
    }

    /// [`Engine::create_run_as`] without waiting for the disk: the run becomes durable
    /// with the caller's next flushing write, and must not be driven before it. Lets the
    /// service create a batch of runs with one flush.
    pub fn create_run_as_lazy(&self, id: String, new: NewRun) -> Result<String, EngineError> {
        self.create(id, new, Durability::Lazy)
    }

    fn create(
        &self,
        id: String,
        new: NewRun,
        durability: Durability,
    ) -> Result<String, EngineError> {
        let now = self.clock.now_ms();
        let meta = RunMeta {
            id: id.clone(),
            workflow: new.workflow.name.clone(),
            incident_title: new.incident.title.clone(),
            status: RunStatus::Running,
            created_ms: now,
            updated_ms: now,
        };
        let first = crate::Entry {
            seq: 0,
            at_ms: now,
            event: Event::RunCreated(Box::new(crate::journal::RunCreated {
                workflow: new.workflow,
                workflow_file: new.workflow_file,
                incident: new.incident,
                components: new.components,
                drill: new.drill,
            })),
        };
        match durability {
            Durability::Flush => self.store.create_run(&meta, &first)?,
            Durability::Lazy => self.store.create_run_lazy(&meta, &first)?,
        }
        if let Some(o) = &self.observer {
            o(&id, &first);
        }
        Ok(id)
    }

    /// Posts a message for a run (a gate decision, an incident update), durably, and wakes
    /// its driver if it runs in this process. A driver elsewhere, or the next one to start,
    /// reads it from the store.
    pub fn post(&self, run: &str, message: &Message) -> Result<(), EngineError> {
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

    pub fn is_shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// Ids of runs that have not finished (to resume at start-up).
    pub fn unfinished_runs(&self) -> Result<Vec<String>, EngineError> {
        unfinished_runs(self.store.as_ref())
    }

    /// Drives a run until it finishes. Safe to call on a run that was interrupted at any
    /// point: it continues from the journal.
    pub async fn drive(&self, run_id: &str) -> Result<RunStatus, EngineError> {
        let meta = self
            .store
            .run(run_id)?
            .ok_or_else(|| StoreError::NoSuchRun(run_id.to_string()))?;
        let entries = self.store.entries(run_id)?;
        let mut state = RunState::fold(run_id, &entries)?;
        let journal = Arc::new(RunJournal::new(
            self.store.clone(),
            self.clock.clone(),
            self.observer.clone(),
            meta,
            state.next_seq,
        ));
        if state.is_finished() {
            return Ok(state.status);
        }
        if let Some(hook) = &self.on_drive {
            hook(&state);
        }
        let waker = Waker::register(&self.wakers, run_id);
        let mut stop = self.shutdown.subscribe();
        loop {
            if *stop.borrow_and_update() {
                return Ok(RunStatus::Running);
            }
            self.read_mailbox(&mut state, &journal)?;
            let now = self.clock.now_ms();
            let event = match state.next(now) {
                Next::Finish { status, reason } => {
                    journal.append(Event::RunFinished { status, reason })?;
                    apply(&mut state, &journal)?;
                    return Ok(journal.status());
                }
                Next::Wait { until_ms } => {
                    self.wait(until_ms, &waker.notify, &mut stop).await;
                    continue;
                }
                Next::Gate { deadline_ms, .. } if now < deadline_ms => {
                    self.wait(deadline_ms, &waker.notify, &mut stop).await;
                    continue;
                }
                Next::Gate { step, .. } => crate::gates::decided_by_deadline(&state, step),
                Next::Skip { step, reason } => Event::StepSkipped { step, reason },
                Next::Cancel { step, reason } => Event::StepCancelled { step, reason },
                Next::Begin { step } => match self.condition(&state, &step) {
                    Ok(true) if state.workflow.step(&step).is_some_and(|s| s.is_gate()) => {
                        crate::gates::open(&state, &step, now)
                    }
                    Ok(true) => {
                        let Some(_slot) = self.slot(&mut stop).await else {
                            return Ok(RunStatus::Running);
                        };
                        self.attempt(&state, &journal, &step, 1).await?
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
                    let Some(_slot) = self.slot(&mut stop).await else {
                        return Ok(RunStatus::Running);
                    };
                    self.attempt(&state, &journal, &step, attempt).await?
                }
            };
            journal.append(event)?;
            apply(&mut state, &journal)?;
        }
    }

    /// A slot for one attempt (`Some(None)` when unbounded), or `None` when shutdown
    /// began while waiting for it.
    async fn slot(
        &self,
        stop: &mut watch::Receiver<bool>,
    ) -> Option<Option<tokio::sync::OwnedSemaphorePermit>> {
        let Some(slots) = &self.slots else {
            return Some(None);
        };
        self.waiting.fetch_add(1, Ordering::Relaxed);
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => p.ok(),
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
    fn read_mailbox(&self, state: &mut RunState, journal: &RunJournal) -> Result<(), EngineError> {
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
        let Some(cond) = state.workflow.step(step).and_then(|s| s.condition.as_ref()) else {
            return Ok(true);
        };
        expr::eval_condition(cond, &state.context()).map_err(|e| format!("if: {e}"))
    }

    /// Runs one attempt. Appends `attempt_started` itself (and the host calls happen
    /// through the journal); returns the closing event for the caller to append.
    async fn attempt(
        &self,
        state: &RunState,
        journal: &Arc<RunJournal>,
        step_id: &str,
        attempt: u32,
    ) -> Result<Event, EngineError> {
        let step = state
            .workflow
            .step(step_id)
            .expect("next() only names workflow steps")
            .clone();
        let fail = |failure: Failure, duration_ms| Event::AttemptFailed {
            step: step_id.to_string(),
            attempt,
            failure,
            duration_ms,
            retry: None,
        };
        let params = match template::render(&step.with, &state.context()) {
            Ok(p) => p,
            Err(e) => {
                let f = Failure::new(FailureKind::Template, false, format!("with: {e}"));
                return Ok(fail(f, 0));
            }
        };
        let idempotency_key = idempotency_key(&state.id, step_id);
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
        });
        let started_ms = if resumed {
            s.started_ms
        } else {
            // Params are journalled redacted; the step still gets them as rendered.
            journal
                .append(Event::AttemptStarted {
                    step: step_id.to_string(),
                    attempt,
                    idempotency_key: idempotency_key.clone(),
                    params: host.redactor().json(&params),
                })?
                .at_ms
        };
        let request = AttemptRequest {
            component: state
                .components
                .get(step_id)
                .cloned()
                .unwrap_or(step.uses.clone()),
            invocation: Invocation {
                run_id: state.id.clone(),
                step_id: step_id.to_string(),
                attempt,
                idempotency_key,
                phase: step.phase,
                incident: state.incident.clone(),
                params: params.to_string(),
                drill: state.drill,
            },
            grants: Grants {
                secrets: step.secrets.clone(),
                allow: step.allow.clone(),
            },
            limits: ResolvedLimits {
                memory_bytes: step
                    .limits
                    .memory_bytes
                    .unwrap_or(self.defaults.memory_bytes),
                timeout_ms: step.timeout_ms.unwrap_or(self.defaults.timeout_ms),
                output_bytes: step
                    .limits
                    .output_bytes
                    .unwrap_or(self.defaults.output_bytes),
            },
        };
        let mut request = request;
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
                return Ok(self.decide(&step, attempt, f, None, spent));
            }
            request.limits.timeout_ms -= spent;
        }
        let result = self.runner.run(request, host.clone()).await;
        let now = self.clock.now_ms();
        let duration_ms = now.saturating_sub(started_ms);
        match host.fatal() {
            Some(HostError::Store(message)) => {
                return Err(EngineError::JournalLost {
                    run: state.id.clone(),
                    step: step_id.to_string(),
                    message,
                });
            }
            Some(e @ HostError::Nondeterminism { .. }) => {
                return Ok(fail(
                    Failure::new(e.kind(), false, e.to_string()),
                    duration_ms,
                ));
            }
            None => {}
        }
        let redact = host.redactor();
        // A grant violation fails the attempt whatever the step made of the refusal:
        // guests see denials as vague client errors, the host knows exactly what happened.
        let violations = host.violations();
        let (failure, delay) = match result {
            _ if !violations.is_empty() => (
                Failure::new(FailureKind::StepError, false, violations.join("; ")),
                None,
            ),
            AttemptResult::Done(output) => {
                return Ok(Event::AttemptSucceeded {
                    step: step_id.to_string(),
                    attempt,
                    output: redact.json(&output),
                    duration_ms,
                });
            }
            AttemptResult::RetryAfter { ms, reason } => (
                Failure::new(FailureKind::NotReady, true, redact.text(&reason)),
                Some(ms),
            ),
            AttemptResult::Failed(mut f) => {
                f.message = redact.text(&f.message);
                (f, None)
            }
        };
        Ok(self.decide(&step, attempt, failure, delay, duration_ms))
    }

    /// A failed attempt's record, with the retry decision made by the step's policy.
    fn decide(
        &self,
        step: &medic_model::Step,
        attempt: u32,
        failure: Failure,
        delay: Option<u64>,
        duration_ms: u64,
    ) -> Event {
        let now = self.clock.now_ms();
        let retry = (failure.retryable && attempt < step.retry.attempts).then(|| RetryPlan {
            attempt: attempt + 1,
            not_before_ms: now + delay.unwrap_or_else(|| step.retry.delay_before(attempt + 1)),
        });
        Event::AttemptFailed {
            step: step.id.clone(),
            attempt,
            failure,
            duration_ms,
            retry,
        }
    }
}

fn apply(state: &mut RunState, journal: &RunJournal) -> Result<(), StateError> {
    for e in journal.take_unapplied() {
        state.apply(&e)?;
    }
    Ok(())
}

/// Ids of the runs in `store` that have not finished.
pub fn unfinished_runs(store: &dyn Store) -> Result<Vec<String>, EngineError> {
    Ok(store
        .runs()?
        .into_iter()
        .filter(|m| m.status == RunStatus::Running)
        .map(|m| m.id)
        .collect())
}

/// The same for every attempt of a step in a run, across retries and restarts.
pub fn idempotency_key(run_id: &str, step_id: &str) -> String {
    hex::encode(&Sha256::digest(format!("medic/{run_id}/{step_id}"))[..16])
}

/// A run's entry in [`Engine`]'s wakers while it is driven; removed on drop.
struct Waker<'a> {
    wakers: &'a Mutex<HashMap<String, Arc<Notify>>>,
    run: String,
    notify: Arc<Notify>,
}

impl<'a> Waker<'a> {
    fn register(wakers: &'a Mutex<HashMap<String, Arc<Notify>>>, run: &str) -> Self {
        let notify = Arc::new(Notify::new());
        wakers
            .lock()
            .expect("wakers lock")
            .insert(run.to_string(), notify.clone());
        Waker {
            wakers,
            run: run.to_string(),
            notify,
        }
    }
}

impl Drop for Waker<'_> {
    fn drop(&mut self) {
        let mut wakers = self.wakers.lock().expect("wakers lock");
        // Only our own entry: a second driver of the same run may have replaced it.
        if wakers
            .get(&self.run)
            .is_some_and(|n| Arc::ptr_eq(n, &self.notify))
        {
            wakers.remove(&self.run);
        }
    }
}
