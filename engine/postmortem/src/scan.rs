//! One pass over each journal: what every step did and when, the gates, the incident
//! updates, and the timeline rows. Everything later (metrics, summary, picture) reads
//! these records, never the raw journal again.

use crate::PostmortemError;
use crate::time;
use medic_core::{Entry, Event, HostCall, HttpOutcome, Level, RunState, RunStatus};
use medic_model::{Decision, Incident, IncidentStatus, Phase, Workflow};
use std::collections::BTreeMap;

/// A run as its journal tells it.
#[derive(Debug, Clone)]
pub(crate) struct RunRec {
    pub id: String,
    pub workflow: Workflow,
    pub workflow_file: String,
    pub incident: Incident,
    pub drill: bool,
    pub created_ms: u64,
    /// The last entry's instant: how far the journal goes.
    pub last_ms: u64,
    pub finished: Option<(u64, RunStatus, Option<String>)>,
    /// Steps in run order (phase, then file order), each once.
    pub steps: Vec<StepRec>,
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Outcome {
    Succeeded,
    /// Failed, and another attempt is planned at this instant.
    Retry(u64),
    /// Failed for good.
    Failed,
    /// No result in the journal: interrupted, or still running.
    Open,
}

#[derive(Debug, Clone)]
pub(crate) struct AttemptRec {
    pub attempt: u32,
    pub start_ms: u64,
    pub end_ms: u64,
    pub outcome: Outcome,
    pub failure: Option<String>,
    /// The rendered (redacted) `action` param, when the step has one.
    pub action: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct GateRec {
    pub opened_ms: u64,
    pub prompt: String,
    pub approvers: Vec<String>,
    pub deadline_ms: u64,
    pub on_deadline: Decision,
    pub decided: Option<Decided>,
}

#[derive(Debug, Clone)]
pub(crate) struct Decided {
    pub at_ms: u64,
    pub decision: Decision,
    pub by: String,
    pub by_deadline: bool,
    pub comment: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct StepRec {
    pub id: String,
    pub phase: Phase,
    /// The component, or `gate`.
    pub uses: String,
    pub attempts: Vec<AttemptRec>,
    pub skipped: Option<(u64, String)>,
    pub gate: Option<GateRec>,
}

impl StepRec {
    /// When the step succeeded: its successful attempt's end, or its gate's decision.
    pub fn succeeded_ms(&self) -> Option<u64> {
        if let Some(g) = &self.gate {
            return g.decided.as_ref().map(|d| d.at_ms);
        }
        self.attempts
            .iter()
            .find(|a| a.outcome == Outcome::Succeeded)
            .map(|a| a.end_ms)
    }

    pub fn failed(&self) -> Option<&AttemptRec> {
        self.attempts.iter().find(|a| a.outcome == Outcome::Failed)
    }

    /// `succeeded`, `failed`, `skipped`, `waiting` (a gate or a retry), `running`, `pending`.
    pub fn status(&self) -> &'static str {
        if self.skipped.is_some() {
            "skipped"
        } else if self.succeeded_ms().is_some() {
            "succeeded"
        } else if self.failed().is_some() {
            "failed"
        } else if self.gate.is_some() {
            "waiting"
        } else {
            match self.attempts.last().map(|a| &a.outcome) {
                Some(Outcome::Retry(_)) => "waiting",
                Some(_) => "running",
                None => "pending",
            }
        }
    }
}

/// One row of the timeline, before formatting.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub at_ms: u64,
    /// Index of the run in the postmortem (0 for incident-wide rows such as impact start).
    pub run: usize,
    pub seq: u64,
    pub phase: Option<Phase>,
    pub step: Option<String>,
    pub kind: &'static str,
    pub text: String,
}

/// An incident status change as a run journalled it.
#[derive(Debug, Clone)]
pub(crate) struct Update {
    pub at_ms: u64,
    pub run: usize,
    pub status: IncidentStatus,
}

pub(crate) struct Scan {
    pub runs: Vec<RunRec>,
    pub rows: Vec<Row>,
    pub updates: Vec<Update>,
}

/// Reads the journals, oldest run first (by creation, then id, so input order does not matter).
/// How much of a journal a scan reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Detail {
    /// Everything, with a timeline row per exchange, note and warning.
    Rows,
    /// What the picture draws: runs, steps, attempts, gates and incident updates. Host
    /// calls (most of a long journal) are skipped; they make rows only.
    Picture,
}

pub(crate) fn scan_with(
    journals: Vec<(String, &[Entry])>,
    detail: Detail,
) -> Result<Scan, PostmortemError> {
    let mut journals = journals;
    if journals.is_empty() {
        return Err(PostmortemError::NoJournals);
    }
    journals.sort_by(|a, b| {
        let first = |j: &[Entry]| j.first().map_or(0, |e| e.at_ms);
        (first(a.1), &a.0).cmp(&(first(b.1), &b.0))
    });
    journals.dedup_by(|a, b| a.0 == b.0);
    let mut out = Scan {
        runs: Vec::new(),
        rows: Vec::new(),
        updates: Vec::new(),
    };
    for (index, (id, entries)) in journals.into_iter().enumerate() {
        // The fold checks the journal's shape (run_created first, dense sequence numbers,
        // known steps) so the rest can trust it.
        RunState::fold(&id, entries).map_err(|e| PostmortemError::Journal {
            run: id.clone(),
            message: e.to_string(),
        })?;
        let run = scan_run(index, &id, entries, detail, &mut out.rows, &mut out.updates);
        out.runs.push(run);
    }
    Ok(out)
}

fn scan_run(
    index: usize,
    id: &str,
    entries: &[Entry],
    detail: Detail,
    rows: &mut Vec<Row>,
    updates: &mut Vec<Update>,
) -> RunRec {
    let Event::RunCreated(created) = &entries[0].event else {
        unreachable!("RunState::fold checked that entry 0 is run_created")
    };
    let workflow = created.workflow.clone();
    let order = workflow.execution_order();
    let mut steps: Vec<StepRec> = order
        .iter()
        .map(|&i| {
            let s = &workflow.steps[i];
            StepRec {
                id: s.id.clone(),
                phase: s.phase,
                uses: if s.is_gate() {
                    "gate".into()
                } else {
                    s.uses.clone()
                },
                attempts: Vec::new(),
                skipped: None,
                gate: None,
            }
        })
        .collect();
    let slot: BTreeMap<String, usize> = steps
        .iter()
        .enumerate()
        .map(|(i, s)| (s.id.clone(), i))
        .collect();
    let mut run = RunRec {
        id: id.to_string(),
        workflow: workflow.clone(),
        workflow_file: created.workflow_file.clone(),
        incident: created.incident.clone(),
        drill: created.drill,
        created_ms: entries[0].at_ms,
        last_ms: entries.last().map_or(0, |e| e.at_ms),
        finished: None,
        steps: Vec::new(),
    };
    let i = &created.incident;
    rows.push(Row {
        at_ms: entries[0].at_ms,
        run: index,
        seq: 0,
        phase: None,
        step: None,
        kind: "alert",
        text: format!(
            "alert received: \"{}\" ({}, from {}); medic started workflow {} (run {id})",
            i.title, i.severity, i.source, workflow.name
        ),
    });
    // Requests by (step, attempt, request id), to summarise each exchange in one line.
    let mut requests: BTreeMap<(String, u32, u32), (String, String)> = BTreeMap::new();
    for e in &entries[1..] {
        if detail == Detail::Picture && matches!(e.event, Event::HostCall { .. }) {
            continue;
        }
        let mut row = |phase: Option<Phase>, step: Option<&str>, kind, text: String| {
            rows.push(Row {
                at_ms: e.at_ms,
                run: index,
                seq: e.seq,
                phase,
                step: step.map(str::to_string),
                kind,
                text,
            })
        };
        let step_of = |name: &str| slot.get(name).copied();
        match &e.event {
            Event::RunCreated(_) => {}
            Event::StepSkipped { step, reason } => {
                let Some(k) = step_of(step) else { continue };
                steps[k].skipped = Some((e.at_ms, reason.clone()));
                row(
                    Some(steps[k].phase),
                    Some(step),
                    "skipped",
                    format!("skipped: {reason}"),
                );
            }
            // Not run because the incident resolved by itself: a fact for the timeline,
            // drawn like a skipped step.
            Event::StepCancelled { step, reason } => {
                let Some(k) = step_of(step) else { continue };
                steps[k].skipped = Some((e.at_ms, reason.clone()));
                row(
                    Some(steps[k].phase),
                    Some(step),
                    "cancelled",
                    format!("cancelled: {reason}"),
                );
            }
            Event::AttemptStarted {
                step,
                attempt,
                params,
                ..
            } => {
                let Some(k) = step_of(step) else { continue };
                // As rendered; else as written in the workflow (a templated action was
                // rendered into params, so this only fills in what params lack).
                let action = params
                    .get("action")
                    .or_else(|| workflow.step(step).and_then(|s| s.with.get("action")))
                    .and_then(|a| a.as_str())
                    .map(str::to_string);
                steps[k].attempts.push(AttemptRec {
                    attempt: *attempt,
                    start_ms: e.at_ms,
                    end_ms: e.at_ms,
                    outcome: Outcome::Open,
                    failure: None,
                    action,
                });
            }
            Event::HostCall {
                step,
                attempt,
                call,
            } => {
                let Some(k) = step_of(step) else { continue };
                let phase = Some(steps[k].phase);
                match call {
                    HostCall::HttpRequest {
                        id, method, url, ..
                    } => {
                        requests.insert(
                            (step.clone(), *attempt, *id),
                            (method.clone(), without_query(url)),
                        );
                    }
                    HostCall::HttpResponse {
                        id,
                        outcome,
                        duration_ms,
                    } => {
                        let (method, url) = requests
                            .remove(&(step.clone(), *attempt, *id))
                            .unwrap_or_else(|| ("?".into(), format!("request #{id}")));
                        let result = match outcome {
                            HttpOutcome::Response { status, .. } => status.to_string(),
                            HttpOutcome::Error { message } => format!("failed ({message})"),
                        };
                        let took = time::human(*duration_ms);
                        row(
                            phase,
                            Some(step),
                            "http",
                            format!("{method} {url} → {result} in {took}"),
                        );
                    }
                    HostCall::HttpDenied { method, url, host } => row(
                        phase,
                        Some(step),
                        "denied",
                        format!(
                            "DENIED host not allowed: {host} ({method} {})",
                            without_query(url)
                        ),
                    ),
                    HostCall::Annotate { message } => {
                        row(phase, Some(step), "note", format!("note: {message}"))
                    }
                    HostCall::Log { level, message } if *level >= Level::Warn => row(
                        phase,
                        Some(step),
                        "log",
                        format!("{}: {message}", level.as_str()),
                    ),
                    HostCall::SecretRead {
                        name,
                        granted: false,
                        ..
                    } => row(
                        phase,
                        Some(step),
                        "denied",
                        format!("DENIED secret not granted: {name}"),
                    ),
                    _ => {}
                }
            }
            Event::AttemptSucceeded {
                step,
                attempt,
                duration_ms,
                ..
            } => {
                let Some(k) = step_of(step) else { continue };
                close(&mut steps[k], *attempt, e.at_ms, Outcome::Succeeded, None);
                let text = format!(
                    "succeeded in {} ({}, attempt {attempt})",
                    time::human(*duration_ms),
                    steps[k].uses
                );
                row(Some(steps[k].phase), Some(step), "succeeded", text);
            }
            Event::AttemptFailed {
                step,
                attempt,
                failure,
                duration_ms,
                retry,
            } => {
                let Some(k) = step_of(step) else { continue };
                let outcome = match retry {
                    Some(r) => Outcome::Retry(r.not_before_ms),
                    None => Outcome::Failed,
                };
                close(
                    &mut steps[k],
                    *attempt,
                    e.at_ms,
                    outcome,
                    Some(failure.to_string()),
                );
                let next = match retry {
                    Some(r) => format!(
                        "; retry: attempt {} at {} UTC",
                        r.attempt,
                        time::clock(r.not_before_ms)
                    ),
                    None => "; the step failed".into(),
                };
                let text = format!(
                    "attempt {attempt} failed after {}: {failure}{next}",
                    time::human(*duration_ms)
                );
                let kind = if retry.is_some() { "retry" } else { "failed" };
                row(Some(steps[k].phase), Some(step), kind, text);
            }
            Event::GateOpened {
                step,
                prompt,
                approvers,
                deadline_ms,
                on_deadline,
            } => {
                let Some(k) = step_of(step) else { continue };
                steps[k].gate = Some(GateRec {
                    opened_ms: e.at_ms,
                    prompt: prompt.clone(),
                    approvers: approvers.clone(),
                    deadline_ms: *deadline_ms,
                    on_deadline: *on_deadline,
                    decided: None,
                });
                let who = if approvers.is_empty() {
                    "anyone with an API token".to_string()
                } else {
                    approvers.join(", ")
                };
                let text = format!(
                    "GATE waiting for {who}: \"{prompt}\" (without a decision by {} UTC: {})",
                    time::clock(*deadline_ms),
                    on_deadline.past()
                );
                row(Some(steps[k].phase), Some(step), "gate", text);
            }
            Event::GateDecided {
                step,
                decision,
                by,
                by_deadline,
                comment,
            } => {
                let Some(k) = step_of(step) else { continue };
                let opened = steps[k].gate.as_ref().map_or(e.at_ms, |g| g.opened_ms);
                if let Some(g) = &mut steps[k].gate {
                    g.decided = Some(Decided {
                        at_ms: e.at_ms,
                        decision: *decision,
                        by: by.clone(),
                        by_deadline: *by_deadline,
                        comment: comment.clone(),
                    });
                }
                let how = if *by_deadline {
                    "by its deadline (nobody decided)".to_string()
                } else {
                    format!("by {by}")
                };
                let why = comment
                    .as_ref()
                    .map_or(String::new(), |c| format!(": \"{c}\""));
                let text = format!(
                    "GATE {} {how} after {}{why}",
                    decision.past(),
                    time::human(e.at_ms.saturating_sub(opened))
                );
                row(Some(steps[k].phase), Some(step), "decision", text);
            }
            Event::IncidentUpdated { status } => {
                updates.push(Update {
                    at_ms: e.at_ms,
                    run: index,
                    status: *status,
                });
                let text = match status {
                    IncidentStatus::Resolved => "incident resolved: its alerts stopped firing",
                    IncidentStatus::Firing => "incident firing again: its alerts fired again",
                };
                row(None, None, "incident", text.to_string());
            }
            Event::RunFinished { status, reason } => {
                run.finished = Some((e.at_ms, *status, reason.clone()));
                let took = time::human(e.at_ms.saturating_sub(run.created_ms));
                let text = match reason {
                    Some(r) => format!("run {} after {took}: {r}", status.as_str()),
                    None => format!("run {} after {took}", status.as_str()),
                };
                row(None, None, "finished", text);
            }
        }
    }
    run.steps = steps;
    run
}

/// Closes the open record of `attempt` (a resumed attempt has one record, its first start).
fn close(step: &mut StepRec, attempt: u32, at_ms: u64, outcome: Outcome, failure: Option<String>) {
    if let Some(a) = step
        .attempts
        .iter_mut()
        .rev()
        .find(|a| a.attempt == attempt && a.outcome == Outcome::Open)
    {
        a.end_ms = at_ms;
        a.outcome = outcome;
        a.failure = failure;
    } else {
        // A result with no start (a template failure is journalled without one).
        step.attempts.push(AttemptRec {
            attempt,
            start_ms: at_ms,
            end_ms: at_ms,
            outcome,
            failure,
            action: None,
        });
    }
}

/// The URL without its query string or fragment: queries can carry tokens
/// (`?access_token=`), and the path says what was asked.
pub(crate) fn without_query(url: &str) -> String {
    let cut = url.find(['?', '#']).unwrap_or(url.len());
    let base = &url[..cut];
    let base = base
        .strip_prefix("http://")
        .or_else(|| base.strip_prefix("https://"))
        .unwrap_or(base);
    // Userinfo (`user:password@host`) never reaches a postmortem either.
    match base.find('/') {
        Some(slash) => match base[..slash].rfind('@') {
            Some(at) => base[at + 1..].to_string(),
            None => base.to_string(),
        },
        None => base.rsplit('@').next().unwrap_or(base).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::without_query;

    #[test]
    fn urls_lose_queries_and_credentials() {
        assert_eq!(
            without_query("http://127.0.0.1:8008/_matrix/x?access_token=s3cret#f"),
            "127.0.0.1:8008/_matrix/x"
        );
        assert_eq!(
            without_query("https://user:pw@example.com/api"),
            "example.com/api"
        );
        assert_eq!(without_query("https://user:pw@example.com"), "example.com");
    }
}
