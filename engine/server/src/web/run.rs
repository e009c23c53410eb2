//! A run's page: its open gates first, then its steps with their calls folded under
//! them; the whole of a long value on its own page; and gate decisions from the browser.
//!
//! Every view is bounded: outputs and bodies are cut at [`CLIP`] bytes and each step
//! shows its last [`CALLS_SHOWN`] calls, with links to the rest, so a step that logged
//! 50 MB does not freeze the page. Values come from the journal, where secrets were
//! already redacted before they were written.

use super::cache::CachedRun;
use super::pages::wants_fragment;
use super::session::Session;
use super::view::{self, CallView, Chrome, Clip, GateView, RunView, StepView};
use super::{CsrfForm, csrf_refused, html, message};
use crate::Service;
use crate::gates::{MAX_COMMENT, check_and_post};
use askama::Template;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use medic_core::gates::{Refusal, check_decision};
use medic_core::{Event, HostCall, HttpOutcome, Level, StepStatus, StoreError};
use medic_model::Decision;
use serde::Deserialize;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

/// Longest excerpt of a value shown inline.
pub(crate) const CLIP: usize = 2_000;
/// Calls shown under each step (the latest ones).
pub(crate) const CALLS_SHOWN: usize = 50;
/// Lines per page of a step's whole call log.
const LOG_PAGE: usize = 500;
/// Longest single call shown on the whole-log page (a response body, say).
const WHOLE_CALL: usize = 256 * 1024;

/// Whether people see `call` on the page: not debug logs, clock or random reads.
fn shown(call: &HostCall) -> bool {
    match call {
        HostCall::Log { level, .. } => *level >= Level::Info,
        HostCall::Clock { .. } | HostCall::Random { .. } => false,
        _ => true,
    }
}

/// One host call as a line, or `None` for those people need not see ([`shown`]).
fn call_view(at_ms: u64, call: &HostCall, max: usize) -> Option<CallView> {
    let (what, text) = match call {
        HostCall::Log { level, message } if *level >= Level::Info => {
            (level.as_str().to_string(), message.clone())
        }
        HostCall::Log { .. } | HostCall::Clock { .. } | HostCall::Random { .. } => return None,
        HostCall::Annotate { message } => ("note".into(), message.clone()),
        HostCall::SecretRead {
            name,
            granted,
            present,
        } => (
            "secret".into(),
            match (granted, present) {
                (false, _) => format!("DENIED: {name} is not granted to this step"),
                (true, false) => format!("{name} read (not set)"),
                (true, true) => format!("{name} read"),
            },
        ),
        HostCall::StateSet { key, .. } => ("state".into(), format!("saved {key}")),
        HostCall::HttpRequest {
            method, url, body, ..
        } => {
            let body = String::from_utf8_lossy(&body.to_bytes()).into_owned();
            let text = if body.is_empty() {
                format!("{method} {url}")
            } else {
                format!("{method} {url}\n\n{body}")
            };
            ("http →".into(), text)
        }
        HostCall::HttpResponse {
            outcome,
            duration_ms,
            ..
        } => match outcome {
            HttpOutcome::Response { status, body, .. } => {
                let body = String::from_utf8_lossy(&body.to_bytes()).into_owned();
                (
                    "http ←".into(),
                    format!("{status} in {}\n\n{body}", view::duration(*duration_ms)),
                )
            }
            HttpOutcome::Error { message } => ("http ←".into(), format!("failed: {message}")),
        },
        HostCall::HttpDenied { method, url, host } => (
            "http".into(),
            format!("DENIED: {host} is not allowed ({method} {url})"),
        ),
    };
    Some(CallView {
        at: view::clock(at_ms),
        what,
        text: Clip::new(&text, max),
    })
}

/// Per step: its latest calls (bounded; indices into the journal, formatted only once
/// the last ones are known), how many there were, and its attempts' time.
#[derive(Default)]
struct StepCalls {
    shown: VecDeque<usize>,
    total: usize,
    duration_ms: u64,
}

/// Builds the run page's view from the journal, for `user` (who may or may not decide
/// its gates).
pub(crate) fn run_view(run: &CachedRun, user: &str, csrf: &str, now_ms: u64) -> RunView {
    let (state, entries) = (&run.state, &run.entries);
    let mut calls: HashMap<&str, StepCalls> = HashMap::new();
    for (i, e) in entries.iter().enumerate() {
        match &e.event {
            Event::HostCall { step, call, .. } if shown(call) => {
                let c = calls.entry(step.as_str()).or_default();
                c.total += 1;
                if c.shown.len() == CALLS_SHOWN {
                    c.shown.pop_front();
                }
                c.shown.push_back(i);
            }
            Event::AttemptSucceeded {
                step, duration_ms, ..
            }
            | Event::AttemptFailed {
                step, duration_ms, ..
            } => {
                calls.entry(step.as_str()).or_default().duration_ms += duration_ms;
            }
            _ => {}
        }
    }
    let mut gates = Vec::new();
    let mut steps = Vec::new();
    for i in state.workflow.execution_order() {
        let def = &state.workflow.steps[i];
        let s = &state.steps[&def.id];
        let c = calls.remove(def.id.as_str()).unwrap_or_default();
        let mut duration_ms = c.duration_ms;
        if s.status == StepStatus::Running && s.gate.is_none() {
            duration_ms += now_ms.saturating_sub(s.started_ms);
        }
        if let Some(g) = state.open_gate(&def.id) {
            gates.push(GateView {
                step: def.id.clone(),
                prompt: g.prompt.clone(),
                approvers: if g.approvers.is_empty() {
                    "anyone signed in".into()
                } else {
                    g.approvers.join(", ")
                },
                deadline: view::when(g.deadline_ms),
                deadline_ms: g.deadline_ms,
                on_deadline: g.on_deadline.past().to_string(),
                refusal: check_decision(state, &def.id, user)
                    .err()
                    .map(|r| r.to_string()),
            });
        }
        steps.push(StepView {
            id: def.id.clone(),
            phase: def.phase.as_str().to_string(),
            uses: if def.is_gate() {
                "gate".into()
            } else {
                def.uses.clone()
            },
            status: if state.open_gate(&def.id).is_some() {
                "waiting for a decision".into()
            } else {
                s.status.as_str().to_string()
            },
            status_class: if state.open_gate(&def.id).is_some() {
                "gate"
            } else {
                s.status.as_str()
            },
            attempts: s.attempt,
            duration: if s.attempt > 0 || c.duration_ms > 0 {
                view::duration(duration_ms)
            } else {
                String::new()
            },
            output: s.output.as_ref().map(|o| Clip::new(&pretty(o), CLIP)),
            // A failed attempt that a later one recovered from is in the calls, not here.
            error: s
                .last_failure
                .as_ref()
                .filter(|_| s.status != StepStatus::Succeeded)
                .map(|f| f.to_string()),
            calls: c
                .shown
                .iter()
                .filter_map(|&i| match &entries[i].event {
                    Event::HostCall { call, .. } => call_view(entries[i].at_ms, call, CLIP),
                    _ => None,
                })
                .collect(),
            calls_total: c.total,
        });
    }
    let last_at = entries.last().map_or(state.created_ms, |e| e.at_ms);
    let end = if state.is_finished() { last_at } else { now_ms };
    RunView {
        id: state.id.clone(),
        workflow: state.workflow.name.clone(),
        status: state.status.as_str().to_string(),
        reason: state.reason.clone(),
        drill: state.drill,
        incident_id: state.incident.id.clone(),
        incident_title: state.incident.title.clone(),
        severity: state.incident.severity.clone(),
        incident_status: state.incident.status.as_str().to_string(),
        started: view::when(state.created_ms),
        duration: view::duration(end.saturating_sub(state.created_ms)),
        last_seq: entries.last().map_or(0, |e| e.seq),
        gates,
        steps,
        svg: run.svg(),
        finished: state.is_finished(),
        csrf: csrf.to_string(),
        notice: None,
        error: None,
    }
}

fn pretty(v: &serde_json::Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
}

/// The run as its journal stands now (through the run cache), off the async workers.
pub(crate) async fn load(svc: &Arc<Service>, id: &str) -> Result<Arc<CachedRun>, Response> {
    let worker = svc.clone();
    let run = id.to_string();
    let loaded =
        tokio::task::spawn_blocking(move || worker.web.runs.load(&worker.store, &run)).await;
    match loaded {
        Ok(Ok(x)) => Ok(x),
        Ok(Err(StoreError::NoSuchRun(_))) => Err(message(
            StatusCode::NOT_FOUND,
            "No such run",
            format!("medic has no run with id {id}."),
        )),
        Ok(Err(e)) => Err(message(
            StatusCode::SERVICE_UNAVAILABLE,
            "The run could not be read",
            e.to_string(),
        )),
        Err(e) => Err(message(
            StatusCode::SERVICE_UNAVAILABLE,
            "The run could not be read",
            e.to_string(),
        )),
    }
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct RunQuery {
    decided: Option<String>,
}

/// `GET /ui/runs/{id}` (the whole page, or with `HX-Request` the part that changes).
pub(crate) async fn page(
    State(svc): State<Arc<Service>>,
    session: Session,
    Path(id): Path<String>,
    Query(q): Query<RunQuery>,
    headers: HeaderMap,
) -> Response {
    let loaded = match load(&svc, &id).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let mut run = run_view(&loaded, &session.user, &session.csrf, svc.clock.now_ms());
    if let Some(d) = q.decided.as_deref().and_then(Decision::parse) {
        run.notice = Some(format!(
            "Your decision ({}) is recorded under your name, {}; the run goes on in a moment.",
            d.as_str(),
            session.user
        ));
    }
    render(run, session, &headers, StatusCode::OK)
}

fn render(run: RunView, session: Session, headers: &HeaderMap, status: StatusCode) -> Response {
    if wants_fragment(headers) {
        return html(status, view::RunBody { run }.render());
    }
    let page = view::RunPage {
        chrome: Chrome {
            user: session.user,
            csrf: session.csrf,
            section: "runs",
        },
        run,
    };
    html(status, page.render())
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct WholeQuery {
    /// For `calls`: how many of the latest lines to skip (paging back).
    skip: Option<usize>,
}

/// `GET /ui/runs/{id}/steps/{step}/{output|error|calls}`: the whole value, or a step's
/// calls a page at a time (newest first).
pub(crate) async fn whole(
    State(svc): State<Arc<Service>>,
    session: Session,
    Path((id, step, what)): Path<(String, String, String)>,
    Query(q): Query<WholeQuery>,
) -> Response {
    let loaded = match load(&svc, &id).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let (state, entries) = (&loaded.state, &loaded.entries);
    let Some(s) = state.steps.get(&step) else {
        return message(
            StatusCode::NOT_FOUND,
            "No such step",
            format!("run {id} has no step `{step}`."),
        );
    };
    let (text, lines, older) = match what.as_str() {
        "output" => (
            s.output.as_ref().map(pretty).unwrap_or_default(),
            vec![],
            None,
        ),
        "error" => (
            s.last_failure
                .as_ref()
                .map(|f| f.to_string())
                .unwrap_or_default(),
            vec![],
            None,
        ),
        "calls" => {
            let skip = q.skip.unwrap_or(0);
            let all: Vec<CallView> = entries
                .iter()
                .rev()
                .filter_map(|e| match &e.event {
                    Event::HostCall { step: s, call, .. } if *s == step => {
                        call_view(e.at_ms, call, WHOLE_CALL)
                    }
                    _ => None,
                })
                .skip(skip)
                .take(LOG_PAGE + 1)
                .collect();
            let older = (all.len() > LOG_PAGE).then_some(skip + LOG_PAGE);
            (
                String::new(),
                all.into_iter().take(LOG_PAGE).collect(),
                older,
            )
        }
        _ => {
            return message(
                StatusCode::NOT_FOUND,
                "Nothing here",
                "A step has an output, an error and calls.".into(),
            );
        }
    };
    let page = view::WholePage {
        chrome: Chrome {
            user: session.user,
            csrf: session.csrf,
            section: "runs",
        },
        run: id,
        step,
        what,
        text,
        lines,
        older,
    };
    html(StatusCode::OK, page.render())
}

#[derive(Debug, Deserialize)]
pub(crate) struct DecisionForm {
    #[serde(flatten)]
    csrf: CsrfForm,
    #[serde(default)]
    decision: String,
    #[serde(default)]
    comment: String,
}

/// `POST /ui/runs/{id}/gates/{step}`: a decision by the signed-in person, checked
/// exactly as the API checks it, then back to the run.
pub(crate) async fn decide(
    State(svc): State<Arc<Service>>,
    session: Session,
    Path((id, step)): Path<(String, String)>,
    headers: HeaderMap,
    Form(form): Form<DecisionForm>,
) -> Response {
    if !session.csrf_ok(form.csrf.csrf.as_deref()) {
        return csrf_refused();
    }
    let Some(decision) = Decision::parse(&form.decision) else {
        return message(
            StatusCode::UNPROCESSABLE_ENTITY,
            "No decision",
            "Press Approve or Reject.".into(),
        );
    };
    let comment = form.comment.trim().to_string();
    if comment.len() > MAX_COMMENT {
        return message(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Comment too long",
            format!(
                "A comment is at most {MAX_COMMENT} bytes; yours is {}.",
                comment.len()
            ),
        );
    }
    let worker = svc.clone();
    let (run, st, by) = (id.clone(), step.clone(), session.user.clone());
    let comment = (!comment.is_empty()).then_some(comment);
    let posted = tokio::task::spawn_blocking(move || {
        check_and_post(&worker, &run, &st, decision, &by, comment)
    })
    .await;
    let refusal = match posted {
        Ok(Ok(Ok(()))) => {
            let to = format!("/ui/runs/{id}?decided={}", decision.as_str());
            return Redirect::to(&to).into_response();
        }
        Ok(Ok(Err(refusal))) => refusal,
        Ok(Err(StoreError::NoSuchRun(_))) => {
            return message(
                StatusCode::NOT_FOUND,
                "No such run",
                format!("medic has no run with id {id}."),
            );
        }
        Ok(Err(e)) => {
            return message(
                StatusCode::SERVICE_UNAVAILABLE,
                "Not recorded",
                e.to_string(),
            );
        }
        Err(e) => {
            return message(
                StatusCode::SERVICE_UNAVAILABLE,
                "Not recorded",
                e.to_string(),
            );
        }
    };
    // Refused: the run page again, saying why, with the status the API would answer.
    let status = StatusCode::from_u16(refusal.http_status()).unwrap_or(StatusCode::CONFLICT);
    let loaded = match load(&svc, &id).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let mut run = run_view(&loaded, &session.user, &session.csrf, svc.clock.now_ms());
    run.error = Some(refused_text(&refusal));
    render(run, session, &headers, status)
}

fn refused_text(r: &Refusal) -> String {
    format!("Your decision was not recorded: {r}.")
}
