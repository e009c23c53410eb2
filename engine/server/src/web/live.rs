//! What the web view learns as the journal grows: one broadcast message per journal
//! append (the pages' Server-Sent Events), the waiting gates across runs (the approvals
//! page), and the run index (`index`). Fed by the engine's observer and drive hook, so
//! nothing here reads a journal to find out what changed.

use super::index;
use super::session::Session;
use crate::Service;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, Stream};
use medic_core::{Entry, Event, JournalStore, RunMeta, RunState};
use medic_model::Decision;
use medic_store::SledStore;
use serde::Deserialize;
use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::broadcast;

/// How often an idle stream sends a comment, so proxies and browsers keep it open
/// (nginx closes an idle upstream after 60 s by default).
const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// Appends a slow page may fall behind by before it is told to re-read the run.
const BACKLOG: usize = 4096;

/// One journal append, as pages hear of it.
#[derive(Debug, Clone)]
pub(crate) struct Append {
    pub run: Arc<str>,
    pub seq: u64,
    pub kind: &'static str,
}

/// A gate waiting for people, for the approvals page.
#[derive(Debug, Clone)]
pub(crate) struct WaitingGate {
    pub run: String,
    pub step: String,
    pub workflow: String,
    pub incident_title: String,
    pub prompt: String,
    pub approvers: Vec<String>,
    pub deadline_ms: u64,
    pub on_deadline: Decision,
}

/// The gates waiting for people, by run. A run parked at a gate keeps only this here, for
/// as long as it waits, so it is kept small: one entry per run (the run id once, text as
/// boxed `str`s with no spare capacity), about 0.25 KiB for a one-gate run instead of the
/// 0.4 KiB a map of [`WaitingGate`]s by (run, step) took (docs/performance.md). A finished
/// run's gates go in one removal, not a walk over every waiting gate.
#[derive(Default)]
struct Waiting(HashMap<Arc<str>, RunGates>);

/// One run's open gates (nearly always one) and what the approvals page shows of the run.
struct RunGates {
    workflow: Box<str>,
    incident_title: Box<str>,
    open: Vec<OpenGate>,
}

/// One open gate of a run.
struct OpenGate {
    step: Box<str>,
    prompt: Box<str>,
    approvers: Box<[String]>,
    deadline_ms: u64,
    on_deadline: Decision,
}

impl Waiting {
    /// Keeps `gate` as open in `run` (in place of an earlier opening of the same step).
    fn open(&mut self, run: &str, workflow: &str, incident_title: &str, gate: OpenGate) {
        match self.0.get_mut(run) {
            Some(r) => {
                r.open.retain(|g| g.step != gate.step);
                r.open.push(gate);
            }
            None => {
                let r = RunGates {
                    workflow: workflow.into(),
                    incident_title: incident_title.into(),
                    // `vec!` allocates room for exactly one; a push would take four.
                    open: vec![gate],
                };
                self.0.insert(run.into(), r);
            }
        }
    }

    /// The gate `step` of `run` is no longer waiting.
    fn close(&mut self, run: &str, step: &str) {
        if let Some(r) = self.0.get_mut(run) {
            r.open.retain(|g| &*g.step != step);
            if r.open.is_empty() {
                self.0.remove(run);
            }
        }
    }

    /// `run` finished: none of its gates waits.
    fn finished(&mut self, run: &str) {
        self.0.remove(run);
    }

    /// Every waiting gate, in no order.
    fn list(&self) -> Vec<WaitingGate> {
        self.0
            .iter()
            .flat_map(|(run, r)| {
                r.open.iter().map(move |g| WaitingGate {
                    run: run.to_string(),
                    step: g.step.to_string(),
                    workflow: r.workflow.to_string(),
                    incident_title: r.incident_title.to_string(),
                    prompt: g.prompt.to_string(),
                    approvers: g.approvers.to_vec(),
                    deadline_ms: g.deadline_ms,
                    on_deadline: g.on_deadline,
                })
            })
            .collect()
    }
}

/// The web view's live state, shared with the engine's hooks.
pub(crate) struct Live {
    tx: broadcast::Sender<Append>,
    gates: Mutex<Waiting>,
    /// Whether the index backfill ran in this process.
    indexed: Mutex<bool>,
    /// One drill replayed from the web view at a time: a replay runs real components in
    /// this process, and the runs of real incidents come first.
    pub(crate) drills: tokio::sync::Semaphore,
    /// The runs last shown on run pages, kept up to date by reading only new entries.
    pub(crate) runs: super::cache::RunCache,
}

impl Live {
    pub(crate) fn new() -> Live {
        Live {
            tx: broadcast::channel(BACKLOG).0,
            gates: Mutex::default(),
            indexed: Mutex::new(false),
            drills: tokio::sync::Semaphore::new(1),
            runs: super::cache::RunCache::default(),
        }
    }

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Append> {
        self.tx.subscribe()
    }

    /// Called for every journal append (after it is written): indexes new runs, keeps
    /// the waiting gates, and tells connected pages.
    pub(crate) fn observe(&self, meta: &RunMeta, entry: &Entry) {
        let run = meta.id.as_str();
        match &entry.event {
            // Indexed by whoever created the run, with it: the inbox processor writes the
            // index record in the run's own batch, drills write theirs (`drill.rs`), and
            // a run indexed by neither is added by the backfill at start.
            Event::RunCreated(_) => {}
            Event::GateOpened {
                step,
                prompt,
                approvers,
                deadline_ms,
                on_deadline,
            } => {
                self.gates_lock().open(
                    run,
                    &meta.workflow,
                    &meta.incident_title,
                    OpenGate {
                        step: step.as_str().into(),
                        prompt: prompt.as_str().into(),
                        approvers: approvers.as_slice().into(),
                        deadline_ms: *deadline_ms,
                        on_deadline: *on_deadline,
                    },
                );
            }
            Event::GateDecided { step, .. }
            | Event::StepSkipped { step, .. }
            | Event::StepCancelled { step, .. } => {
                self.gates_lock().close(run, step);
            }
            Event::RunFinished { .. } => self.gates_lock().finished(run),
            _ => {}
        }
        // No page listening is the common case, not an error.
        let _ = self.tx.send(Append {
            run: run.into(),
            seq: entry.seq,
            kind: kind(&entry.event),
        });
    }

    /// Called when a driver starts on an unfinished run: the gates it finds open were
    /// opened before a restart.
    pub(crate) fn resumed(&self, state: &RunState) {
        let mut gates = self.gates_lock();
        for step in state.steps.keys() {
            if let Some(g) = state.open_gate(step) {
                gates.open(
                    &state.id,
                    &state.workflow.name,
                    &state.incident.title,
                    OpenGate {
                        step: step.as_str().into(),
                        prompt: g.prompt.as_str().into(),
                        approvers: g.approvers.as_slice().into(),
                        deadline_ms: g.deadline_ms,
                        on_deadline: g.on_deadline,
                    },
                );
            }
        }
    }

    /// Runs the index backfill once per process, before the first list is read.
    pub(crate) fn ensure_indexed(&self, store: &SledStore) -> Result<(), medic_core::StoreError> {
        let mut done = self.indexed.lock().unwrap_or_else(PoisonError::into_inner);
        if !*done {
            index::backfill(store)?;
            *done = true;
        }
        Ok(())
    }

    /// Every waiting gate, soonest deadline first.
    pub(crate) fn waiting_gates(&self) -> Vec<WaitingGate> {
        let mut out = self.gates_lock().list();
        out.sort_by(|a, b| (a.deadline_ms, &a.run, &a.step).cmp(&(b.deadline_ms, &b.run, &b.step)));
        out
    }

    fn gates_lock(&self) -> std::sync::MutexGuard<'_, Waiting> {
        // Plain map updates cannot leave it half-changed.
        self.gates.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The journal event's type, as the encoded journal names it.
fn kind(e: &Event) -> &'static str {
    match e {
        Event::RunCreated(_) => "run_created",
        Event::StepSkipped { .. } => "step_skipped",
        Event::StepCancelled { .. } => "step_cancelled",
        Event::AttemptStarted { .. } => "attempt_started",
        Event::HostCall { .. } => "host_call",
        Event::AttemptSucceeded { .. } => "attempt_succeeded",
        Event::AttemptFailed { .. } => "attempt_failed",
        Event::GateOpened { .. } => "gate_opened",
        Event::GateDecided { .. } => "gate_decided",
        Event::IncidentUpdated { .. } => "incident_updated",
        Event::RunFinished { .. } => "run_finished",
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct After {
    /// The last sequence number the page already shows.
    after: Option<u64>,
}

/// Where a stream starts: `Last-Event-ID` (the browser's own reconnect) wins over the
/// page's `?after=`.
fn resume_point(headers: &HeaderMap, after: Option<u64>) -> Option<u64> {
    headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
        .or(after)
}

/// The SSE response headers: no caching, and no buffering by nginx-style proxies (the
/// reason live views silently stop behind them).
fn sse_response<S>(stream: S) -> Response
where
    S: Stream<Item = Result<SseEvent, Infallible>> + Send + 'static,
{
    let mut r = Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE).text("keep-alive"))
        .into_response();
    let h = r.headers_mut();
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

fn hello() -> SseEvent {
    // The page marks itself live on this, not on the connection opening: a buffering
    // proxy opens the connection but holds the events.
    SseEvent::default().event("hello").data("live")
}

/// `GET /ui/runs/{id}/events`: one `append` event per journal append of the run, with
/// the sequence number as its id. A page reconnecting with `Last-Event-ID: n` (or
/// opening with `?after=n`) first gets every append after `n` from the journal.
pub(crate) async fn run_events(
    State(svc): State<Arc<Service>>,
    _session: Session,
    Path(id): Path<String>,
    Query(q): Query<After>,
    headers: HeaderMap,
) -> Response {
    // Subscribe before reading the journal, so no append falls between the two.
    let rx = svc.web.subscribe();
    let from = resume_point(&headers, q.after);
    let mut backlog = VecDeque::new();
    let mut last = from;
    if let Some(after) = from {
        let worker = svc.clone();
        let run = id.clone();
        let entries = tokio::task::spawn_blocking(move || worker.store.entries(&run))
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default();
        for e in entries.iter().filter(|e| e.seq > after) {
            backlog.push_back(append_event(e.seq, kind(&e.event)));
            last = Some(e.seq);
        }
    }
    backlog.push_front(hello());
    let run: Arc<str> = id.into();
    let stream = stream::unfold(
        (backlog, rx, last, run),
        |(mut backlog, mut rx, mut last, run)| async move {
            if let Some(ev) = backlog.pop_front() {
                return Some((Ok(ev), (backlog, rx, last, run)));
            }
            loop {
                match rx.recv().await {
                    Ok(a) if a.run == run && last.is_none_or(|l| a.seq > l) => {
                        last = Some(a.seq);
                        let ev = append_event(a.seq, a.kind);
                        return Some((Ok(ev), (backlog, rx, last, run)));
                    }
                    Ok(_) => continue,
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        let ev = SseEvent::default().event("resync").data("lagged");
                        return Some((Ok(ev), (backlog, rx, last, run)));
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        },
    );
    sse_response(stream)
}

fn append_event(seq: u64, kind: &str) -> SseEvent {
    SseEvent::default()
        .event("append")
        .id(seq.to_string())
        .data(kind)
}

/// `GET /ui/events`: every append of every run (the runs and approvals pages refresh on
/// them). Ids are `<run>/<seq>`; a reconnecting page is told to re-read (`resync`).
pub(crate) async fn all_events(
    State(svc): State<Arc<Service>>,
    _session: Session,
    headers: HeaderMap,
) -> Response {
    let rx = svc.web.subscribe();
    let mut first = vec![hello()];
    if headers.contains_key("last-event-id") {
        first.push(SseEvent::default().event("resync").data("reconnected"));
    }
    let stream = stream::unfold((VecDeque::from(first), rx), |(mut q, mut rx)| async move {
        if let Some(ev) = q.pop_front() {
            return Some((Ok(ev), (q, rx)));
        }
        let ev = match rx.recv().await {
            Ok(a) => SseEvent::default()
                .event("append")
                .id(format!("{}/{}", a.run, a.seq))
                .data(&*a.run),
            Err(broadcast::error::RecvError::Lagged(_)) => {
                SseEvent::default().event("resync").data("lagged")
            }
            Err(broadcast::error::RecvError::Closed) => return None,
        };
        Some((Ok(ev), (q, rx)))
    });
    sse_response(stream)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_event_id_wins_over_the_pages_own_position() {
        let mut h = HeaderMap::new();
        assert_eq!(resume_point(&h, Some(4)), Some(4));
        h.insert("last-event-id", HeaderValue::from_static("9"));
        assert_eq!(resume_point(&h, Some(4)), Some(9));
        h.insert("last-event-id", HeaderValue::from_static("junk"));
        assert_eq!(resume_point(&h, None), None);
    }

    #[test]
    fn the_approvals_list_follows_the_journal() {
        let live = Live::new();
        let meta = RunMeta {
            id: "r1".into(),
            workflow: "wf".into(),
            incident_title: "Checkout down".into(),
            status: medic_core::RunStatus::Running,
            created_ms: 1,
            updated_ms: 1,
        };
        let at = |seq: u64, event: Event| Entry {
            seq,
            at_ms: seq,
            event,
        };
        let opened = |step: &str| Event::GateOpened {
            step: step.into(),
            prompt: "roll back?".into(),
            approvers: Vec::new(),
            deadline_ms: 99,
            on_deadline: Decision::Reject,
        };
        live.observe(&meta, &at(1, opened("a")));
        live.observe(&meta, &at(2, opened("b")));
        live.observe(&meta, &at(3, opened("c")));
        let steps = |live: &Live| -> Vec<String> {
            let mut s: Vec<_> = live.waiting_gates().into_iter().map(|g| g.step).collect();
            s.sort();
            s
        };
        assert_eq!(steps(&live), ["a", "b", "c"]);
        let g = &live.waiting_gates()[0];
        assert_eq!(
            (&*g.run, &*g.workflow, &*g.incident_title),
            ("r1", "wf", "Checkout down")
        );
        // A cancelled gate (the incident resolved, `on-resolved: cancel`) waits no more.
        let cancelled = Event::StepCancelled {
            step: "a".into(),
            reason: "resolved".into(),
        };
        live.observe(&meta, &at(4, cancelled));
        assert_eq!(steps(&live), ["b", "c"]);
        let skipped = Event::StepSkipped {
            step: "b".into(),
            reason: "r".into(),
        };
        live.observe(&meta, &at(5, skipped));
        assert_eq!(steps(&live), ["c"]);
        let finished = Event::RunFinished {
            status: medic_core::RunStatus::Cancelled,
            reason: None,
        };
        live.observe(&meta, &at(6, finished));
        assert!(live.waiting_gates().is_empty());
    }

    fn gate(step: &str, deadline_ms: u64) -> OpenGate {
        OpenGate {
            step: step.into(),
            prompt: format!("{step}?").into(),
            approvers: vec!["alice".to_string()].into(),
            deadline_ms,
            on_deadline: Decision::Reject,
        }
    }

    fn listed(w: &Waiting) -> Vec<(String, String, u64)> {
        let mut out: Vec<_> = w
            .list()
            .into_iter()
            .map(|g| (g.run, g.step, g.deadline_ms))
            .collect();
        out.sort();
        out
    }

    #[test]
    fn waiting_gates_are_kept_by_run_and_leave_when_decided_or_finished() {
        let mut w = Waiting::default();
        w.open("r1", "wf", "title", gate("a", 10));
        w.open("r1", "wf", "title", gate("b", 20));
        w.open("r2", "wf", "other", gate("a", 30));
        // The same step opened again (after a restart): one entry, the later one.
        w.open("r1", "wf", "title", gate("a", 11));
        assert_eq!(
            listed(&w),
            [("r1", "a", 11), ("r1", "b", 20), ("r2", "a", 30)].map(|(r, s, d)| (
                r.to_string(),
                s.to_string(),
                d
            ))
        );
        let one = w.list().into_iter().find(|g| g.run == "r2").unwrap();
        assert_eq!(
            (&*one.workflow, &*one.incident_title, &*one.prompt),
            ("wf", "other", "a?")
        );
        assert_eq!(one.approvers, ["alice"]);
        w.close("r1", "a");
        w.close("r1", "never-opened");
        w.close("no-such-run", "a");
        assert_eq!(
            listed(&w),
            [("r1", "b", 20), ("r2", "a", 30)].map(|(r, s, d)| (r.to_string(), s.to_string(), d))
        );
        w.finished("r1");
        assert_eq!(listed(&w), [("r2".to_string(), "a".to_string(), 30)]);
        w.close("r2", "a");
        assert!(w.0.is_empty(), "a run with no open gate keeps no entry");
    }
}
