//! Running a drill: today's workflow, the recorded alert and inputs, a virtual clock,
//! and every request answered from the recording (or a fault) through the journal's
//! chokepoint. Optionally a crash at journal write N, then a resume, as medic would.

use crate::clock::DrillClock;
use crate::crash::CrashStore;
use crate::faults::Fault;
use crate::format::{DrillFile, IncidentUpdate, Offset};
use crate::live::Inbox;
use crate::responder::{Oracle, Responder};
use medic_core::{
    Clock, Durability, Entry, Event, Executor, HostCall, JournalStore, MemoryStore, Message,
    NewRun, Observer, RunMeta, SecretSource, StaticSecrets, StepRunner, SystemClock,
};
use medic_model::{Decision, Workflow};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The workflow a drill runs, with its components resolved by the caller.
#[derive(Debug, Clone)]
pub struct Setup {
    /// The workflow, parsed.
    pub workflow: Workflow,
    /// Where it came from, for the report.
    pub workflow_file: String,
    /// Step id -> component location.
    pub components: BTreeMap<String, String>,
}

/// What a gate gets in the drill instead of its recorded decision.
#[derive(Debug, Clone, PartialEq)]
pub struct DecideOverride {
    /// The gate step's id.
    pub step: String,
    /// `None`: nobody answers; the gate's deadline decides.
    pub decision: Option<Decision>,
    /// How long after the gate opens.
    pub after: Offset,
}

impl DecideOverride {
    /// Parses `STEP=approve|reject|deadline[@OFFSET]` (`--decide`).
    ///
    /// # Errors
    /// A sentence saying what is wrong with `spec`.
    pub fn parse(spec: &str) -> Result<DecideOverride, String> {
        let usage = "write STEP=approve|reject|deadline[@OFFSET], e.g. resume-rollouts=reject@5m";
        let (step, rest) = spec
            .split_once('=')
            .ok_or_else(|| format!("--decide {spec}: {usage}"))?;
        let (what, after) = match rest.split_once('@') {
            Some((w, a)) => (
                w,
                Offset::parse(a)
                    .ok_or_else(|| format!("--decide {spec}: `{a}` is not a duration; {usage}"))?,
            ),
            None => (rest, Offset(0)),
        };
        let decision =
            match what {
                "deadline" => None,
                other => Some(Decision::parse(other).ok_or_else(|| {
                    format!("--decide {spec}: `{other}` is not a decision; {usage}")
                })?),
            };
        Ok(DecideOverride {
            step: step.trim().to_string(),
            decision,
            after,
        })
    }
}

/// How to run a drill beyond what its file says.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Gate decisions that replace the recorded ones (from the fork point on).
    pub decide: Vec<DecideOverride>,
    /// Faults on top of the file's (from the fork point on).
    pub faults: Vec<Fault>,
    /// Incident status changes on top of the recorded ones.
    pub incident_updates: Vec<IncidentUpdate>,
    /// Send requests to the real services (a game day against staging).
    pub live: bool,
    /// Stop the engine at this journal write (1 = the run's creation), then resume.
    pub crash_at: Option<u64>,
    /// The fork point: recorded decisions and no extra faults before it.
    pub from: Offset,
    /// Pace virtual time at N× real time.
    pub speed: Option<f64>,
    /// A game day: with `speed`, the folder (medic's `<data>/`[`crate::live::LIVE_DIR`])
    /// through which people decide the drill's gates (`medic approve`, see
    /// [`crate::live`]). Recorded decisions are then not replayed: each gate waits for a
    /// person until its virtual deadline; [`Options::decide`] overrides still apply.
    pub people: Option<std::path::PathBuf>,
}

/// What the caller provides: how steps run, and where finished drill runs are kept.
#[derive(Clone)]
pub struct Env {
    /// Where the finished drill run's journal is copied, marked as a drill (`medic runs`
    /// lists it). `None`: not kept. The drill itself runs in memory under the recorded
    /// run's id, so idempotency keys (and everything steps derive from them, such as
    /// Matrix transaction ids) are the recorded ones.
    pub store: Option<Arc<dyn JournalStore>>,
    /// Runs step attempts (the sandbox).
    pub runner: Arc<dyn StepRunner>,
    /// Secret values for `--live`; `None`: placeholders (nothing real is reached anyway).
    pub secrets: Option<Arc<dyn SecretSource>>,
    /// Sees every journal entry of the drill run (live timeline), under the id the run
    /// is kept as ([`Replay::kept_as`]; the id it runs under when it is not kept).
    pub observer: Option<Observer>,
}

/// A finished (or stopped) drill run.
#[derive(Debug, Clone)]
pub struct Replay {
    /// The id the drill ran under (the recorded run's).
    pub run_id: String,
    /// The id of the copy kept in [`Env::store`].
    pub kept_as: Option<String>,
    /// The drill run's whole journal, in virtual time.
    pub entries: Vec<Entry>,
    /// The journal write the engine was stopped at, when a crash was asked for and hit.
    pub crashed_at: Option<u64>,
}

/// Why a drill could not be run (not: the drill did not restore — that is a report).
#[derive(Debug, thiserror::Error)]
pub enum DrillError {
    #[error(transparent)]
    /// The engine stopped (other than the crash asked for).
    Executor(#[from] medic_core::ExecutorError),
    #[error(transparent)]
    /// The store failed.
    Store(#[from] medic_core::StoreError),
    #[error("drill: {0}")]
    /// Anything else, in words.
    Other(String),
}

/// Runs `drill` with `setup`'s workflow.
///
/// # Errors
/// The store failed (other than the crash asked for), or posting a scheduled input failed.
pub async fn run(
    drill: &DrillFile,
    setup: &Setup,
    opts: &Options,
    env: &Env,
) -> Result<Replay, DrillError> {
    let memory: Arc<dyn JournalStore> = Arc::new(MemoryStore::new());
    let crash = Arc::new(CrashStore::new(memory.clone(), opts.crash_at));
    let store: Arc<dyn JournalStore> = crash.clone();
    let id = drill.recorded_from.clone().unwrap_or_else(|| {
        let digest = Sha256::digest(drill.name.as_bytes());
        format!("drill-{}", &hex::encode(digest)[..12])
    });
    // The id the run is kept as is chosen now, so people (and the live timeline) know the
    // drill by it while it runs.
    let kept_id = env.store.as_ref().map(|_| copy_id(&id));
    let shown_as = kept_id.clone().unwrap_or_else(|| id.clone());
    let inbox = match (&opts.people, opts.speed) {
        (Some(root), Some(_)) => Some(Arc::new(
            Inbox::open(root, &shown_as, &drill.name)
                .map_err(|e| DrillError::Other(format!("cannot create {}: {e}", root.display())))?,
        )),
        _ => None,
    };
    let live = Live { shown_as, inbox };
    let (engine, clock) = engine(
        drill,
        setup,
        opts,
        env,
        store.clone(),
        drill.started_at_ms,
        None,
        &live,
    );
    engine.create_run_as(
        id.clone(),
        NewRun {
            workflow: setup.workflow.clone(),
            workflow_file: setup.workflow_file.clone(),
            incident: drill.incident.clone(),
            components: setup.components.clone(),
            drill: true,
        },
    )?;
    clock.attach(store.clone(), &id);
    schedule_updates(drill, opts, &clock, 0);
    let first = engine.drive(&id).await;
    let crashed_at = crash.crashed();
    match (first, crashed_at) {
        (Ok(_), None) => {
            if let Some(e) = clock.take_error() {
                return Err(DrillError::Other(format!("posting a scheduled input: {e}")));
            }
        }
        (Err(e), None) => return Err(e.into()),
        // The crash we asked for: resume as `medic resume` would, with a fresh engine.
        (_, Some(_)) => resume(drill, setup, opts, env, &memory, &id, &live).await?,
    }
    drop(live);
    let entries = memory.entries(&id)?;
    let kept_as = match (&env.store, kept_id) {
        (Some(keep), Some(copy)) => Some(keep_copy(keep.as_ref(), copy, &entries, setup, drill)?),
        _ => None,
    };
    Ok(Replay {
        entries,
        run_id: id,
        kept_as,
        crashed_at,
    })
}

/// How people know a running drill: the id it is kept as, and where their decisions
/// arrive (a paced drill).
struct Live {
    shown_as: String,
    inbox: Option<Arc<Inbox>>,
}

/// A new id for the kept copy of drill run `id` (time first, so it sorts with the other
/// runs).
fn copy_id(id: &str) -> String {
    let now = SystemClock.now_ms();
    let digest = Sha256::digest(format!("{id}/{now}/{}", std::process::id()));
    format!("{now:012x}-drill-{}", &hex::encode(digest)[..6])
}

/// Copies a finished drill run's journal into the caller's store under `copy`, as a drill.
fn keep_copy(
    store: &dyn JournalStore,
    copy: String,
    entries: &[Entry],
    setup: &Setup,
    drill: &DrillFile,
) -> Result<String, DrillError> {
    let now = SystemClock.now_ms();
    let status = entries
        .iter()
        .rev()
        .find_map(|e| match &e.event {
            Event::RunFinished { status, .. } => Some(*status),
            _ => None,
        })
        .unwrap_or(medic_core::RunStatus::Running);
    // The copy's index record carries its final status from the first write: a copy
    // left half-written by a crash must never look unfinished, or a real engine resuming
    // its store would drive a drill with real providers.
    let finished_status = match status {
        medic_core::RunStatus::Running => medic_core::RunStatus::Failed,
        s => s,
    };
    let meta = RunMeta {
        id: copy.clone(),
        workflow: setup.workflow.name.clone(),
        incident_title: format!("[drill] {}", drill.incident.title),
        status: finished_status,
        created_ms: now,
        updated_ms: now,
    };
    let Some((first, rest)) = entries.split_first() else {
        return Err(DrillError::Other("the drill run has no journal".into()));
    };
    store.create_run(&meta, first)?;
    for (i, e) in rest.iter().enumerate() {
        let last = i + 1 == rest.len();
        let finished = meta.clone();
        store.append(
            &copy,
            e,
            last.then_some(&finished),
            if last {
                Durability::Flush
            } else {
                Durability::Lazy
            },
        )?;
    }
    Ok(copy)
}

async fn resume(
    drill: &DrillFile,
    setup: &Setup,
    opts: &Options,
    env: &Env,
    store: &Arc<dyn JournalStore>,
    id: &str,
    live: &Live,
) -> Result<(), DrillError> {
    let entries = store.entries(id)?;
    // The restart happens at the instant of the last record, and every input after it is
    // posted again at its own instant, so the resumed run sees exactly what a run without
    // the crash saw: the crash changes where medic stopped, not what happened.
    let last = entries
        .last()
        .map(|e| e.at_ms)
        .unwrap_or(drill.started_at_ms);
    for (message, _) in store.mailbox(id)? {
        store.ack(id, message)?;
    }
    let (engine, clock) = engine(
        drill,
        setup,
        opts,
        env,
        store.clone(),
        last,
        Some(&entries),
        live,
    );
    clock.attach(store.clone(), id);
    schedule_updates(
        drill,
        opts,
        &clock,
        last.saturating_sub(drill.started_at_ms),
    );
    let mut open: BTreeMap<String, (u64, Vec<String>)> = BTreeMap::new();
    for e in &entries {
        match &e.event {
            Event::GateOpened {
                step, approvers, ..
            } => {
                open.insert(step.clone(), (e.at_ms, approvers.clone()));
            }
            Event::GateDecided { step, .. } => {
                open.remove(step);
            }
            _ => {}
        }
    }
    for (step, (at, approvers)) in open {
        schedule_decision(drill, opts, &clock, &step, at, &approvers);
    }
    engine.drive(id).await?;
    if let Some(e) = clock.take_error() {
        return Err(DrillError::Other(format!("posting a scheduled input: {e}")));
    }
    Ok(())
}

/// An engine on the virtual clock with the drill's responder; `journal` (when resuming)
/// is fed to the responder so its answers carry on where they stopped.
#[expect(
    clippy::too_many_arguments,
    reason = "one private constructor for the first start and the resume"
)]
fn engine(
    drill: &DrillFile,
    setup: &Setup,
    opts: &Options,
    env: &Env,
    store: Arc<dyn JournalStore>,
    now_ms: u64,
    journal: Option<&[Entry]>,
    live: &Live,
) -> (Executor, Arc<DrillClock>) {
    let clock = Arc::new(DrillClock::new(now_ms, opts.speed));
    if let Some(inbox) = &live.inbox {
        clock.people(inbox.clone());
    }
    let oracle = Oracle::new(drill, &opts.faults, opts.from);
    let timeouts = setup
        .workflow
        .steps
        .iter()
        .map(|s| (s.id.clone(), s.timeout_ms.unwrap_or(30_000)))
        .collect();
    let responder = Arc::new(Responder::new(oracle, clock.clone(), timeouts, opts.live));
    // Where the replay stops following the recording's clock: an incident update it did
    // not have, a gate decided otherwise (below, as gates open).
    for u in &opts.incident_updates {
        responder.depart(drill.started_at_ms + u.at.ms());
    }
    if let Some(entries) = journal {
        feed(&responder, entries);
        for e in entries {
            if let Event::GateOpened { step, .. } = &e.event
                && gate_departs(drill, opts, step, e.at_ms)
            {
                responder.depart(e.at_ms);
            }
        }
    }
    let secrets: Arc<dyn SecretSource> = match &env.secrets {
        Some(s) => s.clone(),
        None => Arc::new(placeholder_secrets(&setup.workflow)),
    };
    let observer: Observer = {
        let clock = clock.clone();
        let drill = drill.clone();
        let opts = opts.clone();
        let user = env.observer.clone();
        let shown_as = live.shown_as.clone();
        let responder = responder.clone();
        Arc::new(move |meta: &RunMeta, entry: &Entry| {
            if let Event::GateOpened {
                step, approvers, ..
            } = &entry.event
            {
                schedule_decision(&drill, &opts, &clock, step, entry.at_ms, approvers);
                if gate_departs(&drill, &opts, step, entry.at_ms) {
                    responder.depart(entry.at_ms);
                }
            }
            if let Some(o) = &user {
                // Shown by the id people address the drill run by (its kept id).
                let shown = RunMeta {
                    id: shown_as.clone(),
                    ..meta.clone()
                };
                o(&shown, entry);
            }
        })
    };
    // `run.*` as in production, from the drill run's journal in virtual time: a follow-up
    // that posts its time to mitigate and postmortem link sends what it sent then.
    let external_url = drill.external_url.clone();
    let engine = Executor::new(store, env.runner.clone(), clock.clone(), secrets)
        .with_observer(observer)
        .with_responder(responder)
        .with_run_context(Arc::new(move |run, entries| {
            medic_postmortem::run_context(run, entries, external_url.as_deref())
        }));
    (engine, clock)
}

/// Answered requests of a journal, in order, into the responder.
fn feed(responder: &Responder, entries: &[Entry]) {
    let answered: std::collections::HashSet<(String, u32, u32)> = entries
        .iter()
        .filter_map(|e| match &e.event {
            Event::HostCall {
                step,
                attempt,
                call: HostCall::HttpResponse { id, .. },
            } => Some((step.clone(), *attempt, *id)),
            _ => None,
        })
        .collect();
    for e in entries {
        if let Event::HostCall {
            step,
            attempt,
            call: call @ HostCall::HttpRequest { id, .. },
        } = &e.event
            && answered.contains(&(step.clone(), *attempt, *id))
        {
            responder.replayed(step, *attempt, call, e.at_ms);
        }
    }
}

/// Each secret a step is granted, as a placeholder value: what the replay's journal
/// redacts to the same `[redacted:NAME]` the recording has.
fn placeholder_secrets(workflow: &Workflow) -> StaticSecrets {
    StaticSecrets(
        workflow
            .steps
            .iter()
            .flat_map(|s| s.secrets.iter())
            .map(|n| (n.clone(), format!("drill-placeholder-{n}")))
            .collect(),
    )
}

/// Recorded and extra incident updates due at or after `from_offset`.
fn schedule_updates(drill: &DrillFile, opts: &Options, clock: &DrillClock, from_offset: u64) {
    for u in drill.incident_updates.iter().chain(&opts.incident_updates) {
        if u.at.ms() >= from_offset {
            clock.schedule(
                drill.started_at_ms + u.at.ms(),
                Message::IncidentUpdate { status: u.status },
            );
        }
    }
}

/// Whether the gate `step`, opened at `opened_ms`, is decided otherwise than recorded (an
/// override from the fork point on, or people in a game day): from then on the replay
/// runs on its own time.
fn gate_departs(drill: &DrillFile, opts: &Options, step: &str, opened_ms: u64) -> bool {
    let fork_ms = drill.started_at_ms + opts.from.ms();
    let recorded = drill.decisions.iter().find(|d| d.step == step);
    let forked = recorded.is_none_or(|d| opened_ms + d.after.ms() >= fork_ms);
    let people = opts.people.is_some() && opts.speed.is_some();
    forked && (people || opts.decide.iter().any(|d| d.step == step))
}

/// The decision for the gate `step` that opened at `opened_ms`: an override when the
/// recorded decision had not been made yet at the fork point (it is then made no earlier
/// than the fork), else the recorded one, else none (the deadline decides).
fn schedule_decision(
    drill: &DrillFile,
    opts: &Options,
    clock: &DrillClock,
    step: &str,
    opened_ms: u64,
    approvers: &[String],
) {
    let fork_ms = drill.started_at_ms + opts.from.ms();
    let recorded = drill.decisions.iter().find(|d| d.step == step);
    let recorded_ms = recorded.map(|d| opened_ms + d.after.ms());
    let forked = recorded_ms.is_none_or(|at| at >= fork_ms);
    let by = approvers.first().cloned().unwrap_or_else(|| "drill".into());
    let plan = match opts
        .decide
        .iter()
        .find(|d| d.step == step)
        .filter(|_| forked)
    {
        Some(o) => o.decision.map(|d| {
            let at = (opened_ms + o.after.ms()).max(fork_ms);
            (d, at, by, Some("decided in the drill".to_string()))
        }),
        // A game day: people decide, not the recording.
        None if forked && opts.people.is_some() && opts.speed.is_some() => None,
        None => recorded.map(|d| {
            (
                d.decision,
                opened_ms + d.after.ms(),
                d.by.clone(),
                d.comment.clone(),
            )
        }),
    };
    if let Some((decision, at, by, comment)) = plan {
        clock.schedule(
            at,
            Message::GateDecision {
                step: step.to_string(),
                decision,
                by,
                comment,
            },
        );
    }
}
